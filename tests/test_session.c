/*
 * test_session.c - the session's sampled-profiler logic (src/session) against
 * a scripted agent: a thread of this process listening on a real Unix socket
 * in a mkdtemp() directory, answering each command as the scenario says and
 * recording what it was asked. Covers the automatic profile_start (with the
 * options), the notice for each outcome, --no-profile, a profiler someone
 * else started, and that leaving stops only what this session started.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc/frame.h"
#include "session/session.h"

/* ---- the scripted agent ---- */

enum start_answer {
	START_OK,          /* runs, started by this request */
	START_UNAVAILABLE, /* error unavailable */
	START_RUNNING,     /* bad_args: already running (someone else's) */
	START_BAD_ARGS,    /* bad_args, and it does not run */
};

struct agent {
	bool capability;         /* hello lists "profile" */
	enum start_answer start;
	int lfd;
	pthread_t th;
	char dir[64], path[128];
	/* what it was asked (read after the thread ended) */
	char log[1024];
	char start_args[256];
	char problem[256];
};

static const char profile_status[] =
	"{\"available\":true,\"running\":%s,\"interval\":%d,\"exact\":false,\"nframe\":64,"
	"\"samples\":0,\"max_samples\":1048576,\"stacks\":0,\"max_stacks\":65536,"
	"\"dropped_samples\":0,\"dropped_stacks\":0,\"dropped_bytes\":0.0,\"total_samples\":0,"
	"\"nogil_bytes\":0.0,\"memory\":4096,\"live_bytes\":0.0,\"live_blocks\":0.0,"
	"\"elapsed\":0.0,\"hooks_installed\":3,\"hooks_on_top\":3,\"calls\":false,"
	"\"calls_mode\":null,\"functions_counted\":0,\"dropped_calls\":0,\"call_stacks\":0,"
	"\"call_stack_bytes\":0,\"started\":%s,\"lost_hooks\":0}";

