/*
 * test_client.c - the client state machine (src/ipc/client.c) against a small
 * scripted agent: a thread in this process on the other end of a real
 * socketpair, or listening on a real Unix socket in a mkdtemp() runtime dir.
 * Covers the handshake, reply routing by id, pushes, errors, a connection
 * lost mid-request, version mismatch, timeouts, a 50 MB reply, the agent's
 * word on the connection (busy, timeout) and the keepalive on a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ipc/client.h"
#include "ipc/frame.h"
#include "ipc/sock.h"

/* ---- the scripted agent ---- */

struct agent;
typedef void (*agent_script)(struct agent *a);

struct agent {
	int fd;
	pthread_t th;
	agent_script script;
	struct frame_reader rd;
	int hello_protocol; /* protocol the agent claims in its hello result */
	char problem[256];  /* first thing that went wrong on the agent's side */
	char client_name[64];
	size_t big;         /* bytes of padding for the big reply */
	int release[2];     /* the script may wait on this pipe */
};

static void agent_problem(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	if (a->problem[0])
		return;
	va_start(ap, fmt);
	vsnprintf(a->problem, sizeof a->problem, fmt, ap);
	va_end(ap);
}

/* Next request, blocking; NULL at end of stream. Caller frees. */
static cJSON *agent_recv(struct agent *a)
{
	const char *line;
	size_t len;

	for (;;) {
		enum frame_status st = frame_reader_next(&a->rd, &line, &len);

		if (st == FRAME_OK) {
			cJSON *j = cJSON_ParseWithLength(line, len);

			if (j == NULL)
				agent_problem(a, "client sent bad JSON: %s", line);
			return j;
		}
		if (st == FRAME_TOO_LARGE) {
			agent_problem(a, "client frame too large");
			return NULL;
		}
		ssize_t n = frame_reader_read(&a->rd, a->fd);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return NULL;
		}
	}
}

static void agent_send(struct agent *a, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(a->fd, s, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* client went away: fine for some scripts */
		}
		s += w;
		n -= (size_t)w;
	}
}

static void agent_sendf(struct agent *a, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	agent_send(a, buf, (size_t)n);
}

static double req_id(cJSON *req)
{
	cJSON *id = cJSON_GetObjectItem(req, "id");

	return cJSON_IsNumber(id) ? id->valuedouble : -1;
}

static const char *req_cmd(cJSON *req)
{
	cJSON *c = cJSON_GetObjectItem(req, "cmd");

	return cJSON_IsString(c) ? c->valuestring : "";
}

static const char hello_fmt[] =
	"{\"id\":%.0f,\"ok\":true,\"result\":{\"protocol\":%d,\"agent\":\"0.1.0\",\"pid\":%d,"
	"\"ppid\":1,\"python\":\"3.12.1\",\"implementation\":\"cpython\",\"executable\":"
	"\"/usr/bin/python3\",\"argv\":[\"app.py\",\"-v\"],\"started\":1763700000.5,"
	"\"native\":false,\"capabilities\":[\"status\",\"top\"]}}";

/* Reads hello, checks it, answers with a_hello_protocol. Returns its id. */
static double agent_hello(struct agent *a)
{
	cJSON *req = agent_recv(a), *args;
	double id;

	if (req == NULL) {
		agent_problem(a, "no hello");
		return -1;
	}
	args = cJSON_GetObjectItem(req, "args");
	if (strcmp(req_cmd(req), "hello") != 0)
		agent_problem(a, "first command was %s", req_cmd(req));
	if (!cJSON_IsNumber(cJSON_GetObjectItem(args, "protocol")) ||
	    cJSON_GetObjectItem(args, "protocol")->valuedouble != PROTO_VERSION)
		agent_problem(a, "hello without protocol %d", PROTO_VERSION);
	if (cJSON_IsString(cJSON_GetObjectItem(args, "client")))
		snprintf(a->client_name, sizeof a->client_name, "%s",
			 cJSON_GetObjectItem(args, "client")->valuestring);
	id = req_id(req);
	cJSON_Delete(req);
	agent_sendf(a, hello_fmt, id, a->hello_protocol, (int)getpid());
	return id;
}

static void *agent_main(void *p)
{
	struct agent *a = p;

	a->script(a);
	shutdown(a->fd, SHUT_RDWR);
	close(a->fd);
	return NULL;
}

/* Starts the agent on one end of a socketpair; returns the client's end. */
static int agent_start(struct agent *a, agent_script script)
{
	int sv[2];

	memset(a, 0, sizeof *a);
	a->hello_protocol = PROTO_VERSION;
	a->script = script;
	frame_reader_init(&a->rd, PROTO_MAX_REQUEST);
	assert_int_equal(pipe(a->release), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	a->fd = sv[1];
	return sv[0];
}

static void agent_run(struct agent *a)
{
	assert_int_equal(pthread_create(&a->th, NULL, agent_main, a), 0);
}

static void agent_join(struct agent *a)
{
	close(a->release[1]);
	pthread_join(a->th, NULL);
	close(a->release[0]);
	frame_reader_done(&a->rd);
	if (a->problem[0])
		fail_msg("agent side: %s", a->problem);
}

static void agent_wait_release(struct agent *a)
{
	char c;

	(void)read(a->release[0], &c, 1);
}

/* ---- client-side recorders ---- */

struct rec {
	int calls;
	bool ok;
	bool local;
	int code;
	uint64_t id;
	enum proto_cmd cmd;
	char message[512];
	char code_name[64];
	cJSON *result; /* taken */
	int order;     /* global order of arrival */
};

static int arrival;

static void rec_cb(void *ud, struct client_reply *r)
{
	struct rec *rc = ud;

	rc->calls++;
	rc->ok = r->ok;
	rc->local = r->local;
	rc->code = r->code;
	rc->id = r->id;
	rc->cmd = r->cmd;
	rc->order = ++arrival;
	if (r->ok) {
		rc->result = client_reply_take_result(r);
		assert_null(r->result);
	} else {
		snprintf(rc->message, sizeof rc->message, "%s", r->message);
		snprintf(rc->code_name, sizeof rc->code_name, "%s", r->code_name);
	}
}

struct states {
	int ready, closed;
	char message[512];
};

static void state_cb(void *ud, enum client_state st, const char *message)
{
	struct states *s = ud;

	if (st == CLIENT_READY)
		s->ready++;
	if (st == CLIENT_CLOSED) {
		s->closed++;
		snprintf(s->message, sizeof s->message, "%s", message);
	}
}

/* Runs the client's poll loop until cond(arg) or timeout; returns cond. */
static bool pump(struct client *c, bool (*cond)(void *), void *arg, int timeout_ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!cond(arg)) {
		struct pollfd p;
		long el;

		client_pollfd(c, &p);
		if (p.fd < 0)
			return cond(arg);
		if (poll(&p, 1, 100) > 0)
			client_handle(c, p.revents);
		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (el > timeout_ms)
			return cond(arg);
	}
	return true;
}

