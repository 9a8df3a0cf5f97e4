/*
 * app_agent.c - the TUI's side of the session (session/session.h).
 *
 * The session finds, loads and keeps the agent; this file turns its events
 * into the status line and redraws, and gives the views a few shorthands.
 * Everything runs on the UI thread and never blocks it.
 */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <string.h>

#include "base/monotime.h"
#include "base/strsafe.h"
#include "proc/proc_sampler.h"
#include "session/composition.h"
#include "session/session.h"
#include "tui/app.h"
#include "tui/view.h"

/*
 * The traced-heap series: one point per status, at the time the agent took
 * it (its wall clock turned into ours), and a gap when tracing stops or the
 * agent goes away.
 */
static void heap_point(struct app *app)
{
	struct history *h = &app->heap_hist;
	const struct msg_status *st = app_agent_status(app);
	bool last_gap = h->len == 0 || h->points[h->len - 1].gap;
	double now = monotime_now();
	struct history_point p = { .t = now, .gap = true };
	if (st && st->tracing) {
		struct timespec wall;
		clock_gettime(CLOCK_REALTIME, &wall);
		double t = st->time - ((double)wall.tv_sec + (double)wall.tv_nsec / 1e9) + now;
		/* A clock that jumped, or a status from long ago: now will do. */
		p.t = fabs(t - now) < 5 ? t : now;
		p.v = st->traced_current;
		p.gap = false;
	} else if (last_gap) {
		return;
	}
	if (h->len && p.t <= h->points[h->len - 1].t)
		p.t = h->points[h->len - 1].t + 1e-6;
	history_append(h, &p);
}

static void on_changed(void *ud, unsigned what)
{
	struct app *app = ud;
	if (what & SESSION_CHANGED_STATUS) {
		heap_point(app);
		app->data_dirty = true;
	}
	if (what & (SESSION_CHANGED_AGENT | SESSION_CHANGED_PROFILE))
		app->dirty = true;
}

static void on_message(void *ud, enum session_msg kind, bool error, const char *text)
{
	struct app *app = ud;
	/* Clean-up on quit happens after the screen is gone. */
	if (kind == SESSION_MSG_LEAVE && app->quitting)
		strsafe_eprintf("pmt-top: %s", text);
	else
		app_status(app, error, "%s", text);
}

void app_agent_start(struct app *app)
{
	const struct session_opts so = {
		.pid = app->pid,
		.socket = app->opts->socket,
		.inject_method = app->opts->inject_method,
		.no_inject = app->opts->no_inject,
		.child_agent = app->child > 0,
		.interval = app->interval,
		.attach_timeout_ms = 15000,
		.no_profile = app->opts->no_profile,
		.profile_interval = app->opts->profile_interval,
		.profile_calls = app->opts->calls,
		.profile_no_native = app->opts->no_native,
	};
	const struct session_events ev = { .changed = on_changed, .message = on_message, .ud = app };
	app->session = session_new(&so, &ev);
	if (app->gone)
		session_set_gone(app->session);
}

void app_agent_stop(struct app *app)
{
	session_free(app->session);
	app->session = NULL;
}

bool app_agent_ready(const struct app *app)
{
	return app->session && session_agent(app->session) == SESSION_AGENT_READY;
}

const struct msg_status *app_agent_status(const struct app *app)
{
	return app->session ? session_status(app->session, NULL) : NULL;
}

bool app_agent_tracing(const struct app *app)
{
	const struct msg_status *st = app_agent_status(app);
	return st && st->tracing;
}

bool app_agent_profiling(const struct app *app)
{
	return app_agent_ready(app) && session_profile(app->session) == SESSION_PROFILE_ON;
}

enum snapshot_source app_agent_source(const struct app *app)
{
	if (app->source_chosen)
		return app->source;
	return app_agent_profiling(app) ? SNAPSHOT_SOURCE_SAMPLED : SNAPSHOT_SOURCE_TRACEMALLOC;
}

