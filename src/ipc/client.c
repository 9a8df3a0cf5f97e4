/*
 * client.c - agent connection state machine (see client.h).
 */
#include "ipc/client.h"
#include "base/monotime.h"
#include "base/errfmt.h"
#include "ipc/frame.h"
#include "base/xalloc.h"
#include "ipc/sock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef PMT_VERSION
#define PMT_VERSION "0.0.0"
#endif

/* Bytes read per client_handle() call before yielding to the caller's loop. */
#define CLIENT_READ_BUDGET (8 * 1024 * 1024)

struct pending {
	uint64_t id;
	enum proto_cmd cmd;
	client_reply_fn cb;
	void *userdata;
	double sub_interval; /* subscribe: the interval asked for */
	bool text;           /* client_request_text(): the result as text */
};

struct client {
	int fd;
	enum client_state state;
	char error[512];
	int last_code;
	int close_code;       /* the agent's reason for closing, or -1 */
	pid_t peer;           /* the agent's pid, for messages; 0 unknown */

	struct frame_reader rd;
	struct frame_writer wr;

	uint64_t next_id;
	uint64_t hello_id;
	struct pending *pend;
	size_t npend, cappend;

	client_push_fn push_fn;
	void *push_ud;
	client_state_fn state_fn;
	void *state_ud;

	struct msg_hello hello;
	bool have_hello;

	/* keepalive */
	int keepalive_ms;     /* 0: off */
	bool subscribed;      /* the agent pushes on this connection */
	double quiet_since;   /* last request sent or reply taken, keepalive clock */
	client_clock_fn clock;
	void *clock_ud;
};

struct client *client_new(void)
{
	struct client *c = xcalloc(1, sizeof *c);

	c->fd = -1;
	c->state = CLIENT_IDLE;
	c->last_code = -1;
	c->close_code = -1;
	c->next_id = 1;
	c->keepalive_ms = CLIENT_KEEPALIVE_MS;
	frame_reader_init(&c->rd, PROTO_MAX_REPLY);
	frame_writer_init(&c->wr);
	return c;
}

void client_free(struct client *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	frame_reader_done(&c->rd);
	frame_writer_done(&c->wr);
	free(c->pend);
	msg_hello_done(&c->hello);
	free(c);
}

enum client_state client_state(const struct client *c)
{
	return c->state;
}

const char *client_error(const struct client *c)
{
	return c->error;
}

int client_last_error_code(const struct client *c)
{
	return c->last_code;
}

int client_close_code(const struct client *c)
{
	return c->close_code;
}

pid_t client_peer_pid(const struct client *c)
{
	return c->peer > 0 ? c->peer : 0;
}

const struct msg_hello *client_hello(const struct client *c)
{
	return c->have_hello && c->state == CLIENT_READY ? &c->hello : NULL;
}

int client_fd(const struct client *c)
{
	return c->fd;
}

void client_set_push_handler(struct client *c, client_push_fn fn, void *userdata)
{
	c->push_fn = fn;
	c->push_ud = userdata;
}

void client_set_state_handler(struct client *c, client_state_fn fn, void *userdata)
{
	c->state_fn = fn;
	c->state_ud = userdata;
}

void client_set_keepalive(struct client *c, int quiet_ms)
{
	c->keepalive_ms = quiet_ms > 0 ? quiet_ms : 0;
}

static double clock_ms(const struct client *c)
{
	return c->clock ? c->clock(c->clock_ud) : monotime_ms();
}

void client_set_clock(struct client *c, client_clock_fn fn, void *userdata)
{
	c->clock = fn;
	c->clock_ud = userdata;
	c->quiet_since = clock_ms(c);
}

cJSON *client_reply_take_result(struct client_reply *reply)
{
	cJSON *r = reply->result;

	if (r != NULL && reply->internal != NULL)
		r = msg_take_result(reply->internal);
	reply->result = NULL;
	return r;
}

