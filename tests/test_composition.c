/*
 * test_composition.c - what an RSS is made of, from smaps kinds and the
 * agent's allocator figures (session/composition.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "session/composition.h"

#define MiB (1024 * 1024)

static struct proc_sample kinds_sample(void)
{
	struct proc_sample k;
	memset(&k, 0, sizeof k);
	k.flags = PROC_SAMPLE_HAS_KINDS;
	k.t = 10;
	k.kinds[SMAPS_FILE] = 8 * MiB;
	k.kinds[SMAPS_HEAP] = 30 * MiB;
	k.kinds[SMAPS_ANON] = 20 * MiB;
	k.kinds[SMAPS_STACK] = 1 * MiB;
	k.kinds[SMAPS_OTHER] = 8192;
	for (int i = 0; i < SMAPS_KIND_COUNT; i++)
		k.kinds_rss += k.kinds[i];
	return k;
}

static struct msg_status agent_status(void)
{
	struct msg_status st;
	memset(&st, 0, sizeof st);
	st.has_memory = true;
	st.memory.has_malloc = true;
	st.memory.malloc.in_use = 20 * MiB;
	st.memory.malloc.mmapped = 4 * MiB;
	st.memory.malloc.free = 6 * MiB;
	st.memory.has_pymalloc = true;
	st.memory.pymalloc.arena_bytes = 16 * MiB;
	st.memory.pymalloc.allocated = 12 * MiB;
	return st;
}

static int64_t sum_all(const struct composition *c)
{
	int64_t s = 0;
	for (int p = 0; p < COMP_PART_COUNT; p++)
		if (c->part[p].shown)
			s += c->part[p].bytes;
	return s;
}

/* Tracing saw more than pymalloc holds: its excess is Python's in malloc. */
static void test_with_tracing(void **state)
{
	(void)state;
	struct proc_sample k = kinds_sample();
	struct msg_status st = agent_status();
	st.tracing = true;
	st.traced_current = 15 * MiB;
	struct composition c;
	composition_make(&k, &st, "", &c);
	assert_true(c.valid);
	assert_true(c.agent);
	assert_int_equal(c.rss, k.kinds_rss);
	assert_int_equal(c.part[COMP_PYTHON].bytes, 15 * MiB);
	assert_string_equal(c.part[COMP_PYTHON].source, "tracemalloc");
	assert_int_equal(c.part[COMP_SLACK].bytes, 4 * MiB);
	assert_int_equal(c.part[COMP_NATIVE].bytes, (20 + 4 - 3) * MiB);
	assert_int_equal(c.part[COMP_MALLOC_FREE].bytes, 6 * MiB);
	assert_int_equal(c.part[COMP_STACKS].bytes, 1 * MiB);
	assert_int_equal(c.part[COMP_FILES].bytes, 8 * MiB);
	assert_false(c.part[COMP_HEAPS].shown);
	assert_int_equal(sum_all(&c), (int64_t)c.rss);
	assert_int_equal(c.part[COMP_REST].bytes,
			 (int64_t)k.kinds_rss - (15 + 4 + 21 + 6 + 1 + 8) * MiB);
	assert_string_equal(c.why, "");
}

/* Tracing started late and saw less than pymalloc's blocks: those are shown,
 * and nothing of malloc is taken as Python's. */
static void test_tracing_started_late(void **state)
{
	(void)state;
	struct proc_sample k = kinds_sample();
	struct msg_status st = agent_status();
	st.has_profile = true;
	st.profile.running = true;
	st.profile.live_bytes = 2.0 * MiB;
	st.profile.live_malloc_bytes = -1; /* an agent that does not split it */
	struct composition c;
	composition_make(&k, &st, "", &c);
	assert_int_equal(c.part[COMP_PYTHON].bytes, 12 * MiB);
	assert_non_null(strstr(c.part[COMP_PYTHON].source, "started later"));
	assert_int_equal(c.part[COMP_NATIVE].bytes, 24 * MiB);
}

/* The profiler says which of its blocks came from malloc: Python objects
 * are pymalloc's blocks and those, and malloc's in use less those is native. */
