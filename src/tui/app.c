/*
 * app.c - the interactive session: start-up, the poll() loop, global keys,
 * the title and status bars (see app.h).
 */
#include "session/session.h"
#include "base/monotime.h"
#include "tui/app.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach/inject.h"
#include "base/leftover.h"
#include "base/paths.h"
#include "base/spawn.h"
#include "snapshot/snapshot.h"
#include "ipc/client.h"
#include "base/strsafe.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "tui/keys.h"
#include "tui/prompt.h"
#include "tui/screen.h"
#include "tui/view.h"

#define HISTORY_POINTS 16384
#define COMP_HISTORY_POINTS 4096
#define REDRAW_MIN_GAP 0.066   /* at most ~15 frames a second */
#define STATUS_SHOW_SECONDS 6.0
#define STATUS_ROW_SECONDS 3.0 /* more time to read each extra row */


static void leave_target_clean(struct app *app);

static const int tm_frames[] = { 1, 5, 10, 25, 50, 100 };
static const double interval_steps[] = { 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60 };

/* Re-read the command line: a process may exec (a pyenv shim becomes python)
 * or rewrite its argv (setproctitle). */
static void read_cmdline(struct app *app)
{
	char path[64], buf[8192];
	app->cmdline_t = monotime_now();
	if (app->gone)
		return;
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)app->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0)
		proc_sample_cmdline_text(buf, (size_t)n, app->cmdline, sizeof app->cmdline);
	else if (app->cmdline[0] == '\0')
		snprintf(app->cmdline, sizeof app->cmdline, "(no command line)");
}

/* Read the target's command line and age, at start. */
static void read_identity(struct app *app)
{
	char path[64], buf[1024];
	read_cmdline(app);
	snprintf(path, sizeof path, "/proc/%d/stat", (int)app->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	unsigned long long start;
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (proc_sample_parse_stat_start(buf, &start) < 0)
		return;
	FILE *f = fopen("/proc/uptime", "r");
	double up = 0;
	if (f) {
		if (fscanf(f, "%lf", &up) != 1)
			up = 0;
		fclose(f);
	}
	long hz = sysconf(_SC_CLK_TCK);
	if (up > 0 && hz > 0)
		app->age_at_start = up - (double)start / (double)hz;
}

/* The environment of the child of run/demo: Python preloads the agent
 * through the sitecustomize shim (which chains to any sitecustomize
 * already there). Fills PATHVAR and TRACEVAR and SET (NULL-ended). */
static void preload_env(const struct cli_opts *o, char *pathvar, size_t pathlen, char *tracevar, size_t tracelen,
			char *set[3])
{
	const char *old = getenv("PYTHONPATH");
	snprintf(pathvar, pathlen, "PYTHONPATH=%s:%s:%s%s%s", paths_shim_dir(), paths_agent_dir(),
		 paths_native_dir(), old && *old ? ":" : "", old && *old ? old : "");
	int n = 0;
	set[n++] = pathvar;
	int trace = o->trace ? o->trace : o->mode == CLI_DEMO ? 5 : 0;
	if (trace) {
		snprintf(tracevar, tracelen, "PMT_AGENT_TRACE=%d", trace);
		set[n++] = tracevar;
	}
	set[n] = NULL;
}

/*
 * Open the --log file for appending. pmt-top runs as root and the path may be
 * in a directory others write to: refuse a symbolic link (which could point
 * at a file of root's), a FIFO or device (opened non-blocking, so the open
 * itself cannot hang), and a file someone else owns. A file we create gets
 * mode 0600.
 */
static int open_log(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
		      0600);
	struct stat st;
	if (fd < 0) {
		/* Say why in terms of what is there: the kernel's errno for the
		 * same thing varies (ELOOP or EACCES for a link, depending on
		 * fs.protected_symlinks; ENXIO for a FIFO without a reader). */
		int e = errno;
		bool there = e != ENOENT && lstat(path, &st) == 0;
		if (there && S_ISLNK(st.st_mode))
			snprintf(err, errlen, "refusing the log file %.300s: it is a symbolic link "
				 "(give the file itself)", path);
		else if (there && !S_ISREG(st.st_mode))
			snprintf(err, errlen, "refusing the log file %.300s: it is not a regular file", path);
		else if (there && st.st_uid != geteuid())
			snprintf(err, errlen, "refusing the log file %.300s: it is owned by uid %u, not by us "
				 "(uid %u); remove it or choose another name", path, (unsigned)st.st_uid,
				 (unsigned)geteuid());
		else
			snprintf(err, errlen, "cannot open the log file %.300s: %s", path, strerror(e));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot check the log file %.300s: %s", path, strerror(errno));
		goto refuse;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "refusing the log file %.300s: it is not a regular file", path);
		goto refuse;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "refusing the log file %.300s: it is owned by uid %u, not by us (uid %u); "
			 "remove it or choose another name", path, (unsigned)st.st_uid, (unsigned)geteuid());
		goto refuse;
	}
	/* The child writes to it as to any file: blocking again. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		snprintf(err, errlen, "cannot use the log file %.300s: %s", path, strerror(errno));
		goto refuse;
	}
	return fd;
refuse:
	close(fd);
	return -1;
}

/* The demo's own log in $TMPDIR: pmt-top-demo-<pid>-<pid namespace>-XXXXXX.log. */
#define DEMO_LOG_PREFIX "pmt-top-demo-"
static const struct leftover_kind demo_log_kind = {
	.prefix = DEMO_LOG_PREFIX,
	.suffix = ".log",
	.directory = false,
	.modes = { 0600, 0600 },
};

