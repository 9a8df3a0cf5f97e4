/*
 * view_overview.c - the face of pmt-top: process header, the RSS graph over
 * time (with the traced heap beside it when known), the memory breakdown,
 * and what the sampled profiler costs the target.
 */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/units.h"
#include "base/monotime.h"
#include "base/xalloc.h"
#include "tui/app.h"
#include "tui/graph.h"
#include "tui/keys.h"
#include "tui/screen.h"
#include "tui/view.h"

#define AXIS_LABEL_W 9

static const char *state_name(char s)
{
	switch (s) {
	case 'R': return "running";
	case 'S': return "sleeping";
	case 'D': return "disk wait";
	case 'Z': return "zombie";
	case 'T': return "stopped";
	case 't': return "traced";
	case 'I': return "idle";
	default: return "";
	}
}

/* Screen row (0 = top of the graph) of value v, as graph_render places it. */
static int row_of(double v, const struct graph_axis *ax, int h, int per_cell)
{
	double f = (v - ax->lo) / (ax->hi - ax->lo);
	int level = (int)lround(f * h * per_cell);
	if (level < 1)
		level = 1;
	if (level > h * per_cell)
		level = h * per_cell;
	return h - 1 - (level - 1) / per_cell;
}

static void draw_header(struct app *app, int y, int cols, int arows)
{
	char a[64], b[64];
	int x = 0;
	bool details = arows > 0;
	for (int r = 0; r < (details ? 2 : 1); r++)
		screen_fill(y + r, 0, cols, THEME_NORMAL);
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "PID ");
	x += screen_textf(y, x, cols - x, THEME_HEADER_VALUE, "%d", (int)app->pid);
	x += screen_text(y, x, cols - x, THEME_NORMAL, false, "  ");
	screen_text(y, x, cols - x, THEME_NORMAL, false, app->cmdline);
	if (!details)
		return;

	y++;
	x = 0;
	const char *st = app->gone ? "exited" : state_name(app->last.state);
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "state ");
	x += screen_text(y, x, cols - x, app->gone ? THEME_WARNING : THEME_HEADER_VALUE, false,
			 st[0] ? st : "?");
	double alive = (app->gone ? app->gone_t : monotime_now()) - app->t_start;
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  uptime ");
	x += screen_text(y, x, cols - x, THEME_HEADER_VALUE, false,
			 units_duration(a, sizeof a, app->age_at_start + alive));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  threads ");
	x += screen_textf(y, x, cols - x, THEME_HEADER_VALUE, "%d", (int)app->last.threads);
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  interval ");
	x += screen_textf(y, x, cols - x, THEME_HEADER_VALUE, "%gs", app->interval);
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  watched ");
	x += screen_text(y, x, cols - x, THEME_HEADER_VALUE, false, units_duration(b, sizeof b, alive));
	(void)x;

	char agent[1024];
	app_agent_describe(app, agent, sizeof agent);
	for (int r = 0; r < arows; r++)
		screen_fill(y + 1 + r, 0, cols, THEME_NORMAL);
	screen_wrap(y + 1, 0, cols, arows, app_agent_ready(app) ? THEME_NORMAL : THEME_DIM, agent,
		    app->utf8 ? "\xe2\x80\xa6 (M)" : "... (M)");
}

/* Rows the agent line takes: a failure to attach says why and what to do,
 * often more than one row holds; up to three. */
static int agent_rows(const struct app *app, int cols)
{
	char agent[1024];
	app_agent_describe(app, agent, sizeof agent);
	int n = screen_wrap_rows(cols, agent);
	return n < 1 ? 1 : n > 3 ? 3 : n;
}

