/*
 * session.h - one watched process and its agent link, for every front end.
 *
 * The TUI and the headless commands are two users of this one model: it
 * finds the agent's socket, connects, loads the agent into the target when
 * nobody answers (unless told not to), keeps the link, retries after a drop,
 * holds the newest status the agent pushed, and remembers what it switched
 * on in the target so that it can switch it off again when it leaves.
 *
 * An agent that is there but does not serve us is never loaded again: an
 * agent whose socket accepted a connection but that did not answer hello
 * within 5 s, a stopped process (state T), an agent with no free connection
 * ("busy") are each one sentence (the message callback, ERROR) and a retry
 * after a backoff of 1, 2, 4, 8, then 15 s, shown in the note with a
 * countdown. An agent that closes an idle connection ("timeout") is
 * reconnected to at once. When another pmt-top is loading the agent into the
 * same process, the session waits up to 15 s for that agent instead. While
 * READY, the client's keepalive (client.h) keeps an unsubscribed connection
 * from being closed as idle: session_tick() drives it.
 *
 * Threading: one thread owns a session. Nothing here blocks except the
 * functions documented as blocking (session_wait_ready, session_call,
 * session_leave_clean), meant for headless commands and for quitting.
 * The event loop polls session_pollfd() and calls session_handle() on
 * readiness and session_tick() after every wake-up (at least every
 * session_timeout_ms()). Events arrive through the callbacks given to
 * session_new, always from within those calls.
 */
#ifndef PMT_SESSION_SESSION_H
#define PMT_SESSION_SESSION_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/client.h"
#include "ipc/msg.h"

enum session_agent {
	SESSION_AGENT_NONE,       /* no agent (yet); the note says why */
	SESSION_AGENT_OFF,        /* none and none will be loaded: RSS only */
	SESSION_AGENT_ATTACHING,  /* loading the agent into the target */
	SESSION_AGENT_CONNECTING, /* socket connected, handshake under way */
	SESSION_AGENT_READY,      /* connected */
	SESSION_AGENT_LOST,       /* it was connected and went away */
};

struct session_opts {
	pid_t pid;
	const char *socket;        /* connect only here (no search, no loading), or NULL */
	const char *inject_method; /* "auto" when NULL (see inject.h) */
	bool no_inject;            /* never load the agent: connect to one if it is there */
	bool child_agent;          /* the program was started by us with the agent preloaded:
	                            * wait for it instead of loading one */
	double interval;           /* status pushes every this many seconds; <= 0: none */
	int attach_timeout_ms;     /* loading the agent, whole; <= 0: 15000 */
	/* The sampled profiler (docs/protocol.md, "profile_start") is started as
	 * soon as the agent answers, when it offers one, unless no_profile. */
	bool no_profile;           /* --no-profile: leave it off */
	uint64_t profile_interval; /* its mean bytes between samples; 0: the agent's default */
	bool profile_calls;        /* also count calls per function */
	bool profile_no_native;    /* leave native code's malloc alone ("native": false) */
};

/* Bits of session_events.changed's WHAT. */
#define SESSION_CHANGED_AGENT 1u  /* state or note */
#define SESSION_CHANGED_STATUS 2u /* a new status arrived */
#define SESSION_CHANGED_PROFILE 4u /* the profiler's state or notice */

/* The sampled profiler, as this session sees it. */
enum session_profile {
	SESSION_PROFILE_OFF,         /* not started: no agent yet, or --no-profile */
	SESSION_PROFILE_STARTING,    /* profile_start sent, no reply yet */
	SESSION_PROFILE_ON,          /* running (session_profile_ours: by us) */
	SESSION_PROFILE_UNAVAILABLE, /* the agent has none here: tracemalloc instead */
	SESSION_PROFILE_FAILED,      /* profile_start failed otherwise */
	SESSION_PROFILE_STOPPED,     /* it was running and something else stopped it */
};

