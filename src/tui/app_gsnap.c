/*
 * app_gsnap.c - a snapshot of a whole group from the TUI (S in the Processes
 * view): one per Python process, asked for together, kept as one entry of
 * the Snapshots view (their sum) that remembers each process's own, so that
 * a diff of two says in which processes each line grew.
 *
 * It measures with tracemalloc, as `pmt-top snapshot --tree` does: where it
 * is off it is started first (the first group snapshot then sees only what
 * comes after; say so), by links of this pmt-top's own that stay open, so
 * that quitting switches it off again where they switched it on. Links are
 * made four at a time (loading an agent runs a debugger); one that fails is
 * said and left out.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/monotime.h"
#include "base/strsafe.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "session/session.h"
#include "snapshot/groupsnap.h"
#include "tui/app.h"

#define LINK_GIVE_UP_S 40.0
#define ANSWER_GIVE_UP_S 120.0

struct gsnap_link {
	struct app_gsnap *job;
	pid_t pid;
	unsigned long long start_ticks;
	struct session *s;
	bool started;       /* ticked: its attach is under way or done */
	double started_t;
	bool failed;        /* for the snapshot under way */
	char why[256];
	bool asked, answered;
	struct snapshot *snap;
};

struct app_gsnap {
	struct app *app;
	struct gsnap_link **links;
	size_t nlinks;
	bool active;        /* a snapshot under way */
	bool asked;         /* its requests went out */
	double asked_t;
	double taken_mono;  /* when S was pressed (the graph's marker) */
};

static void link_message(void *ud, enum session_msg kind, bool error, const char *text)
{
	struct gsnap_link *l = ud;
	if (kind == SESSION_MSG_LEAVE) {
		if (l->job->app->quitting)
			strsafe_eprintf("pmt-top: %s", text);
		return;
	}
	if (error && kind == SESSION_MSG_ERROR && !l->failed && l->job->active && !l->asked) {
		l->failed = true;
		snprintf(l->why, sizeof l->why, "%s", text);
	}
}

static struct gsnap_link *find_link(struct app_gsnap *g, const struct group_member *m)
{
	for (size_t i = 0; i < g->nlinks; i++)
		if (g->links[i]->pid == m->pid && g->links[i]->start_ticks == m->start_ticks)
			return g->links[i];
	return NULL;
}

static void add_link(struct app_gsnap *g, const struct group_member *m)
{
	struct app *app = g->app;
	struct gsnap_link *l = xcalloc(1, sizeof *l);
	l->job = g;
	l->pid = m->pid;
	l->start_ticks = m->start_ticks;
	const struct session_opts so = {
		.pid = m->pid,
		.inject_method = app->opts->inject_method,
		.no_inject = app->opts->no_inject,
		.attach_timeout_ms = 15000,
		.no_profile = true,
	};
	const struct session_events ev = { .message = link_message, .ud = l };
	l->s = session_new(&so, &ev);
	g->links = xreallocarray(g->links, g->nlinks + 1, sizeof *g->links);
	g->links[g->nlinks++] = l;
}

/* Whether L belongs to a process still in the group. */
static bool link_current(const struct app *app, const struct gsnap_link *l)
{
	for (size_t i = 0; i < app->gtab.n; i++)
		if (app->gtab.m[i].pid == l->pid && app->gtab.m[i].start_ticks == l->start_ticks)
			return !app->gtab.m[i].gone;
	return false;
}

bool app_gsnap_busy(const struct app *app)
{
	return app->gsnap && app->gsnap->active;
}

