/*
 * view_types.c - "Types": the live objects by type (the agent's `types`),
 * and, on Enter, why the objects of one type are alive (`why`).
 *
 * The list comes from a walk over every object the gc tracks, done in one
 * C call that holds the GIL: it pauses the target. So it is asked for when
 * the view is first shown, on r, and on its own at most every 10 s (or less
 * often when one walk costs more than --max-cost of a core) while the view
 * is shown, never with another walk in flight; the header says when the
 * last one was and what it cost. b keeps the list as a base, by type name,
 * and the Δ columns show the change since. Enter asks for the reference
 * chains that keep a few objects of the selected type alive and shows them
 * in a panel over the view (whypanel.h).
 */
#include <curses.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/monotime.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "ipc/client.h"
#include "tui/app.h"
#include "tui/filter.h"
#include "tui/keys.h"
#include "tui/listnav.h"
#include "tui/prompt.h"
#include "tui/refresh.h"
#include "tui/screen.h"
#include "tui/view.h"
#include "tui/whypanel.h"

#define TYPES_LIMIT MSG_TYPES_ROWS_MAX /* every type: a base compares whole lists */
#define TYPES_REFRESH 10.0
#define WHY_SAMPLES 8
#define TYPE_X 47 /* where the TYPE column starts */

enum types_sort { SORT_SIZE, SORT_COUNT, SORT_CHANGE, SORT_COUNT_ };
static const char *const sort_names[] = { "size", "count", "change since the base" };

/* One type of the list kept as the base. */
struct base_row {
	char *type;                  /* its exact name */
	uint64_t count, size;
};

/* A row shown: one of the reply's, and its change since the base. */
struct types_row {
	const struct msg_type_row *t;
	const char *exact;           /* the type's name as the agent gave it */
	bool has_delta;
	int64_t dcount, dsize;
};

struct types_state {
	struct msg_types cur;        /* the newest list (decoded) */
	/* Each row's name exactly as the agent sent it: the decoded one is
	 * made display-safe, and a class may be called anything (controls,
	 * bidi marks), so that one would not name it back to the agent. */
	char **exact;
	bool have;
	double got_t;                /* when it came (monotonic) */
	struct types_row *rows;      /* those that pass the filter, in the sort's order */
	size_t nrows;
	enum types_sort sort;
	struct listnav nav;
	struct filter filter;
	struct prompt prompt;
	struct refresh pace;
	bool pending;                /* a types request in flight */
	bool stopped;                /* the agent cannot walk: no more on its own, r tries again */
	char note[512];
	/* The base: sorted by type name; complete when it holds every type. */
	struct base_row *base;
	size_t nbase;
	bool has_base, base_complete;
	time_t base_wall;
	/* Why alive. */
	struct whypanel why;
	bool why_pending;
};

static struct types_state *state(const struct app *app)
{
	return app_view_state(app, &view_types);
}

/* Plain ASCII signs: --ascii, or a terminal without UTF-8. */
static bool ascii_only(const struct app *app)
{
	return !(app->utf8 && app->style == GRAPH_BRAILLE);
}

static int base_cmp(const void *a, const void *b)
{
	return strcmp(((const struct base_row *)a)->type, ((const struct base_row *)b)->type);
}

static const struct base_row *base_find(const struct types_state *S, const char *type)
{
	struct base_row key = { .type = (char *)type };
	return S->nbase ? bsearch(&key, S->base, S->nbase, sizeof *S->base, base_cmp) : NULL;
}

static void base_clear(struct types_state *S)
{
	for (size_t i = 0; i < S->nbase; i++)
		free(S->base[i].type);
	free(S->base);
	S->base = NULL;
	S->nbase = 0;
	S->has_base = false;
}

static int64_t diff_u64(uint64_t now, uint64_t then)
{
	return now >= then ? (int64_t)(now - then) : -(int64_t)(then - now);
}

