/*
 * screen.c - curses setup, restore on every path, colours (see screen.h).
 */
#include "tui/screen.h"

#include "base/xalloc.h"
#include "base/strsafe.h"
#include "tui/textwrap.h"

#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdint.h>
#include <wchar.h>

volatile sig_atomic_t screen_quit_signal;

static bool active;
static bool colour;
static bool utf8_locale; /* the terminal takes UTF-8 */
static int role_attr[THEME_ROLE_COUNT];

/* The frame being drawn and the one on the terminal. Views draw into `cur`;
 * screen_end_frame writes to curses only the cells that differ from `prev`,
 * so an unchanged screen costs a memcmp, and a scrolling graph costs only its
 * changed cells, in CPU and in bytes sent over a slow link. */
struct cell {
	uint32_t cp;   /* code point; 0 = right half of a wide character */
	uint16_t role;
	uint16_t pad;
};
static struct cell *cur, *prev;
static int frame_rows, frame_cols;

#define CELL_INVALID 0xFFFFFFFFu

static void invalidate(void)
{
	for (int i = 0; prev && i < frame_rows * frame_cols; i++)
		prev[i].cp = CELL_INVALID;
}

void screen_begin_frame(void)
{
	if (LINES != frame_rows || COLS != frame_cols || cur == NULL) {
		free(cur);
		free(prev);
		frame_rows = LINES > 0 ? LINES : 1;
		frame_cols = COLS > 0 ? COLS : 1;
		size_t n = (size_t)frame_rows * (size_t)frame_cols;
		cur = calloc(n, sizeof *cur);
		prev = calloc(n, sizeof *prev);
		if (cur == NULL || prev == NULL) {
			screen_restore();
			fputs("pmt-top: out of memory\n", stderr);
			abort();
		}
		invalidate();
		clearok(stdscr, TRUE);
	}
	for (int i = 0; i < frame_rows * frame_cols; i++)
		cur[i] = (struct cell){ ' ', THEME_NORMAL, 0 };
}

void screen_end_frame(void)
{
	int attr = -1;
	for (int y = 0; y < frame_rows; y++) {
		struct cell *c = cur + y * frame_cols, *p = prev + y * frame_cols;
		if (memcmp(c, p, (size_t)frame_cols * sizeof *c) == 0)
			continue;
		for (int x = 0; x < frame_cols; x++) {
			if (c[x].cp == p[x].cp && c[x].role == p[x].role)
				continue;
			if (c[x].cp == 0)
				continue; /* covered by the wide character to its left */
			if (role_attr[c[x].role] != attr) {
				attr = role_attr[c[x].role];
				attrset(attr);
			}
			if (c[x].cp < 0x80) {
				mvaddch(y, x, (chtype)c[x].cp);
			} else {
				wchar_t s[2] = { (wchar_t)c[x].cp, 0 };
				mvaddnwstr(y, x, s, 1);
			}
		}
		memcpy(p, c, (size_t)frame_cols * sizeof *c);
	}
	attrset(A_NORMAL);
	wnoutrefresh(stdscr);
	doupdate();
}

void screen_invalidate(void)
{
	invalidate();
	clearok(stdscr, TRUE);
}

/* Put one cell of the frame being drawn. */
static void put(int y, int x, uint32_t cp, enum theme_role role)
{
	if (cur == NULL || y < 0 || y >= frame_rows || x < 0 || x >= frame_cols)
		return;
	cur[y * frame_cols + x] = (struct cell){ cp, (uint16_t)role, 0 };
}

void screen_restore(void)
{
	if (!active)
		return;
	active = false;
	curs_set(1);
	endwin();
	free(cur);
	free(prev);
	cur = prev = NULL;
	frame_rows = frame_cols = 0;
}

static void on_quit(int sig)
{
	screen_quit_signal = sig;
}

