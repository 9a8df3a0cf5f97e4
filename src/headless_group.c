/*
 * headless_group.c - snapshots of a whole service: `pmt-top snapshot --tree
 * PID` (or -p PID,...) and `pmt-top diff OLD_DIR NEW_DIR`.
 *
 * A group snapshot is a directory: one snapshot file per process, named
 * PID.json, and merged.json, their sum. The agents are reached one after the
 * other (loading one can take seconds), then every snapshot is asked for at
 * once, so that they are taken together. A diff of two such directories
 * pairs the processes by pid, sums both sides, and says for each line in how
 * many of the processes it grew: the same growth in every worker is the
 * code; in one of them, that worker's state.
 */
#include "headless.h"
#include "headless_intern.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/monotime.h"
#include "base/strsafe.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "proc/group.h"
#include "session/session.h"
#include "snapshot/groupsnap.h"
#include "snapshot/snapdiff.h"
#include "snapshot/snapshot.h"

#define GROUP_CALL_TIMEOUT_S 120.0
#define MERGED_FILE "merged.json"

struct member_snap {
	pid_t pid;
	struct session *session;
	bool asked, answered;
	struct snapshot *snap;
	char err[512];
};

static void on_snapshot(void *ud, struct client_reply *r)
{
	struct member_snap *m = ud;
	bool gone;
	m->answered = true;
	if (!r->ok) {
		snprintf(m->err, sizeof m->err, "%s", r->message ? r->message : "failed");
		return;
	}
	m->snap = snapshot_parse_consume(r->text, r->text_len, "reply", m->err, sizeof m->err, &gone);
}

/* Serves every session until each request is answered (or the time is up,
 * or ^C). */
static void wait_answers(struct member_snap *ms, size_t n)
{
	double deadline = monotime_now() + GROUP_CALL_TIMEOUT_S;
	struct pollfd *pfd = xcalloc(n, sizeof *pfd);
	for (;;) {
		size_t waiting = 0;
		int timeout = 1000;
		for (size_t i = 0; i < n; i++) {
			pfd[i].fd = -1;
			pfd[i].revents = 0;
			if (!ms[i].asked || ms[i].answered)
				continue;
			if (session_agent(ms[i].session) != SESSION_AGENT_READY) {
				ms[i].answered = true;
				snprintf(ms[i].err, sizeof ms[i].err, "lost the agent: %s", session_note(ms[i].session));
				continue;
			}
			waiting++;
			session_pollfd(ms[i].session, &pfd[i]);
			int t = session_timeout_ms(ms[i].session);
			if (t >= 0 && t < timeout)
				timeout = t;
		}
		if (waiting == 0 || headless_interrupted)
			break;
		if (monotime_now() > deadline) {
			for (size_t i = 0; i < n; i++)
				if (ms[i].asked && !ms[i].answered) {
					ms[i].answered = true;
					snprintf(ms[i].err, sizeof ms[i].err, "no answer within %.0f s", GROUP_CALL_TIMEOUT_S);
				}
			break;
		}
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			break;
		for (size_t i = 0; i < n; i++) {
			if (pfd[i].fd >= 0 && pfd[i].revents)
				session_handle(ms[i].session, pfd[i].revents);
			if (ms[i].session)
				session_tick(ms[i].session);
		}
	}
	free(pfd);
}

/* Serves the links already made while others are being made: the
 * keepalive of each (an agent closes a connection idle for a minute, and
 * loading the others can take that long). */
static void serve_ready(struct member_snap *ms, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pollfd pfd;
		session_pollfd(ms[i].session, &pfd);
		if (pfd.fd >= 0 && poll(&pfd, 1, 0) > 0)
			session_handle(ms[i].session, pfd.revents);
		session_tick(ms[i].session);
	}
}

/* DIR for the files: made when missing; refused when it is something else. */
static int prepare_dir(const char *dir)
{
	struct stat st;
	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno == EEXIST && lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	strsafe_eprintf("pmt-top: -o %s: a group snapshot is a directory (one file per process): %s", dir,
			errno == EEXIST ? "this is not one" : strerror(errno));
	return -1;
}