/* Start the command of run/demo with its output in a log file. */
static int spawn_child(struct app *app, char *const argv[], char *err, size_t errlen)
{
	const struct cli_opts *o = app->opts;
	int logfd;
	if (o->log) {
		snprintf(app->log_path, sizeof app->log_path, "%s", o->log);
		if ((logfd = open_log(o->log, err, errlen)) < 0) {
			app->log_path[0] = '\0';
			return -1;
		}
	} else {
		const char *tmp = getenv("TMPDIR");
		char name[96];
		if (tmp == NULL || *tmp == '\0')
			tmp = "/tmp";
		if (o->mode == CLI_DEMO) {
			/* The demo's log goes when it ends; one a killed pmt-top left
			 * behind goes at the next demo (run's logs are kept). */
			leftover_sweep_path(tmp, &demo_log_kind);
			if (leftover_name(name, sizeof name, DEMO_LOG_PREFIX) < 0)
				name[0] = '\0';
		} else {
			snprintf(name, sizeof name, "pmt-top-%d-", (int)getpid());
		}
		snprintf(app->log_path, sizeof app->log_path, "%s/%sXXXXXX.log", tmp, name);
		logfd = mkostemps(app->log_path, 4, O_CLOEXEC);
	}
	if (logfd < 0) {
		snprintf(err, errlen, "cannot create the log file %.300s: %s", app->log_path, strerror(errno));
		app->log_path[0] = '\0';
		return -1;
	}

	char pathvar[8192], tracevar[64], *set[3];
	preload_env(o, pathvar, sizeof pathvar, tracevar, sizeof tracevar, set);
	const struct spawn_opts so = {
		.out_fd = logfd,
		.parent_death_signal = SIGTERM,
		.set_env = set,
	};
	pid_t pid = spawn(argv, &so, NULL, err, errlen);
	close(logfd);
	if (pid < 0) {
		if (errno == ENOENT)
			snprintf(err, errlen, "cannot run \"%s\": %s", argv[0], strerror(ENOENT));
		return -1;
	}
	app->child = pid;
	app->pid = pid;
	return 0;
}

/* Stop the child of run/demo: its whole process group, politely first.
 * SIGINT is what ^C would send: Python unwinds and runs its atexit handlers
 * (the agent removes its socket); SIGTERM and SIGKILL follow if needed. */
