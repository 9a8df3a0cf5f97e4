/*
 * view_functions.c - who holds the memory, by function, from the sampled
 * profiler (`profile` with key function, and `profile_tree`).
 *
 * The table: per function its own live bytes (allocated in it directly),
 * its total (in it or its callees), its allocation rate, and, while call
 * counting is on (c), calls, live bytes retained per call and the largest
 * call; o sorts by each of them, / filters. The call tree (v): from the
 * entry points, Enter goes down into the callees of a function and
 * Backspace goes back up, the header showing the path, so that one can walk
 * from a framework's entry point down to the function that holds the memory
 * (the tree reporter of memray, live). Both refresh every few seconds, or
 * less often when one refresh costs the target more than --max-cost of a
 * core allows (refresh.h); r refreshes at once.
 *
 * Without the profiler (--no-profile, or none in this Python) the view says
 * so in one line, with how to get it.
 */
#include <curses.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/monotime.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "ipc/client.h"
#include "session/session.h"
#include "tui/app.h"
#include "tui/calltree.h"
#include "tui/filter.h"
#include "tui/keys.h"
#include "tui/listnav.h"
#include "tui/prompt.h"
#include "tui/refresh.h"
#include "tui/screen.h"
#include "tui/view.h"

#define FN_LIMIT 500
#define FN_TREE_LIMIT 200
#define FN_REFRESH 2.0

/* Column headers, and the sort each one is. */
static const char *const sort_titles[MSG_PROFILE_SORT_COUNT] = {
	"own", "total", "rate", "calls", "retained per call", "largest call",
};

struct fn_state {
	/* The table. */
	struct msg_profile_functions table; /* newest reply (decoded) */
	bool have_table;
	const struct msg_profile_row **rows; /* rows that pass the filter, into table */
	size_t nrows;
	enum msg_profile_sort sort;
	struct listnav nav;
	struct filter filter;
	struct prompt prompt;
	struct refresh pace;            /* the table's next refresh, from what one costs */
	bool pending;
	char note[256];
	/* The call tree. */
	bool tree;
	struct calltree path;
	struct msg_profile_tree tdata;  /* newest reply for the current path */
	bool have_tree;
	struct listnav tnav;
	struct refresh tree_pace;
	bool tree_pending;
};

static void rebuild_rows(struct fn_state *F)
{
	char text[2048];
	F->nrows = 0;
	F->rows = xreallocarray(F->rows, F->table.nrows + 1, sizeof *F->rows);
	for (size_t i = 0; i < F->table.nrows; i++) {
		const struct msg_profile_row *f = &F->table.rows[i];
		snprintf(text, sizeof text, "%s\n%s:%d%s", f->function, f->file, f->line,
			 f->native ? "\n[native]" : "");
		if (filter_match(&F->filter, text, strlen(text)))
			F->rows[F->nrows++] = f;
	}
}

/* Call counting is on, as the newest figures say. */
static bool counting_calls(const struct app *app, const struct fn_state *F)
{
	const struct msg_status *st = app_agent_status(app);
	if (st && st->has_profile && st->profile.running)
		return st->profile.calls;
	return F->have_table && F->table.profile.calls;
}

/* "native rows on (44 GOT entries)" or "... off": what C code allocates is
 * named by line only while the profiler's native hooks are in. */
static void native_words(const struct app *app, const struct fn_state *F, char *buf, size_t len)
{
	const struct msg_status *st = app_agent_status(app);
	const struct msg_profile_status *p = st && st->has_profile ? &st->profile
					     : F->have_table ? &F->table.profile : NULL;
	if (p == NULL || !p->running)
		snprintf(buf, len, "native rows -");
	else if (p->native_on)
		snprintf(buf, len, "native rows on (%" PRIu64 " GOT entries)", p->native_entries);
	else
		snprintf(buf, len, "native rows off");
}

