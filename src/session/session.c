/*
 * session.c - one watched process and its agent link (see session.h).
 *
 * The attach flow is a small state machine driven by session_tick(): look
 * for a socket and connect; when nobody answers, load the agent (once) and
 * look again, quickly at first; after a drop, retry every second; when no
 * agent is expected, look now and then, cheaply. Front ends only read the
 * state and send requests.
 *
 * An agent that is there but does not serve us is never loaded a second
 * time: once a socket of the process accepted a connection (or has a full
 * queue), a silent agent (no hello within HANDSHAKE_S), a stopped process,
 * or an agent with no free connection ("busy") is a failed attempt, said in
 * one sentence and retried after a bounded backoff (headless commands give
 * up on it instead). When another pmt-top is loading the agent into the
 * same process, we wait for its agent instead of racing its gdb.
 */
#include "session/session.h"
#include "base/monotime.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "attach/agent_sock.h"
#include "attach/inject.h"
#include "attach/inject_dir.h"
#include "attach/tracer.h"
#include "base/paths.h"
#include "proc/proc_sampler.h"
#include "base/units.h"
#include "base/errfmt.h"
#include "base/xalloc.h"

#define RETRY_S 1.0
#define RETRY_OFF_S 5.0       /* no agent expected: look now and then */
#define RETRY_FAST_S 0.1      /* the agent was just loaded: it binds in a moment */
#define FAST_WINDOW_S 5.0     /* ... for this long */
#define CHILD_AGENT_WAIT_S 10.0
#define DEFAULT_ATTACH_MS 15000
#define HANDSHAKE_S 5.0       /* an accepted connection gets this long to answer hello */
#define BACKOFF_MIN_S 1.0     /* after a failed attempt: 1, 2, 4, 8, 15, 15... s */
#define BACKOFF_MAX_S 15.0
#define PEER_WAIT_S 15.0      /* another pmt-top loading the agent: wait this long for it */
#define PEER_GRACE_S 2.0      /* ... and this long after its directory went */
#define RETRY_PEER_S 0.2
#define WAIT_EXTRA_S 10.0     /* session_wait_ready: after the load's deadline */
#define LEAVE_S 15.0          /* switching off on leaving, whole (see "leaving" below) */
#define LEAVE_SAY_WAIT_S 1.0  /* ... and when it is worth saying that we wait */

/* A front end's request, followed so that leaving knows what is in flight. */
struct tracked {
	struct session *s;
	enum proto_cmd cmd;
	client_reply_fn cb;
	void *ud;
	struct tracked *prev, *next;
};

struct session {
	struct session_opts o;
	char *socket, *inject_method;
	struct session_events ev;

	struct client *client;
	enum session_agent agent;
	char note[512];
	char connect_err[1400]; /* why the last connection attempt failed */
	double retry_t;       /* next connection attempt */
	double fast_until;    /* retry quickly until then */
	double t_start;
	bool gone;

	struct inject *inject;
	bool injected;        /* we tried already */
	bool inject_failed;
	char inject_err[512]; /* why, said when nothing else turns up */

	double connect_t;     /* when the connection under way was accepted */
	char conn_state;      /* the process's state letter seen while connecting */
	bool agent_seen;      /* an agent of this process accepted a connection: never load another */
	int failures;         /* failed attempts in a row, for the backoff */
	bool attempt_failed;  /* the last attempt failed (headless gives up) */
	bool fail_stopped;    /* ... because the process was stopped */
	char fail_msg[640];   /* ... why, in one sentence */
	pid_t peer;           /* another pmt-top loading the agent into the process */
	double peer_until;    /* wait for it until then (0: not waiting) */
	double peer_gone_t;   /* its inject directory went then */
	bool peer_gave_up;    /* waited in vain: said, and not again */
	enum inject_state inject_last;

	struct msg_status status;
	bool have_status;
	double status_t;

	bool functions_on;    /* this session switched the function tracer on */
	bool tm_ours;         /* tracemalloc runs because this session started it */

	/* Requests of the front end not answered yet on this connection: a
	 * stop queued behind one of them waits for it (see leaving). */
	struct tracked *tracked;
	int inflight;
	int starts_inflight;  /* ... of them tracemalloc_start, profile_start, functions_start */
	bool call_abandoned;  /* a session_call timed out: its reply is still to come */

	enum session_profile profile;
	bool profile_ours;    /* this session started the running profiler */
	bool profile_ever_ours; /* ... at some point (a reconnect finds it still running) */
	bool have_profile_status;
	struct msg_profile_status profile_status;
	char profile_notice[512];
	char profile_refused[256]; /* the agent's answer to a refused profile_start */
};

static double now_s(void)
{
	return monotime_now();
}

static void changed(struct session *s, unsigned what)
{
	if (s->ev.changed)
		s->ev.changed(s->ev.ud, what);
}

