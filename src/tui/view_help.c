/*
 * view_help.c - the help overlay: every key, global ones first, then the
 * current view's, from their binding tables. Drawn over whatever view is
 * showing; any key closes it.
 */
#include <curses.h>
#include <string.h>

#include "tui/app.h"
#include "tui/keys.h"
#include "tui/screen.h"
#include "tui/view.h"

static int count_lines(const struct binding *t)
{
	int n = 0;
	for (; t && t->keys; t++)
		n += t->help != NULL;
	return n;
}

static void draw_lines(const struct binding *t, int *y, int x, int w, int ymax)
{
	for (; t && t->keys && *y < ymax; t++) {
		if (!t->help)
			continue;
		screen_fill(*y, x, w, THEME_NORMAL);
		screen_text(*y, x + 1, 12, THEME_HELP_KEY, false, t->keys);
		screen_text(*y, x + 14, w - 15, THEME_NORMAL, false, t->help);
		(*y)++;
	}
}

void view_help_draw(struct app *app, const struct binding *global)
{
	const struct view *v = views[app->view];
	int n = count_lines(global) + count_lines(v->keys) + 4;
	int w = COLS - 4 < 76 ? COLS - 4 : 76;
	int h = n < LINES - 2 ? n : LINES - 2;
	int x = (COLS - w) / 2, y = (LINES - h) / 2, ymax = y + h - 1;

	screen_fill(y, x, w, THEME_TABLE_HEADER);
	screen_text(y, x + 1, w - 2, THEME_TABLE_HEADER, false, "pmt-top keys (any key closes)");
	int row = y + 1;
	draw_lines(global, &row, x, w, ymax);
	if (row < ymax) {
		screen_fill(row, x, w, THEME_NORMAL);
		screen_textf(row++, x + 1, w - 2, THEME_TITLE, "%s view", v->name);
	}
	draw_lines(v->keys, &row, x, w, ymax);
	for (; row <= ymax; row++)
		screen_fill(row, x, w, THEME_NORMAL);
}
