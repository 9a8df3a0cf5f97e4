/*
 * view_overview.c - the face of pmt-top: process header, the RSS graph over
 * time (with the traced heap beside it when known), the memory breakdown,
 * what the RSS is made of (session/composition.h), and what the sampled
 * profiler costs the target. R gives malloc's free memory back (trim).
 */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/units.h"
#include "base/monotime.h"
#include "base/xalloc.h"
#include "proc/proc_sample.h"
#include "session/composition.h"
#include "session/session.h"
#include "tui/app.h"
#include "tui/graph.h"
#include "tui/keys.h"
#include "tui/prompt.h"
#include "tui/screen.h"
#include "tui/view.h"

#define AXIS_LABEL_W 9

struct overview_state {
	bool table;              /* c: the composition as a table, in the graph's place */
	bool stacked;            /* k: the graph stacks the composition's parts */
	struct prompt confirm;   /* R: "give it back? y/n" */
	bool trimming;           /* a trim request in flight */
	pid_t trim_pid;          /* whom it was asked of */
	uint64_t rss_before;
	char trim_result[200];   /* the last trim's outcome, "" before one */
};

static struct overview_state *state(struct app *app)
{
	return app_view_state(app, &view_overview);
}

static enum theme_role part_role(enum comp_part p)
{
	switch (p) {
	case COMP_PYTHON: return THEME_COMP_PYTHON;
	case COMP_SLACK: return THEME_COMP_SLACK;
	case COMP_NATIVE: case COMP_HEAPS: return THEME_COMP_NATIVE;
	case COMP_MALLOC_FREE: return THEME_COMP_FREE;
	case COMP_STACKS: return THEME_COMP_STACKS;
	case COMP_FILES: case COMP_SHMEM: return THEME_COMP_FILES;
	default: return THEME_COMP_OTHER;
	}
}

/* One row: a bar of the parts, each cell its part's key letter in its
 * colour, then one row of "key name size" for each part shown. */
static void draw_composition(struct app *app, int y, int rows, int cols)
{
	struct composition c;
	char b[32], age[48] = "";
	app_composition(app, &c);
	for (int r = 0; r < rows; r++)
		screen_fill(y + r, 0, cols, THEME_NORMAL);
	int x = screen_text(y, 0, cols, THEME_HEADER_LABEL, false, "made of ");
	if (!c.valid) {
		screen_text(y, x, cols - x, THEME_DIM, false, c.why);
		return;
	}
	/* always said: the parts come from a smaps read every 2 s or more */
	double a = app_graph_end(app) - c.t;
	snprintf(age, sizeof age, " %.0fs ago", a > 0 ? a : 0);
	int bw = cols - x - 1 - (int)strlen(age);
	if (bw >= 10 && c.rss > 0) {
		/* Cells by largest remainder, so that the bar is exactly full. */
		int cells[COMP_PART_COUNT] = { 0 }, used = 0;
		double rem[COMP_PART_COUNT] = { 0 };
		for (int p = 0; p < COMP_PART_COUNT; p++) {
			if (!c.part[p].shown || c.part[p].bytes <= 0)
				continue;
			double exact = (double)c.part[p].bytes * bw / (double)c.rss;
			cells[p] = (int)exact;
			rem[p] = exact - cells[p];
			used += cells[p];
		}
		while (used < bw) {
			int best = -1;
			for (int p = 0; p < COMP_PART_COUNT; p++)
				if (c.part[p].shown && c.part[p].bytes > 0 && (best < 0 || rem[p] > rem[best]))
					best = p;
			if (best < 0)
				break;
			cells[best]++;
			rem[best] = -1;
			used++;
		}
		int bx = x;
		for (int p = 0; p < COMP_PART_COUNT && bx < x + bw; p++) {
			char key[2] = { comp_part_key((enum comp_part)p), 0 };
			for (int i = 0; i < cells[p] && bx < x + bw; i++)
				bx += screen_text(y, bx, 1, part_role((enum comp_part)p), false, key);
		}
		x = bx;
	}
	screen_text(y, x, cols - x, THEME_DIM, false, age);
	if (rows < 2)
		return;
	/* The legend, wrapped over the rows left. */
	int ly = y + 1;
	x = 0;
	for (int p = 0; p < COMP_PART_COUNT; p++) {
		if (!c.part[p].shown)
			continue;
		char item[96];
		snprintf(item, sizeof item, "%s %s", comp_part_name((enum comp_part)p),
			 units_bytes(b, sizeof b, (double)c.part[p].bytes));
		int w = 2 + (int)strlen(item) + 2;
		if (x > 0 && x + w > cols) {
			if (++ly >= y + rows)
				break;
			x = 0;
		}
		char key[2] = { comp_part_key((enum comp_part)p), 0 };
		x += screen_text(ly, x, 1, part_role((enum comp_part)p), false, key);
		x += 1;
		x += screen_text(ly, x, cols - x, THEME_NORMAL, false, item);
		x += 2;
	}
}

