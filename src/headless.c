/*
 * headless.c - `pmt-top snapshot`, `diff`, `functions`, `profile` and
 * `trace`: attach (loading the agent when needed), ask, print a table or
 * JSON, exit.
 */
#include "headless.h"
#include "headless_intern.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proc/proc_sampler.h"
#include "base/errfmt.h"
#include "base/monotime.h"
#include "snapshot/snapdiff.h"
#include "snapshot/snapshot.h"
#include "base/units.h"
#include "session/session.h"
#include "base/strsafe.h"
#include "base/xalloc.h"

#define ATTACH_TIMEOUT_MS 20000
#define CALL_TIMEOUT_MS 120000
/* The largest "limit" the agent's top takes (docs/protocol.md). */
#define TOP_LIMIT_MAX 100000

volatile sig_atomic_t headless_interrupted;

void headless_on_interrupt(int sig)
{
	(void)sig;
	headless_interrupted = 1;
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
 * line, the outcome), which way the agent was loaded and, once, why
 * attaching takes long. */
static void on_message(void *ud, enum session_msg kind, bool error, const char *text)
{
	static bool said_waiting;
	(void)ud;
	(void)error;
	bool tty = isatty(STDERR_FILENO);
	if (kind == SESSION_MSG_INFO && tty && strstr(text, "the agent bootstrap ran in process")) {
		/* Which way the agent went in, for a person. */
		strsafe_eprintf("pmt-top: %s", text);
		return;
	}
	if (kind == SESSION_MSG_LEAVE || (kind == SESSION_MSG_WAITING && !said_waiting && tty)) {
		said_waiting |= kind == SESSION_MSG_WAITING;
		strsafe_eprintf("pmt-top: %s", text);
	}
}

/* A session on o->pid whose agent answers (loaded first when none does), or
 * NULL after printing why, with *RC set to the exit code. The sampled
 * profiler is started on attach only when PROFILE is set (and the command
 * line did not opt out): the other commands read tracemalloc or the tracer. */
struct session *headless_attach(const struct cli_opts *o, pid_t pid, bool profile, int *rc)
{
	const struct session_opts so = {
		.pid = pid,
		.socket = o->socket,
		.inject_method = o->inject_method,
		.no_inject = o->no_inject,
		.attach_timeout_ms = ATTACH_TIMEOUT_MS,
		.no_profile = !profile || o->no_profile,
		.profile_interval = o->profile_interval,
		.profile_calls = o->calls,
		.profile_no_native = o->no_native,
	};
	const struct session_events ev = { .message = on_message };
	struct session *s = session_new(&so, &ev);
	char err[1024];
	enum session_failure why;
	if (session_wait_ready(s, &headless_interrupted, &why, err, sizeof err) == 0)
		return s;
	*rc = fail(why == SESSION_FAIL_NO_PROCESS ? CLI_EXIT_NO_PROCESS : CLI_EXIT_NO_AGENT, "%s", err);
	session_free(s);
	return NULL;
}

static struct session *attach(const struct cli_opts *o, bool profile, int *rc)
{
	return headless_attach(o, o->pid, profile, rc);
}

/* Polls the session for up to SECONDS; ^C (or SIGTERM) ends it early.
 * Returns false when the agent went away meanwhile. */
static bool watch_for(struct session *c, double seconds)
{
	return session_watch(c, seconds, &headless_interrupted);
}

/* The raw reply as JSON, with what a terminal would act on escaped. */
void headless_print_json(const cJSON *result)
{
	char *text = cJSON_PrintUnformatted(result);
	if (text == NULL)
		xalloc_die(0);
	strsafe_fputs_json(text, stdout);
	putchar('\n');
	free(text);
}

int headless_flushed(int rc)
{
	if (rc == CLI_EXIT_OK && (fflush(stdout) != 0 || ferror(stdout)))
		return fail(CLI_EXIT_FAILURE, "cannot write the output: %s", strerror(errno));
	return rc;
}