void app_gsnap_take(struct app *app)
{
	if (app->group == NULL) {
		app_status(app, true, "one process is watched: s takes its snapshot");
		return;
	}
	if (app_gsnap_busy(app)) {
		app_status(app, false, "a group snapshot is under way");
		return;
	}
	if (app->gsnap == NULL) {
		app->gsnap = xcalloc(1, sizeof *app->gsnap);
		app->gsnap->app = app;
	}
	struct app_gsnap *g = app->gsnap;
	/* Links to processes that have gone since: closed (a respawning
	 * service would pile them up). */
	size_t kept = 0;
	for (size_t i = 0; i < g->nlinks; i++) {
		struct gsnap_link *l = g->links[i];
		if (link_current(app, l)) {
			g->links[kept++] = l;
			continue;
		}
		session_free(l->s);
		snapshot_free(l->snap);
		free(l);
	}
	g->nlinks = kept;
	size_t n = 0;
	for (size_t i = 0; i < app->gtab.n; i++) {
		const struct group_member *m = &app->gtab.m[i];
		if (m->gone || m->python == 0)
			continue;
		if (find_link(g, m) == NULL)
			add_link(g, m);
		n++;
	}
	if (n == 0) {
		app_status(app, true, "no Python process in the group");
		return;
	}
	for (size_t i = 0; i < g->nlinks; i++) {
		struct gsnap_link *l = g->links[i];
		l->failed = l->asked = l->answered = false;
		l->why[0] = '\0';
		snapshot_free(l->snap);
		l->snap = NULL;
	}
	g->active = true;
	g->asked = false;
	g->taken_mono = monotime_now();
	app_status(app, false, "group snapshot: reaching the agents of %zu processes (tracemalloc is started where "
		   "it is off: that first snapshot sees only what comes after)", n);
}

static void on_snapshot(void *ud, struct client_reply *r)
{
	struct gsnap_link *l = ud;
	bool gone;
	l->answered = true;
	if (!r->ok) {
		l->failed = true;
		snprintf(l->why, sizeof l->why, "%s", r->message ? r->message : "failed");
		return;
	}
	l->snap = snapshot_parse_consume(r->text, r->text_len, "reply", l->why, sizeof l->why, &gone);
	if (l->snap == NULL)
		l->failed = true;
	else
		l->snap->pid = (uint32_t)l->pid;
}

/* Every link ready (or failed): ask them all. */
static void ask_all(struct app_gsnap *g)
{
	char err[256];
	for (size_t i = 0; i < g->nlinks; i++) {
		struct gsnap_link *l = g->links[i];
		if (l->failed || !link_current(g->app, l))
			continue;
		cJSON *args = cJSON_CreateObject();
		cJSON_AddNumberToObject(args, "nframe", 1);
		/* Already on (with any frame count): an error that changes nothing. */
		session_request(l->s, PROTO_CMD_TRACEMALLOC_START, args, NULL, NULL, err, sizeof err);
		args = cJSON_CreateObject();
		cJSON_AddStringToObject(args, "key", "traceback");
		if (session_request_text(l->s, PROTO_CMD_SNAPSHOT, args, on_snapshot, l, l->why, sizeof l->why) >= 0)
			l->asked = true;
		else
			l->failed = true;
	}
	g->asked = true;
	g->asked_t = monotime_now();
}

static void finish(struct app_gsnap *g)
{
	struct app *app = g->app;
	struct snapshot **members = xcalloc(g->nlinks ? g->nlinks : 1, sizeof *members);
	size_t n = 0, failed = 0;
	for (size_t i = 0; i < g->nlinks; i++) {
		struct gsnap_link *l = g->links[i];
		if (l->snap) {
			snapshot_sort(l->snap);
			members[n++] = l->snap;
			l->snap = NULL;
		} else if (l->asked || l->failed) {
			failed++;
			app_status(app, true, "group snapshot: pid %d left out: %s", (int)l->pid,
				   l->why[0] ? l->why : "no answer");
		}
	}
	g->active = false;
	char err[256], origin[128], tot[32];
	struct snapshot *sum = n ? groupsnap_merge(members, n, NULL, err, sizeof err) : NULL;
	if (sum == NULL) {
		app_status(app, true, "group snapshot failed: %s", n ? err : "no process answered");
		for (size_t i = 0; i < n; i++)
			snapshot_free(members[i]);
		free(members);
		return;
	}
	snapshot_sort(sum);
	snprintf(origin, sizeof origin, "group: %zu processes%s", n, failed ? " (some left out)" : "");
	snapshot_set_label(sum, "group");
	sum->pid = app->group_tree ? (uint32_t)app->group_root : 0;
	app_snapshot_add(app, sum, g->taken_mono, origin);
	struct app_snap *e = &app->snaps[app->nsnaps - 1];
	e->members = members;
	e->nmembers = n;
	e->root = app->group_tree ? app->group_root : 0;
	app_status(app, failed > 0, "group snapshot %zu: %zu processes, %s traced in all%s (Snapshots view: b marks "
		   "a base, Enter diffs, with in which processes each line grew)", app->nsnaps, n,
		   units_bytes(tot, sizeof tot, (double)sum->total_size), failed ? "; some left out (M)" : "");
}