/* Fails the connection once: closes, then tells every pending callback. */
static void fail(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct client *c, const char *fmt, ...)
{
	struct pending *pend;
	size_t npend;
	va_list ap;
	char message[sizeof c->error];

	if (c->state == CLIENT_CLOSED || c->state == CLIENT_IDLE)
		return;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof c->error, fmt, ap);
	va_end(ap);
	memcpy(message, c->error, sizeof message);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CLIENT_CLOSED;
	frame_reader_reset(&c->rd);
	frame_writer_done(&c->wr);
	frame_writer_init(&c->wr);

	/* Callbacks may queue new requests (refused now): work on a private list. */
	pend = c->pend;
	npend = c->npend;
	c->pend = NULL;
	c->npend = c->cappend = 0;
	for (size_t i = 0; i < npend; i++) {
		struct client_reply r = {
			.id = pend[i].id,
			.cmd = pend[i].cmd,
			.ok = false,
			.code = -1,
			.code_name = "connection",
			.message = message,
			.local = true,
		};

		if (pend[i].cb)
			pend[i].cb(pend[i].userdata, &r);
	}
	free(pend);
	if (c->state_fn)
		c->state_fn(c->state_ud, CLIENT_CLOSED, message);
}

void client_close(struct client *c, const char *message)
{
	fail(c, "%s", message ? message : "connection closed");
}

static uint64_t add_pending(struct client *c, enum proto_cmd cmd, client_reply_fn cb, void *ud)
{
	struct pending *p;

	if (c->npend == c->cappend) {
		c->cappend = c->cappend ? c->cappend * 2 : 8;
		c->pend = xrealloc(c->pend, c->cappend * sizeof *c->pend);
	}
	p = &c->pend[c->npend++];
	p->id = c->next_id++;
	p->cmd = cmd;
	p->cb = cb;
	p->userdata = ud;
	p->sub_interval = -1;
	p->text = false;
	return p->id;
}

static struct pending *find_pending(struct client *c, uint64_t id)
{
	for (size_t i = 0; i < c->npend; i++)
		if (c->pend[i].id == id)
			return &c->pend[i];
	return NULL;
}

static void remove_pending(struct client *c, struct pending *p)
{
	size_t i = (size_t)(p - c->pend);

	memmove(p, p + 1, (c->npend - i - 1) * sizeof *p);
	c->npend--;
}

/* Encodes and queues; on failure sets c->error and returns -1. */
static int64_t queue_request(struct client *c, enum proto_cmd cmd, const cJSON *args,
			     client_reply_fn cb, void *ud)
{
	size_t len;
	char *line;

	if (c->next_id > MSG_ID_MAX) {
		errfmt(c->error, sizeof c->error, "request ids exhausted on this connection");
		return -1;
	}
	line = msg_encode_request(c->next_id, cmd, args, &len, c->error, sizeof c->error);
	if (line == NULL)
		return -1;
	frame_writer_push(&c->wr, line, len);
	free(line);
	uint64_t id = add_pending(c, cmd, cb, ud);
	if (cmd == PROTO_CMD_SUBSCRIBE) {
		const cJSON *iv = cJSON_GetObjectItemCaseSensitive(args, "interval");

		c->pend[c->npend - 1].sub_interval = cJSON_IsNumber(iv) ? iv->valuedouble : 0;
	}
	c->quiet_since = clock_ms(c);
	return (int64_t)id;
}

int client_attach_fd(struct client *c, int fd, char *err, size_t errlen)
{
	cJSON *args;
	int64_t id;
	int fl;

	if (c->state == CLIENT_HANDSHAKE || c->state == CLIENT_READY) {
		errfmt(err, errlen, "this client is already connected");
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		errfmt(err, errlen, "cannot use fd %d for the agent connection: %s", fd,
			strerror(errno));
		return -1;
	}
	frame_reader_reset(&c->rd);
	frame_writer_done(&c->wr);
	frame_writer_init(&c->wr);
	msg_hello_done(&c->hello);
	c->have_hello = false;
	c->error[0] = '\0';
	c->last_code = -1;
	c->close_code = -1;
	c->subscribed = false;
	c->peer = sock_peer_pid(fd);
	c->fd = fd;
	c->state = CLIENT_HANDSHAKE;

	args = cJSON_CreateObject();
	if (args == NULL || !cJSON_AddNumberToObject(args, "protocol", PROTO_VERSION) ||
	    !cJSON_AddStringToObject(args, "client", "pmt-top " PMT_VERSION))
		xalloc_die(0);
	id = queue_request(c, PROTO_CMD_HELLO, args, NULL, NULL);
	cJSON_Delete(args);
	if (id < 0) { /* cannot happen with these fixed arguments */
		errfmt(err, errlen, "%s", c->error);
		c->fd = -1;
		c->state = CLIENT_IDLE;
		return -1;
	}
	c->hello_id = (uint64_t)id;
	return 0;
}

