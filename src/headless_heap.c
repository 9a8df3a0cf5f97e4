/*
 * headless_heap.c - `pmt-top types PID` (live objects by type) and
 * `pmt-top why PID` (the reference chains that keep a few objects alive,
 * grouped by holder): the agent walks the heap and these print its decoded
 * reply as a table or as JSON.
 */
#include "headless.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strsafe.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "headless_intern.h"
#include "ipc/msg.h"
#include "session/session.h"

/* A walk over every object grows with the heap, and why's search runs up to
 * its budget (10 s) before what each holder retains is measured. */
#define CALL_TIMEOUT_MS 90000

/* "145,114". */
static const char *grouped(char *buf, size_t len, uint64_t v)
{
	char digits[24];
	int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
	size_t o = 0;
	for (int i = 0; i < n && o + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* "50 ms", or "12.3 s" from 10 s on. */
static const char *took(char *buf, size_t len, double seconds)
{
	if (seconds < 10)
		snprintf(buf, len, "%.0f ms", seconds * 1000);
	else
		snprintf(buf, len, "%.1f s", seconds);
	return buf;
}

static const char *bytes(char *buf, size_t len, uint64_t v)
{
	return units_bytes_table(buf, len, (int64_t)v, false);
}

/* ---- types ---- */

void headless_types_print(FILE *fp, pid_t pid, const struct msg_types *t)
{
	char n1[32], n2[32], b1[32], b2[32], d1[32], d2[32];
	fprintf(fp, "pid %d: %s objects tracked by the gc (%s), %s blocks allocated", (int)pid,
		grouped(n1, sizeof n1, t->tracked), bytes(b1, sizeof b1, t->tracked_bytes),
		grouped(n2, sizeof n2, t->allocated_blocks));
	if (t->has_traced)
		fprintf(fp, ", %s traced by tracemalloc", bytes(b2, sizeof b2, t->traced));
	fprintf(fp, "; walk took %s, longest pause %s\n", took(d1, sizeof d1, t->seconds),
		took(d2, sizeof d2, t->pause_max));
	if (!t->complete)
		fputs("(incomplete: the walk stopped before it counted every object)\n", fp);
	fprintf(fp, "%12s %10s  %s\n", "COUNT", "SIZE", "TYPE");
	for (size_t i = 0; i < t->nrows; i++) {
		const struct msg_type_row *r = &t->rows[i];
		fprintf(fp, "%12s %10s  ", grouped(n1, sizeof n1, r->count), bytes(b1, sizeof b1, r->size));
		strsafe_fputs(r->type, fp);
		fputc('\n', fp);
	}
}

/* The reply's walk figures, under the protocol's names. */
static void add_walk(cJSON *o, double pause_max, double seconds, uint64_t slices)
{
	cJSON_AddNumberToObject(o, "pause_max", pause_max);
	cJSON_AddNumberToObject(o, "seconds", seconds);
	cJSON_AddNumberToObject(o, "slices", (double)slices);
}

cJSON *headless_types_json(pid_t pid, const struct msg_types *t)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "pid", pid);
	cJSON *rows = cJSON_AddArrayToObject(o, "rows");
	for (size_t i = 0; i < t->nrows; i++) {
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "type", t->rows[i].type);
		cJSON_AddNumberToObject(r, "count", (double)t->rows[i].count);
		cJSON_AddNumberToObject(r, "size", (double)t->rows[i].size);
		cJSON_AddItemToArray(rows, r);
	}
	cJSON_AddNumberToObject(o, "tracked", (double)t->tracked);
	cJSON_AddNumberToObject(o, "tracked_bytes", (double)t->tracked_bytes);
	cJSON_AddNumberToObject(o, "allocated_blocks", (double)t->allocated_blocks);
	if (t->has_traced)
		cJSON_AddNumberToObject(o, "traced", (double)t->traced);
	else
		cJSON_AddNullToObject(o, "traced");
	cJSON_AddBoolToObject(o, "complete", t->complete);
	add_walk(o, t->pause_max, t->seconds, t->slices);
	return o;
}