static void say(struct session *s, enum session_msg kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(struct session *s, enum session_msg kind, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	if (!s->ev.message)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	s->ev.message(s->ev.ud, kind, kind == SESSION_MSG_ERROR, text);
}

static void set_note(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_note(struct session *s, const char *fmt, ...)
{
	char text[sizeof s->note];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (strcmp(text, s->note) != 0) {
		memcpy(s->note, text, sizeof text);
		changed(s, SESSION_CHANGED_AGENT);
	}
}

static void set_agent(struct session *s, enum session_agent a)
{
	if (s->agent != a) {
		s->agent = a;
		changed(s, SESSION_CHANGED_AGENT);
	}
}

/* ---- the sampled profiler ---- */

/* "4 KiB", "1.50 MiB", "1000 B": a sampling interval for people. */
static char *interval_text(char *buf, size_t len, uint64_t interval)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB" };
	uint64_t v = interval;
	int u = 0;

	/* Intervals are usually powers of two: "4 KiB", not "4.00 KiB". */
	while (u < 3 && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	if (u > 0 || v < 1024)
		snprintf(buf, len, "%llu %s", (unsigned long long)v, unit[u]);
	else
		units_bytes(buf, len, (double)interval);
	return buf;
}

static void set_profile(struct session *s, enum session_profile state, bool error,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A new profiler state and notice; the notice is said once when it changes. */
static void set_profile(struct session *s, enum session_profile state, bool error,
			const char *fmt, ...)
{
	char text[sizeof s->profile_notice];
	va_list ap;
	bool news;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	news = strcmp(text, s->profile_notice) != 0;
	if (!news && state == s->profile)
		return;
	s->profile = state;
	memcpy(s->profile_notice, text, sizeof text);
	changed(s, SESSION_CHANGED_PROFILE);
	if (news && text[0] != '\0')
		say(s, error ? SESSION_MSG_ERROR : SESSION_MSG_INFO, "%s", text);
}

/* The notice for a running profiler. */
static void profile_running(struct session *s, bool ours)
{
	char iv[32];
	const struct msg_profile_status *p = &s->profile_status;
	bool every = p->exact || p->interval <= 1;

	s->profile_ours = ours;
	s->profile_ever_ours |= ours;
	set_profile(s, SESSION_PROFILE_ON, false, "sampled profiler on%s: %s%s%s",
		    ours ? "" : " (started by another client)",
		    every ? "every allocation" : "1 sample per ",
		    every ? "" : interval_text(iv, sizeof iv, p->interval),
		    ours ? "; --no-profile to opt out" : "");
}

static int profile_store(struct session *s, const cJSON *result, char *err, size_t errlen)
{
	struct msg_profile_status p;

	if (msg_decode_profile_status(result, &p, err, errlen) < 0)
		return -1;
	s->profile_status = p;
	s->have_profile_status = true;
	return 0;
}

static void profile_unavailable(struct session *s, const char *why)
{
	set_profile(s, SESSION_PROFILE_UNAVAILABLE, false,
		    "no sampled profiler in pid %d: %s; tracemalloc is used instead", (int)s->o.pid, why);
}

/* The status asked for after profile_start said it runs already. */
static void on_profile_status(void *ud, struct client_reply *r)
{
	struct session *s = ud;
	char err[256];
	const struct msg_status *st;

	if (r->ok && session_take_status(s, r->result, err, sizeof err) == 0 &&
	    (st = &s->status)->has_profile && st->profile.running) {
		/* What the summary says; the full status comes with the next reply. */
		s->profile_status = st->profile;
		s->have_profile_status = true;
		profile_running(s, s->profile_ever_ours);
		return;
	}
	set_profile(s, SESSION_PROFILE_FAILED, true, "could not start the sampled profiler in pid %d: "
		    "%s; tracemalloc is used instead", (int)s->o.pid, s->profile_refused);
}

static void on_profile_start(void *ud, struct client_reply *r)
{
	struct session *s = ud;
	char err[256];

	if (r->ok) {
		if (profile_store(s, r->result, err, sizeof err) < 0) {
			/* It may run: stop it on leaving all the same. */
			s->profile_ours = s->profile_ever_ours = true;
			set_profile(s, SESSION_PROFILE_FAILED, true, "the agent's reply to profile_start is "
				    "malformed: %s", err);
			return;
		}
		profile_running(s, true);
		return;
	}
	if (r->local) {
		set_profile(s, SESSION_PROFILE_OFF, false, "%s", "");
		return;
	}
	if (r->code == PROTO_ERR_UNAVAILABLE) {
		profile_unavailable(s, r->message);
		return;
	}
	snprintf(s->profile_refused, sizeof s->profile_refused, "%s", r->message);
	if (r->code == PROTO_ERR_BAD_ARGS &&
	    session_request(s, PROTO_CMD_STATUS, NULL, on_profile_status, s, NULL, 0) >= 0)
		return; /* "already running"? the status says */
	set_profile(s, SESSION_PROFILE_FAILED, true, "could not start the sampled profiler in pid %d: "
		    "%s; tracemalloc is used instead", (int)s->o.pid, r->message);
}

static void profile_autostart(struct session *s)
{
	const struct msg_hello *h = client_hello(s->client);
	cJSON *args;

	if (s->o.no_profile) {
		set_profile(s, SESSION_PROFILE_OFF, false,
			    "sampled profiler off (--no-profile): tracemalloc only");
		return;
	}
	if (!msg_hello_has_capability(h, "profile")) {
		profile_unavailable(s, "the agent does not offer one (an older agent, or its C "
				    "extension _pmt_sampler cannot be loaded in this Python)");
		return;
	}
	args = cJSON_CreateObject();
	if (args == NULL)
		xalloc_die(0);
	if (s->o.profile_interval > 0)
		cJSON_AddNumberToObject(args, "interval", (double)s->o.profile_interval);
	if (s->o.profile_calls)
		cJSON_AddBoolToObject(args, "calls", true);
	if (s->o.profile_no_native)
		cJSON_AddBoolToObject(args, "native", false);
	if (client_request(s->client, PROTO_CMD_PROFILE_START, args, on_profile_start, s) < 0) {
		set_profile(s, SESSION_PROFILE_FAILED, true, "could not start the sampled profiler in "
			    "pid %d: %s", (int)s->o.pid, client_error(s->client));
		return;
	}
	set_profile(s, SESSION_PROFILE_STARTING, false, "starting the sampled profiler...");
}

/* A status push says the profiler no longer runs, after we saw it start. */
static void profile_check_push(struct session *s)
{
	const struct msg_status *st = &s->status;

	if (s->profile != SESSION_PROFILE_ON || !s->have_profile_status)
		return;
	if (st->has_profile && st->profile.running)
		return;
	/* Only a push taken after it started counts (pushes may be in flight). */
	if (s->profile_status.started > 0 && st->time <= s->profile_status.started)
		return;
	s->profile_ours = false;
	set_profile(s, SESSION_PROFILE_STOPPED, false, "the sampled profiler in pid %d was stopped "
		    "by something else; tracemalloc is used instead", (int)s->o.pid);
}

static void on_push(void *ud, enum proto_push push, const cJSON *data)
{
	struct session *s = ud;
	char err[256];
	if (push != PROTO_PUSH_STATUS)
		return;
	if (session_take_status(s, data, err, sizeof err) < 0)
		say(s, SESSION_MSG_ERROR, "agent sent a bad status: %s", err);
}

static void subscribe(struct session *s)
{
	if (s->o.interval > 0) {
		cJSON *args = cJSON_CreateObject();
		cJSON_AddNumberToObject(args, "interval", s->o.interval);
		client_request(s->client, PROTO_CMD_SUBSCRIBE, args, NULL, NULL);
	}
	client_request(s->client, PROTO_CMD_STATUS, NULL, NULL, NULL);
}

/* ---- failed attempts and their retries ---- */

static double backoff_s(int failures)
{
	double wait = BACKOFF_MIN_S;

	for (int i = 1; i < failures && wait < BACKOFF_MAX_S; i++)
		wait *= 2;
	return wait < BACKOFF_MAX_S ? wait : BACKOFF_MAX_S;
}

/* The note while a retry is due: why the last attempt failed, and when. */
static void retry_note(struct session *s, double now)
{
	double left = s->retry_t - now;

	int secs = left > 1 ? (int)(left + 0.999) : 1;

	set_note(s, "%s; retry %d in %d s", s->fail_msg, s->failures + 1, secs);
}

/*
 * An attempt to reach the agent failed though an agent is there (silent,
 * stopped, busy, refusing): say why, then retry after a bounded backoff.
 * Never a reason to load a second agent.
 */
static void attempt_failed(struct session *s, const char *why, bool stopped)
{
	double now = now_s(), wait;
	char at[16] = "";
	struct tm tm;
	time_t t;

	s->failures++;
	wait = backoff_s(s->failures);
	s->retry_t = now + wait;
	s->fast_until = 0;
	s->attempt_failed = true;
	s->fail_stopped = stopped;
	snprintf(s->fail_msg, sizeof s->fail_msg, "%s", why);
	t = time(NULL) + (time_t)wait;
	if (localtime_r(&t, &tm))
		strftime(at, sizeof at, "%H:%M:%S", &tm);
	set_agent(s, SESSION_AGENT_NONE);
	retry_note(s, now);
	say(s, SESSION_MSG_ERROR, "%s; retry %d at %s (in %.0f s)", why, s->failures + 1, at, wait);
}

/* Why the process of a silent connection may not answer: stopped. One
 * sentence in BUF, or "" when it runs. */
static const char *stopped_why(struct session *s, char state, char *buf, size_t len)
{
	int pid = (int)s->o.pid;
	struct tracer t;
	char who[128];

	buf[0] = '\0';
	if (state == 'T') {
		snprintf(buf, len, "process %d is stopped (state T in /proc/%d/stat), so its agent cannot answer; "
			 "resume it with kill -CONT %d", pid, pid, pid);
	} else if (state == 't') {
		if (tracer_find(s->o.pid, &t) == 1)
			tracer_describe(&t, who, sizeof who);
		else
			snprintf(who, sizeof who, "a debugger");
		snprintf(buf, len, "process %d is held stopped by its tracer, %s, so its agent cannot answer "
			 "until it lets go", pid, who);
	}
	return buf;
}

/*
 * The handshake under way: the process may be stopped (said at once, in the
 * note), or the agent silent. After HANDSHAKE_S the attempt is over.
 */
static void handshake_check(struct session *s, double now)
{
	char why[512];
	char st = tracer_proc_state(s->o.pid);

	if (st != s->conn_state) {
		s->conn_state = st;
		if (stopped_why(s, st, why, sizeof why)[0])
			set_note(s, "%s", why);
		else
			set_note(s, "connecting to the agent in pid %d...", (int)s->o.pid);
	}
	if (now - s->connect_t < HANDSHAKE_S)
		return;
	if (!stopped_why(s, st, why, sizeof why)[0])
		snprintf(why, sizeof why, "the agent in pid %d accepted the connection but did not answer within "
			 "%.0f s", (int)s->o.pid, HANDSHAKE_S);
	client_close(s->client, why); /* on_state() takes it from here */
}

static void on_state(void *ud, enum client_state state, const char *message)
{
	struct session *s = ud;
	if (state == CLIENT_READY) {
		const struct msg_hello *h = client_hello(s->client);
		set_note(s, "Python %s%s", h->python, h->native ? "" : ", no C extension");
		s->failures = 0;
		s->attempt_failed = false;
		s->peer_until = 0;
		set_agent(s, SESSION_AGENT_READY);
		say(s, SESSION_MSG_INFO, "connected to the agent in pid %d (Python %s)", (int)s->o.pid, h->python);
		inject_free(s->inject);
		s->inject = NULL;
		subscribe(s);
		profile_autostart(s);
	} else if (state == CLIENT_CLOSED) {
		bool was_ready = s->agent == SESSION_AGENT_READY;
		s->call_abandoned = false;
		s->have_status = false;
		s->have_profile_status = false;
		s->profile_ours = false;
		if (s->profile != SESSION_PROFILE_OFF)
			set_profile(s, SESSION_PROFILE_OFF, false, "%s", "");
		if (!was_ready) {
			/* Accepted, then nothing or a refusal: the agent is there. */
			attempt_failed(s, message, tracer_proc_state(s->o.pid) == 'T');
			changed(s, SESSION_CHANGED_STATUS);
			return;
		}
		set_note(s, "%s", message);
		set_agent(s, SESSION_AGENT_LOST);
		s->retry_t = now_s() + RETRY_S;
		if (client_close_code(s->client) == PROTO_ERR_TIMEOUT) {
			/* Nothing is wrong with the agent: a new connection will do. */
			s->retry_t = now_s();
			if (!s->gone)
				say(s, SESSION_MSG_ERROR, "%s; reconnecting", message);
		} else if (!s->gone) {
			say(s, SESSION_MSG_ERROR, "lost the agent: %s (retrying)", message);
		}
		changed(s, SESSION_CHANGED_STATUS);
	}
}

static char *dup_or_null(const char *v)
{
	return v ? xstrdup(v) : NULL;
}

struct session *session_new(const struct session_opts *opts, const struct session_events *events)
{
	struct session *s = xcalloc(1, sizeof *s);
	s->o = *opts;
	s->socket = dup_or_null(opts->socket);
	s->inject_method = dup_or_null(opts->inject_method);
	s->o.socket = s->socket;
	s->o.inject_method = s->inject_method;
	if (events)
		s->ev = *events;
	s->client = client_new();
	client_set_push_handler(s->client, on_push, s);
	client_set_state_handler(s->client, on_state, s);
	s->agent = SESSION_AGENT_NONE;
	snprintf(s->note, sizeof s->note, "looking for an agent");
	s->t_start = now_s();
	s->inject_last = INJECT_RUNNING;
	return s;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	client_free(s->client);
	while (s->tracked) { /* their callbacks were never called */
		struct tracked *t = s->tracked;
		s->tracked = t->next;
		free(t);
	}
	inject_free(s->inject);
	free(s->socket);
	free(s->inject_method);
	free(s);
}

void session_pollfd(const struct session *s, struct pollfd *pfd)
{
	pfd->fd = -1;
	pfd->events = 0;
	pfd->revents = 0;
	client_pollfd(s->client, pfd);
	if (pfd->fd < 0 && s->inject) {
		pfd->fd = inject_fd(s->inject);
		pfd->events = POLLIN;
	}
}

int session_timeout_ms(const struct session *s)
{
	if (s->inject)
		return 100;
	if (s->agent == SESSION_AGENT_READY)
		return client_timeout_ms(s->client); /* the keepalive */
	if (s->agent == SESSION_AGENT_CONNECTING) {
		/* The handshake's deadline; a stop of the process is seen within 0.5 s. */
		double left = s->connect_t + HANDSHAKE_S - now_s();
		return left <= 0 ? 0 : left > 0.5 ? 500 : (int)(left * 1000) + 1;
	}
	if (s->gone)
		return -1;
	double left = s->retry_t - now_s();
	if (s->attempt_failed && left > 1)
		return 1000; /* the note counts down */
	return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

void session_handle(struct session *s, short revents)
{
	if (client_fd(s->client) >= 0)
		client_handle(s->client, revents);
}

void session_set_gone(struct session *s)
{
	s->gone = true;
}

/* No agent, and ours could not be loaded: ERR says why (after LEAD). */
static void no_agent(struct session *s, const char *lead, const char *err)
{
	set_note(s, "%s", err);
	set_agent(s, SESSION_AGENT_OFF);
	say(s, SESSION_MSG_ERROR, "%s%s", lead, err);
}

/*
 * Loading the agent failed. Another pmt-top may be loading it at this very
 * moment (its gdb holds ptrace, so ours could not attach), or may just have
 * done so: when its inject directory or an agent socket is there, look
 * again before giving up.
 */
static void inject_failed(struct session *s, const char *lead, const char *err)
{
	char path[1200], why[1400];

	s->inject_failed = true;
	snprintf(s->inject_err, sizeof s->inject_err, "%s", err);
	if (inject_dir_peer(s->o.pid) == 0 && agent_sock_find(s->o.pid, path, sizeof path, why, sizeof why) < 0) {
		no_agent(s, lead, err);
		return;
	}
	set_note(s, "loading the agent failed (%s), but an agent may be on its way: looking again", err);
	set_agent(s, SESSION_AGENT_NONE);
	s->retry_t = 0;
	s->fast_until = now_s() + FAST_WINDOW_S;
}

/*
 * Another pmt-top is loading the agent into this process: wait for its
 * agent (at most PEER_WAIT_S) rather than race its gdb. True while waiting;
 * false once there is no such pmt-top (any more) and nothing came of it.
 */
static bool peer_wait(struct session *s, double now)
{
	pid_t peer;
	int pid = (int)s->o.pid;

	if (s->peer_gave_up)
		return s->agent == SESSION_AGENT_OFF;
	peer = inject_dir_peer(s->o.pid);
	if (s->peer_until == 0) {
		if (peer == 0)
			return false;
		s->peer = peer;
		s->peer_until = now + PEER_WAIT_S;
		s->peer_gone_t = 0;
		say(s, SESSION_MSG_INFO, "another pmt-top (pid %d) is loading the agent into pid %d: waiting for "
		    "its agent (up to %.0f s)", (int)peer, pid, PEER_WAIT_S);
	}
	if (peer == 0 && s->peer_gone_t == 0)
		s->peer_gone_t = now; /* it is done: its agent binds before that */
	if (now >= s->peer_until) {
		if (peer == 0)
			return false;
		char why[400];

		s->peer_gave_up = true;
		snprintf(why, sizeof why, "another pmt-top (pid %d) has been loading the agent into pid %d for "
			 "%.0f s and no agent answers yet; try again once it is done", (int)s->peer, pid, PEER_WAIT_S);
		no_agent(s, "", why);
		return true;
	}
	if (s->peer_gone_t > 0 && now >= s->peer_gone_t + PEER_GRACE_S)
		return false;
	set_note(s, "waiting for the agent that pmt-top pid %d is loading into pid %d", (int)s->peer, pid);
	s->retry_t = now + RETRY_PEER_S;
	return true;
}

static void start_inject(struct session *s)
{
	char err[512];
	struct inject_req req = {
		.pid = s->o.pid,
		.method = s->o.inject_method ? inject_method_from_name(s->o.inject_method) : INJECT_AUTO,
		.agent_dir = paths_agent_dir(),
		.native_dir = paths_native_dir(),
		.timeout_ms = s->o.attach_timeout_ms > 0 ? s->o.attach_timeout_ms : DEFAULT_ATTACH_MS,
	};
	s->injected = true;
	s->inject = inject_start(&req, err, sizeof err);
	if (s->inject == NULL) {
		inject_failed(s, "no agent: ", err);
		return;
	}
	set_note(s, "attaching...");
	set_agent(s, SESSION_AGENT_ATTACHING);
}

static void poll_inject(struct session *s)
{
	char status[512];
	enum inject_state st = inject_poll(s->inject, status, sizeof status);
	if (s->agent == SESSION_AGENT_ATTACHING) {
		set_note(s, "%s", status);
		/* The user hears of changes of state, not of every tick; DONE
		 * says which way the agent went in, FAILED inject_failed(). */
		if (st != s->inject_last && st != INJECT_FAILED)
			say(s, st == INJECT_WAITING ? SESSION_MSG_WAITING : SESSION_MSG_INFO, "%s", status);
	}
	s->inject_last = st;
	if (st == INJECT_FAILED) {
		inject_free(s->inject);
		s->inject = NULL;
		inject_failed(s, "", status);
	} else if (st == INJECT_DONE) {
		/* The bootstrap ran: what is left is the agent's to do. */
		inject_free(s->inject);
		s->inject = NULL;
		set_note(s, "the agent was loaded; waiting for it to answer");
		set_agent(s, SESSION_AGENT_NONE);
		s->retry_t = 0; /* connect at once, and quickly again if not yet */
		s->fast_until = now_s() + FAST_WINDOW_S;
	}
}

/* Connecting failed with ERRNUM (sock_connect's errno): true when an
 * agent is there all the same (its queue is full), or was in this session. */
static bool agent_is_there(const struct session *s, int found, int errnum)
{
	return s->agent_seen || (found == 0 && (errnum == ETIMEDOUT || errnum == EAGAIN));
}

void session_tick(struct session *s)
{
	if (s->inject)
		poll_inject(s);
	enum client_state cs = client_state(s->client);
	double now = now_s();
	if (cs == CLIENT_READY) {
		client_tick(s->client);
		return;
	}
	if (cs == CLIENT_HANDSHAKE) {
		handshake_check(s, now);
		return;
	}
	if (s->gone)
		return;
	if (now < s->retry_t) {
		if (!s->attempt_failed)
			return;
		/* A stopped process that runs again is worth a try at once. */
		if (!s->fail_stopped || tracer_proc_state(s->o.pid) == 'T') {
			retry_note(s, now);
			return;
		}
	}
	double period = s->agent == SESSION_AGENT_OFF ? RETRY_OFF_S : RETRY_S;
	if (now < s->fast_until)
		period = RETRY_FAST_S;
	s->retry_t = now + period;

	char err[1400], path[1200];
	const char *sock = s->o.socket;
	int found = sock ? 0 : agent_sock_find(s->o.pid, path, sizeof path, err, sizeof err);
	int errnum = 0;
	if (found == 0 && !sock)
		sock = path;
	if (found == 0) {
		if (client_connect(s->client, s->o.pid, sock, err, sizeof err) == 0) {
			s->agent_seen = true;
			s->connect_t = now;
			s->conn_state = 0;
			set_note(s, "connecting to the agent in pid %d...", (int)s->o.pid);
			set_agent(s, SESSION_AGENT_CONNECTING);
			return;
		}
		errnum = errno;
	}
	snprintf(s->connect_err, sizeof s->connect_err, "%s", err);
	/* Nobody answers. Load the agent once, unless told not to, a child of
	 * ours will start it itself, or an agent is there already. */
	if (s->agent == SESSION_AGENT_LOST || s->agent == SESSION_AGENT_ATTACHING || s->inject)
		return;
	if (agent_is_there(s, found, errnum)) {
		char why[512];
		if (!stopped_why(s, tracer_proc_state(s->o.pid), why, sizeof why)[0])
			snprintf(why, sizeof why, "%.500s", err);
		attempt_failed(s, why, tracer_proc_state(s->o.pid) == 'T');
		return;
	}
	if (!s->o.no_inject && !s->o.socket && !s->o.child_agent && peer_wait(s, now))
		return;
	if (s->injected) {
		if (s->agent == SESSION_AGENT_OFF || now < s->fast_until)
			return;
		if (s->inject_failed) { /* nothing turned up after all */
			no_agent(s, "no agent: ", s->inject_err);
		} else { /* loaded, yet nobody answers */
			set_note(s, "the agent was loaded into pid %d but does not answer: %s", (int)s->o.pid, err);
			set_agent(s, SESSION_AGENT_OFF);
		}
		return;
	}
	if (s->o.no_inject || s->o.socket) {
		set_note(s, "%s", s->o.no_inject ? "none (--no-inject: RSS only)" : err);
		set_agent(s, SESSION_AGENT_OFF);
		return;
	}
	if (s->o.child_agent) {
		/* The preloaded agent starts with the program: keep polling. */
		if (s->agent == SESSION_AGENT_OFF)
			return;
		set_note(s, "waiting for the program's agent");
		if (now - s->t_start > CHILD_AGENT_WAIT_S) {
			set_note(s, "none: the program did not start the agent (is it Python?)");
			set_agent(s, SESSION_AGENT_OFF);
		}
		return;
	}
	start_inject(s);
}

bool session_agent_listening(pid_t pid)
{
	char path[1024], err[512];
	struct stat st;
	return agent_sock_find(pid, path, sizeof path, err, sizeof err) == 0 && stat(path, &st) == 0 &&
	       S_ISSOCK(st.st_mode);
}

enum session_agent session_agent(const struct session *s)
{
	return s->agent;
}

const char *session_note(const struct session *s)
{
	return s->note;
}

const struct msg_hello *session_hello(const struct session *s)
{
	return s->agent == SESSION_AGENT_READY ? client_hello(s->client) : NULL;
}

const struct msg_status *session_status(const struct session *s, double *age_s)
{
	if (!s->have_status)
		return NULL;
	if (age_s)
		*age_s = now_s() - s->status_t;
	return &s->status;
}

int session_take_status(struct session *s, const cJSON *result, char *err, size_t errlen)
{
	struct msg_status st;
	if (msg_decode_status(result, &st, err, errlen) < 0)
		return -1;
	s->status = st;
	s->have_status = true;
	s->status_t = now_s();
	if (!st.tracing)
		s->tm_ours = false; /* whoever stopped it, it is not ours to stop any more */
	changed(s, SESSION_CHANGED_STATUS);
	profile_check_push(s);
	return 0;
}

enum session_profile session_profile(const struct session *s)
{
	return s->profile;
}

bool session_profile_ours(const struct session *s)
{
	return s->profile == SESSION_PROFILE_ON && s->profile_ours;
}

const char *session_profile_notice(const struct session *s)
{
	return s->profile_notice;
}

const struct msg_profile_status *session_profile_status(const struct session *s)
{
	return s->have_profile_status ? &s->profile_status : NULL;
}

int session_profile_took(struct session *s, enum proto_cmd cmd, const cJSON *result, char *err,
			 size_t errlen)
{
	if (profile_store(s, result, err, errlen) < 0)
		return -1;
	if (cmd == PROTO_CMD_PROFILE_START && s->profile_status.running) {
		profile_running(s, true);
	} else if (cmd == PROTO_CMD_PROFILE_STOP) {
		s->profile_ours = false;
		set_profile(s, SESSION_PROFILE_OFF, false, "sampled profiler off in pid %d", (int)s->o.pid);
	}
	return 0;
}

enum session_profile session_wait_profile(struct session *s, volatile sig_atomic_t *stop,
					  int timeout_ms)
{
	double end = now_s() + timeout_ms / 1000.0;

	while (s->profile == SESSION_PROFILE_STARTING && s->agent == SESSION_AGENT_READY &&
	       !(stop && *stop) && now_s() < end) {
		struct pollfd pfd;
		int ms = (int)((end - now_s()) * 1000) + 1;

		session_pollfd(s, &pfd);
		if (poll(&pfd, pfd.fd >= 0 ? 1 : 0, ms > 100 ? 100 : ms) > 0 && pfd.fd >= 0)
			session_handle(s, pfd.revents);
	}
	return s->profile;
}

void session_describe(const struct session *s, char *buf, size_t len)
{
	switch (s->agent) {
	case SESSION_AGENT_READY:
		if (s->have_status && s->status.tracing) {
			char mem[32], cur[32];
			snprintf(buf, len, "agent %s | tracemalloc on, %d frame%s, heap %s, its own cost %s", s->note,
				 s->status.nframe, s->status.nframe == 1 ? "" : "s",
				 units_bytes(cur, sizeof cur, (double)s->status.traced_current),
				 units_bytes(mem, sizeof mem, (double)s->status.tracemalloc_memory));
		} else {
			snprintf(buf, len, "agent %s | tracemalloc off (T starts it)", s->note);
		}
		/* Others watching the same process share its agent (and its limits). */
		if (s->have_status && s->status.has_clients && s->status.clients.connections > 1) {
			size_t n = strlen(buf);
			snprintf(buf + n, len - n, " | %llu clients of %llu",
				 (unsigned long long)s->status.clients.connections,
				 (unsigned long long)s->status.clients.max_connections);
		}
		break;
	default:
		snprintf(buf, len, "agent: %s", s->note);
		break;
	}
}

static bool is_start(enum proto_cmd cmd)
{
	return cmd == PROTO_CMD_TRACEMALLOC_START || cmd == PROTO_CMD_PROFILE_START ||
	       cmd == PROTO_CMD_FUNCTIONS_START;
}

/*
 * A reply of ours to tracemalloc_start or _stop: whether the tracing that
 * runs is this session's to stop when it leaves. It is when our start found
 * it off: the status we had said so (the agent answers a request before it
 * pushes again, so every status that came before the reply is older).
 */
static void note_tracemalloc(struct session *s, enum proto_cmd cmd, const cJSON *result)
{
	if (cmd == PROTO_CMD_TRACEMALLOC_STOP) {
		s->tm_ours = false;
	} else if (cmd == PROTO_CMD_TRACEMALLOC_START && (!s->have_status || !s->status.tracing) &&
		   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "tracing")) &&
		   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "started_by_agent"))) {
		s->tm_ours = true;
	}
}

