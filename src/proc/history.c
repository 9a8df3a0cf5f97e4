/*
 * history.c - bounded time series (see history.h).
 */
#include "proc/history.h"

#include <stdlib.h>

#include "base/xalloc.h"

void history_init(struct history *h, size_t cap)
{
	if (cap < 4)
		cap = 4;
	cap &= ~(size_t)1;
	h->points = xcalloc(cap, sizeof *h->points);
	h->len = 0;
	h->cap = cap;
	h->merges = 0;
}

void history_done(struct history *h)
{
	free(h->points);
	h->points = NULL;
	h->len = h->cap = 0;
}

/* Halve the resolution: each pair becomes one point at the later time with the
 * larger values. */
static void history_merge(struct history *h)
{
	size_t out = 0;
	for (size_t i = 0; i + 1 < h->len; i += 2) {
		struct history_point a = h->points[i], b = h->points[i + 1];
		struct history_point m = b;
		if (m.gap || (!a.gap && a.v > m.v))
			m.v = a.gap ? m.v : a.v;
		m.gap = a.gap && b.gap;
		h->points[out++] = m;
	}
	if (h->len % 2)
		h->points[out++] = h->points[h->len - 1];
	h->len = out;
	h->merges++;
}

void history_append(struct history *h, const struct history_point *p)
{
	if (h->len == h->cap)
		history_merge(h);
	h->points[h->len++] = *p;
}

size_t history_lower_bound(const struct history *h, double t0)
{
	size_t lo = 0, hi = h->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->points[mid].t < t0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}
