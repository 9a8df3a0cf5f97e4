/*
 * graph.h - values to glyphs for the memory graph (no curses here).
 *
 * A pure layer that the painter (graph_paint in view_overview.c) turns into
 * screen cells: history -> per-column values (graph_bucket), values -> axis
 * (graph_axis_nice), values -> cells of braille or ASCII glyphs (graph_render).
 * Kept free of curses so it can be unit-tested.
 */
#ifndef PMT_TUI_GRAPH_H
#define PMT_TUI_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proc/history.h"

enum graph_style {
	GRAPH_BRAILLE, /* 2x4 dots per cell, UTF-8 terminals */
	GRAPH_ASCII,   /* 1 column per cell, 3 levels per cell */
};

enum graph_series {
	GRAPH_NONE = 0,
	GRAPH_AREA = 1, /* first series: filled area (RSS) */
	GRAPH_LINE = 2, /* second series: a line drawn over the area (heap) */
};

struct graph_cell {
	uint32_t ch;     /* Unicode code point (ASCII in GRAPH_ASCII) */
	uint8_t series;  /* enum graph_series: which colour to use */
};

struct graph_axis {
	double lo, hi, step; /* ticks at lo, lo+step, ... hi */
};

/* Columns of data per cell for a style (2 for braille, 1 for ASCII). */
int graph_cols_per_cell(enum graph_style st);

/* Bucket the history over [t0, t1) into n columns: each column gets the largest
 * value of the points inside it; an empty column repeats the last earlier point
 * when it lies within `hold` seconds, else NAN (nothing drawn). A gap point
 * ends the value before it. */
void graph_bucket(const struct history *h, double t0, double t1, double hold, size_t n, double *out);

/* Smallest and largest finite values of v[0..n); returns false if none. */
bool graph_range(const double *v, size_t n, double *min, double *max);

/* A "nice" axis in binary units (2^n x 1024^k steps) covering
 * [vmin, vmax] with at most max_ticks intervals. */
void graph_axis_nice(double vmin, double vmax, int max_ticks, struct graph_axis *ax);

/* Render into cells[h][w] (row 0 at the top). area and line each hold
 * w * graph_cols_per_cell(st) values, or are NULL; NAN values draw nothing. */
void graph_render(enum graph_style st, int w, int h, const double *area,
		  const double *line, const struct graph_axis *ax,
		  struct graph_cell *cells);

#endif