static void on_tracked(void *ud, struct client_reply *r)
{
	struct tracked *t = ud;
	struct session *s = t->s;
	client_reply_fn cb = t->cb;
	void *cb_ud = t->ud;

	if (t->prev)
		t->prev->next = t->next;
	else
		s->tracked = t->next;
	if (t->next)
		t->next->prev = t->prev;
	s->inflight--;
	if (is_start(t->cmd))
		s->starts_inflight--;
	if (r->ok && r->result)
		note_tracemalloc(s, t->cmd, r->result);
	free(t);
	if (cb)
		cb(cb_ud, r);
}

static int64_t request(struct session *s, enum proto_cmd cmd, cJSON *args, client_reply_fn cb, void *ud,
		       bool text, char *err, size_t errlen)
{
	if (s->agent != SESSION_AGENT_READY) {
		cJSON_Delete(args);
		if (err && errlen)
			errfmt(err, errlen, "no agent in pid %d: %s", (int)s->o.pid, s->note);
		return -1;
	}
	struct tracked *t = xcalloc(1, sizeof *t);
	t->s = s;
	t->cmd = cmd;
	t->cb = cb;
	t->ud = ud;
	int64_t id = text ? client_request_text(s->client, cmd, args, on_tracked, t) :
			    client_request(s->client, cmd, args, on_tracked, t);
	if (id < 0) {
		free(t);
		if (err && errlen)
			snprintf(err, errlen, "%s", client_error(s->client));
		return id;
	}
	t->next = s->tracked;
	if (t->next)
		t->next->prev = t;
	s->tracked = t;
	s->inflight++;
	if (is_start(cmd))
		s->starts_inflight++;
	return id;
}

