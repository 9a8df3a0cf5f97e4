/*
 * history.h - a time series behind the graph: RSS (from /proc samples) and
 * the traced heap (from the agent's status pushes, at their own times) are
 * two of them.
 *
 * Bounded memory whatever the session length: when the buffer is full, adjacent
 * pairs of points are merged (keeping the larger value, which is what a memory
 * graph must not lose) and the resolution halves. Owned by the UI thread.
 */
#ifndef PMT_PROC_HISTORY_H
#define PMT_PROC_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct history_point {
	double t;       /* monotonic seconds */
	uint64_t v;     /* bytes */
	bool gap;       /* no value from here on (the heap: tracing went off) */
};

struct history {
	struct history_point *points;
	size_t len, cap;
	unsigned merges; /* how many times the resolution was halved */
};

/* cap must be even and >= 4. Points must come in time order. */
void history_init(struct history *h, size_t cap);
void history_done(struct history *h);
void history_append(struct history *h, const struct history_point *p);

/* Index of the first point with t >= t0 (len when none). */
size_t history_lower_bound(const struct history *h, double t0);

#endif
