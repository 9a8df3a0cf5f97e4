/*
 * calltree.h - where the Functions view's call tree stands: the path of
 * functions from an entry point down to the one whose callees are shown
 * (pure model, no curses, unit-tested).
 *
 * Enter goes down into a callee (calltree_push), Backspace goes up
 * (calltree_pop, which remembers the function it came from so that the view
 * can select it again), and every refresh asks the agent for profile_tree
 * with calltree_args(). A reply is for the current place only if
 * calltree_matches() says so: replies to a path left meanwhile are dropped.
 *
 * Strings are copied; not thread-safe (one owner).
 */
#ifndef PMT_TUI_CALLTREE_H
#define PMT_TUI_CALLTREE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "ipc/msg.h"

/* As deep as the agent goes (profile_tree accepts at most 128 entries). */
#define CALLTREE_MAX_DEPTH 128

struct calltree_fn {
	char *file, *function;
	int first_line;
};

struct calltree {
	struct calltree_fn path[CALLTREE_MAX_DEPTH]; /* outermost first */
	size_t depth;                                /* 0: the entry points */
	struct calltree_fn back;   /* the function calltree_pop() left, to select */
	bool has_back;
};

void calltree_init(struct calltree *t);
void calltree_done(struct calltree *t);

/* Go down into FUNCTION (of FILE, defined at FIRST_LINE). Returns false,
 * changing nothing, when the path is already CALLTREE_MAX_DEPTH deep. */
bool calltree_push(struct calltree *t, const char *file, const char *function, int first_line);
/* Go up one level; false at the entry points already. */
bool calltree_pop(struct calltree *t);
/* Back at the entry points. */
void calltree_reset(struct calltree *t);

/* The arguments of profile_tree for the current place: {"path": [[file,
 * function, first_line], ...], "limit": LIMIT}. The caller owns them. */
cJSON *calltree_args(const struct calltree *t, int limit);

/* The reply R is for the current place (same path). */
bool calltree_matches(const struct calltree *t, const struct msg_profile_tree *r);

/* True when the function of a row is F (to select it again after a pop). */
bool calltree_is(const struct calltree_fn *f, const char *file, const char *function, int first_line);

/*
 * The path for a header, at most WIDTH columns (bytes; names are mostly
 * ASCII): "entry points" at the top, else "main > serve > handler"; when it
 * does not fit, the entry point, "...", and as many of the innermost as fit
 * ("main > ... > handler > load"); when not even that, the innermost cut
 * from the left. Returns buf.
 */
char *calltree_title(const struct calltree *t, char *buf, size_t len, int width);

#endif