int64_t session_request(struct session *s, enum proto_cmd cmd, cJSON *args, client_reply_fn cb, void *ud,
			char *err, size_t errlen)
{
	return request(s, cmd, args, cb, ud, false, err, errlen);
}

int64_t session_request_text(struct session *s, enum proto_cmd cmd, cJSON *args, client_reply_fn cb,
			     void *ud, char *err, size_t errlen)
{
	return request(s, cmd, args, cb, ud, true, err, errlen);
}

int session_call_text(struct session *s, enum proto_cmd cmd, cJSON *args, int timeout_ms, client_text_fn fn,
		      void *ud, char *err, size_t errlen)
{
	if (s->agent != SESSION_AGENT_READY) {
		cJSON_Delete(args);
		errfmt(err, errlen, "no agent in pid %d: %s", (int)s->o.pid, s->note);
		return -1;
	}
	if (client_call_text(s->client, cmd, args, timeout_ms, fn, ud, err, errlen) < 0) {
		/* No reply in time: it is still to come, after what we send next. */
		if (client_last_error_code(s->client) < 0 && client_state(s->client) == CLIENT_READY)
			s->call_abandoned = true;
		return -1;
	}
	return 0;
}

int session_call(struct session *s, enum proto_cmd cmd, cJSON *args, int timeout_ms, cJSON **result, char *err,
		 size_t errlen)
{
	cJSON *res = NULL;

	if (s->agent != SESSION_AGENT_READY) {
		cJSON_Delete(args);
		errfmt(err, errlen, "no agent in pid %d: %s", (int)s->o.pid, s->note);
		return -1;
	}
	if (client_call(s->client, cmd, args, timeout_ms, &res, err, errlen) < 0) {
		/* No reply in time: it is still to come, after what we send next. */
		if (client_last_error_code(s->client) < 0 && client_state(s->client) == CLIENT_READY)
			s->call_abandoned = true;
		return -1;
	}
	note_tracemalloc(s, cmd, res);
	if (result)
		*result = res;
	else
		cJSON_Delete(res);
	return 0;
}

