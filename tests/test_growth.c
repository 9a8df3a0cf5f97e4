/*
 * test_growth.c - the "growing" order's model: scoring realistic size
 * series (a steady leak, a leak under noise, a cache that fills and is
 * cleared, a one-off jump, noise alone) and the bounded per-line history.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tui/growth.h"

#define KIB 1024.0
#define MIB (1024.0 * 1024.0)
#define N 30 /* five minutes of 10 s refreshes */

/* Deterministic noise in [-1, 1). */
static double noise(uint32_t *state)
{
	*state = *state * 1664525u + 1013904223u;
	return (double)(*state >> 8) / (double)(1u << 23) - 1.0;
}

static void times(double *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		t[i] = 1000.0 + 10.0 * (double)i;
}

static void test_steady_leak(void **state)
{
	double t[N], v[N];
	struct growth_score s;

	(void)state;
	times(t, N);
	/* 600 KiB a minute on top of 40 MiB, as the sampled profiler sees it:
	 * in whole 4 KiB samples. */
	for (size_t i = 0; i < N; i++)
		v[i] = 40 * MIB + floor(100 * KIB * (double)i / (4 * KIB)) * 4 * KIB;
	assert_true(growth_series_score(t, v, N, &s));
	assert_int_equal(s.intervals, N - 1);
	assert_true(s.grew == 1.0);
	assert_true(s.kept == 1.0);
	assert_true(fabs(s.per_min - 600 * KIB) < 0.02 * 600 * KIB);
}

static void test_leak_under_noise(void **state)
{
	double t[N], v[N];
	struct growth_score s;
	uint32_t rnd = 7;

	(void)state;
	times(t, N);
	/* 1 MiB a minute, with +-100 KiB of churn at every refresh. */
	for (size_t i = 0; i < N; i++)
		v[i] = 80 * MIB + MIB / 6 * (double)i + 100 * KIB * noise(&rnd);
	assert_true(growth_series_score(t, v, N, &s));
	assert_true(s.grew >= GROWTH_MIN_GREW);
	assert_true(fabs(s.per_min - MIB) < 0.1 * MIB);
}

static void test_sawtooth_cache(void **state)
{
	double t[N], v[N];
	struct growth_score s;

	(void)state;
	times(t, N);
	/* A cache that takes 2 MiB every refresh and is cleared every 7th:
	 * it grows in most intervals, but gives it all back. */
	for (size_t i = 0; i < N; i++)
		v[i] = MIB + 2 * MIB * (double)(i % 7);
	assert_false(growth_series_score(t, v, N, &s));
	assert_true(s.grew >= GROWTH_MIN_GREW); /* growing most of the time alone is not enough */
	assert_true(s.kept < GROWTH_MIN_KEPT);
	/* Wherever the window starts, it never counts as a leak. */
	for (size_t from = 0; from < 7; from++)
		assert_false(growth_series_score(t + from, v + from, N - from, &s));
}

static void test_one_off_jump(void **state)
{
	double t[N], v[N];
	struct growth_score s;
	uint32_t rnd = 3;

	(void)state;
	times(t, N);
	/* A flat 20 MiB (a few KiB of churn), then 64 MiB loaded at once:
	 * bigger than any leak here, yet not a growing line. */
	for (size_t i = 0; i < N; i++)
		v[i] = 20 * MIB + 8 * KIB * noise(&rnd) + (i >= 12 ? 64 * MIB : 0);
	assert_false(growth_series_score(t, v, N, &s));
	assert_true(s.jump > GROWTH_MAX_JUMP);
	assert_true(s.per_min > 0);
}

static void test_noise_alone(void **state)
{
	double t[N], v[N];
	struct growth_score s;
	int flagged = 0;

	(void)state;
	times(t, N);
	/* Many seeds of churn around a constant: none may count as growing. */
	for (uint32_t seed = 1; seed <= 200; seed++) {
		uint32_t rnd = seed;
		for (size_t i = 0; i < N; i++)
			v[i] = 10 * MIB + 512 * KIB * noise(&rnd);
		if (growth_series_score(t, v, N, &s))
			flagged++;
	}
	assert_int_equal(flagged, 0);
}

