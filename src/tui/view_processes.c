/*
 * view_processes.c - a service's processes, one row each: RSS, its growth,
 * a sparkline of the last minute, whether an agent is there; the fastest
 * growing first. Enter watches the selected one in the other views.
 *
 * Everything here comes from /proc through the group's sampler thread
 * (proc/group.h): looking at this view loads no agent anywhere.
 */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/monotime.h"
#include "base/units.h"
#include "session/session.h"
#include "tui/app.h"
#include "tui/graph.h"
#include "tui/keys.h"
#include "tui/listnav.h"
#include "tui/screen.h"
#include "tui/view.h"

#define SPARK_W 12
#define AGENT_RECHECK 5.0 /* seconds between looks for another process's agent socket */

enum order { BY_GROWTH, BY_RSS, BY_PID, ORDER_COUNT };
static const char *const order_names[] = { "growth", "RSS", "pid" };

struct agent_seen {
	pid_t pid;
	unsigned long long start_ticks;
	bool listening;
	double t;
};

struct procs_state {
	struct listnav nav;
	pid_t sel_pid;            /* once moved, the selection follows its process when rows
	                           * move; until then it stays on the first row */
	bool moved;
	unsigned long sorted_seq; /* the table's seq when it was last sorted here */
	enum order order;
	struct agent_seen agents[GROUP_MAX_MEMBERS];
	size_t nagents;
	unsigned long agents_seq; /* app->agents_seq when looked: a load ended since, look again */
};

static struct procs_state *state(const struct app *app)
{
	return app_view_state(app, &view_processes);
}