static void draw_legend(struct app *app, int y, int cols, bool heap)
{
	char cur[32], mn[32], mx[32], hwm[32];
	int x = 0;
	screen_fill(y, 0, cols, THEME_NORMAL);
	unsigned glyph = app->style == GRAPH_BRAILLE ? 0x28FFu : '|';
	screen_glyph(y, x, glyph, THEME_GRAPH_RSS);
	x += 2;
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "RSS ");
	x += screen_text(y, x, cols - x, THEME_HEADER_VALUE, false,
			 units_bytes(cur, sizeof cur, (double)app->last.rss));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  min ");
	x += screen_text(y, x, cols - x, THEME_NORMAL, false, units_bytes(mn, sizeof mn, (double)app->rss_min));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  max ");
	x += screen_text(y, x, cols - x, THEME_NORMAL, false, units_bytes(mx, sizeof mx, (double)app->rss_max));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  peak (HWM) ");
	x += screen_text(y, x, cols - x, THEME_NORMAL, false, units_bytes(hwm, sizeof hwm, (double)app->last.hwm));
	if (heap && x + 4 < cols) {
		char h[32];
		x += 2;
		screen_glyph(y, x, app->style == GRAPH_BRAILLE ? 0x2812u : '*', THEME_GRAPH_HEAP);
		x += 2;
		x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "traced heap ");
		screen_text(y, x, cols - x, THEME_HEADER_VALUE, false,
			    units_bytes(h, sizeof h, (double)app->heap_hist.points[app->heap_hist.len - 1].v));
	}
}

static void draw_breakdown(struct app *app, int y, int rows, int cols)
{
	char a[32], f[32], s[32], w[32], v[32];
	const struct proc_sample *l = &app->last;
	int x = 0;
	for (int r = 0; r < rows; r++)
		screen_fill(y + r, 0, cols, THEME_NORMAL);
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "anon ");
	x += screen_text(y, x, cols - x, THEME_HEADER_VALUE, false, units_bytes(a, sizeof a, (double)l->anon));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  file ");
	x += screen_text(y, x, cols - x, THEME_HEADER_VALUE, false, units_bytes(f, sizeof f, (double)l->file));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  shmem ");
	x += screen_text(y, x, cols - x, THEME_HEADER_VALUE, false, units_bytes(s, sizeof s, (double)l->shmem));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  swap ");
	x += screen_text(y, x, cols - x, l->swap ? THEME_WARNING : THEME_HEADER_VALUE, false,
			 units_bytes(w, sizeof w, (double)l->swap));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  virtual ");
	screen_text(y, x, cols - x, THEME_NORMAL, false, units_bytes(v, sizeof v, (double)l->vsize));
	if (rows < 2)
		return;

	y++;
	x = 0;
	const char *note = app->sampler ? proc_sampler_smaps_note(app->sampler) : "";
	if (note[0]) {
		screen_text(y, 0, cols, THEME_DIM, false, note);
		return;
	}
	const struct proc_sample *m = &app->smaps;
	if (!(m->flags & PROC_SAMPLE_HAS_SMAPS)) {
		screen_text(y, 0, cols, THEME_DIM, false, "PSS: reading smaps_rollup...");
		return;
	}
	char p[32], pa[32], pf[32], pr[32];
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "PSS ");
	x += screen_text(y, x, cols - x, THEME_HEADER_VALUE, false, units_bytes(p, sizeof p, (double)m->pss));
	x += screen_textf(y, x, cols - x, THEME_DIM, " (anon %s, file %s)",
			  units_bytes(pa, sizeof pa, (double)m->pss_anon),
			  units_bytes(pf, sizeof pf, (double)m->pss_file));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  private ");
	x += screen_text(y, x, cols - x, THEME_HEADER_VALUE, false,
			 units_bytes(pr, sizeof pr, (double)(m->private_clean + m->private_dirty)));
	double age = app_graph_end(app) - m->t;
	if (age >= 1.5)
		screen_textf(y, x, cols - x, THEME_DIM, "  (%.0fs ago)", age);
}

/* The sampled profiler from the newest status push: its sampling, how much
 * it keeps, and its own memory in the target (what it costs). */