static bool int_at_least_1(void *p)
{
	return *(int *)p >= 1;
}

/* ---- tests ---- */

static void script_handshake_only(struct agent *a)
{
	agent_hello(a);
	cJSON_Delete(agent_recv(a)); /* wait for the client to leave */
}

static void test_handshake(void **state)
{
	struct agent a;
	struct client *c = client_new();
	struct states st = { 0 };
	struct pollfd p;
	char err[256], want[64];
	const struct msg_hello *h;
	int fd = agent_start(&a, script_handshake_only);

	(void)state;
	assert_int_equal(client_state(c), CLIENT_IDLE);
	assert_null(client_hello(c));
	client_pollfd(c, &p);
	assert_int_equal(p.fd, -1);
	assert_int_equal(client_request(c, PROTO_CMD_STATUS, NULL, NULL, NULL), -1);
	assert_string_equal(client_error(c), "not connected to an agent");

	client_set_state_handler(c, state_cb, &st);
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	assert_int_equal(client_state(c), CLIENT_HANDSHAKE);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	/* hello is queued: the client wants POLLOUT. */
	client_pollfd(c, &p);
	assert_int_equal(p.fd, fd);
	assert_int_equal(p.events, POLLIN | POLLOUT);
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), -1);
	assert_string_equal(err, "this client is already connected");

	agent_run(&a);
	assert_int_equal(client_wait_ready(c, 5000, err, sizeof err), 0);
	assert_int_equal(client_state(c), CLIENT_READY);
	assert_int_equal(st.ready, 1);
	client_pollfd(c, &p);
	assert_int_equal(p.events, POLLIN); /* nothing left to write */
	h = client_hello(c);
	assert_non_null(h);
	assert_int_equal(h->pid, getpid());
	assert_string_equal(h->python, "3.12.1");
	assert_string_equal(h->argv, "app.py -v");
	assert_false(h->native);
	assert_true(msg_hello_has_capability(h, "top"));
	assert_int_equal(client_request(c, PROTO_CMD_HELLO, NULL, NULL, NULL), -1);

	client_close(c, "done here");
	assert_int_equal(client_state(c), CLIENT_CLOSED);
	assert_string_equal(client_error(c), "done here");
	assert_int_equal(st.closed, 1);
	client_close(c, "again"); /* reported once */
	assert_int_equal(st.closed, 1);
	agent_join(&a);
	snprintf(want, sizeof want, "pmt-top %s", PMT_VERSION);
	assert_string_equal(a.client_name, want);
	client_free(c);
}

/* Replies come back in reverse order, one is an error; ids route them. */
static void script_reverse(struct agent *a)
{
	cJSON *reqs[4];

	agent_hello(a);
	for (int i = 0; i < 4; i++)
		reqs[i] = agent_recv(a);
	agent_sendf(a, "{\"push\":\"status\",\"data\":{\"n\":1}}");
	for (int i = 3; i >= 0; i--) {
		if (reqs[i] == NULL) {
			agent_problem(a, "request %d missing", i);
			continue;
		}
		if (strcmp(req_cmd(reqs[i]), "top") == 0)
			agent_sendf(a, "{\"id\":%.0f,\"ok\":false,\"error\":{\"code\":\"not_tracing\","
				    "\"message\":\"tracemalloc is not tracing\"}}", req_id(reqs[i]));
		else
			agent_sendf(a, "{\"id\":%.0f,\"ok\":true,\"result\":{\"cmd\":\"%s\",\"args\":%s}}",
				    req_id(reqs[i]), req_cmd(reqs[i]),
				    cJSON_GetObjectItem(reqs[i], "args") ? "true" : "false");
		cJSON_Delete(reqs[i]);
	}
	agent_sendf(a, "{\"push\":\"status\",\"data\":{\"n\":2}}");
	cJSON_Delete(agent_recv(a));
}

struct pushes {
	int n;
	int last;
};

static void push_cb(void *ud, enum proto_push push, const cJSON *data)
{
	struct pushes *p = ud;

	assert_int_equal(push, PROTO_PUSH_STATUS);
	p->n++;
	p->last = (int)cJSON_GetObjectItem(data, "n")->valuedouble;
}

static bool all_four(void *p)
{
	struct rec *r = p;

	return r[0].calls && r[1].calls && r[2].calls && r[3].calls;
}

static void test_routing_and_pushes(void **state)
{
	struct agent a;
	struct client *c = client_new();
	struct rec r[4] = { 0 };
	struct pushes ps = { 0 };
	int64_t ids[4];
	char err[256];
	cJSON *args = cJSON_CreateObject();
	int fd = agent_start(&a, script_reverse);

	(void)state;
	cJSON_AddNumberToObject(args, "interval", 0.5);
	client_set_push_handler(c, push_cb, &ps);
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	/* Pipelined during the handshake: they go out after hello. */
	ids[0] = client_request(c, PROTO_CMD_STATUS, NULL, rec_cb, &r[0]);
	ids[1] = client_request(c, PROTO_CMD_SUBSCRIBE, args, rec_cb, &r[1]);
	ids[2] = client_request(c, PROTO_CMD_TOP, NULL, rec_cb, &r[2]);
	ids[3] = client_request(c, PROTO_CMD_SNAPSHOT, NULL, rec_cb, &r[3]);
	for (int i = 0; i < 4; i++)
		assert_true(ids[i] > 0);
	assert_true(ids[0] < ids[1] && ids[1] < ids[2] && ids[2] < ids[3]);
	arrival = 0;
	assert_true(pump(c, all_four, r, 5000));
	assert_true(pump(c, int_at_least_1, &ps.last, 5000));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].id, (uint64_t)ids[i]);
		assert_int_equal(r[i].order, 4 - i);
	}
	assert_true(r[0].ok);
	assert_string_equal(cJSON_GetObjectItem(r[0].result, "cmd")->valuestring, "status");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(r[0].result, "args")));
	assert_true(r[1].ok);
	assert_string_equal(cJSON_GetObjectItem(r[1].result, "cmd")->valuestring, "subscribe");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r[1].result, "args")));
	assert_false(r[2].ok);
	assert_false(r[2].local);
	assert_int_equal(r[2].code, PROTO_ERR_NOT_TRACING);
	assert_string_equal(r[2].code_name, "not_tracing");
	assert_string_equal(r[2].message, "tracemalloc is not tracing");
	assert_true(r[3].ok);
	/* Both pushes arrived, in order. */
	while (ps.n < 2 && pump(c, int_at_least_1, &ps.n, 100) && ps.n < 2) {
		struct pollfd p;

		client_pollfd(c, &p);
		if (poll(&p, 1, 1000) > 0)
			client_handle(c, p.revents);
	}
	assert_int_equal(ps.n, 2);
	assert_int_equal(ps.last, 2);
	assert_int_equal(client_state(c), CLIENT_READY);
	for (int i = 0; i < 4; i++)
		cJSON_Delete(r[i].result);
	client_free(c);
	agent_join(&a);
}