static void print_group_top(const struct snapshot *m, const uint32_t *in, size_t nsnaps, const pid_t *pids,
			    size_t top, bool json)
{
	size_t n = top && top < m->ngroups ? top : m->ngroups;
	char s1[32], s2[32];
	if (json) {
		printf("{\"key\": \"%s\", \"processes\": [", snapshot_key_name(m->key));
		for (size_t i = 0; i < nsnaps; i++)
			printf("%s%d", i ? ", " : "", (int)pids[i]);
		printf("], \"total_size\": %" PRIu64 ", \"total_count\": %" PRIu64 ", \"ngroups\": %zu, \"groups\": [",
		       m->total_size, m->total_count, m->ngroups);
		for (size_t k = 0; k < n; k++) {
			const struct snapshot_group *g = &m->groups[k];
			printf("%s{\"size\": %" PRIu64 ", \"count\": %" PRIu64 ", \"in\": %u, \"frames\": ", k ? ", " : "",
			       g->size, g->count, in[k]);
			snapshot_fput_json_frames(stdout, g);
			fputs(", \"line\": ", stdout);
			snapshot_fput_json_string(stdout, g->line);
			putchar('}');
		}
		puts("]}");
		return;
	}
	printf("snapshot of a group by %s: %zu process%s (", snapshot_key_name(m->key), nsnaps, nsnaps == 1 ? "" : "es");
	for (size_t i = 0; i < nsnaps; i++)
		printf("%s%d", i ? " " : "", (int)pids[i]);
	printf("), %s in %" PRIu64 " blocks in all; %zu locations, %zu shown\n",
	       units_bytes_table(s1, sizeof s1, (int64_t)m->total_size, false), m->total_count, m->ngroups, n);
	printf("%10s %10s %9s  %s\n", "SIZE", "COUNT", "IN", "LOCATION");
	for (size_t k = 0; k < n; k++) {
		const struct snapshot_group *g = &m->groups[k];
		snprintf(s2, sizeof s2, "%u of %zu", in[k], nsnaps);
		printf("%10s %10" PRIu64 " %9s  ", units_bytes_table(s1, sizeof s1, (int64_t)g->size, false), g->count, s2);
		snapshot_print_location(stdout, g, m->key, 33);
	}
}