/* c: each part with its size, share and source, and what is missing. */
static void draw_composition_table(struct app *app, int top, int rows, int cols)
{
	struct overview_state *S = state(app);
	struct composition c;
	char b[32];
	app_composition(app, &c);
	for (int r = 0; r < rows; r++)
		screen_fill(top + r, 0, cols, THEME_NORMAL);
	int y = top;
	screen_textf(y++, 0, cols, THEME_TABLE_HEADER, "%-3s%-18s%12s%8s  %-*s", "", "part", "bytes", "share",
		     cols > 45 ? cols - 45 : 0, "where the number comes from");
	if (c.valid) {
		for (int p = 0; p < COMP_PART_COUNT && y < top + rows; p++) {
			if (!c.part[p].shown)
				continue;
			char key[2] = { comp_part_key((enum comp_part)p), 0 };
			screen_text(y, 0, 1, part_role((enum comp_part)p), false, key);
			screen_textf(y++, 3, cols - 3, THEME_NORMAL, "%-18s%12s%7.1f%%  %s",
				     comp_part_name((enum comp_part)p),
				     units_bytes(b, sizeof b, (double)c.part[p].bytes),
				     100.0 * (double)c.part[p].bytes / (double)(c.rss ? c.rss : 1), c.part[p].source);
		}
		if (y < top + rows) {
			double a = app_graph_end(app) - c.t;
			char src[64];
			snprintf(src, sizeof src, "smaps read %.0fs ago, the parts' sum", a > 0 ? a : 0);
			screen_textf(y++, 3, cols - 3, THEME_HEADER_VALUE, "%-18s%12s%7.1f%%  %s", "RSS",
				     units_bytes(b, sizeof b, (double)c.rss), 100.0, src);
		}
	}
	if (c.why[0] && y < top + rows)
		y += screen_wrap(y, 0, cols, top + rows - y, THEME_DIM, c.why, "...");
	if (S->trim_result[0] && y < top + rows)
		screen_text(y++, 0, cols, THEME_NORMAL, false, S->trim_result);
	if (y < top + rows)
		screen_text(y, 0, cols, THEME_DIM, false,
			    "c back to the graph   R give malloc's free memory back to the system (asks first)");
}

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

/* k: what the RSS was made of over time, its parts stacked (one point per
 * smaps read), in the RSS graph's time frame; each cell shows the part at
 * its middle, in its colour, with its letter. */