/* "1 sample per 4 KiB" or "every allocation". */
static const char *interval_words(char *buf, size_t len, uint64_t interval)
{
	char b[32];
	if (interval <= 1)
		snprintf(buf, len, "every allocation");
	else if (interval % 1024 == 0 && interval < ((uint64_t)1 << 20))
		snprintf(buf, len, "1 sample per %" PRIu64 " KiB", interval / 1024);
	else if (interval % ((uint64_t)1 << 20) == 0)
		snprintf(buf, len, "1 sample per %" PRIu64 " MiB", interval >> 20);
	else
		snprintf(buf, len, "1 sample per %s", units_bytes(b, sizeof b, (double)interval));
	return buf;
}

/* ---- tracemalloc control (snapshot --start-tracing, trace) ---- */

/* A snapshot of a process that does not trace: how to get one. */
static int not_tracing(pid_t pid)
{
	return fail(CLI_EXIT_FAILURE, "tracemalloc is not tracing in pid %d: add --start-tracing (it then stays "
		    "on) or run `pmt-top trace %d start` first", (int)pid, (int)pid);
}

/* Asks the agent how things are now; NULL after printing why (*RC set).
 * *RAW (if not NULL) gets the reply, owned by the caller. */
static const struct msg_status *read_status(struct session *c, pid_t pid, cJSON **raw, int *rc)
{
	char err[512];
	cJSON *result = NULL;
	if (session_call(c, PROTO_CMD_STATUS, NULL, CALL_TIMEOUT_MS, &result, err, sizeof err) < 0 ||
	    session_take_status(c, result, err, sizeof err) < 0) {
		cJSON_Delete(result);
		*rc = fail(CLI_EXIT_FAILURE, "cannot read the status of pid %d: %s", (int)pid, err);
		return NULL;
	}
	if (raw)
		*raw = result;
	else
		cJSON_Delete(result);
	return session_status(c, NULL);
}

/* tracemalloc_start with NFRAME; 0, or -1 after printing why (*RC set). */
static int start_tracing(struct session *c, pid_t pid, int nframe, int *rc)
{
	char err[512];
	cJSON *result = NULL;
	cJSON *args = cJSON_CreateObject();
	cJSON_AddNumberToObject(args, "nframe", nframe);
	if (session_call(c, PROTO_CMD_TRACEMALLOC_START, args, CALL_TIMEOUT_MS, &result, err, sizeof err) < 0) {
		*rc = fail(CLI_EXIT_FAILURE, "cannot start tracemalloc in pid %d: %s", (int)pid, err);
		return -1;
	}
	/* It runs whatever the reply looks like: say so, and how to stop it. */
	if (session_take_status(c, result, err, sizeof err) < 0)
		strsafe_eprintf("pmt-top: warning: the agent's reply to tracemalloc_start is malformed (%s); "
				"`pmt-top trace %d status` tells whether tracemalloc runs", err, (int)pid);
	cJSON_Delete(result);
	return 0;
}

static const char *frames_word(int n)
{
	return n == 1 ? "frame" : "frames";
}

/* "started by pmt-top's agent" or "started by the program itself". */
static const char *started_by(const struct msg_status *st)
{
	return st->started_by_agent ? "started by pmt-top's agent" : "started by the program itself";
}

static int trace_start(struct session *c, const struct cli_opts *o, const struct msg_status *st)
{
	int rc = CLI_EXIT_OK;
	int want = o->frames ? o->frames : CLI_TRACE_FRAMES_DEFAULT;
	if (st->tracing) {
		int have = st->nframe;
		printf("tracemalloc was already on in pid %d with %d %s (%s)%s; it stays on until "
		       "`pmt-top trace %d stop`\n", (int)o->pid, have, frames_word(have), started_by(st),
		       o->frames && o->frames != have ? ", not the frames asked for: stop it first to change them" : "",
		       (int)o->pid);
		return CLI_EXIT_OK;
	}
	if (start_tracing(c, o->pid, want, &rc) < 0)
		return rc;
	printf("tracemalloc on in pid %d with %d %s: only allocations from now on are seen; it stays on "
	       "until `pmt-top trace %d stop`\n", (int)o->pid, want, frames_word(want), (int)o->pid);
	return CLI_EXIT_OK;
}

