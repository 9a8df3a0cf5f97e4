/*
 * view_snapshots.c - the snapshots pmt-top holds, and the diff of any two.
 *
 * List mode: every snapshot (taken with s, or loaded), its time, label,
 * size, blocks, key and source (tracemalloc or the sampled profiler). b marks a base; Enter diffs the base with the
 * selected snapshot, or with "now" (the last row: a fresh snapshot is taken).
 * n names, w writes to a JSON file, L loads one, x forgets one.
 *
 * Diff mode: size diff, count diff, new size, new count, location; sorted by
 * |size diff| first; o re-sorts, g regroups (lineno / filename / traceback),
 * / filters with the same PCRE2 filter as elsewhere, Enter shows tracebacks,
 * Esc goes back. Growth and shrinkage differ by colour and by sign. The
 * header names the source, or warns when the two were measured differently.
 */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot/groupsnap.h"
#include "snapshot/snapdiff.h"
#include "snapshot/snapshot.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "tui/app.h"
#include "tui/filter.h"
#include "tui/listnav.h"
#include "tui/location.h"
#include "tui/prompt.h"
#include "tui/screen.h"
#include "tui/tbpanel.h"
#include "tui/view.h"

enum prompt_kind { ASK_NONE, ASK_FILTER, ASK_LABEL, ASK_WRITE, ASK_LOAD };

static const enum snapdiff_order orders[] = {
	SNAPDIFF_ORDER_ABS_SIZE_DIFF, SNAPDIFF_ORDER_SIZE_DIFF, SNAPDIFF_ORDER_SIZE,
	SNAPDIFF_ORDER_COUNT_DIFF, SNAPDIFF_ORDER_COUNT,
};
static const char *const order_names[] = { "|size diff|", "size diff", "new size", "count diff", "new count" };

struct snaps_state {
	struct listnav nav;       /* list mode */
	int base;                 /* index of the base snapshot, -1 none */
	size_t diff_after;        /* "now" asked: diff when nsnaps exceeds this */
	bool want_now;
	/* Diff mode. */
	bool diffing;
	int old_i, new_i;
	enum proto_key key;
	int order;
	struct snapshot *old_g, *new_g; /* regrouped copies */
	struct snapdiff *diff;
	size_t *rows;
	size_t nrows;
	struct listnav dnav;
	struct filter filter;
	struct prompt prompt;
	enum prompt_kind asking;
	struct tbpanel tb;
	/* A diff of two group snapshots: their processes paired by pid (each
	 * regrouped to the key), and for each entry in how many it grew. */
	struct snapshot **m_old, **m_new;
	size_t npairs;
	int root_pair;            /* index of the master's pair, -1 none */
	uint32_t *grew, *seen, *root_grew, *root_seen;
};

/* In how many of the paired processes each entry grew (after each sort:
 * the arrays follow the entries' order). */
static void diff_spread(struct snaps_state *S)
{
	if (S->npairs == 0 || S->diff == NULL)
		return;
	size_t n = S->diff->n ? S->diff->n : 1;
	S->grew = xreallocarray(S->grew, n, sizeof *S->grew);
	S->seen = xreallocarray(S->seen, n, sizeof *S->seen);
	S->root_grew = xreallocarray(S->root_grew, n, sizeof *S->root_grew);
	S->root_seen = xreallocarray(S->root_seen, n, sizeof *S->root_seen);
	groupsnap_spread(S->diff, S->m_old, S->m_new, S->npairs, S->grew, S->seen);
	memset(S->root_grew, 0, n * sizeof *S->root_grew);
	if (S->root_pair >= 0)
		groupsnap_spread(S->diff, &S->m_old[S->root_pair], &S->m_new[S->root_pair], 1, S->root_grew,
				 S->root_seen);
}

static void diff_rows(struct snaps_state *S)
{
	char text[8192];
	S->nrows = 0;
	if (S->diff == NULL)
		return;
	diff_spread(S);
	S->rows = xreallocarray(S->rows, S->diff->n ? S->diff->n : 1, sizeof *S->rows);
	for (size_t i = 0; i < S->diff->n; i++) {
		const struct snapdiff_entry *e = &S->diff->entries[i];
		/* A sampled snapshot lists stacks whose blocks are all freed: a
		 * line with nothing on either side says nothing. */
		if (e->size == 0 && e->old_size == 0)
			continue;
		location_filter_text(text, sizeof text, snapdiff_entry_group(e));
		if (filter_match(&S->filter, text, strlen(text)))
			S->rows[S->nrows++] = i;
	}
}