int headless_snapshot_group(const struct cli_opts *o)
{
	char err[512];
	bool no_process;
	if (o->socket) {
		strsafe_eprintf("pmt-top: --socket names one agent: a group snapshot finds each process's own");
		return CLI_EXIT_USAGE;
	}
	bool tree = o->group == CLI_GROUP_TREE;
	struct group *g = group_new(NULL, tree, o->pid, o->pids, (size_t)o->npids, 0.5, &no_process, err, sizeof err);
	if (g == NULL) {
		strsafe_eprintf("pmt-top: %s", err);
		return no_process ? CLI_EXIT_NO_PROCESS : CLI_EXIT_FAILURE;
	}
	struct group_table t = {0};
	group_read(g, &t);
	group_free(g);
	if (o->output && prepare_dir(o->output) < 0) {
		group_table_done(&t);
		return CLI_EXIT_FAILURE;
	}

	struct sigaction sa = { 0 }, old_int, old_term;
	sa.sa_handler = headless_on_interrupt;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	/* The agents, one after the other. */
	struct member_snap *ms = xcalloc(t.n ? t.n : 1, sizeof *ms);
	size_t n = 0;
	int rc = CLI_EXIT_OK, last_rc = CLI_EXIT_OK;
	for (size_t i = 0; i < t.n && !headless_interrupted; i++) {
		const struct group_member *m = &t.m[i];
		if (m->gone)
			continue;
		if (m->python == 0) {
			strsafe_eprintf("pmt-top: pid %d is not a Python process (%s): left out", (int)m->pid, m->comm);
			continue;
		}
		struct session *s = headless_attach(o, m->pid, false, &last_rc);
		if (s == NULL)
			continue; /* said why */
		if ((o->start_tracing || o->wait > 0) && headless_snapshot_prepare(s, o, m->pid, &last_rc) < 0) {
			session_free(s);
			continue;
		}
		ms[n].pid = m->pid;
		ms[n++].session = s;
		serve_ready(ms, n);
	}
	group_table_done(&t);

	/* Every snapshot asked for at once. The first agents waited while the
	 * others were loaded: one that closed its idle connection meanwhile is
	 * connected to again (at once: it is there). */
	for (size_t i = 0; i < n; i++) {
		enum session_failure why;
		if (session_agent(ms[i].session) != SESSION_AGENT_READY &&
		    session_wait_ready(ms[i].session, &headless_interrupted, &why, ms[i].err, sizeof ms[i].err) < 0) {
			ms[i].answered = true;
			continue;
		}
		cJSON *args = cJSON_CreateObject();
		cJSON_AddStringToObject(args, "key", o->key ? o->key : "lineno");
		if (session_request_text(ms[i].session, PROTO_CMD_SNAPSHOT, args, on_snapshot, &ms[i], ms[i].err,
					 sizeof ms[i].err) >= 0)
			ms[i].asked = true;
		else
			ms[i].answered = true;
	}
	wait_answers(ms, n);

	struct snapshot **snaps = xcalloc(n ? n : 1, sizeof *snaps);
	pid_t *pids = xcalloc(n ? n : 1, sizeof *pids);
	size_t got = 0;
	for (size_t i = 0; i < n; i++) {
		if (ms[i].snap == NULL) {
			strsafe_eprintf("pmt-top: snapshot of pid %d failed: %s", (int)ms[i].pid,
					ms[i].err[0] ? ms[i].err : "interrupted");
			continue;
		}
		headless_snapshot_memory(ms[i].session, ms[i].pid, ms[i].snap);
		snapshot_sort(ms[i].snap);
		if (o->output) {
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s/%d.json", o->output, (int)ms[i].pid);
			if (snapshot_save(ms[i].snap, path, err, sizeof err) < 0) {
				strsafe_eprintf("pmt-top: %s", err);
				rc = CLI_EXIT_FAILURE;
			}
		}
		pids[got] = ms[i].pid;
		snaps[got++] = ms[i].snap;
	}
	if (got == 0) {
		if (rc == CLI_EXIT_OK)
			rc = last_rc != CLI_EXIT_OK ? last_rc : CLI_EXIT_NO_AGENT;
		strsafe_eprintf("pmt-top: no snapshot of any process of the group");
		goto done;
	}
	bool mixed;
	struct snapshot *merged = groupsnap_merge(snaps, got, &mixed, err, sizeof err);
	if (merged == NULL) {
		strsafe_eprintf("pmt-top: %s", err);
		rc = CLI_EXIT_FAILURE;
		goto done;
	}
	if (mixed)
		strsafe_eprintf("pmt-top: the processes were not all measured the same way (tracemalloc and the "
				"sampled profiler): their sum mixes the two");
	snapshot_sort(merged);
	char label[96];
	snprintf(label, sizeof label, "sum of %zu processes", got);
	snapshot_set_label(merged, label);
	merged->pid = tree ? (uint32_t)o->pid : 0;
	if (o->output) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/" MERGED_FILE, o->output);
		if (snapshot_save(merged, path, err, sizeof err) < 0) {
			strsafe_eprintf("pmt-top: %s", err);
			rc = CLI_EXIT_FAILURE;
		} else {
			strsafe_eprintf("pmt-top: saved %zu snapshots and their sum to %s", got, o->output);
		}
	}
	if (!o->output || o->json) {
		uint32_t *in = xcalloc(merged->ngroups ? merged->ngroups : 1, sizeof *in);
		groupsnap_presence(merged, snaps, got, in);
		print_group_top(merged, in, got, pids, (size_t)o->top, o->json);
		free(in);
	}
	snapshot_free(merged);
done:
	for (size_t i = 0; i < n; i++) {
		snapshot_free(ms[i].snap);
		session_free(ms[i].session);
	}
	free(ms);
	free(snaps);
	free(pids);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (rc == CLI_EXIT_OK && fflush(stdout) != 0)
		rc = CLI_EXIT_FAILURE;
	return rc;
}

/* ---- diff of two group snapshots ---- */

struct dir_snaps {
	struct snapshot **s;
	size_t n;
};

static int pid_cmp(const void *a, const void *b)
{
	const struct snapshot *x = *(struct snapshot *const *)a, *y = *(struct snapshot *const *)b;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Every PID.json of DIR. 0, or -1 after printing why. */
static int load_dir(const char *dir, struct dir_snaps *out)
{
	char err[512];
	DIR *d = opendir(dir);
	if (d == NULL) {
		strsafe_eprintf("pmt-top: cannot read %s: %s", dir, strerror(errno));
		return -1;
	}
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL && rc == 0) {
		const char *p = e->d_name;
		size_t digits = strspn(p, "0123456789");
		if (digits == 0 || digits > 10 || strcmp(p + digits, ".json") != 0)
			continue;
		if (out->n == GROUP_MAX_MEMBERS) {
			strsafe_eprintf("pmt-top: %s: more than %d snapshots", dir, GROUP_MAX_MEMBERS);
			rc = -1;
			break;
		}
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", dir, p);
		struct snapshot *s = snapshot_load(path, err, sizeof err);
		if (s == NULL) {
			strsafe_eprintf("pmt-top: %s", err);
			rc = -1;
			break;
		}
		s->pid = (uint32_t)strtoul(p, NULL, 10); /* the file's name says whose */
		out->s = xreallocarray(out->s, out->n + 1, sizeof *out->s);
		out->s[out->n++] = s;
	}
	closedir(d);
	if (rc == 0 && out->n == 0) {
		strsafe_eprintf("pmt-top: %s holds no snapshot (PID.json): is it a group snapshot "
				"(pmt-top snapshot --tree PID -o DIR)?", dir);
		rc = -1;
	}
	if (out->n > 1)
		qsort(out->s, out->n, sizeof *out->s, pid_cmp);
	return rc;
}

