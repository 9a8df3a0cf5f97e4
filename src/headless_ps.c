/*
 * headless_ps.c - `pmt-top ps PID`: a service's processes, their RSS and its
 * growth, from /proc alone (no agent is loaded, none is needed).
 */
#include "headless.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/monotime.h"
#include "base/strsafe.h"
#include "base/units.h"
#include "proc/group.h"
#include "session/session.h"

static volatile sig_atomic_t ps_interrupted;

static void ps_on_interrupt(int sig)
{
	(void)sig;
	ps_interrupted = 1;
}

static void print_table(const struct group_table *t, double duration)
{
	char total[32];
	printf("%-8s %-7s %8s %10s %11s %-4s %-5s %s\n", "PID", "ROLE", "AGE", "RSS", "GROWTH/MIN", "PY",
	       "AGENT", "COMMAND");
	for (size_t i = 0; i < t->n; i++) {
		const struct group_member *m = &t->m[i];
		struct group_cells c;
		group_member_cells(m, t->t, &c);
		printf("%-8d %-7s %8s %10s %11s %-4s %-5s ", (int)m->pid,
		       m->gone ? "exited" : group_role_name(m->role), c.age, c.rss, c.rate, c.py,
		       m->gone ? "-" : session_agent_listening(m->pid) ? "yes" : "no");
		strsafe_fputs(m->cmdline[0] ? m->cmdline : m->comm, stdout);
		putchar('\n');
	}
	units_bytes(total, sizeof total, (double)t->total_rss);
	printf("%zu process%s running, RSS %s in all; growth measured over %.1f s", t->running,
	       t->running == 1 ? "" : "es", total, duration);
	if (t->unwatched)
		printf("; %zu more not watched (at most %d)", t->unwatched, GROUP_MAX_MEMBERS);
	putchar('\n');
}

static void print_json(const struct group_table *t, pid_t root, bool tree, double duration)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "mode", tree ? "tree" : "list");
	if (tree)
		cJSON_AddNumberToObject(o, "root", root);
	cJSON_AddNumberToObject(o, "duration_s", duration);
	cJSON_AddNumberToObject(o, "running", (double)t->running);
	cJSON_AddNumberToObject(o, "total_rss", (double)t->total_rss);
	cJSON_AddNumberToObject(o, "unwatched", (double)t->unwatched);
	cJSON *arr = cJSON_AddArrayToObject(o, "processes");
	for (size_t i = 0; i < t->n; i++) {
		const struct group_member *m = &t->m[i];
		cJSON *p = cJSON_CreateObject();
		cJSON_AddNumberToObject(p, "pid", m->pid);
		cJSON_AddNumberToObject(p, "ppid", m->ppid);
		cJSON_AddStringToObject(p, "role", group_role_name(m->role));
		cJSON_AddBoolToObject(p, "exited", m->gone);
		if (isnan(m->started))
			cJSON_AddNullToObject(p, "age_s");
		else
			cJSON_AddNumberToObject(p, "age_s", round((t->t - m->started) * 10) / 10);
		cJSON_AddNumberToObject(p, "rss", (double)m->rss);
		if (isnan(m->rate) || m->gone)
			cJSON_AddNullToObject(p, "growth_per_min");
		else
			cJSON_AddNumberToObject(p, "growth_per_min", round(m->rate));
		if (m->python == 1 && m->py_minor > 0) {
			char v[16];
			snprintf(v, sizeof v, "3.%d", m->py_minor);
			cJSON_AddStringToObject(p, "python", v);
		} else if (m->python >= 0) {
			cJSON_AddBoolToObject(p, "python", m->python == 1);
		} else {
			cJSON_AddNullToObject(p, "python");
		}
		cJSON_AddBoolToObject(p, "agent", !m->gone && session_agent_listening(m->pid));
		cJSON_AddStringToObject(p, "comm", m->comm);
		cJSON_AddStringToObject(p, "command", m->cmdline);
		cJSON_AddItemToArray(arr, p);
	}
	char *text = cJSON_PrintUnformatted(o);
	if (text) {
		strsafe_fputs_json(text, stdout);
		putchar('\n');
	}
	free(text);
	cJSON_Delete(o);
}

int headless_ps(const struct cli_opts *o)
{
	char err[512];
	bool no_process;
	bool tree = o->group != CLI_GROUP_LIST;
	struct group *g = group_new(NULL, tree, o->pid, o->pids, (size_t)o->npids, o->interval, &no_process,
				    err, sizeof err);
	if (g == NULL) {
		strsafe_eprintf("pmt-top: %s", err);
		return no_process ? CLI_EXIT_NO_PROCESS : CLI_EXIT_FAILURE;
	}
	struct sigaction sa = { .sa_handler = ps_on_interrupt };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* Rounds at the interval until the duration is over (Ctrl-C: now). */
	double start = monotime_now(), end = start + o->duration;
	double interval = o->interval > 0 ? o->interval : 0.5;
	for (double next = start + interval; !ps_interrupted; next += interval) {
		double now = monotime_now();
		if (now >= end)
			break;
		double wake = next < end ? next : end;
		if (wake > now) {
			struct timespec ts = { (time_t)(wake - now), (long)((wake - now - (double)(time_t)(wake - now)) * 1e9) };
			nanosleep(&ts, NULL);
		}
		group_step(g);
	}
	struct group_table t = {0};
	group_read(g, &t);
	group_sort(&t);
	/* A list names its processes: say which of them are not there. */
	for (int k = 0; k < o->npids && !tree; k++) {
		size_t i = 0;
		while (i < t.n && t.m[i].pid != o->pids[k])
			i++;
		if (i == t.n)
			strsafe_eprintf("pmt-top: no process with pid %d: left out", (int)o->pids[k]);
	}
	double measured = t.t - start;
	if (o->json)
		print_json(&t, o->pid, tree, measured);
	else
		print_table(&t, measured);
	group_table_done(&t);
	group_free(g);
	return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}