/* The agent reads a request, then dies without answering. */
static void script_drop(struct agent *a)
{
	agent_hello(a);
	cJSON_Delete(agent_recv(a));
	cJSON_Delete(agent_recv(a));
	/* close on return */
}

struct reentrant {
	struct client *c;
	int calls;
	int64_t new_id;
};

/* A callback that queues a request while the connection is failing. */
static void reentrant_cb(void *ud, struct client_reply *r)
{
	struct reentrant *re = ud;

	re->calls++;
	assert_false(r->ok);
	re->new_id = client_request(re->c, PROTO_CMD_STATUS, NULL, rec_cb, NULL);
}

static void test_drop_mid_request(void **state)
{
	struct agent a;
	struct client *c = client_new();
	struct rec r1 = { 0 };
	struct states st = { 0 };
	struct reentrant re = { .c = c };
	char err[256];
	int fd = agent_start(&a, script_drop);

	(void)state;
	client_set_state_handler(c, state_cb, &st);
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	assert_int_equal(client_wait_ready(c, 5000, err, sizeof err), 0);
	assert_true(client_request(c, PROTO_CMD_TOP, NULL, rec_cb, &r1) > 0);
	assert_true(client_request(c, PROTO_CMD_STATUS, NULL, reentrant_cb, &re) > 0);
	assert_true(pump(c, int_at_least_1, &st.closed, 5000));
	assert_int_equal(client_state(c), CLIENT_CLOSED);
	assert_int_equal(r1.calls, 1);
	assert_false(r1.ok);
	assert_true(r1.local);
	assert_int_equal(r1.code, -1);
	assert_string_equal(r1.code_name, "connection");
	assert_string_equal(r1.message, "the agent closed the connection");
	assert_int_equal(re.calls, 1);
	assert_int_equal(re.new_id, -1); /* refused: the connection is gone */
	assert_int_equal(st.closed, 1);
	assert_string_equal(st.message, "the agent closed the connection");
	assert_int_equal(client_handle(c, POLLIN), -1);
	assert_int_equal(st.closed, 1);
	assert_int_equal(client_request(c, PROTO_CMD_STATUS, NULL, rec_cb, &r1), -1);
	assert_int_equal(client_call(c, PROTO_CMD_STATUS, NULL, 100, NULL, err, sizeof err), -1);
	assert_string_equal(err, "the agent closed the connection");
	client_free(c);
	agent_join(&a);
}

static void script_version_2(struct agent *a)
{
	a->hello_protocol = 2;
	agent_hello(a);
	cJSON_Delete(agent_recv(a));
	cJSON_Delete(agent_recv(a));
}

static void test_version_mismatch(void **state)
{
	struct agent a;
	struct client *c = client_new();
	struct rec r = { 0 };
	char err[256];
	const char *want = "the agent speaks protocol version 2 but this pmt-top speaks 1 "
			   "(use a pmt-top and agent of the same release)";
	int fd = agent_start(&a, script_version_2);

	(void)state;
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	assert_true(client_request(c, PROTO_CMD_STATUS, NULL, rec_cb, &r) > 0);
	agent_run(&a);
	assert_int_equal(client_wait_ready(c, 5000, err, sizeof err), -1);
	assert_string_equal(err, want);
	assert_int_equal(client_state(c), CLIENT_CLOSED);
	assert_null(client_hello(c));
	/* The pipelined request learns why. */
	assert_int_equal(r.calls, 1);
	assert_true(r.local);
	assert_string_equal(r.message, want);
	client_free(c);
	agent_join(&a);
}

static void script_version_error(struct agent *a)
{
	cJSON *req = agent_recv(a);

	agent_sendf(a, "{\"id\":%.0f,\"ok\":false,\"error\":{\"code\":\"version\",\"message\":"
		    "\"this agent supports protocol 3 only\"}}", req_id(req));
	cJSON_Delete(req);
}

static void script_bad_hello(struct agent *a)
{
	cJSON *req = agent_recv(a);

	agent_sendf(a, "{\"id\":%.0f,\"ok\":true,\"result\":{\"protocol\":1}}", req_id(req));
	cJSON_Delete(req);
	cJSON_Delete(agent_recv(a));
}

static void test_hello_refused_or_invalid(void **state)
{
	struct agent a;
	struct client *c = client_new();
	char err[256];
	int fd = agent_start(&a, script_version_error);

	(void)state;
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	assert_int_equal(client_wait_ready(c, 5000, err, sizeof err), -1);
	assert_string_equal(err, "the agent does not support protocol version 1: this agent "
			    "supports protocol 3 only (use a pmt-top and agent of the same release)");
	agent_join(&a);

	/* The same client object can be attached again after a close. */
	fd = agent_start(&a, script_bad_hello);
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	assert_int_equal(client_wait_ready(c, 5000, err, sizeof err), -1);
	assert_string_equal(err, "the agent's hello reply is invalid: hello result: missing \"agent\"");
	client_free(c);
	agent_join(&a);
}

/* Protocol violations after the handshake close the connection. */
static void script_garbage(struct agent *a)
{
	agent_hello(a);
	cJSON *req = agent_recv(a);
	agent_sendf(a, "{\"id\":%.0f,\"ok\":true,\"result\":[]}", req_id(req));
	cJSON_Delete(req);
	cJSON_Delete(agent_recv(a));
}