/* What a message is about, so that each front end picks what it shows. */
enum session_msg {
	SESSION_MSG_INFO,    /* progress: connected, attaching... */
	SESSION_MSG_ERROR,   /* something failed */
	SESSION_MSG_WAITING, /* the load waits on the target (its main thread is
	                      * in a system call): worth saying even headless */
	SESSION_MSG_LEAVE,   /* what session_leave_clean did (ok or not) */
};

struct session_events {
	void (*changed)(void *ud, unsigned what);
	/* One line worth telling the user (the TUI's status line, a headless
	 * command's stderr). The text may quote the target: show it through
	 * strsafe. ERROR is true for failures. */
	void (*message)(void *ud, enum session_msg kind, bool error, const char *text);
	void *ud;
};

struct session;

/* A session for OPTS (strings are copied); EVENTS may be NULL. Starts
 * nothing yet: the first session_tick() looks for the agent. Never NULL. */
struct session *session_new(const struct session_opts *opts, const struct session_events *events);
/* Closes the link and abandons a load under way (see inject_free). NULL ok. */
void session_free(struct session *s);

/* Event loop: the descriptor to poll (the agent socket, or the loader's
 * helper process), or fd -1. */
void session_pollfd(const struct session *s, struct pollfd *pfd);
/* The longest the loop may sleep before session_tick() is due, or -1. */
int session_timeout_ms(const struct session *s);
void session_handle(struct session *s, short revents);
void session_tick(struct session *s);
/* The target exited: stop looking for its agent. */
void session_set_gone(struct session *s);

enum session_agent session_agent(const struct session *s);
/* Whether an agent listens for PID where a session would look (its socket
 * is there), without connecting: for lists of many processes. */
bool session_agent_listening(pid_t pid);
/* What attach is doing, or why there is no agent; the agent's Python when ready. */
const char *session_note(const struct session *s);
/* The agent's hello, once READY; else NULL. */
const struct msg_hello *session_hello(const struct session *s);
/* The newest status (pushed or replied), or NULL; *AGE_S (if not NULL) gets
 * its age in seconds. */
const struct msg_status *session_status(const struct session *s, double *age_s);
/* Takes a status that arrived in a reply (tracemalloc_start/stop, status):
 * decoded here, so every user sees the same. Returns 0 or -1 with ERR. */
int session_take_status(struct session *s, const cJSON *result, char *err, size_t errlen);
/* One line for a header: "agent Python 3.11.2 | tracemalloc on, ..." */
void session_describe(const struct session *s, char *buf, size_t len);

/*
 * Sends a request (see client_request; takes ownership of ARGS). Returns
 * the request id, or -1 when there is no agent: then ERR (if not NULL)
 * says why, in a sentence naming the pid. The session follows the request
 * until its reply (what is in flight, and whether a tracemalloc_start of
 * ours switched tracing on), so a front end sends through here, not
 * through the client, and does not cancel the id.
 */
int64_t session_request(struct session *s, enum proto_cmd cmd, cJSON *args, client_reply_fn cb,
			void *ud, char *err, size_t errlen);
/* Blocking request (see client_call); followed as session_request's are. */
int session_call(struct session *s, enum proto_cmd cmd, cJSON *args, int timeout_ms, cJSON **result,
		 char *err, size_t errlen);
/*
 * The same for a reply that can be large (a whole snapshot): the result
 * comes as text (client_request_text, client_call_text), for a reader that
 * builds no cJSON tree. Text replies carry no status, so these are not for
 * tracemalloc_start/stop.
 */
int64_t session_request_text(struct session *s, enum proto_cmd cmd, cJSON *args, client_reply_fn cb,
			     void *ud, char *err, size_t errlen);
int session_call_text(struct session *s, enum proto_cmd cmd, cJSON *args, int timeout_ms, client_text_fn fn,
		      void *ud, char *err, size_t errlen);
/* The code of the last failed session_call reply (enum proto_err), or -1. */
int session_last_error_code(const struct session *s);

/* Changes the status push period. */
void session_set_interval(struct session *s, double seconds);

