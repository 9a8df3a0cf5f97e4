/*
 * test_smaps.c - resident memory by kind of mapping: a smaps file captured
 * from a Python process (3 waiting threads, one thread that mallocs, 200 MB
 * of objects, a 50 MiB malloc), hand-made mappings of every kind (and
 * hostile names), and this process's own smaps after a thread mallocs.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proc/smaps.h"
#include "proc/proc_sample.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* The sum of every "Rss:" line, counted apart from the parser. */
static uint64_t rss_lines(const char *text)
{
	uint64_t sum = 0;
	for (const char *p = strstr(text, "\nRss:"); p; p = strstr(p + 1, "\nRss:"))
		sum += strtoull(p + 5, NULL, 10) * 1024;
	return sum;
}

static void test_captured(void **state)
{
	(void)state;
	char *text = slurp(PMT_TEST_DATA "/proc/python-threads-smaps");
	struct smaps_totals t;
	assert_int_equal(smaps_parse(text, 0, &t), 0);
	/* VmRSS of that process was 275040 kB: every page is in one kind. */
	assert_true(t.rss_all == rss_lines(text));
	assert_true(t.rss_all == 275040ULL * 1024);
	uint64_t sum = 0;
	for (int k = 0; k < SMAPS_KIND_COUNT; k++)
		sum += t.rss[k];
	assert_true(sum == t.rss_all);
	assert_int_equal(t.thread_stacks, 4); /* 3 waiting, 1 mallocing */
	assert_int_equal(t.arenas, 4);
	assert_true(t.rss[SMAPS_HEAP] > (uint64_t)190 << 20);   /* 200,000 objects of 1000 B */
	assert_true(t.rss[SMAPS_ANON] >= (uint64_t)50 << 20);   /* the 50 MiB block, mapped on its own */
	assert_true(t.rss[SMAPS_FILE] > (uint64_t)4 << 20);
	assert_true(t.rss[SMAPS_STACK] > 0);
	assert_int_equal(t.rss[SMAPS_SHMEM], 0);
	free(text);
}

#define MAP(range, perms, path, rss) range " " perms " 00000000 00:00 0          " path "\nRss: " rss " kB\nSwap: 0 kB\n"

static void test_kinds(void **state)
{
	(void)state;
	const char *text =
		MAP("1000-2000", "r-xp", "/usr/bin/python3.11", "4")
		MAP("2000-3000", "rw-p", "/path with spaces/lib (deleted)", "4")
		MAP("3000-4000", "rw-p", "[heap]", "4")
		MAP("5000-6000", "rw-s", "/dev/shm/psm_1", "4")
		MAP("6000-7000", "rw-s", "/SYSV00000000 (deleted)", "4")
		MAP("7000-8000", "rw-s", "/memfd:buf (deleted)", "4")
		MAP("8000-9000", "rw-s", "", "4")
		MAP("9000-a000", "rw-s", "/srv/data.bin", "4")
		MAP("a000-b000", "---p", "", "0")                /* a guard ... */
		MAP("b000-20000", "rw-p", "", "8")               /* ... and a thread's stack */
		MAP("4000000-4021000", "rw-p", "", "16")         /* an arena ... */
		MAP("4021000-8000000", "---p", "", "0")          /* ... and its reserve */
		MAP("c000000-10000000", "rw-p", "", "32")        /* an arena filled to its end */
		MAP("10000000-10100000", "rw-p", "[anon:cache]", "64")
		MAP("10100000-10200000", "rw-p", "", "128")      /* a big malloc block */
		MAP("7ffd000-7ffe000", "rw-p", "[stack]", "12")
		MAP("7ffe000-7fff000", "r-xp", "[vdso]", "4")
		"VmFlags: rd ex mr mw me de sd\n";
	struct smaps_totals t;
	assert_int_equal(smaps_parse(text, 0, &t), 0);
	assert_int_equal(t.mappings, 17);
	assert_int_equal(t.rss[SMAPS_FILE], 12 * 1024);  /* exe, the spaced name, the shared file */
	assert_int_equal(t.rss[SMAPS_SHMEM], 16 * 1024);
	assert_int_equal(t.rss[SMAPS_HEAP], 4 * 1024);
	assert_int_equal(t.rss[SMAPS_STACK], 20 * 1024);
	assert_int_equal(t.rss[SMAPS_ARENA], 48 * 1024);
	assert_int_equal(t.rss[SMAPS_ANON], 192 * 1024);
	assert_int_equal(t.rss[SMAPS_OTHER], 4 * 1024);
	assert_int_equal(t.thread_stacks, 1);
	assert_int_equal(t.arenas, 2);
}

static void test_bad_text(void **state)
{
	(void)state;
	struct smaps_totals t;
	assert_int_equal(smaps_parse("", 0, &t), -1);
	assert_int_equal(smaps_parse("Rss: 4 kB\n", 0, &t), -1);
	assert_int_equal(smaps_parse("zzzz-1000 rw-p 0 0:0 0\nRss: 4 kB\n", 0, &t), -1);
	assert_int_equal(smaps_parse("2000-1000 rw-p 0 0:0 0\nRss: 4 kB\n", 0, &t), -1); /* end before start */
	/* 17 hex digits, a truncated header, numbers too long: skipped or kept short. */
	assert_int_equal(smaps_parse("11111111111111111-2 rw-p\n1000-2000 rw\nRss: 99999999999999999999 kB\n"
				     "Swap: 3 kB", 0, &t), 0);
	assert_int_equal(t.mappings, 1);
	assert_int_equal(t.rss_all, 0);
	assert_int_equal(t.swap[SMAPS_ANON], 3 * 1024);
}

