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
#include "session/session.h"
#include "tui/app.h"

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
	if (what & SESSION_CHANGED_AGENT)
		app->dirty = true;
}

static void on_message(void *ud, enum session_msg kind, bool error, const char *text)
{
	struct app *app = ud;
	/* Clean-up on quit happens after the screen is gone. */
	if (kind == SESSION_MSG_LEAVE)
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

bool app_agent_request(struct app *app, int cmd, void *args,
		       void (*cb)(void *ud, struct client_reply *r), void *ud)
{
	char err[600];
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
	else
		snprintf(buf, len, "agent: none (no process)");
}
