/*
 * headless_mem.c - `pmt-top rss PID` (what the RSS is made of) and
 * `pmt-top trim PID` (malloc_trim, and the RSS before and after).
 */
#include "headless.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strsafe.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "headless_intern.h"
#include "proc/proc_sample.h"
#include "proc/smaps.h"
#include "session/composition.h"
#include "session/session.h"
#include "snapshot/snapshot.h"

#define CALL_TIMEOUT_MS 30000

/* The agent's status with allocator figures taken now (beside the smaps
 * read here), or NULL after saying why on stderr. */
static const struct msg_status *read_status(struct session *s, pid_t pid)
{
	char err[512];
	cJSON *result = NULL, *args = cJSON_CreateObject();
	cJSON_AddTrueToObject(args, "fresh");
	int rc = session_call(s, PROTO_CMD_STATUS, args, CALL_TIMEOUT_MS, &result, err, sizeof err);
	if (rc == 0)
		rc = session_take_status(s, result, err, sizeof err);
	cJSON_Delete(result);
	if (rc < 0) {
		strsafe_eprintf("pmt-top: cannot read the status of pid %d: %s", (int)pid, err);
		return NULL;
	}
	return session_status(s, NULL);
}

static void print_composition(pid_t pid, const struct composition *c, const struct msg_status *st,
			      double cost, bool json)
{
	char b[32];
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "pid", pid);
		cJSON_AddNumberToObject(o, "rss", (double)c->rss);
		cJSON_AddNumberToObject(o, "smaps_seconds", cost);
		cJSON_AddBoolToObject(o, "agent", c->agent);
		/* When the agent took its allocator figures (Unix seconds). */
		if (c->agent)
			cJSON_AddNumberToObject(o, "allocators_time", st->memory.time);
		else
			cJSON_AddNullToObject(o, "allocators_time");
		cJSON *parts = cJSON_AddArrayToObject(o, "parts");
		for (int p = 0; p < COMP_PART_COUNT; p++) {
			if (!c->part[p].shown)
				continue;
			cJSON *row = cJSON_CreateObject();
			cJSON_AddStringToObject(row, "name", comp_part_name((enum comp_part)p));
			cJSON_AddNumberToObject(row, "bytes", (double)c->part[p].bytes);
			cJSON_AddStringToObject(row, "source", c->part[p].source);
			cJSON_AddItemToArray(parts, row);
		}
		if (c->why[0])
			cJSON_AddStringToObject(o, "missing", c->why);
		else
			cJSON_AddNullToObject(o, "missing");
		headless_print_json(o);
		cJSON_Delete(o);
		return;
	}
	printf("pid %d: RSS %s, made of\n", (int)pid, units_bytes(b, sizeof b, (double)c->rss));
	printf("  %-16s %10s %7s  %s\n", "PART", "BYTES", "SHARE", "WHERE THE NUMBER COMES FROM");
	for (int p = 0; p < COMP_PART_COUNT; p++) {
		if (!c->part[p].shown)
			continue;
		printf("  %-16s %10s %6.1f%%  %s\n", comp_part_name((enum comp_part)p),
		       units_bytes(b, sizeof b, (double)c->part[p].bytes),
		       100.0 * (double)c->part[p].bytes / (double)(c->rss ? c->rss : 1), c->part[p].source);
	}
	if (c->why[0]) {
		fputs("not shown: ", stdout);
		strsafe_fputs(c->why, stdout);
		putchar('\n');
	}
}

/* The composition of PID now: smaps read here, ST may be NULL. Returns 0,
 * or -1 with ERR. */
static int composition_now(pid_t pid, const struct msg_status *st, struct composition *c, double *cost,
			   char *err, size_t errlen)
{
	struct smaps_totals t;
	if (smaps_read(pid, &t, cost, err, errlen) < 0)
		return -1;
	struct proc_sample k = { .flags = PROC_SAMPLE_HAS_KINDS, .kinds_rss = t.rss_all };
	memcpy(k.kinds, t.rss, sizeof k.kinds);
	composition_make(&k, st, "", c);
	return 0;
}

