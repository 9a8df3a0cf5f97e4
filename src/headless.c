/*
 * headless.c - `pmt-top snapshot`, `diff` and `functions`: attach (loading the
 * agent when needed), ask, print a table or JSON, exit.
 */
#include "headless.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc/proc_sampler.h"
#include "base/monotime.h"
#include "snapshot/snapdiff.h"
#include "snapshot/snapshot.h"
#include "base/units.h"
#include "session/session.h"
#include "base/strsafe.h"
#include "base/xalloc.h"

#define ATTACH_TIMEOUT_MS 20000
#define CALL_TIMEOUT_MS 120000

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "pmt-top: MESSAGE" on stderr and return CODE. Messages quote the
 * agent and the target, so the line is made display-safe. */
static int fail(int code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	strsafe_eprintf("pmt-top: %s", msg);
	return code;
}

/* Session messages worth a line on stderr in a headless command: what was
 * switched off on leaving, and, for a person at a terminal (scripts get one
 * line, the outcome), once, why attaching takes long. */
static void on_message(void *ud, enum session_msg kind, bool error, const char *text)
{
	static bool said_waiting;
	(void)ud;
	(void)error;
	if (kind == SESSION_MSG_LEAVE || (kind == SESSION_MSG_WAITING && !said_waiting && isatty(STDERR_FILENO))) {
		said_waiting |= kind == SESSION_MSG_WAITING;
		strsafe_eprintf("pmt-top: %s", text);
	}
}

/* A session on o->pid whose agent answers (loaded first when none does), or
 * NULL after printing why, with *RC set to the exit code. */
static struct session *attach(const struct cli_opts *o, int *rc)
{
	const struct session_opts so = {
		.pid = o->pid,
		.socket = o->socket,
		.inject_method = o->inject_method,
		.no_inject = o->no_inject,
		.attach_timeout_ms = ATTACH_TIMEOUT_MS,
	};
	const struct session_events ev = { .message = on_message };
	struct session *s = session_new(&so, &ev);
	char err[1024];
	enum session_failure why;
	if (session_wait_ready(s, &interrupted, &why, err, sizeof err) == 0)
		return s;
	*rc = fail(why == SESSION_FAIL_NO_PROCESS ? CLI_EXIT_NO_PROCESS : CLI_EXIT_NO_AGENT, "%s", err);
	session_free(s);
	return NULL;
}

int headless_snapshot(const struct cli_opts *o)
{
	char err[512];
	int rc = CLI_EXIT_OK;
	struct session *c = attach(o, &rc);
	if (c == NULL)
		return rc;
	cJSON *args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "key", o->key ? o->key : "lineno");
	cJSON *result = NULL;
	if (session_call(c, PROTO_CMD_SNAPSHOT, args, CALL_TIMEOUT_MS, &result, err, sizeof err) < 0) {
		if (session_last_error_code(c) == PROTO_ERR_NOT_TRACING)
			rc = fail(CLI_EXIT_FAILURE, "tracemalloc is not tracing in pid %d: start it from the "
				  "interactive view (T), with `pmt-top run --trace N`, or in the program", (int)o->pid);
		else
			rc = fail(CLI_EXIT_FAILURE, "snapshot of pid %d failed: %s", (int)o->pid, err);
		goto done;
	}
	struct snapshot *s = snapshot_from_json(result, err, sizeof err);
	cJSON_Delete(result);
	if (s == NULL) {
		rc = fail(CLI_EXIT_FAILURE, "the agent's snapshot is malformed: %s", err);
		goto done;
	}
	snapshot_sort(s);
	if (o->output) {
		if (snapshot_save(s, o->output, err, sizeof err) < 0) {
			rc = fail(CLI_EXIT_FAILURE, "%s", err);
			snapshot_free(s);
			goto done;
		}
		strsafe_eprintf("pmt-top: saved %zu groups (%s traced) to %s", s->ngroups,
				units_bytes(err, sizeof err, (double)s->total_size), o->output);
	}
	/* With -o the file is the output; --json still prints the top-N. */
	if (!o->output || o->json)
		if (snapshot_print(stdout, s, (size_t)o->top, o->json) < 0)
			rc = fail(CLI_EXIT_FAILURE, "cannot write the output: %s", strerror(errno));
	snapshot_free(s);
done:
	session_free(c);
	return rc;
}

