/*
 * location.h - how a tracemalloc group's place in the code is shown, and the
 * source text behind a frame.
 */
#ifndef PMT_TUI_LOCATION_H
#define PMT_TUI_LOCATION_H

#include <stddef.h>
#include <sys/types.h>

#include "snapshot/snapshot.h"

/* "path/to/file.py:123" for the group's first frame (no ":line" for the
 * filename key, "+N" appended for longer tracebacks, " [native]" for what
 * native code called from there allocated), cut from the left with "..." to
 * fit width columns. */
void location_format(char *buf, size_t len, const struct snapshot_group *g, int width);

/* The text matched by the views' filter: every frame as "file:line",
 * separated by newlines, and a line "[native]" for a native group. Returns
 * buf. */
char *location_filter_text(char *buf, size_t len, const struct snapshot_group *g);

/* Line `lineno` of `file` as the process pid sees it (through
 * /proc/PID/root, so containers work), stripped; "" when unreadable. */
void location_source_line(pid_t pid, const char *file, unsigned lineno, char *buf, size_t len);

#endif