static void step(struct app_gsnap *g)
{
	double now = monotime_now();
	size_t attaching = 0;
	bool all_settled = true;
	for (size_t i = 0; i < g->nlinks; i++) {
		struct gsnap_link *l = g->links[i];
		if (!l->started)
			continue;
		enum session_agent st = session_agent(l->s);
		if (g->active && !g->asked && !l->failed && st != SESSION_AGENT_READY &&
		    (st == SESSION_AGENT_OFF || st == SESSION_AGENT_LOST || now - l->started_t > LINK_GIVE_UP_S)) {
			l->failed = true;
			if (!l->why[0])
				snprintf(l->why, sizeof l->why, "%s", session_note(l->s));
		}
		if (st == SESSION_AGENT_ATTACHING || st == SESSION_AGENT_CONNECTING)
			attaching++;
	}
	if (!g->active)
		return;
	/* Start links, four loading at a time. */
	for (size_t i = 0; i < g->nlinks && attaching < APP_LOADERS_MAX; i++) {
		struct gsnap_link *l = g->links[i];
		if (l->started || !link_current(g->app, l))
			continue;
		l->started = true;
		l->started_t = now;
		session_tick(l->s);
		attaching++;
	}
	if (!g->asked) {
		for (size_t i = 0; i < g->nlinks; i++) {
			struct gsnap_link *l = g->links[i];
			if (!link_current(g->app, l) || l->failed)
				continue;
			if (!l->started || session_agent(l->s) != SESSION_AGENT_READY)
				all_settled = false;
		}
		if (all_settled)
			ask_all(g);
		return;
	}
	bool waiting = false;
	for (size_t i = 0; i < g->nlinks; i++) {
		struct gsnap_link *l = g->links[i];
		if (l->asked && !l->answered) {
			if (session_agent(l->s) != SESSION_AGENT_READY || now - g->asked_t > ANSWER_GIVE_UP_S) {
				l->answered = true;
				l->failed = true;
				snprintf(l->why, sizeof l->why, "lost the agent or no answer: %s", session_note(l->s));
			} else {
				waiting = true;
			}
		}
	}
	if (!waiting)
		finish(g);
}

size_t app_gsnap_fds(struct app *app, struct pollfd *pfd, size_t max, int *timeout)
{
	struct app_gsnap *g = app->gsnap;
	size_t n = 0;
	if (g == NULL)
		return 0;
	for (size_t i = 0; i < g->nlinks && n < max; i++) {
		pfd[n].fd = -1;
		pfd[n].events = 0;
		pfd[n].revents = 0;
		if (g->links[i]->started) {
			session_pollfd(g->links[i]->s, &pfd[n]);
			int t = session_timeout_ms(g->links[i]->s);
			if (t >= 0 && t < *timeout)
				*timeout = t;
		}
		n++;
	}
	if (g->active && *timeout > 250)
		*timeout = 250;
	return n;
}

void app_gsnap_events(struct app *app, const struct pollfd *pfd, size_t n)
{
	struct app_gsnap *g = app->gsnap;
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->nlinks; i++) {
		struct gsnap_link *l = g->links[i];
		if (!l->started)
			continue;
		if (i < n && pfd[i].fd >= 0 && pfd[i].revents)
			session_handle(l->s, pfd[i].revents);
		session_tick(l->s);
	}
	step(g);
}

void app_gsnap_leave(struct app *app)
{
	struct app_gsnap *g = app->gsnap;
	for (size_t i = 0; g && i < g->nlinks; i++)
		if (g->links[i]->started && link_current(app, g->links[i]))
			session_leave_clean(g->links[i]->s);
}

void app_gsnap_free(struct app *app)
{
	struct app_gsnap *g = app->gsnap;
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->nlinks; i++) {
		session_free(g->links[i]->s);
		snapshot_free(g->links[i]->snap);
		free(g->links[i]);
	}
	free(g->links);
	free(g);
	app->gsnap = NULL;
}