static int trace_stop(struct session *c, const struct cli_opts *o, const struct msg_status *st)
{
	char err[512];
	cJSON *result = NULL;
	if (!st->tracing) {
		printf("tracemalloc was not on in pid %d: nothing to stop\n", (int)o->pid);
		return CLI_EXIT_OK;
	}
	int had = st->nframe;
	const char *who = started_by(st);
	if (session_call(c, PROTO_CMD_TRACEMALLOC_STOP, NULL, CALL_TIMEOUT_MS, &result, err, sizeof err) < 0)
		return fail(CLI_EXIT_FAILURE, "cannot stop tracemalloc in pid %d, so it is still on: %s",
			    (int)o->pid, err);
	session_take_status(c, result, err, sizeof err);
	cJSON_Delete(result);
	printf("tracemalloc off in pid %d (it was on, with %d %s, %s)\n", (int)o->pid, had, frames_word(had),
	       who);
	return CLI_EXIT_OK;
}

static void trace_status(const struct cli_opts *o, const struct msg_status *st, cJSON *raw)
{
	char cur[32], peak[32], mem[32], iv[64];
	if (o->json) {
		cJSON_AddNumberToObject(raw, "pid", (double)o->pid);
		headless_print_json(raw);
		return;
	}
	if (st->tracing)
		printf("tracemalloc in pid %d: on, %d %s, %s; traced %s (peak %s), its own memory %s\n",
		       (int)o->pid, st->nframe, frames_word(st->nframe), started_by(st),
		       units_bytes(cur, sizeof cur, (double)st->traced_current),
		       units_bytes(peak, sizeof peak, (double)st->traced_peak),
		       units_bytes(mem, sizeof mem, (double)st->tracemalloc_memory));
	else
		printf("tracemalloc in pid %d: off\n", (int)o->pid);
	if (!st->has_profile)
		printf("sampled profiler in pid %d: not available in this agent\n", (int)o->pid);
	else if (st->profile.running)
		printf("sampled profiler in pid %d: on, %s, its own memory %s%s\n", (int)o->pid,
		       interval_words(iv, sizeof iv, st->profile.interval),
		       units_bytes(mem, sizeof mem, (double)st->profile.memory),
		       st->profile.calls ? ", counting calls" : "");
	else
		printf("sampled profiler in pid %d: off\n", (int)o->pid);
}

int headless_trace(const struct cli_opts *o)
{
	int rc = CLI_EXIT_OK;
	cJSON *raw = NULL;
	struct session *c = attach(o, false, &rc);
	if (c == NULL)
		return rc;
	const struct msg_status *st = read_status(c, o->pid, &raw, &rc);
	if (st != NULL) {
		switch (o->trace_action) {
		case CLI_TRACE_START:
			rc = trace_start(c, o, st);
			break;
		case CLI_TRACE_STOP:
			rc = trace_stop(c, o, st);
			break;
		case CLI_TRACE_STATUS:
			trace_status(o, st, raw);
			break;
		}
	}
	if (rc == CLI_EXIT_OK && (fflush(stdout) != 0 || ferror(stdout)))
		rc = fail(CLI_EXIT_FAILURE, "cannot write the output: %s", strerror(errno));
	cJSON_Delete(raw);
	session_free(c);
	return rc;
}

/* ---- snapshot ---- */

/*
 * --start-tracing and --wait: tracemalloc on (started when it is off and
 * asked to: it stays on, said on stderr), then the wait (^C ends it). 0, or
 * -1 after printing why (*RC set).
 */
int headless_snapshot_prepare(struct session *c, const struct cli_opts *o, pid_t pid, int *rc)
{
	const struct msg_status *st = read_status(c, pid, NULL, rc);
	if (st == NULL)
		return -1;
	if (!st->tracing && !o->start_tracing) {
		*rc = not_tracing(pid);
		return -1;
	}
	if (!st->tracing) {
		int n = o->start_tracing;
		if (start_tracing(c, pid, n, rc) < 0)
			return -1;
		strsafe_eprintf("pmt-top: tracemalloc was off in pid %d: started it with %d %s, so this snapshot "
				"sees only allocations made from now on; it stays on until `pmt-top trace %d stop`",
				(int)pid, n, frames_word(n), (int)pid);
	} else if (o->start_tracing && st->nframe != o->start_tracing) {
		strsafe_eprintf("pmt-top: tracemalloc was already on in pid %d with %d %s: used as it is",
				(int)pid, st->nframe, frames_word(st->nframe));
	}
	if (o->wait > 0 && !watch_for(c, o->wait)) {
		*rc = fail(CLI_EXIT_FAILURE, "lost the agent in pid %d while waiting: %s", (int)pid,
			   session_note(c));
		return -1;
	}
	return 0;
}

