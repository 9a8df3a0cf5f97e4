/*
 * growth.c - per-line size history and the "grows steadily" score (see
 * growth.h).
 */
#include "tui/growth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

/* Twice the most lines: probes stay short. */
#define INDEX_CAP 4096u

bool growth_series_score(const double *t, const double *v, size_t n, struct growth_score *out)
{
	double first = 0, prev = 0, gains = 0, biggest = 0;
	double sn = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, t0 = 0;
	int grew = 0;
	bool have = false;

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < n; i++) {
		if (isnan(v[i]))
			continue;
		if (!have) {
			first = prev = v[i];
			t0 = t[i];
			have = true;
		} else {
			double d = v[i] - prev;
			out->intervals++;
			if (d > 0) {
				grew++;
				gains += d;
				if (d > biggest)
					biggest = d;
			}
			prev = v[i];
		}
		/* Least squares on (seconds since the first point, size gained
		 * since it): small numbers, no cancellation. */
		double x = t[i] - t0, y = v[i] - first;
		sn += 1;
		sx += x;
		sy += y;
		sxx += x * x;
		sxy += x * y;
	}
	if (out->intervals == 0)
		return false;
	double denom = sn * sxx - sx * sx;
	out->per_min = denom > 0 ? (sn * sxy - sx * sy) / denom * 60.0 : 0;
	out->grew = (double)grew / out->intervals;
	out->kept = gains > 0 ? (prev - first) / gains : 0;
	out->jump = gains > 0 ? biggest / gains : 0;
	out->steady = out->intervals >= GROWTH_MIN_INTERVALS && out->grew >= GROWTH_MIN_GREW &&
		      out->kept >= GROWTH_MIN_KEPT && out->jump <= GROWTH_MAX_JUMP && out->per_min > 0;
	return out->steady;
}

static uint32_t slot_of(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (uint32_t)id & (INDEX_CAP - 1);
}

static void index_rebuild(struct growth *g)
{
	if (g->index == NULL) {
		g->index = xcalloc(INDEX_CAP, sizeof *g->index);
		g->index_cap = INDEX_CAP;
	} else {
		memset(g->index, 0, g->index_cap * sizeof *g->index);
	}
	for (size_t i = 0; i < g->nlines; i++) {
		uint32_t s = slot_of(g->lines[i].id);
		while (g->index[s])
			s = (s + 1) & (INDEX_CAP - 1);
		g->index[s] = (uint32_t)i + 1;
	}
}

/* The line of ID, or NULL; with *SLOT (if not NULL) the index slot where it
 * is or would go. */
static struct growth_line *find(const struct growth *g, uint64_t id, uint32_t *slot)
{
	uint32_t s = slot_of(id);
	if (g->index == NULL)
		return NULL;
	while (g->index[s]) {
		struct growth_line *l = &g->lines[g->index[s] - 1];
		if (l->id == id)
			return l;
		s = (s + 1) & (INDEX_CAP - 1);
	}
	if (slot)
		*slot = s;
	return NULL;
}

void growth_init(struct growth *g)
{
	memset(g, 0, sizeof *g);
}

void growth_done(struct growth *g)
{
	free(g->lines);
	free(g->index);
	memset(g, 0, sizeof *g);
}

void growth_reset(struct growth *g)
{
	growth_done(g);
	growth_init(g);
}

bool growth_begin(struct growth *g, double t)
{
	int s = g->seq, slot = s % GROWTH_POINTS;
	if (s > 0 && t - g->t[(s - 1) % GROWTH_POINTS] < GROWTH_STEP) {
		g->recording = false;
		return false;
	}
	g->t[slot] = t;
	g->seq = s + 1;
	g->recording = true;
	/* The slot held the oldest refresh: forget it, and every line that
	 * was not seen in any refresh still kept. */
	size_t kept = 0;
	for (size_t i = 0; i < g->nlines; i++) {
		struct growth_line *l = &g->lines[i];
		l->v[slot] = NAN;
		if (l->last_seen > s - GROWTH_POINTS)
			g->lines[kept++] = *l;
	}
	if (kept != g->nlines) {
		g->nlines = kept;
		index_rebuild(g);
	}
	return true;
}

void growth_observe(struct growth *g, uint64_t id, uint64_t size)
{
	uint32_t slot = 0;
	if (!g->recording)
		return;
	struct growth_line *l = find(g, id, &slot);
	if (l == NULL) {
		if (g->nlines >= GROWTH_MAX_LINES)
			return;
		if (g->index == NULL) {
			index_rebuild(g);
			slot = slot_of(id);
		}
		if (g->nlines == g->lines_cap) {
			g->lines_cap = g->lines_cap ? g->lines_cap * 2 : 64;
			g->lines = xreallocarray(g->lines, g->lines_cap, sizeof *g->lines);
		}
		l = &g->lines[g->nlines];
		l->id = id;
		for (int i = 0; i < GROWTH_POINTS; i++)
			l->v[i] = NAN;
		g->index[slot] = (uint32_t)++g->nlines;
	}
	l->v[(g->seq - 1) % GROWTH_POINTS] = (double)size;
	l->last_seen = g->seq - 1;
}

bool growth_line_score(const struct growth *g, uint64_t id, struct growth_score *out)
{
	double t[GROWTH_POINTS], v[GROWTH_POINTS];
	const struct growth_line *l = find(g, id, NULL);
	size_t n = 0;
	memset(out, 0, sizeof *out);
	if (l == NULL)
		return false;
	int from = g->seq > GROWTH_POINTS ? g->seq - GROWTH_POINTS : 0;
	for (int s = from; s < g->seq; s++) {
		t[n] = g->t[s % GROWTH_POINTS];
		v[n] = l->v[s % GROWTH_POINTS];
		n++;
	}
	return growth_series_score(t, v, n, out);
}

int growth_history(const struct growth *g)
{
	return g->seq < GROWTH_POINTS ? g->seq : GROWTH_POINTS;
}