static void pairs_free(struct snaps_state *S)
{
	for (size_t i = 0; i < S->npairs; i++) {
		snapshot_free(S->m_old[i]);
		snapshot_free(S->m_new[i]);
	}
	free(S->m_old);
	free(S->m_new);
	free(S->grew);
	free(S->seen);
	free(S->root_grew);
	free(S->root_seen);
	S->m_old = S->m_new = NULL;
	S->grew = S->seen = S->root_grew = S->root_seen = NULL;
	S->npairs = 0;
	S->root_pair = -1;
}

/* Two group snapshots: their processes paired by pid, regrouped to KEY.
 * False (and no pairs) when either is not a group's or none pairs. */
static bool pairs_make(struct snaps_state *S, const struct app_snap *a, const struct app_snap *b, enum proto_key key)
{
	char err[256];
	pairs_free(S);
	if (a->nmembers == 0 || b->nmembers == 0)
		return false;
	S->m_old = xcalloc(a->nmembers, sizeof *S->m_old);
	S->m_new = xcalloc(a->nmembers, sizeof *S->m_new);
	for (size_t i = 0; i < a->nmembers; i++)
		for (size_t j = 0; j < b->nmembers; j++) {
			if (a->members[i]->pid != b->members[j]->pid)
				continue;
			struct snapshot *ro = snapshot_regroup(a->members[i], key, err, sizeof err);
			struct snapshot *rn = ro ? snapshot_regroup(b->members[j], key, err, sizeof err) : NULL;
			if (rn == NULL) {
				snapshot_free(ro);
				continue;
			}
			if (a->root && (pid_t)a->members[i]->pid == a->root && a->root == b->root)
				S->root_pair = (int)S->npairs;
			S->m_old[S->npairs] = ro;
			S->m_new[S->npairs++] = rn;
		}
	if (S->npairs == 0)
		pairs_free(S);
	return S->npairs > 0;
}

static void diff_free(struct snaps_state *S)
{
	pairs_free(S);
	snapdiff_free(S->diff);
	snapshot_free(S->old_g);
	snapshot_free(S->new_g);
	S->diff = NULL;
	S->old_g = S->new_g = NULL;
	S->nrows = 0;
}

/* (Re)compute the diff of snapshots old_i -> new_i grouped by S->key. */
static bool diff_compute(struct app *app)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	char err[256];
	const struct snapshot *a = app->snaps[S->old_i].snap, *b = app->snaps[S->new_i].snap;
	struct snapshot *ra = snapshot_regroup(a, S->key, err, sizeof err);
	struct snapshot *rb = ra ? snapshot_regroup(b, S->key, err, sizeof err) : NULL;
	struct snapdiff *d = rb ? snapdiff_new(ra, rb, err, sizeof err) : NULL;
	if (d == NULL) {
		app_status(app, true, "cannot diff by %s: %s", snapshot_key_name(S->key), err);
		snapshot_free(ra);
		snapshot_free(rb);
		return false;
	}
	diff_free(S);
	S->old_g = ra;
	S->new_g = rb;
	S->diff = d;
	pairs_make(S, &app->snaps[S->old_i], &app->snaps[S->new_i], S->key);
	snapdiff_sort(d, orders[S->order]);
	diff_rows(S);
	S->dnav.sel = S->dnav.top = 0;
	S->diffing = true;
	app->dirty = true;
	return true;
}

static void start_diff(struct app *app, int old_i, int new_i)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	S->old_i = old_i;
	S->new_i = new_i;
	/* The finest key both snapshots have. */
	enum proto_key ka = app->snaps[old_i].snap->key, kb = app->snaps[new_i].snap->key;
	S->key = PROTO_KEY_LINENO;
	if (ka == PROTO_KEY_FILENAME || kb == PROTO_KEY_FILENAME)
		S->key = PROTO_KEY_FILENAME;
	diff_compute(app);
}

static void fmt_time(char *buf, size_t len, double t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(buf, len, "%H:%M:%S", &tm);
}

static void snaps_update(struct app *app)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	if (S->want_now && app->nsnaps > S->diff_after) {
		S->want_now = false;
		if (S->base >= 0 && S->base < (int)app->nsnaps)
			start_diff(app, S->base, (int)app->nsnaps - 1);
	}
}

