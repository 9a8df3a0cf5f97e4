/*
 * msgpanel.h - the messages, whole: the panel M opens over any view, and
 * the list the Output view shows. Every message the status line showed is
 * there in full, wrapped, with its time, newest at the bottom; the panel
 * also shows the agent's state line whole.
 */
#ifndef PMT_TUI_MSGPANEL_H
#define PMT_TUI_MSGPANEL_H

#include <stdbool.h>

#include "tui/msglog.h"

struct msgpanel {
	bool open;
	int scroll;      /* rows scrolled back from the newest */
	int scroll_max;  /* as far back as the last draw could go */
	int page;        /* rows the last draw showed */
};

/* Open, showing the newest messages. */
void msgpanel_open(struct msgpanel *p);

/* Keys while open (all of them are used): arrows, j/k, PgUp/PgDn, Home/End
 * scroll; Esc, q, Enter and M close. Returns true when the key was used. */
bool msgpanel_key(struct msgpanel *p, int ch);

/* The panel over rows [top, top + rows) of a screen COLS wide: AGENT (the
 * agent's state, may be NULL) whole, then the messages. */
void msgpanel_draw(struct msgpanel *p, const struct msglog *log, const char *agent, int top, int rows,
		   int cols);

/*
 * The newest messages of LOG, each in full (wrapped, after its time), in
 * rows [top, top + rows), x to x + w: from the top when they all fit, else
 * the newest ending on the last row, SKIP rows of the newest scrolled away.
 * Returns the rows all of them take.
 */
int msgpanel_draw_list(const struct msglog *log, int top, int rows, int x, int w, int skip);

/* The rows msgpanel_draw_list needs for all of LOG at width W. */
int msgpanel_list_rows(const struct msglog *log, int w);

#endif