static void draw_profiler(struct app *app, int y, int cols)
{
	const struct msg_status *st = app_agent_status(app);
	char a[32], b[32], src[64];
	int x = 0;
	screen_fill(y, 0, cols, THEME_NORMAL);
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "profiler ");
	if (!(st && st->has_profile && st->profile.running)) {
		char why[768];
		app_agent_profile_why(app, why, sizeof why);
		screen_text(y, x, cols - x, THEME_DIM, false, app_agent_profiling(app) ? "on" : why);
		return;
	}
	const struct msg_profile_status *p = &st->profile;
	x += screen_text(y, x, cols - x, THEME_HEADER_VALUE, false,
			 snapshot_source_text(src, sizeof src, SNAPSHOT_SOURCE_SAMPLED, p->interval));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  samples ");
	x += screen_textf(y, x, cols - x, THEME_HEADER_VALUE, "%llu", (unsigned long long)p->samples);
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  dropped ");
	x += screen_textf(y, x, cols - x, p->dropped_samples ? THEME_WARNING : THEME_HEADER_VALUE, "%llu",
			  (unsigned long long)p->dropped_samples);
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  its own memory ");
	x += screen_text(y, x, cols - x, THEME_HEADER_VALUE, false, units_bytes(a, sizeof a, (double)p->memory));
	x += screen_text(y, x, cols - x, THEME_HEADER_LABEL, false, "  live (estimate) ");
	x += screen_text(y, x, cols - x, THEME_NORMAL, false, units_bytes(b, sizeof b, p->live_bytes));
	if (p->calls)
		x += screen_text(y, x, cols - x, THEME_DIM, false, "  counting calls");
	if (p->lost_hooks)
		screen_textf(y, x, cols - x, THEME_WARNING, "  hook lost %llu times (frees missed)",
			     (unsigned long long)p->lost_hooks);
}

static void draw_time_axis(struct app *app, int y, int gx, int gw, double secs_per_col)
{
	char lab[32];
	screen_fill(y, 0, gx, THEME_NORMAL);
	screen_fill(y, gx, gw, THEME_GRAPH_AXIS);
	const char *right = app->gone && !app->paused ? "exited" : app->paused ? "paused" : "now";
	int rw = (int)strlen(right);
	screen_text(y, gx + gw - rw, rw, THEME_GRAPH_AXIS, false, right);
	/* A label about every 14 columns, at round multiples of a step. */
	static const double steps[] = { 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
					3600, 7200, 14400, 43200, 86400 };
	double want = secs_per_col * 14;
	double step = steps[sizeof steps / sizeof steps[0] - 1];
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
		if (steps[i] >= want) {
			step = steps[i];
			break;
		}
	int last_left = gx + gw - rw - 1;
	for (int k = 1;; k++) {
		double ago = step * k;
		int col = gx + gw - 1 - (int)lround(ago / secs_per_col);
		if (col < gx)
			break;
		lab[0] = '-';
		units_duration(lab + 1, sizeof lab - 1, ago);
		int lw = (int)strlen(lab);
		int start = col - lw; /* the label ends just left of its tick */
		if (start < gx || col >= last_left)
			continue;
		screen_text(y, start, lw, THEME_GRAPH_AXIS, false, lab);
		screen_glyph(y, col, app->style == GRAPH_BRAILLE ? 0x2575u : '|', THEME_GRAPH_AXIS);
		last_left = start - 1;
	}
}

