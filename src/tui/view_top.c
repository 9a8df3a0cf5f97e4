/*
 * view_top.c - "Top allocations": the largest live groups, live.
 *
 * Every refresh asks the agent for the largest groups (the agent keeps
 * nothing), from the sampled profiler (estimates, cheap enough to run all
 * the time) or from tracemalloc (exact); m switches, and the default is the
 * profiler while it runs. Each refresh is diffed against the previous one
 * (snapdiff's hash join) for the change column, and fed to the growth model
 * (growth.h) for the "growing" order, which ranks lines by sustained growth
 * in bytes per minute. g regroups, o re-sorts, / filters with a regex, Enter
 * opens the tracebacks behind the selected line.
 *
 * A refresh over a million traces costs the target most of a second, so
 * refreshes come no more often than keeps their cost within --max-cost of
 * a core (refresh.h), and the header says how often that is.
 */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/snapdiff.h"
#include "base/monotime.h"
#include "snapshot/snapshot.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "ipc/client.h"
#include "tui/app.h"
#include "tui/filter.h"
#include "tui/growth.h"
#include "tui/listnav.h"
#include "tui/location.h"
#include "tui/prompt.h"
#include "tui/keys.h"
#include "tui/refresh.h"
#include "tui/screen.h"
#include "tui/tbpanel.h"
#include "tui/view.h"

#define TOP_LIMIT 1000
#define TOP_REFRESH_MIN 2.0
#define TOP_TRACEBACKS 2000          /* tracebacks fetched for the panel (tracemalloc) */
#define TOP_TRACEBACKS_SAMPLED 20000 /* the sampled form cannot filter by file */

enum top_sort { TOP_SORT_SIZE, TOP_SORT_COUNT, TOP_SORT_CHANGE, TOP_SORT_GROWING, TOP_SORT_COUNT_ };

static const char *const sort_names[] = { "size", "count", "change", "growing" };
/* The diff's order under each sort (growing re-sorts the rows itself). */
static const enum snapdiff_order sort_order[] = {
	SNAPDIFF_ORDER_SIZE, SNAPDIFF_ORDER_COUNT, SNAPDIFF_ORDER_ABS_SIZE_DIFF, SNAPDIFF_ORDER_SIZE,
};

struct top_row {
	size_t entry;     /* index into diff->entries */
	double growth;    /* bytes per minute (growing order) */
};

struct top_state {
	enum proto_key key;
	enum top_sort sort;
	enum snapshot_source source; /* of the data shown and asked for */
	struct snapshot *prev, *cur;
	struct snapdiff *diff;
	struct growth growth;        /* per-line size history of this key and source */
	struct top_row *rows;        /* the entries shown */
	size_t nrows;
	struct listnav nav;
	struct filter filter;
	struct prompt prompt;
	struct refresh pace;         /* when the next refresh goes, from what one costs */
	int64_t pending;
	char note[512];
	struct tbpanel tb;
};

/* Fastest growth first; ties in the diff's order (stable by entry). */
static int row_cmp_growth(const void *pa, const void *pb)
{
	const struct top_row *a = pa, *b = pb;
	if (a->growth != b->growth)
		return a->growth > b->growth ? -1 : 1;
	return a->entry < b->entry ? -1 : a->entry > b->entry;
}

static void rebuild_rows(struct top_state *T)
{
	char text[8192];
	T->nrows = 0;
	if (T->diff == NULL)
		return;
	T->rows = xreallocarray(T->rows, T->diff->n ? T->diff->n : 1, sizeof *T->rows);
	for (size_t i = 0; i < T->diff->n; i++) {
		const struct snapdiff_entry *e = &T->diff->entries[i];
		struct growth_score gs = { 0 };
		if (e->new_group == NULL || e->new_group->size == 0)
			continue; /* left the top since last time; nothing alive (sampled) */
		/* The growing order shows only the lines that grow steadily. */
		if (T->sort == TOP_SORT_GROWING && !growth_line_score(&T->growth, e->new_group->key_hash, &gs))
			continue;
		location_filter_text(text, sizeof text, e->new_group);
		if (!filter_match(&T->filter, text, strlen(text)))
			continue;
		T->rows[T->nrows++] = (struct top_row){ .entry = i, .growth = gs.per_min };
	}
	if (T->sort == TOP_SORT_GROWING && T->nrows > 1)
		qsort(T->rows, T->nrows, sizeof *T->rows, row_cmp_growth);
}