static int row_cmp(const void *pa, const void *pb, enum types_sort sort)
{
	const struct types_row *a = pa, *b = pb;
	switch (sort) {
	case SORT_CHANGE:
		if (a->has_delta != b->has_delta)
			return a->has_delta ? -1 : 1;
		if (a->dsize != b->dsize)
			return a->dsize > b->dsize ? -1 : 1;
		break;
	case SORT_COUNT:
		if (a->t->count != b->t->count)
			return a->t->count > b->t->count ? -1 : 1;
		break;
	case SORT_SIZE:
	case SORT_COUNT_:
		break;
	}
	if (a->t->size != b->t->size)
		return a->t->size > b->t->size ? -1 : 1;
	return strcmp(a->exact, b->exact);
}

static int cmp_size(const void *a, const void *b) { return row_cmp(a, b, SORT_SIZE); }
static int cmp_count(const void *a, const void *b) { return row_cmp(a, b, SORT_COUNT); }
static int cmp_change(const void *a, const void *b) { return row_cmp(a, b, SORT_CHANGE); }

/* The exact name of the selected type (allocated), or NULL. */
static char *selected(const struct types_state *S)
{
	return S->nrows && S->nav.sel < (int)S->nrows ? xstrdup(S->rows[S->nav.sel].exact) : NULL;
}

/* The rows again, from the newest list, the filter, the base and the sort;
 * the type named SEL (taken; NULL: none) is selected if it is there. */
static void rebuild_rows(struct types_state *S, char *sel)
{
	S->nrows = 0;
	S->rows = xreallocarray(S->rows, S->cur.nrows + 1, sizeof *S->rows);
	for (size_t i = 0; i < S->cur.nrows; i++) {
		const struct msg_type_row *t = &S->cur.rows[i];
		if (!filter_match(&S->filter, t->type, strlen(t->type)))
			continue;
		struct types_row r = { .t = t, .exact = S->exact[i] };
		if (S->has_base) {
			const struct base_row *b = base_find(S, r.exact);
			/* Not in a complete base: none were alive then. */
			if (b || S->base_complete) {
				r.has_delta = true;
				r.dcount = diff_u64(t->count, b ? b->count : 0);
				r.dsize = diff_u64(t->size, b ? b->size : 0);
			}
		}
		S->rows[S->nrows++] = r;
	}
	static int (*const cmp[])(const void *, const void *) = { cmp_size, cmp_count, cmp_change };
	if (S->nrows > 1)
		qsort(S->rows, S->nrows, sizeof *S->rows, cmp[S->sort]);
	if (sel) {
		for (size_t i = 0; i < S->nrows; i++)
			if (strcmp(S->rows[i].exact, sel) == 0)
				S->nav.sel = (int)i;
		free(sel);
	}
}

/* The rows' names as the agent sent them, in the decoded rows' order (the
 * decoder checked the reply's shape; a name it cannot find is the
 * display-safe one). */
static char **exact_names(const cJSON *result, const struct msg_types *t)
{
	char **names = xcalloc(t->nrows + 1, sizeof *names);
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(result, "rows"), *row;
	size_t i = 0;
	cJSON_ArrayForEach(row, rows) {
		if (i == t->nrows)
			break;
		const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "type"));
		names[i] = xstrdup(s ? s : t->rows[i].type);
		i++;
	}
	for (; i < t->nrows; i++)
		names[i] = xstrdup(t->rows[i].type);
	return names;
}

static void exact_free(struct types_state *S)
{
	for (size_t i = 0; S->exact && i < S->cur.nrows; i++)
		free(S->exact[i]);
	free(S->exact);
	S->exact = NULL;
}

/* A failed request, as one sentence. */
static void reply_error(const struct app *app, const struct client_reply *r, const char *cmd, char *buf,
			size_t len)
{
	if (r->code == PROTO_ERR_UNKNOWN_COMMAND)
		snprintf(buf, len, "the agent in pid %d is older than this pmt-top and has no \"%s\" command (it "
			 "stays loaded until the process ends)", (int)app->pid, cmd);
	else
		snprintf(buf, len, "%s", r->message);
}

