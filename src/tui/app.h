/*
 * app.h - the interactive session: its model and its main loop.
 *
 * One thread (the UI thread) owns everything here. Data arrives from the
 * /proc sampler (through its ring) and, later, the agent connection; the loop
 * poll()s stdin and those fds, folds data into the model and redraws when
 * something changed, at most a few times a second.
 */
#ifndef PMT_TUI_APP_H
#define PMT_TUI_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"
#include "tui/tui.h"
#include "ipc/msg.h"
#include "proc/group.h"
#include "proc/history.h"
#include "proc/proc_sample.h"
#include "proc/proc_sampler.h"
#include "session/composition.h"
#include "snapshot/snapshot.h"
#include "tui/graph.h"
#include "tui/msglog.h"
#include "tui/msgpanel.h"
#include "tui/theme.h"

struct session;
struct snapshot;

/* Agents loaded at once by A in the Processes view (app_group.c). */
#define APP_LOADERS_MAX 4

/* A snapshot kept in pmt-top (not in the target): it outlives the process. */
struct app_snap {
	struct snapshot *snap;
	double mono_t;       /* monotonic time taken (graph marker); NAN if loaded */
	char origin[512];    /* "pid 123" or the file it came from */
	/* A group snapshot (S in the Processes view): snap is the sum of these,
	 * one per process (their pid set); root is the service's master in
	 * tree mode, else 0. */
	struct snapshot **members;
	size_t nmembers;
	pid_t root;
	/* What the RSS was made of is filled in from the first smaps sample
	 * and allocator figures taken after the snapshot (app_snap_memory). */
	bool mem_pending;
	pid_t mem_pid;
	double mem_wall;     /* Unix time the snapshot was asked for */
};

/* Frees what an entry of app->snaps owns. */
void app_snap_done(struct app_snap *s);

struct app {
	const struct cli_opts *opts;

	/* The target. */
	pid_t pid;
	char cmdline[1024];
	double cmdline_t;     /* when it was last read */
	double age_at_start;  /* process age (s) when we started watching */
	double t_start;       /* monotonic time we started */
	bool gone;            /* the process exited */
	double gone_t;
	pid_t child;          /* run/demo: the child we started, else 0 */
	int child_status;     /* wait status once reaped */
	bool child_reaped;
	char log_path[512];   /* run/demo: where the child's output goes */

	/* RSS from /proc. */
	struct proc_sampler *sampler;
	struct history hist;       /* RSS, from the samples */
	struct history heap_hist;  /* traced heap, from the agent's pushes */
	struct proc_sample last;   /* newest sample */
	struct proc_sample smaps;  /* newest sample that had smaps_rollup */
	struct proc_sample kinds;  /* newest sample with the kinds of memory */
	/* The agent's allocator figures taken just after that smaps read (a
	 * status {"fresh": true} asked for as it came), so that the parts of
	 * a composition are of one moment; kinds_fig_ok false: none. The next
	 * smaps read waits in kinds_next until its figures come. */
	struct msg_status kinds_fig;
	bool kinds_fig_ok;
	struct proc_sample kinds_next;
	bool kinds_asking;
	/* What the RSS was made of, one point per smaps read (the stacked
	 * graph, k in the Overview); every other point dropped when full. */
	struct comp_point {
		double t;
		int64_t part[COMP_PART_COUNT]; /* 0 when not known; the rest >= 0 */
	} *comp_hist;
	size_t comp_len;
	bool have_last;
	uint64_t rss_min, rss_max;
	double interval;

