/*
 * msgpanel.c - the messages, whole (see msgpanel.h).
 */
#include "tui/msgpanel.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/xalloc.h"
#include "tui/screen.h"
#include "tui/textwrap.h"

#define TIME_W 10 /* "12:34:56  " */

/* The rows each message takes at width W (NEED, msglog_count entries),
 * and all of them. */
static int list_rows(const struct msglog *log, int w, int *need)
{
	int total = 0;
	for (size_t i = 0; i < msglog_count(log); i++) {
		char *text = msglog_text(msglog_get(log, i));
		int n = screen_wrap_rows(w - TIME_W, text);
		if (n < 1)
			n = 1;
		if (need)
			need[i] = n;
		total += n;
		free(text);
	}
	return total;
}

int msgpanel_list_rows(const struct msglog *log, int w)
{
	return w - TIME_W < 1 ? 0 : list_rows(log, w, NULL);
}

int msgpanel_draw_list(const struct msglog *log, int top, int rows, int x, int w, int skip)
{
	size_t n = msglog_count(log);
	int tw = w - TIME_W;
	if (n == 0 || tw < 1 || rows < 1)
		return 0;
	int *need = xcalloc(n, sizeof *need);
	int total = list_rows(log, w, need);
	/* Row `first` of the whole list is drawn at `top`. */
	int first = total - rows - skip;
	if (first < 0)
		first = 0; /* they all fit: from the top */
	int row = 0; /* the list's row where entry i starts */
	for (size_t i = 0; i < n; row += need[i], i++) {
		if (row + need[i] <= first || row >= first + rows)
			continue;
		const struct msglog_entry *e = msglog_get(log, i);
		char *text = msglog_text(e);
		enum theme_role role = e->error ? THEME_WARNING : THEME_NORMAL;
		struct textwrap_row *wr = xcalloc((size_t)need[i], sizeof *wr);
		textwrap(text, tw, screen_cp_width, wr, (size_t)need[i]);
		for (int k = 0; k < need[i]; k++) {
			int y = top + row + k - first;
			if (y < top || y >= top + rows)
				continue;
			if (k == 0) {
				char when[16];
				struct tm tm;
				localtime_r(&e->wall, &tm);
				strftime(when, sizeof when, "%H:%M:%S", &tm);
				screen_text(y, x, TIME_W, THEME_DIM, false, when);
			}
			screen_textn(y, x + TIME_W, tw, role, false, text + wr[k].start, wr[k].len);
		}
		free(wr);
		free(text);
	}
	free(need);
	return total;
}

void msgpanel_open(struct msgpanel *p)
{
	p->open = true;
	p->scroll = 0;
}

bool msgpanel_key(struct msgpanel *p, int ch)
{
	if (!p->open)
		return false;
	int page = p->page > 1 ? p->page - 1 : 1;
	switch (ch) {
	case KEY_UP: case 'k':
		p->scroll++;
		break;
	case KEY_DOWN: case 'j':
		p->scroll--;
		break;
	case KEY_PPAGE:
		p->scroll += page;
		break;
	case KEY_NPAGE: case ' ':
		p->scroll -= page;
		break;
	case KEY_HOME: case 'g':
		p->scroll = p->scroll_max;
		break;
	case KEY_END: case 'G':
		p->scroll = 0;
		break;
	case KEY_RESIZE:
		break;
	case 27: case 'q': case 'M': case '\r': case '\n': case KEY_ENTER:
		p->open = false;
		break;
	default:
		break;
	}
	if (p->scroll > p->scroll_max)
		p->scroll = p->scroll_max;
	if (p->scroll < 0)
		p->scroll = 0;
	return true;
}

void msgpanel_draw(struct msgpanel *p, const struct msglog *log, const char *agent, int top, int rows,
		   int cols)
{
	int w = cols, x = 0, y = top, h = rows;
	if (!p->open || w < 20 || h < 3)
		return;
	for (int r = 0; r < h; r++)
		screen_fill(y + r, x, w, THEME_NORMAL);
	/* The agent's state first, whole: the views' header line may not
	 * hold all of it (why it could not attach, and what to do). */
	if (agent && agent[0] && h >= 6) {
		int n = screen_wrap(y, x + 1, w - 2, h / 2, THEME_NORMAL, agent, "...");
		y += n + 1;
		h -= n + 1;
	}
	screen_fill(y, x, w, THEME_TABLE_HEADER);
	screen_text(y, x + 1, w - 2, THEME_TABLE_HEADER, false, "messages, newest last");
	p->page = h - 1;
	if (msglog_count(log) == 0) {
		screen_text(y + 1, x + 1, w - 2, THEME_DIM, false, "no messages yet");
		p->scroll_max = 0;
		return;
	}
	int total = msgpanel_draw_list(log, y + 1, h - 1, x + 1, w - 2, p->scroll);
	p->scroll_max = total > h - 1 ? total - (h - 1) : 0;
	if (p->scroll > p->scroll_max) {
		/* A resize made the list shorter than where it stood. */
		p->scroll = p->scroll_max;
		for (int r = 1; r < h; r++)
			screen_fill(y + r, x, w, THEME_NORMAL);
		msgpanel_draw_list(log, y + 1, h - 1, x + 1, w - 2, p->scroll);
	}
	if (p->scroll > 0) {
		char more[48];
		snprintf(more, sizeof more, " %d more rows below (End) ", p->scroll);
		int mw = (int)strlen(more);
		screen_text(y, x + w - mw - 1, mw, THEME_TABLE_HEADER, true, more);
	}
}
