/*
 * test_proc_sample.c - /proc parsers on files captured from real processes
 * (tests/data/proc), and the sampler thread on a real child process.
 */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "proc/history.h"
#include "base/monotime.h"
#include "proc/proc_sample.h"
#include "proc/proc_sampler.h"

static char *slurp(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/proc/%s", PMT_TEST_DATA, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = calloc(1, 65536);
	size_t n = fread(buf, 1, 65535, f);
	fclose(f);
	if (len)
		*len = n;
	return buf;
}

static void test_statm(void **state)
{
	(void)state;
	char *t = slurp("python-statm", NULL);
	struct proc_sample s = { 0 };
	assert_int_equal(proc_sample_parse_statm(t, 4096, &s), 0);
	assert_int_equal(s.vsize, 55343ull * 4096);
	assert_int_equal(s.rss, 54573ull * 4096);
	assert_int_equal(proc_sample_parse_statm("", 4096, &s), -1);
	assert_int_equal(proc_sample_parse_statm("12", 4096, &s), -1);
	free(t);
}

static void test_status(void **state)
{
	(void)state;
	char *t = slurp("python-status", NULL);
	struct proc_sample s = { 0 };
	assert_int_equal(proc_sample_parse_status(t, &s), 0);
	assert_true(s.flags & PROC_SAMPLE_HAS_STATUS);
	assert_int_equal(s.rss, 218292ull * 1024);
	assert_int_equal(s.anon, 211676ull * 1024);
	assert_int_equal(s.file, 6616ull * 1024);
	assert_int_equal(s.shmem, 0);
	assert_int_equal(s.hwm, 218292ull * 1024);
	assert_int_equal(s.vsize, 221372ull * 1024);
	assert_int_equal(s.threads, 1);
	assert_int_equal(s.state, 'R');
	/* The kernel's invariant, on real data: RSS = anon + file + shmem. */
	assert_int_equal(s.rss, s.anon + s.file + s.shmem);
	free(t);

	/* A kernel thread has no VmRSS: refused. */
	t = slurp("kthread-status", NULL);
	struct proc_sample k = { 0 };
	assert_int_equal(proc_sample_parse_status(t, &k), -1);
	assert_false(k.flags & PROC_SAMPLE_HAS_STATUS);
	free(t);
}

static void test_smaps_rollup(void **state)
{
	(void)state;
	char *t = slurp("python-smaps_rollup", NULL);
	struct proc_sample s = { 0 };
	assert_int_equal(proc_sample_parse_smaps_rollup(t, &s), 0);
	assert_int_equal(s.pss, 212525ull * 1024);
	assert_int_equal(s.pss_anon, 211676ull * 1024);
	assert_int_equal(s.pss_file, 849ull * 1024);
	assert_int_equal(s.private_dirty, 211676ull * 1024);
	assert_int_equal(s.private_clean, 0);
	/* "Pss_Anon" must not be taken for "Pss", nor "SwapPss" for "Swap". */
	assert_int_equal(s.swap_pss, 0);
	assert_int_equal(proc_sample_parse_smaps_rollup("Rss: 12 kB\n", &s), -1);
	free(t);
}

static void test_stat_start_and_weird_comm(void **state)
{
	(void)state;
	unsigned long long start = 0;
	char *t = slurp("python-stat", NULL);
	assert_int_equal(proc_sample_parse_stat_start(t, &start), 0);
	assert_int_equal(start, 44619);
	free(t);
	t = slurp("weird-comm-stat", NULL);
	assert_int_equal(proc_sample_parse_stat_start(t, &start), 0);
	assert_int_equal(start, 44818);
	free(t);
	assert_int_equal(proc_sample_parse_stat_start("1 (x) R 1 2", &start), -1);
	assert_int_equal(proc_sample_parse_stat_start("no paren", &start), -1);
}

static void test_cmdline(void **state)
{
	(void)state;
	size_t n;
	char *t = slurp("python-cmdline", &n);
	char out[128];
	proc_sample_cmdline_text(t, n, out, sizeof out);
	/* NULs become spaces, the newline after -c a '?'. */
	const char *want = "/root/.pyenv/versions/3.11.7/bin/python3 -c ?import time,os,shutil?x=bytearray";
	assert_memory_equal(out, want, strlen(want));
	assert_int_equal(strlen(out), sizeof out - 1); /* truncated, terminated */
	proc_sample_cmdline_text("a\0b\0\0", 5, out, sizeof out);
	assert_string_equal(out, "a b");
	free(t);
}

/* A real child that allocates 64 MiB after a signal: the sampler must see RSS
 * rise by about that much, its kinds of memory put it in anonymous memory
 * (glibc maps a block that big on its own) and add up to the RSS of the same
 * sample, then report the child's exit. */