int client_connect(struct client *c, pid_t pid, const char *socket_override, char *err,
		   size_t errlen)
{
	char path[PATH_MAX];
	int fd;

	if (c->state == CLIENT_HANDSHAKE || c->state == CLIENT_READY) {
		errfmt(err, errlen, "this client is already connected");
		return -1;
	}
	if (socket_override != NULL) {
		snprintf(path, sizeof path, "%s", socket_override);
	} else if (sock_path_for_pid(pid, false, path, sizeof path, err, errlen) < 0) {
		return -1;
	}
	fd = sock_connect(path, pid, err, errlen);
	if (fd < 0)
		return -1;
	if (client_attach_fd(c, fd, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	if (pid > 0)
		c->peer = pid;
	return 0;
}

int64_t client_request(struct client *c, enum proto_cmd cmd, cJSON *args, client_reply_fn cb,
		       void *userdata)
{
	int64_t id;

	if (c->state != CLIENT_HANDSHAKE && c->state != CLIENT_READY) {
		if (c->state == CLIENT_IDLE)
			errfmt(c->error, sizeof c->error, "not connected to an agent");
		cJSON_Delete(args);
		return -1;
	}
	if (cmd == PROTO_CMD_HELLO) {
		errfmt(c->error, sizeof c->error, "hello is sent by the client itself");
		cJSON_Delete(args);
		return -1;
	}
	id = queue_request(c, cmd, args, cb, userdata);
	cJSON_Delete(args);
	return id;
}

int64_t client_request_text(struct client *c, enum proto_cmd cmd, cJSON *args, client_reply_fn cb,
			    void *userdata)
{
	int64_t id = client_request(c, cmd, args, cb, userdata);

	if (id > 0)
		find_pending(c, (uint64_t)id)->text = true;
	return id;
}

void client_cancel(struct client *c, int64_t id)
{
	struct pending *p = id > 0 ? find_pending(c, (uint64_t)id) : NULL;

	if (p) {
		p->cb = NULL;
		p->userdata = NULL;
	}
}

void client_pollfd(const struct client *c, struct pollfd *pfd)
{
	pfd->fd = c->fd;
	pfd->revents = 0;
	pfd->events = 0;
	if (c->fd >= 0) {
		pfd->events = POLLIN;
		if (frame_writer_pending(&c->wr) > 0)
			pfd->events |= POLLOUT;
	}
}

/* "the agent in pid 123", or "the agent" when its pid is unknown. */
static const char *agent_name(const struct client *c, char *buf, size_t len)
{
	if (c->peer > 0)
		snprintf(buf, len, "the agent in pid %ld", (long)c->peer);
	else
		snprintf(buf, len, "the agent");
	return buf;
}

/* The agent refused a connection (or its hello) with "busy". */
static void fail_busy(struct client *c, const char *message)
{
	char who[48];

	c->close_code = PROTO_ERR_BUSY;
	fail(c, "%s has no free connection (%s); close other pmt-top sessions or try again",
	     agent_name(c, who, sizeof who), message);
}

/*
 * An error frame with "id": null: the agent's word on the connection
 * itself, said just before it closes it (busy, timeout, too_large), or a
 * frame of ours it could not read at all. Either way the connection is over.
 */
static void connection_error(struct client *c, const struct msg *m)
{
	char who[48];

	if (m->error_code == PROTO_ERR_BUSY && c->state == CLIENT_HANDSHAKE) {
		fail_busy(c, m->error_message);
		return;
	}
	c->close_code = m->error_code;
	agent_name(c, who, sizeof who);
	if (m->error_code == PROTO_ERR_TIMEOUT)
		fail(c, "%s closed the idle connection (%s)", who, m->error_message);
	else if (m->error_code == PROTO_ERR_BUSY || m->error_code == PROTO_ERR_TOO_LARGE)
		fail(c, "%s closed the connection: %s (%s)", who, m->error_message, m->error_code_name);
	else
		fail(c, "the agent could not read a request: %s (%s)", m->error_message,
		     m->error_code_name);
}

static void handle_hello(struct client *c, struct msg *m)
{
	char why[256];

	if (m->kind == MSG_REPLY_ERROR) {
		c->close_code = m->error_code;
		if (m->error_code == PROTO_ERR_BUSY)
			fail_busy(c, m->error_message);
		else if (m->error_code == PROTO_ERR_VERSION)
			fail(c, "the agent does not support protocol version %d: %s (use a pmt-top "
			     "and agent of the same release)", PROTO_VERSION, m->error_message);
		else
			fail(c, "the agent refused the handshake: %s (%s)", m->error_message,
			     m->error_code_name);
		return;
	}
	if (msg_decode_hello(m->result, &c->hello, why, sizeof why) < 0) {
		fail(c, "the agent's hello reply is invalid: %s", why);
		return;
	}
	if (c->hello.protocol != PROTO_VERSION) {
		int theirs = c->hello.protocol;

		msg_hello_done(&c->hello);
		fail(c, "the agent speaks protocol version %d but this pmt-top speaks %d (use a "
		     "pmt-top and agent of the same release)", theirs, PROTO_VERSION);
		return;
	}
	c->have_hello = true;
	c->state = CLIENT_READY;
	c->quiet_since = clock_ms(c);
	if (c->state_fn)
		c->state_fn(c->state_ud, CLIENT_READY, "");
}

/*
 * A reply to a text request that msg_peek_result() takes: its result goes
 * to the callback as the bytes in the read buffer, never decoded here.
 * False when the frame is something else (msg_decode() then reads it).
 */
static bool dispatch_text(struct client *c, char *line, size_t len)
{
	struct pending *p = NULL, req;
	size_t off, rlen;
	uint64_t id;

	for (size_t i = 0; i < c->npend && p == NULL; i++)
		if (c->pend[i].text)
			p = &c->pend[i];
	if (p == NULL || !msg_peek_result(line, len, &id, &off, &rlen))
		return false;
	p = find_pending(c, id);
	if (p == NULL || !p->text)
		return false;
	req = *p;
	remove_pending(c, p);
	if (c->npend == 0)
		c->quiet_since = clock_ms(c);
	if (req.cb) {
		struct client_reply r = {
			.id = req.id,
			.cmd = req.cmd,
			.ok = true,
			.code = -1,
			.text = line + off,
			.text_len = rlen,
		};

		req.cb(req.userdata, &r);
	}
	return true;
}

static void dispatch(struct client *c, char *line, size_t len)
{
	struct msg m;
	struct pending *p, req;
	char why[256];

	if (dispatch_text(c, line, len))
		return;
	if (msg_decode(line, len, &m, why, sizeof why) < 0) {
		fail(c, "the agent sent an invalid message: %s", why);
		return;
	}
	if (m.kind == MSG_PUSH) {
		if (c->push_fn)
			c->push_fn(c->push_ud, m.push, m.data);
		msg_done(&m);
		return;
	}
	if (!m.has_id) {
		connection_error(c, &m);
		msg_done(&m);
		return;
	}
	p = find_pending(c, m.id);
	if (p == NULL) {
		fail(c, "the agent replied to request %llu, which was never sent",
		     (unsigned long long)m.id);
		msg_done(&m);
		return;
	}
	req = *p;
	remove_pending(c, p);
	if (c->npend == 0)
		c->quiet_since = clock_ms(c);
	if (req.cmd == PROTO_CMD_SUBSCRIBE && m.kind == MSG_REPLY_OK)
		c->subscribed = req.sub_interval > 0;
	if (req.id == c->hello_id && req.cmd == PROTO_CMD_HELLO) {
		handle_hello(c, &m);
	} else if (req.cb) {
		struct client_reply r = {
			.id = req.id,
			.cmd = req.cmd,
			.ok = m.kind == MSG_REPLY_OK,
			.result = m.kind == MSG_REPLY_OK ? m.result : NULL,
			.code = m.kind == MSG_REPLY_OK ? -1 : m.error_code,
			.code_name = m.error_code_name,
			.message = m.error_message,
			.local = false,
			.internal = &m,
		};
		char *text = NULL;

		if (req.text && r.ok) {
			/* An unusual but valid envelope: the text request still gets text. */
			text = cJSON_PrintUnformatted(m.result);
			if (text == NULL)
				xalloc_die(0);
			r.text = text;
			r.text_len = strlen(text);
			r.result = NULL;
		}
		req.cb(req.userdata, &r);
		free(text);
	}
	msg_done(&m);
}

/* Takes every complete frame out of the reader. */
static void drain_frames(struct client *c)
{
	const char *line;
	size_t len;

	while (c->state == CLIENT_HANDSHAKE || c->state == CLIENT_READY) {
		enum frame_status st = frame_reader_next(&c->rd, &line, &len);

		if (st == FRAME_NONE)
			return;
		if (st == FRAME_TOO_LARGE) {
			fail(c, "the agent sent a message over the %d MiB limit",
			     PROTO_MAX_REPLY / (1024 * 1024));
			return;
		}
		/* The line is the reader's own buffer, ours until its next call. */
		dispatch(c, (char *)line, len);
	}
}

int client_handle(struct client *c, short revents)
{
	size_t budget = CLIENT_READ_BUDGET;
	int write_errno = 0;

	if (c->fd < 0)
		return -1;
	if (frame_writer_pending(&c->wr) > 0)
		revents |= POLLOUT; /* cheap to try: the fd is non-blocking */
	if (revents & POLLOUT) {
		if (frame_writer_flush(&c->wr, c->fd) < 0) {
			write_errno = errno;
			if (write_errno != EPIPE && write_errno != ECONNRESET) {
				fail(c, "lost the connection to the agent: %s", strerror(write_errno));
				return -1;
			}
			/* The agent left: first read what it said before it went. */
			revents |= POLLIN;
		}
	}
	if (revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL | POLLOUT)) {
		while (budget > 0 && c->fd >= 0) {
			ssize_t n = frame_reader_read(&c->rd, c->fd);

			if (n > 0) {
				budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
				drain_frames(c);
				continue;
			}
			if (n == 0) {
				drain_frames(c);
				fail(c, "the agent closed the connection");
				break;
			}
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) { /* only after FRAME_TOO_LARGE */
				drain_frames(c);
				break;
			}
			fail(c, "lost the connection to the agent: %s", strerror(errno));
			break;
		}
	}
	if (write_errno != 0)
		fail(c, "lost the connection to the agent: %s", strerror(write_errno));
	return c->fd < 0 ? -1 : 0;
}

