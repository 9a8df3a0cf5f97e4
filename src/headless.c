/*
 * headless.c - `pmt-top snapshot`, `diff` and `functions`: attach (loading the
 * agent when needed), ask, print a table or JSON, exit.
 */
#include "headless.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collect/agent_sock.h"
#include "collect/inject.h"
#include "collect/paths.h"
#include "collect/proc_sampler.h"
#include "collect/snapdiff.h"
#include "collect/snapshot.h"
#include "collect/units.h"
#include "ipc/client.h"
#include "ipc/sock.h"
#include "ipc/strsafe.h"
#include "ipc/xalloc.h"

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

static bool process_exists(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* Load the agent into pid and wait until the bootstrap ran. */
static int inject_and_wait(const struct cli_opts *o, char *err, size_t errlen)
{
	struct inject_req req = {
		.pid = o->pid,
		.method = o->inject_method ? inject_method_from_name(o->inject_method) : INJECT_AUTO,
		.agent_dir = paths_agent_dir(),
		.native_dir = paths_native_dir(),
		.timeout_ms = ATTACH_TIMEOUT_MS,
	};
	struct inject *ij = inject_start(&req, err, errlen);
	if (ij == NULL)
		return -1;
	bool said_waiting = false;
	enum inject_state st;
	char status[512];
	for (;;) {
		st = inject_poll(ij, status, sizeof status);
		if (st == INJECT_DONE || st == INJECT_FAILED || interrupted)
			break;
		if (st == INJECT_WAITING && !said_waiting) {
			strsafe_eprintf("pmt-top: %s", status);
			said_waiting = true;
		}
		struct pollfd pfd = { .fd = inject_fd(ij), .events = POLLIN };
		poll(&pfd, pfd.fd >= 0 ? 1 : 0, 100);
	}
	if (st != INJECT_DONE)
		snprintf(err, errlen, "%s", interrupted ? "interrupted" : status);
	inject_free(ij);
	return st == INJECT_DONE ? 0 : -1;
}

/* Connect to the agent of o->pid (peer pid checked). */
static int connect_agent(const struct cli_opts *o, struct client *c, char *err, size_t errlen)
{
	char path[1200];
	const char *sock = o->socket;
	if (sock == NULL && agent_sock_find(o->pid, path, sizeof path, err, errlen) == 0)
		sock = path;
	if (client_connect(c, o->pid, sock, err, errlen) < 0)
		return -1;
	return client_wait_ready(c, 5000, err, errlen);
}

/* Connect to pid's agent, loading it first when none answers. */
static int attach(const struct cli_opts *o, struct client *c)
{
	char err[512], ierr[512];
	if (!process_exists(o->pid))
		return fail(CLI_EXIT_NO_PROCESS, "no process with pid %d", (int)o->pid);
	if (connect_agent(o, c, err, sizeof err) == 0)
		return 0;
	if (o->no_inject || o->socket)
		return fail(CLI_EXIT_NO_AGENT, "%s", err);
	if (inject_and_wait(o, ierr, sizeof ierr) < 0)
		return fail(CLI_EXIT_NO_AGENT, "no agent in pid %d and it could not be loaded: %s",
			    (int)o->pid, ierr);
	/* The bootstrap ran: the socket answers now (give it a moment). */
	for (int i = 0; i < 50; i++) {
		if (connect_agent(o, c, err, sizeof err) == 0)
			return 0;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return fail(CLI_EXIT_NO_AGENT, "the agent was loaded into pid %d but does not answer: %s",
		    (int)o->pid, err);
}

int headless_snapshot(const struct cli_opts *o)
{
	char err[512];
	int rc;
	struct client *c = client_new();
	if ((rc = attach(o, c)) != 0)
		goto done;
	cJSON *args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "key", o->key ? o->key : "lineno");
	cJSON *result = NULL;
	if (client_call(c, PROTO_CMD_SNAPSHOT, args, CALL_TIMEOUT_MS, &result, err, sizeof err) < 0) {
		if (client_last_error_code(c) == PROTO_ERR_NOT_TRACING)
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
	client_free(c);
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

static const char *json_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static double json_num(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The function table as text; every string in it is the target's. */
static void print_functions(const cJSON *t)
{
	char net[32], mx[32], gross[32], mean[32], mode[64], acc[64];
	const cJSON *fns = cJSON_GetObjectItemCaseSensitive(t, "functions");
	printf("per-function memory, %s for %.1f s (%s; net and gross count %s)\n",
	       strsafe_shown(mode, sizeof mode, json_str(t, "mode")), json_num(t, "elapsed"),
	       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "native")) ? "C extension"
									    : "pure-Python fallback, slower",
	       strsafe_shown(acc, sizeof acc, json_str(t, "accounting")));
	printf("%12s %11s %11s %11s %11s  %s\n", "CALLS", "NET", "MAX", "GROSS", "MEAN", "FUNCTION");
	const cJSON *f;
	cJSON_ArrayForEach(f, fns) {
		printf("%12.0f %11s %11s %11s %11s  ", json_num(f, "calls"),
		       units_bytes_signed(net, sizeof net, json_num(f, "net")),
		       units_bytes_signed(mx, sizeof mx, json_num(f, "max")),
		       units_bytes(gross, sizeof gross, json_num(f, "gross")),
		       units_bytes_signed(mean, sizeof mean, json_num(f, "mean")));
		strsafe_fputs(json_str(f, "name"), stdout);
		fputs("  ", stdout);
		strsafe_fputs(json_str(f, "file"), stdout);
		printf(":%.0f\n", json_num(f, "line"));
	}
}

int headless_functions(const struct cli_opts *o)
{
	char err[512];
	int rc;
	struct client *c = client_new();
	cJSON *table = NULL;
	if ((rc = attach(o, c)) != 0)
		goto done;
	if (client_call(c, PROTO_CMD_FUNCTIONS_START, NULL, 10000, NULL, err, sizeof err) < 0) {
		rc = fail(CLI_EXIT_FAILURE, "cannot start the function tracer in pid %d: %s", (int)o->pid, err);
		goto done;
	}
	/* Trace for the duration; ^C ends it early and still switches it off. */
	struct sigaction sa = { 0 }, old_int, old_term;
	sa.sa_handler = on_interrupt;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	double end = proc_sampler_now() + o->duration;
	while (!interrupted && proc_sampler_now() < end && client_state(c) == CLIENT_READY) {
		struct pollfd pfd;
		client_pollfd(c, &pfd);
		int ms = (int)((end - proc_sampler_now()) * 1000) + 1;
		if (poll(&pfd, 1, ms > 200 ? 200 : ms) > 0)
			client_handle(c, pfd.revents);
	}
	cJSON *args = cJSON_CreateObject();
	cJSON_AddNumberToObject(args, "limit", o->top);
	int got = client_call(c, PROTO_CMD_FUNCTIONS, args, CALL_TIMEOUT_MS, &table, err, sizeof err);
	char serr[512];
	int stopped = client_call(c, PROTO_CMD_FUNCTIONS_STOP, NULL, 10000, NULL, serr, sizeof serr);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (got < 0) {
		rc = fail(CLI_EXIT_FAILURE, "cannot read the function table of pid %d: %s", (int)o->pid, err);
		goto done;
	}
	if (stopped < 0)
		strsafe_eprintf("pmt-top: warning: the tracer in pid %d may still be on: %s", (int)o->pid, serr);
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
		print_functions(table);
	}
	rc = CLI_EXIT_OK;
done:
	cJSON_Delete(table);
	client_free(c);
	return rc;
}