static void script_unknown_id(struct agent *a)
{
	agent_hello(a);
	cJSON_Delete(agent_recv(a));
	agent_sendf(a, "{\"id\":4242,\"ok\":true,\"result\":{}}");
	cJSON_Delete(agent_recv(a));
}

static void script_bad_frame(struct agent *a)
{
	agent_hello(a);
	cJSON_Delete(agent_recv(a));
	agent_sendf(a, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad_frame\",\"message\":"
		    "\"frame is not JSON\"}}");
	cJSON_Delete(agent_recv(a));
}

static void check_violation(agent_script script, const char *want)
{
	struct agent a;
	struct client *c = client_new();
	char err[256];
	int fd = agent_start(&a, script);

	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	assert_int_equal(client_call(c, PROTO_CMD_STATUS, NULL, 5000, NULL, err, sizeof err), -1);
	assert_string_equal(err, want);
	assert_int_equal(client_state(c), CLIENT_CLOSED);
	assert_string_equal(client_error(c), want);
	assert_int_equal(client_last_error_code(c), -1);
	client_free(c);
	agent_join(&a);
}

static void test_protocol_violations(void **state)
{
	(void)state;
	check_violation(script_garbage, "the agent sent an invalid message: reply: \"result\" "
			"must be an object, got an array");
	check_violation(script_unknown_id, "the agent replied to request 4242, which was never sent");
	check_violation(script_bad_frame, "the agent could not read a request: frame is not JSON "
			"(bad_frame)");
}

/* client_call: success, agent error, timeout with a late reply. */
static void script_calls(struct agent *a)
{
	cJSON *req, *late;

	agent_hello(a);
	req = agent_recv(a); /* status: answered */
	agent_sendf(a, "{\"id\":%.0f,\"ok\":true,\"result\":{\"time\":1.0,\"tracing\":false,"
		    "\"nframe\":1,\"started_by_agent\":false,\"traced_current\":0,\"traced_peak\":0,"
		    "\"tracemalloc_memory\":0,\"gc_counts\":[1,2,3],\"gc_thresholds\":[700,10,10],"
		    "\"gc_objects\":null,\"gc_collections\":[0,0,0],\"threads\":2}}", req_id(req));
	cJSON_Delete(req);
	req = agent_recv(a); /* reset_peak: refused */
	agent_sendf(a, "{\"id\":%.0f,\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":"
		    "\"reset_peak needs Python 3.9\"}}", req_id(req));
	cJSON_Delete(req);
	late = agent_recv(a); /* top: answered only after the client gave up */
	agent_wait_release(a);
	agent_sendf(a, "{\"id\":%.0f,\"ok\":true,\"result\":{\"late\":true}}", req_id(late));
	cJSON_Delete(late);
	req = agent_recv(a); /* detach */
	agent_sendf(a, "{\"id\":%.0f,\"ok\":true,\"result\":{\"detached\":true}}", req_id(req));
	cJSON_Delete(req);
}

static void test_call(void **state)
{
	struct agent a;
	struct client *c = client_new();
	struct msg_status st;
	char err[256];
	cJSON *res = NULL;
	int fd = agent_start(&a, script_calls);

	(void)state;
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	assert_int_equal(client_call(c, PROTO_CMD_STATUS, NULL, 5000, &res, err, sizeof err), 0);
	assert_int_equal(msg_decode_status(res, &st, err, sizeof err), 0);
	assert_int_equal(st.threads, 2);
	assert_false(st.has_gc_objects);
	cJSON_Delete(res);

	assert_int_equal(client_call(c, PROTO_CMD_RESET_PEAK, NULL, 5000, &res, err, sizeof err), -1);
	assert_null(res);
	assert_string_equal(err, "reset_peak failed: reset_peak needs Python 3.9 (unavailable)");
	assert_int_equal(client_last_error_code(c), PROTO_ERR_UNAVAILABLE);
	assert_int_equal(client_state(c), CLIENT_READY);

	assert_int_equal(client_call(c, PROTO_CMD_TOP, NULL, 200, &res, err, sizeof err), -1);
	assert_string_equal(err, "no reply to \"top\" from the agent within 200 ms");
	assert_int_equal(client_state(c), CLIENT_READY);
	/* The late reply is discarded; the next call gets its own reply. */
	close(a.release[1]);
	a.release[1] = open("/dev/null", O_RDONLY);
	assert_int_equal(client_call(c, PROTO_CMD_DETACH, NULL, 5000, &res, err, sizeof err), 0);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "detached")));
	cJSON_Delete(res);
	client_free(c);
	agent_join(&a);
}

/* Text requests: the result's bytes, whatever the envelope looks like. */
static void script_text(struct agent *a)
{
	cJSON *req;

	agent_hello(a);
	req = agent_recv(a); /* a push first, then the plain reply */
	agent_sendf(a, "{\"push\":\"status\",\"data\":{}}");
	agent_sendf(a, "{\"id\":%.0f,\"ok\":true,\"result\":{\"s\":\"}]\\\"{\",\"n\":[1,{}]}}", req_id(req));
	cJSON_Delete(req);
	req = agent_recv(a); /* members in another order, spaces */
	agent_sendf(a, " { \"result\" : {\"a\":1} , \"ok\" : true, \"id\" : %.0f } ", req_id(req));
	cJSON_Delete(req);
	req = agent_recv(a); /* an escaped key: only msg_decode reads it */
	agent_sendf(a, "{\"\\u0069d\":%.0f,\"ok\":true,\"result\":{\"b\":2}}", req_id(req));
	cJSON_Delete(req);
	req = agent_recv(a); /* an error */
	agent_sendf(a, "{\"id\":%.0f,\"ok\":false,\"error\":{\"code\":\"not_tracing\",\"message\":"
		    "\"tracemalloc is not tracing\"}}", req_id(req));
	cJSON_Delete(req);
}

struct text_got {
	char text[256];
	int calls;
};

static void text_cb(void *ud, char *text, size_t len)
{
	struct text_got *g = ud;

	g->calls++;
	snprintf(g->text, sizeof g->text, "%.*s", (int)len, text);
}

