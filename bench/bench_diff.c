/*
 * bench_diff.c - how fast pmt-top diffs and loads big snapshots.
 *
 * Builds two 100k-group snapshots in memory (lineno key, 90% shared keys,
 * file names drawn from a few thousand paths), then times:
 *   1. snapdiff_new() on them (target < 50 ms),
 *   2. snapshot_load() of both saved files + snapdiff_new() (target < 300 ms).
 * Prints the median and best wall time of several runs, the median CPU time
 * (meaningful on a busy machine) and the ratio to the target. Loading and
 * saving one file are shown for information.
 * Usage: bench_diff [GROUPS] [RUNS]   (BENCH_KEEP=1 keeps the saved files)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/snapdiff.h"
#include "snapshot/snapshot.h"

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* CPU time of this thread: what the work costs when other programs compete for the cores */
static double cpu_ms(void)
{
	return clock_ms(CLOCK_THREAD_CPUTIME_ID);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Group i of the key space: a file among nfiles and a line number. */
static void key_of(uint64_t i, char *file, size_t flen, uint32_t *lineno)
{
	snprintf(file, flen, "/srv/app/.venv/lib/python3.11/site-packages/pkg%03" PRIu64
		 "/module_%02" PRIu64 ".py", i % 300, (i / 300) % 10);
	*lineno = (uint32_t)(i / 3000 + 1);
}

static struct snapshot *make(uint64_t first, size_t n, uint64_t salt)
{
	struct snapshot *s = snapshot_new(PROTO_KEY_LINENO, false, 1);
	char file[128], line[96];

	s->time = 1763700000.25 + (double)salt;
	s->pid = 4242;
	for (size_t k = 0; k < n; k++) {
		struct snapshot_frame f;
		uint64_t sz = next_rand() % 1000000 + 1;
		uint64_t ct = next_rand() % 5000 + 1;

		key_of(first + k, file, sizeof(file), &f.lineno);
		f.filename = file;
		snprintf(line, sizeof(line), "result = transform(record[%" PRIu64 "], cache)",
			 (first + k) % 977);
		snapshot_add_group(s, sz, ct, &f, 1, line);
		s->total_size += sz;
		s->total_count += ct;
	}
	s->ntraces = s->total_count;
	s->traced_current = s->total_size;
	s->traced_peak = s->total_size * 2;
	snapshot_sort(s);
	return s;
}

static void report(const char *what, double *t, double *c, int runs, double target)
{
	qsort(t, (size_t)runs, sizeof(*t), cmp_double);
	qsort(c, (size_t)runs, sizeof(*c), cmp_double);
	printf("%-26s wall median %7.2f ms best %7.2f | cpu median %7.2f ms | target %3.0f ms, "
	       "median/target %.2f\n",
	       what, t[runs / 2], t[0], c[runs / 2], target, t[runs / 2] / target);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	int runs = argc > 2 ? atoi(argv[2]) : 7;
	char dir[] = "/tmp/pmt-bench-XXXXXX", p1[64], p2[64], err[512];
	struct snapshot *a, *b;
	double *t, *c;
	size_t fsize = 0;

	if (n == 0 || runs < 1 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "usage: bench_diff [GROUPS] [RUNS]\n");
		return 2;
	}
	t = calloc((size_t)runs, sizeof(*t));
	c = calloc((size_t)runs, sizeof(*c));
	a = make(0, n, 0);
	b = make(n / 10, n, 60); /* 90% shared keys, 10% gone, 10% new */
	printf("snapshots: %zu + %zu groups (lineno key)\n", a->ngroups, b->ngroups);

	for (int r = 0; r < runs; r++) {
		double t0 = now_ms(), c0 = cpu_ms();
		struct snapdiff *d = snapdiff_new(a, b, err, sizeof(err));

		t[r] = now_ms() - t0;
		c[r] = cpu_ms() - c0;
		if (d == NULL) {
			fprintf(stderr, "bench_diff: %s\n", err);
			return 1;
		}
		if (r == 0)
			printf("diff: %zu entries (%zu new, %zu gone, %zu changed)\n", d->n, d->nnew,
			       d->ngone, d->nchanged);
		snapdiff_free(d);
	}
	report("diff (in memory)", t, c, runs, 50);

	snprintf(p1, sizeof(p1), "%s/old.json", dir);
	snprintf(p2, sizeof(p2), "%s/new.json", dir);
	if (snapshot_save(a, p1, err, sizeof(err)) < 0 || snapshot_save(b, p2, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_diff: %s\n", err);
		return 1;
	}
	{
		FILE *f = fopen(p1, "rb");

		if (f && fseek(f, 0, SEEK_END) == 0)
			fsize = (size_t)ftell(f);
		if (f)
			fclose(f);
	}
	printf("saved file: %.1f MiB each\n", (double)fsize / 1048576.0);
	for (int r = 0; r < runs; r++) {
		double t0 = now_ms(), c0 = cpu_ms();
		struct snapshot *la = snapshot_load(p1, err, sizeof(err));
		struct snapshot *lb = la ? snapshot_load(p2, err, sizeof(err)) : NULL;
		struct snapdiff *d = lb ? snapdiff_new(la, lb, err, sizeof(err)) : NULL;

		t[r] = now_ms() - t0;
		c[r] = cpu_ms() - c0;
		if (d == NULL) {
			fprintf(stderr, "bench_diff: %s\n", err);
			return 1;
		}
		snapdiff_free(d);
		snapshot_free(la);
		snapshot_free(lb);
	}
	report("load 2 files + diff", t, c, runs, 300);

	for (int r = 0; r < runs; r++) {
		double t0 = now_ms(), c0 = cpu_ms();
		struct snapshot *la = snapshot_load(p1, err, sizeof(err));

		t[r] = now_ms() - t0;
		c[r] = cpu_ms() - c0;
		snapshot_free(la);
	}
	report("  load 1 file", t, c, runs, 150);

	/* The one-pass reader against cJSON + snapshot_from_json on the same
	 * bytes, interleaved so that both see the same machine. */
	{
		FILE *f = fopen(p1, "rb");
		char *buf = malloc(fsize + 1);
		double *t2 = calloc((size_t)runs, sizeof(*t2)), *c2 = calloc((size_t)runs, sizeof(*c2));

		if (!f || !buf || !t2 || !c2 || fread(buf, 1, fsize, f) != fsize) {
			fprintf(stderr, "bench_diff: cannot read %s back\n", p1);
			return 1;
		}
		fclose(f);
		for (int r = 0; r < runs; r++) {
			bool gave_up = false;
			double t0 = now_ms(), c0 = cpu_ms();
			struct snapshot *x = snapshot_parse_fast(buf, fsize, p1, err, sizeof(err), &gave_up);

			t[r] = now_ms() - t0;
			c[r] = cpu_ms() - c0;
			if (x == NULL) {
				fprintf(stderr, "bench_diff: fast reader: %s\n", gave_up ? "gave up" : err);
				return 1;
			}
			snapshot_free(x);
			t0 = now_ms();
			c0 = cpu_ms();
			x = snapshot_parse_cjson(buf, fsize, p1, err, sizeof(err));
			t2[r] = now_ms() - t0;
			c2[r] = cpu_ms() - c0;
			if (x == NULL) {
				fprintf(stderr, "bench_diff: cJSON reader: %s\n", err);
				return 1;
			}
			snapshot_free(x);
		}
		report("  parse 1 file, one-pass reader", t, c, runs, 150);
		report("  parse 1 file, cJSON + from_json", t2, c2, runs, 150);
		qsort(c, (size_t)runs, sizeof(*c), cmp_double);
		qsort(c2, (size_t)runs, sizeof(*c2), cmp_double);
		printf("  cJSON / one-pass CPU (medians): %.2f\n", c2[runs / 2] / c[runs / 2]);
		free(buf);
		free(t2);
		free(c2);
	}

	for (int r = 0; r < runs; r++) {
		double t0 = now_ms(), c0 = cpu_ms();

		if (snapshot_save(a, p1, err, sizeof(err)) < 0) {
			fprintf(stderr, "bench_diff: %s\n", err);
			return 1;
		}
		t[r] = now_ms() - t0;
		c[r] = cpu_ms() - c0;
	}
	report("save 1 file (fsync)", t, c, runs, 150);

	if (!getenv("BENCH_KEEP")) unlink(p1);
	if (!getenv("BENCH_KEEP")) unlink(p2);
	if (!getenv("BENCH_KEEP")) rmdir(dir); else printf("files kept in %s\n", dir);
	snapshot_free(a);
	snapshot_free(b);
	free(t);
	free(c);
	return 0;
}