static void test_short_and_gappy_series(void **state)
{
	double t[N], v[N];
	struct growth_score s;

	(void)state;
	times(t, N);
	for (size_t i = 0; i < N; i++)
		v[i] = MIB * (double)i;
	/* Too few intervals to tell. */
	assert_false(growth_series_score(t, v, GROWTH_MIN_INTERVALS, &s));
	assert_true(growth_series_score(t, v, GROWTH_MIN_INTERVALS + 1, &s));
	/* Not seen at some refreshes (NaN): scored over the others. */
	v[3] = v[4] = NAN;
	assert_true(growth_series_score(t, v, N, &s));
	assert_int_equal(s.intervals, N - 3);
	assert_true(fabs(s.per_min - 6 * MIB) < 0.01 * MIB);
	/* Nothing known, or one point: no verdict. */
	for (size_t i = 0; i < N; i++)
		v[i] = NAN;
	assert_false(growth_series_score(t, v, N, &s));
	assert_int_equal(s.intervals, 0);
	v[5] = MIB;
	assert_false(growth_series_score(t, v, N, &s));
	/* Shrinking steadily is not growing. */
	for (size_t i = 0; i < N; i++)
		v[i] = 100 * MIB - MIB * (double)i;
	assert_false(growth_series_score(t, v, N, &s));
	assert_true(s.per_min < 0);
}

/* The tracker: refreshes every 2 s are recorded every GROWTH_STEP, each line
 * keeps GROWTH_POINTS of them, and the leaking line scores, the others not. */
static void test_tracker(void **state)
{
	struct growth g;
	struct growth_score s;
	uint32_t rnd = 11;
	int recorded = 0;

	(void)state;
	growth_init(&g);
	for (int k = 0; k < 400; k++) { /* 800 s */
		double t = 50.0 + 2.0 * k;
		if (!growth_begin(&g, t))
			continue;
		recorded++;
		growth_observe(&g, 1, (uint64_t)(5 * MIB + 30 * KIB * t));          /* leak */
		growth_observe(&g, 2, (uint64_t)(MIB + 2 * MIB * (double)(recorded % 5))); /* cache */
		growth_observe(&g, 3, (uint64_t)(9 * MIB + 64 * KIB * noise(&rnd)));    /* noise */
		if (recorded == 3)
			growth_observe(&g, 4, 123); /* seen once, then gone */
	}
	assert_int_equal(recorded, 80);
	assert_int_equal(growth_history(&g), GROWTH_POINTS);
	assert_true(growth_line_score(&g, 1, &s));
	assert_int_equal(s.intervals, GROWTH_POINTS - 1);
	assert_true(fabs(s.per_min - 30 * KIB * 60) < 0.01 * 30 * KIB * 60);
	assert_false(growth_line_score(&g, 2, &s));
	assert_false(growth_line_score(&g, 3, &s));
	/* not seen for a whole window: forgotten */
	assert_false(growth_line_score(&g, 4, &s));
	assert_int_equal(s.intervals, 0);
	assert_int_equal(g.nlines, 3);
	/* a new grouping starts from nothing */
	growth_reset(&g);
	assert_int_equal(growth_history(&g), 0);
	assert_false(growth_line_score(&g, 1, &s));
	growth_done(&g);
}

/* Memory stays bounded: at most GROWTH_MAX_LINES lines, new ones wait for
 * room, which lines unseen for a window make. */
static void test_tracker_bounds(void **state)
{
	struct growth g;
	struct growth_score s;

	(void)state;
	growth_init(&g);
	assert_true(growth_begin(&g, 0));
	for (uint64_t id = 1; id <= GROWTH_MAX_LINES + 500; id++)
		growth_observe(&g, id, id);
	assert_int_equal(g.nlines, GROWTH_MAX_LINES);
	assert_true(growth_line_score(&g, GROWTH_MAX_LINES, &s) == false && s.intervals == 0);
	/* untracked: no line at all */
	growth_observe(&g, 999999, 1);
	assert_int_equal(g.nlines, GROWTH_MAX_LINES);
	/* A window later, only the lines still seen remain, and room is back. */
	for (int k = 1; k <= GROWTH_POINTS; k++) {
		assert_true(growth_begin(&g, GROWTH_STEP * k));
		growth_observe(&g, 1, (uint64_t)k * 1000);
	}
	assert_int_equal(g.nlines, 1);
	growth_observe(&g, GROWTH_MAX_LINES + 7, 5);
	assert_int_equal(g.nlines, 2);
	assert_true(growth_line_score(&g, 1, &s));
	/* a refresh too soon is not recorded, and its sizes are ignored */
	assert_false(growth_begin(&g, GROWTH_STEP * GROWTH_POINTS + 1));
	growth_observe(&g, 424242, 5);
	assert_int_equal(g.nlines, 2);
	growth_done(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steady_leak),
		cmocka_unit_test(test_leak_under_noise),
		cmocka_unit_test(test_sawtooth_cache),
		cmocka_unit_test(test_one_off_jump),
		cmocka_unit_test(test_noise_alone),
		cmocka_unit_test(test_short_and_gappy_series),
		cmocka_unit_test(test_tracker),
		cmocka_unit_test(test_tracker_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