static void on_table(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	struct fn_state *F = app_view_state(app, &view_functions);
	char err[256];
	struct msg_profile_functions t;
	F->pending = false;
	app->dirty = true;
	if (!r->ok) {
		snprintf(F->note, sizeof F->note, "%s", r->message);
		return;
	}
	if (msg_decode_profile_functions(r->result, &t, err, sizeof err) < 0) {
		snprintf(F->note, sizeof F->note, "the agent's function table is malformed: %.200s", err);
		return;
	}
	refresh_cost(&F->pace, &(struct msg_cost){ .took_ms = t.took_ms, .cpu_ms = t.cpu_ms });
	if (t.sort != F->sort) { /* asked for before a re-sort */
		msg_profile_functions_done(&t);
		return;
	}
	F->note[0] = '\0';
	msg_profile_functions_done(&F->table);
	F->table = t;
	F->have_table = true;
	rebuild_rows(F);
}

static void request_table(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	cJSON *args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "key", "function");
	cJSON_AddNumberToObject(args, "limit", FN_LIMIT);
	cJSON_AddStringToObject(args, "sort", msg_profile_sort_name(F->sort));
	F->pending = app_agent_request(app, PROTO_CMD_PROFILE, args, on_table, app);
	refresh_asked(&F->pace, monotime_now(), FN_REFRESH);
}

static void on_tree(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	struct fn_state *F = app_view_state(app, &view_functions);
	char err[256];
	struct msg_profile_tree t;
	struct msg_cost cost;
	F->tree_pending = false;
	app->dirty = true;
	if (!r->ok) {
		snprintf(F->note, sizeof F->note, "%s", r->message);
		return;
	}
	/* Agents that say what a tree cost: paced like the table. */
	if (msg_decode_cost(r->result, "profile_tree result", &cost, err, sizeof err) < 0 ||
	    msg_decode_profile_tree(r->result, &t, err, sizeof err) < 0) {
		snprintf(F->note, sizeof F->note, "the agent's call tree is malformed: %.200s", err);
		return;
	}
	refresh_cost(&F->tree_pace, &cost);
	if (!calltree_matches(&F->path, &t)) { /* for a place left meanwhile */
		msg_profile_tree_done(&t);
		return;
	}
	F->note[0] = '\0';
	msg_profile_tree_done(&F->tdata);
	F->tdata = t;
	F->have_tree = true;
	/* Back up from a function: select it again. */
	if (F->path.has_back) {
		for (size_t i = 0; i < t.nrows; i++)
			if (!t.rows[i].self && calltree_is(&F->path.back, t.rows[i].file, t.rows[i].function,
							   t.rows[i].first_line))
				F->tnav.sel = (int)i;
		F->path.has_back = false;
	}
}

static void request_tree(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	F->tree_pending = app_agent_request(app, PROTO_CMD_PROFILE_TREE, calltree_args(&F->path, FN_TREE_LIMIT),
					    on_tree, app);
	refresh_asked(&F->tree_pace, monotime_now(), FN_REFRESH);
}

static void fn_update(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	if (!app_agent_profiling(app) || app->paused)
		return;
	double now = monotime_now();
	if (F->tree) {
		if (!F->tree_pending && refresh_due(&F->tree_pace, now))
			request_tree(app);
	} else if (!F->pending && refresh_due(&F->pace, now)) {
		request_table(app);
	}
}

static void fmt_count(char *buf, size_t len, uint64_t v)
{
	if (v < 1000000)
		snprintf(buf, len, "%" PRIu64, v);
	else if (v < 1000000000)
		snprintf(buf, len, "%.1fM", (double)v / 1e6);
	else
		snprintf(buf, len, "%.1fG", (double)v / 1e9);
}

/* "Cache.load  /app/cache.py:14", the line where it holds most ("Cache.load
 * [native]  ..." for what native code called from it allocated). */
static void fmt_function(char *buf, size_t len, const char *function, bool native, const char *file,
			 int line)
{
	const char *tag = native ? " [native]" : "";
	if (line > 0)
		snprintf(buf, len, "%s%s  %s:%d", function, tag, file, line);
	else
		snprintf(buf, len, "%s%s  %s", function, tag, file);
}

/* How often it refreshes, wrapped whole; returns the rows drawn. */
static int draw_pace(const struct refresh *pace, int y, int cols)
{
	char text[256];
	refresh_describe(pace, text, sizeof text);
	return screen_wrap(y, 0, cols, screen_wrap_rows(cols, text), THEME_DIM, text, "...");
}