/* A failed types or why request, in one line; the exit code. */
static int call_failed(struct session *s, const char *cmd, pid_t pid, const char *err)
{
	switch (session_last_error_code(s)) {
	case PROTO_ERR_NOT_TRACING:
		strsafe_eprintf("pmt-top: pid %d: objects are found by line through tracemalloc, which is off "
				"there: run `pmt-top trace %d start` first (only what is allocated from then on "
				"is found), or ask by --type", (int)pid, (int)pid);
		break;
	case PROTO_ERR_UNKNOWN_COMMAND:
		strsafe_eprintf("pmt-top: pid %d: its agent is older than this pmt-top and has no \"%s\" "
				"command (it stays loaded until the process ends): %s", (int)pid, cmd, err);
		break;
	default:
		strsafe_eprintf("pmt-top: pid %d: %s", (int)pid, err);
	}
	return CLI_EXIT_FAILURE;
}

int headless_types(const struct cli_opts *o)
{
	int rc = CLI_EXIT_OK;
	struct session *s = headless_attach(o, o->pid, false, &rc);
	if (s == NULL)
		return rc;
	char err[512];
	cJSON *result = NULL, *args = cJSON_CreateObject();
	cJSON_AddNumberToObject(args, "limit", o->top);
	struct msg_types t;
	if (session_call(s, PROTO_CMD_TYPES, args, CALL_TIMEOUT_MS, &result, err, sizeof err) < 0) {
		rc = call_failed(s, "types", o->pid, err);
	} else if (msg_decode_types(result, &t, err, sizeof err) < 0) {
		strsafe_eprintf("pmt-top: types in pid %d: the reply is malformed: %s", (int)o->pid, err);
		rc = CLI_EXIT_FAILURE;
	} else {
		if (o->json) {
			cJSON *j = headless_types_json(o->pid, &t);
			headless_print_json(j);
			cJSON_Delete(j);
		} else {
			headless_types_print(stdout, o->pid, &t);
		}
		msg_types_done(&t);
	}
	cJSON_Delete(result);
	session_free(s);
	return headless_flushed(rc);
}

/* ---- why ---- */

#define ARROW " -> "

/* "module app", "class app.Registry", "thread MainThread, serve()". */
static void print_root(FILE *fp, const struct msg_why_root *r)
{
	switch (r->kind) {
	case MSG_WHY_ROOT_NONE:
		return;
	case MSG_WHY_ROOT_MODULE:
	case MSG_WHY_ROOT_CLASS:
		fputs(r->kind == MSG_WHY_ROOT_MODULE ? "module " : "class ", fp);
		break;
	case MSG_WHY_ROOT_LOCAL:
		/* the first step says "local variable NAME" */
		fputs("thread ", fp);
		strsafe_fputs(r->thread, fp);
		fputs(", ", fp);
		strsafe_fputs(r->function, fp);
		fputs("()", fp);
		return;
	}
	strsafe_fputs(r->name, fp);
}

enum step_form {
	STEP_PASSING, /* "global _CACHE (dict, 20,000 items)" */
	STEP_HOLDER,  /* the same with its size: "(dict, 20,000 items, 405.4 KiB)" */
	STEP_SAMPLE,  /* the chain's end: "value for key 'id-981' -> app.Record 48 B" */
};

/* One object on a chain: how the one before refers to it, then what it is. */
static void print_step(FILE *fp, const struct msg_why_step *s, enum step_form form)
{
	char n[32], b[32], items[48] = "";
	if (s->has_len)
		snprintf(items, sizeof items, "%s item%s", grouped(n, sizeof n, s->len), s->len == 1 ? "" : "s");
	if (form == STEP_SAMPLE) {
		if (s->via) {
			strsafe_fputs(s->via, fp);
			fputs(ARROW, fp);
		}
		strsafe_fputs(s->type, fp);
		if (items[0])
			fprintf(fp, " (%s)", items);
		fprintf(fp, " %s", bytes(b, sizeof b, s->size));
		return;
	}
	bool open = s->via != NULL;
	if (open) {
		strsafe_fputs(s->via, fp);
		fputs(" (", fp);
	}
	strsafe_fputs(s->type, fp);
	const char *more[2] = { items[0] ? items : NULL,
				form == STEP_HOLDER ? bytes(b, sizeof b, s->size) : NULL };
	for (int k = 0; k < 2; k++) {
		if (more[k] == NULL)
			continue;
		fputs(open ? ", " : " (", fp);
		fputs(more[k], fp);
		open = true;
	}
	if (open)
		fputc(')', fp);
}