static void reset_data(struct top_state *T)
{
	snapdiff_free(T->diff);
	T->diff = NULL;
	snapshot_free(T->prev);
	snapshot_free(T->cur);
	T->prev = T->cur = NULL;
	T->nrows = 0;
	/* Sizes of another grouping or source are not the same series. */
	growth_reset(&T->growth);
}

static void on_top(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	struct top_state *T = app_view_state(app, &view_top);
	char err[256];
	struct msg_cost cost;
	T->pending = 0;
	if (!r->ok) {
		snprintf(T->note, sizeof T->note, "%s", r->message);
		app->dirty = true;
		return;
	}
	/* What it cost counts even for data that is no longer wanted. */
	if (msg_decode_cost(r->result, "top result", &cost, err, sizeof err) < 0) {
		app_status(app, true, "the agent's top-N is malformed: %s", err);
		return;
	}
	refresh_cost(&T->pace, &cost);
	app->dirty = true;
	struct snapshot *s = snapshot_from_json(r->result, err, sizeof err);
	if (s == NULL) {
		app_status(app, true, "the agent's top-N is malformed: %s", err);
		return;
	}
	if (s->key != T->key || s->source != T->source) { /* from before a regroup or a switch */
		snapshot_free(s);
		return;
	}
	T->note[0] = '\0';
	snapdiff_free(T->diff);
	snapshot_free(T->prev);
	T->prev = T->cur;
	T->cur = s;
	struct snapshot *base = T->prev ? T->prev : snapshot_new(T->key, false, s->nframe);
	T->diff = snapdiff_new(base, T->cur, err, sizeof err);
	if (T->prev == NULL)
		T->prev = base; /* the empty base: Δ is shown as "new" the first time */
	if (T->diff)
		snapdiff_sort(T->diff, sort_order[T->sort]);
	if (growth_begin(&T->growth, monotime_now()))
		for (size_t i = 0; i < s->ngroups; i++)
			growth_observe(&T->growth, s->groups[i].key_hash, s->groups[i].size);
	rebuild_rows(T);
	app->dirty = true;
}

/* The shortest interval between two refreshes: a few samples apart. */
static double top_min_interval(const struct app *app)
{
	return app->interval * 4 > TOP_REFRESH_MIN ? app->interval * 4 : TOP_REFRESH_MIN;
}

static void request_top(struct app *app)
{
	struct top_state *T = app_view_state(app, &view_top);
	cJSON *args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "key", snapshot_key_name(T->key));
	cJSON_AddNumberToObject(args, "limit", TOP_LIMIT);
	/* Without "source" for tracemalloc: older agents know no such argument. */
	if (T->source == SNAPSHOT_SOURCE_SAMPLED)
		cJSON_AddStringToObject(args, "source", "sampled");
	T->pending = app_agent_request(app, PROTO_CMD_TOP, args, on_top, app) ? 1 : 0;
	refresh_asked(&T->pace, monotime_now(), top_min_interval(app));
}

/* The data follows the source (the user's choice, or the profiler coming
 * and going): what was shown from the other one goes. */
static void follow_source(struct app *app, struct top_state *T)
{
	enum snapshot_source want = app_agent_source(app);
	if (want == T->source)
		return;
	T->source = want;
	reset_data(T);
	T->note[0] = '\0';
	T->pending = 0;
	refresh_now(&T->pace);
}

