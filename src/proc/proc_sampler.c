/*
 * proc_sampler.c - the /proc sampling thread (see proc_sampler.h).
 */
#include "proc/proc_sampler.h"
#include "base/monotime.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "proc/ring.h"

#define SAMPLER_RING_CAPACITY 1024
/* smaps_rollup is read at most this often, and never at more than ~0.1% of
 * the time: it costs ms on a big process and holds the target's mmap lock. */
#define SMAPS_MIN_PERIOD 30.0
#define SMAPS_DUTY_FACTOR 1000.0
/* The whole smaps, for the kinds of memory: every 2 s at most, and never at
 * more than 0.5% of the time. It takes the mmap lock a mapping at a time. */
#define KINDS_MIN_PERIOD 2.0
#define KINDS_DUTY_FACTOR 200.0

struct proc_sampler {
	pid_t pid;
	long page_size;
	int statm_fd, status_fd, smaps_fd, kinds_fd;
	int wake_fd;    /* UI waits on it */
	int control_fd; /* thread waits on it: stop or interval change */
	_Atomic uint32_t interval_ms;
	atomic_bool stop;
	atomic_bool kinds_asap; /* proc_sampler_kinds_now: read them at the next wake */
	atomic_ulong dropped;
	bool started;
	pthread_t thread;
	double smaps_next, kinds_next;
	char smaps_note[160];
	char kinds_note[160];
	char *text;          /* the whole smaps (kinds), grown as needed */
	size_t text_cap;
	struct ring ring;
	char buf[8192];
};

static uint32_t interval_to_ms(double seconds)
{
	if (!(seconds >= PROC_SAMPLER_MIN_INTERVAL))
		seconds = PROC_SAMPLER_MIN_INTERVAL;
	if (seconds > PROC_SAMPLER_MAX_INTERVAL)
		seconds = PROC_SAMPLER_MAX_INTERVAL;
	return (uint32_t)(seconds * 1000.0 + 0.5);
}

static int open_proc(pid_t pid, const char *name)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* pread the whole file into ps->buf. Returns bytes read, or -1. */
static ssize_t read_held(struct proc_sampler *ps, int fd)
{
	ssize_t n = pread(fd, ps->buf, sizeof ps->buf - 1, 0);
	if (n < 0)
		return -1;
	ps->buf[n] = '\0';
	return n;
}

