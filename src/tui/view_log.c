/*
 * view_log.c - the tail of the program's output under `pmt-top run`/`demo`.
 *
 * The child writes into a log file (the TUI owns the terminal); this view reads
 * the file's last screenful on each draw, from its end, so a huge log costs no
 * more than a small one. Below it, pmt-top's own messages, each whole (the
 * status line shows only the newest, for a while).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "tui/app.h"
#include "tui/keys.h"
#include "tui/msgpanel.h"
#include "tui/screen.h"
#include "tui/view.h"

#define LOG_TAIL_BYTES (256 * 1024)

/* pmt-top's own messages, whole, in rows [top, top + rows): a header, then
 * the newest that fit. */
static void draw_messages(struct app *app, int top, int rows, int cols)
{
	screen_fill(top, 0, cols, THEME_TABLE_HEADER);
	screen_text(top, 1, cols - 2, THEME_TABLE_HEADER, false, "pmt-top's messages, newest last (M: all of them)");
	if (msglog_count(&app->msgs) == 0)
		screen_text(top + 1, 1, cols - 2, THEME_DIM, false, "(none yet)");
	else
		msgpanel_draw_list(&app->msgs, top + 1, rows - 1, 1, cols - 2, 0);
}

static void log_draw(struct app *app, int top, int rows, int cols)
{
	if (app->log_path[0] == '\0') {
		int n = screen_wrap(top, 1, cols - 2, 3, THEME_DIM,
				    "No program output here: pmt-top did not start this process "
				    "(under `pmt-top run -- CMD` or `pmt-top demo` it shows here).", "...");
		draw_messages(app, top + n + 1, rows - n - 1, cols);
		return;
	}
	/* The messages below the output, in up to a third of the view. */
	int mrows = msgpanel_list_rows(&app->msgs, cols - 2) + 1;
	if (mrows < 2)
		mrows = 2;
	if (mrows > rows / 3)
		mrows = rows / 3;
	if (mrows >= 2) {
		draw_messages(app, top + rows - mrows, mrows, cols);
		rows -= mrows;
	}
	screen_fill(top, 0, cols, THEME_TABLE_HEADER);
	screen_textf(top, 1, cols - 2, THEME_TABLE_HEADER, "output of pid %d: %s", (int)app->pid, app->log_path);
	/* Opened again at every redraw: never wait on whatever may be there now. */
	int fd = open(app->log_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		screen_text(top + 1, 1, cols - 2, THEME_WARNING, false, "the log file cannot be read");
		return;
	}
	off_t size = st.st_size;
	off_t from = size > LOG_TAIL_BYTES ? size - LOG_TAIL_BYTES : 0;
	char *buf = xmalloc(LOG_TAIL_BYTES + 1);
	ssize_t n = pread(fd, buf, LOG_TAIL_BYTES, from);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';

	/* Walk back from the end to find the last rows-1 lines. */
	int want = rows - 1;
	char *end = buf + n;
	if (end > buf && end[-1] == '\n')
		*--end = '\0';
	char *p = end;
	int lines = 0;
	while (p > buf && lines < want) {
		p--;
		if (*p == '\n')
			lines++;
	}
	if (*p == '\n')
		p++;
	int y = top + 1;
	while (p && *p && y < top + rows) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		for (char *q = p; *q; q++)
			if (*q == '\t' || *q == '\r')
				*q = ' ';
		screen_text(y++, 0, cols, THEME_NORMAL, false, p);
		p = nl ? nl + 1 : NULL;
	}
	if (n == 0)
		screen_text(top + 1, 1, cols - 2, THEME_DIM, false, "(no output yet)");
	free(buf);
}

static const struct binding log_keys[] = {
	{ "(view)", "the last lines the program wrote (stdout and stderr), under pmt-top run or demo; below them "
	  "pmt-top's own messages, whole (M shows all of them)", NULL, NULL, { 0 } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

const struct view view_log = {
	.name = "Output",
	.draw = log_draw,
	.keys = log_keys,
};