/* A whole snapshot, read from the reply's text while the frame is there. */
struct snapshot_text {
	struct snapshot *snap;
	char err[512];
};

static void take_snapshot_text(void *ud, char *text, size_t len)
{
	struct snapshot_text *t = ud;
	bool gone;

	t->snap = snapshot_parse_consume(text, len, "reply", t->err, sizeof t->err, &gone);
}

int headless_snapshot(const struct cli_opts *o)
{
	if (o->group == CLI_GROUP_TREE || o->group == CLI_GROUP_LIST)
		return headless_snapshot_group(o);
	char err[512];
	int rc = CLI_EXIT_OK;
	struct session *c = attach(o, false, &rc);
	if (c == NULL)
		return rc;
	/* ^C ends the wait; the snapshot is still taken and written. */
	struct sigaction sa = { 0 }, old_int, old_term;
	sa.sa_handler = headless_on_interrupt;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if ((o->start_tracing || o->wait > 0) && headless_snapshot_prepare(c, o, o->pid, &rc) < 0)
		goto done;
	/* Printing N groups needs only the agent's top N (and one more, which
	 * tells whether there are others), not every group: a 300k-group
	 * snapshot took 363 MiB here to print 20 rows. A file gets every group,
	 * and so does --top 0 (all) or an N past the agent's limit. */
	bool top = !o->output && o->top > 0 && o->top < TOP_LIMIT_MAX;
	cJSON *args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "key", o->key ? o->key : "lineno");
	if (top)
		cJSON_AddNumberToObject(args, "limit", o->top + 1);
	struct snapshot_text whole = { NULL, "" };
	cJSON *result = NULL;
	int called = top ? session_call(c, PROTO_CMD_TOP, args, CALL_TIMEOUT_MS, &result, err, sizeof err) :
			   session_call_text(c, PROTO_CMD_SNAPSHOT, args, CALL_TIMEOUT_MS, take_snapshot_text,
					     &whole, err, sizeof err);
	if (called < 0) {
		if (session_last_error_code(c) == PROTO_ERR_NOT_TRACING)
			rc = not_tracing(o->pid);
		else
			rc = fail(CLI_EXIT_FAILURE, "snapshot of pid %d failed: %s", (int)o->pid, err);
		goto done;
	}
	struct snapshot *s = top ? snapshot_from_json(result, err, sizeof err) : whole.snap;
	const cJSON *all = top ? cJSON_GetObjectItemCaseSensitive(result, "ngroups") : NULL;
	size_t all_groups = cJSON_IsNumber(all) && all->valuedouble >= 0 && all->valuedouble < 1e15
			    ? (size_t)all->valuedouble : 0;
	cJSON_Delete(result);
	if (s == NULL) {
		rc = fail(CLI_EXIT_FAILURE, "the agent's snapshot is malformed: %s", top ? err : whole.err);
		goto done;
	}
	headless_snapshot_memory(c, o->pid, s);
	snapshot_sort(s);
	s->cut = top && s->ngroups > (size_t)o->top;
	if (s->cut)
		s->all_groups = all_groups;
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
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	session_free(c);
	return rc;
}