static void on_types(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	struct types_state *S = state(app);
	char err[256];
	struct msg_types t;
	S->pending = false;
	app->dirty = true;
	if (!r->ok) {
		reply_error(app, r, "types", S->note, sizeof S->note);
		/* Asking again on its own would only fail again. */
		if (!r->local && (r->code == PROTO_ERR_UNAVAILABLE || r->code == PROTO_ERR_UNKNOWN_COMMAND))
			S->stopped = true;
		return;
	}
	if (msg_decode_types(r->result, &t, err, sizeof err) < 0) {
		snprintf(S->note, sizeof S->note, "the agent's types reply is malformed: %.200s", err);
		return;
	}
	refresh_cost(&S->pace, &(struct msg_cost){ .took_ms = t.seconds * 1000.0, .cpu_ms = -1 });
	S->note[0] = '\0';
	char *sel = selected(S); /* before the rows it points into go */
	exact_free(S);
	S->exact = exact_names(r->result, &t);
	msg_types_done(&S->cur);
	S->cur = t;
	S->have = true;
	S->got_t = monotime_now();
	rebuild_rows(S, sel);
}

static void request_types(struct app *app)
{
	struct types_state *S = state(app);
	cJSON *args = cJSON_CreateObject();
	cJSON_AddNumberToObject(args, "limit", TYPES_LIMIT);
	S->pending = app_agent_request(app, PROTO_CMD_TYPES, args, on_types, app);
	refresh_asked(&S->pace, monotime_now(), TYPES_REFRESH);
}

static void types_update(struct app *app)
{
	struct types_state *S = state(app);
	/* One walk at a time: a why in flight pauses the target too. */
	if (!app_agent_ready(app) || app->paused || S->pending || S->why_pending || S->stopped)
		return;
	if (refresh_due(&S->pace, monotime_now()))
		request_types(app);
}

/* "45,678 objects tracked by the gc (3.30 MiB), 145,114 blocks allocated,
 * 2.10 MiB traced by tracemalloc (...)". */
static void totals_text(const struct types_state *S, char *buf, size_t len)
{
	char n1[32], n2[32], b1[32], b2[32], traced[64] = "";
	const struct msg_types *t = &S->cur;
	if (t->has_traced)
		snprintf(traced, sizeof traced, ", %s traced by tracemalloc", units_bytes(b2, sizeof b2,
											(double)t->traced));
	snprintf(buf, len, "%s objects tracked by the gc (%s), %s blocks allocated%s; only gc-tracked objects "
		 "are listed (containers and class instances; str, bytes, int and float are not)%s",
		 units_count(n1, sizeof n1, (int64_t)t->tracked, false), units_bytes(b1, sizeof b1,
										    (double)t->tracked_bytes),
		 units_count(n2, sizeof n2, (int64_t)t->allocated_blocks, false), traced,
		 t->complete ? "" : "; the walk stopped before it counted every object");
}

/* "50 ms", or "12.3 s" from 10 s on. */
static const char *took(char *buf, size_t len, double seconds)
{
	if (seconds < 10)
		snprintf(buf, len, "%.0f ms", seconds * 1000.0);
	else
		snprintf(buf, len, "%.1f s", seconds);
	return buf;
}

/* "walk 12 ms, longest pause 12 ms, 3s ago; next in 7s (r: now)". */
static void walk_text(const struct app *app, const struct types_state *S, char *buf, size_t len)
{
	char ago[32], next[32], every[256], t1[32], t2[32];
	double now = monotime_now();
	refresh_describe(&S->pace, every, sizeof every);
	if (!S->have) {
		snprintf(buf, len, "%s; the walk pauses the target", S->pending ? "walking the heap..."
								     : S->stopped ? "not asked again on its own (r: now)"
										  : every);
		return;
	}
	units_duration(ago, sizeof ago, now - S->got_t);
	int n = snprintf(buf, len, "walk %s, longest pause %s, %s ago", took(t1, sizeof t1, S->cur.seconds),
			 took(t2, sizeof t2, S->cur.pause_max), ago);
	if (n < 0 || (size_t)n >= len)
		return;
	if (S->pending)
		snprintf(buf + n, len - (size_t)n, "; walking again...");
	else if (app->paused)
		snprintf(buf + n, len - (size_t)n, "; paused (p resumes)");
	else if (S->stopped)
		snprintf(buf + n, len - (size_t)n, "; not again on its own (r: now)");
	else
		snprintf(buf + n, len - (size_t)n, "; next in %s (r: now); %s",
			 units_duration(next, sizeof next, S->pace.next > now ? S->pace.next - now : 0), every);
}