static void print_holder(FILE *fp, const struct msg_why_holder *h, size_t nchains)
{
	char n[32], b[32];
	fprintf(fp, "%" PRIu64 " of %zu sample%s: ", h->samples, nchains, nchains == 1 ? "" : "s");
	print_root(fp, &h->root);
	fputs(ARROW, fp);
	print_step(fp, &h->holder, STEP_HOLDER);
	if (!h->has_retained) {
		fputs("; what it retains was not measured (the walk's budget ran out)\n", fp);
		return;
	}
	const struct msg_why_retained *r = &h->retained;
	fprintf(fp, " retains %s%s in %s object%s", r->estimate ? "~" : "", bytes(b, sizeof b, r->bytes),
		grouped(n, sizeof n, r->objects), r->objects == 1 ? "" : "s");
	if (r->estimate || r->truncated)
		fprintf(fp, " (%s%s%s)", r->estimate ? "estimate" : "", r->estimate && r->truncated ? ", " : "",
			r->truncated ? "truncated: a lower bound" : "");
	fputc('\n', fp);
}

/* A chain on one line, root first; one without root ends with why. */
static void print_chain(FILE *fp, const struct msg_why_chain *c)
{
	if (c->root.kind != MSG_WHY_ROOT_NONE) {
		print_root(fp, &c->root);
		fputs(ARROW, fp);
	}
	for (size_t k = 0; k < c->nsteps; k++) {
		if (k > 0)
			fputs(ARROW, fp);
		print_step(fp, &c->steps[k], k + 1 == c->nsteps ? STEP_SAMPLE : STEP_PASSING);
	}
	if (c->root.kind == MSG_WHY_ROOT_NONE) {
		fputs(": ", fp);
		strsafe_fputs(c->end && c->end[0] ? c->end : "no root found", fp);
	}
	fputc('\n', fp);
}

/* "of type app.Record" or "allocated at app.py:42". */
static void print_query(FILE *fp, const struct cli_opts *o)
{
	if (o->why_type) {
		fputs("of type ", fp);
		strsafe_fputs(o->why_type, fp);
		return;
	}
	char *file = xstrndup(o->why_file, o->why_file_len);
	fputs("allocated at ", fp);
	strsafe_fputs(file, fp);
	fprintf(fp, ":%d", o->why_line);
	free(file);
}

void headless_why_print(FILE *fp, const struct cli_opts *o, const struct msg_why *w)
{
	char n[32], d1[32], d2[32];
	for (size_t i = 0; i < w->nholders; i++)
		print_holder(fp, &w->holders[i], w->nchains);
	if (w->nchains > 0 && w->nholders == 0)
		fputs("no holder: no sample is reachable from a module, a class or a thread's locals\n", fp);
	if (w->nchains > 0)
		fprintf(fp, "chain%s, root first:\n", w->nchains == 1 ? "" : "s");
	for (size_t i = 0; i < w->nchains; i++) {
		fputs("  ", fp);
		print_chain(fp, &w->chains[i]);
	}
	if (w->matched == 0) {
		fprintf(fp, "pid %d: no object ", (int)o->pid);
		print_query(fp, o);
		if (o->why_type)
			fprintf(fp, " among those the gc tracks (named as `pmt-top types %d` prints it)",
				(int)o->pid);
		else
			fputs(" that tracemalloc still traces (it sees what was allocated since it started)",
			      fp);
	} else {
		fprintf(fp, "pid %d: %s object%s ", (int)o->pid, grouped(n, sizeof n, w->matched),
			w->matched == 1 ? "" : "s");
		print_query(fp, o);
		fprintf(fp, " matched, %zu followed", w->nchains);
	}
	fprintf(fp, "; walk took %s, longest pause %s\n", took(d1, sizeof d1, w->seconds),
		took(d2, sizeof d2, w->pause_max));
}

static cJSON *root_json(const struct msg_why_root *r)
{
	if (r->kind == MSG_WHY_ROOT_NONE)
		return cJSON_CreateNull();
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "root", msg_why_root_name(r->kind));
	if (r->kind == MSG_WHY_ROOT_LOCAL) {
		cJSON_AddStringToObject(o, "thread", r->thread);
		cJSON_AddStringToObject(o, "function", r->function);
	}
	cJSON_AddStringToObject(o, "name", r->name);
	return o;
}