int headless_diff(const struct cli_opts *o)
{
	char err[512];
	int rc = CLI_EXIT_FAILURE;
	struct snapshot *a = NULL, *b = NULL;
	struct snapdiff *d = NULL;
	a = snapshot_load(o->diff_old, err, sizeof err);
	if (a == NULL) {
		fail(CLI_EXIT_FAILURE, "%s", err);
		goto done;
	}
	b = snapshot_load(o->diff_new, err, sizeof err);
	if (b == NULL) {
		fail(CLI_EXIT_FAILURE, "%s", err);
		goto done;
	}
	/* --key, or else the coarser of the two keys: both must match to join. */
	enum proto_key key = a->key > b->key ? b->key : a->key;
	if (a->key == PROTO_KEY_FILENAME || b->key == PROTO_KEY_FILENAME)
		key = PROTO_KEY_FILENAME;
	if (o->key && snapshot_key_from_name(o->key, &key) < 0) {
		fail(CLI_EXIT_USAGE, "unknown key %s", o->key);
		goto done;
	}
	struct snapshot **both[2] = { &a, &b };
	const char *names[2] = { o->diff_old, o->diff_new };
	for (int i = 0; i < 2; i++) {
		if ((*both[i])->key == key)
			continue;
		struct snapshot *r = snapshot_regroup(*both[i], key, err, sizeof err);
		if (r == NULL) {
			fail(CLI_EXIT_FAILURE, "%s: %s", names[i], err);
			goto done;
		}
		snapshot_free(*both[i]);
		*both[i] = r;
	}
	d = snapdiff_new(a, b, err, sizeof err);
	if (d == NULL) {
		fail(CLI_EXIT_FAILURE, "%s", err);
		goto done;
	}
	if (snapdiff_print(stdout, d, (size_t)o->top, o->json) < 0) {
		fail(CLI_EXIT_FAILURE, "cannot write the output: %s", strerror(errno));
		goto done;
	}
	rc = CLI_EXIT_OK;
done:
	snapdiff_free(d);
	snapshot_free(a);
	snapshot_free(b);
	return rc;
}

/* The function table as text; every string in it is the target's. */
static void print_functions(const struct msg_functions *t)
{
	char net[32], mx[32], gross[32], mean[32], mode[64], acc[64];
	printf("per-function memory, %s for %.1f s (%s; net and gross count %s)\n",
	       strsafe_shown(mode, sizeof mode, t->mode ? t->mode : "-"), t->elapsed,
	       t->native ? "C extension" : "pure-Python fallback, slower",
	       strsafe_shown(acc, sizeof acc, t->accounting ? t->accounting : "-"));
	printf("%12s %11s %11s %11s %11s  %s\n", "CALLS", "NET", "MAX", "GROSS", "MEAN", "FUNCTION");
	for (size_t i = 0; i < t->nrows; i++) {
		const struct msg_function *f = &t->rows[i];
		printf("%12" PRId64 " %11s %11s %11s %11s  ", f->calls,
		       units_bytes_signed(net, sizeof net, (double)f->net),
		       units_bytes_signed(mx, sizeof mx, (double)f->max),
		       units_bytes(gross, sizeof gross, (double)f->gross),
		       units_bytes_signed(mean, sizeof mean, (double)f->mean));
		strsafe_fputs(f->name, stdout);
		fputs("  ", stdout);
		strsafe_fputs(f->file, stdout);
		printf(":%d\n", f->line);
	}
}

int headless_functions(const struct cli_opts *o)
{
	char err[512];
	int rc = CLI_EXIT_OK;
	cJSON *table = NULL;
	struct session *c = attach(o, &rc);
	if (c == NULL)
		return rc;
	if (session_call(c, PROTO_CMD_FUNCTIONS_START, NULL, 10000, NULL, err, sizeof err) < 0) {
		rc = fail(CLI_EXIT_FAILURE, "cannot start the function tracer in pid %d: %s", (int)o->pid, err);
		goto done;
	}
	/* Trace for the duration; ^C ends it early and still switches it off. */
	struct sigaction sa = { 0 }, old_int, old_term;
	sa.sa_handler = on_interrupt;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	double end = monotime_now() + o->duration;
	while (!interrupted && monotime_now() < end && session_agent(c) == SESSION_AGENT_READY) {
		struct pollfd pfd;
		session_pollfd(c, &pfd);
		int ms = (int)((end - monotime_now()) * 1000) + 1;
		if (poll(&pfd, 1, ms > 200 ? 200 : ms) > 0)
			session_handle(c, pfd.revents);
	}
	cJSON *args = cJSON_CreateObject();
	cJSON_AddNumberToObject(args, "limit", o->top);
	int got = session_call(c, PROTO_CMD_FUNCTIONS, args, CALL_TIMEOUT_MS, &table, err, sizeof err);
	char serr[512];
	int stopped = session_call(c, PROTO_CMD_FUNCTIONS_STOP, NULL, 10000, NULL, serr, sizeof serr);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (got < 0) {
		rc = fail(CLI_EXIT_FAILURE, "cannot read the function table of pid %d: %s", (int)o->pid, err);
		goto done;
	}
	if (stopped < 0)
		strsafe_eprintf("pmt-top: warning: the tracer in pid %d may still be on: %s", (int)o->pid, serr);
	struct msg_functions t;
	if (msg_decode_functions(table, &t, err, sizeof err) < 0) {
		rc = fail(CLI_EXIT_FAILURE, "the agent's function table is malformed: %s", err);
		goto done;
	}
	if (o->json) {
		/* cJSON escapes C0 controls but passes C1 and bidi controls and
		 * invalid bytes through: those become \u escapes here. */
		char *text = cJSON_PrintUnformatted(table);
		if (text == NULL)
			xalloc_die(0);
		strsafe_fputs_json(text, stdout);
		putchar('\n');
		free(text);
	} else {
		print_functions(&t);
	}
	msg_functions_done(&t);
	rc = CLI_EXIT_OK;
done:
	cJSON_Delete(table);
	session_free(c);
	return rc;
}
