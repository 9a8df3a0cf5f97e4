/*
 * group.c - one thread sampling the RSS of a group of processes (see group.h).
 */
#include "proc/group.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/monotime.h"
#include "base/units.h"
#include "base/xalloc.h"
#include "proc/proc_sample.h"
#include "proc/proc_sampler.h"
#include "proc/proctree.h"

/* New members taken in one look: a fork bomb costs one look a bounded time. */
#define GROUP_ADD_PER_SCAN 64

struct member {
	struct group_member pub;
	int statm_fd;
	bool seen; /* found by the latest look */
};

struct group {
	char proc[256];
	bool tree;
	pid_t root;
	long page_size, hz;

	/* The thread's (or group_step's caller's) own. */
	struct member *m;
	size_t n, cap;
	size_t unwatched;
	bool root_gone;
	double next_scan;
	unsigned long seq;

	_Atomic uint32_t interval_ms;
	atomic_bool stop;
	int wake_fd, control_fd;
	bool started;
	pthread_t thread;

	pthread_mutex_t lock; /* guards pub */
	struct group_table pub;
};

static double interval_s(const struct group *g)
{
	return atomic_load(&g->interval_ms) / 1000.0;
}

static uint32_t to_ms(double seconds)
{
	if (!(seconds >= PROC_SAMPLER_MIN_INTERVAL))
		seconds = PROC_SAMPLER_MIN_INTERVAL;
	if (seconds > PROC_SAMPLER_MAX_INTERVAL)
		seconds = PROC_SAMPLER_MAX_INTERVAL;
	return (uint32_t)(seconds * 1000.0 + 0.5);
}

const char *group_role_name(enum group_role r)
{
	switch (r) {
	case GROUP_ROLE_MASTER: return "master";
	case GROUP_ROLE_WORKER: return "worker";
	default: return "main";
	}
}

void group_member_cells(const struct group_member *m, double now, struct group_cells *c)
{
	if (m->gone)
		snprintf(c->rss, sizeof c->rss, "-");
	else
		units_bytes_table(c->rss, sizeof c->rss, (int64_t)m->rss, false);
	if (isnan(m->rate) || m->gone)
		snprintf(c->rate, sizeof c->rate, "-");
	else
		units_bytes_table(c->rate, sizeof c->rate, (int64_t)llround(m->rate), true);
	if (isnan(m->started))
		snprintf(c->age, sizeof c->age, "?");
	else
		units_duration(c->age, sizeof c->age, now - m->started);
	if (m->python == 1 && m->py_minor > 0)
		snprintf(c->py, sizeof c->py, "3.%d", m->py_minor);
	else
		snprintf(c->py, sizeof c->py, "%s", m->python == 1 ? "yes" : m->python == 0 ? "no" : "?");
}

double group_rate(const struct group_point *h, size_t n, double window)
{
	if (n < 2)
		return NAN;
	double newest = h[n - 1].t;
	size_t first = n - 1;
	while (first > 0 && h[first - 1].t >= newest - window)
		first--;
	double t0 = h[first].t;
	if (newest - t0 < 1.0)
		return NAN;
	/* Least squares on (t - t0, rss - rss0): small numbers, no lost bits. */
	double r0 = (double)h[first].rss;
	double st = 0, sr = 0, stt = 0, str = 0;
	size_t k = n - first;
	for (size_t i = first; i < n; i++) {
		double t = h[i].t - t0, r = (double)h[i].rss - r0;
		st += t;
		sr += r;
		stt += t * t;
		str += t * r;
	}
	double den = (double)k * stt - st * st;
	if (!(den > 0))
		return NAN;
	return ((double)k * str - st * sr) / den * 60.0;
}