static void test_sampler_follows_a_real_process(void **state)
{
	(void)state;
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		size_t n = 64u << 20;
		char *p = malloc(n);
		for (size_t i = 0; i < n; i += 4096)
			p[i] = 1;
		if (read(go[0], &c, 1) != 1) /* hold until told to exit */
			_exit(2);
		_exit(p[4096] == 1 ? 0 : 3);
	}
	char err[256];
	enum proc_sampler_error why;
	struct proc_sampler *ps = proc_sampler_new(pid, 0.05, &why, err, sizeof err);
	assert_non_null(ps);
	struct proc_sample before;
	assert_int_equal(proc_sampler_read(ps, &before, true), 0);
	assert_int_equal(proc_sampler_start(ps), 0);
	assert_int_equal(write(go[1], "x", 1), 1);

	struct proc_sample buf[64];
	uint64_t peak = 0;
	struct proc_sample kinds = { 0 };
	int gone = 0, told_to_exit = 0;
	double deadline = monotime_now() + 20;
	while (!gone && monotime_now() < deadline) {
		struct pollfd pfd = { .fd = proc_sampler_wake_fd(ps), .events = POLLIN };
		poll(&pfd, 1, 100);
		size_t n = proc_sampler_drain(ps, buf, 64);
		for (size_t i = 0; i < n; i++) {
			if (buf[i].flags & PROC_SAMPLE_GONE)
				gone = 1;
			else if (buf[i].rss > peak)
				peak = buf[i].rss;
			if ((buf[i].flags & PROC_SAMPLE_HAS_KINDS) && buf[i].kinds[SMAPS_ANON] >= (60u << 20))
				kinds = buf[i];
		}
		if (!told_to_exit && peak >= before.rss + (60u << 20) && (kinds.flags & PROC_SAMPLE_HAS_KINDS)) {
			assert_int_equal(write(go[1], "x", 1), 1);
			told_to_exit = 1;
		}
	}
	if (!told_to_exit)
		kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	proc_sampler_free(ps);
	close(go[0]);
	close(go[1]);
	assert_true(peak >= before.rss + (60u << 20));
	assert_true(kinds.flags & PROC_SAMPLE_HAS_KINDS);
	uint64_t sum = 0;
	for (int k = 0; k < SMAPS_KIND_COUNT; k++)
		sum += kinds.kinds[k];
	assert_int_equal(sum, kinds.kinds_rss);
	/* smaps and statm are read one after the other: within 2%. */
	double off = (double)kinds.kinds_rss - (double)kinds.rss;
	assert_true(off < 0.02 * (double)kinds.rss && -off < 0.02 * (double)kinds.rss);
	assert_true(kinds.kinds_cost > 0);
	assert_true(gone);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_sampler_errors(void **state)
{
	(void)state;
	char err[256];
	enum proc_sampler_error why;
	/* A pid that cannot exist (above pid_max). */
	assert_null(proc_sampler_new(99999999, 0.5, &why, err, sizeof err));
	assert_int_equal(why, PROC_SAMPLER_NO_PROCESS);
	assert_string_equal(err, "no process with pid 99999999");
	/* A kernel thread: no user memory. */
	assert_null(proc_sampler_new(2, 0.5, &why, err, sizeof err));
	assert_int_equal(why, PROC_SAMPLER_NO_PROCESS);
	assert_non_null(strstr(err, "kernel thread"));
}

static void test_history_merges_keep_peaks(void **state)
{
	(void)state;
	struct history h;
	history_init(&h, 8);
	for (int i = 0; i < 100; i++) {
		struct history_point p = { .t = i, .v = (uint64_t)(i == 37 ? 1000000 : i) };
		history_append(&h, &p);
	}
	assert_true(h.len <= 8);
	assert_true(h.merges > 0);
	uint64_t max = 0;
	for (size_t i = 0; i < h.len; i++) {
		if (h.points[i].v > max)
			max = h.points[i].v;
		if (i)
			assert_true(h.points[i].t > h.points[i - 1].t);
	}
	assert_int_equal(max, 1000000); /* the spike survived every merge */
	assert_int_equal(h.points[h.len - 1].t, 99);
	assert_int_equal(history_lower_bound(&h, 1e9), h.len);
	assert_int_equal(history_lower_bound(&h, -1), 0);
	history_done(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statm),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_smaps_rollup),
		cmocka_unit_test(test_stat_start_and_weird_comm),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_sampler_follows_a_real_process),
		cmocka_unit_test(test_sampler_errors),
		cmocka_unit_test(test_history_merges_keep_peaks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
