/*
 * client.h - the client end of an agent connection, as a state machine.
 *
 * One struct client owns one non-blocking socket. It sends hello first,
 * checks the agent's hello reply, matches replies to requests by id, hands
 * pushes to a handler, and reports the loss of the connection exactly once.
 * It never blocks: the owner polls client_pollfd() and calls client_handle()
 * with the revents (the TUI's poll() loop). client_call() and
 * client_wait_ready() wrap the same machinery in a private poll loop with a
 * deadline for headless commands.
 *
 * Keepalive: the agent closes a connection that is not subscribed to pushes
 * and sends no request for a while (docs/protocol.md, "timeout"). A ready
 * client with no request outstanding, not subscribed, sends a "status"
 * request of its own after CLIENT_KEEPALIVE_MS of quiet: its owner's loop
 * calls client_tick() at least every client_timeout_ms(). The reply goes
 * nowhere.
 *
 * Threads: a client is used from one thread at a time.
 * Callbacks run inside client_handle() (or client_call/client_wait_ready/
 * client_close); they may call client_request(), client_cancel() and
 * client_close(), never client_free().
 */
#ifndef PMT_IPC_CLIENT_H
#define PMT_IPC_CLIENT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "ipc/msg.h"
#include "ipc/proto.h"

enum client_state {
	CLIENT_IDLE,      /* no connection yet */
	CLIENT_HANDSHAKE, /* hello sent, reply not yet checked */
	CLIENT_READY,     /* hello accepted: requests are answered */
	CLIENT_CLOSED     /* connection gone; client_error() says why */
};

/* What a request's callback receives. */
struct client_reply {
	uint64_t id;
	enum proto_cmd cmd;
	bool ok;
	/*
	 * ok: the "result" object, owned by the client and freed after the
	 * callback returns, unless the callback takes it with
	 * client_reply_take_result().
	 */
	cJSON *result;
	/* !ok: enum proto_err from the agent, or -1 (see local / code_name). */
	int code;
	const char *code_name; /* !ok: the agent's code, or "connection" when local */
	const char *message;   /* !ok: a sentence for the user */
	bool local;            /* !ok: made up by the client (connection lost) */
	/*
	 * ok, for client_request_text(): the "result" object as text (not
	 * NUL-terminated), result NULL. It lies in the client's read buffer,
	 * valid during the callback, which may overwrite it or give its pages
	 * back (snapshot_parse_consume()).
	 */
	char *text;
	size_t text_len;
	struct msg *internal;  /* private to client.c */
};

typedef void (*client_reply_fn)(void *userdata, struct client_reply *reply);
/* A push; data is borrowed for the duration of the call. */
typedef void (*client_push_fn)(void *userdata, enum proto_push push, const cJSON *data);
/* Called on CLIENT_READY and (once) on CLIENT_CLOSED with client_error(). */
typedef void (*client_state_fn)(void *userdata, enum client_state state, const char *message);
/* A clock in milliseconds (monotonic); see client_set_clock(). */
typedef double (*client_clock_fn)(void *userdata);

/* Quiet time after which an idle, unsubscribed connection sends "status". */
#define CLIENT_KEEPALIVE_MS 20000

struct client;

/* A new idle client. Never NULL (aborts on OOM). */
struct client *client_new(void);

/*
 * Closes the socket and frees everything. Pending requests are dropped
 * WITHOUT their callbacks (call client_close() first to have them called).
 * NULL-safe. Not from inside a callback.
 */
void client_free(struct client *c);

/*
 * Takes ownership of a connected stream socket (made non-blocking and
 * close-on-exec here), queues hello {"protocol": PROTO_VERSION,
 * "client": "pmt-top PMT_VERSION"} and enters CLIENT_HANDSHAKE. A closed
 * client may be attached again. Returns 0, or -1 (fd left open, owned by the
 * caller) when the client already has a live connection or fd is not usable.
 */
int client_attach_fd(struct client *c, int fd, char *err, size_t errlen);

/*
 * Connects to the agent of pid (socket <runtime dir>/<pid>.sock, or
 * socket_override when not NULL), checks that the server is pid
 * (SO_PEERCRED; with socket_override, only when pid > 0), then as
 * client_attach_fd(). Returns 0, or -1 with sock_connect()'s sentence.
 */
int client_connect(struct client *c, pid_t pid, const char *socket_override, char *err,
		   size_t errlen);

/*
 * Queues a request and returns its id (>= 1), or -1 when the client has no
 * connection or the request cannot be encoded (client_error() says why).
 * Always takes ownership of args (an object or NULL). cb (may be NULL) is
 * called exactly once: with the reply, or with a local error when the
 * connection drops first, unless the request is cancelled or the client freed.
 * Requests may be queued during the handshake: they go out after hello.
 * hello itself is sent by the client and refused here.
 */
int64_t client_request(struct client *c, enum proto_cmd cmd, cJSON *args, client_reply_fn cb,
		       void *userdata);