static void free_dir(struct dir_snaps *d)
{
	for (size_t i = 0; i < d->n; i++)
		snapshot_free(d->s[i]);
	free(d->s);
}

/* Regroups S to KEY when it is finer. 0, or -1 after printing why. */
static int to_key(struct snapshot **s, enum proto_key key, const char *dir)
{
	char err[512];
	if ((*s)->key == key)
		return 0;
	struct snapshot *r = snapshot_regroup(*s, key, err, sizeof err);
	if (r == NULL) {
		strsafe_eprintf("pmt-top: %s/%u.json: %s", dir, (*s)->pid, err);
		return -1;
	}
	snapshot_free(*s);
	*s = r;
	return 0;
}

/* The pid of the service's root (the master), from DIR/merged.json: 0
 * when there is none (a list of pids) or it cannot be read. */
static pid_t group_root(const char *dir)
{
	char path[PATH_MAX], err[256];
	snprintf(path, sizeof path, "%s/" MERGED_FILE, dir);
	struct snapshot *m = snapshot_load(path, err, sizeof err);
	pid_t root = m ? (pid_t)m->pid : 0;
	snapshot_free(m);
	return root;
}

static void print_group_diff(const struct snapdiff *d, const uint32_t *grew, const uint32_t *seen,
			     const uint32_t *root_grew, pid_t root, struct snapshot *const *olds, size_t n,
			     const struct dir_snaps *a, const struct dir_snaps *b, size_t top, bool json)
{
	size_t shown = top && top < d->n ? top : d->n;
	char s1[32], s2[32], s3[32];
	if (json) {
		printf("{\"key\": \"%s\", \"processes\": [", snapshot_key_name(d->key));
		for (size_t i = 0; i < n; i++)
			printf("%s%u", i ? ", " : "", olds[i]->pid);
		printf("], \"root\": %d, \"only_old\": %zu, \"only_new\": %zu, \"total_size_diff\": %" PRId64
		       ", \"total_count_diff\": %" PRId64 ", \"entries\": [",
		       (int)root, a->n - n, b->n - n, d->total_size_diff, d->total_count_diff);
		for (size_t k = 0; k < shown; k++) {
			const struct snapdiff_entry *e = &d->entries[k];
			printf("%s{\"size_diff\": %" PRId64 ", \"size\": %" PRIu64 ", \"count_diff\": %" PRId64
			       ", \"count\": %" PRIu64 ", \"grew_in\": %u, \"in\": %u, \"grew_in_root\": %s, \"frames\": ",
			       k ? ", " : "", e->size_diff, e->size, e->count_diff, e->count, grew[k], seen[k],
			       root_grew[k] ? "true" : "false");
			snapshot_fput_json_frames(stdout, snapdiff_entry_group(e));
			fputs(", \"line\": ", stdout);
			snapshot_fput_json_string(stdout, snapdiff_entry_group(e)->line);
			putchar('}');
		}
		puts("]}");
		return;
	}
	printf("diff of a group by %s: %zu process%s in both (", snapshot_key_name(d->key), n, n == 1 ? "" : "es");
	for (size_t i = 0; i < n; i++)
		printf("%s%u", i ? " " : "", olds[i]->pid);
	printf(")");
	if (a->n > n || b->n > n)
		printf("; left out: %zu only in the old (exited), %zu only in the new (started since)", a->n - n,
		       b->n - n);
	printf("\ntraced %s -> %s (%s)\n", units_bytes_table(s1, sizeof s1, (int64_t)d->old_snap->total_size, false),
	       units_bytes_table(s2, sizeof s2, (int64_t)d->new_snap->total_size, false),
	       units_bytes_table(s3, sizeof s3, d->total_size_diff, true));
	printf("%zu locations, %zu shown by %s; GREW IN: in which of the processes the line grew%s\n", d->n,
	       shown, snapdiff_order_name(d->order), root ? "" : " (no master: a list of pids)");
	int w = 7;
	char spread[64];
	for (size_t k = 0; k < shown; k++) {
		groupsnap_spread_text(spread, sizeof spread, grew[k], root_grew[k], root != 0, n);
		if ((int)strlen(spread) > w)
			w = (int)strlen(spread);
	}
	printf("%11s %10s %10s  %-*s  %s\n", "SIZE DIFF", "SIZE", "COUNT DIFF", w, "GREW IN", "LOCATION");
	for (size_t k = 0; k < shown; k++) {
		const struct snapdiff_entry *e = &d->entries[k];
		groupsnap_spread_text(spread, sizeof spread, grew[k], root_grew[k], root != 0, n);
		printf("%11s %10s %+10" PRId64 "  %-*s  ", units_bytes_table(s1, sizeof s1, e->size_diff, true),
		       units_bytes_table(s2, sizeof s2, (int64_t)e->size, false), e->count_diff, w, spread);
		snapshot_print_location(stdout, snapdiff_entry_group(e), d->key, 38 + w);
	}
}