/* The source of the data can answer now. */
static bool source_ready(const struct app *app, const struct top_state *T)
{
	if (!app_agent_ready(app))
		return false;
	return T->source == SNAPSHOT_SOURCE_SAMPLED ? app_agent_profiling(app) : app_agent_tracing(app);
}

static void top_update(struct app *app)
{
	struct top_state *T = app_view_state(app, &view_top);
	follow_source(app, T);
	if (!source_ready(app, T))
		return;
	if (T->pending || app->paused || !refresh_due(&T->pace, monotime_now()))
		return;
	request_top(app);
}

static void fmt_count(char *buf, size_t len, double v)
{
	if (v < 100000)
		snprintf(buf, len, "%.0f", v);
	else if (v < 1e7)
		snprintf(buf, len, "%.0fk", v / 1e3);
	else
		snprintf(buf, len, "%.1fM", v / 1e6);
}

/* "sampled, 1 per 4 KiB" or "exact: tracemalloc, 5 frames". */
static void source_text(const struct app *app, const struct top_state *T, char *buf, size_t len)
{
	const struct msg_status *st = app_agent_status(app);
	if (T->source == SNAPSHOT_SOURCE_SAMPLED) {
		/* The live figure first: the interval may change under us. */
		uint64_t interval = st && st->has_profile && st->profile.running ? st->profile.interval
				    : T->cur ? T->cur->interval : 0;
		if (interval)
			snapshot_source_text(buf, len, SNAPSHOT_SOURCE_SAMPLED, interval);
		else
			snprintf(buf, len, "sampled");
		return;
	}
	int nframe = st && st->tracing ? st->nframe : T->cur ? (int)T->cur->nframe : 0;
	if (nframe)
		snprintf(buf, len, "exact: tracemalloc, %d frame%s", nframe, nframe == 1 ? "" : "s");
	else
		snprintf(buf, len, "exact: tracemalloc");
}

/* Why the growing order shows nothing. */
static void growing_empty(const struct top_state *T, char *buf, size_t len)
{
	int have = growth_history(&T->growth);
	if (have <= GROWTH_MIN_INTERVALS)
		snprintf(buf, len, "collecting: a line is judged on %d refreshes %.0f s apart (%d so far, while this "
			 "view is open)", GROWTH_MIN_INTERVALS + 1, GROWTH_STEP, have);
	else
		snprintf(buf, len, "no line grows steadily: none grew in %.0f %% of the last %d refreshes and kept "
			 "its gains", GROWTH_MIN_GREW * 100, have);
}