static void draw_row(const struct types_state *S, const struct types_row *r, int y, int cols, bool sel)
{
	char cnt[32], sz[32], dc[32], ds[32];
	units_count(cnt, sizeof cnt, (int64_t)r->t->count, false);
	units_bytes(sz, sizeof sz, (double)r->t->size);
	if (r->has_delta) {
		units_count(dc, sizeof dc, r->dcount, true);
		units_bytes_signed(ds, sizeof ds, (double)r->dsize);
	} else {
		snprintf(dc, sizeof dc, "%s", S->has_base ? "?" : "-");
		snprintf(ds, sizeof ds, "%s", S->has_base ? "?" : "-");
	}
	enum theme_role base = sel ? THEME_SELECTION : THEME_NORMAL;
	enum theme_role dr = sel ? THEME_SELECTION : !r->has_delta || r->dsize == 0 ? THEME_DIM
			     : r->dsize > 0 ? THEME_GROWTH : THEME_SHRINK;
	if (sel)
		screen_fill(y, 0, cols, THEME_SELECTION);
	screen_textf(y, 0, cols, base, "%12s %10s", cnt, sz);
	screen_textf(y, 23, cols - 23, dr, " %10s %10s", dc, ds);
	if (cols > TYPE_X)
		screen_text(y, TYPE_X, cols - TYPE_X, base, false, r->t->type);
}

static void types_draw(struct app *app, int top, int rows, int cols)
{
	struct types_state *S = state(app);
	char head[1024], text[1024];
	int y = top;
	app_agent_describe(app, head, sizeof head);
	y += screen_wrap(y, 0, cols, 3, app_agent_ready(app) ? THEME_NORMAL : THEME_DIM, head, "... (M)");
	if (!app_agent_ready(app)) {
		screen_wrap(y + 1, 2, cols - 4, top + rows - y - 1, THEME_DIM,
			    "Live objects by type need the agent inside the process.", "...");
		return;
	}
	if (S->have) {
		totals_text(S, text, sizeof text);
		y += screen_wrap(y, 0, cols, 2, THEME_HEADER_VALUE, text, "...");
	}
	walk_text(app, S, text, sizeof text);
	y += screen_wrap(y, 0, cols, 2, THEME_DIM, text, "...");
	char base[64] = "none (b)";
	if (S->has_base) {
		struct tm tm;
		localtime_r(&S->base_wall, &tm);
		strftime(base, sizeof base, "of %H:%M:%S (B forgets it)", &tm);
	}
	screen_textf(y++, 0, cols, THEME_HEADER_LABEL, "sort by %s (o)   filter %s (/)   base %s   %zu of %zu types",
		     sort_names[S->sort], filter_active(&S->filter) ? S->filter.text : "none", base, S->nrows,
		     S->cur.nrows);
	if (S->note[0])
		y += screen_wrap(y, 0, cols, 3, THEME_WARNING, S->note, "...");
	screen_fill(y, 0, cols, THEME_TABLE_HEADER);
	bool ascii = ascii_only(app);
	/* Padded by hand: printf counts bytes, and the delta sign is two. */
	screen_textf(y++, 0, cols, THEME_TABLE_HEADER, "%12s %10s %*s %*s  %s", "COUNT", "SIZE", ascii ? 10 : 11,
		     ascii ? "dCOUNT" : "\u0394COUNT", ascii ? 10 : 11, ascii ? "dSIZE" : "\u0394SIZE", "TYPE");
	int list_rows = top + rows - y;
	listnav_fit(&S->nav, (int)S->nrows, list_rows);
	if (!S->have) {
		if (!S->note[0])
			screen_text(y, 2, cols - 4, THEME_DIM, false, "asking the agent...");
	} else if (S->nrows == 0) {
		screen_text(y, 2, cols - 4, THEME_DIM, false,
			    filter_active(&S->filter) ? "no type matches the filter" : "no object tracked");
	}
	for (int r = 0; r < list_rows && S->nav.top + r < (int)S->nrows; r++) {
		int i = S->nav.top + r;
		draw_row(S, &S->rows[i], y + r, cols, i == S->nav.sel);
	}
	whypanel_draw(&S->why, top, rows, cols);
}

