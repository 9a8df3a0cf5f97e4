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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect/units.h"
#include "ipc/xalloc.h"
#include "ipc/client.h"
#include "tui/app.h"
#include "tui/filter.h"
#include "tui/listnav.h"
#include "tui/location.h"
#include "tui/prompt.h"
#include "tui/screen.h"
#include "tui/view.h"

#define FN_LIMIT 500
#define FN_REFRESH 1.0
#define FN_MAX_RSS 32

static const char *const sort_keys[] = { "net", "gross", "max", "calls", "mean" };
#define NSORT ((int)(sizeof sort_keys / sizeof sort_keys[0]))

static struct {
	cJSON *table;          /* newest functions result (owned) */
	const cJSON **rows;    /* rows that pass the filter, into table */
	size_t nrows;
	int sort;
	struct listnav nav;
	struct filter filter;
	struct prompt prompt;
	double next_refresh;
	bool pending;
	bool running;          /* as the agent last said */
	bool started_here;     /* we switched it on: switch it off on quit */
	bool detail;
	char *rss[FN_MAX_RSS]; /* functions measured with RSS too */
	int nrss;
	char note[256];
} F;

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static void rebuild_rows(void)
{
	char text[2048];
	F.nrows = 0;
	const cJSON *fns = F.table ? cJSON_GetObjectItemCaseSensitive(F.table, "functions") : NULL;
	int n = cJSON_GetArraySize(fns);
	F.rows = xreallocarray(F.rows, n > 0 ? (size_t)n : 1, sizeof *F.rows);
	const cJSON *f;
	cJSON_ArrayForEach(f, fns) {
		snprintf(text, sizeof text, "%s\n%s:%.0f", str(f, "name"), str(f, "file"), num(f, "line"));
		if (filter_match(&F.filter, text, strlen(text)))
			F.rows[F.nrows++] = f;
	}
}

static void take_state(const cJSON *result)
{
	F.running = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "running"));
	const char *err = str(result, "error");
	snprintf(F.note, sizeof F.note, "%s", err);
}

static void on_table(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	F.pending = false;
	app->dirty = true;
	if (!r->ok) {
		snprintf(F.note, sizeof F.note, "%s", r->message);
		return;
	}
	cJSON_Delete(F.table);
	F.table = client_reply_take_result(r);
	take_state(F.table);
	rebuild_rows();
}

static void request_table(struct app *app)
{
	cJSON *args = cJSON_CreateObject();
	cJSON_AddNumberToObject(args, "limit", FN_LIMIT);
	cJSON_AddStringToObject(args, "sort", sort_keys[F.sort]);
	F.pending = app_agent_request(app, PROTO_CMD_FUNCTIONS, args, on_table, app);
	F.next_refresh = proc_sampler_now() + FN_REFRESH;
}

static void on_switch(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	if (!r->ok) {
		app_status(app, true, "function tracer: %s", r->message);
		return;
	}
	take_state(r->result);
	if (F.running)
		app_status(app, false, "function tracer on (%s%s)", str(r->result, "mode"),
			   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r->result, "native")) ? ", C extension"
				   : ", pure-Python fallback: slower");
	else
		app_status(app, false, "function tracer off: every hook removed");
	F.next_refresh = 0;
}

static void start_tracer(struct app *app)
{
	cJSON *args = cJSON_CreateObject();
	cJSON *rss = cJSON_AddArrayToObject(args, "rss");
	for (int i = 0; i < F.nrss; i++)
		cJSON_AddItemToArray(rss, cJSON_CreateString(F.rss[i]));
	if (app_agent_request(app, PROTO_CMD_FUNCTIONS_START, args, on_switch, app))
		F.started_here = true;
}

static void fn_update(struct app *app)
{
	if (app->agent_state != APP_AGENT_READY || F.pending || app->paused)
		return;
	if (proc_sampler_now() < F.next_refresh)
		return;
	/* Keep polling slowly while off, to notice a tracer started elsewhere. */
	request_table(app);
	if (!F.running)
		F.next_refresh = proc_sampler_now() + 5 * FN_REFRESH;
}