/*
 * As client_request(), for a reply that can be large (a whole snapshot):
 * its result reaches cb as reply->text, never built into a cJSON tree.
 * An ok reply in a form msg_peek_result() does not take is decoded and
 * printed back to text, so cb always gets text.
 */
int64_t client_request_text(struct client *c, enum proto_cmd cmd, cJSON *args, client_reply_fn cb,
			    void *userdata);

/* Forgets request id's callback; a late reply is then discarded. */
void client_cancel(struct client *c, int64_t id);

/* Detaches the result from a reply; the caller then owns it (cJSON_Delete). */
cJSON *client_reply_take_result(struct client_reply *reply);

void client_set_push_handler(struct client *c, client_push_fn fn, void *userdata);
void client_set_state_handler(struct client *c, client_state_fn fn, void *userdata);

/*
 * The keepalive's quiet time in ms (CLIENT_KEEPALIVE_MS by default; 0 turns
 * it off), and the clock it is measured with (monotime_ms() when fn is
 * NULL; tests pass a fake one). Only the keepalive reads this clock.
 */
void client_set_keepalive(struct client *c, int quiet_ms);
void client_set_clock(struct client *c, client_clock_fn fn, void *userdata);

/*
 * Milliseconds until client_tick() has something to do (0: now), or -1
 * when nothing is due: not ready, subscribed, a request outstanding, or
 * the keepalive off.
 */
int client_timeout_ms(const struct client *c);

/* Sends the keepalive "status" when it is due (see above) and writes it out
 * (as client_handle(), whose callbacks may run). Never blocks. */
void client_tick(struct client *c);

/*
 * Fills pfd for poll(): the socket with POLLIN, plus POLLOUT while output is
 * queued; fd -1 (ignored by poll) when there is no connection.
 */
void client_pollfd(const struct client *c, struct pollfd *pfd);

/*
 * Does the work poll() announced: writes queued output, reads and dispatches
 * complete frames (callbacks run here). Reads at most a few MiB per call so a
 * flood cannot starve the caller's loop. Any protocol violation by the agent
 * (invalid frame, frame over PROTO_MAX_REPLY, reply to an unknown id, failed
 * or mismatched hello) closes the connection. So does an error frame with
 * "id": null, the agent's word on the connection itself: "busy" (no free
 * connection slot) and "timeout" (an idle connection closed) become one
 * sentence naming the agent's pid, and client_close_code() tells them
 * apart. Returns 0 while connected, -1 once closed.
 */
int client_handle(struct client *c, short revents);

/*
 * Closes the connection as if it had dropped, with message as the reason:
 * pending callbacks get a local error, the state handler sees CLIENT_CLOSED.
 * No-op when already closed or idle.
 */
void client_close(struct client *c, const char *message);

enum client_state client_state(const struct client *c);

/* Last failure as a sentence ("" when none). Valid until the next call. */
const char *client_error(const struct client *c);

/*
 * Agent error code of the last failed client_call(), or -1 when it failed
 * locally (connection, timeout) or has not failed.
 */
int client_last_error_code(const struct client *c);

/*
 * Why the agent closed the connection, when it said so: the code (enum
 * proto_err, e.g. PROTO_ERR_BUSY, PROTO_ERR_TIMEOUT) of its error frame
 * with "id": null, or of its refusal of hello; -1 otherwise (still open,
 * lost without a word, closed by us). Reset by the next attach.
 */
int client_close_code(const struct client *c);

/*
 * The pid the client connected to: the pid given to client_connect(), else
 * the socket's peer (SO_PEERCRED); 0 when unknown. For messages.
 */
pid_t client_peer_pid(const struct client *c);

/* The checked hello result once CLIENT_READY, else NULL. Owned by c. */
const struct msg_hello *client_hello(const struct client *c);

/* The connection's fd, or -1. Still owned by the client. */
int client_fd(const struct client *c);

/*
 * Blocks (poll with deadline) until the handshake is done. Returns 0 when
 * CLIENT_READY, -1 with a sentence when the connection closed or timeout_ms
 * (< 0: no limit) passed. Pushes and other callbacks run meanwhile.
 */
int client_wait_ready(struct client *c, int timeout_ms, char *err, size_t errlen);

/*
 * Sends one request and waits for its reply (handshake included). On success
 * returns 0 and, when result is not NULL, stores the result object in *result
 * (caller owns it). On failure returns -1 with a sentence in err: the agent's
 * message and code, a lost connection, or "no reply within N ms" (the request
 * is then cancelled; the connection stays up). Takes ownership of args.
 */
int client_call(struct client *c, enum proto_cmd cmd, cJSON *args, int timeout_ms,
		cJSON **result, char *err, size_t errlen);

/* A successful reply's result as text (see client_reply.text). */
typedef void (*client_text_fn)(void *userdata, char *text, size_t len);

/*
 * client_call() with client_request_text(): on success fn is called once,
 * before this returns 0, with the result's text.
 */
int client_call_text(struct client *c, enum proto_cmd cmd, cJSON *args, int timeout_ms,
		     client_text_fn fn, void *userdata, char *err, size_t errlen);

#endif
