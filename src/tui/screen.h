/*
 * screen.h - the terminal: curses setup and guaranteed restore, colour pairs
 * from a theme, and small drawing helpers shared by the views.
 *
 * The terminal is restored on every exit path: normal return, exit() (atexit),
 * SIGINT/SIGTERM/SIGHUP (a flag the main loop checks), and crashes (a handler
 * that restores and re-raises). Only src/tui includes curses.
 */
#ifndef PMT_TUI_SCREEN_H
#define PMT_TUI_SCREEN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tui/theme.h"

extern volatile sig_atomic_t screen_quit_signal; /* set by SIGINT/SIGTERM/SIGHUP */

/* Enter curses mode. utf8 tells whether the locale is UTF-8. Returns -1 with a
 * reason when stdout is not a terminal. */
int screen_init(bool *utf8, char *err, size_t errlen);

/* Leave curses mode; safe to call more than once and before screen_init. */
void screen_restore(void);

/* Whether colours are used (terminal can, NO_COLOR unset). */
bool screen_has_colour(void);

/* Frames: begin clears the frame being drawn (and adapts to a new terminal
 * size); the drawing calls below fill it; end writes the cells that changed
 * since the last frame and refreshes the terminal. */
void screen_begin_frame(void);
void screen_end_frame(void);
/* Forget what is on the terminal: the next frame writes every cell. */
void screen_invalidate(void);

/* Install a theme's colour pairs; with no colour only its attributes apply. */
void screen_apply_theme(const struct theme *t);

/* The curses attributes (pair + flags) for a role under the applied theme. */
int screen_attr(enum theme_role role);

/* Draw text at (y, x) clipped to width w cells, padding with spaces when pad.
 * Returns the number of cells written. Text is UTF-8; whatever strsafe_cp_ok
 * rejects (controls, C1, bidi, invalid bytes), or what the terminal cannot
 * show, is drawn as '?': this is where all text reaches the terminal. */
int screen_text(int y, int x, int w, enum theme_role role, bool pad, const char *text);

/* screen_text of the LEN bytes at TEXT (no NUL needed). */
int screen_textn(int y, int x, int w, enum theme_role role, bool pad, const char *text, size_t len);

/* printf-style variant of screen_text. */
int screen_textf(int y, int x, int w, enum theme_role role, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* The cells code point CP takes when screen_text draws it (1 or 2; what it
 * draws as '?' takes 1): the measure for textwrap. */
int screen_cp_width(uint32_t cp);

/* The cells TEXT takes on one row. */
int screen_text_cells(const char *text);

/* The rows TEXT needs when wrapped at spaces into rows of W cells. */
int screen_wrap_rows(int w, const char *text);

/*
 * Draw TEXT wrapped at spaces (textwrap.h) into rows of W cells from (y, x),
 * using at most MAXROWS rows. When it needs more, the last row shows as much
 * as fits before MORE (a marker such as "... (M: the whole message)"), so a
 * cut never goes unnoticed. Rows are not padded. Returns the rows drawn.
 */
int screen_wrap(int y, int x, int w, int maxrows, enum theme_role role, const char *text, const char *more);

/* Fill a row segment with spaces in a role's style. */
void screen_fill(int y, int x, int w, enum theme_role role);

/* Put one Unicode code point ('?' when not representable or not safe). */
void screen_glyph(int y, int x, unsigned cp, enum theme_role role);

#endif
