/*
 * app_group.c - the TUI's side of a watched group (see app.h): whether there
 * is one, its table, and its total RSS over time.
 */
#include "tui/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/monotime.h"
#include "base/xalloc.h"
#include "proc/proctree.h"
#include "session/session.h"
#include "tui/view.h"

/* A load that has not answered by then is given up (it has its own
 * deadline too: this bounds the wait for its agent to answer). */
#define LOAD_GIVE_UP_S 40.0

struct app_loader {
	struct app *app;
	struct session *s;
	pid_t pid;
	double started;
	bool failed;
	char why[256];
};

bool app_group_open(struct app *app, char *err, size_t errlen)
{
	const struct cli_opts *o = app->opts;
	bool tree;
	if (o->mode != CLI_WATCH || o->group == CLI_GROUP_NONE || app->pid <= 0)
		return true;
	if (o->group == CLI_GROUP_LIST) {
		tree = false;
	} else if (o->group == CLI_GROUP_TREE) {
		tree = true;
	} else {
		/* A process with children is a service: watch them too. */
		pid_t kid;
		if (proctree_children("/proc", app->pid, &kid, 1) <= 0)
			return true;
		tree = true;
	}
	bool no_process;
	app->group = group_new(NULL, tree, app->pid, o->pids, (size_t)o->npids, app->interval, &no_process,
			       err, errlen);
	if (app->group == NULL)
		return false;
	if (group_start(app->group) < 0) {
		snprintf(err, errlen, "cannot start the group's sampling thread");
		group_free(app->group);
		app->group = NULL;
		return false;
	}
	app->group_tree = tree;
	app->group_root = app->pid;
	app->agent_deferred = true;
	app_group_drain(app);
	return true;
}

void app_group_drain(struct app *app)
{
	if (app->group == NULL || !group_read(app->group, &app->gtab))
		return;
	group_sort(&app->gtab);
	struct history_point p = { .t = app->gtab.t, .v = app->gtab.total_rss };
	if (app->group_hist.len == 0 || p.t > app->group_hist.points[app->group_hist.len - 1].t)
		history_append(&app->group_hist, &p);
	app->data_dirty = true;
}

static void loader_message(void *ud, enum session_msg kind, bool error, const char *text)
{
	struct app_loader *l = ud;
	if (error && kind == SESSION_MSG_ERROR && !l->failed) {
		l->failed = true;
		snprintf(l->why, sizeof l->why, "%s", text);
	}
}

static void start_loader(struct app *app, pid_t pid)
{
	struct app_loader *l = xcalloc(1, sizeof *l);
	app->loaders[app->nloaders++] = l;
	l->app = app;
	l->pid = pid;
	l->started = monotime_now();
	const struct session_opts so = {
		.pid = pid,
		.inject_method = app->opts->inject_method,
		.attach_timeout_ms = 15000,
		.no_profile = true, /* load only: switch nothing on */
	};
	const struct session_events ev = { .message = loader_message, .ud = l };
	l->s = session_new(&so, &ev);
}

bool app_group_loading(const struct app *app, pid_t pid)
{
	for (size_t i = 0; i < app->nloaders; i++)
		if (app->loaders[i]->pid == pid)
			return true;
	for (size_t i = 0; i < app->nqueue; i++)
		if (app->load_queue[i] == pid)
			return true;
	return false;
}

void app_group_load_all(struct app *app)
{
	if (app->group == NULL || app->opts->no_inject) {
		app_status(app, true, app->opts->no_inject ? "--no-inject: no agent is loaded anywhere"
							   : "one process is watched");
		return;
	}
	size_t queued = 0;
	for (size_t i = 0; i < app->gtab.n; i++) {
		const struct group_member *m = &app->gtab.m[i];
		if (m->gone || m->python == 0 || m->pid == app->pid || app_group_loading(app, m->pid) ||
		    session_agent_listening(m->pid))
			continue;
		app->load_queue = xreallocarray(app->load_queue, app->nqueue + 1, sizeof *app->load_queue);
		app->load_queue[app->nqueue++] = m->pid;
		queued++;
	}
	/* The watched process gets its own, as a view would. */
	app_agent_wanted(app);
	if (queued == 0) {
		app_status(app, false, "every Python process of the group has an agent (or is being loaded)");
		return;
	}
	app->loads_ok = app->loads_failed = 0;
	app_status(app, false, "loading the agent into %zu process%s, %d at a time; nothing is switched on in them",
		   queued, queued == 1 ? "" : "es", APP_LOADERS_MAX);
}

/* Ends the loads that are done, starts waiting ones. */
static void loaders_step(struct app *app)
{
	size_t o = 0;
	double now = monotime_now();
	for (size_t i = 0; i < app->nloaders; i++) {
		struct app_loader *l = app->loaders[i];
		enum session_agent st = session_agent(l->s);
		bool ready = st == SESSION_AGENT_READY;
		bool failed = l->failed || st == SESSION_AGENT_OFF || st == SESSION_AGENT_LOST ||
			      now - l->started > LOAD_GIVE_UP_S;
		if (!ready && !failed) {
			app->loaders[o++] = l;
			continue;
		}
		if (ready) {
			app->loads_ok++;
		} else {
			app->loads_failed++;
			app_status(app, true, "pid %d: no agent: %s", (int)l->pid,
				   l->why[0] ? l->why : session_note(l->s));
		}
		session_free(l->s);
		free(l);
		app->agents_seq++;
		app->dirty = true;
	}
	app->nloaders = o;
	while (app->nloaders < APP_LOADERS_MAX && app->nqueue > 0) {
		pid_t pid = app->load_queue[0];
		memmove(app->load_queue, app->load_queue + 1, (app->nqueue - 1) * sizeof *app->load_queue);
		app->nqueue--;
		start_loader(app, pid);
	}
	if (app->nloaders == 0 && (app->loads_ok || app->loads_failed)) {
		app_status(app, app->loads_failed > 0, "agents loaded in %u process%s%s", app->loads_ok,
			   app->loads_ok == 1 ? "" : "es",
			   app->loads_failed ? " (the others: see M)" : "; Enter watches one at once");
		app->loads_ok = app->loads_failed = 0;
	}
}

size_t app_group_loader_fds(struct app *app, struct pollfd *pfd, size_t max, int *timeout)
{
	size_t n = 0;
	for (size_t i = 0; i < app->nloaders && n < max; i++) {
		session_pollfd(app->loaders[i]->s, &pfd[n++]);
		int t = session_timeout_ms(app->loaders[i]->s);
		if (t >= 0 && t < *timeout)
			*timeout = t;
	}
	/* A load waiting its turn, or one to give up: look again soon. */
	if ((app->nqueue > 0 || app->nloaders > 0) && *timeout > 500)
		*timeout = 500;
	return n;
}

void app_group_loader_events(struct app *app, const struct pollfd *pfd, size_t n)
{
	for (size_t i = 0; i < app->nloaders; i++) {
		if (i < n && pfd[i].fd >= 0 && pfd[i].revents)
			session_handle(app->loaders[i]->s, pfd[i].revents);
		session_tick(app->loaders[i]->s);
	}
	loaders_step(app);
}

void app_group_close(struct app *app)
{
	for (size_t i = 0; i < app->nloaders; i++) {
		session_free(app->loaders[i]->s); /* a load under way is abandoned */
		free(app->loaders[i]);
	}
	app->nloaders = 0;
	free(app->load_queue);
	app->load_queue = NULL;
	app->nqueue = 0;
	group_free(app->group);
	app->group = NULL;
	group_table_done(&app->gtab);
}