static int member_cmp(const void *a, const void *b)
{
	const struct group_member *x = a, *y = b;
	if (x->gone != y->gone)
		return x->gone ? 1 : -1;
	bool xr = !isnan(x->rate), yr = !isnan(y->rate);
	if (xr != yr)
		return xr ? -1 : 1;
	if (xr && x->rate != y->rate)
		return x->rate > y->rate ? -1 : 1;
	if (x->rss != y->rss)
		return x->rss > y->rss ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

void group_sort(struct group_table *t)
{
	if (t->n > 1)
		qsort(t->m, t->n, sizeof *t->m, member_cmp);
}

static struct member *find_running(struct group *g, pid_t pid)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->m[i].pub.pid == pid && !g->m[i].pub.gone)
			return &g->m[i];
	return NULL;
}

static void push_point(struct group_member *pm, double t, uint64_t rss, double step)
{
	if (pm->nhist > 0 && t - pm->hist[pm->nhist - 1].t < step) {
		/* Too soon for a point of its own: the newest one moves. */
		pm->hist[pm->nhist - 1].rss = rss;
		return;
	}
	if (pm->nhist == GROUP_HIST) {
		memmove(pm->hist, pm->hist + 1, (GROUP_HIST - 1) * sizeof pm->hist[0]);
		pm->nhist--;
	}
	pm->hist[pm->nhist].t = t;
	pm->hist[pm->nhist].rss = rss;
	pm->nhist++;
}

/* Seconds between kept points: fine enough for the rate's window. */
static double hist_step(const struct group *g)
{
	double step = GROUP_RATE_WINDOW / (GROUP_HIST - 8);
	double iv = interval_s(g);
	return iv > step ? iv : step;
}

static void sample_member(struct group *g, struct member *m, double now)
{
	char buf[256];
	if (m->pub.gone)
		return;
	ssize_t n = pread(m->statm_fd, buf, sizeof buf - 1, 0);
	struct proc_sample s = {0};
	if (n > 0) {
		buf[n] = '\0';
		if (proc_sample_parse_statm(buf, g->page_size, &s) < 0)
			n = -1;
	}
	if (n <= 0) {
		m->pub.gone = true;
		m->pub.gone_t = now;
		close(m->statm_fd);
		m->statm_fd = -1;
		return;
	}
	m->pub.rss = s.rss;
	push_point(&m->pub, now, s.rss, hist_step(g));
	m->pub.rate = group_rate(m->pub.hist, m->pub.nhist, GROUP_RATE_WINDOW);
}

/* Takes PID into the group. Returns the member, or NULL when it cannot be
 * read (gone, not ours) or the table is full. */
static struct member *add_member(struct group *g, pid_t pid, int depth, double now, double uptime)
{
	if (g->n >= GROUP_MAX_MEMBERS) {
		g->unwatched++;
		return NULL;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%d/statm", g->proc, (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	struct proctree_stat st;
	if (proctree_read_stat(g->proc, pid, &st) < 0 || st.state == 'Z') {
		close(fd);
		return NULL;
	}
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->m = xreallocarray(g->m, g->cap, sizeof *g->m);
	}
	struct member *m = &g->m[g->n++];
	memset(m, 0, sizeof *m);
	m->statm_fd = fd;
	m->seen = true;
	struct group_member *pm = &m->pub;
	pm->pid = pid;
	pm->ppid = st.ppid;
	pm->depth = depth;
	pm->start_ticks = st.start_ticks;
	pm->started = uptime >= 0 && g->hz > 0 ? now - (uptime - (double)st.start_ticks / (double)g->hz) : NAN;
	memcpy(pm->comm, st.comm, sizeof pm->comm);
	proctree_cmdline(g->proc, pid, pm->cmdline, sizeof pm->cmdline);
	pm->python = proctree_python(g->proc, pid, &pm->py_minor);
	pm->rate = NAN;
	return m;
}

static void set_roles(struct group *g)
{
	for (size_t i = 0; i < g->n; i++) {
		struct group_member *pm = &g->m[i].pub;
		bool parent = false;
		for (size_t j = 0; j < g->n && !parent; j++)
			parent = j != i && !g->m[j].pub.gone && g->m[j].pub.ppid == pm->pid;
		pm->role = parent ? GROUP_ROLE_MASTER : pm->depth == 0 ? GROUP_ROLE_MAIN : GROUP_ROLE_WORKER;
	}
}