struct proc_sampler *proc_sampler_new(pid_t pid, double interval,
				      enum proc_sampler_error *why,
				      char *err, size_t errlen)
{
	enum proc_sampler_error reason = PROC_SAMPLER_FAILED;
	struct proc_sampler *ps = calloc(1, sizeof *ps);
	if (ps == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ps->pid = pid;
	ps->page_size = sysconf(_SC_PAGESIZE);
	ps->statm_fd = ps->status_fd = ps->smaps_fd = ps->kinds_fd = -1;
	ps->wake_fd = ps->control_fd = -1;
	atomic_init(&ps->interval_ms, interval_to_ms(interval));
	atomic_init(&ps->stop, false);
	atomic_init(&ps->kinds_asap, false);
	atomic_init(&ps->dropped, 0);

	if (pid <= 0) {
		reason = PROC_SAMPLER_NO_PROCESS;
		snprintf(err, errlen, "%d is not a valid process id", (int)pid);
		goto fail;
	}
	ps->status_fd = open_proc(pid, "status");
	if (ps->status_fd < 0) {
		int e = errno;
		reason = e == ENOENT ? PROC_SAMPLER_NO_PROCESS :
			 e == EACCES || e == EPERM ? PROC_SAMPLER_PERMISSION :
			 PROC_SAMPLER_FAILED;
		if (reason == PROC_SAMPLER_NO_PROCESS)
			snprintf(err, errlen, "no process with pid %d", (int)pid);
		else if (reason == PROC_SAMPLER_PERMISSION)
			snprintf(err, errlen, "cannot read /proc/%d/status: permission denied "
				 "(run as the process's user or with CAP_SYS_PTRACE)", (int)pid);
		else
			snprintf(err, errlen, "cannot open /proc/%d/status: %s", (int)pid, strerror(e));
		goto fail;
	}
	ps->statm_fd = open_proc(pid, "statm");
	if (ps->statm_fd < 0) {
		snprintf(err, errlen, "cannot open /proc/%d/statm: %s", (int)pid, strerror(errno));
		goto fail;
	}
	/* A kernel thread or zombie has no VmRSS: not something we can watch. */
	struct proc_sample probe = {0};
	if (read_held(ps, ps->status_fd) < 0) {
		reason = errno == ESRCH ? PROC_SAMPLER_NO_PROCESS : PROC_SAMPLER_FAILED;
		snprintf(err, errlen, "no process with pid %d", (int)pid);
		goto fail;
	}
	if (proc_sample_parse_status(ps->buf, &probe) < 0) {
		reason = PROC_SAMPLER_NO_PROCESS;
		snprintf(err, errlen, "pid %d has no user memory to watch (a kernel thread or a zombie)",
			 (int)pid);
		goto fail;
	}

	ps->smaps_fd = open_proc(pid, "smaps_rollup");
	if (ps->smaps_fd < 0 || read_held(ps, ps->smaps_fd) < 0) {
		int e = errno;
		if (e == EACCES || e == EPERM)
			snprintf(ps->smaps_note, sizeof ps->smaps_note,
				 "PSS unavailable: /proc/%d/smaps_rollup needs the process's uid or CAP_SYS_PTRACE",
				 (int)pid);
		else if (e == ENOENT)
			snprintf(ps->smaps_note, sizeof ps->smaps_note,
				 "PSS unavailable: this kernel has no smaps_rollup (Linux 4.14+)");
		else
			snprintf(ps->smaps_note, sizeof ps->smaps_note,
				 "PSS unavailable: smaps_rollup: %s", strerror(e));
		if (ps->smaps_fd >= 0)
			close(ps->smaps_fd);
		ps->smaps_fd = -1;
	}

	ps->kinds_fd = open_proc(pid, "smaps");
	if (ps->kinds_fd < 0) {
		int e = errno;
		snprintf(ps->kinds_note, sizeof ps->kinds_note, "kinds of memory unavailable: /proc/%d/smaps: %s",
			 (int)pid, e == EACCES || e == EPERM ? "needs the process's uid or CAP_SYS_PTRACE" : strerror(e));
	}

	ps->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ps->control_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ps->wake_fd < 0 || ps->control_fd < 0) {
		snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
		goto fail;
	}
	if (ring_init(&ps->ring, SAMPLER_RING_CAPACITY, sizeof(struct proc_sample)) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (why)
		*why = PROC_SAMPLER_OK;
	return ps;
fail:
	if (why)
		*why = reason;
	proc_sampler_free(ps);
	return NULL;
}

static void read_kinds(struct proc_sampler *ps, struct proc_sample *out)
{
	double t0 = monotime_now();
	ssize_t n = smaps_read_fd(ps->kinds_fd, &ps->text, &ps->text_cap);
	if (n == 0) {
		/* Bound to the address space it was opened on: reopen after an exec. */
		int fd = open_proc(ps->pid, "smaps");
		if (fd >= 0) {
			close(ps->kinds_fd);
			ps->kinds_fd = fd;
			n = smaps_read_fd(fd, &ps->text, &ps->text_cap);
		}
	}
	if (n < 0 && errno == EFBIG)
		out->flags |= PROC_SAMPLE_KINDS_TOO_BIG;
	struct smaps_totals t;
	if (n > 0 && smaps_parse(ps->text, out->threads, &t) == 0) {
		memcpy(out->kinds, t.rss, sizeof out->kinds);
		out->kinds_rss = t.rss_all;
		out->kinds_stacks = t.thread_stacks;
		out->kinds_arenas = t.arenas;
		out->flags |= PROC_SAMPLE_HAS_KINDS;
		/* The same read gives what smaps_rollup sums, fresher than its own
		 * cadence: the rollup is read only while the whole file cannot be. */
		out->pss = t.pss;
		out->pss_anon = t.pss_anon;
		out->pss_file = t.pss_file;
		out->pss_shmem = t.pss_shmem;
		out->private_clean = t.private_clean;
		out->private_dirty = t.private_dirty;
		out->swap_pss = t.swap_pss;
		out->flags |= PROC_SAMPLE_HAS_SMAPS;
		ps->smaps_next = out->t + SMAPS_MIN_PERIOD;
	}
	double cost = monotime_now() - t0;
	out->kinds_cost = cost;
	double wait = cost * KINDS_DUTY_FACTOR;
	ps->kinds_next = t0 + (wait > KINDS_MIN_PERIOD ? wait : KINDS_MIN_PERIOD);
	/* The text of a big process is megabytes: not kept between reads. */
	if (ps->text_cap > (size_t)1 << 20) {
		free(ps->text);
		ps->text = NULL;
		ps->text_cap = 0;
	}
}

int proc_sampler_read(struct proc_sampler *ps, struct proc_sample *out, bool with_smaps)
{
	memset(out, 0, sizeof *out);
	out->t = monotime_now();
	if (read_held(ps, ps->statm_fd) <= 0 ||
	    proc_sample_parse_statm(ps->buf, ps->page_size, out) < 0)
		goto gone;
	if (read_held(ps, ps->status_fd) <= 0 || proc_sample_parse_status(ps->buf, out) < 0)
		goto gone;
	if (with_smaps && ps->smaps_fd >= 0 && out->t >= ps->smaps_next) {
		double t0 = monotime_now();
		ssize_t n = read_held(ps, ps->smaps_fd);
		if (n <= 0) {
			/* smaps_rollup is bound to the address space it was opened on:
			 * after an exec it reads empty. Reopen on the new one. */
			int fd = open_proc(ps->pid, "smaps_rollup");
			if (fd >= 0) {
				close(ps->smaps_fd);
				ps->smaps_fd = fd;
				n = read_held(ps, fd);
			}
		}
		if (n > 0)
			proc_sample_parse_smaps_rollup(ps->buf, out);
		double cost = monotime_now() - t0;
		double wait = cost * SMAPS_DUTY_FACTOR;
		ps->smaps_next = t0 + (wait > SMAPS_MIN_PERIOD ? wait : SMAPS_MIN_PERIOD);
	}
	/* Megabytes of text on a big process: on the sampler's thread only. */
	if (with_smaps && ps->started && ps->kinds_fd >= 0 && out->t >= ps->kinds_next)
		read_kinds(ps, out);
	return 0;
gone:
	out->flags = PROC_SAMPLE_GONE;
	return -1;
}

static void publish(struct proc_sampler *ps, const struct proc_sample *s)
{
	if (!ring_push(&ps->ring, s))
		atomic_fetch_add(&ps->dropped, 1);
	uint64_t one = 1;
	ssize_t w = write(ps->wake_fd, &one, sizeof one);
	(void)w; /* EAGAIN only when the counter is saturated: already readable */
}

static void *sampler_main(void *arg)
{
	struct proc_sampler *ps = arg;
	double next = monotime_now();

	while (!atomic_load(&ps->stop)) {
		struct proc_sample s;
		double now = monotime_now();
		if (atomic_exchange(&ps->kinds_asap, false))
			ps->kinds_next = 0;
		bool smaps = (ps->smaps_fd >= 0 && now >= ps->smaps_next) ||
			     (ps->kinds_fd >= 0 && now >= ps->kinds_next);
		int rc = proc_sampler_read(ps, &s, smaps);
		publish(ps, &s);
		if (rc < 0)
			break;

		/* Sleep to the next tick of a fixed schedule, so the interval does
		 * not drift by the cost of reading. */
		double interval = atomic_load(&ps->interval_ms) / 1000.0;
		next += interval;
		now = monotime_now();
		if (next < now)
			next = now;
		for (;;) {
			int ms = (int)((next - monotime_now()) * 1000.0 + 0.999);
			if (ms <= 0)
				break;
			struct pollfd pfd = { .fd = ps->control_fd, .events = POLLIN };
			int n = poll(&pfd, 1, ms);
			if (n > 0) {
				uint64_t v;
				ssize_t r = read(ps->control_fd, &v, sizeof v);
				(void)r;
				if (atomic_load(&ps->stop))
					return NULL;
				/* Interval changed, or the kinds wanted now: sample
				 * now and restart the schedule. */
				next = monotime_now();
				break;
			}
			if (n < 0 && errno != EINTR)
				break;
		}
	}
	return NULL;
}

int proc_sampler_start(struct proc_sampler *ps)
{
	sigset_t all, old;
	sigfillset(&all);
	/* The thread must never take the UI's signals (SIGWINCH, SIGINT). */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ps->started = true; /* before the thread reads it */
	int rc = pthread_create(&ps->thread, NULL, sampler_main, ps);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		ps->started = false;
		errno = rc;
		return -1;
	}
	return 0;
}