static void top_draw(struct app *app, int top, int rows, int cols)
{
	struct top_state *T = app_view_state(app, &view_top);
	char head[1024], src[128];
	int y = top;
	follow_source(app, T);
	app_agent_describe(app, head, sizeof head);
	y += screen_wrap(y, 0, cols, 3, app_agent_ready(app) ? THEME_NORMAL : THEME_DIM, head, "... (M)");
	source_text(app, T, src, sizeof src);
	screen_textf(y++, 0, cols, THEME_HEADER_LABEL,
		     "source %s (m)   group by %s (g)   sort by %s (o)   filter %s (/)   %zu of %zu groups", src,
		     snapshot_key_name(T->key), sort_names[T->sort],
		     filter_active(&T->filter) ? T->filter.text : "none",
		     T->nrows, T->cur ? T->cur->ngroups : 0);

	if (!app_agent_ready(app)) {
		screen_wrap(y + 1, 2, cols - 4, top + rows - y - 1, THEME_DIM,
			    "Top allocations need the agent inside the process.", "...");
		return;
	}
	if (T->source == SNAPSHOT_SOURCE_SAMPLED && !app_agent_profiling(app)) {
		char why[768], line[900];
		app_agent_profile_why(app, why, sizeof why);
		snprintf(line, sizeof line, "%s; m measures with tracemalloc instead", why);
		screen_wrap(y + 1, 2, cols - 4, top + rows - y - 1, THEME_WARNING, line, "...");
		return;
	}
	if (T->source == SNAPSHOT_SOURCE_TRACEMALLOC && !app_agent_tracing(app)) {
		char line[256];
		snprintf(line, sizeof line,
			 "tracemalloc is off. Press T to start it: only allocations made from then on are traced%s",
			 app_agent_profiling(app) ? " (or m: the sampled profiler runs)." : ".");
		screen_wrap(y + 1, 2, cols - 4, top + rows - y - 1, THEME_WARNING, line, "...");
		return;
	}
	/* How often, and why not more often: wrapped whole, however narrow. */
	char pace[256];
	refresh_describe(&T->pace, pace, sizeof pace);
	y += screen_wrap(y, 0, cols, screen_wrap_rows(cols, pace), THEME_DIM, pace, "...");
	if (T->note[0])
		y += screen_wrap(y, 0, cols, 3, THEME_WARNING, T->note, "...");

	/* Columns: size count avg change | location | line. */
	int loc_w = (cols - 44) * 45 / 100;
	if (loc_w < 20)
		loc_w = cols - 44 > 20 ? cols - 44 : 20;
	int line_x = 44 + loc_w + 1;
	screen_fill(y, 0, cols, THEME_TABLE_HEADER);
	bool growing = T->sort == TOP_SORT_GROWING;
	screen_textf(y, 0, cols, THEME_TABLE_HEADER, "%10s %8s %9s %13s %-*s %s", "SIZE", "COUNT", "AVG",
		     growing ? "GROWTH/min" : "CHANGE", loc_w, "LOCATION", line_x < cols ? "SOURCE" : "");
	y++;
	int list_rows = top + rows - y;
	listnav_fit(&T->nav, (int)T->nrows, list_rows);
	if (T->cur == NULL) {
		screen_text(y, 2, cols - 4, THEME_DIM, false, "asking the agent...");
		return;
	}
	bool first = T->prev && T->prev->ngroups == 0;
	for (int r = 0; r < list_rows && T->nav.top + r < (int)T->nrows; r++) {
		int i = T->nav.top + r;
		const struct snapdiff_entry *e = &T->diff->entries[T->rows[i].entry];
		const struct snapshot_group *g = e->new_group;
		bool sel = i == T->nav.sel;
		char sz[32], cnt[32], avg[32], ch[32], loc[1024];
		units_bytes(sz, sizeof sz, (double)g->size);
		fmt_count(cnt, sizeof cnt, (double)g->count);
		units_bytes(avg, sizeof avg, g->count ? (double)g->size / (double)g->count : 0);
		if (growing) {
			units_bytes_signed(ch, sizeof ch, T->rows[i].growth);
			snprintf(ch + strlen(ch), sizeof ch - strlen(ch), "/min");
		} else if (first)
			snprintf(ch, sizeof ch, "-");
		else if (e->status == SNAPDIFF_NEW)
			snprintf(ch, sizeof ch, "new");
		else
			units_bytes_signed(ch, sizeof ch, (double)e->size_diff);
		location_format(loc, sizeof loc, g, loc_w);
		enum theme_role base = sel ? THEME_SELECTION : THEME_NORMAL;
		if (sel)
			screen_fill(y + r, 0, cols, THEME_SELECTION);
		screen_textf(y + r, 0, 32, base, "%10s %8s %9s", sz, cnt, avg);
		enum theme_role chr = sel ? THEME_SELECTION : growing || (e->size_diff > 0 && !first) ? THEME_GROWTH
				      : e->size_diff < 0 ? THEME_SHRINK : THEME_DIM;
		screen_textf(y + r, 29, 13, chr, "%13s", ch);
		screen_text(y + r, 44, loc_w, base, false, loc);
		if (line_x < cols)
			screen_text(y + r, line_x, cols - line_x, sel ? THEME_SELECTION : THEME_DIM, false, g->line);
	}
	if (T->nrows == 0) {
		char why[256];
		if (filter_active(&T->filter))
			snprintf(why, sizeof why, "nothing matches the filter");
		else if (growing)
			growing_empty(T, why, sizeof why);
		else
			snprintf(why, sizeof why, "no %s allocations yet",
				 T->source == SNAPSHOT_SOURCE_SAMPLED ? "sampled" : "traced");
		screen_text(y, 2, cols - 4, THEME_DIM, false, why);
	}
	tbpanel_draw(&T->tb, top, rows, cols);
}

