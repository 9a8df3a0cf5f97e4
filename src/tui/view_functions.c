/*
 * view_functions.c - per-function memory deltas from the agent's tracer.
 *
 * F switches the tracer on and off in the target; while it runs the table
 * refreshes every second: calls, net change (allocated minus freed during the
 * call, callees included), the largest single-call change, gross bytes
 * allocated, mean per call, and where the function is. o sorts, / filters,
 * z zeroes the counts, R also measures RSS per call for the selected function
 * (costly: only for the few you pick), Enter shows its details.
 */
#include <curses.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/units.h"
#include "base/monotime.h"
#include "base/xalloc.h"
#include "ipc/client.h"
#include "session/session.h"
#include "tui/app.h"
#include "tui/filter.h"
#include "tui/listnav.h"
#include "tui/location.h"
#include "tui/prompt.h"
#include "tui/keys.h"
#include "tui/screen.h"
#include "tui/view.h"

#define FN_LIMIT 500
#define FN_REFRESH 1.0
#define FN_MAX_RSS 32

static const char *const sort_keys[] = { "net", "gross", "max", "calls", "mean" };
#define NSORT ((int)(sizeof sort_keys / sizeof sort_keys[0]))

struct fn_state {
	struct msg_functions table; /* newest functions result (decoded) */
	const struct msg_function **rows; /* rows that pass the filter, into table */
	size_t nrows;
	int sort;
	struct listnav nav;
	struct filter filter;
	struct prompt prompt;
	double next_refresh;
	bool pending;
	bool running;          /* as the agent last said */
	bool detail;
	char *rss[FN_MAX_RSS]; /* functions measured with RSS too */
	int nrss;
	char note[256];
};

static const char *or_dash(const char *s)
{
	return s ? s : "-";
}

static void rebuild_rows(struct fn_state *F)
{
	char text[2048];
	F->nrows = 0;
	F->rows = xreallocarray(F->rows, F->table.nrows + 1, sizeof *F->rows);
	for (size_t i = 0; i < F->table.nrows; i++) {
		const struct msg_function *f = &F->table.rows[i];
		snprintf(text, sizeof text, "%s\n%s:%d", f->name, f->file, f->line);
		if (filter_match(&F->filter, text, strlen(text)))
			F->rows[F->nrows++] = f;
	}
}

static void take_state(struct fn_state *F, const struct msg_functions *t)
{
	F->running = t->running;
	snprintf(F->note, sizeof F->note, "%s", t->error ? t->error : "");
}

static void on_table(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	struct fn_state *F = app_view_state(app, &view_functions);
	char err[256];
	struct msg_functions t;
	F->pending = false;
	app->dirty = true;
	if (!r->ok) {
		snprintf(F->note, sizeof F->note, "%s", r->message);
		return;
	}
	if (msg_decode_functions(r->result, &t, err, sizeof err) < 0) {
		snprintf(F->note, sizeof F->note, "the agent's function table is malformed: %.200s", err);
		return;
	}
	msg_functions_done(&F->table);
	F->table = t;
	take_state(F, &F->table);
	rebuild_rows(F);
}

static void request_table(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	cJSON *args = cJSON_CreateObject();
	cJSON_AddNumberToObject(args, "limit", FN_LIMIT);
	cJSON_AddStringToObject(args, "sort", sort_keys[F->sort]);
	F->pending = app_agent_request(app, PROTO_CMD_FUNCTIONS, args, on_table, app);
	F->next_refresh = monotime_now() + FN_REFRESH;
}

static void on_switch(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	struct fn_state *F = app_view_state(app, &view_functions);
	char err[256];
	struct msg_functions t;
	if (!r->ok) {
		app_status(app, true, "function tracer: %s", r->message);
		return;
	}
	if (msg_decode_functions(r->result, &t, err, sizeof err) < 0) {
		app_status(app, true, "function tracer: a malformed reply: %s", err);
		return;
	}
	take_state(F, &t);
	/* What the session switched on, it switches off when it leaves. */
	session_note_functions(app->session, F->running);
	if (F->running)
		app_status(app, false, "function tracer on (%s%s)", or_dash(t.mode),
			   t.native ? ", C extension" : ", pure-Python fallback: slower");
	else
		app_status(app, false, "function tracer off: every hook removed");
	msg_functions_done(&t);
	F->next_refresh = 0;
}

static void start_tracer(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	cJSON *args = cJSON_CreateObject();
	cJSON *rss = cJSON_AddArrayToObject(args, "rss");
	for (int i = 0; i < F->nrss; i++)
		cJSON_AddItemToArray(rss, cJSON_CreateString(F->rss[i]));
	app_agent_request(app, PROTO_CMD_FUNCTIONS_START, args, on_switch, app);
}