static void on_why(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	struct types_state *S = state(app);
	char err[512];
	struct msg_why w;
	S->why_pending = false;
	app->dirty = true;
	if (S->why.type == NULL)
		return; /* the view started again meanwhile */
	if (!r->ok) {
		reply_error(app, r, "why", err, sizeof err);
		whypanel_fail(&S->why, err);
		return;
	}
	if (msg_decode_why(r->result, &w, err, sizeof err) < 0) {
		char line[600];
		snprintf(line, sizeof line, "the agent's why reply is malformed: %s", err);
		whypanel_fail(&S->why, line);
		return;
	}
	whypanel_set(&S->why, &w);
	msg_why_done(&w);
}

static int key_why(struct app *app, int ch)
{
	struct types_state *S = state(app);
	(void)ch;
	if (S->why_pending) {
		/* One search at a time: its answer shows there. */
		S->why.open = true;
		if (S->nrows && strcmp(S->rows[S->nav.sel].t->type, S->why.type) != 0)
			app_status(app, false, "still asking the agent who holds %s: one search at a time", S->why.type);
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	if (S->nrows == 0)
		return VIEW_KEY_HANDLED;
	if (!app_agent_ready(app)) {
		app_status(app, true, "who holds it needs the agent in pid %d, which is not ready", (int)app->pid);
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	const struct types_row *row = &S->rows[S->nav.sel];
	whypanel_open(&S->why, row->t->type, ascii_only(app));
	cJSON *args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "type", row->exact);
	cJSON_AddNumberToObject(args, "samples", WHY_SAMPLES);
	if (app_agent_request(app, PROTO_CMD_WHY, args, on_why, app))
		S->why_pending = true;
	else
		whypanel_fail(&S->why, "the request could not be sent: see the status line (M shows every message)");
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_sort(struct app *app, int ch)
{
	struct types_state *S = state(app);
	(void)ch;
	S->sort = (enum types_sort)((S->sort + 1) % SORT_COUNT_);
	if (S->sort == SORT_CHANGE && !S->has_base)
		app_status(app, false, "sorted by change since the base: there is none yet (b marks one)");
	S->nav.sel = S->nav.top = 0; /* a new order starts at its top */
	rebuild_rows(S, NULL);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_filter(struct app *app, int ch)
{
	struct types_state *S = state(app);
	(void)ch;
	prompt_open(&S->prompt, "filter (regex over the type name, Enter applies, empty clears): ", S->filter.text);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_base(struct app *app, int ch)
{
	struct types_state *S = state(app);
	char n[32];
	(void)ch;
	if (!S->have) {
		app_status(app, true, "no list yet to keep as the base: wait for the first one (r asks now)");
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	base_clear(S);
	S->base = xcalloc(S->cur.nrows + 1, sizeof *S->base);
	for (size_t i = 0; i < S->cur.nrows; i++)
		S->base[i] = (struct base_row){ .type = xstrdup(S->exact[i]), .count = S->cur.rows[i].count,
						.size = S->cur.rows[i].size };
	S->nbase = S->cur.nrows;
	qsort(S->base, S->nbase, sizeof *S->base, base_cmp);
	S->has_base = true;
	S->base_complete = S->cur.complete && S->cur.nrows < TYPES_LIMIT;
	S->base_wall = time(NULL);
	rebuild_rows(S, selected(S));
	app_status(app, false, "base: this list of %s types; the delta columns show the change since (r refreshes, "
		   "B forgets it)", units_count(n, sizeof n, (int64_t)S->nbase, false));
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_unbase(struct app *app, int ch)
{
	struct types_state *S = state(app);
	(void)ch;
	if (!S->has_base)
		return VIEW_KEY_HANDLED;
	base_clear(S);
	rebuild_rows(S, selected(S));
	app_status(app, false, "base forgotten");
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_refresh(struct app *app, int ch)
{
	struct types_state *S = state(app);
	(void)ch;
	S->stopped = false;
	refresh_now(&S->pace);
	if (S->pending)
		app_status(app, false, "a walk is under way: its list comes first");
	else if (S->why_pending)
		app_status(app, false, "refreshing once the agent has said who holds %s", S->why.type);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int types_key(struct app *app, int ch)
{
	struct types_state *S = state(app);
	char err[256];
	if (S->prompt.active) {
		if (prompt_key(&S->prompt, ch) == PROMPT_DONE) {
			if (filter_set(&S->filter, S->prompt.buf, err, sizeof err) < 0)
				app_status(app, true, "bad filter: %s", err);
			S->nav.sel = S->nav.top = 0;
			rebuild_rows(S, NULL);
		}
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	if (whypanel_key(&S->why, ch))
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	if (listnav_key(&S->nav, ch, (int)S->nrows, LINES / 2))
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	return VIEW_KEY_IGNORED;
}

static const struct prompt *types_prompt(struct app *app)
{
	struct types_state *S = state(app);
	return S->prompt.active ? &S->prompt : NULL;
}

static void types_init(struct app *app)
{
	struct types_state *S = state(app);
	refresh_init(&S->pace, TYPES_REFRESH, app->opts->max_cost);
}

static void types_done(struct app *app)
{
	struct types_state *S = state(app);
	exact_free(S);
	msg_types_done(&S->cur);
	free(S->rows);
	S->rows = NULL;
	S->nrows = 0;
	base_clear(S);
	filter_done(&S->filter);
	whypanel_done(&S->why);
}

static const struct binding types_keys[] = {
	{ "(view)", "live objects by type: every object the gc tracks (containers and class instances; str, "
	  "bytes, int and float are not), counted and sized in one walk that pauses the target; asked for when "
	  "the view is first shown, on r, and at most every 10 s while it is shown (less often when a walk costs "
	  "more than --max-cost allows)", NULL, NULL, { 0 } },
	{ "Enter", "who holds the selected type: the shortest reference chains from a root (module global, class "
	  "attribute, thread local) to 8 of its objects, grouped by holder with what each retains", NULL, key_why,
	  { '\r', '\n', KEY_ENTER } },
	{ "(panel)", "arrows, PgUp/PgDn scroll it; Esc or q closes it", NULL, NULL, { 0 } },
	{ "o", "sort by size / count / change since the base", NULL, key_sort, { 'o' } },
	{ "/", "filter type names with a regular expression (PCRE2)", NULL, key_filter, { '/' } },
	{ "b", "keep this list as the base: the delta columns (COUNT and SIZE) show each type's change since",
	  NULL, key_base, { 'b' } },
	{ "B", "forget the base", NULL, key_unbase, { 'B' } },
	{ "r", "refresh now", NULL, key_refresh, { 'r' } },
	{ "Up Down PgUp PgDn Home End j k", "move", NULL, NULL, { 0 } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

const struct view view_types = {
	.state_size = sizeof(struct types_state),
	.name = "Types",
	.init = types_init,
	.update = types_update,
	.draw = types_draw,
	.key = types_key,
	.done = types_done,
	.prompt = types_prompt,
	.keys = types_keys,
};