static void on_tracebacks(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	struct top_state *T = app_view_state(app, &view_top);
	char err[256];
	app->dirty = true;
	if (!T->tb.open)
		return;
	if (!r->ok) {
		tbpanel_set(&T->tb, NULL, r->message);
		return;
	}
	struct snapshot *s = snapshot_from_json(r->result, err, sizeof err);
	tbpanel_set(&T->tb, s, s ? NULL : err);
}

static void open_traceback(struct app *app)
{
	struct top_state *T = app_view_state(app, &view_top);
	if (T->nrows == 0)
		return;
	const struct snapshot_group *g = T->diff->entries[T->rows[T->nav.sel].entry].new_group;
	tbpanel_open(&T->tb, app->pid, g->frames[0].filename, g->frames[0].lineno);
	if (T->key == PROTO_KEY_TRACEBACK) {
		/* The group is a traceback already. */
		struct snapshot *one = snapshot_new(PROTO_KEY_TRACEBACK, false, T->cur->nframe);
		struct snapshot_group *ng = snapshot_add_group(one, g->size, g->count, g->frames,
							       g->nframes, g->line);
		if (g->native)
			snapshot_group_set_native(ng, true);
		tbpanel_set(&T->tb, one, NULL);
		return;
	}
	/* Ask for the tracebacks that pass through this file (the sampled
	 * form cannot filter: more of them); the panel keeps those whose most
	 * recent frame is the selected place. */
	cJSON *args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "key", "traceback");
	if (T->source == SNAPSHOT_SOURCE_SAMPLED) {
		cJSON_AddNumberToObject(args, "limit", TOP_TRACEBACKS_SAMPLED);
		cJSON_AddStringToObject(args, "source", "sampled");
	} else {
		cJSON_AddNumberToObject(args, "limit", TOP_TRACEBACKS);
		cJSON *inc = cJSON_AddArrayToObject(args, "include");
		cJSON_AddItemToArray(inc, cJSON_CreateString(g->frames[0].filename));
	}
	if (!app_agent_request(app, PROTO_CMD_TOP, args, on_tracebacks, app))
		tbpanel_set(&T->tb, NULL, "no agent");
}