static void draw_stacked(struct app *app, int top, int h, int cols)
{
	int gx = AXIS_LABEL_W, gw = cols - gx - 1;
	if (gw < 10 || h < 1)
		return;
	for (int r = 0; r <= h; r++)
		screen_fill(top + r, 0, cols, THEME_NORMAL);
	double secs_per_col = app->interval * ldexp(1.0, app->zoom) * graph_cols_per_cell(app->style);
	double end = ceil(app_graph_end(app) / secs_per_col) * secs_per_col;
	double start = end - secs_per_col * gw;
	/* The newest point at or before each column's end. */
	const struct comp_point **at = xcalloc((size_t)gw, sizeof *at);
	double hi = 0;
	size_t j = 0;
	for (int c = 0; c < gw; c++) {
		double t1 = start + secs_per_col * (c + 1);
		while (j < app->comp_len && app->comp_hist[j].t <= t1)
			j++;
		if (j == 0 || app->comp_hist[j - 1].t < start - secs_per_col * 8)
			continue; /* nothing read near it */
		at[c] = &app->comp_hist[j - 1];
		double sum = 0;
		for (int p = 0; p < COMP_PART_COUNT; p++)
			sum += (double)at[c]->part[p];
		if (sum > hi)
			hi = sum;
	}
	if (hi <= 0) {
		screen_text(top + h / 2, gx, gw, THEME_DIM, false,
			    "no smaps read in this time window yet (k: back to the RSS graph)");
		free(at);
		draw_time_axis(app, top + h, gx, gw, secs_per_col);
		return;
	}
	struct graph_axis ax;
	graph_axis_nice(0, hi, h > 4 ? h / 2 : 2, &ax);
	for (int c = 0; c < gw; c++) {
		if (!at[c])
			continue;
		for (int r = 0; r < h; r++) {
			double mid = ax.lo + (ax.hi - ax.lo) * (h - r - 0.5) / h, acc = 0;
			for (int p = 0; p < COMP_PART_COUNT; p++) {
				acc += (double)at[c]->part[p];
				if (mid < acc) {
					char key[2] = { comp_part_key((enum comp_part)p), 0 };
					screen_text(top + r, gx + c, 1, part_role((enum comp_part)p), false, key);
					break;
				}
			}
		}
	}
	for (int r = 0; r < h; r++)
		screen_glyph(top + r, gx - 1, app->style == GRAPH_BRAILLE ? 0x2502u : '|', THEME_GRAPH_AXIS);
	for (int r = 0; r < h; r += 2) {
		char lab[32];
		units_bytes(lab, sizeof lab, ax.lo + (ax.hi - ax.lo) * (h - r) / h);
		int lw = (int)strlen(lab);
		screen_text(top + r, gx - 2 - lw < 0 ? 0 : gx - 2 - lw, lw, THEME_GRAPH_AXIS, false, lab);
	}
	draw_time_axis(app, top + h, gx, gw, secs_per_col);
	free(at);
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
	int comp = rows >= 22 ? 3 : rows >= 18 ? 2 : 0;
	int arows = rows >= 12 ? agent_rows(app, cols) : 0;
	int header = arows ? 3 + arows : 2;
	draw_header(app, top, cols, arows);
	draw_legend(app, top + header - 1, cols, heap);
	int gh = rows - header - 1 - breakdown - prof - comp;
	if (gh >= 1 && state(app)->table)
		draw_composition_table(app, top + header, gh + 1, cols);
	else if (gh >= 1 && state(app)->stacked)
		draw_stacked(app, top + header, gh, cols);
	else if (gh >= 1)
		draw_graph(app, top + header, gh, cols, heap);
	if (comp)
		draw_composition(app, top + rows - breakdown - prof - comp, comp, cols);
	draw_breakdown(app, top + rows - breakdown - prof, breakdown, cols);
	if (prof)
		draw_profiler(app, top + rows - 1, cols);
}

