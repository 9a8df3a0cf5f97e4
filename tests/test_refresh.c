/*
 * test_refresh.c - a view's refresh interval from what a refresh costs the
 * target (src/tui/refresh.c): the interval, the pacing from request to
 * reply, and the header line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "tui/refresh.h"

static void assert_near(double got, double want)
{
	if (fabs(got - want) > 1e-9)
		fail_msg("got %.17g, want %.17g", got, want);
}

static void test_every(void **state)
{
	(void)state;
	/* Cheap: the view's minimum. */
	assert_near(refresh_every(2, 3, 2), 2);
	assert_near(refresh_every(2, 40, 2), 2);          /* exactly the minimum */
	/* Dear: cost / cap. */
	assert_near(refresh_every(2, 240, 2), 12);
	assert_near(refresh_every(2, 1000, 2), 50);
	assert_near(refresh_every(2, 240, 0.1), 240);
	assert_near(refresh_every(2, 240, 100), 2);       /* a whole core allowed */
	assert_near(refresh_every(2, 3000, 100), 3);
	assert_near(refresh_every(5, 60, 2), 5);          /* a longer minimum (-i) */
	assert_near(refresh_every(5, 0, 2), 5);
	/* Unknown cost, or no cap: the minimum. */
	assert_near(refresh_every(2, -1, 2), 2);
	assert_near(refresh_every(2, NAN, 2), 2);
	assert_near(refresh_every(2, INFINITY, 2), 2);
	assert_near(refresh_every(2, 500, 0), 2);
	assert_near(refresh_every(2, 500, -3), 2);
	assert_near(refresh_every(2, 500, NAN), 2);
}

static void test_pacing(void **state)
{
	struct refresh r;
	struct msg_cost cost = { .took_ms = 600, .cpu_ms = -1 };

	(void)state;
	refresh_init(&r, 2, 2);
	assert_true(refresh_due(&r, 0));                  /* the first goes at once */
	refresh_asked(&r, 100, 2);
	assert_false(refresh_due(&r, 101.9));
	assert_true(refresh_due(&r, 102));                /* no cost known yet: the minimum */

	/* The reply: the next is cost / cap after the request went out. */
	refresh_cost(&r, &cost);
	assert_near(r.cost_ms, 600);
	assert_false(r.cost_cpu);
	assert_near(refresh_interval(&r), 30);
	assert_false(refresh_due(&r, 129.9));
	assert_true(refresh_due(&r, 130));

	/* The CPU time, when the agent gives it, wins over the wall time. */
	refresh_asked(&r, 130, 2);
	assert_near(r.next, 160);                         /* the newest cost holds meanwhile */
	cost = (struct msg_cost){ .took_ms = 900, .cpu_ms = 100 };
	refresh_cost(&r, &cost);
	assert_near(r.cost_ms, 100);
	assert_true(r.cost_cpu);
	assert_near(r.next, 135);

	/* A reply that says nothing of its cost changes nothing. */
	refresh_asked(&r, 135, 2);
	cost = (struct msg_cost){ .took_ms = -1, .cpu_ms = -1 };
	refresh_cost(&r, &cost);
	assert_near(r.cost_ms, 100);
	assert_near(r.next, 140);

	/* r while a request is in flight: its reply does not put it off. */
	refresh_asked(&r, 140, 2);
	refresh_now(&r);
	cost = (struct msg_cost){ .took_ms = 2000, .cpu_ms = 2000 };
	refresh_cost(&r, &cost);
	assert_true(refresh_due(&r, 140.5));
	assert_near(refresh_interval(&r), 100);

	/* A longer minimum (the sampling interval went up) counts from then. */
	cost = (struct msg_cost){ .took_ms = 1, .cpu_ms = -1 };
	refresh_cost(&r, &cost);
	refresh_asked(&r, 200, 8);
	assert_near(r.next, 208);

	/* Another cap. */
	refresh_init(&r, 2, 0.5);
	refresh_asked(&r, 10, 2);
	cost = (struct msg_cost){ .took_ms = 50, .cpu_ms = -1 };
	refresh_cost(&r, &cost);
	assert_near(r.next, 20);
}

static void test_describe(void **state)
{
	struct refresh r;
	struct msg_cost cost = { .took_ms = 250, .cpu_ms = 240 };
	char buf[256];

	(void)state;
	refresh_init(&r, 2, 2);
	refresh_describe(&r, buf, sizeof buf);
	assert_string_equal(buf, "refresh every 2 s");
	refresh_asked(&r, 1, 2);
	refresh_cost(&r, &cost);
	refresh_describe(&r, buf, sizeof buf);
	assert_string_equal(buf, "refresh every 12 s (one costs 240 ms of the target's CPU; cap 2 % of a core)");
	cost = (struct msg_cost){ .took_ms = 3.14, .cpu_ms = -1 };
	refresh_cost(&r, &cost);
	refresh_describe(&r, buf, sizeof buf);
	assert_string_equal(buf, "refresh every 2 s (one takes 3.1 ms of the target's time; cap 2 % of a core)");
	refresh_init(&r, 2.5, 0.1);
	refresh_describe(&r, buf, sizeof buf);
	assert_string_equal(buf, "refresh every 2.5 s");
	cost = (struct msg_cost){ .took_ms = -1, .cpu_ms = 1.234 };
	refresh_cost(&r, &cost);
	refresh_describe(&r, buf, sizeof buf);
	assert_string_equal(buf, "refresh every 2.5 s (one costs 1.2 ms of the target's CPU; cap 0.1 % of a core)");
	cost = (struct msg_cost){ .took_ms = -1, .cpu_ms = 12.6 };
	refresh_cost(&r, &cost);
	refresh_describe(&r, buf, sizeof buf);
	assert_string_equal(buf, "refresh every 13 s (one costs 13 ms of the target's CPU; cap 0.1 % of a core)");
	/* Cut to the buffer, never past it. */
	refresh_describe(&r, buf, 8);
	assert_string_equal(buf, "refresh");
	buf[0] = 'x';
	refresh_describe(&r, buf, 0);
	assert_int_equal(buf[0], 'x');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every),
		cmocka_unit_test(test_pacing),
		cmocka_unit_test(test_describe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
