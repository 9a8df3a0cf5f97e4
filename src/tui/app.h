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
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"
#include "collect/history.h"
#include "collect/proc_sample.h"
#include "collect/proc_sampler.h"
#include "tui/graph.h"
#include "tui/theme.h"

struct app {
	const struct cli_opts *opts;

	/* The target. */
	pid_t pid;
	char cmdline[1024];
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
	struct history hist;
	struct proc_sample last;   /* newest sample */
	struct proc_sample smaps;  /* newest sample that had smaps_rollup */
	bool have_last;
	uint64_t rss_min, rss_max;
	double interval;

	/* Display state. */
	bool paused;
	double pause_t;       /* graph frozen at this time while paused */
	int zoom;             /* graph window = width * interval * 2^zoom */
	enum graph_style style;
	bool utf8;
	int view;             /* index into views[] */
	bool help;            /* help overlay shown */
	struct theme theme;
	char **theme_names;
	size_t ntheme, theme_idx;
	char status[256];
	bool status_error;
	double status_t;
	bool dirty;
};

/* Run the interactive session for opts (CLI_WATCH, CLI_RUN, CLI_DEMO).
 * Returns a process exit code (cli.h); prints a one-line reason on failure
 * after the terminal is restored. */
int app_run(const struct cli_opts *opts);

/* Show a message in the status line (error: in the error style). */
void app_status(struct app *app, bool error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The time the graph's right edge shows: now, or the moment of pausing, or
 * the moment the target exited. */
double app_graph_end(const struct app *app);

#endif
