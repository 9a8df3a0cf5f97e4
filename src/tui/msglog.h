/*
 * msglog.h - the messages pmt-top showed in the status line, kept whole.
 *
 * A message may be longer than the status line can hold, and an info
 * message goes away after a few seconds: the log keeps the newest ones in
 * full, for the message panel (M) and the Output view. A message that
 * repeats the one before it (an interval stepped twice, a retry) counts one
 * more time instead of taking a new entry. Texts are kept as given: they are
 * sanitised where they are drawn (screen_text), like every other text.
 * Owned by the UI thread; no curses here.
 */
#ifndef PMT_TUI_MSGLOG_H
#define PMT_TUI_MSGLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define MSGLOG_MAX 64          /* messages kept: the oldest go first */
#define MSGLOG_TEXT_MAX 4096   /* bytes kept of one message (longer: cut, ending in "...") */

struct msglog_entry {
	char *text;        /* owned; never NULL */
	bool error;
	time_t wall;       /* when it was (last) said */
	unsigned repeat;   /* 1, or how many times it was said in a row */
};

struct msglog {
	struct msglog_entry e[MSGLOG_MAX];
	size_t first;      /* index of the oldest */
	size_t n;
	unsigned long added; /* messages ever added (repeats included): a change counter */
};

void msglog_init(struct msglog *log);
void msglog_done(struct msglog *log);

/* Adds TEXT (copied; NULL reads as ""). Returns the entry now newest. */
const struct msglog_entry *msglog_add(struct msglog *log, bool error, const char *text, time_t wall);

/* Entries kept, and entry I of them (0 = oldest), or NULL past the end. */
size_t msglog_count(const struct msglog *log);
const struct msglog_entry *msglog_get(const struct msglog *log, size_t i);

/* The text of entry E as shown: with "(N times)" when it repeated.
 * Owned by the caller (free). */
char *msglog_text(const struct msglog_entry *e);

/* The newest entry, or NULL. */
const struct msglog_entry *msglog_last(const struct msglog *log);

#endif
