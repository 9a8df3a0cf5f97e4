/*
 * screen.c - curses setup, restore on every path, colours (see screen.h).
 */
#include "tui/screen.h"

#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

volatile sig_atomic_t screen_quit_signal;

static bool active;
static bool colour;
static int role_attr[THEME_ROLE_COUNT];

void screen_restore(void)
{
	if (!active)
		return;
	active = false;
	curs_set(1);
	endwin();
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
	*utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
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
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
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
}

int screen_attr(enum theme_role role)
{
	return role_attr[role];
}

int screen_text(int y, int x, int w, enum theme_role role, bool pad, const char *text)
{
	if (w <= 0 || y < 0 || y >= LINES || x >= COLS)
		return 0;
	if (x + w > COLS)
		w = COLS - x;
	attrset(role_attr[role]);
	move(y, x);
	int used = 0;
	mbstate_t st;
	memset(&st, 0, sizeof st);
	const char *p = text;
	while (*p && used < w) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, p, strlen(p), &st);
		if (n == (size_t)-1 || n == (size_t)-2) {
			wc = L'?';
			n = 1;
			memset(&st, 0, sizeof st);
		}
		int cw = wcwidth(wc);
		if (cw < 0) {
			wc = L'?';
			cw = 1;
		}
		if (used + cw > w)
			break;
		wchar_t s[2] = { wc, 0 };
		addnwstr(s, 1);
		used += cw;
		p += n;
	}
	if (pad)
		for (; used < w; used++)
			addch(' ');
	attrset(A_NORMAL);
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
	if (y < 0 || y >= LINES || x < 0 || x >= COLS)
		return;
	attrset(role_attr[role]);
	if (cp < 0x80) {
		mvaddch(y, x, (chtype)cp);
	} else {
		wchar_t s[2] = { (wchar_t)cp, 0 };
		mvaddnwstr(y, x, s, 1);
	}
	attrset(A_NORMAL);
}