static int top_key(struct app *app, int ch)
{
	struct top_state *T = app_view_state(app, &view_top);
	char err[256];
	if (T->prompt.active) {
		enum prompt_result r = prompt_key(&T->prompt, ch);
		if (r == PROMPT_DONE) {
			if (filter_set(&T->filter, T->prompt.buf, err, sizeof err) < 0)
				app_status(app, true, "bad filter: %s", err);
			else
				app_status(app, false, T->filter.text[0] ? "filter: %s" : "filter cleared%s",
					   T->filter.text);
			rebuild_rows(T);
		}
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	if (tbpanel_key(&T->tb, ch))
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	if (listnav_key(&T->nav, ch, (int)T->nrows, LINES / 2))
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	return VIEW_KEY_IGNORED;
}

static int top_group(struct app *app, int ch)
{
	struct top_state *T = app_view_state(app, &view_top);
	(void)ch;
	T->key = (enum proto_key)((T->key + 1) % PROTO_KEY_COUNT);
	reset_data(T);
	refresh_now(&T->pace);
	T->pending = 0;
	app_status(app, false, "grouping by %s", snapshot_key_name(T->key));
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int top_sort(struct app *app, int ch)
{
	struct top_state *T = app_view_state(app, &view_top);
	(void)app;
	(void)ch;
	T->sort = (enum top_sort)((T->sort + 1) % TOP_SORT_COUNT_);
	if (T->diff) {
		snapdiff_sort(T->diff, sort_order[T->sort]);
		rebuild_rows(T);
	}
	T->nav.sel = T->nav.top = 0;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int top_source(struct app *app, int ch)
{
	struct top_state *T = app_view_state(app, &view_top);
	char src[128];
	(void)ch;
	app->source = app_agent_source(app) == SNAPSHOT_SOURCE_SAMPLED ? SNAPSHOT_SOURCE_TRACEMALLOC
									: SNAPSHOT_SOURCE_SAMPLED;
	app->source_chosen = true;
	follow_source(app, T);
	source_text(app, T, src, sizeof src);
	if (T->source == SNAPSHOT_SOURCE_SAMPLED)
		app_status(app, false, "measuring with the sampled profiler (%s): estimates, cheap", src);
	else
		app_status(app, false, "measuring with tracemalloc: exact%s",
			   app_agent_tracing(app) ? "" : " (it is off: T starts it)");
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int top_filter(struct app *app, int ch)
{
	struct top_state *T = app_view_state(app, &view_top);
	(void)app;
	(void)ch;
	prompt_open(&T->prompt, "filter (regex over file:line, Enter applies, empty clears): ", T->filter.text);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int top_refresh(struct app *app, int ch)
{
	struct top_state *T = app_view_state(app, &view_top);
	(void)app;
	(void)ch;
	refresh_now(&T->pace);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int top_open(struct app *app, int ch)
{
	(void)ch;
	open_traceback(app);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static void top_init(struct app *app)
{
	struct top_state *T = app_view_state(app, &view_top);
	refresh_init(&T->pace, top_min_interval(app), app->opts->max_cost);
}

static void top_done(struct app *app)
{
	struct top_state *T = app_view_state(app, &view_top);
	(void)app;
	reset_data(T);
	growth_done(&T->growth);
	tbpanel_done(&T->tb);
	free(T->rows);
	T->rows = NULL;
	filter_done(&T->filter);
}

static const struct binding top_keys[] = {
	{ "g", "group by line / file / whole traceback", NULL, top_group, { 'g' } },
	{ "m", "measure with the sampled profiler (estimates) / tracemalloc (exact; T starts it)", NULL, top_source,
	  { 'm' } },
	{ "o", "sort by size / count / change since the last refresh / growing (steady growth, per minute)",
	  NULL, top_sort, { 'o' } },
	{ "(growing)", "lines that grew in 60 % of the refreshes of the last minutes and kept it, fastest first",
	  NULL, NULL, { 0 } },
	{ "/", "filter locations with a regular expression (PCRE2)", NULL, top_filter, { '/' } },
	{ "Enter", "the tracebacks behind the selected line", NULL, top_open, { '\r', '\n', KEY_ENTER } },
	{ "r", "refresh now (on its own every 2 s, or less often when one refresh costs the target more than "
	  "--max-cost allows: the header says)", NULL, top_refresh, { 'r' } },
	{ "s", "a snapshot from this view's source (from any view)", NULL, NULL, { 0 } },
	{ "Up Down PgUp PgDn Home End j k", "move", NULL, NULL, { 0 } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

/* The filter or name prompt, while open (the app draws it). */
static const struct prompt *top_prompt(struct app *app)
{
	struct top_state *T = app_view_state(app, &view_top);
	return T->prompt.active ? &T->prompt : NULL;
}

const struct view view_top = {
	.state_size = sizeof(struct top_state),
	.name = "Top",
	.init = top_init,
	.update = top_update,
	.draw = top_draw,
	.key = top_key,
	.done = top_done,
	.prompt = top_prompt,
	.keys = top_keys,
};
