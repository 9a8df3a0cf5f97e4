/*
 * app_snap.c - the snapshots pmt-top keeps: taking one from the agent (the
 * global key s, from the Top view's source: the sampled profiler or
 * tracemalloc) and adding loaded ones. They live here, not in the target,
 * and survive its exit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot/snapshot.h"
#include "proc/proc_sample.h"
#include "proc/proc_sampler.h"
#include "base/monotime.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "ipc/client.h"
#include "session/composition.h"
#include "session/session.h"
#include "tui/app.h"

/* Snapshots ask for whole tracebacks: they regroup exactly to lineno or
 * filename later, so one snapshot serves every grouping of the diff. */
#define SNAP_KEY "traceback"


void app_snap_done(struct app_snap *s)
{
	snapshot_free(s->snap);
	for (size_t i = 0; i < s->nmembers; i++)
		snapshot_free(s->members[i]);
	free(s->members);
	memset(s, 0, sizeof *s);
}

void app_snapshot_add(struct app *app, struct snapshot *snap, double mono_t, const char *origin)
{
	app->snaps = xreallocarray(app->snaps, app->nsnaps + 1, sizeof *app->snaps);
	struct app_snap *s = &app->snaps[app->nsnaps++];
	memset(s, 0, sizeof *s);
	s->snap = snap;
	s->mono_t = mono_t;
	snprintf(s->origin, sizeof s->origin, "%s", origin);
	app->dirty = true;
}

static void on_snapshot(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	char err[256], origin[64], tot[32], src[64];
	if (!r->ok) {
		app_status(app, true, "snapshot failed: %s", r->message);
		return;
	}
	bool gone;
	struct snapshot *snap = snapshot_parse_consume(r->text, r->text_len, "reply", err, sizeof err, &gone);
	if (snap == NULL) {
		app_status(app, true, "the agent's snapshot is malformed: %s", err);
		return;
	}
	snapshot_sort(snap);
	snprintf(origin, sizeof origin, "pid %d", (int)app->pid);
	app_snapshot_add(app, snap, app->snap_taken_at, origin);
	app->snaps[app->nsnaps - 1].mem_pending = true;
	app->snaps[app->nsnaps - 1].mem_pid = app->pid;
	app->snaps[app->nsnaps - 1].mem_wall = app->snap_taken_wall;
	app_snap_memory(app);
	app_status(app, false, "snapshot %zu: %s in %zu places, %s (b marks a base, Snapshots view diffs)",
		   app->nsnaps, units_bytes(tot, sizeof tot, (double)snap->total_size), snap->ngroups,
		   snapshot_source_text(src, sizeof src, snap->source, snap->interval));
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void app_snap_memory(struct app *app)
{
	const struct msg_status *st = app->kinds_fig_ok ? &app->kinds_fig : NULL;
	for (size_t i = 0; i < app->nsnaps; i++) {
		struct app_snap *s = &app->snaps[i];
		if (!s->mem_pending)
			continue;
		if (s->mem_pid != app->pid) {
			s->mem_pending = false; /* another process is watched now: none */
			continue;
		}
		/* Both sources from after the snapshot, so that the parts of
		 * one moment are compared with those of another. */
		if (!(app->kinds.flags & PROC_SAMPLE_HAS_KINDS) || app->kinds.t < s->mono_t ||
		    (st && st->has_memory && st->memory.time < s->mem_wall))
			continue;
		struct composition c;
		app_composition(app, &c);
		composition_to_snapshot(&c, &s->snap->mem);
		s->mem_pending = false;
		app->dirty = true;
	}
}

void app_snapshot_take(struct app *app)
{
	if (!app_agent_ready(app)) {
		app_agent_request(app, PROTO_CMD_STATUS, NULL, NULL, NULL); /* says why */
		return;
	}
	bool sampled = app_agent_source(app) == SNAPSHOT_SOURCE_SAMPLED;
	if (sampled && !app_agent_profiling(app)) {
		char why[768];
		app_agent_profile_why(app, why, sizeof why);
		app_status(app, true, "no snapshot: %s (or m in the Top view: tracemalloc)", why);
		return;
	}
	if (!sampled && !app_agent_tracing(app)) {
		cJSON *args = cJSON_CreateObject();
		cJSON_AddNumberToObject(args, "nframe", 1);
		app_agent_request(app, PROTO_CMD_TRACEMALLOC_START, args, NULL, NULL);
		app_status(app, false, "tracemalloc was off: started it (1 frame); this snapshot and later ones "
			   "see only allocations from now on");
	}
	cJSON *args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "key", SNAP_KEY);
	if (sampled)
		cJSON_AddStringToObject(args, "source", "sampled");
	app->snap_taken_at = monotime_now();
	app->snap_taken_wall = wall_now();
	/* As text: a whole snapshot is read without a cJSON tree (snapshot.h). */
	char err[600];
	if (session_request_text(app->session, PROTO_CMD_SNAPSHOT, args, on_snapshot, app, err, sizeof err) < 0) {
		app_status(app, true, "%s", err);
		return;
	}
	/* What the RSS is made of at this moment: smaps read now on the
	 * sampling thread, and the allocator figures asked for as it comes
	 * (app_kinds_arrived). */
	if (app->sampler)
		proc_sampler_kinds_now(app->sampler);
}