/* Wait up to tenths/10 s for the child to exit. */
static bool wait_child(struct app *app, int tenths)
{
	for (int i = 0; i < tenths * 2; i++) {
		if (waitpid(app->child, &app->child_status, WNOHANG) == app->child) {
			app->child_reaped = true;
			return true;
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

static void stop_child(struct app *app)
{
	if (app->child <= 0 || app->child_reaped)
		return;
	kill(-app->child, SIGINT);
	if (wait_child(app, 10))
		return;
	kill(-app->child, SIGTERM);
	kill(app->child, SIGTERM);
	if (wait_child(app, 20))
		return;
	kill(-app->child, SIGKILL);
	kill(app->child, SIGKILL);
	waitpid(app->child, &app->child_status, 0);
	app->child_reaped = true;
}

static void reap_child(struct app *app)
{
	if (app->child <= 0 || app->child_reaped)
		return;
	if (waitpid(app->child, &app->child_status, WNOHANG) == app->child) {
		app->child_reaped = true;
		int st = app->child_status;
		if (WIFEXITED(st))
			app_status(app, WEXITSTATUS(st) != 0, "the program exited with status %d", WEXITSTATUS(st));
		else if (WIFSIGNALED(st))
			app_status(app, true, "the program was killed by signal %d (%s)", WTERMSIG(st),
				   strsignal(WTERMSIG(st)));
	}
}

/* The composition of the newest smaps read, into the stacked graph's
 * history (bounded: halved when full). */
void app_comp_append(struct app *app)
{
	struct composition c;
	app_composition(app, &c);
	if (!c.valid)
		return;
	if (app->comp_hist == NULL)
		app->comp_hist = xcalloc(COMP_HISTORY_POINTS, sizeof *app->comp_hist);
	if (app->comp_len == COMP_HISTORY_POINTS) {
		for (size_t i = 0; i < COMP_HISTORY_POINTS / 2; i++)
			app->comp_hist[i] = app->comp_hist[2 * i + 1];
		app->comp_len = COMP_HISTORY_POINTS / 2;
	}
	struct comp_point *p = &app->comp_hist[app->comp_len++];
	p->t = c.t;
	for (int k = 0; k < COMP_PART_COUNT; k++)
		p->part[k] = c.part[k].shown && c.part[k].bytes > 0 ? c.part[k].bytes : 0;
}

static void fold_sample(struct app *app, const struct proc_sample *s)
{
	if (s->flags & PROC_SAMPLE_GONE) {
		if (!app->gone) {
			app->gone = true;
			app->gone_t = app->have_last ? app->last.t : s->t;
			if (app->session)
				session_set_gone(app->session);
			if (app->child <= 0)
				app_status(app, true, "process %d has exited; its history stays on screen (q quits)",
					   (int)app->pid);
		}
		return;
	}
	app->last = *s;
	if (s->flags & PROC_SAMPLE_HAS_SMAPS)
		app->smaps = *s;
	if (s->flags & PROC_SAMPLE_HAS_KINDS)
		app_kinds_arrived(app, s);
	if (!app->have_last || s->rss < app->rss_min)
		app->rss_min = s->rss;
	if (!app->have_last || s->rss > app->rss_max)
		app->rss_max = s->rss;
	app->have_last = true;
	struct history_point p = { .t = s->t, .v = s->rss };
	history_append(&app->hist, &p);
	app->data_dirty = true;
}

static void drain_samples(struct app *app)
{
	struct proc_sample buf[64];
	size_t n;
	if (app->sampler == NULL)
		return;
	while ((n = proc_sampler_drain(app->sampler, buf, 64)) > 0)
		for (size_t i = 0; i < n; i++)
			fold_sample(app, &buf[i]);
}

static void load_themes(struct app *app)
{
	app->ntheme = theme_list(paths_themes_dir(), &app->theme_names);
}

/* Switch to theme index i (cycling with 't'). */
static void use_theme(struct app *app, size_t i)
{
	char err[512];
	if (app->ntheme == 0)
		return;
	app->theme_idx = i % app->ntheme;
	if (theme_load(paths_themes_dir(), app->theme_names[app->theme_idx], &app->theme, err, sizeof err) < 0) {
		app_status(app, true, "%s", err);
		return;
	}
	screen_apply_theme(&app->theme);
	if (screen_has_colour())
		app_status(app, false, "theme: %s", app->theme.name);
	else
		app_status(app, false, "theme: %s (no colours: %s)", app->theme.name,
			   getenv("NO_COLOR") ? "NO_COLOR is set" : "the terminal has none");
	app->dirty = true;
}

static void draw_title(struct app *app)
{
	int x = 0;
	screen_fill(0, 0, COLS, THEME_TAB);
	x += screen_text(0, x, COLS, THEME_TITLE, false, " pmt-top ");
	for (int i = 0; i < views_count && x < COLS; i++) {
		char tab[48];
		snprintf(tab, sizeof tab, " %d %s ", i + 1, views[i]->name);
		x += screen_text(0, x, COLS - x, i == app->view ? THEME_TAB_ACTIVE : THEME_TAB, false, tab);
	}
	char right[64];
	if (app->paused)
		snprintf(right, sizeof right, " PAUSED ");
	else {
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(right, sizeof right, " %H:%M:%S ", &tm);
	}
	int rw = (int)strlen(right);
	if (COLS - rw > x)
		screen_text(0, COLS - rw, rw, app->paused ? THEME_STATUS_ERROR : THEME_TAB, false, right);
}

/* Whether the newest message still shows: an error until another message
 * replaces it, anything else for a few seconds, more per extra row. */
static bool status_showing(const struct app *app, int rows_needed)
{
	const struct msglog_entry *e = msglog_last(&app->msgs);
	if (e == NULL || e->text[0] == '\0')
		return false;
	double shown = STATUS_SHOW_SECONDS + STATUS_ROW_SECONDS * (rows_needed > 1 ? rows_needed - 1 : 0);
	return app->status_error || monotime_now() - app->status_t < shown;
}

/* The frame-count chooser's line. */
static void tm_prompt_line(const struct app *app, char *line, size_t len)
{
	int x = snprintf(line, len, "start tracemalloc with how many frames?");
	for (size_t i = 0; i < sizeof tm_frames / sizeof tm_frames[0]; i++)
		x += snprintf(line + x, len - (size_t)x, (int)i == app->tm_nframe ? " [%d]" : " %d", tm_frames[i]);
	snprintf(line + x, len - (size_t)x, "   (arrows choose, Enter starts, Esc cancels)");
}

/*
 * The bottom of the screen: the status message, whole (wrapped over up to a
 * third of the screen; beyond that its start and a marker that M shows all
 * of it), else the key hints; under it the prompt when one is open (the
 * view's or the frame-count chooser). Returns the rows it took.
 */
static int draw_status(struct app *app)
{
	const struct prompt *prompt = views[app->view]->prompt ? views[app->view]->prompt(app) : NULL;
	int w = COLS - 2, max_rows = LINES / 3 > 1 ? LINES / 3 : 1;
	char tm_line[256];
	int prompt_rows = 0;
	if (app->msgpanel.open) {
		/* Its own keys instead: the messages are all in the panel. */
		screen_fill(LINES - 1, 0, COLS, THEME_STATUS);
		screen_text(LINES - 1, 1, COLS - 1, THEME_STATUS, false,
			    "messages: Up/Down PgUp/PgDn Home/End scroll  Esc closes");
		return 1;
	}
	if (prompt) {
		prompt_draw(prompt);
		prompt_rows = 1;
	} else if (app->tm_prompt) {
		tm_prompt_line(app, tm_line, sizeof tm_line);
		prompt_rows = screen_wrap_rows(w, tm_line);
		prompt_rows = prompt_rows < 1 ? 1 : prompt_rows > 3 ? 3 : prompt_rows;
		for (int r = 0; r < prompt_rows; r++)
			screen_fill(LINES - prompt_rows + r, 0, COLS, THEME_STATUS);
		screen_wrap(LINES - prompt_rows, 1, w, prompt_rows, THEME_STATUS, tm_line, "...");
	}
	max_rows -= prompt_rows;
	if (max_rows < 1)
		max_rows = 1;

	const struct msglog_entry *e = msglog_last(&app->msgs);
	char *text = e ? msglog_text(e) : NULL;
	int need = text ? screen_wrap_rows(w, text) : 0, rows = 0;
	if (text && status_showing(app, need)) {
		enum theme_role role = app->status_error ? THEME_STATUS_ERROR : THEME_STATUS;
		rows = need < max_rows ? need : max_rows;
		int y = LINES - prompt_rows - rows;
		for (int r = 0; r < rows; r++)
			screen_fill(y + r, 0, COLS, role);
		screen_wrap(y, 1, w, rows, role, text, app->utf8 ? "\xe2\x80\xa6 (M: all of it)" : "... (M: all of it)");
	} else if (prompt_rows == 0) {
		char hints[512];
		/* Whole hints only: as many as the row holds. */
		binding_hints(app_keys, hints, COLS < (int)sizeof hints ? (size_t)COLS : sizeof hints);
		screen_fill(LINES - 1, 0, COLS, THEME_STATUS);
		screen_text(LINES - 1, 1, COLS - 1, THEME_STATUS, false, hints);
		rows = 1;
	}
	free(text);
	return rows + prompt_rows;
}

static void draw(struct app *app)
{
	screen_begin_frame();
	if (COLS < 40 || LINES < 10) {
		screen_text(0, 0, COLS, THEME_WARNING, false, "terminal too small (need 40x10)");
	} else {
		draw_title(app);
		int bottom = draw_status(app);
		views[app->view]->draw(app, 1, LINES - 1 - bottom, COLS);
		if (app->msgpanel.open) {
			char agent[1024];
			app_agent_describe(app, agent, sizeof agent);
			msgpanel_draw(&app->msgpanel, &app->msgs, app->pid > 0 ? agent : NULL, 1, LINES - 1 - bottom,
				      COLS);
		}
		if (app->help)
			view_help_draw(app, app_keys);
	}
	screen_end_frame();
	app->dirty = app->data_dirty = false;
}

/* How often new samples are drawn: every two samples (a braille cell holds
 * two of them, so the graph moves a whole cell at a time), at most 1 s apart
 * and never more often than the samples come. */
static double frame_period(const struct app *app)
{
	if (app->interval >= 1.0)
		return app->interval;
	return app->interval * 2 < 1.0 ? app->interval * 2 : 1.0;
}

static void set_interval(struct app *app, double seconds)
{
	if (app->sampler == NULL)
		return;
	app->interval = seconds;
	proc_sampler_set_interval(app->sampler, seconds);
	if (app->group)
		group_set_interval(app->group, seconds);
	if (app->session)
		session_set_interval(app->session, seconds);
	app_status(app, false, "sampling every %gs", seconds);
}

static void switch_view(struct app *app, int v)
{
	if (v == app->view)
		return;
	app->view = v;
	app->dirty = true;
	if (views[v] != &view_processes && views[v] != &view_log)
		app_agent_wanted(app);
}

void app_show_view(struct app *app, const struct view *v)
{
	for (int i = 0; i < views_count; i++)
		if (views[i] == v)
			switch_view(app, i);
}

void app_agent_wanted(struct app *app)
{
	if (!app->agent_deferred || app->session || app->pid <= 0)
		return;
	app->agent_deferred = false;
	app_agent_start(app);
}

/* Zeroes what the views knew of the old target, and starts them again. */
static void views_restart(struct app *app)
{
	for (int i = 0; i < views_count; i++) {
		if (views[i] == &view_processes || views[i] == &view_snapshots)
			continue; /* the group, and snapshots, outlive a focus */
		if (views[i]->done)
			views[i]->done(app);
		if (views[i]->state_size)
			memset(app->view_state[i], 0, views[i]->state_size);
		if (views[i]->init)
			views[i]->init(app);
	}
}

void app_focus(struct app *app, pid_t pid)
{
	char err[512];
	enum proc_sampler_error why;
	if (pid == app->pid && !app->gone) {
		app_show_view(app, &view_overview);
		return;
	}
	struct proc_sampler *ps = proc_sampler_new(pid, app->interval, &why, err, sizeof err);
	if (ps == NULL) {
		app_status(app, true, "cannot watch pid %d: %s", (int)pid, err);
		return;
	}
	/* The old target is left as quitting would leave it. */
	leave_target_clean(app);
	app_agent_stop(app);
	proc_sampler_free(app->sampler);
	app->sampler = ps;
	app->pid = pid;
	app->gone = false;
	app->have_last = false;
	app->rss_min = app->rss_max = 0;
	memset(&app->last, 0, sizeof app->last);
	memset(&app->smaps, 0, sizeof app->smaps);
	memset(&app->kinds, 0, sizeof app->kinds);
	app->kinds_fig_ok = app->kinds_asking = false;
	app->comp_len = 0;
	app->cmdline[0] = '\0';
	app->age_at_start = 0;
	app->t_start = monotime_now();
	app->source_chosen = false;
	app->profile_fallback = false;
	app->profile_note[0] = '\0';
	app->tm_prompt = false;
	history_done(&app->hist);
	history_init(&app->hist, HISTORY_POINTS);
	history_done(&app->heap_hist);
	history_init(&app->heap_hist, HISTORY_POINTS);
	read_identity(app);
	struct proc_sample first;
	if (proc_sampler_read(ps, &first, true) == 0)
		fold_sample(app, &first);
	if (proc_sampler_start(ps) < 0)
		app_status(app, true, "cannot start the sampling thread: %s", strerror(errno));
	views_restart(app);
	app->agent_deferred = true;
	app_show_view(app, &view_overview);
	app_agent_wanted(app);
	app_status(app, false, "watching pid %d now; G goes back to the group", (int)pid);
	app->dirty = true;
}

static void on_tracemalloc_reply(void *ud, struct client_reply *r)
{
	struct app *app = ud;
	char err[256];
	if (!r->ok) {
		app_status(app, true, "tracemalloc: %s", r->message);
		return;
	}
	if (session_take_status(app->session, r->result, err, sizeof err) == 0) {
		const struct msg_status *st = app_agent_status(app);
		if (st->tracing)
			app_status(app, false, "tracemalloc on with %d frame%s: only allocations from now on are seen",
				   st->nframe, st->nframe == 1 ? "" : "s");
		else
			app_status(app, false, "tracemalloc off");
	} else {
		app_status(app, true, "tracemalloc: %s", err);
	}
}

static void tracemalloc_start(struct app *app, int nframe)
{
	cJSON *args = cJSON_CreateObject();
	cJSON_AddNumberToObject(args, "nframe", nframe);
	app_agent_request(app, PROTO_CMD_TRACEMALLOC_START, args, on_tracemalloc_reply, app);
}

/* T: stop tracing, or choose a frame count and start it. */
static void tracemalloc_key(struct app *app)
{
	if (!app_agent_ready(app)) {
		app_status(app, true, "no agent in pid %d: %s", (int)app->pid,
			   app->session ? session_note(app->session) : "no process");
		return;
	}
	if (app_agent_tracing(app)) {
		app_agent_request(app, PROTO_CMD_TRACEMALLOC_STOP, NULL, on_tracemalloc_reply, app);
		return;
	}
	app->tm_prompt = true;
	app->tm_nframe = 0;
}

/* The frame-count chooser. Returns true when it used the key. */
static bool tm_prompt_key(struct app *app, int ch)
{
	int n = (int)(sizeof tm_frames / sizeof tm_frames[0]);
	switch (ch) {
	case KEY_LEFT: case KEY_UP: case 'h': case 'k':
		app->tm_nframe = (app->tm_nframe + n - 1) % n;
		break;
	case KEY_RIGHT: case KEY_DOWN: case 'l': case 'j': case ' ':
		app->tm_nframe = (app->tm_nframe + 1) % n;
		break;
	case '\r': case '\n': case KEY_ENTER:
		app->tm_prompt = false;
		tracemalloc_start(app, tm_frames[app->tm_nframe]);
		break;
	default:
		if (ch >= '1' && ch < '1' + n) {
			app->tm_prompt = false;
			tracemalloc_start(app, tm_frames[ch - '1']);
		} else {
			app->tm_prompt = false; /* Esc or anything else cancels */
			app_status(app, false, "tracemalloc left off");
		}
	}
	app->dirty = true;
	return true;
}

/* Keys every view shares. Returns false to quit. */
static int key_quit(struct app *app, int ch)
{
	(void)app;
	(void)ch;
	return VIEW_KEY_QUIT;
}

static int key_help(struct app *app, int ch)
{
	(void)ch;
	app->help = true;
	app->help_scroll = 0;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_next_view(struct app *app, int ch)
{
	int step = ch == KEY_BTAB ? views_count - 1 : 1;
	switch_view(app, (app->view + step) % views_count);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_view_n(struct app *app, int ch)
{
	if (ch - '1' < views_count)
		switch_view(app, ch - '1');
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_pause(struct app *app, int ch)
{
	(void)ch;
	app->paused = !app->paused;
	app->pause_t = monotime_now();
	app_status(app, false, app->paused ? "paused: the display is frozen, sampling goes on (p resumes)"
					   : "resumed");
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_interval(struct app *app, int ch)
{
	size_t nsteps = sizeof interval_steps / sizeof interval_steps[0];
	if (ch == '+' || ch == '=') {
		for (size_t i = 0; i < nsteps; i++)
			if (interval_steps[i] > app->interval + 1e-9) {
				set_interval(app, interval_steps[i]);
				break;
			}
	} else {
		for (size_t i = nsteps; i-- > 0;)
			if (interval_steps[i] < app->interval - 1e-9) {
				set_interval(app, interval_steps[i]);
				break;
			}
	}
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_zoom(struct app *app, int ch)
{
	if (ch == '<' && app->zoom > -4)
		app->zoom--;
	else if (ch == '>' && app->zoom < 12)
		app->zoom++;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_theme(struct app *app, int ch)
{
	(void)ch;
	use_theme(app, app->theme_idx + 1);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_repaint(struct app *app, int ch)
{
	(void)app;
	if (ch == 12)
		screen_invalidate();
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_tracemalloc(struct app *app, int ch)
{
	(void)ch;
	tracemalloc_key(app);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

/* P: the sampled profiler on / off (what T is to tracemalloc). */
static int key_profiler(struct app *app, int ch)
{
	(void)ch;
	if (app_agent_profiling(app))
		app_agent_profile_stop(app);
	else
		app_agent_profile_start(app, app->opts->calls);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_group(struct app *app, int ch)
{
	(void)ch;
	if (app->group == NULL) {
		app_status(app, false, "one process is watched: pmt-top --tree PID (or PID PID ..., -p) watches a "
			   "group");
		return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
	}
	app_show_view(app, &view_processes);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_messages(struct app *app, int ch)
{
	(void)ch;
	msgpanel_open(&app->msgpanel);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static int key_snapshot(struct app *app, int ch)
{
	(void)ch;
	app_snapshot_take(app);
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

/* The keys of every view. */
const struct binding app_keys[] = {
	{ "q F10", "quit", "q quit", key_quit, { 'q', KEY_F(10) } },
	{ "? F1", "this help (arrows scroll it when it is taller than the screen; any other key closes it)",
	  "? help", key_help, { '?', KEY_F(1) } },
	{ "Tab S-Tab", "next / previous view", "Tab views", key_next_view, { '\t', KEY_BTAB } },
	{ "1-9", "go to view N", NULL, key_view_n, { '1', '2', '3', '4', '5', '6', '7', '8', '9' } },
	{ "p", "pause / resume the display (sampling goes on)", "p pause", key_pause, { 'p' } },
	{ "+ -", "sampling interval longer / shorter", "+/- interval", key_interval, { '+', '=', '-', '_' } },
	{ "< >", "graph time window shorter / longer", "</> zoom", key_zoom, { '<', '>' } },
	{ "t", "next colour theme", "t theme", key_theme, { 't' } },
	{ "^L", "repaint the whole screen", NULL, key_repaint, { 12, KEY_RESIZE } },
	{ "T", "tracemalloc on (choose frames) / off", NULL, key_tracemalloc, { 'T' } },
	{ "P", "sampled profiler on / off (on by default; --no-profile leaves it off)", NULL, key_profiler,
	  { 'P' } },
	{ "s", "take a snapshot from the Top view's source (kept in pmt-top; see the Snapshots view)", NULL,
	  key_snapshot, { 's' } },
	{ "G", "back to the group: the Processes view (when a service's processes are watched)", NULL,
	  key_group, { 'G' } },
	{ "M", "the messages of the status line, each whole, newest last (arrows scroll, Esc closes)",
	  "M messages", key_messages, { 'M' } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

static bool global_key(struct app *app, int ch)
{
	int r = binding_dispatch(app_keys, app, ch);
	if (r & VIEW_KEY_QUIT)
		return false;
	if (r & VIEW_KEY_REDRAW)
		app->dirty = true;
	return true;
}

/* Scrolls the help overlay when it is taller than the screen: true when CH
 * was a scrolling key (or a resize). */
static bool help_scroll_key(struct app *app, int ch)
{
	int page = LINES / 2, s = app->help_scroll;
	switch (ch) {
	case KEY_RESIZE: return true;
	case KEY_UP: case 'k': s--; break;
	case KEY_DOWN: case 'j': s++; break;
	case KEY_PPAGE: s -= page; break;
	case KEY_NPAGE: case ' ': s += page; break;
	case KEY_HOME: s = 0; break;
	case KEY_END: s = app->help_scroll_max; break;
	default: return false;
	}
	if (app->help_scroll_max == 0)
		return false; /* it all shows: any key closes */
	app->help_scroll = s < 0 ? 0 : s > app->help_scroll_max ? app->help_scroll_max : s;
	return true;
}

/* Handle one key. Returns false to quit. */
static bool handle_key(struct app *app, int ch)
{
	if (app->help) {
		app->dirty = true;
		if (help_scroll_key(app, ch))
			return true;
		app->help = false;
		return ch != KEY_F(10);
	}
	if (app->msgpanel.open && ch != KEY_F(10)) {
		msgpanel_key(&app->msgpanel, ch);
		app->dirty = true;
		return true;
	}
	if (app->tm_prompt)
		return tm_prompt_key(app, ch);
	const struct view *v = views[app->view];
	int r = v->key ? v->key(app, ch) : VIEW_KEY_IGNORED;
	if (!(r & VIEW_KEY_HANDLED))
		r = binding_dispatch(v->keys, app, ch);
	if (r & VIEW_KEY_REDRAW)
		app->dirty = true;
	if (r & VIEW_KEY_HANDLED)
		return true;
	return global_key(app, ch);
}

/* On quit, a target we leave running should not keep paying for tracing it
 * did not ask for (see session_leave_clean). */
static void leave_target_clean(struct app *app)
{
	if (app->child > 0 || app->gone || app->session == NULL)
		return;
	session_leave_clean(app->session);
}

static int prepare_theme(struct app *app, char *err, size_t errlen)
{
	load_themes(app);
	const char *want = app->opts->theme ? app->opts->theme : "dark";
	size_t i;
	for (i = 0; i < app->ntheme; i++)
		if (strcmp(app->theme_names[i], want) == 0)
			break;
	if (i == app->ntheme) {
		if (app->opts->theme) {
			snprintf(err, errlen, "no theme named \"%s\" in %s", want, paths_themes_dir());
			return -1;
		}
		theme_mono(&app->theme); /* no theme files at all: still usable */
		return 0;
	}
	app->theme_idx = i;
	return theme_load(paths_themes_dir(), want, &app->theme, err, errlen);
}

static int exit_code_for(enum proc_sampler_error why)
{
	switch (why) {
	case PROC_SAMPLER_NO_PROCESS: return CLI_EXIT_NO_PROCESS;
	case PROC_SAMPLER_PERMISSION: return CLI_EXIT_PERMISSION;
	default: return CLI_EXIT_FAILURE;
	}
}

static void app_free(struct app *app)
{
	for (int i = 0; i < views_count; i++)
		if (views[i]->done)
			views[i]->done(app);
	for (int i = 0; i < views_count && app->view_state; i++)
		free(app->view_state[i]);
	free(app->view_state);
	app->view_state = NULL;
	app_agent_stop(app);
	for (size_t i = 0; i < app->nsnaps; i++)
		app_snap_done(&app->snaps[i]);
	free(app->snaps);
	proc_sampler_free(app->sampler);
	app_gsnap_free(app);
	app_group_close(app);
	history_done(&app->group_hist);
	history_done(&app->hist);
	history_done(&app->heap_hist);
	free(app->comp_hist);
	theme_list_free(app->theme_names, app->ntheme);
	msglog_done(&app->msgs);
}

/* The argv of `pmt-top demo`: the bundled workload under python3. */
static char *const *demo_argv(void)
{
	static char *argv[3];
	const char *py = getenv("PMT_TOP_PYTHON");
	argv[0] = (char *)(py && *py ? py : "python3");
	argv[1] = (char *)paths_demo_script();
	argv[2] = NULL;
	return argv;
}

int app_run(const struct cli_opts *opts)
{
	static struct app app_storage;
	struct app *app = &app_storage;
	char err[512];
	int rc = CLI_EXIT_OK;

	memset(app, 0, sizeof *app);
	app->opts = opts;
	app->pid = opts->pid;
	app->interval = opts->interval;
	history_init(&app->hist, HISTORY_POINTS);
	msglog_init(&app->msgs);
	app->view_state = xcalloc((size_t)views_count, sizeof *app->view_state);
	for (int i = 0; i < views_count; i++)
		if (views[i]->state_size)
			app->view_state[i] = xcalloc(1, views[i]->state_size);
	history_init(&app->heap_hist, HISTORY_POINTS);
	history_init(&app->group_hist, HISTORY_POINTS);

	if (prepare_theme(app, err, sizeof err) < 0) {
		strsafe_eprintf("pmt-top: %s", err);
		app_free(app);
		return CLI_EXIT_USAGE;
	}
	if (opts->mode == CLI_RUN || opts->mode == CLI_DEMO) {
		char *const *argv = opts->mode == CLI_DEMO ? demo_argv() : opts->argv;
		if (opts->mode == CLI_DEMO && access(argv[1], R_OK) != 0) {
			strsafe_eprintf("pmt-top: the demo workload %s is missing (reinstall pmt-top)", argv[1]);
			app_free(app);
			return CLI_EXIT_FAILURE;
		}
		if (spawn_child(app, argv, err, sizeof err) < 0) {
			strsafe_eprintf("pmt-top: %s", err);
			app_free(app);
			return CLI_EXIT_FAILURE;
		}
	}

	/* Saved snapshots first: a broken file stops us before the screen does. */
	for (int i = 0; i < opts->nload; i++) {
		struct snapshot *snap = snapshot_load(opts->load[i], err, sizeof err);
		if (snap == NULL) {
			strsafe_eprintf("pmt-top: %s", err);
			stop_child(app);
			app_free(app);
			return CLI_EXIT_FAILURE;
		}
		app_snapshot_add(app, snap, NAN, opts->load[i]);
	}

	app->t_start = monotime_now();
	if (app->pid > 0) {
		enum proc_sampler_error why;
		app->sampler = proc_sampler_new(app->pid, app->interval, &why, err, sizeof err);
		if (app->sampler == NULL) {
			strsafe_eprintf("pmt-top: %s", err);
			stop_child(app);
			app_free(app);
			return exit_code_for(why);
		}
		read_identity(app);
		struct proc_sample first;
		if (proc_sampler_read(app->sampler, &first, true) == 0)
			fold_sample(app, &first);
		if (proc_sampler_start(app->sampler) < 0) {
			strsafe_eprintf("pmt-top: cannot start the sampling thread: %s", strerror(errno));
			stop_child(app);
			app_free(app);
			return CLI_EXIT_FAILURE;
		}
		if (!app_group_open(app, err, sizeof err)) {
			strsafe_eprintf("pmt-top: %s", err);
			stop_child(app);
			app_free(app);
			return CLI_EXIT_FAILURE;
		}
		for (int i = 0; i < views_count && app->group; i++)
			if (views[i] == &view_processes)
				app->view = i;
	} else {
		/* Only saved snapshots to look at. */
		app->gone = true;
		snprintf(app->cmdline, sizeof app->cmdline, "(no process: saved snapshots only)");
		for (int i = 0; i < views_count; i++)
			if (views[i] == &view_snapshots)
				app->view = i;
	}

	if (screen_init(&app->utf8, err, sizeof err) < 0) {
		strsafe_eprintf("pmt-top: %s", err);
		stop_child(app);
		app_free(app);
		return CLI_EXIT_USAGE;
	}
	app->style = app->utf8 && !opts->ascii ? GRAPH_BRAILLE : GRAPH_ASCII;
	screen_apply_theme(&app->theme);
	for (int i = 0; i < views_count; i++)
		if (views[i]->init)
			views[i]->init(app);
	if (app->pid > 0 && !app->agent_deferred)
		app_agent_start(app);
	if (app->child > 0)
		app_status(app, false, "started pid %d; its output goes to %s", (int)app->child, app->log_path);
	if (opts->theme == NULL && getenv("NO_COLOR") == NULL && !screen_has_colour())
		app_status(app, false, "this terminal has no colours: using attributes only");

	err[0] = '\0';
	double last_draw = 0;
	app->dirty = true;
	bool running = true;
	while (running && !screen_quit_signal) {
		double now = monotime_now();
		/* Sleep until data, a key, or the next whole second (the clock). */
		int timeout = (int)((floor(now) + 1.0 - now) * 1000) + 1;
		if (app->dirty || app->data_dirty) {
			double gap = app->dirty ? REDRAW_MIN_GAP : frame_period(app);
			double wait = last_draw + gap - now;
			int ms = wait > 0 ? (int)(wait * 1000) + 1 : 0;
			if (ms < timeout)
				timeout = ms;
		}
		struct pollfd pfd[4 + APP_LOADERS_MAX + GROUP_MAX_MEMBERS] = {
			{ .fd = STDIN_FILENO, .events = POLLIN },
			/* Once a frame is due anyway, later samples wait in the ring
			 * for it instead of waking us one by one. */
			{ .fd = app->sampler && !app->data_dirty ? proc_sampler_wake_fd(app->sampler) : -1,
			  .events = POLLIN },
			{ .fd = -1 },
			{ .fd = app->group && !app->data_dirty ? group_wake_fd(app->group) : -1, .events = POLLIN },
		};
		if (app->session) {
			session_pollfd(app->session, &pfd[2]);
			int st = session_timeout_ms(app->session);
			if (st >= 0 && st < timeout)
				timeout = st;
		} else {
			pfd[2].fd = -1;
		}
		size_t nload = app_group_loader_fds(app, pfd + 4, APP_LOADERS_MAX, &timeout);
		size_t nlinks = app_gsnap_fds(app, pfd + 4 + nload, GROUP_MAX_MEMBERS, &timeout);
		int n = poll(pfd, 4 + nload + nlinks, timeout);
		if (n < 0 && errno != EINTR) {
			snprintf(err, sizeof err, "poll: %s", strerror(errno));
			rc = CLI_EXIT_FAILURE;
			break;
		}
		if (n > 0 && pfd[2].revents && pfd[2].fd >= 0)
			session_handle(app->session, pfd[2].revents);
		if (n > 0 && pfd[1].revents)
			drain_samples(app);
		if (n > 0 && pfd[3].revents)
			app_group_drain(app);
		if (nload || app->nqueue)
			app_group_loader_events(app, pfd + 4, nload);
		if (app->gsnap)
			app_gsnap_events(app, pfd + 4 + nload, nlinks);
		reap_child(app);
		if (app->session)
			session_tick(app->session);
		if (views[app->view]->update)
			views[app->view]->update(app);
		/* Keys: when stdin is readable, or after a signal (a resize arrives
		 * as KEY_RESIZE once SIGWINCH has interrupted poll). */
		int ch;
		if (n < 0 || (n > 0 && pfd[0].revents))
			while (running && (ch = getch()) != ERR)
				running = handle_key(app, ch);
		if (!running)
			break;

		now = monotime_now();
		/* The clock and uptime tick once a second; samples usually redraw
		 * more often than that, so this rarely costs a frame of its own. */
		if ((long)now != (long)last_draw && now - last_draw >= 1.0)
			app->dirty = true;
		if (now - app->cmdline_t >= 3.0) {
			read_cmdline(app);
			app->dirty = true;
		}
		if ((app->dirty && now - last_draw >= REDRAW_MIN_GAP) ||
		    (app->data_dirty && now - last_draw >= frame_period(app) - 0.01)) {
			drain_samples(app);
			app_group_drain(app);
			draw(app);
			last_draw = now;
		}
	}

	screen_restore();
	app->quitting = true;
	/* The group links first: the watched process's own leave then says how
	 * things are after them. */
	app_gsnap_leave(app);
	leave_target_clean(app);
	stop_child(app);
	if (app->child > 0 && app->log_path[0]) {
		if (opts->mode == CLI_DEMO && opts->log == NULL)
			unlink(app->log_path);
		else
			strsafe_eprintf("pmt-top: the program's output is in %s", app->log_path);
	}
	app_free(app);
	if (rc != CLI_EXIT_OK && err[0])
		strsafe_eprintf("pmt-top: %s", err);
	return rc;
}
