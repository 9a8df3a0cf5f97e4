/*
 * test_groupsnap.c - snapshots of a group of processes: their sum, and in
 * how many processes each line is, and grew.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "snapshot/groupsnap.h"
#include "snapshot/snapdiff.h"
#include "snapshot/snapshot.h"

static void add(struct snapshot *s, const char *file, uint32_t line, uint64_t size, uint64_t count)
{
	struct snapshot_frame f = { file, line };
	snapshot_add_group(s, size, count, &f, 1, "x = 1");
	s->total_size += size;
	s->total_count += count;
}

static const struct snapshot_group *find(const struct snapshot *s, const char *file, uint32_t line)
{
	for (size_t i = 0; i < s->ngroups; i++)
		if (s->groups[i].frames[0].lineno == line && strcmp(s->groups[i].frames[0].filename, file) == 0)
			return &s->groups[i];
	return NULL;
}

static struct snapshot *proc(uint32_t pid, double t)
{
	struct snapshot *s = snapshot_new(PROTO_KEY_LINENO, false, 1);
	s->pid = pid;
	s->time = t;
	return s;
}

static void test_merge(void **state)
{
	(void)state;
	struct snapshot *s[3] = { proc(10, 100), proc(11, 105), proc(12, 101) };
	add(s[0], "app.py", 5, 1000, 10);
	add(s[0], "lib.py", 7, 50, 1);
	add(s[1], "app.py", 5, 3000, 30);
	add(s[2], "other.py", 1, 8, 1);
	/* Many distinct lines: the index grows while the sum is built. */
	for (uint32_t k = 0; k < 500; k++)
		add(s[2], "many.py", 100 + k, k + 1, 1);
	bool mixed;
	char err[256];
	struct snapshot *m = groupsnap_merge(s, 3, &mixed, err, sizeof err);
	assert_non_null(m);
	assert_false(mixed);
	assert_int_equal(m->ngroups, 3 + 500);
	assert_int_equal(find(m, "app.py", 5)->size, 4000);
	assert_int_equal(find(m, "app.py", 5)->count, 40);
	assert_int_equal(find(m, "many.py", 599)->size, 500);
	assert_true(m->total_size == s[0]->total_size + s[1]->total_size + s[2]->total_size);
	assert_true(m->time == 105);
	uint32_t in[503];
	groupsnap_presence(m, s, 3, in);
	for (size_t k = 0; k < m->ngroups; k++) {
		const struct snapshot_group *g = &m->groups[k];
		uint32_t want = g == find(m, "app.py", 5) ? 2 : 1;
		assert_int_equal(in[k], want);
	}
	snapshot_free(m);

	/* Another key, or another source, is said. */
	struct snapshot *other = snapshot_new(PROTO_KEY_FILENAME, false, 1);
	struct snapshot *two[2] = { s[0], other };
	assert_null(groupsnap_merge(two, 2, &mixed, err, sizeof err));
	assert_non_null(strstr(err, "--key"));
	snapshot_free(other);
	struct snapshot *sampled = proc(13, 1);
	sampled->source = SNAPSHOT_SOURCE_SAMPLED;
	sampled->interval = 4096;
	two[1] = sampled;
	m = groupsnap_merge(two, 2, &mixed, err, sizeof err);
	assert_non_null(m);
	assert_true(mixed);
	snapshot_free(m);
	snapshot_free(sampled);
	for (int i = 0; i < 3; i++)
		snapshot_free(s[i]);
}

/* The RSS of a group: the sum, when every process's is known; each part
 * where every process knows it. */
static void test_merge_memory(void **state)
{
	(void)state;
	struct snapshot *s[2] = { proc(10, 100), proc(11, 100) };
	bool mixed;
	char err[256];
	s[0]->mem = (struct snapshot_memory){ .has = true, .rss = 100, .known = 0x5 };
	s[0]->mem.part[0] = 60;
	s[0]->mem.part[2] = 40;
	s[1]->mem = (struct snapshot_memory){ .has = true, .rss = 50, .known = 0x1 };
	s[1]->mem.part[0] = 50;
	struct snapshot *m = groupsnap_merge(s, 2, &mixed, err, sizeof err);
	assert_true(m->mem.has);
	assert_int_equal(m->mem.rss, 150);
	assert_int_equal(m->mem.known, 0x1);
	assert_int_equal(m->mem.part[0], 110);
	assert_int_equal(m->mem.part[2], 0);
	snapshot_free(m);
	s[1]->mem.has = false;
	m = groupsnap_merge(s, 2, &mixed, err, sizeof err);
	assert_false(m->mem.has);
	assert_int_equal(m->mem.known, 0);
	assert_int_equal(m->mem.rss, 0);
	snapshot_free(m);
	snapshot_free(s[0]);
	snapshot_free(s[1]);
}

/* Three workers: the leak grows in one; a line grows a little in all; one
 * shrinks in one; one is new in one. */
static void test_spread(void **state)
{
	(void)state;
	struct snapshot *olds[3], *news[3];
	for (uint32_t i = 0; i < 3; i++) {
		olds[i] = proc(20 + i, 1);
		news[i] = proc(20 + i, 2);
		add(olds[i], "app.py", 1, 100, 1);
		add(news[i], "app.py", 1, 150, 2);   /* grows everywhere */
		add(olds[i], "leak.py", 9, 10, 1);
		add(news[i], "leak.py", 9, i == 1 ? 9000 : 10, 1);
		add(olds[i], "cache.py", 3, 500, 5);
		add(news[i], "cache.py", 3, i == 2 ? 100 : 500, 5);
	}
	add(news[0], "new.py", 4, 64, 1);
	bool mixed;
	char err[256];
	struct snapshot *mo = groupsnap_merge(olds, 3, &mixed, err, sizeof err);
	struct snapshot *mn = groupsnap_merge(news, 3, &mixed, err, sizeof err);
	struct snapdiff *d = snapdiff_new(mo, mn, err, sizeof err);
	assert_non_null(d);
	uint32_t grew[8], seen[8];
	assert_true(d->n <= 8);
	groupsnap_spread(d, olds, news, 3, grew, seen);
	for (size_t k = 0; k < d->n; k++) {
		const char *file = snapdiff_entry_group(&d->entries[k])->frames[0].filename;
		if (strcmp(file, "leak.py") == 0) {
			assert_int_equal(grew[k], 1);
			assert_int_equal(seen[k], 3);
			assert_int_equal(d->entries[k].size_diff, 8990);
			assert_int_equal(k, 0); /* the largest change first */
		} else if (strcmp(file, "app.py") == 0) {
			assert_int_equal(grew[k], 3);
		} else if (strcmp(file, "cache.py") == 0) {
			assert_int_equal(grew[k], 0);
			assert_int_equal(d->entries[k].size_diff, -400);
		} else {
			assert_string_equal(file, "new.py");
			assert_int_equal(grew[k], 1);
			assert_int_equal(seen[k], 1);
		}
	}
	snapdiff_free(d);
	snapshot_free(mo);
	snapshot_free(mn);
	for (int i = 0; i < 3; i++) {
		snapshot_free(olds[i]);
		snapshot_free(news[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_merge_memory),
		cmocka_unit_test(test_spread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