static void *grow(void *arg)
{
	char **blocks = arg;
	for (int i = 0; i < 64; i++) {
		blocks[i] = malloc(1000);
		memset(blocks[i], 1, 1000);
	}
	return NULL;
}

/* A program's own regions with a guard page at their end look like stacks
 * above guards (mmap hands out addresses downwards): never more stacks than
 * threads beside the main one, and the largest are the stacks. */
static void test_stacks_capped_by_threads(void **state)
{
	(void)state;
	const char *text =
		MAP("100000-101000", "---p", "", "0")
		MAP("101000-900000", "rw-p", "", "16")          /* a thread's 8 MiB stack */
		MAP("900000-901000", "---p", "", "0")
		MAP("901000-9bf000", "rw-p", "", "760")         /* guarded regions of 764 KiB */
		MAP("9bf000-9c0000", "---p", "", "0")
		MAP("9c0000-a7e000", "rw-p", "", "760")
		MAP("a7e000-a7f000", "---p", "", "0");
	struct smaps_totals t;
	assert_int_equal(smaps_parse(text, 0, &t), 0);  /* threads unknown: all three */
	assert_int_equal(t.thread_stacks, 3);
	assert_int_equal(t.rss[SMAPS_STACK], (16 + 760 + 760) * 1024);
	assert_int_equal(smaps_parse(text, 2, &t), 0);  /* main and one thread */
	assert_int_equal(t.thread_stacks, 1);
	assert_int_equal(t.rss[SMAPS_STACK], 16 * 1024);
	assert_int_equal(t.rss[SMAPS_ANON], 2 * 760 * 1024);
	assert_int_equal(smaps_parse(text, 1, &t), 0);  /* the main thread alone */
	assert_int_equal(t.thread_stacks, 0);
	assert_int_equal(t.rss[SMAPS_STACK], 0);
	char *cap = slurp(PMT_TEST_DATA "/proc/python-threads-smaps");
	assert_int_equal(smaps_parse(cap, 5, &t), 0);    /* that process had 5 threads */
	assert_int_equal(t.thread_stacks, 4);
	free(cap);
}

/* What the sampler now takes from smaps instead of smaps_rollup agrees with
 * the rollup, read just after on this process: each mapping's figures are
 * whole kB, so the sums may differ by a kB per mapping. */
static void test_rollup_agrees(void **state)
{
	(void)state;
	char *blob = malloc(8u << 20);
	memset(blob, 1, 8u << 20); /* some anonymous PSS of our own */
	char *text = slurp("/proc/self/smaps");
	char *roll = slurp("/proc/self/smaps_rollup");
	struct smaps_totals t;
	struct proc_sample r;
	memset(&r, 0, sizeof r);
	assert_int_equal(smaps_parse(text, 1, &t), 0);
	assert_int_equal(proc_sample_parse_smaps_rollup(roll, &r), 0);
	double slack = 0.02, per_map = 1024.0 * t.mappings + 65536;
#define CLOSE(a, b) assert_true(fabs((double)(a) - (double)(b)) <= slack * (double)(b) + per_map)
	CLOSE(t.pss, r.pss);
	CLOSE(t.private_clean + t.private_dirty, r.private_clean + r.private_dirty);
	CLOSE(t.pss_anon, r.pss_anon);
	CLOSE(t.pss_file, r.pss_file);
	CLOSE(t.pss_shmem, r.pss_shmem);
#undef CLOSE
	assert_true(t.pss_anon + t.pss_file + t.pss_shmem <= t.pss);
	free(text);
	free(roll);
	free(blob);
}

/* This process: a thread that mallocs gets a stack and an arena of its own. */
static void test_self(void **state)
{
	(void)state;
	char *blocks[64];
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	assert_int_equal(pthread_create(&th, &attr, grow, blocks), 0);
	/* Read while the thread is there (a finished thread's stack is kept
	 * for reuse, but not promised). */
	char *text = NULL;
	pthread_join(th, NULL);
	text = slurp("/proc/self/smaps");
	struct smaps_totals t;
	assert_int_equal(smaps_parse(text, 0, &t), 0);
	for (int i = 0; i < 64; i++)
		free(blocks[i]);
	assert_true(t.rss_all == rss_lines(text));
#ifndef __SANITIZE_ADDRESS__
	/* (AddressSanitizer's allocator replaces glibc's: no arenas there.) */
	assert_true(t.arenas >= 1);
#endif
	assert_true(t.rss[SMAPS_FILE] > 0);
	free(text);
	pthread_attr_destroy(&attr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captured),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_bad_text),
		cmocka_unit_test(test_stacks_capped_by_threads),
		cmocka_unit_test(test_rollup_agrees),
		cmocka_unit_test(test_self),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
