/*
 * app_agent.c - the TUI's link to the in-process agent.
 *
 * Finds the agent's socket (or, unless --no-inject, loads the agent into the
 * target), keeps the connection, subscribes to status pushes, and retries after
 * a drop: a restarted agent or a dropped SSH session reconnects on its own.
 * Everything here runs on the UI thread, driven by the main poll() loop, and
 * never blocks it: connect is non-blocking, injection is asynchronous.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect/agent_sock.h"
#include "collect/inject.h"
#include "collect/paths.h"
#include "collect/units.h"
#include "ipc/client.h"
#include "tui/app.h"

#define RETRY_SECONDS 1.0
#define RETRY_SECONDS_OFF 5.0 /* no agent expected: look now and then, cheaply */

static void on_push(void *ud, enum proto_push push, const cJSON *data)
{
	struct app *app = ud;
	char err[256];
	if (push != PROTO_PUSH_STATUS)
		return;
	struct msg_status st;
	if (msg_decode_status(data, &st, err, sizeof err) < 0) {
		app_status(app, true, "agent sent a bad status: %s", err);
		return;
	}
	app->agent_status = st;
	app->have_status = true;
	app->status_rx_t = proc_sampler_now();
	app->data_dirty = true;
}

static void subscribe(struct app *app)
{
	cJSON *args = cJSON_CreateObject();
	cJSON_AddNumberToObject(args, "interval", app->interval);
	client_request(app->agent, PROTO_CMD_SUBSCRIBE, args, NULL, NULL);
	client_request(app->agent, PROTO_CMD_STATUS, NULL, NULL, NULL);
}

static void on_state(void *ud, enum client_state state, const char *message)
{
	struct app *app = ud;
	if (state == CLIENT_READY) {
		const struct msg_hello *h = client_hello(app->agent);
		app->agent_state = APP_AGENT_READY;
		snprintf(app->agent_note, sizeof app->agent_note, "Python %s%s", h->python,
			 h->native ? "" : ", no C extension");
		app_status(app, false, "connected to the agent in pid %d (Python %s)", (int)app->pid, h->python);
		inject_free(app->inject);
		app->inject = NULL;
		subscribe(app);
	} else if (state == CLIENT_CLOSED) {
		bool was_ready = app->agent_state == APP_AGENT_READY;
		app->agent_state = was_ready ? APP_AGENT_LOST : APP_AGENT_NONE;
		app->have_status = false;
		snprintf(app->agent_note, sizeof app->agent_note, "%s", message);
		if (was_ready && !app->gone)
			app_status(app, true, "lost the agent: %s (retrying)", message);
		app->agent_retry_t = proc_sampler_now() + RETRY_SECONDS;
	}
	app->dirty = true;
}

void app_agent_start(struct app *app)
{
	app->agent = client_new();
	client_set_push_handler(app->agent, on_push, app);
	client_set_state_handler(app->agent, on_state, app);
	app->agent_state = APP_AGENT_NONE;
	snprintf(app->agent_note, sizeof app->agent_note, "looking for an agent");
	app->agent_retry_t = 0;
}

static void start_inject(struct app *app)
{
	char err[512];
	struct inject_req req = {
		.pid = app->pid,
		.method = app->opts->inject_method ? inject_method_from_name(app->opts->inject_method)
						   : INJECT_AUTO,
		.agent_dir = paths_agent_dir(),
		.native_dir = paths_native_dir(),
		.timeout_ms = 15000,
	};
	app->injected = true;
	app->inject = inject_start(&req, err, sizeof err);
	if (app->inject == NULL) {
		app->agent_state = APP_AGENT_OFF;
		snprintf(app->agent_note, sizeof app->agent_note, "%s", err);
		app_status(app, true, "no agent: %s", err);
		return;
	}
	app->agent_state = APP_AGENT_ATTACHING;
	snprintf(app->agent_note, sizeof app->agent_note, "attaching...");
}

static void poll_inject(struct app *app)
{
	static enum inject_state last = INJECT_RUNNING;
	char status[512];
	enum inject_state st = inject_poll(app->inject, status, sizeof status);
	if (app->agent_state == APP_AGENT_ATTACHING) {
		if (strcmp(status, app->agent_note) != 0) {
			snprintf(app->agent_note, sizeof app->agent_note, "%s", status);
			app->dirty = true;
		}
		/* The status line hears of changes of state, not of every tick. */
		if (st != last && st != INJECT_DONE)
			app_status(app, st == INJECT_FAILED, "%s", status);
	}
	last = st;
	if (st == INJECT_FAILED) {
		inject_free(app->inject);
		app->inject = NULL;
		app->agent_state = APP_AGENT_OFF;
	} else if (st == INJECT_DONE) {
		app->agent_retry_t = 0; /* connect at once */
	}
}

