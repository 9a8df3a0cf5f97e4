/*
 * tbpanel.h - the traceback panel that Enter opens in the list views: the
 * largest tracebacks whose most recent frame is the selected place, each
 * frame with its source line.
 */
#ifndef PMT_TUI_TBPANEL_H
#define PMT_TUI_TBPANEL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "snapshot/snapshot.h"

#define TBPANEL_MAX 5

struct tbpanel {
	bool open;
	bool loading;             /* waiting for the agent */
	struct snapshot *snap;    /* traceback-keyed snapshot searched (owned) */
	size_t match[TBPANEL_MAX];
	size_t n;
	char file[1024];
	unsigned line;            /* 0: any line of file */
	char note[256];
	pid_t pid;                /* whose files the source lines come from */
	char **src[TBPANEL_MAX];  /* source line of each frame, read once */
};

/* Open for place (file, line) of process pid, waiting for data (tbpanel_set). */
void tbpanel_open(struct tbpanel *p, pid_t pid, const char *file, unsigned line);

/* Hand over the traceback-keyed snapshot to search (ownership taken; NULL
 * with a note when it could not be had). The source lines of the matching
 * tracebacks are read here, once, not on every redraw. */
void tbpanel_set(struct tbpanel *p, struct snapshot *tb, const char *note);

/* Esc/Enter/q close it. Returns true when the key was used (all keys are
 * used while it is open). */
bool tbpanel_key(struct tbpanel *p, int ch);

void tbpanel_draw(const struct tbpanel *p, int top, int rows, int cols);
void tbpanel_done(struct tbpanel *p);

#endif
