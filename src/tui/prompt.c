/*
 * prompt.c - one-line text input (see prompt.h).
 */
#include "tui/prompt.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "tui/screen.h"

void prompt_open(struct prompt *p, const char *label, const char *initial)
{
	p->active = true;
	snprintf(p->label, sizeof p->label, "%s", label);
	snprintf(p->buf, sizeof p->buf, "%s", initial ? initial : "");
	p->len = strlen(p->buf);
}

enum prompt_result prompt_key(struct prompt *p, int ch)
{
	switch (ch) {
	case 27: /* Esc */
		p->active = false;
		return PROMPT_CANCEL;
	case '\r':
	case '\n':
	case KEY_ENTER:
		p->active = false;
		return PROMPT_DONE;
	case KEY_BACKSPACE:
	case 127:
	case 8:
		/* Drop one UTF-8 character: continuation bytes, then its lead. */
		while (p->len > 0 && ((unsigned char)p->buf[p->len - 1] & 0xC0) == 0x80)
			p->len--;
		if (p->len > 0)
			p->len--;
		p->buf[p->len] = '\0';
		return PROMPT_EDITING;
	case 21: /* ^U */
		p->len = 0;
		p->buf[0] = '\0';
		return PROMPT_EDITING;
	default:
		if (ch >= 32 && ch < 256 && ch != 127 && p->len + 1 < sizeof p->buf) {
			p->buf[p->len++] = (char)ch;
			p->buf[p->len] = '\0';
		}
		return PROMPT_EDITING;
	}
}

void prompt_draw(const struct prompt *p)
{
	int y = LINES - 1;
	screen_fill(y, 0, COLS, THEME_STATUS);
	int lw = screen_text_cells(p->label), bw = screen_text_cells(p->buf);
	if (lw + bw + 1 <= COLS) {
		int x = screen_text(y, 0, COLS, THEME_STATUS, false, p->label);
		x += screen_text(y, x, COLS - x, THEME_STATUS, false, p->buf);
		screen_text(y, x, COLS - x, THEME_SELECTION, false, " ");
		return;
	}
	/* Too long for the line: the typing goes on at the right edge. */
	int x = screen_text(y, 0, lw < COLS / 2 ? lw : COLS / 2, THEME_STATUS, false, p->label);
	x += screen_text(y, x, 1, THEME_STATUS, false, "<");
	const char *tail = p->buf;
	while (*tail && screen_text_cells(tail) > COLS - x - 1) {
		tail++;
		while (((unsigned char)*tail & 0xC0) == 0x80)
			tail++;
	}
	x += screen_text(y, x, COLS - x - 1, THEME_STATUS, false, tail);
	screen_text(y, x, COLS - x, THEME_SELECTION, false, " ");
}
