/*
 * view_help.c - the help overlay: every key, global ones first, then the
 * current view's, from their binding tables, each line whole (wrapped beside
 * its keys). Drawn over whatever view is showing; when it is taller than the
 * screen the arrows and PgUp/PgDn scroll it, and any other key closes it.
 */
#include <curses.h>
#include <string.h>

#include "tui/app.h"
#include "tui/keys.h"
#include "tui/screen.h"
#include "tui/textwrap.h"
#include "tui/view.h"

#define KEYS_W 13 /* the keys column, then the help text */

/* Rows the help of table T takes at width W (the box's inside). */
static int count_rows(const struct binding *t, int w)
{
	int n = 0;
	for (; t && t->keys; t++) {
		if (!t->help)
			continue;
		int k = screen_wrap_rows(w - KEYS_W - 1, t->help);
		n += k > 1 ? k : 1;
	}
	return n;
}

/* TEXT wrapped into rows of W cells from row Y, drawing only the rows in
 * [y0, ymax). */
static void help_rows(int y, int x, int w, int y0, int ymax, const char *text)
{
	struct textwrap_row r[32];
	size_t n = textwrap(text, w, screen_cp_width, r, 32);
	for (size_t i = 0; i < n && i < 32; i++)
		if (y + (int)i >= y0 && y + (int)i < ymax)
			screen_textn(y + (int)i, x, w, THEME_NORMAL, false, text + r[i].start, r[i].len);
}

/* Draw the help of table T, each line whole (wrapped beside its keys), from
 * the help's row *ROW on; rows before FIRST are scrolled away, rows at or
 * past YMAX not drawn. */
static void draw_lines(const struct binding *t, int *row, int first, int x, int w, int y0, int ymax)
{
	for (; t && t->keys; t++) {
		if (!t->help)
			continue;
		int n = screen_wrap_rows(w - KEYS_W - 1, t->help);
		if (n < 1)
			n = 1;
		int y = y0 + *row - first;
		if (y + n > y0 && y < ymax) {
			for (int r = 0; r < n; r++)
				if (y + r >= y0 && y + r < ymax)
					screen_fill(y + r, x, w, THEME_NORMAL);
			if (y >= y0)
				screen_text(y, x + 1, KEYS_W - 1, THEME_HELP_KEY, false, t->keys);
			help_rows(y, x + KEYS_W + 1, w - KEYS_W - 1, y0, ymax, t->help);
		}
		*row += n;
	}
}

void view_help_draw(struct app *app, const struct binding *global)
{
	const struct view *v = views[app->view];
	int w = COLS - 4 < 96 ? COLS - 4 : 96;
	int body = count_rows(global, w - 1) + 1 + count_rows(v->keys, w - 1);
	int n = body + 2;
	int h = n < LINES - 2 ? n : LINES - 2;
	int x = (COLS - w) / 2, y = (LINES - h) / 2, ymax = y + h - 1;
	int page = h - 2; /* the title above, a blank row below */

	app->help_scroll_max = body > page ? body - page : 0;
	if (app->help_scroll > app->help_scroll_max)
		app->help_scroll = app->help_scroll_max;
	screen_fill(y, x, w, THEME_TABLE_HEADER);
	screen_text(y, x + 1, w - 2, THEME_TABLE_HEADER, false,
		    app->help_scroll_max ? "pmt-top keys (arrows, PgUp/PgDn scroll; any other key closes)"
					 : "pmt-top keys (any key closes)");
	for (int r = y + 1; r <= ymax; r++)
		screen_fill(r, x, w, THEME_NORMAL);
	int row = 0, first = app->help_scroll;
	draw_lines(global, &row, first, x, w - 1, y + 1, ymax);
	int ty = y + 1 + row - first;
	if (ty > y && ty < ymax)
		screen_textf(ty, x + 1, w - 2, THEME_TITLE, "%s view", v->name);
	row++;
	draw_lines(v->keys, &row, first, x, w - 1, y + 1, ymax);
	if (app->help_scroll < app->help_scroll_max)
		screen_text(ymax, x + 1, w - 2, THEME_DIM, false, "(more below: Down, PgDn)");
}