	/* A service watched as a group (app_group.c, the Processes view): NULL
	 * when one process is watched. The views other than Processes show the
	 * focused process, app->pid. */
	struct group *group;
	struct group_table gtab;   /* the newest table, sorted as the view asks */
	struct history group_hist; /* the group's total RSS */
	bool group_tree;           /* a process and its descendants (else a list) */
	pid_t group_root;          /* tree: the root */
	/* In a group, the focused process's agent is loaded only once a view
	 * other than Processes is looked at. */
	bool agent_deferred;
	bool quitting;             /* the screen is gone: messages go to stderr */
	/* A in the Processes view: agents being loaded into the group's other
	 * processes, a few at a time; each session closes once its agent
	 * answers (nothing is switched on: the agent stays, idle). */
	struct app_loader *loaders[APP_LOADERS_MAX]; /* each its own allocation */
	/* S in the Processes view: a link to every Python process of the group
	 * (kept: what a snapshot switched on is switched off on quitting), and
	 * the group snapshot under way (app_gsnap.c). */
	struct app_gsnap *gsnap;
	size_t nloaders;
	pid_t *load_queue;
	size_t nqueue;
	unsigned loads_ok, loads_failed;
	unsigned long agents_seq;  /* counts finished loads: the view looks again */

	/* The target's agent, through the session (app_agent.c); NULL when
	 * there is no process (saved snapshots only). */
	struct session *session;
	/* Where the Top view and snapshots measure (app_agent_source): the
	 * user's choice (m in the Top view) once made, else automatic. */
	bool source_chosen;
	enum snapshot_source source;
	bool profile_fallback;     /* a start with call counting in flight: if it
	                            * fails, start again without */
	char profile_note[160];    /* said once the start in flight succeeds */
	bool tm_prompt;            /* choosing tracemalloc's frame count */
	int tm_nframe;             /* the choice */

	/* Snapshots (view_snapshots.c). */
	struct app_snap *snaps;
	size_t nsnaps;
	double snap_taken_at;      /* monotonic time of the snapshot request in flight */
	double snap_taken_wall;    /* and its Unix time */

	/* Display state. */
	bool paused;
	double pause_t;       /* graph frozen at this time while paused */
	int zoom;             /* graph window = width * interval * 2^zoom */
	enum graph_style style;
	bool utf8;
	int view;             /* index into views[] */
	void **view_state;    /* per view (views[] order): its state_size bytes */
	bool help;            /* help overlay shown */
	int help_scroll;      /* its rows scrolled away at the top */
	int help_scroll_max;  /* as far as the last draw could scroll */
	struct theme theme;
	char **theme_names;
	size_t ntheme, theme_idx;
	/* The status line: the newest message of msgs, shown whole (wrapped
	 * over more rows when needed); every message stays in msgs. */
	struct msglog msgs;
	bool status_error;
	double status_t;
	struct msgpanel msgpanel;  /* M: the messages, whole, over any view */
	bool dirty;           /* redraw as soon as allowed (keys, replies) */
	bool data_dirty;      /* new samples: redraw at the next frame tick */
};

/* The session's side in the TUI (app_agent.c). The main loop drives
 * app->session itself (session_pollfd, session_handle, session_tick). */
void app_agent_start(struct app *app);
void app_agent_stop(struct app *app);
/* The agent answers. */
bool app_agent_ready(const struct app *app);
/* Its newest status, or NULL. */
const struct msg_status *app_agent_status(const struct app *app);
struct composition;
/* What the watched process's RSS is made of, from the newest smaps sample
 * and the agent's newest status (session/composition.h). */
void app_composition(struct app *app, struct composition *c);
/* Fills the pending snapshots' record of the RSS, where the newest smaps
 * sample and allocator figures are from after them (app_snap.c). */
void app_snap_memory(struct app *app);
/* A sample with the kinds of memory came (app.c): where the composition is
 * looked at (the Overview, a snapshot's record), ask the agent for
 * allocator figures of this moment and settle the pair when they come;
 * elsewhere pair it with the newest pushed figures. */