static int cmp_rss(const void *a, const void *b)
{
	const struct group_member *x = a, *y = b;
	if (x->gone != y->gone)
		return x->gone ? 1 : -1;
	if (x->rss != y->rss)
		return x->rss > y->rss ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int cmp_pid(const void *a, const void *b)
{
	const struct group_member *x = a, *y = b;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static void sort_rows(struct app *app, struct procs_state *S)
{
	struct group_table *t = &app->gtab;
	if (S->order == BY_GROWTH)
		group_sort(t);
	else if (t->n > 1)
		qsort(t->m, t->n, sizeof *t->m, S->order == BY_RSS ? cmp_rss : cmp_pid);
	S->sorted_seq = t->seq;
	if (!S->moved) {
		S->nav.sel = 0;
		S->sel_pid = t->n ? t->m[0].pid : 0;
		return;
	}
	/* Keep the selected process selected. */
	for (size_t i = 0; i < t->n; i++)
		if (t->m[i].pid == S->sel_pid) {
			S->nav.sel = (int)i;
			return;
		}
	if (t->n)
		S->sel_pid = t->m[S->nav.sel < (int)t->n ? S->nav.sel : 0].pid;
}

static void procs_update(struct app *app)
{
	struct procs_state *S = state(app);
	if (app->group && app->gtab.seq != S->sorted_seq)
		sort_rows(app, S);
}

/* Whether PID's agent is listening, looked up at most every AGENT_RECHECK s. */
static bool agent_listening(struct procs_state *S, const struct group_member *m, double now)
{
	struct agent_seen *a = NULL;
	for (size_t i = 0; i < S->nagents; i++)
		if (S->agents[i].pid == m->pid && S->agents[i].start_ticks == m->start_ticks)
			a = &S->agents[i];
	if (a == NULL) {
		if (S->nagents == GROUP_MAX_MEMBERS) {
			/* Forget the oldest look. */
			size_t old = 0;
			for (size_t i = 1; i < S->nagents; i++)
				if (S->agents[i].t < S->agents[old].t)
					old = i;
			a = &S->agents[old];
		} else {
			a = &S->agents[S->nagents++];
		}
		*a = (struct agent_seen){ .pid = m->pid, .start_ticks = m->start_ticks, .t = -1e9 };
	}
	if (now - a->t >= AGENT_RECHECK) {
		a->listening = session_agent_listening(m->pid);
		a->t = now;
	}
	return a->listening;
}

static const char *agent_word(struct app *app, struct procs_state *S, const struct group_member *m, double now)
{
	if (m->gone)
		return "-";
	if (app_group_loading(app, m->pid))
		return "loading";
	if (S->agents_seq != app->agents_seq) {
		S->nagents = 0;
		S->agents_seq = app->agents_seq;
	}
	if (m->pid == app->pid && app->session) {
		switch (session_agent(app->session)) {
		case SESSION_AGENT_READY: return "watched";
		case SESSION_AGENT_ATTACHING:
		case SESSION_AGENT_CONNECTING: return "loading";
		default: break;
		}
	}
	return agent_listening(S, m, now) ? "there" : "-";
}

/* The member's RSS over the last minute in W cells, each the largest value
 * of its slice of time, scaled between the minute's low and high. */
static void sparkline(const struct app *app, const struct group_member *m, double end, char *out, size_t outlen)
{
	static const char *const blocks[] = { "\u2581", "\u2582", "\u2583", "\u2584",
					      "\u2585", "\u2586", "\u2587", "\u2588" };
	static const char ascii[] = "_.-=+*#@";
	double v[SPARK_W];
	double span = GROUP_RATE_WINDOW / SPARK_W;
	double lo = INFINITY, hi = -INFINITY;
	for (int c = 0; c < SPARK_W; c++) {
		double t0 = end - GROUP_RATE_WINDOW + c * span, t1 = t0 + span;
		v[c] = NAN;
		for (size_t i = 0; i < m->nhist; i++)
			if (m->hist[i].t >= t0 && m->hist[i].t < t1 && !(v[c] >= (double)m->hist[i].rss))
				v[c] = (double)m->hist[i].rss;
		if (!isnan(v[c])) {
			lo = v[c] < lo ? v[c] : lo;
			hi = v[c] > hi ? v[c] : hi;
		}
	}
	size_t o = 0;
	out[0] = '\0';
	for (int c = 0; c < SPARK_W; c++) {
		const char *glyph;
		char one[2] = { ' ', '\0' };
		if (isnan(v[c])) {
			glyph = " ";
		} else {
			/* A flat line sits low: no change is not "full". */
			int k = hi - lo < 1.0 ? 0 : (int)((v[c] - lo) / (hi - lo) * 7.0 + 0.5);
			if (app->utf8 && app->style == GRAPH_BRAILLE) {
				glyph = blocks[k];
			} else {
				one[0] = ascii[k];
				glyph = one;
			}
		}
		size_t gl = strlen(glyph);
		if (o + gl + 1 > outlen)
			break;
		memcpy(out + o, glyph, gl + 1);
		o += gl;
	}
}

/* The right edge of the group's time: now, or the moment of pausing (the
 * focused process exiting does not stop the group). */
static double group_end(const struct app *app)
{
	return app->paused ? app->pause_t : monotime_now();
}

/* The group's total RSS over the graph window. */
static void draw_total(struct app *app, int top, int h, int cols)
{
	int gx = 10, gw = cols - gx - 1;
	if (gw < 10 || h < 1)
		return;
	int per_col = graph_cols_per_cell(app->style);
	size_t n = (size_t)gw * (size_t)per_col;
	double *v = calloc(n, sizeof *v);
	struct graph_cell *cells = calloc((size_t)gw * (size_t)h, sizeof *cells);
	if (v == NULL || cells == NULL) {
		free(v);
		free(cells);
		return;
	}
	double secs = app->interval * ldexp(1.0, app->zoom);
	double end = ceil(group_end(app) / secs) * secs, span = secs * (double)n;
	graph_bucket(&app->group_hist, end - span, end, app->interval * 2.5, n, v);
	double lo = 0, hi = 0;
	if (!graph_range(v, n, &lo, &hi))
		lo = hi = (double)app->gtab.total_rss;
	struct graph_axis ax;
	graph_axis_nice(lo, hi, 2, &ax);
	graph_render(app->style, gw, h, v, NULL, &ax, cells);
	for (int r = 0; r < h; r++)
		for (int c = 0; c < gw; c++)
			if (cells[r * gw + c].series != GRAPH_NONE)
				screen_glyph(top + r, gx + c, cells[r * gw + c].ch, THEME_GRAPH_RSS);
	char lab[32];
	screen_text(top, 0, gx - 1, THEME_GRAPH_AXIS, false, units_bytes(lab, sizeof lab, ax.hi));
	screen_text(top + h - 1, 0, gx - 1, THEME_GRAPH_AXIS, false, units_bytes(lab, sizeof lab, ax.lo));
	free(v);
	free(cells);
}

static void procs_draw(struct app *app, int top, int rows, int cols)
{
	struct procs_state *S = state(app);
	if (app->group == NULL) {
		screen_wrap(top + 1, 2, cols - 4, rows - 2, THEME_DIM,
			    "One process is watched. To watch a service's processes together (a master and "
			    "its workers), start pmt-top on the master: a process with children opens here, "
			    "or --tree PID, or PID PID ..., or -p PID,PID,...", "...");
		return;
	}
	procs_update(app);
	const struct group_table *t = &app->gtab;
	double growth = 0;
	bool any_rate = false;
	for (size_t i = 0; i < t->n; i++)
		if (!t->m[i].gone && !isnan(t->m[i].rate)) {
			growth += t->m[i].rate;
			any_rate = true;
		}
	char total[32], gr[32];
	units_bytes(total, sizeof total, (double)t->total_rss);
	if (any_rate)
		units_bytes_signed(gr, sizeof gr, growth);
	else
		snprintf(gr, sizeof gr, "-");
	int y = top;
	int x = 0;
	if (app->group_tree)
		x += screen_textf(y, x, cols - x, THEME_HEADER_LABEL, "pid %d and its descendants: ", (int)app->group_root);
	else
		x += screen_textf(y, x, cols - x, THEME_HEADER_LABEL, "%zu processes: ", t->n);
	x += screen_textf(y, x, cols - x, THEME_HEADER_VALUE, "%zu running, RSS %s, %s/min", t->running, total, gr);
	if (app->group_tree && t->root_gone)
		x += screen_text(y, x, cols - x, THEME_WARNING, false, "  (the root has exited)");
	if (t->unwatched)
		x += screen_textf(y, x, cols - x, THEME_WARNING, "  %zu more not watched", t->unwatched);
	y++;
	screen_textf(y++, 0, cols, THEME_DIM, "sorted by %s (o)   Enter: watch it in the other views   "
		     "A: agents in all   S: group snapshot%s   watched now: pid %d", order_names[S->order],
		     app_gsnap_busy(app) ? " (under way)" : "", (int)app->pid);
	int gh = rows >= 20 ? 5 : rows >= 14 ? 3 : 0;
	if (gh) {
		draw_total(app, y, gh, cols);
		y += gh;
	}
	screen_fill(y, 0, cols, THEME_TABLE_HEADER);
	screen_textf(y++, 0, cols, THEME_TABLE_HEADER, " %-8s %-7s %7s %10s %11s %-*s %-4s %-7s %s", "PID", "ROLE", "AGE",
		     "RSS", "GROWTH/MIN", SPARK_W, "LAST MINUTE", "PY", "AGENT", "COMMAND");
	int list_rows = top + rows - y;
	int n = (int)t->n;
	listnav_fit(&S->nav, n, list_rows);
	double now = monotime_now();
	double end = group_end(app);
	for (int r = 0; r < list_rows && S->nav.top + r < n; r++) {
		int i = S->nav.top + r;
		const struct group_member *m = &t->m[i];
		bool sel = i == S->nav.sel;
		enum theme_role role = sel ? THEME_SELECTION : m->gone ? THEME_DIM : THEME_NORMAL;
		if (sel)
			screen_fill(y + r, 0, cols, THEME_SELECTION);
		char spark[SPARK_W * 4 + 1];
		struct group_cells c;
		group_member_cells(m, t->t, &c);
		sparkline(app, m, end, spark, sizeof spark);
		int cx = 0;
		cx += screen_textf(y + r, cx, cols - cx, role, "%c%-8d %-7s %7s %10s ", m->pid == app->pid ? '*' : ' ',
				   (int)m->pid, m->gone ? "exited" : group_role_name(m->role), c.age, c.rss);
		enum theme_role rrole = sel || m->gone || isnan(m->rate) ? role :
					m->rate > 0 ? THEME_GROWTH : m->rate < 0 ? THEME_SHRINK : role;
		cx += screen_textf(y + r, cx, cols - cx, rrole, "%11s ", c.rate);
		screen_text(y + r, cx, SPARK_W, sel ? role : THEME_GRAPH_RSS, false, spark);
		/* The sparkline's glyphs are one cell each but three bytes: the
		 * columns after it start at a fixed place. */
		cx = 1 + 8 + 1 + 7 + 1 + 7 + 1 + 10 + 1 + 11 + 1 + SPARK_W + 1;
		screen_textf(y + r, cx, cols - cx, role, "%-4s %-7s %s", c.py, agent_word(app, S, m, now),
			     m->cmdline[0] ? m->cmdline : m->comm);
	}
	if (n == 0)
		screen_text(y, 2, cols - 4, THEME_DIM, false, "(no process left in the group)");
}

static int key_focus(struct app *app, int ch)
{
	(void)ch;
	struct procs_state *S = state(app);
	if (app->group == NULL || S->nav.sel >= (int)app->gtab.n)
		return VIEW_KEY_IGNORED;
	const struct group_member *m = &app->gtab.m[S->nav.sel];
	if (m->gone) {
		app_status(app, true, "pid %d has exited", (int)m->pid);
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	app_focus(app, m->pid);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_order(struct app *app, int ch)
{
	(void)ch;
	struct procs_state *S = state(app);
	S->order = (S->order + 1) % ORDER_COUNT;
	S->moved = false; /* a new order: the selection starts at its top */
	if (app->group)
		sort_rows(app, S);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_group_snapshot(struct app *app, int ch)
{
	(void)ch;
	app_gsnap_take(app);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_load_all(struct app *app, int ch)
{
	(void)ch;
	app_group_load_all(app);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int procs_key(struct app *app, int ch)
{
	struct procs_state *S = state(app);
	if (app->group && listnav_key(&S->nav, ch, (int)app->gtab.n, LINES / 2)) {
		if (S->nav.sel < (int)app->gtab.n)
			S->sel_pid = app->gtab.m[S->nav.sel].pid;
		S->moved = true;
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	return VIEW_KEY_IGNORED;
}

static const struct binding procs_keys[] = {
	{ "(view)", "the processes of a service (a process and its descendants, or the PIDs given), from /proc: "
	  "RSS, its growth per minute fitted over the last minute, the last minute as a sparkline; * marks "
	  "the process the other views watch", NULL, NULL, { 0 } },
	{ "(AGENT)", "watched: the other views' agent link; there: an agent listens (loaded earlier); loading: "
	  "A is loading one; -: none",
	  NULL, NULL, { 0 } },
	{ "Enter", "watch the selected process in the other views (its agent is loaded then)", "Enter watch",
	  key_focus, { '\r', '\n', KEY_ENTER } },
	{ "o", "sort by growth, RSS or pid", "o order", key_order, { 'o' } },
	{ "S", "snapshot of every Python process of the group, taken together (tracemalloc, started where it "
	  "is off and switched off again on quitting); the Snapshots view keeps it as one, their sum, and a diff "
	  "of two says in which processes each line grew", "S group snapshot", key_group_snapshot, { 'S' } },
	{ "A", "load the agent into every Python process of the group, a few at a time (nothing is switched on "
	  "in them; Enter then watches one at once)", "A agents", key_load_all, { 'A' } },
	{ "Up Down PgUp PgDn", "select", NULL, NULL, { 0 } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

const struct view view_processes = {
	.name = "Processes",
	.update = procs_update,
	.draw = procs_draw,
	.key = procs_key,
	.keys = procs_keys,
	.state_size = sizeof(struct procs_state),
};