/*
 * What this session switched on in the target, so that it can switch it off
 * when it leaves: call these when such a request succeeded.
 */
void session_note_functions(struct session *s, bool running);

/*
 * The sampled profiler. Once READY, the session sends profile_start with
 * the opts' interval and calls when the hello lists "profile" and no_profile
 * is not set; session_leave_clean() stops it again if this session started
 * it. A profiler another client started is used and left running.
 *
 * session_profile_notice() is one line for the user, "" before there is
 * anything to say: "sampled profiler on: 1 sample per 4 KiB; --no-profile
 * to opt out", or why there is none ("... tracemalloc is used instead",
 * quoting the agent: show it through strsafe). It is also sent once through
 * the message callback (SESSION_MSG_INFO, or ERROR for a failure), and
 * SESSION_CHANGED_PROFILE announces every change. Valid until the next call
 * into the session.
 *
 * session_profile_status() is the profiler's full status from the newest
 * profile_start/profile_stop reply (NULL before one); the live summary comes
 * with every status push (session_status()->profile). Call
 * session_profile_took() with the result of a profile_start or profile_stop
 * a front end sent itself, so that the session knows what runs and who
 * started it.
 */
enum session_profile session_profile(const struct session *s);
bool session_profile_ours(const struct session *s);
const char *session_profile_notice(const struct session *s);
const struct msg_profile_status *session_profile_status(const struct session *s);
int session_profile_took(struct session *s, enum proto_cmd cmd, const cJSON *result, char *err,
			 size_t errlen);

/*
 * Blocking, bounded (15 s, as session_leave_clean): stops the sampled
 * profiler if this session started it. Returns 1 when it stopped it, 0 when
 * there was nothing of ours to stop, -1 with ERR when the agent refused or
 * did not answer. session_leave_clean() does the same; headless commands
 * may call it earlier.
 */
int session_profile_stop(struct session *s, char *err, size_t errlen);

/*
 * Blocking, for headless commands: once READY, waits (at most timeout_ms,
 * or until *stop) while the automatic profile_start is under way. Returns
 * the resulting state.
 */
enum session_profile session_wait_profile(struct session *s, volatile sig_atomic_t *stop,
					  int timeout_ms);

enum session_failure {
	SESSION_FAIL_NO_PROCESS,  /* no such process */
	SESSION_FAIL_NO_AGENT,    /* none answers and none could (or may) be loaded */
	SESSION_FAIL_INTERRUPTED, /* *stop became non-zero */
};

/*
 * Blocking: drives the session until the agent is READY. Returns 0, or -1
 * with a sentence in ERR and *WHY (if not NULL) set. Bounded by the load's
 * own deadline plus a few seconds for the agent to answer. Gives up at the
 * first failed attempt on an agent that is there (busy, silent, stopped:
 * see the top of this file) instead of retrying.
 */
int session_wait_ready(struct session *s, volatile sig_atomic_t *stop, enum session_failure *why,
		       char *err, size_t errlen);

/*
 * Blocking, for headless commands: serves the link (pushes, the keepalive)
 * for SECONDS, or until *STOP (when not NULL) becomes non-zero or the agent
 * is no longer READY. Returns whether it still is.
 */
bool session_watch(struct session *s, double seconds, volatile sig_atomic_t *stop);

/*
 * Blocking, bounded (15 s in all): switches off what this session switched
 * on in a target it leaves running: the function tracer and the sampled
 * profiler it started, and tracemalloc when a tracemalloc_start of this
 * session found it off. Tracing that was on before is left on, and said so.
 * Start requests still unanswered are awaited first; while other requests
 * are in flight (a large Top refresh), the stops go over a second,
 * short-lived connection so that they do not queue behind them. The agent
 * stays, idle, so a later session connects at once. Each outcome is one
 * line through the message callback (SESSION_MSG_LEAVE), and whatever could
 * not be switched off is named with the pid and the command that does it.
 * Does nothing unless READY.
 */
void session_leave_clean(struct session *s);

#endif