static cJSON *step_json(const struct msg_why_step *s)
{
	cJSON *o = cJSON_CreateObject();
	if (s->via)
		cJSON_AddStringToObject(o, "via", s->via);
	else
		cJSON_AddNullToObject(o, "via");
	cJSON_AddStringToObject(o, "type", s->type);
	cJSON_AddNumberToObject(o, "size", (double)s->size);
	if (s->has_len)
		cJSON_AddNumberToObject(o, "len", (double)s->len);
	return o;
}

cJSON *headless_why_json(const struct cli_opts *o, const struct msg_why *w)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "pid", o->pid);
	/* What was asked, under the request's names. */
	if (o->why_type) {
		cJSON_AddStringToObject(j, "type", o->why_type);
	} else {
		char *file = xstrndup(o->why_file, o->why_file_len);
		cJSON_AddStringToObject(j, "file", file);
		cJSON_AddNumberToObject(j, "line", o->why_line);
		free(file);
	}
	cJSON_AddNumberToObject(j, "matched", (double)w->matched);
	cJSON *chains = cJSON_AddArrayToObject(j, "chains");
	for (size_t i = 0; i < w->nchains; i++) {
		const struct msg_why_chain *c = &w->chains[i];
		cJSON *cj = cJSON_CreateObject();
		cJSON_AddItemToObject(cj, "root", root_json(&c->root));
		if (c->end)
			cJSON_AddStringToObject(cj, "end", c->end);
		cJSON *steps = cJSON_AddArrayToObject(cj, "steps");
		for (size_t k = 0; k < c->nsteps; k++)
			cJSON_AddItemToArray(steps, step_json(&c->steps[k]));
		cJSON_AddItemToArray(chains, cj);
	}
	cJSON *holders = cJSON_AddArrayToObject(j, "holders");
	for (size_t i = 0; i < w->nholders; i++) {
		const struct msg_why_holder *h = &w->holders[i];
		cJSON *hj = cJSON_CreateObject();
		cJSON_AddItemToObject(hj, "root", root_json(&h->root));
		cJSON_AddNumberToObject(hj, "samples", (double)h->samples);
		cJSON_AddItemToObject(hj, "holder", step_json(&h->holder));
		/* Absent, as in the reply, when it was not measured. */
		if (h->has_retained) {
			cJSON *r = cJSON_AddObjectToObject(hj, "retained");
			cJSON_AddNumberToObject(r, "bytes", (double)h->retained.bytes);
			cJSON_AddNumberToObject(r, "objects", (double)h->retained.objects);
			cJSON_AddBoolToObject(r, "truncated", h->retained.truncated);
			cJSON_AddBoolToObject(r, "estimate", h->retained.estimate);
		}
		cJSON_AddItemToArray(holders, hj);
	}
	add_walk(j, w->pause_max, w->seconds, w->slices);
	return j;
}

int headless_why(const struct cli_opts *o)
{
	int rc = CLI_EXIT_OK;
	struct session *s = headless_attach(o, o->pid, false, &rc);
	if (s == NULL)
		return rc;
	char err[512];
	cJSON *result = NULL, *args = cJSON_CreateObject();
	if (o->why_type) {
		cJSON_AddStringToObject(args, "type", o->why_type);
	} else {
		char *file = xstrndup(o->why_file, o->why_file_len);
		cJSON_AddStringToObject(args, "file", file);
		cJSON_AddNumberToObject(args, "line", o->why_line);
		free(file);
	}
	cJSON_AddNumberToObject(args, "samples", o->samples);
	struct msg_why w;
	if (session_call(s, PROTO_CMD_WHY, args, CALL_TIMEOUT_MS, &result, err, sizeof err) < 0) {
		rc = call_failed(s, "why", o->pid, err);
	} else if (msg_decode_why(result, &w, err, sizeof err) < 0) {
		strsafe_eprintf("pmt-top: why in pid %d: the reply is malformed: %s", (int)o->pid, err);
		rc = CLI_EXIT_FAILURE;
	} else {
		if (o->json) {
			cJSON *j = headless_why_json(o, &w);
			headless_print_json(j);
			cJSON_Delete(j);
		} else {
			headless_why_print(stdout, o, &w);
		}
		msg_why_done(&w);
	}
	cJSON_Delete(result);
	session_free(s);
	return headless_flushed(rc);
}