static void draw_list(struct app *app, int top, int rows, int cols)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	int y = top;
	screen_textf(y++, 0, cols, THEME_HEADER_LABEL,
		     "%zu snapshot%s   s take   b mark base   Enter diff base -> selected   n name   w write   L load   x forget",
		     app->nsnaps, app->nsnaps == 1 ? "" : "s");
	screen_fill(y, 0, cols, THEME_TABLE_HEADER);
	screen_textf(y++, 0, cols, THEME_TABLE_HEADER, "  # %-8s %10s %9s %7s %-9s %-20s %-20s %s",
		     "TIME", "SIZE", "BLOCKS", "GROUPS", "KEY", "SOURCE", "LABEL", "FROM");
	int n = (int)app->nsnaps + (app->pid > 0 && !app->gone ? 1 : 0);
	int list_rows = top + rows - y;
	listnav_fit(&S->nav, n, list_rows);
	for (int r = 0; r < list_rows && S->nav.top + r < n; r++) {
		int i = S->nav.top + r;
		bool sel = i == S->nav.sel;
		if (sel)
			screen_fill(y + r, 0, cols, THEME_SELECTION);
		if (i == (int)app->nsnaps) {
			screen_text(y + r, 0, cols, sel ? THEME_SELECTION : THEME_DIM, false,
				    "    now      (take a snapshot and diff the base with it)");
			continue;
		}
		const struct snapshot *s = app->snaps[i].snap;
		char t[16], tot[32], src[64];
		fmt_time(t, sizeof t, s->time);
		units_bytes(tot, sizeof tot, (double)s->total_size);
		snapshot_source_text(src, sizeof src, s->source, s->interval);
		screen_textf(y + r, 0, cols, sel ? THEME_SELECTION : THEME_NORMAL,
			     "%c%2d %-8s %10s %9llu %7zu %-9s %-20.20s %-20.20s %s", i == S->base ? 'B' : ' ', i + 1,
			     t, tot, (unsigned long long)s->total_count, s->ngroups, snapshot_key_name(s->key), src,
			     s->label, app->snaps[i].origin);
	}
	if (app->nsnaps == 0)
		screen_wrap(y + 1, 2, cols - 4, top + rows - y - 1, THEME_DIM,
			    "No snapshots yet: press s (anywhere) to take one, then another later, and diff them.", "...");
}