int client_timeout_ms(const struct client *c)
{
	double left;

	if (c->state != CLIENT_READY || c->keepalive_ms <= 0 || c->subscribed || c->npend > 0)
		return -1;
	left = c->quiet_since + c->keepalive_ms - clock_ms(c);
	if (left <= 0)
		return 0;
	if (left >= INT_MAX)
		return INT_MAX;
	int ms = (int)left;
	return ms < left ? ms + 1 : ms; /* never wake before it is due */
}

void client_tick(struct client *c)
{
	if (client_timeout_ms(c) != 0)
		return;
	/* The cheapest request there is; its reply only proves we are here. */
	if (queue_request(c, PROTO_CMD_STATUS, NULL, NULL, NULL) >= 0)
		client_handle(c, POLLOUT); /* written now; a write error is handled there */
}

static long now_ms(void)
{
	return (long)monotime_ms();
}

/* One poll round; returns -1 on timeout (deadline < 0: none). */
static int poll_once(struct client *c, long deadline)
{
	struct pollfd pfd;
	int timeout = -1, rc;

	if (deadline >= 0) {
		long left = deadline - now_ms();

		if (left <= 0)
			return -1;
		timeout = left > INT_MAX ? INT_MAX : (int)left;
	}
	client_pollfd(c, &pfd);
	rc = poll(&pfd, 1, timeout);
	if (rc < 0) {
		if (errno == EINTR)
			return 0;
		fail(c, "poll failed: %s", strerror(errno));
		return 0;
	}
	if (rc > 0)
		client_handle(c, pfd.revents);
	return 0;
}