void app_agent_profile_why(const struct app *app, char *buf, size_t len)
{
	const char *notice = app->session ? session_profile_notice(app->session) : "";
	if (!app_agent_ready(app)) {
		snprintf(buf, len, "The sampled profiler needs the agent inside the process.");
		return;
	}
	switch (session_profile(app->session)) {
	case SESSION_PROFILE_ON:
		snprintf(buf, len, "%s", notice);
		break;
	case SESSION_PROFILE_STARTING:
		snprintf(buf, len, "starting the sampled profiler...");
		break;
	case SESSION_PROFILE_UNAVAILABLE:
		snprintf(buf, len, "%s (in the Top view, m then T)", notice[0] ? notice : "no sampled profiler here");
		break;
	case SESSION_PROFILE_OFF:
	case SESSION_PROFILE_FAILED:
	case SESSION_PROFILE_STOPPED:
		snprintf(buf, len, "%s%sP starts the sampled profiler", notice, notice[0] ? "; " : "");
		break;
	}
}

/* A profile_start or profile_stop reply: the session learns what runs. */
static void on_profile_switch(struct app *app, enum proto_cmd cmd, struct client_reply *r)
{
	char err[256];
	const char *what = cmd == PROTO_CMD_PROFILE_START ? "start" : "stop";
	if (!r->ok) {
		if (cmd == PROTO_CMD_PROFILE_START)
			app->profile_note[0] = '\0';
		if (cmd == PROTO_CMD_PROFILE_START && app->profile_fallback) {
			app->profile_fallback = false;
			app_status(app, true, "call counting could not start (%s); the profiler runs on without it",
				   r->message);
			app_agent_profile_start(app, false);
			return;
		}
		app_status(app, true, "could not %s the sampled profiler: %s", what, r->message);
		return;
	}
	if (cmd == PROTO_CMD_PROFILE_START)
		app->profile_fallback = false;
	if (session_profile_took(app->session, cmd, r->result, err, sizeof err) < 0)
		app_status(app, true, "the agent's reply to profile_%s is malformed: %s", what, err);
	else if (cmd == PROTO_CMD_PROFILE_START && app->profile_note[0])
		app_status(app, false, "%s", app->profile_note); /* after the session's own notice */
	if (cmd == PROTO_CMD_PROFILE_START)
		app->profile_note[0] = '\0';
}

static void on_profile_started(void *ud, struct client_reply *r)
{
	on_profile_switch(ud, PROTO_CMD_PROFILE_START, r);
}

static void on_profile_stopped(void *ud, struct client_reply *r)
{
	on_profile_switch(ud, PROTO_CMD_PROFILE_STOP, r);
}

void app_agent_profile_start(struct app *app, bool calls)
{
	const struct msg_profile_status *last = app->session ? session_profile_status(app->session) : NULL;
	cJSON *args = cJSON_CreateObject();
	if (!app_agent_ready(app)) {
		cJSON_Delete(args);
		app_status(app, true, "no agent in pid %d: %s", (int)app->pid,
			   app->session ? session_note(app->session) : "no process");
		return;
	}
	/* As it ran before: a restart changes call counting, nothing else. */
	if (last && last->interval > 0)
		cJSON_AddNumberToObject(args, "interval", (double)last->interval);
	else if (app->opts->profile_interval > 0)
		cJSON_AddNumberToObject(args, "interval", (double)app->opts->profile_interval);
	if (last && last->has_detail) {
		cJSON_AddNumberToObject(args, "nframe", last->nframe);
		cJSON_AddNumberToObject(args, "max_samples", (double)last->max_samples);
		cJSON_AddNumberToObject(args, "max_stacks", (double)last->max_stacks);
	}
	cJSON_AddBoolToObject(args, "calls", calls);
	if (app->opts->no_native)
		cJSON_AddBoolToObject(args, "native", false);
	app->profile_fallback = calls;
	app_agent_request(app, PROTO_CMD_PROFILE_START, args, on_profile_started, app);
}

void app_agent_profile_stop(struct app *app)
{
	app_agent_request(app, PROTO_CMD_PROFILE_STOP, NULL, on_profile_stopped, app);
}