static void test_text_call(void **state)
{
	struct agent a;
	struct client *c = client_new();
	struct text_got g = { "", 0 };
	char err[256];
	int fd = agent_start(&a, script_text);

	(void)state;
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	assert_int_equal(client_call_text(c, PROTO_CMD_SNAPSHOT, NULL, 5000, text_cb, &g, err, sizeof err), 0);
	assert_int_equal(g.calls, 1);
	assert_string_equal(g.text, "{\"s\":\"}]\\\"{\",\"n\":[1,{}]}");
	assert_int_equal(client_call_text(c, PROTO_CMD_SNAPSHOT, NULL, 5000, text_cb, &g, err, sizeof err), 0);
	assert_string_equal(g.text, "{\"a\":1}");
	assert_int_equal(client_call_text(c, PROTO_CMD_SNAPSHOT, NULL, 5000, text_cb, &g, err, sizeof err), 0);
	assert_string_equal(g.text, "{\"b\":2}");
	assert_int_equal(g.calls, 3);
	assert_int_equal(client_call_text(c, PROTO_CMD_SNAPSHOT, NULL, 5000, text_cb, &g, err, sizeof err), -1);
	assert_int_equal(g.calls, 3);
	assert_string_equal(err, "snapshot failed: tracemalloc is not tracing (not_tracing)");
	assert_int_equal(client_last_error_code(c), PROTO_ERR_NOT_TRACING);
	client_free(c);
	agent_join(&a);
}

/* A 50 MB reply, written in large pieces, read in pieces by the client. */
static void script_big(struct agent *a)
{
	cJSON *req;
	char *buf, head[64];
	int n;

	agent_hello(a);
	req = agent_recv(a);
	n = snprintf(head, sizeof head, "{\"id\":%.0f,\"ok\":true,\"result\":{\"blob\":\"",
		     req_id(req));
	cJSON_Delete(req);
	buf = malloc((size_t)n + a->big + 4);
	memcpy(buf, head, (size_t)n);
	for (size_t i = 0; i < a->big; i++)
		buf[n + i] = (char)('a' + i % 26);
	memcpy(buf + n + a->big, "\"}}\n", 4);
	agent_send(a, buf, (size_t)n + a->big + 4);
	free(buf);
	cJSON_Delete(agent_recv(a));
}