static void draw_table(struct app *app, struct fn_state *F, int y, int top, int rows, int cols)
{
	bool calls = counting_calls(app, F);
	char native[64];
	native_words(app, F, native, sizeof native);
	screen_textf(y++, 0, cols, THEME_HEADER_LABEL,
		     "by function, sort %s (o)   calls %s (c)   filter %s (/)   v call tree   %zu of %zu functions   %s",
		     sort_titles[F->sort], calls ? "counted" : "not counted",
		     filter_active(&F->filter) ? F->filter.text : "none", F->nrows,
		     F->have_table ? F->table.functions : 0, native);
	y += draw_pace(&F->pace, y, cols);
	if (F->note[0])
		y += screen_wrap(y, 0, cols, 3, THEME_WARNING, F->note, "...");
	screen_fill(y, 0, cols, THEME_TABLE_HEADER);
	screen_textf(y++, 0, cols, THEME_TABLE_HEADER, "%10s %10s %10s %9s %10s %10s  %s", "OWN", "TOTAL", "RATE/s",
		     "CALLS", "RET/CALL", "LARGEST", "FUNCTION (file:line)");
	int list_rows = top + rows - y;
	listnav_fit(&F->nav, (int)F->nrows, list_rows);
	if (!F->have_table) {
		screen_text(y, 2, cols - 4, THEME_DIM, false, "asking the agent...");
		return;
	}
	for (int r = 0; r < list_rows && F->nav.top + r < (int)F->nrows; r++) {
		int i = F->nav.top + r;
		const struct msg_profile_row *f = F->rows[i];
		bool sel = i == F->nav.sel;
		enum theme_role role = sel ? THEME_SELECTION : THEME_NORMAL;
		char own[32], tot[32], rate[32], n[32], ret[32], big[32], fn[2048];
		units_bytes(own, sizeof own, (double)f->own_size);
		units_bytes(tot, sizeof tot, (double)f->total_size);
		units_bytes(rate, sizeof rate, (double)f->alloc_rate);
		if (f->has_calls) {
			fmt_count(n, sizeof n, f->calls);
			units_bytes(ret, sizeof ret, (double)f->retained_per_call);
			units_bytes(big, sizeof big, (double)f->largest_call);
		} else {
			snprintf(n, sizeof n, "-");
			snprintf(ret, sizeof ret, "-");
			snprintf(big, sizeof big, "-");
		}
		fmt_function(fn, sizeof fn, f->function, f->native, f->file,
			     f->line >= 0 ? f->line : f->first_line);
		if (sel)
			screen_fill(y + r, 0, cols, THEME_SELECTION);
		screen_textf(y + r, 0, cols, role, "%10s %10s %10s %9s %10s %10s  %s", own, tot, rate, n, ret, big, fn);
	}
	if (F->nrows == 0)
		screen_text(y, 2, cols - 4, THEME_DIM, false,
			    filter_active(&F->filter) ? "nothing matches the filter"
						      : "no sampled allocations alive yet");
}

