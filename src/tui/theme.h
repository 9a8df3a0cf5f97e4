/*
 * theme.h - semantic colours and the JSON themes that map them to colours.
 *
 * Code never names a colour, only a role (THEME_GRAPH_RSS, THEME_GROWTH, ...).
 * A theme file in themes/ maps each role to a foreground, background and
 * attributes. This module parses themes (cJSON) without touching curses; the
 * painter (theme_apply in theme_curses.c) turns a parsed theme into colour pairs.
 */
#ifndef PMT_TUI_THEME_H
#define PMT_TUI_THEME_H

#include <stdbool.h>
#include <stddef.h>

/* X(ENUM_SUFFIX, "json name") - one line per role. */
#define THEME_ROLE_LIST(X)                 \
	X(NORMAL, "normal")                \
	X(TITLE, "title")                  \
	X(HEADER_LABEL, "header_label")    \
	X(HEADER_VALUE, "header_value")    \
	X(TAB, "tab")                      \
	X(TAB_ACTIVE, "tab_active")        \
	X(STATUS, "status")                \
	X(STATUS_ERROR, "status_error")    \
	X(WARNING, "warning")              \
	X(DIM, "dim")                      \
	X(GRAPH_RSS, "graph_rss")          \
	X(GRAPH_HEAP, "graph_heap")        \
	X(GRAPH_AXIS, "graph_axis")        \
	X(GRAPH_MARKER, "graph_marker")    \
	X(TABLE_HEADER, "table_header")    \
	X(SELECTION, "selection")          \
	X(GROWTH, "growth")                \
	X(SHRINK, "shrink")                \
	X(HELP_KEY, "help_key")            \
	X(BORDER, "border")                \
	X(COMP_PYTHON, "comp_python")      \
	X(COMP_SLACK, "comp_slack")        \
	X(COMP_NATIVE, "comp_native")      \
	X(COMP_FREE, "comp_free")          \
	X(COMP_STACKS, "comp_stacks")      \
	X(COMP_FILES, "comp_files")        \
	X(COMP_OTHER, "comp_other")

#define THEME_ENUM_ROLE(e, s) THEME_##e,
enum theme_role { THEME_ROLE_LIST(THEME_ENUM_ROLE) THEME_ROLE_COUNT };

enum {
	THEME_ATTR_BOLD = 1 << 0,
	THEME_ATTR_DIM = 1 << 1,
	THEME_ATTR_REVERSE = 1 << 2,
	THEME_ATTR_UNDERLINE = 1 << 3,
};

/* Colour numbers: -1 = terminal default, 0-7 basic, 8-15 bright, 16-255. */
struct theme_style {
	short fg, bg;
	unsigned attrs;
};

struct theme {
	char name[64];
	struct theme_style style[THEME_ROLE_COUNT];
};

const char *theme_role_name(enum theme_role r);

/* The built-in monochrome theme (attributes only): used for NO_COLOR, for
 * terminals without colour, and as the base every theme file starts from. */
void theme_mono(struct theme *t);

/* Parse a theme from JSON text. Roles a file leaves out keep the monochrome
 * style. Returns 0, or -1 with a one-line reason in err. */
int theme_parse(const char *json, size_t len, struct theme *t, char *err, size_t errlen);

/* Load dir/NAME.json. Returns 0, or -1 with a reason naming the file. */
int theme_load(const char *dir, const char *name, struct theme *t, char *err, size_t errlen);

/* Theme names available in dir (sorted, malloc'd array of malloc'd strings).
 * Returns the count; *names is NULL when none. */
size_t theme_list(const char *dir, char ***names);
void theme_list_free(char **names, size_t n);

#endif
