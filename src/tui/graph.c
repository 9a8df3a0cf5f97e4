/*
 * graph.c - braille/ASCII rendering of the memory graph (see graph.h).
 *
 * Braille cells hold 2 columns x 4 rows of dots; U+2800 plus a bit per dot:
 *   left column, top to bottom:  0x01 0x02 0x04 0x40
 *   right column, top to bottom: 0x08 0x10 0x20 0x80
 */
#include "tui/graph.h"

#include "base/xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t braille_bit[2][4] = {
	{ 0x01, 0x02, 0x04, 0x40 },
	{ 0x08, 0x10, 0x20, 0x80 },
};

int graph_cols_per_cell(enum graph_style st)
{
	return st == GRAPH_BRAILLE ? 2 : 1;
}

void graph_bucket(const struct history *h, double t0, double t1, double hold, size_t n, double *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = NAN;
	if (n == 0 || t1 <= t0)
		return;
	double width = (t1 - t0) / (double)n;
	size_t i = history_lower_bound(h, t0);

	/* The last point before the window can fill its first columns. */
	double carry = NAN, carry_t = -INFINITY;
	if (i > 0 && !h->points[i - 1].gap) {
		carry = (double)h->points[i - 1].v;
		carry_t = h->points[i - 1].t;
	}
	for (size_t col = 0; col < n; col++) {
		double end = t0 + width * (double)(col + 1);
		double best = NAN;
		for (; i < h->len && h->points[i].t < end; i++) {
			const struct history_point *p = &h->points[i];
			if (p->gap) {
				carry = NAN;
				continue;
			}
			double v = (double)p->v;
			if (isnan(best) || v > best)
				best = v;
			carry = v;
			carry_t = p->t;
		}
		if (!isnan(best))
			out[col] = best;
		else if (!isnan(carry) && end - width - carry_t <= hold)
			out[col] = carry;
	}
}

bool graph_range(const double *v, size_t n, double *min, double *max)
{
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		if (isnan(v[i]))
			continue;
		if (!any || v[i] < *min)
			*min = v[i];
		if (!any || v[i] > *max)
			*max = v[i];
		any = true;
	}
	return any;
}

void graph_axis_nice(double vmin, double vmax, int max_ticks, struct graph_axis *ax)
{
	/* Powers of two: ticks land on round binary sizes (512 KiB, 1 MiB, ...). */
	static const double mult[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512 };
	if (max_ticks < 1)
		max_ticks = 1;
	if (!(vmax > vmin)) {
		/* Flat data: centre it in a small band. */
		double pad = vmin > 0 ? vmin * 0.05 : 1024;
		vmin -= pad;
		vmax += pad;
	}
	if (vmin < 0)
		vmin = 0;
	double raw = (vmax - vmin) / max_ticks;
	double unit = 1;
	while (raw / unit >= 1024)
		unit *= 1024;
	double step = unit * mult[sizeof mult / sizeof mult[0] - 1];
	for (size_t k = 0; k < sizeof mult / sizeof mult[0]; k++) {
		if (unit * mult[k] >= raw) {
			step = unit * mult[k];
			break;
		}
	}
	ax->step = step;
	ax->lo = floor(vmin / step) * step;
	ax->hi = ceil(vmax / step) * step;
	if (ax->hi <= ax->lo)
		ax->hi = ax->lo + step;
}

/* Level of v in dot rows from the bottom: 0 .. rows. Any value above the
 * axis floor shows at least one dot, so a small process is never blank. */
static int level_of(double v, const struct graph_axis *ax, int rows)
{
	double f = (v - ax->lo) / (ax->hi - ax->lo);
	int lv = (int)lround(f * rows);
	if (lv < 1 && v > ax->lo)
		lv = 1;
	if (lv < 0)
		lv = 0;
	if (lv > rows)
		lv = rows;
	return lv;
}

static void render_braille(int w, int h, const double *area, const double *line,
			   const struct graph_axis *ax, struct graph_cell *cells)
{
	int rows = h * 4;
	uint8_t *abits = xcalloc((size_t)w * h, 1), *lbits = xcalloc((size_t)w * h, 1);
	int prev = -1;
	for (int x = 0; x < w * 2; x++) {
		int cx = x / 2, sub = x % 2;
		if (area && !isnan(area[x])) {
			int lv = level_of(area[x], ax, rows);
			for (int d = 0; d < lv; d++) {
				int r = rows - 1 - d;
				abits[(r / 4) * w + cx] |= braille_bit[sub][r % 4];
			}
		}
		if (line && !isnan(line[x])) {
			int lv = level_of(line[x], ax, rows);
			if (lv < 1)
				lv = 1;
			/* Join to the previous column so steps read as one line. */
			int from = prev < 0 ? lv : prev, lo = from < lv ? from : lv,
			    hi = from < lv ? lv : from;
			if (hi - lo > 1) {
				if (from < lv)
					lo++;
				else
					hi--;
			} else {
				lo = hi = lv;
			}
			for (int d = lo; d <= hi; d++) {
				int r = rows - d;
				lbits[(r / 4) * w + cx] |= braille_bit[sub][r % 4];
			}
			prev = lv;
		} else {
			prev = -1;
		}
	}
	for (int i = 0; i < w * h; i++) {
		if (lbits[i]) {
			cells[i].ch = 0x2800u + lbits[i];
			cells[i].series = GRAPH_LINE;
		} else if (abits[i]) {
			cells[i].ch = 0x2800u + abits[i];
			cells[i].series = GRAPH_AREA;
		} else {
			cells[i].ch = ' ';
			cells[i].series = GRAPH_NONE;
		}
	}
	free(abits);
	free(lbits);
}

static void render_ascii(int w, int h, const double *area, const double *line,
			 const struct graph_axis *ax, struct graph_cell *cells)
{
	static const char partial[] = { ' ', '.', ':' };
	int rows = h * 3;
	for (int i = 0; i < w * h; i++) {
		cells[i].ch = ' ';
		cells[i].series = GRAPH_NONE;
	}
	for (int x = 0; x < w; x++) {
		if (area && !isnan(area[x])) {
			int lv = level_of(area[x], ax, rows);
			for (int r = 0; r < h; r++) {
				int base = (h - 1 - r) * 3; /* levels below this row */
				int fill = lv - base;
				if (fill <= 0)
					continue;
				cells[r * w + x].ch = fill >= 3 ? '|' : (uint32_t)partial[fill];
				cells[r * w + x].series = GRAPH_AREA;
			}
		}
		if (line && !isnan(line[x])) {
			int lv = level_of(line[x], ax, rows);
			int r = h - 1 - (lv > 0 ? (lv - 1) / 3 : 0);
			cells[r * w + x].ch = '*';
			cells[r * w + x].series = GRAPH_LINE;
		}
	}
}

void graph_render(enum graph_style st, int w, int h, const double *area,
		  const double *line, const struct graph_axis *ax,
		  struct graph_cell *cells)
{
	if (w <= 0 || h <= 0)
		return;
	if (st == GRAPH_BRAILLE)
		render_braille(w, h, area, line, ax, cells);
	else
		render_ascii(w, h, area, line, ax, cells);
}