int client_wait_ready(struct client *c, int timeout_ms, char *err, size_t errlen)
{
	long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	while (c->state == CLIENT_HANDSHAKE) {
		if (poll_once(c, deadline) < 0) {
			errfmt(err, errlen, "the agent did not answer hello within %d ms", timeout_ms);
			return -1;
		}
	}
	if (c->state != CLIENT_READY) {
		errfmt(err, errlen, "%s", c->state == CLIENT_IDLE ? "not connected to an agent" :
			c->error);
		return -1;
	}
	return 0;
}

struct call_ctx {
	bool done;
	bool ok;
	cJSON *result;
	client_text_fn text_fn;
	void *text_ud;
	int code;
	char message[512];
};

static void call_cb(void *ud, struct client_reply *r)
{
	struct call_ctx *ctx = ud;

	ctx->done = true;
	ctx->ok = r->ok;
	if (r->ok) {
		if (r->text != NULL)
			ctx->text_fn(ctx->text_ud, r->text, r->text_len);
		else
			ctx->result = client_reply_take_result(r);
		return;
	}
	ctx->code = r->local ? -1 : r->code;
	if (r->local)
		snprintf(ctx->message, sizeof ctx->message, "%s", r->message);
	else
		snprintf(ctx->message, sizeof ctx->message, "%s failed: %s (%s)",
			 proto_cmd_name(r->cmd), r->message, r->code_name);
}