int session_last_error_code(const struct session *s)
{
	return client_last_error_code(s->client);
}

void session_set_interval(struct session *s, double seconds)
{
	s->o.interval = seconds;
	if (s->agent == SESSION_AGENT_READY && seconds > 0) {
		cJSON *args = cJSON_CreateObject();
		cJSON_AddNumberToObject(args, "interval", seconds);
		client_request(s->client, PROTO_CMD_SUBSCRIBE, args, NULL, NULL);
	}
}

void session_note_functions(struct session *s, bool running)
{
	s->functions_on = running;
}

static bool process_exists(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

int session_wait_ready(struct session *s, volatile sig_atomic_t *stop, enum session_failure *why, char *err,
		       size_t errlen)
{
	enum session_failure dummy;
	if (!why)
		why = &dummy;
	if (!process_exists(s->o.pid)) {
		*why = SESSION_FAIL_NO_PROCESS;
		snprintf(err, errlen, "no process with pid %d", (int)s->o.pid);
		return -1;
	}
	/* Bounded whatever the target does: a load has its own deadline, then
	 * the agent gets a few seconds to answer. */
	double attach_s = (s->o.attach_timeout_ms > 0 ? s->o.attach_timeout_ms : DEFAULT_ATTACH_MS) / 1000.0;
	double give_up = now_s() + attach_s + WAIT_EXTRA_S;
	for (;;) {
		if (now_s() > give_up) {
			*why = SESSION_FAIL_NO_AGENT;
			errfmt(err, errlen, "no agent of pid %d answered within %.0f s (%s)", (int)s->o.pid,
			       attach_s + WAIT_EXTRA_S, s->connect_err[0] ? s->connect_err : s->note);
			return -1;
		}
		if (stop && *stop) {
			*why = SESSION_FAIL_INTERRUPTED;
			snprintf(err, errlen, "interrupted");
			return -1;
		}
		session_tick(s);
		if (s->agent == SESSION_AGENT_READY)
			return 0;
		if (s->attempt_failed) {
			/* An agent is there and did not serve us: a script wants to
			 * know now, not after retries (the TUI retries). */
			*why = SESSION_FAIL_NO_AGENT;
			snprintf(err, errlen, "%s", s->fail_msg);
			return -1;
		}
		if (s->agent == SESSION_AGENT_OFF || s->agent == SESSION_AGENT_LOST) {
			*why = SESSION_FAIL_NO_AGENT;
			if (s->inject_failed)
				snprintf(err, errlen, "no agent in pid %d and it could not be loaded: %s", (int)s->o.pid,
					 s->note);
			else if (!s->injected && s->connect_err[0])
				snprintf(err, errlen, "%s", s->connect_err);
			else
				snprintf(err, errlen, "%s", s->note);
			return -1;
		}
		if (!process_exists(s->o.pid)) {
			*why = SESSION_FAIL_NO_PROCESS;
			snprintf(err, errlen, "process %d exited before its agent answered", (int)s->o.pid);
			return -1;
		}
		struct pollfd pfd;
		session_pollfd(s, &pfd);
		int ms = session_timeout_ms(s);
		if (ms < 0 || ms > 100)
			ms = 100;
		if (poll(&pfd, pfd.fd >= 0 ? 1 : 0, ms) > 0 && pfd.fd >= 0)
			session_handle(s, pfd.revents);
	}
}

bool session_watch(struct session *s, double seconds, volatile sig_atomic_t *stop)
{
	double end = now_s() + seconds;

	while (!(stop && *stop) && now_s() < end && s->agent == SESSION_AGENT_READY) {
		struct pollfd pfd;
		int ms = (int)((end - now_s()) * 1000) + 1, due = session_timeout_ms(s);

		if (ms > 200)
			ms = 200;
		if (due >= 0 && due < ms)
			ms = due;
		session_pollfd(s, &pfd);
		if (poll(&pfd, 1, ms) > 0)
			session_handle(s, pfd.revents);
		if (s->agent == SESSION_AGENT_READY) /* not a reconnect: the note says why it went */
			session_tick(s);
	}
	return s->agent == SESSION_AGENT_READY;
}

/* ---- leaving: switching off what this session switched on ----
 *
 * Requests on one connection are answered in order, and the agent serves each
 * connection on a thread of its own. A stop sent on our connection therefore
 * waits for everything sent before it: a Top refresh walking a million traces,
 * or a snapshot whose reply the agent is still writing (it stops reading a
 * connection with 4 MiB unsent). So while a request of the front end is in
 * flight, the stops go over a second, short-lived connection, where they wait
 * only for the target's GIL; an idle connection is used as it is. One thing
 * comes first: a start request still unanswered on our connection could be
 * carried out after a stop sent on another, so those replies are awaited
 * before anything is stopped. It all shares one deadline, LEAVE_S: long enough
 * for an agent starved of the GIL by busy threads, bounded so that a wedged
 * target cannot hold pmt-top. Whatever could not be switched off is said with
 * the pid and the command that does it.
 */

struct leave {
	struct session *s;
	struct client *c;  /* s->client, or the second connection */
	double t0, deadline;
	bool say_wait;     /* say once when it takes long (quitting; not headless) */
	bool said_wait;
};

struct leave_reply {
	bool done, ok, local;
	cJSON *result;
	char message[256];
};

static void leave_begin(struct leave *L, struct session *s, bool say_wait)
{
	memset(L, 0, sizeof *L);
	L->s = s;
	L->c = s->client;
	L->t0 = now_s();
	L->deadline = L->t0 + LEAVE_S;
	L->say_wait = say_wait;
}

static void leave_end(struct leave *L)
{
	if (L->c != L->s->client)
		client_free(L->c);
	L->c = L->s->client;
}

/* Drives connection C until DONE(ARG) or the deadline, or until C closes. */
static void leave_poll(struct leave *L, struct client *c, bool (*done)(void *arg), void *arg)
{
	while (!done(arg) && now_s() < L->deadline &&
	       (client_state(c) == CLIENT_READY || client_state(c) == CLIENT_HANDSHAKE)) {
		struct pollfd pfd;
		double left = L->deadline - now_s();

		if (L->say_wait && !L->said_wait && now_s() - L->t0 >= LEAVE_SAY_WAIT_S) {
			L->said_wait = true;
			say(L->s, SESSION_MSG_LEAVE, "the agent in pid %d is busy: waiting up to %.0f s more to "
			    "switch off what pmt-top switched on", (int)L->s->o.pid, left);
		}
		client_pollfd(c, &pfd);
		if (poll(&pfd, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1) > 0)
			client_handle(c, pfd.revents);
	}
}

static bool starts_answered(void *arg)
{
	struct session *s = arg;
	return s->starts_inflight == 0 && s->profile != SESSION_PROFILE_STARTING;
}

static bool handshake_over(void *arg)
{
	return client_state(arg) != CLIENT_HANDSHAKE;
}

static bool reply_in(void *arg)
{
	return ((struct leave_reply *)arg)->done;
}

/* Start requests still unanswered on our connection: their replies first. */
static void leave_wait_starts(struct leave *L)
{
	leave_poll(L, L->s->client, starts_answered, L->s);
}

/* The connection for the stops: ours when nothing of the front end's is in
 * flight on it, else a second one (ours again when that cannot be had). */
static void leave_open(struct leave *L)
{
	struct session *s = L->s;
	char err[1400], path[1200];
	const char *sock = s->o.socket;
	struct client *c;

	if (s->inflight == 0 && !s->call_abandoned)
		return;
	if (!sock && agent_sock_find(s->o.pid, path, sizeof path, err, sizeof err) < 0)
		return;
	c = client_new();
	if (client_connect(c, s->o.pid, sock ? sock : path, err, sizeof err) == 0) {
		leave_poll(L, c, handshake_over, c);
		if (client_state(c) == CLIENT_READY) {
			L->c = c;
			return;
		}
	}
	client_free(c);
}

static void on_leave_reply(void *ud, struct client_reply *r)
{
	struct leave_reply *lr = ud;

	lr->done = true;
	lr->ok = r->ok;
	lr->local = r->local;
	if (r->ok)
		lr->result = client_reply_take_result(r);
	else
		snprintf(lr->message, sizeof lr->message, "%s", r->message ? r->message : "refused");
}

/*
 * One request on the leaving connection, within the deadline. Returns 0
 * (*RESULT, when not NULL, is the caller's), or -1 with the reason in ERR;
 * *REFUSED (when not NULL) tells an answer "no" from no answer at all, after
 * which the request may still be carried out.
 */
static int leave_call(struct leave *L, enum proto_cmd cmd, cJSON **result, bool *refused, char *err,
		      size_t errlen)
{
	struct leave_reply lr = { 0 };
	int64_t id = client_request(L->c, cmd, NULL, on_leave_reply, &lr);

	if (refused)
		*refused = false;
	if (id < 0) {
		snprintf(err, errlen, "%s", client_error(L->c));
		return -1;
	}
	leave_poll(L, L->c, reply_in, &lr);
	if (!lr.done) {
		client_cancel(L->c, id);
		snprintf(err, errlen, "the agent did not answer within %.0f s", LEAVE_S);
		return -1;
	}
	if (!lr.ok) {
		if (refused)
			*refused = !lr.local;
		snprintf(err, errlen, "%s", lr.message);
		return -1;
	}
	if (result)
		*result = lr.result;
	else
		cJSON_Delete(lr.result);
	return 0;
}

/* Stops the sampled profiler if this session started it: 1 stopped, 0
 * nothing of ours runs, -1 with ERR. */
static int leave_profile_stop(struct leave *L, char *err, size_t errlen)
{
	struct session *s = L->s;
	cJSON *res = NULL;
	char bad[256];

	/* A malformed start reply leaves FAILED, yet it may run: stop it too. */
	if (!s->profile_ours ||
	    (s->profile != SESSION_PROFILE_ON && s->profile != SESSION_PROFILE_FAILED))
		return 0;
	if (leave_call(L, PROTO_CMD_PROFILE_STOP, &res, NULL, err, errlen) < 0)
		return -1;
	s->profile_ours = false;
	if (session_profile_took(s, PROTO_CMD_PROFILE_STOP, res, bad, sizeof bad) < 0)
		set_profile(s, SESSION_PROFILE_OFF, false, "sampled profiler off in pid %d", (int)s->o.pid);
	cJSON_Delete(res);
	return 1;
}

int session_profile_stop(struct session *s, char *err, size_t errlen)
{
	struct leave L;
	int rc;

	if (s->agent != SESSION_AGENT_READY)
		return 0;
	leave_begin(&L, s, false);
	leave_wait_starts(&L);
	if (s->agent != SESSION_AGENT_READY)
		return 0;
	leave_open(&L);
	rc = leave_profile_stop(&L, err, errlen);
	leave_end(&L);
	return rc;
}

/* tracemalloc: stopped when this session started it, else left as found. */
static void leave_tracemalloc(struct leave *L, bool status_fresh)
{
	struct session *s = L->s;
	int pid = (int)s->o.pid;
	cJSON *res = NULL;
	char err[256], bad[256];
	bool refused;

	if (!s->have_status || !s->status.tracing || !s->status.started_by_agent)
		return; /* off, or the program's own */
	if (!s->tm_ours) {
		if (status_fresh)
			say(s, SESSION_MSG_LEAVE, "tracemalloc stays on in pid %d, as it was when pmt-top attached "
			    "(`pmt-top trace %d stop` switches it off)", pid, pid);
		return;
	}
	if (leave_call(L, PROTO_CMD_TRACEMALLOC_STOP, &res, &refused, err, sizeof err) == 0) {
		s->tm_ours = false;
		if (session_take_status(s, res, bad, sizeof bad) < 0)
			s->status.tracing = false;
		cJSON_Delete(res);
		say(s, SESSION_MSG_LEAVE, "stopped tracemalloc in pid %d (it was started from pmt-top)", pid);
		return;
	}
	say(s, SESSION_MSG_LEAVE, "could not stop tracemalloc in pid %d (%s), so it %s on: `pmt-top trace %d "
	    "stop` switches it off", pid, err, refused ? "is still" : "may still be", pid);
}

/* What a start request never answered may switch on after we left. */
static void leave_unanswered_starts(struct leave *L)
{
	struct session *s = L->s;
	int pid = (int)s->o.pid;
	bool tm = false, prof = s->profile == SESSION_PROFILE_STARTING, func = false;

	for (const struct tracked *t = s->tracked; t; t = t->next) {
		tm |= t->cmd == PROTO_CMD_TRACEMALLOC_START;
		prof |= t->cmd == PROTO_CMD_PROFILE_START;
		func |= t->cmd == PROTO_CMD_FUNCTIONS_START;
	}
	if (tm)
		say(s, SESSION_MSG_LEAVE, "tracemalloc may be switched on in pid %d after pmt-top leaves (its start "
		    "was not answered within %.0f s): `pmt-top trace %d stop` switches it off", pid, LEAVE_S, pid);
	if (prof)
		say(s, SESSION_MSG_LEAVE, "the sampled profiler may be started in pid %d after pmt-top leaves (its "
		    "start was not answered within %.0f s): P in `pmt-top %d` stops it", pid, LEAVE_S, pid);
	if (func)
		say(s, SESSION_MSG_LEAVE, "the function tracer may be started in pid %d after pmt-top leaves (its "
		    "start was not answered within %.0f s): `pmt-top functions %d` stops it when it ends",
		    pid, LEAVE_S, pid);
}

void session_leave_clean(struct session *s)
{
	struct leave L;
	int pid = (int)s->o.pid;
	char err[256], bad[256];
	cJSON *res = NULL;
	bool fresh;

	if (s->agent != SESSION_AGENT_READY)
		return;
	leave_begin(&L, s, true);
	bool had_any = s->functions_on || s->profile_ours || s->tm_ours || !starts_answered(s);
	leave_wait_starts(&L);
	if (s->agent != SESSION_AGENT_READY) {
		if (had_any && process_exists(s->o.pid))
			say(s, SESSION_MSG_LEAVE, "lost the agent in pid %d before switching off what pmt-top "
			    "switched on: `pmt-top trace %d status` tells what is on", pid, pid);
		return;
	}
	leave_open(&L);
	/* How things are now, whatever the last push said. */
	fresh = leave_call(&L, PROTO_CMD_STATUS, &res, NULL, err, sizeof err) == 0 &&
		session_take_status(s, res, bad, sizeof bad) == 0;
	cJSON_Delete(res);
	if (s->functions_on) {
		bool refused;
		if (leave_call(&L, PROTO_CMD_FUNCTIONS_STOP, NULL, &refused, err, sizeof err) == 0) {
			s->functions_on = false;
			say(s, SESSION_MSG_LEAVE, "switched the function tracer in pid %d off", pid);
		} else {
			say(s, SESSION_MSG_LEAVE, "could not switch the function tracer in pid %d off (%s), so it %s "
			    "on: `pmt-top functions %d` stops it when it ends", pid, err,
			    refused ? "is still" : "may still be", pid);
		}
	}
	switch (leave_profile_stop(&L, err, sizeof err)) {
	case 1:
		say(s, SESSION_MSG_LEAVE, "stopped the sampled profiler in pid %d (it was started "
		    "from pmt-top)", pid);
		break;
	case -1:
		say(s, SESSION_MSG_LEAVE, "could not stop the sampled profiler in pid %d (%s), so it may still "
		    "run: P in `pmt-top %d` stops it", pid, err, pid);
		break;
	}
	leave_tracemalloc(&L, fresh);
	leave_unanswered_starts(&L);
	leave_end(&L);
}