static int key_table(struct app *app, int ch)
{
	(void)ch;
	state(app)->table = !state(app)->table;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_stacked(struct app *app, int ch)
{
	(void)ch;
	state(app)->stacked = !state(app)->stacked;
	state(app)->table = false;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static void trim_done(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	struct overview_state *S = state(app);
	char a[32], b[32], d[32], f1[32], f2[32], err[256];
	S->trimming = false;
	if (S->trim_pid != app->pid)
		return; /* another process is watched now */
	if (!r->ok) {
		app_status(app, true, "trim in pid %d failed: %s", (int)S->trim_pid, r->message);
		return;
	}
	struct msg_trim t;
	uint64_t after;
	if (msg_decode_trim(r->result, &t, err, sizeof err) < 0) {
		app_status(app, true, "trim in pid %d: the reply is malformed: %s", (int)S->trim_pid, err);
		return;
	}
	if (proc_read_rss(S->trim_pid, &after) < 0) {
		app_status(app, true, "trim in pid %d done, but its RSS cannot be read now", (int)S->trim_pid);
		return;
	}
	snprintf(S->trim_result, sizeof S->trim_result, "trim: RSS %s -> %s (%s) in %.0f ms; malloc free %s -> %s",
		 units_bytes(a, sizeof a, (double)S->rss_before), units_bytes(b, sizeof b, (double)after),
		 units_bytes_signed(d, sizeof d, (double)after - (double)S->rss_before), t.seconds * 1000.0,
		 units_bytes(f1, sizeof f1, (double)t.before.free), units_bytes(f2, sizeof f2, (double)t.after.free));
	app_status(app, false, "pid %d %s", (int)S->trim_pid, S->trim_result);
}

static int key_trim(struct app *app, int ch)
{
	(void)ch;
	struct overview_state *S = state(app);
	if (S->trimming) {
		app_status(app, false, "a trim is under way in pid %d", (int)S->trim_pid);
		return VIEW_KEY_HANDLED;
	}
	if (!app_agent_ready(app)) {
		app_status(app, true, "trim needs the agent in pid %d, which is not ready", (int)app->pid);
		return VIEW_KEY_HANDLED;
	}
	char label[160];
	snprintf(label, sizeof label, "give malloc's free memory back to the system in pid %d (malloc_trim)? y/n ",
		 (int)app->pid);
	prompt_open(&S->confirm, label, "");
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int overview_key(struct app *app, int ch)
{
	struct overview_state *S = state(app);
	if (!S->confirm.active)
		return VIEW_KEY_IGNORED;
	S->confirm.active = false;
	if (ch != 'y' && ch != 'Y') {
		app_status(app, false, "trim: not done");
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	if (proc_read_rss(app->pid, &S->rss_before) < 0)
		S->rss_before = app->last.rss;
	S->trim_pid = app->pid;
	if (app_agent_request(app, PROTO_CMD_TRIM, NULL, trim_done, app)) {
		S->trimming = true;
		app_status(app, false, "trim: asking pid %d...", (int)app->pid);
	}
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static const struct prompt *overview_prompt(struct app *app)
{
	struct overview_state *S = state(app);
	return S->confirm.active ? &S->confirm : NULL;
}

static const struct binding overview_keys[] = {
	{ "(graph)", "RSS over time; the traced Python heap as a line when tracemalloc is on", NULL, NULL, { 0 } },
	{ "(profiler)", "the sampled profiler: samples kept, dropped (a cap was hit), and its own memory in the "
	  "target", NULL, NULL, { 0 } },
	{ "(made of)", "what the RSS is: Python objects, Python's allocator slack, native heap, malloc free "
	  "(fragmentation), stacks, files, shared memory, unexplained", NULL, NULL, { 0 } },
	{ "c", "what the RSS is made of, as a table with where each number comes from (again: the graph)",
	  "c made of", key_table, { 'c' } },
	{ "k", "the graph stacks what the RSS is made of over time, one point per smaps read (again: the RSS "
	  "graph)", NULL, key_stacked, { 'k' } },
	{ "R", "give malloc's free memory back to the system (malloc_trim in the target; asks first) and "
	  "show RSS before and after", NULL, key_trim, { 'R' } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

const struct view view_overview = {
	.name = "Overview",
	.draw = overview_draw,
	.key = overview_key,
	.prompt = overview_prompt,
	.keys = overview_keys,
	.state_size = sizeof(struct overview_state),
};