static void draw_diff(struct app *app, int top, int rows, int cols)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	const struct snapshot *a = app->snaps[S->old_i].snap, *b = app->snaps[S->new_i].snap;
	char ta[16], tb[16], d[32], c1[32], c2[32];
	fmt_time(ta, sizeof ta, a->time);
	fmt_time(tb, sizeof tb, b->time);
	int y = top;
	screen_textf(y++, 0, cols, THEME_TITLE, "diff #%d %s%s%s -> #%d %s%s%s   traced %s -> %s (%s)",
		     S->old_i + 1, ta, a->label[0] ? " " : "", a->label, S->new_i + 1, tb, b->label[0] ? " " : "",
		     b->label, units_bytes(c1, sizeof c1, (double)a->total_size),
		     units_bytes(c2, sizeof c2, (double)b->total_size),
		     units_bytes_signed(d, sizeof d, (double)S->diff->total_size_diff));
	char warn[256], src[64], line[300];
	if (app->snaps[S->old_i].mem_pending || app->snaps[S->new_i].mem_pending)
		screen_text(y++, 0, cols, THEME_DIM, false, "RSS: what it is made of comes with the next smaps read...");
	else if (snapshot_memory_diff_text(app->snaps[S->old_i].snap, app->snaps[S->new_i].snap, line,
					   sizeof line)[0])
		screen_text(y++, 0, cols, THEME_HEADER_VALUE, false, line);
	if (snapshot_same_source(a, b)) {
		screen_textf(y++, 0, cols, THEME_HEADER_LABEL, "source: %s%s",
			     snapshot_source_text(src, sizeof src, a->source, a->interval),
			     a->source == SNAPSHOT_SOURCE_SAMPLED ? " (sizes are estimates)" : "");
	} else {
		snprintf(line, sizeof line, "warning: %s", snapdiff_source_warning(S->diff, warn, sizeof warn));
		y += screen_wrap(y, 0, cols, 3, THEME_WARNING, line, "...");
	}
	screen_textf(y++, 0, cols, THEME_HEADER_LABEL,
		     "by %s (g)   sorted by %s (o)   filter %s (/)   %zu new, %zu gone, %zu changed   Esc back",
		     snapshot_key_name(S->key), order_names[S->order],
		     filter_active(&S->filter) ? S->filter.text : "none", S->diff->nnew, S->diff->ngone, S->diff->nchanged);
	/* Two group snapshots: in which processes each line grew. */
	int gw = 0;
	if (S->npairs) {
		gw = 16;
		char one[64];
		for (size_t k = 0; k < S->nrows && k < 200; k++) {
			size_t e = S->rows[k];
			groupsnap_spread_text(one, sizeof one, S->grew[e], S->root_grew[e] > 0, S->root_pair >= 0, S->npairs);
			if ((int)strlen(one) + 1 > gw)
				gw = (int)strlen(one) + 1;
		}
		screen_textf(y++, 0, cols, THEME_HEADER_LABEL, "%zu processes in both; GREW IN: in which of them the "
			     "line grew", S->npairs);
	}
	screen_fill(y, 0, cols, THEME_TABLE_HEADER);
	screen_textf(y++, 0, cols, THEME_TABLE_HEADER, "%12s %10s %10s %9s  %-*s%s", "SIZE DIFF", "COUNT DIFF",
		     "NEW SIZE", "NEW COUNT", gw, gw ? "GREW IN" : "", "LOCATION");
	int list_rows = top + rows - y;
	listnav_fit(&S->dnav, (int)S->nrows, list_rows);
	for (int r = 0; r < list_rows && S->dnav.top + r < (int)S->nrows; r++) {
		int i = S->dnav.top + r;
		const struct snapdiff_entry *e = &S->diff->entries[S->rows[i]];
		const struct snapshot_group *g = snapdiff_entry_group(e);
		bool sel = i == S->dnav.sel;
		char sd[32], ns[32], cd[32], loc[1024];
		units_bytes_signed(sd, sizeof sd, (double)e->size_diff);
		units_bytes(ns, sizeof ns, (double)e->size);
		snprintf(cd, sizeof cd, "%+lld", (long long)e->count_diff);
		location_format(loc, sizeof loc, g, cols - 47 - gw > 10 ? cols - 47 - gw : 10);
		enum theme_role role = sel ? THEME_SELECTION : e->size_diff > 0 ? THEME_GROWTH
				       : e->size_diff < 0 ? THEME_SHRINK : THEME_NORMAL;
		if (sel)
			screen_fill(y + r, 0, cols, THEME_SELECTION);
		screen_textf(y + r, 0, 24, role, "%12s %10s", sd, cd);
		screen_textf(y + r, 23, 22, sel ? THEME_SELECTION : THEME_NORMAL, " %10s %9llu", ns,
			     (unsigned long long)e->count);
		if (gw) {
			char spread[64];
			size_t ei = S->rows[i];
			groupsnap_spread_text(spread, sizeof spread, S->grew[ei], S->root_grew[ei] > 0, S->root_pair >= 0,
					      S->npairs);
			screen_text(y + r, 46, gw, sel ? THEME_SELECTION : S->grew[ei] ? THEME_GROWTH : THEME_DIM, false,
				    spread);
		}
		screen_text(y + r, 46 + gw, cols - 46 - gw, sel ? THEME_SELECTION : THEME_NORMAL, false, loc);
		if (e->status == SNAPDIFF_NEW || e->status == SNAPDIFF_GONE) {
			int lw = (int)strlen(loc);
			if (46 + gw + lw + 7 < cols)
				screen_text(y + r, 47 + gw + lw, 6, sel ? THEME_SELECTION : THEME_DIM, false,
					    e->status == SNAPDIFF_NEW ? "(new)" : "(gone)");
		}
	}
	if (S->nrows == 0)
		screen_text(y, 2, cols - 4, THEME_DIM, false,
			    filter_active(&S->filter) ? "nothing matches the filter" : "no differences");
	tbpanel_draw(&S->tb, top, rows, cols);
}

static void snaps_draw(struct app *app, int top, int rows, int cols)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	if (S->diffing && S->diff && S->new_i < (int)app->nsnaps && S->old_i < (int)app->nsnaps)
		draw_diff(app, top, rows, cols);
	else
		draw_list(app, top, rows, cols);
}

static void default_path(struct app *app, const struct snapshot *s, char *buf, size_t len)
{
	char t[32];
	time_t tt = (time_t)s->time;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(t, sizeof t, "%Y%m%d-%H%M%S", &tm);
	snprintf(buf, len, "pmt-snapshot-%u-%s.json", s->pid ? s->pid : (unsigned)app->pid, t);
}