static void fn_update(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	if (!app_agent_ready(app) || F->pending || app->paused)
		return;
	if (monotime_now() < F->next_refresh)
		return;
	/* Keep polling slowly while off, to notice a tracer started elsewhere. */
	request_table(app);
	if (!F->running)
		F->next_refresh = monotime_now() + 5 * FN_REFRESH;
}

static void draw_detail(const struct msg_function *f, int top, int rows, int cols)
{
	char a[32], b[32], c[32];
	int w = cols - 4, x = 2, y = top + 2, ymax = top + rows - 1;
	for (int r = y; r < ymax; r++)
		screen_fill(r, x, w, THEME_NORMAL);
	screen_fill(y, x, w, THEME_TABLE_HEADER);
	screen_textf(y++, x + 1, w - 2, THEME_TABLE_HEADER, "%s  (Esc closes)", f->name);
	screen_textf(y++, x + 1, w - 2, THEME_NORMAL, "defined at %s:%d", f->file, f->line);
	screen_textf(y++, x + 1, w - 2, THEME_NORMAL,
		     "%" PRId64 " calls (%" PRId64 " outermost), net %s, largest call %s, gross %s", f->calls, f->outer,
		     units_bytes_signed(a, sizeof a, (double)f->net), units_bytes_signed(b, sizeof b, (double)f->max),
		     units_bytes(c, sizeof c, (double)f->gross));
	if (f->has_rss)
		screen_textf(y++, x + 1, w - 2, THEME_NORMAL, "RSS: net %s over %" PRId64 " calls, largest call %s",
			     units_bytes_signed(a, sizeof a, (double)f->rss_net), f->rss_calls,
			     units_bytes_signed(b, sizeof b, (double)f->rss_max));
	y++;
	screen_text(y++, x + 1, w - 2, THEME_TITLE, false, "by thread:");
	for (size_t i = 0; i < f->nthreads && y < ymax; i++) {
		const struct msg_function_thread *t = &f->threads[i];
		screen_textf(y++, x + 3, w - 4, THEME_NORMAL, "%-24s %10" PRId64 " calls  net %s  gross %s", t->name,
			     t->calls, units_bytes_signed(a, sizeof a, (double)t->net),
			     units_bytes(b, sizeof b, (double)t->gross));
	}
}

static void fn_draw(struct app *app, int top, int rows, int cols)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	char head[1024];
	int y = top;
	app_agent_describe(app, head, sizeof head);
	screen_text(y++, 0, cols, app_agent_ready(app) ? THEME_NORMAL : THEME_DIM, false, head);
	if (!app_agent_ready(app)) {
		screen_text(y + 1, 2, cols - 4, THEME_DIM, false, "Per-function memory needs the agent inside the process.");
		return;
	}
	const struct msg_functions *t = &F->table;
	if (t->has_table && F->running)
		screen_textf(y++, 0, cols, THEME_HEADER_LABEL,
			     "tracer ON (F stops): %s, %s, counting %s, %.0fs   sort %s (o)   filter %s (/)   %zu functions",
			     or_dash(t->mode), t->native ? "C extension" : "pure-Python fallback, slower",
			     or_dash(t->accounting), t->elapsed, sort_keys[F->sort],
			     filter_active(&F->filter) ? F->filter.text : "none", F->nrows);
	else
		screen_textf(y++, 0, cols, THEME_WARNING,
			     "tracer off: F starts it (it hooks every Python call: the C extension costs about x1.2-2)%s",
			     t->has_table && F->nrows ? "; counts below are from the last run" : "");
	if (F->note[0])
		screen_text(y++, 0, cols, THEME_WARNING, false, F->note);
	screen_fill(y, 0, cols, THEME_TABLE_HEADER);
	screen_textf(y++, 0, cols, THEME_TABLE_HEADER, "%10s %11s %11s %11s %11s  %s", "CALLS", "NET", "MAX CALL",
		     "GROSS", "MEAN", "FUNCTION / LOCATION");
	int list_rows = top + rows - y;
	listnav_fit(&F->nav, (int)F->nrows, list_rows);
	for (int r = 0; r < list_rows && F->nav.top + r < (int)F->nrows; r++) {
		int i = F->nav.top + r;
		const struct msg_function *f = F->rows[i];
		bool sel = i == F->nav.sel;
		char a[32], b[32], c[32], d[32], loc[1200];
		double net = (double)f->net;
		if (sel)
			screen_fill(y + r, 0, cols, THEME_SELECTION);
		screen_textf(y + r, 0, 11, sel ? THEME_SELECTION : THEME_NORMAL, "%10" PRId64, f->calls);
		screen_textf(y + r, 11, 12, sel ? THEME_SELECTION : net > 0 ? THEME_GROWTH : net < 0 ? THEME_SHRINK
											: THEME_NORMAL,
			     "%12s", units_bytes_signed(a, sizeof a, net));
		screen_textf(y + r, 23, 36, sel ? THEME_SELECTION : THEME_NORMAL, "%12s%12s%12s",
			     units_bytes_signed(b, sizeof b, (double)f->max), units_bytes(c, sizeof c, (double)f->gross),
			     units_bytes_signed(d, sizeof d, (double)f->mean));
		snprintf(loc, sizeof loc, "%s%s  %s:%d", f->name, f->has_rss ? " [RSS]" : "", f->file, f->line);
		screen_text(y + r, 61, cols - 61, sel ? THEME_SELECTION : THEME_NORMAL, false, loc);
	}
	if (F->nrows == 0)
		screen_text(y, 2, cols - 4, THEME_DIM, false,
			    F->running ? "no Python calls seen yet" : "no data: press F to start the tracer");
	if (F->detail && F->nrows)
		draw_detail(F->rows[F->nav.sel], top, rows, cols);
	if (F->prompt.active)
		prompt_draw(&F->prompt);
}