void app_agent_tick(struct app *app)
{
	if (app->agent == NULL)
		return;
	if (app->inject)
		poll_inject(app);
	enum client_state cs = client_state(app->agent);
	if (cs == CLIENT_HANDSHAKE || cs == CLIENT_READY || app->gone)
		return;
	double now = proc_sampler_now();
	if (now < app->agent_retry_t)
		return;
	app->agent_retry_t = now + (app->agent_state == APP_AGENT_OFF ? RETRY_SECONDS_OFF : RETRY_SECONDS);

	char err[512], path[1200];
	const char *sock = app->opts->socket;
	if (sock == NULL && agent_sock_find(app->pid, path, sizeof path, err, sizeof err) == 0)
		sock = path;
	if (client_connect(app->agent, app->pid, sock, err, sizeof err) == 0) {
		app->agent_state = APP_AGENT_CONNECTING;
		return;
	}
	/* Nobody answers. Load the agent once, unless told not to or a run/demo
	 * child will start it itself. */
	if (app->agent_state == APP_AGENT_LOST || app->agent_state == APP_AGENT_ATTACHING ||
	    app->inject)
		return;
	if (app->opts->no_inject || app->opts->socket) {
		app->agent_state = APP_AGENT_OFF;
		snprintf(app->agent_note, sizeof app->agent_note, "%s", app->opts->no_inject ?
			 "none (--no-inject: RSS only)" : err);
		return;
	}
	if (app->child > 0) {
		/* The preloaded agent starts with the program: keep polling. */
		if (app->agent_state == APP_AGENT_OFF)
			return;
		snprintf(app->agent_note, sizeof app->agent_note, "waiting for the program's agent");
		if (now - app->t_start > 10) {
			app->agent_state = APP_AGENT_OFF;
			snprintf(app->agent_note, sizeof app->agent_note,
				 "none: the program did not start the agent (is it Python?)");
		}
		return;
	}
	if (!app->injected)
		start_inject(app);
}

void app_agent_pollfd(struct app *app, struct pollfd *pfd)
{
	pfd->fd = -1;
	pfd->events = 0;
	if (app->agent)
		client_pollfd(app->agent, pfd);
	if (pfd->fd < 0 && app->inject) {
		pfd->fd = inject_fd(app->inject);
		pfd->events = POLLIN;
	}
}

void app_agent_handle(struct app *app, short revents)
{
	if (app->agent && client_fd(app->agent) >= 0)
		client_handle(app->agent, revents);
}

void app_agent_stop(struct app *app)
{
	client_free(app->agent);
	app->agent = NULL;
	inject_free(app->inject);
	app->inject = NULL;
}

bool app_agent_heap(const struct app *app, uint64_t *heap)
{
	if (!app->have_status || !app->agent_status.tracing)
		return false;
	if (proc_sampler_now() - app->status_rx_t > 3 * app->interval + 1)
		return false;
	*heap = app->agent_status.traced_current;
	return true;
}

bool app_agent_request(struct app *app, int cmd, void *args,
		       void (*cb)(void *ud, struct client_reply *r), void *ud)
{
	if (app->agent == NULL || app->agent_state != APP_AGENT_READY) {
		cJSON_Delete(args);
		if (app->pid <= 0)
			app_status(app, true, "no process: only saved snapshots are open");
		else
			app_status(app, true, "no agent in pid %d: %s", (int)app->pid, app->agent_note);
		return false;
	}
	return client_request(app->agent, (enum proto_cmd)cmd, args, cb, ud) > 0;
}

void app_agent_describe(const struct app *app, char *buf, size_t len)
{
	switch (app->agent_state) {
	case APP_AGENT_READY:
		if (app->have_status && app->agent_status.tracing) {
			char mem[32], cur[32];
			snprintf(buf, len, "agent %s | tracemalloc on, %d frame%s, heap %s, its own cost %s",
				 app->agent_note, app->agent_status.nframe, app->agent_status.nframe == 1 ? "" : "s",
				 units_bytes(cur, sizeof cur, (double)app->agent_status.traced_current),
				 units_bytes(mem, sizeof mem, (double)app->agent_status.tracemalloc_memory));
		} else {
			snprintf(buf, len, "agent %s | tracemalloc off (T starts it)", app->agent_note);
		}
		break;
	case APP_AGENT_ATTACHING:
		snprintf(buf, len, "agent: %s", app->agent_note);
		break;
	case APP_AGENT_CONNECTING:
		snprintf(buf, len, "agent: connecting...");
		break;
	default:
		snprintf(buf, len, "agent: %s", app->agent_note);
		break;
	}
}