/* client_call(), or client_call_text() when text_fn is set. */
static int call(struct client *c, enum proto_cmd cmd, cJSON *args, int timeout_ms, cJSON **result,
		client_text_fn text_fn, void *text_ud, char *err, size_t errlen)
{
	struct call_ctx ctx = { .code = -1, .text_fn = text_fn, .text_ud = text_ud };
	long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int64_t id;

	if (result)
		*result = NULL;
	c->last_code = -1;
	if (text_fn)
		id = client_request_text(c, cmd, args, call_cb, &ctx);
	else
		id = client_request(c, cmd, args, call_cb, &ctx);
	if (id < 0) {
		errfmt(err, errlen, "%s", c->error);
		return -1;
	}
	while (!ctx.done) {
		if (poll_once(c, deadline) < 0) {
			client_cancel(c, id);
			errfmt(err, errlen, "no reply to \"%s\" from the agent within %d ms",
				proto_cmd_name(cmd), timeout_ms);
			snprintf(c->error, sizeof c->error, "%s", err ? err : "timeout");
			return -1;
		}
	}
	if (!ctx.ok) {
		c->last_code = ctx.code;
		errfmt(err, errlen, "%s", ctx.message);
		return -1;
	}
	if (result)
		*result = ctx.result;
	else
		cJSON_Delete(ctx.result);
	return 0;
}

int client_call(struct client *c, enum proto_cmd cmd, cJSON *args, int timeout_ms,
		cJSON **result, char *err, size_t errlen)
{
	return call(c, cmd, args, timeout_ms, result, NULL, NULL, err, errlen);
}

int client_call_text(struct client *c, enum proto_cmd cmd, cJSON *args, int timeout_ms,
		     client_text_fn fn, void *userdata, char *err, size_t errlen)
{
	return call(c, cmd, args, timeout_ms, NULL, fn, userdata, err, errlen);
}