static void toggle_rss(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	if (F->nrows == 0)
		return;
	const char *name = F->rows[F->nav.sel]->name;
	for (int i = 0; i < F->nrss; i++) {
		if (strcmp(F->rss[i], name) == 0) {
			free(F->rss[i]);
			F->rss[i] = F->rss[--F->nrss];
			app_status(app, false, "RSS per call off for %s", name);
			goto restart;
		}
	}
	if (F->nrss == FN_MAX_RSS) {
		app_status(app, true, "at most %d functions can have RSS measured", FN_MAX_RSS);
		return;
	}
	F->rss[F->nrss++] = xstrdup(name);
	app_status(app, false, "RSS per call on for %s (it costs a few microseconds per call)", name);
restart:
	if (F->running) {
		app_agent_request(app, PROTO_CMD_FUNCTIONS_STOP, NULL, NULL, NULL);
		start_tracer(app);
	}
}

static int fn_key(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	char err[256];
	if (F->prompt.active) {
		if (prompt_key(&F->prompt, ch) == PROMPT_DONE) {
			if (filter_set(&F->filter, F->prompt.buf, err, sizeof err) < 0)
				app_status(app, true, "bad filter: %s", err);
			rebuild_rows(F);
		}
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	if (F->detail) {
		if (ch == 27 || ch == '\r' || ch == '\n' || ch == KEY_ENTER || ch == 'q')
			F->detail = false;
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	if (listnav_key(&F->nav, ch, (int)F->nrows, LINES / 2))
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	return VIEW_KEY_IGNORED;
}

static int fn_switch(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)ch;
	if (F->running)
		app_agent_request(app, PROTO_CMD_FUNCTIONS_STOP, NULL, on_switch, app);
	else
		start_tracer(app);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int fn_sort(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)app;
	(void)ch;
	F->sort = (F->sort + 1) % NSORT;
	F->next_refresh = 0;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int fn_zero(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)ch;
	app_agent_request(app, PROTO_CMD_FUNCTIONS_RESET, NULL, NULL, NULL);
	F->next_refresh = 0;
	app_status(app, false, "function counts zeroed");
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int fn_rss(struct app *app, int ch)
{
	(void)ch;
	toggle_rss(app);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int fn_filter(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)app;
	(void)ch;
	prompt_open(&F->prompt, "filter (regex over name and file:line, Enter applies, empty clears): ",
		    F->filter.text);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int fn_detail(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)app;
	(void)ch;
	F->detail = F->nrows > 0;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static void fn_done(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)app;
	msg_functions_done(&F->table);
	free(F->rows);
	F->rows = NULL;
	for (int i = 0; i < F->nrss; i++)
		free(F->rss[i]);
	F->nrss = 0;
	filter_done(&F->filter);
}

static const struct binding fn_keys[] = {
	{ "F", "per-function tracer on / off (in the target)", NULL, fn_switch, { 'F' } },
	{ "o", "sort by net / gross / largest call / calls / mean", NULL, fn_sort, { 'o' } },
	{ "/", "filter by function name or file with a regular expression", NULL, fn_filter, { '/' } },
	{ "z", "zero the counts", NULL, fn_zero, { 'z' } },
	{ "R", "also measure RSS per call for the selected function (costly)", NULL, fn_rss, { 'R' } },
	{ "Enter", "details: location, RSS, per-thread split", NULL, fn_detail, { '\r', '\n', KEY_ENTER } },
	{ "(columns)", "net = allocated minus freed during calls (callees included)", NULL, NULL, { 0 } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

const struct view view_functions = {
	.state_size = sizeof(struct fn_state),
	.name = "Functions",
	.update = fn_update,
	.draw = fn_draw,
	.key = fn_key,
	.done = fn_done,
	.keys = fn_keys,
};