void app_kinds_arrived(struct app *app, const struct proc_sample *s);
/* Adds the settled composition to the stacked graph's history (app.c). */
void app_comp_append(struct app *app);
/* tracemalloc is on, as far as the newest status says. */
bool app_agent_tracing(const struct app *app);
/* The sampled profiler runs in the target, as the session says. */
bool app_agent_profiling(const struct app *app);
/* Where the Top view and snapshots measure: the user's choice, else the
 * sampled profiler while it runs and tracemalloc otherwise. */
enum snapshot_source app_agent_source(const struct app *app);
/* One line for a view that needs the profiler and finds it not running:
 * why, and how to get it. */
void app_agent_profile_why(const struct app *app, char *buf, size_t len);
/*
 * Start the sampled profiler (with call counting when CALLS), with the
 * interval and limits it last ran with (else the command line's), or stop
 * it; RESTART does both in one go (the agent answers in order), to switch
 * call counting. Outcomes go to the session and the status line. Nothing
 * without an agent.
 */
void app_agent_profile_start(struct app *app, bool calls);
void app_agent_profile_stop(struct app *app);
void app_agent_profile_restart(struct app *app, bool calls);
/* Send a request on the agent link; false (and a status message) when there
 * is no agent. Takes ownership of args. */
struct client_reply;
bool app_agent_request(struct app *app, int cmd, void *args,
		       void (*cb)(void *ud, struct client_reply *r), void *ud);
/* Header text for the agent state, for views. */
void app_agent_describe(const struct app *app, char *buf, size_t len);

/* The group (app_group.c). app_group_open decides from the command line
 * whether there is one (a PID with children, --tree, -p): false and ERR
 * when it cannot be watched. app_group_drain takes the newest table. */
bool app_group_open(struct app *app, char *err, size_t errlen);
void app_group_drain(struct app *app);
void app_group_close(struct app *app);
/* Load the agent into every Python process of the group that has none. */
void app_group_load_all(struct app *app);
/* Whether a load into PID is under way or waiting its turn. */
bool app_group_loading(const struct app *app, pid_t pid);
/* The event loop's side of the loads: their descriptors (at most MAX, into
 * PFD; returns how many), their events, and the timeout they need. */
size_t app_group_loader_fds(struct app *app, struct pollfd *pfd, size_t max, int *timeout);
void app_group_loader_events(struct app *app, const struct pollfd *pfd, size_t n);
/* Watch PID in the other views instead of the focused process: the old
 * one is left as quitting leaves it (what we switched on goes off). */
void app_focus(struct app *app, pid_t pid);
/* Go to view V (one of views[]). */
struct view;
void app_show_view(struct app *app, const struct view *v);
/* Loads the focused process's agent when it was deferred (a group). */
void app_agent_wanted(struct app *app);

/* A group snapshot (app_gsnap.c): S in the Processes view takes one of every
 * Python process at once (tracemalloc, started where it is off and switched
 * off again on quitting); the event loop serves its links. */
void app_gsnap_take(struct app *app);
bool app_gsnap_busy(const struct app *app);
size_t app_gsnap_fds(struct app *app, struct pollfd *pfd, size_t max, int *timeout);
void app_gsnap_events(struct app *app, const struct pollfd *pfd, size_t n);
/* Quitting: what the links switched on goes off (bounded), then they close. */
void app_gsnap_leave(struct app *app);
void app_gsnap_free(struct app *app);

/* Take a snapshot now (global key s): starts tracemalloc first if it is off. */
void app_snapshot_take(struct app *app);
/* Add a snapshot to the list (takes ownership). */
void app_snapshot_add(struct app *app, struct snapshot *snap, double mono_t, const char *origin);


/* The state of view V in this app (zeroed at start; see view.state_size). */
struct view;
void *app_view_state(const struct app *app, const struct view *v);

/* Show a message in the status line (error: in the error style), whole:
 * it wraps over more rows when it is long, and stays in the message log. */
void app_status(struct app *app, bool error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The time the graph's right edge shows: now, or the moment of pausing, or
 * the moment the target exited. */
double app_graph_end(const struct app *app);

#endif