int headless_diff(const struct cli_opts *o)
{
	struct stat st_old, st_new;
	if (stat(o->diff_old, &st_old) == 0 && stat(o->diff_new, &st_new) == 0 && S_ISDIR(st_old.st_mode) &&
	    S_ISDIR(st_new.st_mode))
		return headless_diff_groups(o);
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
	struct session *c = attach(o, false, &rc);
	if (c == NULL)
		return rc;
	if (session_call(c, PROTO_CMD_FUNCTIONS_START, NULL, 10000, NULL, err, sizeof err) < 0) {
		rc = fail(CLI_EXIT_FAILURE, "cannot start the function tracer in pid %d: %s", (int)o->pid, err);
		goto done;
	}
	/* Trace for the duration; ^C ends it early and still switches it off. */
	struct sigaction sa = { 0 }, old_int, old_term;
	sa.sa_handler = headless_on_interrupt;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	watch_for(c, o->duration);
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

/* ---- profile ---- */

/* A count or a size that is only known with call counting: "-" otherwise. */
static const char *maybe_bytes(char *buf, size_t len, bool known, uint64_t v)
{
	if (!known)
		return "-";
	return units_bytes_table(buf, len, (int64_t)v, false);
}

static void print_profile_functions(const struct msg_profile_functions *t, pid_t pid)
{
	char own[32], total[32], rate[32], calls[32], ret[32], big[32], iv[64];
	printf("sampled profiler in pid %d: %s, for %.1f s; %zu of %zu functions, live bytes "
	       "(own: allocated in the function, total: in it or its callees)%s\n", (int)pid,
	       interval_words(iv, sizeof iv, t->interval), t->profile.elapsed, t->nrows, t->functions,
	       t->profile.calls ? "" : "; --calls adds CALLS, RET/CALL and LARGEST");
	printf("%10s %10s %10s %10s %10s %10s  %s\n", "OWN", "TOTAL", "RATE/s", "CALLS", "RET/CALL",
	       "LARGEST", "FUNCTION");
	for (size_t i = 0; i < t->nrows; i++) {
		const struct msg_profile_row *r = &t->rows[i];
		if (r->has_calls)
			snprintf(calls, sizeof calls, "%" PRIu64, r->calls);
		printf("%10s %10s %10s %10s %10s %10s  ",
		       units_bytes_table(own, sizeof own, (int64_t)r->own_size, false),
		       units_bytes_table(total, sizeof total, (int64_t)r->total_size, false),
		       units_bytes_table(rate, sizeof rate, (int64_t)r->alloc_rate, false),
		       r->has_calls ? calls : "-",
		       maybe_bytes(ret, sizeof ret, r->has_calls, r->retained_per_call),
		       maybe_bytes(big, sizeof big, r->has_calls, r->largest_call));
		strsafe_fputs(r->function, stdout);
		fputs(r->native ? " [native]  " : "  ", stdout);
		strsafe_fputs(r->file, stdout);
		printf(":%d\n", r->line >= 0 ? r->line : r->first_line);
	}
}

/*
 * Groups by line, traceback or file, from the profiler (RATES: alloc_rate of
 * each group, in the snapshot's order) or from tracemalloc (RATES NULL).
 */
static void print_profile_groups(const struct snapshot *s, const uint64_t *rates, const char *head)
{
	char size[32], rate[32];
	printf("%s\n", head);
	printf("%10s %10s %10s  %s\n", "SIZE", "COUNT", "RATE/s", "LOCATION");
	for (size_t i = 0; i < s->ngroups; i++) {
		const struct snapshot_group *g = &s->groups[i];
		printf("%10s %10" PRIu64 " %10s  ", units_bytes_table(size, sizeof size, (int64_t)g->size, false),
		       g->count, rates ? units_bytes_table(rate, sizeof rate, (int64_t)rates[i], false) : "-");
		snapshot_print_location(stdout, g, s->key, 32);
	}
}

/*
 * The result of `profile` with a line, traceback or file key, read with the
 * snapshot validator: it has the shape of `top` except for the tracemalloc
 * figures (pid, traced_current, traced_peak), which are filled in here as
 * the agent does for `top` with source sampled. *RATES gets each group's
 * alloc_rate (0 when absent), in order.
 */
static struct snapshot *profile_groups(cJSON *result, pid_t pid, uint64_t **rates, char *err,
				       size_t errlen)
{
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(result, "total_size");
	const cJSON *groups = cJSON_GetObjectItemCaseSensitive(result, "groups"), *g;
	double traced = cJSON_IsNumber(total) ? total->valuedouble : 0;
	if (!cJSON_HasObjectItem(result, "pid"))
		cJSON_AddNumberToObject(result, "pid", (double)pid);
	if (!cJSON_HasObjectItem(result, "traced_current"))
		cJSON_AddNumberToObject(result, "traced_current", traced);
	if (!cJSON_HasObjectItem(result, "traced_peak"))
		cJSON_AddNumberToObject(result, "traced_peak", traced);
	struct snapshot *s = snapshot_from_json(result, err, errlen);
	if (s == NULL)
		return NULL;
	*rates = xcalloc(s->ngroups + 1, sizeof **rates);
	size_t i = 0;
	cJSON_ArrayForEach(g, groups) {
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(g, "alloc_rate");
		if (i >= s->ngroups)
			break;
		if (r != NULL && !(cJSON_IsNumber(r) && r->valuedouble >= 0 && r->valuedouble <= 9007199254740991.0)) {
			errfmt(err, errlen, "groups[%zu].alloc_rate must be an integer from 0 to 2^53-1", i);
			free(*rates);
			*rates = NULL;
			snapshot_free(s);
			return NULL;
		}
		(*rates)[i++] = r ? (uint64_t)r->valuedouble : 0;
	}
	return s;
}

/* The sampled profiler runs: wait, ask, print. */
static int profile_sampled(struct session *c, const struct cli_opts *o, const char *key)
{
	char err[512], head[256], iv[64];
	cJSON *result = NULL;
	int rc = CLI_EXIT_OK;
	if (!watch_for(c, o->duration))
		return fail(CLI_EXIT_FAILURE, "lost the agent in pid %d while profiling: %s", (int)o->pid,
			    session_note(c));
	cJSON *args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "key", key);
	cJSON_AddNumberToObject(args, "limit", o->top);
	if (session_call(c, PROTO_CMD_PROFILE, args, CALL_TIMEOUT_MS, &result, err, sizeof err) < 0)
		return fail(CLI_EXIT_FAILURE, "cannot read the profile of pid %d: %s", (int)o->pid, err);
	if (strcmp(key, "function") == 0) {
		struct msg_profile_functions t;
		if (msg_decode_profile_functions(result, &t, err, sizeof err) < 0) {
			rc = fail(CLI_EXIT_FAILURE, "the agent's profile is malformed: %s", err);
		} else {
			if (o->json)
				headless_print_json(result);
			else
				print_profile_functions(&t, o->pid);
			msg_profile_functions_done(&t);
		}
	} else {
		uint64_t *rates = NULL;
		const struct msg_profile_status *ps = session_profile_status(c);
		struct snapshot *s = o->json ? NULL : profile_groups(result, o->pid, &rates, err, sizeof err);
		if (o->json) {
			headless_print_json(result);
		} else if (s == NULL) {
			rc = fail(CLI_EXIT_FAILURE, "the agent's profile is malformed: %s", err);
		} else {
			snprintf(head, sizeof head, "sampled profiler in pid %d: %s, key %s; %zu group%s, live bytes",
				 (int)o->pid, interval_words(iv, sizeof iv, ps ? ps->interval : 0), key, s->ngroups,
				 s->ngroups == 1 ? "" : "s");
			print_profile_groups(s, rates, head);
		}
		snapshot_free(s);
		free(rates);
	}
	cJSON_Delete(result);
	return rc;
}

