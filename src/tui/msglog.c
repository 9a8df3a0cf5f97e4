/*
 * msglog.c - the messages shown, kept whole (see msglog.h).
 */
#include "tui/msglog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

void msglog_init(struct msglog *log)
{
	memset(log, 0, sizeof *log);
}

void msglog_done(struct msglog *log)
{
	for (size_t i = 0; i < log->n; i++)
		free(log->e[(log->first + i) % MSGLOG_MAX].text);
	memset(log, 0, sizeof *log);
}

/* A copy of TEXT of at most MSGLOG_TEXT_MAX bytes, cut between whole UTF-8
 * characters. */
static char *copy_text(const char *text)
{
	size_t n = strlen(text);
	if (n < MSGLOG_TEXT_MAX)
		return xstrdup(text);
	n = MSGLOG_TEXT_MAX - 4;
	while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
		n--; /* not inside a character */
	char *s = xmalloc(n + 4);
	memcpy(s, text, n);
	memcpy(s + n, "...", 4);
	return s;
}

const struct msglog_entry *msglog_add(struct msglog *log, bool error, const char *text, time_t wall)
{
	struct msglog_entry *last = log->n ? &log->e[(log->first + log->n - 1) % MSGLOG_MAX] : NULL;
	char *copy = copy_text(text ? text : "");
	log->added++;
	if (last && last->error == error && strcmp(last->text, copy) == 0) {
		free(copy);
		last->repeat++;
		last->wall = wall;
		return last;
	}
	if (log->n == MSGLOG_MAX) {
		free(log->e[log->first].text);
		log->first = (log->first + 1) % MSGLOG_MAX;
		log->n--;
	}
	struct msglog_entry *e = &log->e[(log->first + log->n) % MSGLOG_MAX];
	*e = (struct msglog_entry){ .text = copy, .error = error, .wall = wall, .repeat = 1 };
	log->n++;
	return e;
}

size_t msglog_count(const struct msglog *log)
{
	return log->n;
}

const struct msglog_entry *msglog_get(const struct msglog *log, size_t i)
{
	return i < log->n ? &log->e[(log->first + i) % MSGLOG_MAX] : NULL;
}

const struct msglog_entry *msglog_last(const struct msglog *log)
{
	return log->n ? msglog_get(log, log->n - 1) : NULL;
}

char *msglog_text(const struct msglog_entry *e)
{
	if (e->repeat <= 1)
		return xstrdup(e->text);
	size_t n = strlen(e->text) + 32;
	char *s = xmalloc(n);
	snprintf(s, n, "%s (%u times)", e->text, e->repeat);
	return s;
}