/* Tree mode: a breadth-first walk from the root. */
static void scan_tree(struct group *g, double now)
{
	double uptime = proctree_uptime(g->proc);
	size_t cap = GROUP_MAX_MEMBERS * 2, head = 0, tail = 0;
	pid_t *queue = xcalloc(cap, sizeof *queue);
	int *depth = xcalloc(cap, sizeof *depth);
	int added = 0;

	for (size_t i = 0; i < g->n; i++)
		g->m[i].seen = false;
	g->unwatched = 0;
	queue[tail++] = g->root;
	while (head < tail) {
		pid_t pid = queue[head];
		int d = depth[head++];
		struct member *m = find_running(g, pid);
		if (m == NULL && added < GROUP_ADD_PER_SCAN && !(d == 0 && g->root_gone)) {
			m = add_member(g, pid, d, now, uptime);
			added += m != NULL;
		} else if (m == NULL && d > 0) {
			g->unwatched++;
		}
		if (m == NULL)
			continue;
		m->seen = true;
		m->pub.depth = d;
		pid_t kids[256];
		int k = proctree_children(g->proc, pid, kids, (int)(sizeof kids / sizeof kids[0]));
		for (int i = 0; i < k && tail < cap; i++) {
			bool dup = false; /* a pid the kernel lists twice between two reads */
			for (size_t j = 0; j < tail && !dup; j++)
				dup = queue[j] == kids[i];
			if (!dup) {
				depth[tail] = d + 1;
				queue[tail++] = kids[i];
			}
		}
	}
	free(queue);
	free(depth);
}

static void scan_list(struct group *g, double now)
{
	/* The list's members were all added by group_new; none comes later. */
	(void)now;
	for (size_t i = 0; i < g->n; i++)
		g->m[i].seen = !g->m[i].pub.gone;
}

static void publish(struct group *g, double now)
{
	pthread_mutex_lock(&g->lock);
	struct group_table *t = &g->pub;
	if (t->cap < g->n) {
		t->cap = g->n;
		t->m = xreallocarray(t->m, t->cap, sizeof *t->m);
	}
	t->n = g->n;
	t->total_rss = 0;
	t->running = 0;
	for (size_t i = 0; i < g->n; i++) {
		t->m[i] = g->m[i].pub;
		if (!t->m[i].gone) {
			t->total_rss += t->m[i].rss;
			t->running++;
		}
	}
	t->t = now;
	t->seq = ++g->seq;
	t->unwatched = g->unwatched;
	t->root_gone = g->root_gone;
	pthread_mutex_unlock(&g->lock);
	uint64_t one = 1;
	ssize_t w = write(g->wake_fd, &one, sizeof one);
	(void)w; /* a full counter already wakes the reader */
}

void group_step(struct group *g)
{
	double now = monotime_now();
	if (now >= g->next_scan) {
		if (g->tree)
			scan_tree(g, now);
		else
			scan_list(g, now);
		double every = interval_s(g) > GROUP_RESCAN ? interval_s(g) : GROUP_RESCAN;
		g->next_scan = now + every;
	}
	for (size_t i = 0; i < g->n; i++)
		sample_member(g, &g->m[i], now);
	/* Exited members go after a while; the root's exit is remembered. */
	size_t o = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct member *m = &g->m[i];
		if (m->pub.gone && g->tree && m->pub.depth == 0 && m->pub.pid == g->root)
			g->root_gone = true;
		if (m->pub.gone && now - m->pub.gone_t > GROUP_GONE_KEEP)
			continue;
		g->m[o++] = *m;
	}
	g->n = o;
	set_roles(g);
	publish(g, now);
}

