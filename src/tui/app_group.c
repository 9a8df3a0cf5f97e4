/*
 * app_group.c - the TUI's side of a watched group (see app.h): whether there
 * is one, its table, and its total RSS over time.
 */
#include "tui/app.h"

#include <stdio.h>
#include <string.h>

#include "proc/proctree.h"
#include "tui/view.h"

bool app_group_open(struct app *app, char *err, size_t errlen)
{
	const struct cli_opts *o = app->opts;
	bool tree;
	if (o->mode != CLI_WATCH || o->group == CLI_GROUP_NONE || app->pid <= 0)
		return true;
	if (o->group == CLI_GROUP_LIST) {
		tree = false;
	} else if (o->group == CLI_GROUP_TREE) {
		tree = true;
	} else {
		/* A process with children is a service: watch them too. */
		pid_t kid;
		if (proctree_children("/proc", app->pid, &kid, 1) <= 0)
			return true;
		tree = true;
	}
	bool no_process;
	app->group = group_new(NULL, tree, app->pid, o->pids, (size_t)o->npids, app->interval, &no_process,
			       err, errlen);
	if (app->group == NULL)
		return false;
	if (group_start(app->group) < 0) {
		snprintf(err, errlen, "cannot start the group's sampling thread");
		group_free(app->group);
		app->group = NULL;
		return false;
	}
	app->group_tree = tree;
	app->group_root = app->pid;
	app->agent_deferred = true;
	app_group_drain(app);
	return true;
}

void app_group_drain(struct app *app)
{
	if (app->group == NULL || !group_read(app->group, &app->gtab))
		return;
	group_sort(&app->gtab);
	struct history_point p = { .t = app->gtab.t, .v = app->gtab.total_rss };
	if (app->group_hist.len == 0 || p.t > app->group_hist.points[app->group_hist.len - 1].t)
		history_append(&app->group_hist, &p);
	app->data_dirty = true;
}

void app_group_close(struct app *app)
{
	group_free(app->group);
	app->group = NULL;
	group_table_done(&app->gtab);
}