int headless_diff_groups(const struct cli_opts *o)
{
	char err[512];
	int rc = CLI_EXIT_FAILURE;
	struct dir_snaps a = {0}, b = {0};
	struct snapshot **olds = NULL, **news = NULL, *mo = NULL, *mn = NULL;
	struct snapdiff *d = NULL;
	uint32_t *grew = NULL, *seen = NULL, *root_grew = NULL, *root_seen = NULL;
	if (load_dir(o->diff_old, &a) < 0 || load_dir(o->diff_new, &b) < 0)
		goto done;
	/* The coarsest key of all (or --key), as `diff` does for two files. */
	enum proto_key key = PROTO_KEY_TRACEBACK;
	struct dir_snaps *both[2] = { &a, &b };
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < both[s]->n; i++) {
			enum proto_key k = both[s]->s[i]->key;
			if (k == PROTO_KEY_FILENAME || (key != PROTO_KEY_FILENAME && k < key))
				key = k;
		}
	if (o->key && snapshot_key_from_name(o->key, &key) < 0) {
		strsafe_eprintf("pmt-top: unknown key %s", o->key);
		rc = CLI_EXIT_USAGE;
		goto done;
	}
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < both[s]->n; i++)
			if (to_key(&both[s]->s[i], key, s ? o->diff_new : o->diff_old) < 0)
				goto done;
	/* Pairs by pid (both lists are sorted). */
	olds = xcalloc(a.n, sizeof *olds);
	news = xcalloc(a.n, sizeof *news);
	size_t n = 0;
	for (size_t i = 0, j = 0; i < a.n && j < b.n;) {
		if (a.s[i]->pid == b.s[j]->pid) {
			olds[n] = a.s[i++];
			news[n++] = b.s[j++];
		} else if (a.s[i]->pid < b.s[j]->pid) {
			i++;
		} else {
			j++;
		}
	}
	if (n == 0) {
		strsafe_eprintf("pmt-top: no process is in both %s and %s (the pids differ: were they taken of the "
				"same service?)", o->diff_old, o->diff_new);
		goto done;
	}
	mo = groupsnap_merge(olds, n, NULL, err, sizeof err);
	mn = mo ? groupsnap_merge(news, n, NULL, err, sizeof err) : NULL;
	d = mn ? snapdiff_new(mo, mn, err, sizeof err) : NULL;
	if (d == NULL) {
		strsafe_eprintf("pmt-top: %s", err);
		goto done;
	}
	grew = xcalloc(d->n ? d->n : 1, sizeof *grew);
	seen = xcalloc(d->n ? d->n : 1, sizeof *seen);
	groupsnap_spread(d, olds, news, n, grew, seen);
	/* The master apart: "1 of 3 workers" says more than "1 of 4". */
	pid_t root = group_root(o->diff_new);
	if (root != group_root(o->diff_old))
		root = 0;
	size_t r = 0;
	while (r < n && (pid_t)olds[r]->pid != root)
		r++;
	if (r == n)
		root = 0;
	root_grew = xcalloc(d->n ? d->n : 1, sizeof *root_grew);
	root_seen = xcalloc(d->n ? d->n : 1, sizeof *root_seen);
	if (root)
		groupsnap_spread(d, &olds[r], &news[r], 1, root_grew, root_seen);
	print_group_diff(d, grew, seen, root_grew, root, olds, n, &a, &b, (size_t)o->top, o->json);
	rc = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
done:
	free(grew);
	free(seen);
	free(root_grew);
	free(root_seen);
	snapdiff_free(d);
	snapshot_free(mo);
	snapshot_free(mn);
	free(olds);
	free(news);
	free_dir(&a);
	free_dir(&b);
	return rc;
}