struct group *group_new(const char *proc, bool tree, pid_t root, const pid_t *pids, size_t npids,
			double interval, bool *no_process, char *err, size_t errlen)
{
	struct group *g = xcalloc(1, sizeof *g);
	snprintf(g->proc, sizeof g->proc, "%s", proc ? proc : "/proc");
	g->tree = tree;
	g->root = root;
	g->page_size = sysconf(_SC_PAGESIZE);
	g->hz = sysconf(_SC_CLK_TCK);
	atomic_init(&g->interval_ms, to_ms(interval));
	atomic_init(&g->stop, false);
	pthread_mutex_init(&g->lock, NULL);
	g->control_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	*no_process = false;
	if (g->control_fd < 0 || g->wake_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		group_free(g);
		return NULL;
	}
	double now = monotime_now();
	if (tree) {
		if (find_running(g, root) == NULL)
			add_member(g, root, 0, now, proctree_uptime(g->proc));
	} else {
		double uptime = proctree_uptime(g->proc);
		for (size_t i = 0; i < npids; i++)
			if (find_running(g, pids[i]) == NULL)
				add_member(g, pids[i], 0, now, uptime);
	}
	if (g->n == 0) {
		pid_t first = tree ? root : npids ? pids[0] : 0;
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%d", g->proc, (int)first);
		*no_process = access(path, F_OK) != 0;
		if (*no_process && (tree || npids == 1))
			snprintf(err, errlen, "no process with pid %d", (int)first);
		else if (*no_process)
			snprintf(err, errlen, "none of the %zu pids is a running process", npids);
		else
			snprintf(err, errlen, "cannot read /proc/%d/statm: %s", (int)first, strerror(errno));
		group_free(g);
		return NULL;
	}
	group_step(g);
	return g;
}

static void *group_thread(void *arg)
{
	struct group *g = arg;
	while (!atomic_load(&g->stop)) {
		struct pollfd pfd = { .fd = g->control_fd, .events = POLLIN };
		int n = poll(&pfd, 1, (int)atomic_load(&g->interval_ms));
		if (n > 0) {
			uint64_t v;
			ssize_t r = read(g->control_fd, &v, sizeof v);
			(void)r;
		}
		if (atomic_load(&g->stop))
			break;
		group_step(g);
	}
	return NULL;
}

int group_start(struct group *g)
{
	int e = pthread_create(&g->thread, NULL, group_thread, g);
	if (e != 0) {
		errno = e;
		return -1;
	}
	g->started = true;
	return 0;
}

void group_set_interval(struct group *g, double seconds)
{
	atomic_store(&g->interval_ms, to_ms(seconds));
	uint64_t one = 1;
	ssize_t w = write(g->control_fd, &one, sizeof one);
	(void)w;
}

int group_wake_fd(const struct group *g)
{
	return g->wake_fd;
}

bool group_read(struct group *g, struct group_table *t)
{
	uint64_t v;
	ssize_t r = read(g->wake_fd, &v, sizeof v);
	(void)r;
	pthread_mutex_lock(&g->lock);
	bool newer = g->pub.seq != t->seq;
	if (t->cap < g->pub.n) {
		t->cap = g->pub.n;
		t->m = xreallocarray(t->m, t->cap, sizeof *t->m);
	}
	if (g->pub.n)
		memcpy(t->m, g->pub.m, g->pub.n * sizeof *t->m);
	t->n = g->pub.n;
	t->total_rss = g->pub.total_rss;
	t->running = g->pub.running;
	t->t = g->pub.t;
	t->seq = g->pub.seq;
	t->unwatched = g->pub.unwatched;
	t->root_gone = g->pub.root_gone;
	pthread_mutex_unlock(&g->lock);
	return newer;
}

void group_table_done(struct group_table *t)
{
	free(t->m);
	memset(t, 0, sizeof *t);
}

void group_free(struct group *g)
{
	if (g == NULL)
		return;
	if (g->started) {
		atomic_store(&g->stop, true);
		uint64_t one = 1;
		ssize_t w = write(g->control_fd, &one, sizeof one);
		(void)w;
		pthread_join(g->thread, NULL);
	}
	for (size_t i = 0; i < g->n; i++)
		if (g->m[i].statm_fd >= 0)
			close(g->m[i].statm_fd);
	free(g->m);
	if (g->wake_fd >= 0)
		close(g->wake_fd);
	if (g->control_fd >= 0)
		close(g->control_fd);
	group_table_done(&g->pub);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
