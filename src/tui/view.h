/*
 * view.h - the interface every screen of the TUI implements.
 *
 * One file per view (view_overview.c, view_help.c, ...), each exporting one
 * const struct view; views.c lists them in tab order. The app calls update when
 * new data arrived, draw when the screen is dirty, key for each key press.
 */
#ifndef PMT_TUI_VIEW_H
#define PMT_TUI_VIEW_H

#include <stdbool.h>

#include "tui/keys.h"

struct app;
struct prompt;

/* Results of view->key, as flags. */
enum {
	VIEW_KEY_IGNORED = 0,
	VIEW_KEY_HANDLED = 1 << 0, /* the view used the key */
	VIEW_KEY_REDRAW = 1 << 1,  /* and the screen must be redrawn */
	VIEW_KEY_QUIT = 1 << 2,    /* leave pmt-top */
};

struct view {
	const char *name;                    /* tab title */
	void (*init)(struct app *app);       /* may be NULL */
	void (*done)(struct app *app);       /* may be NULL */
	void (*update)(struct app *app);     /* new data in the model; may be NULL */
	/* Draw into rows [top, top + rows) of the screen, cols wide. */
	void (*draw)(struct app *app, int top, int rows, int cols);
	/* Keys while the view is in a mode of its own (a prompt, a panel):
	 * called first; VIEW_KEY_IGNORED passes the key on to the table. May be
	 * NULL. */
	int (*key)(struct app *app, int ch);
	/* The view's prompt while one is open, else NULL (may be NULL): the
	 * app draws it on the last row, under the status message, so that a
	 * message and a prompt never cover each other. */
	const struct prompt *(*prompt)(struct app *app);
	/* The view's bindings (keys.h): dispatch, help overlay and man page. */
	const struct binding *keys;
	/* Bytes of the view's own state, zeroed, kept by the app for it (see
	 * app_view_state); 0: none. No view keeps state in file-level variables,
	 * so that two apps, or a test, can each have their own. */
	size_t state_size;
};

extern const struct view view_overview;
extern const struct view view_top;
extern const struct view view_snapshots;
extern const struct view view_functions;
extern const struct view view_types;

extern const struct view view_log;
extern const struct view view_processes;

/* The views in tab order. */
extern const struct view *const views[];
extern const int views_count;

/* The help overlay: drawn over any view (view_help.c), GLOBAL (the keys of
 * every view) first. */
void view_help_draw(struct app *app, const struct binding *global);

/* The keys of every view (app.c). */
extern const struct binding app_keys[];

#endif