static void on_crash(int sig)
{
	/* Not async-signal-safe, but the process is dying: giving the user their
	 * terminal back is worth the risk (htop does the same). */
	screen_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

int screen_init(bool *utf8, char *err, size_t errlen)
{
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		snprintf(err, errlen, "the interactive view needs a terminal "
			 "(for scripts use pmt-top snapshot/functions/diff)");
		return -1;
	}
	setlocale(LC_ALL, "");
	*utf8 = utf8_locale = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
	if (getenv("ESCDELAY") == NULL)
		setenv("ESCDELAY", "25", 1);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_quit;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_RESETHAND;
	int crash[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
	for (size_t i = 0; i < sizeof crash / sizeof crash[0]; i++)
		sigaction(crash[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (initscr() == NULL) {
		snprintf(err, errlen, "cannot initialise the terminal (is TERM set?)");
		return -1;
	}
	active = true;
	atexit(screen_restore);
	xalloc_on_die(screen_restore);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	/* No typeahead checks while refreshing: they cost a poll() every few
	 * cells and split the output into many small writes. The main loop reads
	 * keys between frames anyway. */
	typeahead(-1);
	curs_set(0);
	colour = has_colors() && getenv("NO_COLOR") == NULL;
	if (colour) {
		start_color();
		use_default_colors();
	}
	return 0;
}

bool screen_has_colour(void)
{
	return colour;
}

/* Map a theme colour onto what the terminal has. Bright colours on an
 * 8-colour terminal become the base colour plus bold. */
static short fit_colour(short c, int *extra)
{
	if (c < 0 || c < COLORS)
		return c;
	if (c < 16) {
		*extra |= A_BOLD;
		return (short)(c - 8);
	}
	/* 256-colour cube entries on a small terminal: nearest basic hue. */
	static const short basic[] = { COLOR_BLACK, COLOR_RED, COLOR_GREEN, COLOR_YELLOW,
				       COLOR_BLUE, COLOR_MAGENTA, COLOR_CYAN, COLOR_WHITE };
	if (c >= 232)
		return c >= 244 ? COLOR_WHITE : COLOR_BLACK;
	int v = c - 16, r = v / 36, g = v / 6 % 6, b = v % 6;
	int idx = (r >= 3 ? 1 : 0) | (g >= 3 ? 2 : 0) | (b >= 3 ? 4 : 0);
	return basic[idx];
}

void screen_apply_theme(const struct theme *t)
{
	for (int r = 0; r < THEME_ROLE_COUNT; r++) {
		const struct theme_style *s = &t->style[r];
		int a = 0;
		if (s->attrs & THEME_ATTR_BOLD)
			a |= A_BOLD;
		if (s->attrs & THEME_ATTR_DIM)
			a |= A_DIM;
		if (s->attrs & THEME_ATTR_REVERSE)
			a |= A_REVERSE;
		if (s->attrs & THEME_ATTR_UNDERLINE)
			a |= A_UNDERLINE;
		if (colour && r + 1 < COLOR_PAIRS) {
			short fg = fit_colour(s->fg, &a), bg = fit_colour(s->bg, &a);
			init_pair((short)(r + 1), fg, bg);
			a |= COLOR_PAIR(r + 1);
		}
		role_attr[r] = a;
	}
	if (active)
		bkgdset(' ' | role_attr[THEME_NORMAL]);
	/* Same roles, new attributes: every cell must be written again. */
	invalidate();
}

int screen_attr(enum theme_role role)
{
	return role_attr[role];
}

int screen_cp_width(uint32_t cp)
{
	int cw;
	if (cp < 0x80 || !strsafe_cp_ok(cp) || !utf8_locale || (cw = wcwidth((wchar_t)cp)) < 1 || cw > 2)
		return 1;
	return cw;
}

/* Rows kept of one wrapped text: more than a screen has. */
#define WRAP_ROWS_MAX 512

int screen_wrap_rows(int w, const char *text)
{
	size_t n = textwrap(text, w, screen_cp_width, NULL, 0);
	return n > WRAP_ROWS_MAX ? WRAP_ROWS_MAX : (int)n;
}

int screen_text_cells(const char *text)
{
	int w = 0;
	for (size_t left = strlen(text), n; left > 0; text += n, left -= n)
		w += screen_cp_width(strsafe_decode(text, left, &n));
	return w;
}

int screen_wrap(int y, int x, int w, int maxrows, enum theme_role role, const char *text, const char *more)
{
	if (maxrows <= 0 || w <= 0)
		return 0;
	if (maxrows > WRAP_ROWS_MAX)
		maxrows = WRAP_ROWS_MAX;
	struct textwrap_row *rows = xcalloc((size_t)maxrows, sizeof *rows);
	size_t need = textwrap(text, w, screen_cp_width, rows, (size_t)maxrows);
	int drawn = need < (size_t)maxrows ? (int)need : maxrows;
	for (int i = 0; i < drawn; i++) {
		if (i < maxrows - 1 || need <= (size_t)maxrows) {
			screen_textn(y + i, x, w, role, false, text + rows[i].start, rows[i].len);
			continue;
		}
		/* The last row of a text that needs more: what fits before the
		 * marker, broken at a space too, then the marker. */
		const char *rest = text + rows[i].start;
		int mw = screen_text_cells(more), used = 0;
		struct textwrap_row r;
		if (w - mw - 1 > 0 && textwrap(rest, w - mw - 1, screen_cp_width, &r, 1) > 0)
			used = screen_textn(y + i, x, w - mw - 1, role, false, rest + r.start, r.len) + 1;
		screen_text(y + i, x + used, w - used, role, false, more);
	}
	free(rows);
	return drawn;
}

int screen_text(int y, int x, int w, enum theme_role role, bool pad, const char *text)
{
	return screen_textn(y, x, w, role, pad, text, strlen(text));
}

int screen_textn(int y, int x, int w, enum theme_role role, bool pad, const char *text, size_t len)
{
	if (w <= 0 || y < 0 || y >= frame_rows || x >= frame_cols || x < 0)
		return 0;
	if (x + w > frame_cols)
		w = frame_cols - x;
	int used = 0;
	const char *p = text;
	size_t left = len;
	while (left > 0 && used < w) {
		unsigned char b = (unsigned char)*p;
		if (b >= 0x20 && b < 0x7f) { /* most text is ASCII */
			put(y, x + used++, b, role);
			p++;
			left--;
			continue;
		}
		/* Text is UTF-8 whatever the locale (it comes from the target or
		 * from us); strsafe decides what may reach the terminal, and a
		 * terminal that is not UTF-8 gets '?' for anything beyond ASCII. */
		size_t n;
		uint32_t cp = strsafe_decode(p, left, &n);
		int cw = 1;
		if (!strsafe_cp_ok(cp) || !utf8_locale || (cw = wcwidth((wchar_t)cp)) < 1 || cw > 2) {
			cp = '?';
			cw = 1;
		}
		if (used + cw > w)
			break;
		put(y, x + used, cp, role);
		if (cw == 2)
			put(y, x + used + 1, 0, role);
		used += cw;
		p += n;
		left -= n;
	}
	if (pad)
		for (int i = used; i < w; i++)
			put(y, x + i, ' ', role);
	return used;
}

int screen_textf(int y, int x, int w, enum theme_role role, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return screen_text(y, x, w, role, false, buf);
}

void screen_fill(int y, int x, int w, enum theme_role role)
{
	screen_text(y, x, w, role, true, "");
}

void screen_glyph(int y, int x, unsigned cp, enum theme_role role)
{
	put(y, x, strsafe_cp_ok(cp) && (cp < 0x80 || utf8_locale) ? cp : '?', role);
}