void app_agent_profile_restart(struct app *app, bool calls)
{
	if (!app_agent_ready(app)) {
		app_agent_profile_start(app, calls); /* says why not */
		return;
	}
	app_agent_profile_stop(app);
	app_agent_profile_start(app, calls);
}

bool app_agent_request(struct app *app, int cmd, void *args,
		       void (*cb)(void *ud, struct client_reply *r), void *ud)
{
	char err[600];
	if (app->session == NULL && app->agent_deferred) {
		/* A group, looked at from the Processes view: asking loads it. */
		cJSON_Delete(args);
		app_agent_wanted(app);
		app_status(app, false, "loading the agent into pid %d first: ask again once it answers",
			   (int)app->pid);
		return false;
	}
	if (app->session == NULL) {
		cJSON_Delete(args);
		app_status(app, true, "no process: only saved snapshots are open");
		return false;
	}
	if (session_request(app->session, (enum proto_cmd)cmd, args, cb, ud, err, sizeof err) < 0) {
		app_status(app, true, "%s", err);
		return false;
	}
	return true;
}

void app_agent_describe(const struct app *app, char *buf, size_t len)
{
	if (app->session)
		session_describe(app->session, buf, len);
	else if (app->agent_deferred)
		snprintf(buf, len, "agent: not loaded yet (a view other than Processes loads it)");
	else
		snprintf(buf, len, "agent: none (no process)");
}

void app_composition(struct app *app, struct composition *c)
{
	const char *why = app->sampler ? proc_sampler_kinds_note(app->sampler) : "no process";
	if (!why[0] && (app->last.flags & PROC_SAMPLE_KINDS_TOO_BIG))
		why = "kinds of memory unavailable: /proc/PID/smaps is too big to read";
	composition_make(app->kinds.flags & PROC_SAMPLE_HAS_KINDS ? &app->kinds : NULL,
			 app->kinds_fig_ok ? &app->kinds_fig : NULL, why, c);
}

/* The new smaps read becomes the composition's with figures of its moment. */
static void kinds_settle(struct app *app, const struct proc_sample *s, const struct msg_status *fig)
{
	app->kinds = *s;
	app->kinds_fig_ok = fig != NULL;
	if (fig)
		app->kinds_fig = *fig;
	app_snap_memory(app);
	app_comp_append(app);
	app->data_dirty = true;
}

static void on_kinds_figures(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	char err[256];
	app->kinds_asking = false;
	const struct msg_status *fig = NULL;
	if (r->ok && app->session && session_take_status(app->session, r->result, err, sizeof err) == 0)
		fig = session_status(app->session, NULL);
	kinds_settle(app, &app->kinds_next, fig);
}

/* Whether a smaps read is worth fresh figures: the Overview shows the
 * composition, or a snapshot waits for its record. Elsewhere the newest
 * pushed figures do, and pmt-top asks the agent nothing of its own. */
static bool kinds_wanted(const struct app *app)
{
	if (views[app->view] == &view_overview)
		return true;
	for (size_t i = 0; i < app->nsnaps; i++)
		if (app->snaps[i].mem_pending)
			return true;
	return false;
}

void app_kinds_arrived(struct app *app, const struct proc_sample *s)
{
	if (app->kinds_asking) {
		app->kinds_next = *s; /* a newer read: it takes the figures on their way */
		return;
	}
	if (!app->session || session_agent(app->session) != SESSION_AGENT_READY) {
		kinds_settle(app, s, NULL);
		return;
	}
	if (!kinds_wanted(app)) {
		kinds_settle(app, s, app_agent_status(app));
		return;
	}
	cJSON *fresh = cJSON_CreateObject();
	cJSON_AddTrueToObject(fresh, "fresh");
	app->kinds_next = *s;
	if (session_request(app->session, PROTO_CMD_STATUS, fresh, on_kinds_figures, app, NULL, 0) >= 0)
		app->kinds_asking = true;
	else
		kinds_settle(app, s, NULL);
}