static void draw_tree(struct app *app, struct fn_state *F, int y, int top, int rows, int cols)
{
	char title[1024], tot[32];
	(void)app;
	calltree_title(&F->path, title, sizeof title, cols - 60 > 20 ? cols - 60 : 20);
	screen_textf(y++, 0, cols, THEME_HEADER_LABEL, "call tree: %s   under it %s   Enter down, Backspace up, v table",
		     title, F->have_tree ? units_bytes(tot, sizeof tot, (double)F->tdata.total_size) : "-");
	y += draw_pace(&F->tree_pace, y, cols);
	if (F->note[0])
		y += screen_wrap(y, 0, cols, 3, THEME_WARNING, F->note, "...");
	screen_fill(y, 0, cols, THEME_TABLE_HEADER);
	screen_textf(y++, 0, cols, THEME_TABLE_HEADER, "%10s %10s %6s  %s", "TOTAL", "BLOCKS", "SHARE",
		     F->path.depth ? "CALLEE (file:line)" : "ENTRY POINT (file:line)");
	int n = F->have_tree ? (int)F->tdata.nrows : 0;
	int list_rows = top + rows - y;
	listnav_fit(&F->tnav, n, list_rows);
	if (!F->have_tree) {
		screen_text(y, 2, cols - 4, THEME_DIM, false, "asking the agent...");
		return;
	}
	for (int r = 0; r < list_rows && F->tnav.top + r < n; r++) {
		int i = F->tnav.top + r;
		const struct msg_profile_node *nd = &F->tdata.rows[i];
		bool sel = i == F->tnav.sel;
		char size[32], blocks[32], share[16], fn[2048];
		units_bytes(size, sizeof size, (double)nd->total_size);
		fmt_count(blocks, sizeof blocks, nd->total_count);
		if (F->tdata.total_size)
			snprintf(share, sizeof share, "%.0f%%", 100.0 * (double)nd->total_size / (double)F->tdata.total_size);
		else
			snprintf(share, sizeof share, "-");
		if (nd->self)
			snprintf(fn, sizeof fn, "(in %s itself)", nd->function);
		else
			fmt_function(fn, sizeof fn, nd->function, false, nd->file, nd->first_line);
		if (sel)
			screen_fill(y + r, 0, cols, THEME_SELECTION);
		screen_textf(y + r, 0, cols, sel ? THEME_SELECTION : nd->self ? THEME_DIM : THEME_NORMAL,
			     "%10s %10s %6s  %s", size, blocks, share, fn);
	}
	if (n == 0)
		screen_text(y, 2, cols - 4, THEME_DIM, false,
			    F->path.depth ? "nothing alive under this function now" : "no sampled allocations alive yet");
}

static void fn_draw(struct app *app, int top, int rows, int cols)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	char head[1024];
	int y = top;
	app_agent_describe(app, head, sizeof head);
	y += screen_wrap(y, 0, cols, 3, app_agent_ready(app) ? THEME_NORMAL : THEME_DIM, head, "... (M)");
	if (!app_agent_profiling(app)) {
		char why[768];
		app_agent_profile_why(app, why, sizeof why);
		screen_wrap(y + 1, 2, cols - 4, top + rows - y - 1, app_agent_ready(app) ? THEME_WARNING : THEME_DIM,
			    why, "...");
		return;
	}
	if (F->tree)
		draw_tree(app, F, y, top, rows, cols);
	else
		draw_table(app, F, y, top, rows, cols);
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
	if (F->tree) {
		int n = F->have_tree ? (int)F->tdata.nrows : 0;
		if (listnav_key(&F->tnav, ch, n, LINES / 2))
			return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
		return VIEW_KEY_IGNORED;
	}
	if (listnav_key(&F->nav, ch, (int)F->nrows, LINES / 2))
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	return VIEW_KEY_IGNORED;
}