void proc_sampler_set_interval(struct proc_sampler *ps, double seconds)
{
	atomic_store(&ps->interval_ms, interval_to_ms(seconds));
	uint64_t one = 1;
	ssize_t w = write(ps->control_fd, &one, sizeof one);
	(void)w;
}

void proc_sampler_kinds_now(struct proc_sampler *ps)
{
	atomic_store(&ps->kinds_asap, true);
	uint64_t one = 1;
	ssize_t w = write(ps->control_fd, &one, sizeof one);
	(void)w;
}

double proc_sampler_interval(const struct proc_sampler *ps)
{
	return atomic_load(&((struct proc_sampler *)ps)->interval_ms) / 1000.0;
}

int proc_sampler_wake_fd(const struct proc_sampler *ps)
{
	return ps->wake_fd;
}

size_t proc_sampler_drain(struct proc_sampler *ps, struct proc_sample *out, size_t max)
{
	uint64_t v;
	ssize_t r = read(ps->wake_fd, &v, sizeof v);
	(void)r;
	return ring_pop_n(&ps->ring, out, max);
}

const char *proc_sampler_smaps_note(const struct proc_sampler *ps)
{
	return ps->smaps_note;
}

const char *proc_sampler_kinds_note(const struct proc_sampler *ps)
{
	return ps->kinds_note;
}

unsigned long proc_sampler_dropped(const struct proc_sampler *ps)
{
	return atomic_load(&((struct proc_sampler *)ps)->dropped);
}

void proc_sampler_free(struct proc_sampler *ps)
{
	if (ps == NULL)
		return;
	if (ps->started) {
		atomic_store(&ps->stop, true);
		uint64_t one = 1;
		ssize_t w = write(ps->control_fd, &one, sizeof one);
		(void)w;
		pthread_join(ps->thread, NULL);
	}
	int fds[] = { ps->statm_fd, ps->status_fd, ps->smaps_fd, ps->kinds_fd, ps->wake_fd, ps->control_fd };
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	ring_done(&ps->ring);
	free(ps->text);
	free(ps);
}
