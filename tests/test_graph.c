/*
 * test_graph.c - values to glyphs: bucketing, nice axes, braille and ASCII
 * rendering (pure functions, no terminal).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "proc/history.h"
#include "tui/graph.h"

static void test_axis_nice(void **state)
{
	(void)state;
	struct graph_axis ax;
	double MiB = 1024.0 * 1024.0;
	graph_axis_nice(180 * MiB, 240 * MiB, 4, &ax);
	assert_true(ax.lo <= 180 * MiB && ax.hi >= 240 * MiB);
	assert_true((ax.hi - ax.lo) / ax.step <= 6);
	assert_true(fmod(ax.step, MiB) == 0);        /* whole MiB steps */
	assert_true(fmod(ax.lo, ax.step) == 0);
	/* Flat data still gets a non-empty axis around it. */
	graph_axis_nice(100 * MiB, 100 * MiB, 4, &ax);
	assert_true(ax.hi > ax.lo && ax.lo <= 100 * MiB && ax.hi >= 100 * MiB);
	/* Zero stays usable. */
	graph_axis_nice(0, 0, 4, &ax);
	assert_true(ax.hi > ax.lo && ax.lo == 0);
}

static void test_bucket_takes_max_and_holds(void **state)
{
	(void)state;
	struct history h;
	history_init(&h, 64);
	/* Points at t = 0, 1, 2, ... 9 with rss = t * 10, a spike at t = 4.5. */
	for (int i = 0; i < 10; i++) {
		struct history_point p = { .t = i, .v = (uint64_t)i * 10 };
		history_append(&h, &p);
		if (i == 4) {
			struct history_point s = { .t = 4.5, .v = 1000 };
			history_append(&h, &s);
		}
	}
	double out[5];
	graph_bucket(&h, 0, 10, 1.5, 5, out); /* 2 s per column */
	assert_true(out[0] == 10);   /* t 0,1 */
	assert_true(out[2] == 1000); /* t 4, 4.5, 5: the spike wins */
	assert_true(out[4] == 90);
	/* Columns narrower than the sample spacing repeat the last value within
	 * hold, and show nothing beyond it. */
	double fine[20];
	graph_bucket(&h, 10, 20, 1.5, 20, fine);
	assert_true(fine[0] == 90 && fine[1] == 90); /* 10.0, 10.5: within 1.5 s of t=9 */
	assert_true(isnan(fine[5]));
	/* Heap series: missing where there are no heap points, or after a gap
	 * (tracing went off at t = 0). */
	struct history heap;
	history_init(&heap, 64);
	graph_bucket(&heap, 0, 10, 1.5, 5, out);
	for (int i = 0; i < 5; i++)
		assert_true(isnan(out[i]));
	struct history_point on = { .t = -1, .v = 500 }, off = { .t = 0, .gap = true };
	history_append(&heap, &on);
	history_append(&heap, &off);
	graph_bucket(&heap, 0, 10, 1.5, 5, out);
	for (int i = 0; i < 5; i++)
		assert_true(isnan(out[i]));
	history_done(&heap);
	history_done(&h);
}

/* Count dots set in a braille cell. */
static int dots(uint32_t ch)
{
	return ch >= 0x2800 && ch <= 0x28ff ? __builtin_popcount(ch - 0x2800) : 0;
}

static void test_braille_area_heights(void **state)
{
	(void)state;
	struct graph_axis ax = { .lo = 0, .hi = 80, .step = 20 };
	/* 2 cells wide = 4 dot columns, 2 rows = 8 dot rows. */
	double v[4] = { 0, 10, 40, 80 };
	struct graph_cell c[4];
	graph_render(GRAPH_BRAILLE, 2, 2, v, NULL, &ax, c);
	/* Column 0 (value 0): nothing. Column 1 (10 of 80 = 1 dot). */
	/* Bottom-left cell holds columns 0 and 1: 0 + 1 dots. */
	assert_int_equal(dots(c[2].ch), 1);
	assert_int_equal(c[2].ch, 0x2800u + 0x80u); /* bottom dot of the right column */
	/* Bottom-right cell: column 2 (4 dots) + column 3 (4 dots, full half). */
	assert_int_equal(c[3].ch, 0x28ffu);
	/* Top-right: column 2 has no dots up there, column 3 fills it. */
	assert_int_equal(c[1].ch, 0x2800u + 0x08 + 0x10 + 0x20 + 0x80);
	assert_int_equal(c[0].series, GRAPH_NONE);
	assert_int_equal(c[0].ch, ' ');
	assert_int_equal(c[3].series, GRAPH_AREA);
}

static void test_line_over_area_and_nan(void **state)
{
	(void)state;
	struct graph_axis ax = { .lo = 0, .hi = 40, .step = 10 };
	double area[4] = { 40, 40, NAN, 40 };
	double line[4] = { 5, 5, 5, NAN };
	struct graph_cell c[4]; /* 2 x 2 */
	graph_render(GRAPH_BRAILLE, 2, 2, area, line, &ax, c);
	/* The line passes through the bottom row: those cells take its colour
	 * and show only its dots. */
	assert_int_equal(c[2].series, GRAPH_LINE);
	assert_int_equal(dots(c[2].ch), 2);
	assert_int_equal(c[3].series, GRAPH_LINE);
	assert_int_equal(dots(c[3].ch), 1);
	/* Top row: area only; the NAN column left its half empty. */
	assert_int_equal(c[0].series, GRAPH_AREA);
	assert_int_equal(c[0].ch, 0x28ffu);
	assert_int_equal(c[1].ch, 0x2800u + 0x08 + 0x10 + 0x20 + 0x80);
}

static void test_ascii(void **state)
{
	(void)state;
	struct graph_axis ax = { .lo = 0, .hi = 60, .step = 20 };
	double v[3] = { 60, 10, 30 };
	double l[3] = { NAN, NAN, 60 };
	struct graph_cell c[6]; /* 3 wide, 2 high: 6 levels */
	graph_render(GRAPH_ASCII, 3, 2, v, l, &ax, c);
	assert_int_equal(c[0].ch, '|'); /* full column */
	assert_int_equal(c[3].ch, '|');
	assert_int_equal(c[1].ch, ' '); /* 10/60 = level 1: bottom cell partial */
	assert_int_equal(c[4].ch, '.');
	assert_int_equal(c[5].ch, '|'); /* 30/60 = level 3: one full bottom cell */
	assert_int_equal(c[2].ch, '*'); /* the line at the top */
	assert_int_equal(c[2].series, GRAPH_LINE);
	for (int i = 0; i < 6; i++)
		assert_true(c[i].ch < 0x80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_axis_nice),
		cmocka_unit_test(test_bucket_takes_max_and_holds),
		cmocka_unit_test(test_braille_area_heights),
		cmocka_unit_test(test_line_over_area_and_nan),
		cmocka_unit_test(test_ascii),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