static void prompt_finished(struct app *app)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	char err[512];
	const char *text = S->prompt.buf;
	int i = S->nav.sel;
	switch (S->asking) {
	case ASK_FILTER:
		if (filter_set(&S->filter, text, err, sizeof err) < 0)
			app_status(app, true, "bad filter: %s", err);
		diff_rows(S);
		break;
	case ASK_LABEL:
		if (i < (int)app->nsnaps)
			snapshot_set_label(app->snaps[i].snap, text);
		break;
	case ASK_WRITE:
		if (i < (int)app->nsnaps && text[0]) {
			if (snapshot_save(app->snaps[i].snap, text, err, sizeof err) < 0)
				app_status(app, true, "%s", err);
			else
				app_status(app, false, "snapshot %d written to %s", i + 1, text);
		}
		break;
	case ASK_LOAD:
		if (text[0]) {
			struct snapshot *s = snapshot_load(text, err, sizeof err);
			if (s == NULL)
				app_status(app, true, "%s", err);
			else {
				app_snapshot_add(app, s, NAN, text);
				app_status(app, false, "loaded %s as snapshot %zu", text, app->nsnaps);
			}
		}
		break;
	case ASK_NONE:
		break;
	}
	S->asking = ASK_NONE;
}

static void ask(struct snaps_state *S, enum prompt_kind kind, const char *label, const char *initial)
{
	S->asking = kind;
	prompt_open(&S->prompt, label, initial);
}

/* The list's selection: index, count of rows, whether it is a snapshot
 * (not the "now" row). IGNORED when the diff is showing instead. */
#define LIST_MODE() \
	do { \
		if (S->diffing && S->diff) \
			return VIEW_KEY_IGNORED; \
	} while (0)

static bool sel_real(const struct app *app)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	return S->nav.sel >= 0 && S->nav.sel < (int)app->nsnaps;
}

static int list_base(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)ch;
	LIST_MODE();
	if (sel_real(app)) {
		S->base = S->nav.sel;
		app_status(app, false, "snapshot %d is the base: select another (or now) and press Enter", S->base + 1);
	}
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int list_diff(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)ch;
	LIST_MODE();
	int i = S->nav.sel;
	if (S->base < 0 || S->base >= (int)app->nsnaps) {
		app_status(app, true, "mark a base first (b), then select the snapshot to compare with it");
	} else if (i == (int)app->nsnaps) {
		S->want_now = true;
		S->diff_after = app->nsnaps;
		app_snapshot_take(app);
	} else if (sel_real(app) && i != S->base) {
		start_diff(app, S->base, i);
	} else {
		app_status(app, true, "select a snapshot other than the base");
	}
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int list_name(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)ch;
	LIST_MODE();
	if (sel_real(app))
		ask(S, ASK_LABEL, "name for this snapshot: ", app->snaps[S->nav.sel].snap->label);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int list_write(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	char path[1024];
	(void)ch;
	LIST_MODE();
	if (sel_real(app)) {
		default_path(app, app->snaps[S->nav.sel].snap, path, sizeof path);
		ask(S, ASK_WRITE, "write to file: ", path);
	}
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int list_load(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)app;
	(void)ch;
	LIST_MODE();
	ask(S, ASK_LOAD, "load snapshot file: ", "");
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int list_forget(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)ch;
	LIST_MODE();
	int i = S->nav.sel;
	if (sel_real(app)) {
		app_snap_done(&app->snaps[i]);
		memmove(&app->snaps[i], &app->snaps[i + 1], (app->nsnaps - (size_t)i - 1) * sizeof *app->snaps);
		app->nsnaps--;
		if (S->base == i)
			S->base = -1;
		else if (S->base > i)
			S->base--;
	}
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static void diff_traceback(struct app *app)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	if (S->nrows == 0)
		return;
	const struct snapdiff_entry *e = &S->diff->entries[S->rows[S->dnav.sel]];
	const struct snapshot_group *g = snapdiff_entry_group(e);
	tbpanel_open(&S->tb, app->pid, g->frames[0].filename, g->frames[0].lineno);
	const struct snapshot *src = app->snaps[e->new_group ? S->new_i : S->old_i].snap;
	char err[256];
	struct snapshot *copy = snapshot_regroup(src, src->key, err, sizeof err);
	if (copy && copy->key != PROTO_KEY_TRACEBACK) {
		tbpanel_set(&S->tb, copy, "this snapshot was saved without tracebacks: showing its own grouping");
		return;
	}
	tbpanel_set(&S->tb, copy, copy ? NULL : err);
}