void headless_snapshot_memory(struct session *s, pid_t pid, struct snapshot *snap)
{
	char err[256];
	struct composition c;
	const struct msg_status *st = read_status(s, pid);
	if (composition_now(pid, st, &c, NULL, err, sizeof err) == 0)
		composition_to_snapshot(&c, &snap->mem);
}

int headless_rss(const struct cli_opts *o)
{
	int rc = CLI_EXIT_OK;
	struct session *s = NULL;
	const struct msg_status *st = NULL;
	if (o->no_inject && !session_agent_listening(o->pid)) {
		/* RSS only, as asked: smaps alone. */
	} else {
		s = headless_attach(o, o->pid, false, &rc);
		if (s == NULL)
			return rc;
		st = read_status(s, o->pid);
		if (st == NULL) {
			session_free(s);
			return CLI_EXIT_FAILURE;
		}
	}
	char err[256];
	double cost = 0;
	struct composition c;
	if (composition_now(o->pid, st, &c, &cost, err, sizeof err) < 0) {
		strsafe_eprintf("pmt-top: cannot tell what the RSS of pid %d is made of: %s", (int)o->pid, err);
		session_free(s);
		return CLI_EXIT_FAILURE;
	}
	print_composition(o->pid, &c, st, cost, o->json);
	session_free(s);
	return headless_flushed(rc);
}

int headless_trim(const struct cli_opts *o)
{
	int rc = CLI_EXIT_OK;
	struct session *s = headless_attach(o, o->pid, false, &rc);
	if (s == NULL)
		return rc;
	char err[512];
	uint64_t before, after;
	cJSON *result = NULL;
	struct msg_trim t;
	if (proc_read_rss(o->pid, &before) < 0) {
		strsafe_eprintf("pmt-top: cannot read the RSS of pid %d", (int)o->pid);
		rc = CLI_EXIT_NO_PROCESS;
	} else if (session_call(s, PROTO_CMD_TRIM, NULL, CALL_TIMEOUT_MS, &result, err, sizeof err) < 0) {
		strsafe_eprintf("pmt-top: pid %d: %s", (int)o->pid, err); /* "trim failed: ..." */
		rc = CLI_EXIT_FAILURE;
	} else if (msg_decode_trim(result, &t, err, sizeof err) < 0) {
		strsafe_eprintf("pmt-top: trim in pid %d: the reply is malformed: %s", (int)o->pid, err);
		rc = CLI_EXIT_FAILURE;
	} else if (proc_read_rss(o->pid, &after) < 0) {
		strsafe_eprintf("pmt-top: trim in pid %d done, but its RSS cannot be read now", (int)o->pid);
		rc = CLI_EXIT_NO_PROCESS;
	} else if (o->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "pid", o->pid);
		cJSON_AddNumberToObject(j, "rss_before", (double)before);
		cJSON_AddNumberToObject(j, "rss_after", (double)after);
		cJSON_AddNumberToObject(j, "malloc_free_before", (double)t.before.free);
		cJSON_AddNumberToObject(j, "malloc_free_after", (double)t.after.free);
		cJSON_AddBoolToObject(j, "returned", t.returned);
		cJSON_AddNumberToObject(j, "seconds", t.seconds);
		headless_print_json(j);
		cJSON_Delete(j);
	} else {
		char a[32], b[32], d[32], f1[32], f2[32];
		printf("pid %d: RSS %s -> %s (%s); malloc free %s -> %s; malloc_trim took %.0f ms\n", (int)o->pid,
		       units_bytes(a, sizeof a, (double)before), units_bytes(b, sizeof b, (double)after),
		       units_bytes_signed(d, sizeof d, (double)after - (double)before),
		       units_bytes(f1, sizeof f1, (double)t.before.free),
		       units_bytes(f2, sizeof f2, (double)t.after.free), t.seconds * 1000.0);
	}
	cJSON_Delete(result);
	session_free(s);
	return headless_flushed(rc);
}