static int fn_sort(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)ch;
	if (F->tree)
		return VIEW_KEY_IGNORED;
	F->sort = (enum msg_profile_sort)((F->sort + 1) % MSG_PROFILE_SORT_COUNT);
	refresh_now(&F->pace);
	F->pending = false; /* the reply in flight is for the old order: dropped */
	F->nav.sel = F->nav.top = 0;
	if (F->sort >= MSG_PROFILE_SORT_CALLS && !counting_calls(app, F))
		app_status(app, false, "sorted by %s: calls are not counted (c counts them)", sort_titles[F->sort]);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int fn_calls(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)ch;
	if (!app_agent_profiling(app)) {
		char why[768];
		app_agent_profile_why(app, why, sizeof why);
		app_status(app, true, "%s", why);
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	bool on = !counting_calls(app, F);
	/* The profiler takes call counting only at its start: a restart, with
	 * the same interval; its figures begin again. */
	app_agent_profile_restart(app, on);
	F->have_table = F->have_tree = false;
	refresh_now(&F->pace);
	refresh_now(&F->tree_pace);
	F->pending = F->tree_pending = false;
	snprintf(app->profile_note, sizeof app->profile_note, "%s",
		 on ? "counting calls (a little per Python call): the profiler restarted, its figures begin now"
		    : "calls no longer counted: the profiler restarted, its figures begin now");
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int fn_filter(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)app;
	(void)ch;
	if (F->tree)
		return VIEW_KEY_IGNORED;
	prompt_open(&F->prompt, "filter (regex over name and file:line, Enter applies, empty clears): ",
		    F->filter.text);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int fn_tree(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)app;
	(void)ch;
	F->tree = !F->tree;
	F->note[0] = '\0';
	refresh_now(&F->pace);
	refresh_now(&F->tree_pace);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int fn_refresh(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)ch;
	refresh_now(F->tree ? &F->tree_pace : &F->pace);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

/* Enter in the tree: down into the selected callee. */
static int fn_down(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)ch;
	if (!F->tree)
		return VIEW_KEY_IGNORED;
	if (!F->have_tree || F->tdata.nrows == 0)
		return VIEW_KEY_HANDLED;
	const struct msg_profile_node *nd = &F->tdata.rows[F->tnav.sel];
	if (nd->self) {
		app_status(app, false, "these bytes are allocated in %s itself: nothing below", nd->function);
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	if (!calltree_push(&F->path, nd->file, nd->function, nd->first_line)) {
		app_status(app, true, "the call tree goes %d functions deep at most", CALLTREE_MAX_DEPTH);
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	F->have_tree = false;
	F->tree_pending = false;
	refresh_now(&F->tree_pace);
	F->tnav.sel = F->tnav.top = 0;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

/* Backspace or Left in the tree: back up to the caller. */
static int fn_up(struct app *app, int ch)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	(void)ch;
	if (!F->tree)
		return VIEW_KEY_IGNORED;
	if (!calltree_pop(&F->path)) {
		app_status(app, false, "at the entry points already");
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	F->have_tree = false;
	F->tree_pending = false;
	refresh_now(&F->tree_pace);
	F->tnav.sel = F->tnav.top = 0;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static void fn_init(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	calltree_init(&F->path);
	refresh_init(&F->pace, FN_REFRESH, app->opts->max_cost);
	refresh_init(&F->tree_pace, FN_REFRESH, app->opts->max_cost);
}

static void fn_done(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	msg_profile_functions_done(&F->table);
	msg_profile_tree_done(&F->tdata);
	calltree_done(&F->path);
	free(F->rows);
	F->rows = NULL;
	filter_done(&F->filter);
}

static const struct binding fn_keys[] = {
	{ "o", "sort by own / total / allocation rate / calls / retained per call / largest call", NULL, fn_sort,
	  { 'o' } },
	{ "c", "count calls per function on / off (restarts the profiler, same interval)", NULL, fn_calls, { 'c' } },
	{ "/", "filter by function name or file with a regular expression", NULL, fn_filter, { '/' } },
	{ "v", "call tree / table", NULL, fn_tree, { 'v' } },
	{ "r", "refresh now (on its own every 2 s, or less often when one refresh costs the target more than "
	  "--max-cost allows: the header says)", NULL, fn_refresh, { 'r' } },
	{ "(tree) Enter Right", "down into the selected function's callees", NULL, fn_down,
	  { '\r', '\n', KEY_ENTER, KEY_RIGHT } },
	{ "(tree) Backspace Left", "back up to the caller", NULL, fn_up, { KEY_BACKSPACE, 127, 8, KEY_LEFT } },
	{ "(columns)", "own = live bytes allocated in the function itself; total = in it or its callees", NULL,
	  NULL, { 0 } },
	{ "(columns)", "RATE/s = bytes allocated per second; CALLS, RET/CALL, LARGEST: \"-\" until c counts calls",
	  NULL, NULL, { 0 } },
	{ "P", "the sampled profiler on / off (from any view)", NULL, NULL, { 0 } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

/* The filter or name prompt, while open (the app draws it). */
static const struct prompt *fn_prompt(struct app *app)
{
	struct fn_state *F = app_view_state(app, &view_functions);
	return F->prompt.active ? &F->prompt : NULL;
}

const struct view view_functions = {
	.state_size = sizeof(struct fn_state),
	.name = "Functions",
	.init = fn_init,
	.update = fn_update,
	.draw = fn_draw,
	.key = fn_key,
	.done = fn_done,
	.prompt = fn_prompt,
	.keys = fn_keys,
};