#define DIFF_MODE() \
	do { \
		if (!(S->diffing && S->diff)) \
			return VIEW_KEY_IGNORED; \
	} while (0)

static int diff_back(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)app;
	(void)ch;
	DIFF_MODE();
	S->diffing = false;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int diff_sort(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)app;
	(void)ch;
	DIFF_MODE();
	S->order = (S->order + 1) % (int)(sizeof orders / sizeof orders[0]);
	snapdiff_sort(S->diff, orders[S->order]);
	diff_rows(S);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int diff_group(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)ch;
	DIFF_MODE();
	enum proto_key was = S->key;
	S->key = (enum proto_key)((S->key + 1) % PROTO_KEY_COUNT);
	if (!diff_compute(app)) {
		S->key = (enum proto_key)((S->key + 1) % PROTO_KEY_COUNT); /* skip it */
		if (!diff_compute(app))
			S->key = was;
	}
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int diff_filter(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)app;
	(void)ch;
	DIFF_MODE();
	ask(S, ASK_FILTER, "filter (regex over file:line, Enter applies, empty clears): ", S->filter.text);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int diff_open(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)ch;
	DIFF_MODE();
	diff_traceback(app);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int snaps_key(struct app *app, int ch)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	if (S->prompt.active) {
		if (prompt_key(&S->prompt, ch) == PROMPT_DONE)
			prompt_finished(app);
		else if (!S->prompt.active)
			S->asking = ASK_NONE;
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	if (S->diffing && S->diff) {
		if (tbpanel_key(&S->tb, ch) || listnav_key(&S->dnav, ch, (int)S->nrows, LINES / 2))
			return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
		return VIEW_KEY_IGNORED;
	}
	int n = (int)app->nsnaps + (app->pid > 0 && !app->gone ? 1 : 0);
	if (listnav_key(&S->nav, ch, n, LINES / 2))
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	return VIEW_KEY_IGNORED;
}

static void snaps_done(struct app *app)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	(void)app;
	diff_free(S);
	free(S->rows);
	S->rows = NULL;
	filter_done(&S->filter);
	tbpanel_done(&S->tb);
}

static const struct binding snaps_keys[] = {
	{ "s", "take a snapshot (from any view)", NULL, NULL, { 0 } },
	{ "b", "mark the selected snapshot as the base", NULL, list_base, { 'b' } },
	{ "Enter d", "diff the base with the selected snapshot (or with now)", NULL, list_diff,
	  { '\r', '\n', KEY_ENTER, 'd' } },
	{ "n", "name the selected snapshot", NULL, list_name, { 'n' } },
	{ "w", "write the selected snapshot to a JSON file", NULL, list_write, { 'w' } },
	{ "L", "load a snapshot file", NULL, list_load, { 'L' } },
	{ "x Del", "forget the selected snapshot", NULL, list_forget, { 'x', KEY_DC } },
	{ "(diff) o", "sort by |size diff|, size diff, new size, count diff, new count", NULL, diff_sort, { 'o' } },
	{ "(diff) g", "group by line / file / traceback", NULL, diff_group, { 'g' } },
	{ "(diff) /", "filter locations with a regular expression", NULL, diff_filter, { '/' } },
	{ "(diff) Enter", "tracebacks of the selected line; Esc back to the list", NULL, diff_open,
	  { '\r', '\n', KEY_ENTER } },
	{ "(diff) Esc", NULL, NULL, diff_back, { 27, KEY_BACKSPACE, 127 } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

static void snaps_init(struct app *app)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	S->base = -1;
}

/* The filter or name prompt, while open (the app draws it). */
static const struct prompt *snaps_prompt(struct app *app)
{
	struct snaps_state *S = app_view_state(app, &view_snapshots);
	return S->prompt.active ? &S->prompt : NULL;
}

const struct view view_snapshots = {
	.state_size = sizeof(struct snaps_state),
	.name = "Snapshots",
	.init = snaps_init,
	.update = snaps_update,
	.draw = snaps_draw,
	.key = snaps_key,
	.done = snaps_done,
	.prompt = snaps_prompt,
	.keys = snaps_keys,
};