static void test_big_reply(void **state)
{
	struct agent a;
	struct client *c = client_new();
	char err[256];
	cJSON *res = NULL, *blob;
	int fd = agent_start(&a, script_big);
	struct timespec t0, t1;

	(void)state;
	a.big = 50u * 1000 * 1000;
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (client_call(c, PROTO_CMD_SNAPSHOT, NULL, 60000, &res, err, sizeof err) != 0)
		fail_msg("%s", err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	blob = cJSON_GetObjectItem(res, "blob");
	assert_true(cJSON_IsString(blob));
	assert_int_equal(strlen(blob->valuestring), a.big);
	assert_int_equal(blob->valuestring[a.big - 1], 'a' + (a.big - 1) % 26);
	print_message("50 MB reply: %.3f s\n", (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	cJSON_Delete(res);
	client_free(c);
	agent_join(&a);
}

/* client_connect against a real listening socket in a private runtime dir. */
struct listener {
	int lfd;
	pthread_t th;
};

static void *serve_one(void *p)
{
	struct listener *l = p;

	/* Connections refused by the client's pid check arrive first: skip them. */
	for (;;) {
		struct agent a;
		int cfd = accept(l->lfd, NULL, NULL);
		bool served;

		if (cfd < 0)
			return NULL;
		memset(&a, 0, sizeof a);
		a.fd = cfd;
		a.hello_protocol = PROTO_VERSION;
		frame_reader_init(&a.rd, PROTO_MAX_REQUEST);
		served = agent_hello(&a) >= 0;
		if (served)
			cJSON_Delete(agent_recv(&a));
		frame_reader_done(&a.rd);
		close(cfd);
		if (served)
			return NULL;
	}
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

struct rt_fixture {
	char base[64];
	char *saved_env;
	struct listener l;
	bool thread;
};

static int rt_setup(void **state)
{
	struct rt_fixture *f = calloc(1, sizeof *f);
	const char *old = getenv("PMT_TOP_RUNTIME_DIR");

	snprintf(f->base, sizeof f->base, "/tmp/pmt-ipc-client-XXXXXX");
	if (mkdtemp(f->base) == NULL)
		return -1;
	f->saved_env = old ? strdup(old) : NULL;
	f->l.lfd = -1;
	setenv("PMT_TOP_RUNTIME_DIR", f->base, 1);
	*state = f;
	return 0;
}

/* Runs even when the test failed: stop the server, remove every file. */
static int rt_teardown(void **state)
{
	struct rt_fixture *f = *state;

	if (f->l.lfd >= 0) {
		shutdown(f->l.lfd, SHUT_RDWR); /* wakes a blocked accept() */
		if (f->thread)
			pthread_join(f->l.th, NULL);
		close(f->l.lfd);
	}
	nftw(f->base, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	if (f->saved_env)
		setenv("PMT_TOP_RUNTIME_DIR", f->saved_env, 1);
	else
		unsetenv("PMT_TOP_RUNTIME_DIR");
	free(f->saved_env);
	free(f);
	return 0;
}

static void test_connect_runtime_dir(void **state)
{
	struct rt_fixture *f = *state;
	char path[256], err[512], want[400];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct client *c = client_new();

	assert_int_equal(sock_path_for_pid(getpid(), false, path, sizeof path, err, sizeof err), 0);

	/* Nothing listening yet. */
	assert_int_equal(client_connect(c, getpid(), NULL, err, sizeof err), -1);
	snprintf(want, sizeof want, "no agent is listening for pid %ld (socket %s missing)",
		 (long)getpid(), path);
	assert_string_equal(err, want);
	assert_int_equal(client_state(c), CLIENT_IDLE);

	f->l.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(strlen(path) < sizeof sa.sun_path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(f->l.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->l.lfd, 4), 0);

	/* --socket pointing at a server that is not the pid asked for (a live
	 * process of ours: our parent). */
	assert_int_equal(client_connect(c, getppid(), path, err, sizeof err), -1);
	snprintf(want, sizeof want, "socket %s belongs to pid %ld, not %ld", path, (long)getpid(),
		 (long)getppid());
	assert_string_equal(err, want);

	assert_int_equal(pthread_create(&f->l.th, NULL, serve_one, &f->l), 0);
	f->thread = true;
	if (client_connect(c, getpid(), NULL, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_int_equal(client_wait_ready(c, 5000, err, sizeof err), 0);
	assert_int_equal(client_hello(c)->pid, getpid());
	client_free(c);
}

/* A reply split into single bytes, and many replies in one write. */
static void script_dribble(struct agent *a)
{
	cJSON *reqs[3];
	char buf[1024];
	int n = 0;

	agent_hello(a);
	for (int i = 0; i < 3; i++)
		reqs[i] = agent_recv(a);
	n = snprintf(buf, sizeof buf, "{\"id\":%.0f,\"ok\":true,\"result\":{\"i\":0}}\n",
		     req_id(reqs[0]));
	for (int i = 0; i < n; i++) {
		struct timespec ts = { 0, 200 * 1000 };

		agent_send(a, buf + i, 1);
		nanosleep(&ts, NULL);
	}
	n = snprintf(buf, sizeof buf,
		     "{\"id\":%.0f,\"ok\":true,\"result\":{\"i\":1}}\n"
		     "{\"push\":\"status\",\"data\":{\"n\":7}}\n"
		     "{\"id\":%.0f,\"ok\":true,\"result\":{\"i\":2}}\n",
		     req_id(reqs[1]), req_id(reqs[2]));
	agent_send(a, buf, (size_t)n);
	for (int i = 0; i < 3; i++)
		cJSON_Delete(reqs[i]);
	cJSON_Delete(agent_recv(a));
}

static bool three(void *p)
{
	struct rec *r = p;

	return r[0].calls && r[1].calls && r[2].calls;
}

static void test_split_and_batched_frames(void **state)
{
	struct agent a;
	struct client *c = client_new();
	struct rec r[3] = { 0 };
	struct pushes ps = { 0 };
	char err[256];
	int fd = agent_start(&a, script_dribble);

	(void)state;
	client_set_push_handler(c, push_cb, &ps);
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	for (int i = 0; i < 3; i++)
		assert_true(client_request(c, PROTO_CMD_STATUS, NULL, rec_cb, &r[i]) > 0);
	assert_true(pump(c, three, r, 5000));
	for (int i = 0; i < 3; i++) {
		assert_true(r[i].ok);
		assert_int_equal(cJSON_GetObjectItem(r[i].result, "i")->valuedouble, i);
		cJSON_Delete(r[i].result);
	}
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.last, 7);
	client_free(c);
	agent_join(&a);
}

/* Many large requests: more than the socket buffer holds, so writes are partial. */
#define BULK_REQUESTS 200
#define BULK_PAD 60000

static void script_bulk(struct agent *a)
{
	agent_hello(a);
	for (int i = 0; i < BULK_REQUESTS; i++) {
		cJSON *req = agent_recv(a), *pad;

		if (req == NULL) {
			agent_problem(a, "request %d missing", i);
			return;
		}
		pad = cJSON_GetObjectItem(cJSON_GetObjectItem(req, "args"), "include");
		pad = cJSON_GetArrayItem(pad, 0);
		agent_sendf(a, "{\"id\":%.0f,\"ok\":true,\"result\":{\"len\":%zu}}", req_id(req),
			    cJSON_IsString(pad) ? strlen(pad->valuestring) : (size_t)0);
		cJSON_Delete(req);
	}
	cJSON_Delete(agent_recv(a));
}

struct bulk {
	int done;
	int bad;
};

static void bulk_cb(void *ud, struct client_reply *r)
{
	struct bulk *b = ud;

	b->done++;
	if (!r->ok || cJSON_GetObjectItem(r->result, "len")->valuedouble != BULK_PAD)
		b->bad++;
}

static bool bulk_done(void *p)
{
	return ((struct bulk *)p)->done == BULK_REQUESTS;
}

static void test_partial_writes(void **state)
{
	struct agent a;
	struct client *c = client_new();
	struct bulk b = { 0 };
	char err[256], *pad = malloc(BULK_PAD + 1);
	struct pollfd p;
	int fd = agent_start(&a, script_bulk);

	(void)state;
	memset(pad, 'q', BULK_PAD);
	pad[BULK_PAD] = '\0';
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	for (int i = 0; i < BULK_REQUESTS; i++) {
		cJSON *args = cJSON_CreateObject(), *inc = cJSON_AddArrayToObject(args, "include");

		cJSON_AddItemToArray(inc, cJSON_CreateString(pad));
		assert_true(client_request(c, PROTO_CMD_TOP, args, bulk_cb, &b) > 0);
	}
	/* Nothing is written until the loop runs; then it takes many rounds. */
	client_pollfd(c, &p);
	assert_true(p.events & POLLOUT);
	agent_run(&a);
	assert_true(pump(c, bulk_done, &b, 20000));
	assert_int_equal(b.bad, 0);
	client_pollfd(c, &p);
	assert_int_equal(p.events, POLLIN);
	client_free(c);
	free(pad);
	agent_join(&a);
}

/*
 * Robustness: after a good handshake the agent sends mutated frames and
 * hangs up. Whatever arrives, every request gets exactly one callback, the
 * close is reported exactly once, and ASan finds nothing.
 */
static uint64_t frng = 0x243f6a8885a308d3ull;

static uint64_t frnd(void)
{
	frng ^= frng >> 12;
	frng ^= frng << 25;
	frng ^= frng >> 27;
	return frng * 2685821657736338717ull;
}

static void once_cb(void *ud, struct client_reply *r)
{
	int *calls = ud;

	(*calls)++;
	if (r->ok)
		cJSON_Delete(client_reply_take_result(r));
}

static void test_fuzz_replies(void **state)
{
	static const char *const seeds[] = {
		"{\"id\":2,\"ok\":true,\"result\":{\"a\":1}}",
		"{\"id\":3,\"ok\":false,\"error\":{\"code\":\"bad_args\",\"message\":\"m\"}}",
		"{\"push\":\"status\",\"data\":{\"n\":1}}",
		"{\"id\":4,\"ok\":true,\"result\":{}}",
		"{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad_frame\",\"message\":\"x\"}}",
	};
	int iters = 3000, closed_total = 0;

	(void)state;
	for (int it = 0; it < iters; it++) {
		int sv[2], calls[3] = { 0 }, closes = 0;
		struct client *c = client_new();
		struct states st = { 0 };
		char err[256], buf[8192], hello[1024];
		size_t at = 0;
		int n;

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		client_set_state_handler(c, state_cb, &st);
		assert_int_equal(client_attach_fd(c, sv[0], err, sizeof err), 0);
		for (int i = 0; i < 3; i++)
			assert_true(client_request(c, PROTO_CMD_STATUS, NULL, once_cb, &calls[i]) > 0);
		n = snprintf(hello, sizeof hello, hello_fmt, 1.0, PROTO_VERSION, 1);
		memcpy(buf, hello, (size_t)n);
		buf[n] = '\n';
		at = (size_t)n + 1;
		for (int f = 0; f < 4; f++) {
			const char *sd = seeds[frnd() % 5];
			size_t l = strlen(sd);

			memcpy(buf + at, sd, l);
			for (int m = (int)(frnd() % 3); m > 0; m--) {
				size_t pos = frnd() % l;

				buf[at + pos] = "{}[]\":,0123456789xn\n"[frnd() % 21];
			}
			if (frnd() % 4 == 0)
				l = frnd() % (l + 1);
			at += l;
			buf[at++] = '\n';
		}
		assert_int_equal(write(sv[1], buf, at), (ssize_t)at);
		close(sv[1]);
		for (int spin = 0; spin < 1000 && client_state(c) != CLIENT_CLOSED; spin++) {
			struct pollfd p;

			client_pollfd(c, &p);
			if (poll(&p, 1, 1000) > 0)
				client_handle(c, p.revents);
		}
		assert_int_equal(client_state(c), CLIENT_CLOSED);
		assert_true(client_error(c)[0] != '\0');
		closes = st.closed;
		assert_int_equal(closes, 1);
		for (int i = 0; i < 3; i++)
			assert_int_equal(calls[i], 1);
		closed_total += closes;
		client_free(c);
	}
	assert_int_equal(closed_total, iters);
}

/* ---- the agent's word on the connection: busy, timeout ---- */

static const char busy_frame[] = "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":"
				 "\"all 32 connections of this agent are in use by active clients\"}}";

/* At its connection cap the agent says so at once, without reading, and
 * closes: our hello is still unread in its socket. */
static void script_busy_at_accept(struct agent *a)
{
	agent_sendf(a, "%s", busy_frame);
}

/* A busy answer to hello itself. */
static void script_busy_hello(struct agent *a)
{
	cJSON *req = agent_recv(a);

	agent_sendf(a, "{\"id\":%.0f,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"too many "
		    "requests are waiting\"}}", req_id(req));
	cJSON_Delete(req);
}

static void script_timeout_later(struct agent *a)
{
	agent_hello(a);
	cJSON_Delete(agent_recv(a)); /* top: never answered */
	agent_wait_release(a);
	agent_sendf(a, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"timeout\",\"message\":"
		    "\"no request for 60 s; closing the idle connection\"}}");
}

static void script_busy_request(struct agent *a)
{
	agent_hello(a);
	cJSON *req = agent_recv(a);
	agent_sendf(a, "{\"id\":%.0f,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"8 heavy "
		    "requests of this connection were already waiting; wait for their replies\"}}", req_id(req));
	cJSON_Delete(req);
	cJSON_Delete(agent_recv(a));
}

static bool closed_once(void *p)
{
	return ((struct states *)p)->closed >= 1;
}

static void test_busy_and_timeout(void **state)
{
	struct agent a;
	struct client *c = client_new();
	struct states st = { 0 };
	struct rec r = { 0 };
	char err[512], want[512];
	int fd;

	(void)state;
	client_set_state_handler(c, state_cb, &st);
	fd = agent_start(&a, script_busy_at_accept);
	agent_run(&a);
	agent_join(&a); /* gone before the client even wrote its hello */
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	assert_int_equal(client_wait_ready(c, 5000, err, sizeof err), -1);
	snprintf(want, sizeof want, "the agent in pid %d has no free connection (all 32 connections of "
		 "this agent are in use by active clients); close other pmt-top sessions or try again",
		 (int)getpid());
	assert_string_equal(err, want);
	assert_string_equal(st.message, want);
	assert_int_equal(client_close_code(c), PROTO_ERR_BUSY);
	assert_int_equal(client_peer_pid(c), getpid());

	fd = agent_start(&a, script_busy_hello);
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	assert_int_equal(client_close_code(c), -1); /* a new connection forgets the old reason */
	agent_run(&a);
	assert_int_equal(client_wait_ready(c, 5000, err, sizeof err), -1);
	snprintf(want, sizeof want, "the agent in pid %d has no free connection (too many requests are "
		 "waiting); close other pmt-top sessions or try again", (int)getpid());
	assert_string_equal(err, want);
	assert_int_equal(client_close_code(c), PROTO_ERR_BUSY);
	agent_join(&a);

	/* Mid-session, the idle connection closed: the pending request hears why. */
	fd = agent_start(&a, script_timeout_later);
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	assert_int_equal(client_wait_ready(c, 5000, err, sizeof err), 0);
	assert_true(client_request(c, PROTO_CMD_TOP, NULL, rec_cb, &r) > 0);
	st.closed = 0;
	close(a.release[1]);
	a.release[1] = open("/dev/null", O_RDONLY);
	assert_true(pump(c, closed_once, &st, 5000));
	snprintf(want, sizeof want, "the agent in pid %d closed the idle connection (no request for 60 s; "
		 "closing the idle connection)", (int)getpid());
	assert_string_equal(client_error(c), want);
	assert_int_equal(client_close_code(c), PROTO_ERR_TIMEOUT);
	assert_int_equal(r.calls, 1);
	assert_true(r.local);
	assert_string_equal(r.message, want);
	agent_join(&a);

	/* busy for one request is that request's error; the connection stays. */
	fd = agent_start(&a, script_busy_request);
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	agent_run(&a);
	assert_int_equal(client_call(c, PROTO_CMD_SNAPSHOT, NULL, 5000, NULL, err, sizeof err), -1);
	assert_string_equal(err, "snapshot failed: 8 heavy requests of this connection were already "
			    "waiting; wait for their replies (busy)");
	assert_int_equal(client_last_error_code(c), PROTO_ERR_BUSY);
	assert_int_equal(client_state(c), CLIENT_READY);
	assert_int_equal(client_close_code(c), -1);
	client_free(c);
	agent_join(&a);
}

/* ---- keepalive, on a fake clock ---- */

struct fake_clock {
	double ms;
};

static double fake_now(void *ud)
{
	return ((struct fake_clock *)ud)->ms;
}

static const char status_fmt[] =
	"{\"id\":%.0f,\"ok\":true,\"result\":{\"time\":1.0,\"tracing\":false,\"nframe\":1,"
	"\"started_by_agent\":false,\"traced_current\":0,\"traced_peak\":0,\"tracemalloc_memory\":0,"
	"\"gc_counts\":[1,2,3],\"gc_thresholds\":[700,10,10],\"gc_objects\":null,"
	"\"gc_collections\":[0,0,0],\"threads\":2}}";

/* Takes the next request, which must be CMD, and answers it. */
static void agent_expect(struct agent *a, const char *cmd, bool wait_release)
{
	cJSON *req = agent_recv(a);

	if (req == NULL) {
		agent_problem(a, "expected %s, the client left", cmd);
		return;
	}
	if (strcmp(req_cmd(req), cmd) != 0)
		agent_problem(a, "expected %s, got %s", cmd, req_cmd(req));
	if (wait_release)
		agent_wait_release(a);
	if (strcmp(cmd, "status") == 0)
		agent_sendf(a, status_fmt, req_id(req));
	else
		agent_sendf(a, "{\"id\":%.0f,\"ok\":true,\"result\":{}}", req_id(req));
	cJSON_Delete(req);
}

/* Every request in the order the test makes them: a keepalive sent when
 * it should not be shows up here as the wrong command. */
static void script_keepalive(struct agent *a)
{
	agent_hello(a);
	agent_expect(a, "status", false);    /* the first keepalive */
	agent_expect(a, "top", true);        /* outstanding for a long time */
	agent_expect(a, "subscribe", false); /* interval 1 */
	agent_expect(a, "subscribe", false); /* interval 0 */
	agent_expect(a, "status", false);    /* the second keepalive */
	cJSON *more = agent_recv(a);
	if (more != NULL)
		agent_problem(a, "unexpected %s", req_cmd(more));
	cJSON_Delete(more);
}

static bool quiet_again(void *p)
{
	return client_timeout_ms(p) >= 0;
}

static bool have_reply(void *p)
{
	return ((struct rec *)p)->calls >= 1;
}

static void subscribe(struct client *c, double interval)
{
	struct rec r = { 0 };
	cJSON *args = cJSON_CreateObject();

	cJSON_AddNumberToObject(args, "interval", interval);
	assert_true(client_request(c, PROTO_CMD_SUBSCRIBE, args, rec_cb, &r) > 0);
	assert_true(pump(c, have_reply, &r, 5000));
	assert_true(r.ok);
	cJSON_Delete(r.result);
}

static void test_keepalive(void **state)
{
	struct agent a;
	struct client *c = client_new();
	struct fake_clock clk = { 1000 };
	struct rec r = { 0 };
	struct pollfd p;
	char err[256];
	int fd = agent_start(&a, script_keepalive);

	(void)state;
	client_set_clock(c, fake_now, &clk);
	assert_int_equal(client_timeout_ms(c), -1); /* not connected */
	assert_int_equal(client_attach_fd(c, fd, err, sizeof err), 0);
	assert_int_equal(client_timeout_ms(c), -1); /* handshake */
	agent_run(&a);
	assert_int_equal(client_wait_ready(c, 5000, err, sizeof err), 0);
	assert_int_equal(client_timeout_ms(c), CLIENT_KEEPALIVE_MS);

	/* Quiet for just under the limit: nothing; at the limit: one status. */
	clk.ms += CLIENT_KEEPALIVE_MS - 1;
	assert_int_equal(client_timeout_ms(c), 1);
	client_tick(c);
	client_pollfd(c, &p);
	assert_int_equal(p.events, POLLIN);
	clk.ms += 1;
	assert_int_equal(client_timeout_ms(c), 0);
	client_tick(c);
	/* Its reply is outstanding, or already in (tick reads what came). The
	 * agent's script checks that it went out, and only then. */
	int t = client_timeout_ms(c);
	assert_true(t == -1 || t == CLIENT_KEEPALIVE_MS);
	assert_true(pump(c, quiet_again, c, 5000));
	assert_int_equal(client_timeout_ms(c), CLIENT_KEEPALIVE_MS);

	/* A request of ours outstanding: the connection is not idle. */
	assert_true(client_request(c, PROTO_CMD_TOP, NULL, rec_cb, &r) > 0);
	clk.ms += 3 * CLIENT_KEEPALIVE_MS;
	assert_int_equal(client_timeout_ms(c), -1);
	client_tick(c);
	close(a.release[1]);
	a.release[1] = open("/dev/null", O_RDONLY);
	assert_true(pump(c, have_reply, &r, 5000));
	cJSON_Delete(r.result);
	assert_int_equal(client_timeout_ms(c), CLIENT_KEEPALIVE_MS); /* quiet from the reply on */

	/* Subscribed: pushes keep it alive; unsubscribed again: keepalive. */
	subscribe(c, 1);
	assert_int_equal(client_timeout_ms(c), -1);
	clk.ms += 3 * CLIENT_KEEPALIVE_MS;
	client_tick(c);
	subscribe(c, 0);
	assert_int_equal(client_timeout_ms(c), CLIENT_KEEPALIVE_MS);
	clk.ms += CLIENT_KEEPALIVE_MS;
	client_tick(c);
	assert_true(pump(c, quiet_again, c, 5000));

	client_set_keepalive(c, 0);
	assert_int_equal(client_timeout_ms(c), -1);
	client_free(c);
	agent_join(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_routing_and_pushes),
		cmocka_unit_test(test_drop_mid_request),
		cmocka_unit_test(test_version_mismatch),
		cmocka_unit_test(test_hello_refused_or_invalid),
		cmocka_unit_test(test_protocol_violations),
		cmocka_unit_test(test_call),
		cmocka_unit_test(test_text_call),
		cmocka_unit_test(test_big_reply),
		cmocka_unit_test_setup_teardown(test_connect_runtime_dir, rt_setup, rt_teardown),
		cmocka_unit_test(test_split_and_batched_frames),
		cmocka_unit_test(test_partial_writes),
		cmocka_unit_test(test_fuzz_replies),
		cmocka_unit_test(test_busy_and_timeout),
		cmocka_unit_test(test_keepalive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
