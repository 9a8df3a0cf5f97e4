/*
 * test_ring.c - the SPSC ring: capacity rules, wrap-around, bulk copies, and a
 * two-thread stress test in which every item must arrive once and in order.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proc/ring.h"

static void test_capacity_must_be_power_of_two(void **state)
{
	(void)state;
	struct ring r;
	assert_int_equal(ring_init(&r, 0, 8), -1);
	assert_int_equal(ring_init(&r, 3, 8), -1);
	assert_int_equal(ring_init(&r, 100, 8), -1);
	assert_int_equal(ring_init(&r, 64, 8), 0);
	assert_int_equal(ring_capacity(&r), 64);
	ring_done(&r);
}

static void test_full_and_empty(void **state)
{
	(void)state;
	struct ring r;
	assert_int_equal(ring_init(&r, 4, sizeof(int)), 0);
	int v = 0;
	assert_false(ring_pop(&r, &v));
	for (int i = 0; i < 4; i++)
		assert_true(ring_push(&r, &i));
	int extra = 99;
	assert_false(ring_push(&r, &extra)); /* full */
	for (int i = 0; i < 4; i++) {
		assert_true(ring_pop(&r, &v));
		assert_int_equal(v, i);
	}
	assert_false(ring_pop(&r, &v));
	ring_done(&r);
}

static void test_bulk_wraps_around(void **state)
{
	(void)state;
	struct ring r;
	assert_int_equal(ring_init(&r, 8, sizeof(uint32_t)), 0);
	uint32_t in[8], out[8], next_in = 0, next_out = 0;
	/* Push 5 / pop 5 repeatedly so every copy eventually straddles the end. */
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 5; i++)
			in[i] = next_in++;
		assert_int_equal(ring_push_n(&r, in, 5), 5);
		assert_int_equal(ring_pop_n(&r, out, 8), 5);
		for (int i = 0; i < 5; i++)
			assert_int_equal(out[i], next_out++);
	}
	/* A bulk push larger than the room is cut to the room. */
	for (int i = 0; i < 8; i++)
		in[i] = next_in++;
	assert_int_equal(ring_push_n(&r, in, 8), 8);
	assert_int_equal(ring_push_n(&r, in, 1), 0);
	assert_int_equal(ring_pop_n(&r, out, 3), 3);
	assert_int_equal(ring_push_n(&r, in, 8), 3);
	ring_done(&r);
}

#define STRESS_ITEMS 2000000ull

struct item {
	uint64_t seq;
	uint64_t check; /* derived from seq: detects torn copies */
};

static void *producer(void *arg)
{
	struct ring *r = arg;
	struct item batch[7];
	uint64_t seq = 0;
	while (seq < STRESS_ITEMS) {
		/* Mix single pushes and bulk pushes of odd sizes. */
		size_t n = (seq % 3 == 0) ? 1 : 7;
		if (n > STRESS_ITEMS - seq)
			n = (size_t)(STRESS_ITEMS - seq);
		for (size_t i = 0; i < n; i++)
			batch[i] = (struct item){ seq + i, (seq + i) * 2654435761u ^ 0xabcdefu };
		size_t done = 0;
		while (done < n)
			done += ring_push_n(r, batch + done, n - done);
		seq += n;
	}
	return NULL;
}

static void test_two_threads_every_item_once_in_order(void **state)
{
	(void)state;
	struct ring r;
	assert_int_equal(ring_init(&r, 256, sizeof(struct item)), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, producer, &r), 0);
	uint64_t expect = 0;
	struct item buf[13];
	while (expect < STRESS_ITEMS) {
		size_t n = ring_pop_n(&r, buf, 13);
		for (size_t i = 0; i < n; i++) {
			if (buf[i].seq != expect || buf[i].check != (expect * 2654435761u ^ 0xabcdefu))
				fail_msg("item %llu arrived as seq %llu", (unsigned long long)expect,
					 (unsigned long long)buf[i].seq);
			expect++;
		}
	}
	pthread_join(t, NULL);
	struct item extra;
	assert_false(ring_pop(&r, &extra));
	ring_done(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capacity_must_be_power_of_two),
		cmocka_unit_test(test_full_and_empty),
		cmocka_unit_test(test_bulk_wraps_around),
		cmocka_unit_test(test_two_threads_every_item_once_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