static void send_line(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void reply_ok(int fd, double id, const char *result)
{
	char head[64];

	snprintf(head, sizeof head, "{\"id\":%.0f,\"ok\":true,\"result\":", id);
	send_line(fd, head);
	send_line(fd, result);
	send_line(fd, "}\n");
}

static void reply_err(int fd, double id, const char *code, const char *message)
{
	char buf[1024];

	snprintf(buf, sizeof buf, "{\"id\":%.0f,\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
		 id, code, message);
	send_line(fd, buf);
}

static void status_result(char *buf, size_t len, bool profiling)
{
	char prof[1200];

	snprintf(prof, sizeof prof, "{\"running\":%s,\"interval\":4096,\"exact\":false,\"samples\":0,"
		 "\"stacks\":0,\"memory\":4096,\"live_bytes\":0,\"dropped_samples\":0,\"calls\":false,"
		 "\"lost_hooks\":0}", profiling ? "true" : "false");
	snprintf(buf, len, "{\"time\":1763700001.0,\"tracing\":false,\"nframe\":1,\"started_by_agent\":false,"
		 "\"traced_current\":0,\"traced_peak\":0,\"tracemalloc_memory\":0,\"gc_counts\":[1,0,0],"
		 "\"gc_thresholds\":[700,10,10],\"gc_objects\":null,\"gc_collections\":[0,0,0],"
		 "\"threads\":1,\"profile\":%s}", prof);
}

static void serve(struct agent *a, int fd)
{
	struct frame_reader rd;
	bool profiling = a->start == START_RUNNING;
	char buf[4096];

	frame_reader_init(&rd, PROTO_MAX_REQUEST);
	for (;;) {
		const char *line;
		size_t len;
		enum frame_status st = frame_reader_next(&rd, &line, &len);

		if (st == FRAME_NONE) {
			if (frame_reader_read(&rd, fd) <= 0)
				break;
			continue;
		}
		if (st != FRAME_OK)
			break;
		cJSON *req = cJSON_ParseWithLength(line, len);
		const cJSON *cmdj = cJSON_GetObjectItem(req, "cmd");
		const char *cmd = cJSON_IsString(cmdj) ? cmdj->valuestring : "?";
		double id = cJSON_GetNumberValue(cJSON_GetObjectItem(req, "id"));

		strncat(a->log, cmd, sizeof a->log - strlen(a->log) - 2);
		strcat(a->log, " ");
		if (strcmp(cmd, "hello") == 0) {
			snprintf(buf, sizeof buf, "{\"protocol\":1,\"agent\":\"0.1.0\",\"pid\":%d,\"ppid\":1,"
				 "\"python\":\"3.12.1\",\"implementation\":\"cpython\",\"executable\":\"/usr/bin/python3\","
				 "\"argv\":[\"app.py\"],\"started\":1763700000.5,\"native\":true,"
				 "\"capabilities\":[\"status\",\"top\"%s]}", (int)getpid(),
				 a->capability ? ",\"profile\"" : "");
			reply_ok(fd, id, buf);
		} else if (strcmp(cmd, "subscribe") == 0) {
			reply_ok(fd, id, "{\"interval\":0.5}");
		} else if (strcmp(cmd, "status") == 0) {
			status_result(buf, sizeof buf, profiling);
			reply_ok(fd, id, buf);
		} else if (strcmp(cmd, "profile_start") == 0) {
			char *args = cJSON_PrintUnformatted(cJSON_GetObjectItem(req, "args"));
			const cJSON *iv = cJSON_GetObjectItem(cJSON_GetObjectItem(req, "args"), "interval");

			snprintf(a->start_args, sizeof a->start_args, "%s", args ? args : "null");
			free(args);
			switch (a->start) {
			case START_OK:
				profiling = true;
				snprintf(buf, sizeof buf, profile_status, "true",
					 cJSON_IsNumber(iv) ? (int)iv->valuedouble : 4096, "1763700000.75");
				reply_ok(fd, id, buf);
				break;
			case START_UNAVAILABLE:
				reply_err(fd, id, "unavailable", "_pmt_sampler: no module for this Python");
				break;
			case START_RUNNING:
				reply_err(fd, id, "bad_args", "the profiler is already running");
				break;
			case START_BAD_ARGS:
				reply_err(fd, id, "bad_args", "max_samples is too large");
				break;
			}
		} else if (strcmp(cmd, "profile_stop") == 0) {
			profiling = false;
			snprintf(buf, sizeof buf, profile_status, "false", 4096, "0.0");
			reply_ok(fd, id, buf);
		} else {
			reply_err(fd, id, "unknown_command", "not in this script");
		}
		cJSON_Delete(req);
	}
	frame_reader_done(&rd);
}

static void *agent_main(void *p)
{
	struct agent *a = p;
	int fd = accept(a->lfd, NULL, NULL);

	if (fd < 0) {
		snprintf(a->problem, sizeof a->problem, "accept: %s", strerror(errno));
		return NULL;
	}
	serve(a, fd);
	close(fd);
	return NULL;
}

static void agent_start(struct agent *a, bool capability, enum start_answer start)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(a, 0, sizeof *a);
	a->capability = capability;
	a->start = start;
	snprintf(a->dir, sizeof a->dir, "/tmp/pmt-session-XXXXXX");
	assert_non_null(mkdtemp(a->dir));
	snprintf(a->path, sizeof a->path, "%s/%d.sock", a->dir, (int)getpid());
	a->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(a->lfd >= 0);
	memcpy(sa.sun_path, a->path, strlen(a->path) + 1);
	assert_int_equal(bind(a->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(a->lfd, 1), 0);
	assert_int_equal(pthread_create(&a->th, NULL, agent_main, a), 0);
}

static void agent_join(struct agent *a)
{
	shutdown(a->lfd, SHUT_RDWR);
	pthread_join(a->th, NULL);
	close(a->lfd);
	unlink(a->path);
	rmdir(a->dir);
	if (a->problem[0])
		fail_msg("agent side: %s", a->problem);
}

/* ---- the session side ---- */

struct heard {
	char lines[8][600];
	int n;
	unsigned changed;
};

static void on_message(void *ud, enum session_msg kind, bool error, const char *text)
{
	struct heard *h = ud;

	(void)kind;
	(void)error;
	if (h->n < 8)
		snprintf(h->lines[h->n++], sizeof h->lines[0], "%s", text);
}

static void on_changed(void *ud, unsigned what)
{
	struct heard *h = ud;

	h->changed |= what;
}

static bool heard(const struct heard *h, const char *needle)
{
	for (int i = 0; i < h->n; i++)
		if (strstr(h->lines[i], needle) != NULL)
			return true;
	return false;
}

static struct session *open_session(struct agent *a, struct session_opts *so, struct heard *h)
{
	const struct session_events ev = { .changed = on_changed, .message = on_message, .ud = h };
	struct session *s;
	char err[512];

	memset(h, 0, sizeof *h);
	so->pid = getpid();
	so->socket = a->path;
	so->attach_timeout_ms = 5000;
	s = session_new(so, &ev);
	if (session_wait_ready(s, NULL, NULL, err, sizeof err) != 0)
		fail_msg("session_wait_ready: %s", err);
	return s;
}

static void test_starts_and_stops_its_profiler(void **state)
{
	struct agent a;
	struct session_opts so = { .profile_interval = 65536, .profile_calls = true };
	struct heard h;
	struct session *s;

	(void)state;
	agent_start(&a, true, START_OK);
	s = open_session(&a, &so, &h);
	assert_int_equal(session_wait_profile(s, NULL, 5000), SESSION_PROFILE_ON);
	assert_true(session_profile_ours(s));
	assert_string_equal(session_profile_notice(s),
			    "sampled profiler on: 1 sample per 64 KiB; --no-profile to opt out");
	assert_true(heard(&h, "sampled profiler on: 1 sample per 64 KiB"));
	assert_true(h.changed & SESSION_CHANGED_PROFILE);
	assert_non_null(session_profile_status(s));
	assert_int_equal(session_profile_status(s)->interval, 65536);
	assert_true(session_profile_status(s)->running);
	session_leave_clean(s);
	assert_true(heard(&h, "stopped the sampled profiler in pid"));
	assert_false(session_profile_ours(s));
	assert_int_equal(session_profile(s), SESSION_PROFILE_OFF);
	/* Nothing left to stop. */
	char err[256];
	assert_int_equal(session_profile_stop(s, err, sizeof err), 0);
	session_free(s);
	agent_join(&a);
	assert_string_equal(a.start_args, "{\"interval\":65536,\"calls\":true}");
	assert_non_null(strstr(a.log, "hello "));
	assert_non_null(strstr(a.log, "profile_start "));
	assert_non_null(strstr(a.log, "profile_stop "));
}

static void test_default_args(void **state)
{
	struct agent a;
	struct session_opts so = { 0 };
	struct heard h;
	struct session *s;

	(void)state;
	agent_start(&a, true, START_OK);
	s = open_session(&a, &so, &h);
	assert_int_equal(session_wait_profile(s, NULL, 5000), SESSION_PROFILE_ON);
	assert_string_equal(session_profile_notice(s),
			    "sampled profiler on: 1 sample per 4 KiB; --no-profile to opt out");
	session_free(s); /* without leaving clean: nothing more is sent */
	agent_join(&a);
	assert_string_equal(a.start_args, "{}");
	assert_null(strstr(a.log, "profile_stop"));
}

static void test_no_profile(void **state)
{
	struct agent a;
	struct session_opts so = { .no_profile = true };
	struct heard h;
	struct session *s;

	(void)state;
	agent_start(&a, true, START_OK);
	s = open_session(&a, &so, &h);
	assert_int_equal(session_wait_profile(s, NULL, 5000), SESSION_PROFILE_OFF);
	assert_string_equal(session_profile_notice(s), "sampled profiler off (--no-profile): tracemalloc only");
	assert_null(session_profile_status(s));
	session_leave_clean(s);
	session_free(s);
	agent_join(&a);
	assert_null(strstr(a.log, "profile_"));
}

static void test_no_capability(void **state)
{
	struct agent a;
	struct session_opts so = { 0 };
	struct heard h;
	struct session *s;
	char want[300];

	(void)state;
	agent_start(&a, false, START_OK);
	s = open_session(&a, &so, &h);
	assert_int_equal(session_wait_profile(s, NULL, 5000), SESSION_PROFILE_UNAVAILABLE);
	snprintf(want, sizeof want, "no sampled profiler in pid %d: the agent does not offer one", (int)getpid());
	assert_non_null(strstr(session_profile_notice(s), want));
	assert_non_null(strstr(session_profile_notice(s), "; tracemalloc is used instead"));
	session_leave_clean(s);
	session_free(s);
	agent_join(&a);
	assert_null(strstr(a.log, "profile_"));
}

static void test_unavailable(void **state)
{
	struct agent a;
	struct session_opts so = { 0 };
	struct heard h;
	struct session *s;
	char want[300];

	(void)state;
	agent_start(&a, true, START_UNAVAILABLE);
	s = open_session(&a, &so, &h);
	assert_int_equal(session_wait_profile(s, NULL, 5000), SESSION_PROFILE_UNAVAILABLE);
	snprintf(want, sizeof want, "no sampled profiler in pid %d: _pmt_sampler: no module for this Python; "
		 "tracemalloc is used instead", (int)getpid());
	assert_string_equal(session_profile_notice(s), want);
	assert_true(heard(&h, want));
	session_leave_clean(s);
	session_free(s);
	agent_join(&a);
	assert_null(strstr(a.log, "profile_stop"));
}

static void test_someone_elses_profiler(void **state)
{
	struct agent a;
	struct session_opts so = { 0 };
	struct heard h;
	struct session *s;

	(void)state;
	agent_start(&a, true, START_RUNNING);
	s = open_session(&a, &so, &h);
	assert_int_equal(session_wait_profile(s, NULL, 5000), SESSION_PROFILE_ON);
	assert_false(session_profile_ours(s));
	assert_string_equal(session_profile_notice(s),
			    "sampled profiler on (started by another client): 1 sample per 4 KiB");
	session_leave_clean(s); /* leaves it running */
	session_free(s);
	agent_join(&a);
	assert_null(strstr(a.log, "profile_stop"));
}

static void test_refused(void **state)
{
	struct agent a;
	struct session_opts so = { 0 };
	struct heard h;
	struct session *s;
	char want[300];

	(void)state;
	agent_start(&a, true, START_BAD_ARGS);
	s = open_session(&a, &so, &h);
	assert_int_equal(session_wait_profile(s, NULL, 5000), SESSION_PROFILE_FAILED);
	snprintf(want, sizeof want, "could not start the sampled profiler in pid %d: max_samples is too large; "
		 "tracemalloc is used instead", (int)getpid());
	assert_string_equal(session_profile_notice(s), want);
	session_leave_clean(s);
	session_free(s);
	agent_join(&a);
	assert_null(strstr(a.log, "profile_stop"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_starts_and_stops_its_profiler),
		cmocka_unit_test(test_default_args),
		cmocka_unit_test(test_no_profile),
		cmocka_unit_test(test_no_capability),
		cmocka_unit_test(test_unavailable),
		cmocka_unit_test(test_someone_elses_profiler),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