static void draw_graph(struct app *app, int top, int h, int cols, bool heap)
{
	int gx = AXIS_LABEL_W, gw = cols - gx - 1;
	if (gw < 10 || h < 1)
		return;
	int per_col = graph_cols_per_cell(app->style);
	int per_cell_rows = app->style == GRAPH_BRAILLE ? 4 : 3;
	size_t n = (size_t)gw * (size_t)per_col;
	double *rss = xmalloc(n * sizeof *rss), *hp = heap ? xmalloc(n * sizeof *hp) : NULL;
	struct graph_cell *cells = xmalloc((size_t)gw * (size_t)h * sizeof *cells);

	double secs_per_dot = app->interval * ldexp(1.0, app->zoom);
	/* Columns sit on fixed time slots, so between samples nothing moves. */
	double end = ceil(app_graph_end(app) / secs_per_dot) * secs_per_dot;
	double span = secs_per_dot * (double)n;
	graph_bucket(&app->hist, end - span, end, app->interval * 2.5, n, rss);
	if (hp)
		/* Pushes come every interval too, at their own times. */
		graph_bucket(&app->heap_hist, end - span, end, app->interval * 2.5, n, hp);

	double lo = 0, hi = 0, l2, h2;
	bool any = graph_range(rss, n, &lo, &hi);
	if (hp && graph_range(hp, n, &l2, &h2)) {
		if (!any || l2 < lo)
			lo = l2;
		if (!any || h2 > hi)
			hi = h2;
		any = true;
	}
	if (!any)
		lo = hi = (double)app->last.rss;
	struct graph_axis ax;
	graph_axis_nice(lo, hi, h > 4 ? h / 2 : 2, &ax);
	graph_render(app->style, gw, h, rss, hp, &ax, cells);

	for (int r = 0; r < h; r++) {
		for (int c = 0; c < gw; c++) {
			const struct graph_cell *cell = &cells[r * gw + c];
			enum theme_role role = cell->series == GRAPH_LINE ? THEME_GRAPH_HEAP : THEME_GRAPH_RSS;
			if (cell->series != GRAPH_NONE)
				screen_glyph(top + r, gx + c, cell->ch, role);
		}
		screen_glyph(top + r, gx - 1, app->style == GRAPH_BRAILLE ? 0x2502u : '|', THEME_GRAPH_AXIS);
	}
	/* y labels at the ticks, skipping ones that would touch. */
	int prev_row = -2;
	for (double v = ax.hi; v >= ax.lo - ax.step / 2; v -= ax.step) {
		int r = row_of(v, &ax, h, per_cell_rows);
		if (v <= ax.lo)
			r = h - 1;
		if (r - prev_row < 2 && prev_row >= 0)
			continue;
		char lab[32];
		units_bytes(lab, sizeof lab, v);
		int lw = (int)strlen(lab);
		screen_text(top + r, gx - 2 - lw < 0 ? 0 : gx - 2 - lw, lw, THEME_GRAPH_AXIS, false, lab);
		screen_glyph(top + r, gx - 1, app->style == GRAPH_BRAILLE ? 0x2524u : '+', THEME_GRAPH_AXIS);
		prev_row = r;
	}
	draw_time_axis(app, top + h, gx, gw, secs_per_dot * per_col);
	/* Snapshot markers on the time axis, numbered as in the Snapshots view. */
	for (size_t i = 0; i < app->nsnaps; i++) {
		double t = app->snaps[i].mono_t;
		if (isnan(t) || t < end - span || t > end)
			continue;
		int col = gx + (int)((t - (end - span)) / (secs_per_dot * per_col));
		if (col >= gx + gw)
			col = gx + gw - 1;
		screen_glyph(top + h, col, app->style == GRAPH_BRAILLE ? 0x25B2u : '^', THEME_GRAPH_MARKER);
		/* Its number beside it: to the right, or to the left at the edge. */
		char num[8];
		snprintf(num, sizeof num, "%zu", (i + 1) % 10);
		screen_text(top + h, col + 1 < gx + gw ? col + 1 : col - 1, 1, THEME_GRAPH_MARKER, false, num);
	}
	free(rss);
	free(hp);
	free(cells);
}

static void overview_draw(struct app *app, int top, int rows, int cols)
{
	if (app->pid <= 0) {
		screen_text(top + 1, 2, cols - 4, THEME_DIM, false,
			    "No process: pmt-top was started with saved snapshots only (--load).");
		screen_text(top + 2, 2, cols - 4, THEME_DIM, false,
			    "They are in the Snapshots view: b marks a base, Enter diffs.");
		return;
	}
	bool heap = app->heap_hist.len > 0 && !app->heap_hist.points[app->heap_hist.len - 1].gap;
	int breakdown = rows >= 14 ? 2 : 1;
	int prof = rows >= 16 && app->session ? 1 : 0;
	int arows = rows >= 12 ? agent_rows(app, cols) : 0;
	int header = arows ? 3 + arows : 2;
	draw_header(app, top, cols, arows);
	draw_legend(app, top + header - 1, cols, heap);
	int gh = rows - header - 1 - breakdown - prof;
	if (gh >= 1)
		draw_graph(app, top + header, gh, cols, heap);
	draw_breakdown(app, top + rows - breakdown - prof, breakdown, cols);
	if (prof)
		draw_profiler(app, top + rows - 1, cols);
}

static const struct binding overview_keys[] = {
	{ "(graph)", "RSS over time; the traced Python heap as a line when tracemalloc is on", NULL, NULL, { 0 } },
	{ "(profiler)", "the sampled profiler: samples kept, dropped (a cap was hit), and its own memory in the "
	  "target", NULL, NULL, { 0 } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

const struct view view_overview = {
	.name = "Overview",
	.draw = overview_draw,
	.keys = overview_keys,
};