static void test_profiler_split(void **state)
{
	(void)state;
	struct proc_sample k = kinds_sample();
	struct msg_status st = agent_status();
	st.has_profile = true;
	st.profile.running = true;
	st.profile.live_bytes = 7.0 * MiB;
	st.profile.live_malloc_bytes = 5.0 * MiB;
	struct composition c;
	composition_make(&k, &st, "", &c);
	assert_int_equal(c.part[COMP_PYTHON].bytes, (12 + 5) * MiB);
	assert_int_equal(c.part[COMP_NATIVE].bytes, (24 - 5) * MiB);
	assert_int_equal(c.part[COMP_SLACK].bytes, 4 * MiB);
	assert_int_equal(sum_all(&c), (int64_t)c.rss);
}

/* The rest is signed: free memory counted above that is not resident. */
static void test_rest_negative(void **state)
{
	(void)state;
	struct proc_sample k = kinds_sample();
	struct msg_status st = agent_status();
	st.memory.malloc.free = 200 * MiB;
	struct composition c;
	composition_make(&k, &st, "", &c);
	assert_true(c.part[COMP_REST].bytes < 0);
	assert_int_equal(sum_all(&c), (int64_t)c.rss);
}

/* No agent, or an agent without figures: smaps alone, and why. */
static void test_proc_only(void **state)
{
	(void)state;
	struct proc_sample k = kinds_sample();
	struct composition c;
	composition_make(&k, NULL, "", &c);
	assert_true(c.valid);
	assert_false(c.agent);
	assert_int_equal(c.part[COMP_HEAPS].bytes, 30 * MiB);
	assert_int_equal(c.part[COMP_ANON].bytes, 20 * MiB);
	assert_int_equal(c.part[COMP_REST].bytes, 8192);
	assert_false(c.part[COMP_PYTHON].shown);
	assert_non_null(strstr(c.why, "need the agent"));
	assert_int_equal(sum_all(&c), (int64_t)c.rss);

	struct msg_status st = agent_status();
	st.memory.has_malloc = st.memory.has_pymalloc = false;
	strcpy(st.memory.malloc_why, "malloc is not glibc's: jemalloc (/usr/lib/libjemalloc.so.2) replaces it");
	composition_make(&k, &st, "", &c);
	assert_false(c.agent);
	assert_non_null(strstr(c.why, "jemalloc"));
}

/* pymalloc hidden (tracemalloc hooks it): which malloc bytes are Python's
 * is not known, and the source says so. */
static void test_no_pymalloc(void **state)
{
	(void)state;
	struct proc_sample k = kinds_sample();
	struct msg_status st = agent_status();
	st.memory.has_pymalloc = false;
	strcpy(st.memory.pymalloc_why, "hidden while tracemalloc hooks the allocator");
	st.tracing = true;
	st.traced_current = 5 * MiB;
	struct composition c;
	composition_make(&k, &st, "", &c);
	assert_int_equal(c.part[COMP_PYTHON].bytes, 5 * MiB);
	assert_false(c.part[COMP_SLACK].shown);
	assert_int_equal(c.part[COMP_NATIVE].bytes, 24 * MiB);
	assert_non_null(strstr(c.part[COMP_NATIVE].source, "included"));
	assert_non_null(strstr(c.why, "Python slack: hidden"));
}

static void test_no_sample(void **state)
{
	(void)state;
	struct composition c;
	composition_make(NULL, NULL, "kinds of memory unavailable: /proc/7/smaps: permission denied", &c);
	assert_false(c.valid);
	assert_non_null(strstr(c.why, "permission denied"));
	composition_make(NULL, NULL, "", &c);
	assert_false(c.valid);
	assert_non_null(strstr(c.why, "reading"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_with_tracing),
		cmocka_unit_test(test_tracing_started_late),
		cmocka_unit_test(test_profiler_split),
		cmocka_unit_test(test_rest_negative),
		cmocka_unit_test(test_proc_only),
		cmocka_unit_test(test_no_pymalloc),
		cmocka_unit_test(test_no_sample),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