/* No profiler: tracemalloc for the duration (started if it was off, and
 * stopped again then), its top groups printed the same way. */
static int profile_tracemalloc(struct session *c, const struct cli_opts *o, const char *key)
{
	char err[512], head[256];
	cJSON *result = NULL;
	int rc = CLI_EXIT_OK;
	bool started = false;
	if (strcmp(key, "function") == 0)
		key = "lineno"; /* tracemalloc knows lines, not functions */
	if (session_call(c, PROTO_CMD_STATUS, NULL, 10000, &result, err, sizeof err) < 0 ||
	    session_take_status(c, result, err, sizeof err) < 0) {
		cJSON_Delete(result);
		return fail(CLI_EXIT_FAILURE, "cannot read the status of pid %d: %s", (int)o->pid, err);
	}
	cJSON_Delete(result);
	result = NULL;
	if (!session_status(c, NULL)->tracing) {
		cJSON *args = cJSON_CreateObject();
		cJSON_AddNumberToObject(args, "nframe", strcmp(key, "traceback") == 0 ? 16 : 1);
		if (session_call(c, PROTO_CMD_TRACEMALLOC_START, args, 10000, NULL, err, sizeof err) < 0)
			return fail(CLI_EXIT_FAILURE, "cannot start tracemalloc in pid %d: %s", (int)o->pid, err);
		started = true;
	}
	bool alive = watch_for(c, o->duration);
	if (alive) {
		cJSON *args = cJSON_CreateObject();
		cJSON_AddStringToObject(args, "key", key);
		cJSON_AddNumberToObject(args, "limit", o->top);
		if (session_call(c, PROTO_CMD_TOP, args, CALL_TIMEOUT_MS, &result, err, sizeof err) < 0)
			rc = fail(CLI_EXIT_FAILURE, "cannot read tracemalloc's top of pid %d: %s", (int)o->pid, err);
	} else {
		rc = fail(CLI_EXIT_FAILURE, "lost the agent in pid %d while tracing: %s", (int)o->pid,
			  session_note(c));
	}
	if (started && alive) {
		char serr[512];
		if (session_call(c, PROTO_CMD_TRACEMALLOC_STOP, NULL, 10000, NULL, serr, sizeof serr) < 0)
			strsafe_eprintf("pmt-top: warning: tracemalloc in pid %d may still be on: %s", (int)o->pid, serr);
	}
	if (rc != CLI_EXIT_OK)
		goto done;
	if (o->json) {
		headless_print_json(result);
		goto done;
	}
	struct snapshot *s = snapshot_from_json(result, err, sizeof err);
	if (s == NULL) {
		rc = fail(CLI_EXIT_FAILURE, "the agent's top is malformed: %s", err);
		goto done;
	}
	snprintf(head, sizeof head, "tracemalloc in pid %d, key %s, nframe %" PRIu32 "; %zu group%s, live bytes "
		 "(no allocation rates without the sampled profiler)", (int)o->pid, key, s->nframe, s->ngroups,
		 s->ngroups == 1 ? "" : "s");
	print_profile_groups(s, NULL, head);
	snapshot_free(s);
done:
	cJSON_Delete(result);
	return rc;
}