static void draw_detail(const cJSON *f, int top, int rows, int cols)
{
	char a[32], b[32], c[32];
	int w = cols - 4, x = 2, y = top + 2, ymax = top + rows - 1;
	for (int r = y; r < ymax; r++)
		screen_fill(r, x, w, THEME_NORMAL);
	screen_fill(y, x, w, THEME_TABLE_HEADER);
	screen_textf(y++, x + 1, w - 2, THEME_TABLE_HEADER, "%s  (Esc closes)", str(f, "name"));
	screen_textf(y++, x + 1, w - 2, THEME_NORMAL, "defined at %s:%.0f", str(f, "file"), num(f, "line"));
	screen_textf(y++, x + 1, w - 2, THEME_NORMAL, "%.0f calls (%.0f outermost), net %s, largest call %s, gross %s",
		     num(f, "calls"), num(f, "outer"), units_bytes_signed(a, sizeof a, num(f, "net")),
		     units_bytes_signed(b, sizeof b, num(f, "max")), units_bytes(c, sizeof c, num(f, "gross")));
	const cJSON *rss = cJSON_GetObjectItemCaseSensitive(f, "rss");
	if (cJSON_IsObject(rss))
		screen_textf(y++, x + 1, w - 2, THEME_NORMAL, "RSS: net %s over %.0f calls, largest call %s",
			     units_bytes_signed(a, sizeof a, num(rss, "net")), num(rss, "calls"),
			     units_bytes_signed(b, sizeof b, num(rss, "max")));
	y++;
	screen_text(y++, x + 1, w - 2, THEME_TITLE, false, "by thread:");
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(f, "threads")) {
		if (y >= ymax)
			break;
		screen_textf(y++, x + 3, w - 4, THEME_NORMAL, "%-24s %10.0f calls  net %s  gross %s", str(t, "name"),
			     num(t, "calls"), units_bytes_signed(a, sizeof a, num(t, "net")),
			     units_bytes(b, sizeof b, num(t, "gross")));
	}
}

static void fn_draw(struct app *app, int top, int rows, int cols)
{
	char head[1024];
	int y = top;
	app_agent_describe(app, head, sizeof head);
	screen_text(y++, 0, cols, app->agent_state == APP_AGENT_READY ? THEME_NORMAL : THEME_DIM, false, head);
	if (app->agent_state != APP_AGENT_READY) {
		screen_text(y + 1, 2, cols - 4, THEME_DIM, false, "Per-function memory needs the agent inside the process.");
		return;
	}
	const cJSON *t = F.table;
	if (t && F.running)
		screen_textf(y++, 0, cols, THEME_HEADER_LABEL,
			     "tracer ON (F stops): %s, %s, counting %s, %.0fs   sort %s (o)   filter %s (/)   %zu functions",
			     str(t, "mode"), cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "native")) ? "C extension"
				     : "pure-Python fallback, slower",
			     str(t, "accounting"), num(t, "elapsed"), sort_keys[F.sort],
			     filter_active(&F.filter) ? F.filter.text : "none", F.nrows);
	else
		screen_textf(y++, 0, cols, THEME_WARNING,
			     "tracer off: F starts it (it hooks every Python call: the C extension costs about x1.2-2)%s",
			     t && F.nrows ? "; counts below are from the last run" : "");
	if (F.note[0])
		screen_text(y++, 0, cols, THEME_WARNING, false, F.note);
	screen_fill(y, 0, cols, THEME_TABLE_HEADER);
	screen_textf(y++, 0, cols, THEME_TABLE_HEADER, "%10s %11s %11s %11s %11s  %s", "CALLS", "NET", "MAX CALL",
		     "GROSS", "MEAN", "FUNCTION / LOCATION");
	int list_rows = top + rows - y;
	listnav_fit(&F.nav, (int)F.nrows, list_rows);
	for (int r = 0; r < list_rows && F.nav.top + r < (int)F.nrows; r++) {
		int i = F.nav.top + r;
		const cJSON *f = F.rows[i];
		bool sel = i == F.nav.sel;
		char a[32], b[32], c[32], d[32], loc[1200];
		double net = num(f, "net");
		if (sel)
			screen_fill(y + r, 0, cols, THEME_SELECTION);
		screen_textf(y + r, 0, 11, sel ? THEME_SELECTION : THEME_NORMAL, "%10.0f", num(f, "calls"));
		screen_textf(y + r, 11, 12, sel ? THEME_SELECTION : net > 0 ? THEME_GROWTH : net < 0 ? THEME_SHRINK
											: THEME_NORMAL,
			     "%12s", units_bytes_signed(a, sizeof a, net));
		screen_textf(y + r, 23, 36, sel ? THEME_SELECTION : THEME_NORMAL, "%12s%12s%12s",
			     units_bytes_signed(b, sizeof b, num(f, "max")), units_bytes(c, sizeof c, num(f, "gross")),
			     units_bytes_signed(d, sizeof d, num(f, "mean")));
		snprintf(loc, sizeof loc, "%s%s  %s:%.0f", str(f, "name"),
			 cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(f, "rss")) ? " [RSS]" : "", str(f, "file"),
			 num(f, "line"));
		screen_text(y + r, 61, cols - 61, sel ? THEME_SELECTION : THEME_NORMAL, false, loc);
	}
	if (F.nrows == 0)
		screen_text(y, 2, cols - 4, THEME_DIM, false,
			    F.running ? "no Python calls seen yet" : "no data: press F to start the tracer");
	if (F.detail && F.nrows)
		draw_detail(F.rows[F.nav.sel], top, rows, cols);
	if (F.prompt.active)
		prompt_draw(&F.prompt);
}