int headless_profile(const struct cli_opts *o)
{
	const char *key = o->key ? o->key : "function";
	char err[512];
	int rc = CLI_EXIT_OK;
	/* ^C ends the attach or the wait; what was gathered is still printed. */
	struct sigaction sa = { 0 }, old_int, old_term;
	sa.sa_handler = headless_on_interrupt;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	struct session *c = attach(o, true, &rc);
	if (c == NULL)
		goto out;
	/* Not cut short by ^C: the reply is a moment away, and decides what
	 * to print (and what to stop). */
	enum session_profile st = session_wait_profile(c, NULL, 10000);
	if (st == SESSION_PROFILE_ON) {
		if (!session_profile_ours(c))
			strsafe_eprintf("pmt-top: %s: its own settings apply, and its figures cover the time since "
					"it started", session_profile_notice(c));
		rc = profile_sampled(c, o, key);
		if (session_profile_stop(c, err, sizeof err) < 0)
			strsafe_eprintf("pmt-top: warning: the sampled profiler in pid %d may still be on: %s",
					(int)o->pid, err);
	} else {
		if (st == SESSION_PROFILE_STARTING)
			strsafe_eprintf("pmt-top: the sampled profiler in pid %d did not start in time; "
					"tracemalloc is used instead", (int)o->pid);
		else if (!o->no_profile)
			strsafe_eprintf("pmt-top: %s", session_profile_notice(c));
		rc = profile_tracemalloc(c, o, key);
		/* A late start reply: do not leave it running. */
		session_profile_stop(c, err, sizeof err);
	}
	if (rc == CLI_EXIT_OK && (fflush(stdout) != 0 || ferror(stdout)))
		rc = fail(CLI_EXIT_FAILURE, "cannot write the output: %s", strerror(errno));
	session_free(c);
out:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return rc;
}