static void toggle_rss(struct app *app)
{
	if (F.nrows == 0)
		return;
	const char *name = str(F.rows[F.nav.sel], "name");
	for (int i = 0; i < F.nrss; i++) {
		if (strcmp(F.rss[i], name) == 0) {
			free(F.rss[i]);
			F.rss[i] = F.rss[--F.nrss];
			app_status(app, false, "RSS per call off for %s", name);
			goto restart;
		}
	}
	if (F.nrss == FN_MAX_RSS) {
		app_status(app, true, "at most %d functions can have RSS measured", FN_MAX_RSS);
		return;
	}
	F.rss[F.nrss++] = xstrdup(name);
	app_status(app, false, "RSS per call on for %s (it costs a few microseconds per call)", name);
restart:
	if (F.running) {
		app_agent_request(app, PROTO_CMD_FUNCTIONS_STOP, NULL, NULL, NULL);
		start_tracer(app);
	}
}

static int fn_key(struct app *app, int ch)
{
	char err[256];
	if (F.prompt.active) {
		if (prompt_key(&F.prompt, ch) == PROMPT_DONE) {
			if (filter_set(&F.filter, F.prompt.buf, err, sizeof err) < 0)
				app_status(app, true, "bad filter: %s", err);
			rebuild_rows();
		}
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	if (F.detail) {
		if (ch == 27 || ch == '\r' || ch == '\n' || ch == KEY_ENTER || ch == 'q')
			F.detail = false;
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	if (listnav_key(&F.nav, ch, (int)F.nrows, LINES / 2))
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	switch (ch) {
	case 'F':
		if (F.running)
			app_agent_request(app, PROTO_CMD_FUNCTIONS_STOP, NULL, on_switch, app);
		else
			start_tracer(app);
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	case 'o':
		F.sort = (F.sort + 1) % NSORT;
		F.next_refresh = 0;
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	case 'z':
		app_agent_request(app, PROTO_CMD_FUNCTIONS_RESET, NULL, NULL, NULL);
		F.next_refresh = 0;
		app_status(app, false, "function counts zeroed");
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	case 'R':
		toggle_rss(app);
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	case '/':
		prompt_open(&F.prompt, "filter (regex over name and file:line, Enter applies, empty clears): ",
			    F.filter.text);
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	case '\r':
	case '\n':
	case KEY_ENTER:
		F.detail = F.nrows > 0;
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	default:
		return VIEW_KEY_IGNORED;
	}
}

bool view_functions_started_here(void)
{
	return F.started_here && F.running;
}

static void fn_done(struct app *app)
{
	(void)app;
	cJSON_Delete(F.table);
	F.table = NULL;
	free(F.rows);
	F.rows = NULL;
	for (int i = 0; i < F.nrss; i++)
		free(F.rss[i]);
	F.nrss = 0;
	filter_done(&F.filter);
}

static const char *const fn_help[] = {
	"F\tper-function tracer on / off (in the target)",
	"o\tsort by net / gross / largest call / calls / mean",
	"/\tfilter by function name or file with a regular expression",
	"z\tzero the counts",
	"R\talso measure RSS per call for the selected function (costly)",
	"Enter\tdetails: location, RSS, per-thread split",
	"(columns)\tnet = allocated minus freed during calls (callees included)",
	NULL,
};

const struct view view_functions = {
	.name = "Functions",
	.update = fn_update,
	.draw = fn_draw,
	.key = fn_key,
	.done = fn_done,
	.help = fn_help,
};
