/*
 * test_snapdiff.c - snapshot diffs: matching, statuses, sort orders, key and
 * cumulative checks, printing, and the hash join against a naive join.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "snapshot/snapdiff.h"
#include "snapshot/snapshot.h"
#include "base/xalloc.h"

static struct snapshot *load(const char *name)
{
	char *p = xasprintf("%s/snapshots/%s", PMT_TEST_DATA, name);
	char err[512];
	struct snapshot *s = snapshot_load(p, err, sizeof(err));

	if (s == NULL)
		fail_msg("%s", err);
	free(p);
	return s;
}

static void add(struct snapshot *s, const char *file, uint32_t line, uint64_t size, uint64_t count)
{
	struct snapshot_frame f = { file, line };

	snapshot_add_group(s, size, count, &f, 1, "");
	s->total_size += size;
	s->total_count += count;
}

/* The entry's location as "file:line" in a static buffer. */
static const char *loc(const struct snapdiff_entry *e)
{
	static char buf[256];
	const struct snapshot_group *g = snapdiff_entry_group(e);

	snprintf(buf, sizeof(buf), "%s:%u", g->frames[0].filename, g->frames[0].lineno);
	return buf;
}

static void expect_order(const struct snapdiff *d, const char *const *want, size_t n)
{
	assert_int_equal(d->n, n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(loc(&d->entries[i]), want[i]) != 0)
			fail_msg("%s: entry %zu is %s, want %s", snapdiff_order_name(d->order), i,
				 loc(&d->entries[i]), want[i]);
}

#define CACHE "/srv/app/cache.py:41"
#define WORKER "/srv/app/worker.py:88"
#define MODELS "/srv/app/models.py:120"
#define DECODER "/usr/lib/python3.11/json/decoder.py:353"
#define FROZEN "<frozen importlib._bootstrap_external>:729"
#define CAFE "/srv/app/caf\xc3\xa9/\xc3\xbc" "ber.py:7"

static void test_fixture_diff(void **state)
{
	struct snapshot *a = load("lineno_old.json"), *b = load("lineno_new.json");
	char err[256];
	struct snapdiff *d = snapdiff_new(a, b, err, sizeof(err));
	const struct snapdiff_entry *e;

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->n, 6);
	assert_int_equal(d->nnew, 1);
	assert_int_equal(d->ngone, 1);
	assert_int_equal(d->nchanged, 2);
	assert_int_equal(d->nsame, 2);
	assert_int_equal(d->total_size_diff, (int64_t)b->total_size - (int64_t)a->total_size);
	assert_int_equal(d->total_count_diff, (int64_t)b->total_count - (int64_t)a->total_count);
	{
		static const char *const want[] = { CACHE, WORKER, DECODER, CAFE, MODELS, FROZEN };

		expect_order(d, want, 6);
	}
	e = &d->entries[0];
	assert_int_equal(e->status, SNAPDIFF_CHANGED);
	assert_int_equal(e->size_diff, 15728640 - 5242880);
	assert_int_equal(e->count_diff, 3840 - 1280);
	assert_int_equal(e->size, 15728640);
	assert_int_equal(e->old_size, 5242880);
	assert_int_equal(e->count, 3840);
	assert_int_equal(e->old_count, 1280);
	assert_non_null(e->old_group);
	assert_non_null(e->new_group);
	e = &d->entries[1]; /* new */
	assert_int_equal(e->status, SNAPDIFF_NEW);
	assert_null(e->old_group);
	assert_int_equal(e->old_size, 0);
	assert_int_equal(e->size_diff, 2097152);
	e = &d->entries[2]; /* gone */
	assert_int_equal(e->status, SNAPDIFF_GONE);
	assert_null(e->new_group);
	assert_int_equal(e->size, 0);
	assert_int_equal(e->count, 0);
	assert_int_equal(e->size_diff, -65536);
	assert_int_equal(e->count_diff, -512);
	e = &d->entries[3];
	assert_int_equal(e->size_diff, -400);
	assert_int_equal(e->count_diff, -4);
	e = &d->entries[4];
	assert_int_equal(e->status, SNAPDIFF_SAME);
	assert_int_equal(e->size_diff, 0);
	assert_int_equal(e->count_diff, 0);
	assert_int_equal(e->size, 1048576);

	snapdiff_sort(d, SNAPDIFF_ORDER_SIZE_DIFF);
	{
		static const char *const want[] = { CACHE, WORKER, MODELS, FROZEN, CAFE, DECODER };

		expect_order(d, want, 6);
	}
	snapdiff_sort(d, SNAPDIFF_ORDER_SIZE);
	{
		static const char *const want[] = { CACHE, WORKER, MODELS, FROZEN, CAFE, DECODER };

		expect_order(d, want, 6);
	}
	snapdiff_sort(d, SNAPDIFF_ORDER_COUNT_DIFF);
	{
		static const char *const want[] = { CACHE, WORKER, MODELS, FROZEN, CAFE, DECODER };

		expect_order(d, want, 6);
	}
	snapdiff_sort(d, SNAPDIFF_ORDER_COUNT);
	{
		static const char *const want[] = { MODELS, CACHE, WORKER, CAFE, FROZEN, DECODER };

		expect_order(d, want, 6);
	}
	snapdiff_sort(d, SNAPDIFF_ORDER_ABS_SIZE_DIFF);
	{
		static const char *const want[] = { CACHE, WORKER, DECODER, CAFE, MODELS, FROZEN };

		expect_order(d, want, 6);
	}
	snapdiff_free(d);
	snapshot_free(a);
	snapshot_free(b);
}

static void test_orders_differ(void **state)
{
	struct snapshot *a = snapshot_new(PROTO_KEY_LINENO, false, 1);
	struct snapshot *b = snapshot_new(PROTO_KEY_LINENO, false, 1);
	char err[256];
	struct snapdiff *d;

	(void)state;
	/* p: grows a little, big; q: shrinks a lot; r: many small blocks */
	add(a, "p.py", 1, 1000, 10);
	add(b, "p.py", 1, 1500, 11);
	add(a, "q.py", 1, 5000, 50);
	add(b, "q.py", 1, 100, 1);
	add(a, "r.py", 1, 10, 1);
	add(b, "r.py", 1, 400, 400);
	d = snapdiff_new(a, b, err, sizeof(err));
	assert_non_null(d);
	{
		static const char *const want[] = { "q.py:1", "p.py:1", "r.py:1" };

		expect_order(d, want, 3);
	}
	snapdiff_sort(d, SNAPDIFF_ORDER_SIZE_DIFF);
	{
		static const char *const want[] = { "p.py:1", "r.py:1", "q.py:1" };

		expect_order(d, want, 3);
	}
	snapdiff_sort(d, SNAPDIFF_ORDER_SIZE);
	{
		static const char *const want[] = { "p.py:1", "r.py:1", "q.py:1" };

		expect_order(d, want, 3);
	}
	snapdiff_sort(d, SNAPDIFF_ORDER_COUNT_DIFF);
	{
		static const char *const want[] = { "r.py:1", "p.py:1", "q.py:1" };

		expect_order(d, want, 3);
	}
	snapdiff_sort(d, SNAPDIFF_ORDER_COUNT);
	{
		static const char *const want[] = { "r.py:1", "p.py:1", "q.py:1" };

		expect_order(d, want, 3);
	}
	snapdiff_free(d);
	snapshot_free(a);
	snapshot_free(b);
}

static void test_ties_follow_tracemalloc(void **state)
{
	struct snapshot *a = snapshot_new(PROTO_KEY_LINENO, false, 1);
	struct snapshot *b = snapshot_new(PROTO_KEY_LINENO, false, 1);
	char err[256];
	struct snapdiff *d;

	(void)state;
	/* equal numbers: tracemalloc sorts Traceback objects in reverse */
	add(b, "a.py", 5, 64, 1);
	add(b, "b.py", 1, 64, 1);
	add(b, "a.py", 10, 64, 1);
	add(b, "a.py", 9, 64, 2); /* more blocks: first among equal sizes */
	d = snapdiff_new(a, b, err, sizeof(err));
	assert_non_null(d);
	{
		static const char *const want[] = { "a.py:9", "b.py:1", "a.py:10", "a.py:5" };

		expect_order(d, want, 4);
	}
	snapdiff_free(d);
	snapshot_free(a);
	snapshot_free(b);
}

static void test_traceback_keys(void **state)
{
	struct snapshot *a = snapshot_new(PROTO_KEY_TRACEBACK, false, 3);
	struct snapshot *b = snapshot_new(PROTO_KEY_TRACEBACK, false, 3);
	struct snapshot_frame t1[] = { { "lib.py", 10 }, { "api.py", 5 }, { "main.py", 1 } };
	struct snapshot_frame t2[] = { { "lib.py", 10 }, { "job.py", 7 }, { "main.py", 1 } };
	struct snapshot_frame t3[] = { { "lib.py", 10 }, { "api.py", 5 } };
	struct snapshot *la, *lb;
	char err[256];
	struct snapdiff *d;

	(void)state;
	snapshot_add_group(a, 100, 1, t1, 3, "x()");
	snapshot_add_group(a, 200, 2, t2, 3, "x()");
	snapshot_add_group(b, 150, 1, t1, 3, "x()");
	snapshot_add_group(b, 50, 1, t3, 2, "x()"); /* a prefix of t1: another key */
	d = snapdiff_new(a, b, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(d->n, 3);
	assert_int_equal(d->entries[0].status, SNAPDIFF_GONE); /* t2: -200 */
	assert_int_equal(d->entries[0].size_diff, -200);
	assert_string_equal(snapdiff_entry_group(&d->entries[0])->frames[1].filename, "job.py");
	assert_int_equal(d->entries[1].size_diff, 50);
	assert_int_equal(d->entries[1].size, 150);
	assert_int_equal(d->entries[1].status, SNAPDIFF_CHANGED);
	assert_int_equal(d->entries[2].status, SNAPDIFF_NEW);
	assert_int_equal(snapdiff_entry_group(&d->entries[2])->nframes, 2);
	snapdiff_free(d);

	/* regrouped by line, the three tracebacks meet at lib.py:10 */
	la = snapshot_regroup(a, PROTO_KEY_LINENO, err, sizeof(err));
	lb = snapshot_regroup(b, PROTO_KEY_LINENO, err, sizeof(err));
	assert_non_null(la);
	assert_non_null(lb);
	d = snapdiff_new(la, lb, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(d->n, 1);
	assert_int_equal(d->entries[0].old_size, 300);
	assert_int_equal(d->entries[0].size, 200);
	assert_int_equal(d->entries[0].count_diff, -1);
	assert_string_equal(snapdiff_entry_group(&d->entries[0])->line, "x()");
	snapdiff_free(d);

	/* mixing keys is refused with advice */
	assert_null(snapdiff_new(a, lb, err, sizeof(err)));
	assert_string_equal(err, "cannot diff a snapshot grouped by traceback with one grouped by "
				 "lineno: regroup both by lineno (--key lineno)");
	assert_null(snapdiff_new(lb, a, err, sizeof(err)));
	assert_string_equal(err, "cannot diff a snapshot grouped by lineno with one grouped by "
				 "traceback: regroup both by lineno (--key lineno)");
	snapshot_free(la);
	snapshot_free(lb);
	snapshot_free(a);
	snapshot_free(b);
}

static void test_filename_regroup_and_cumulative(void **state)
{
	struct snapshot *a = load("lineno_old.json"), *b = load("lineno_new.json");
	struct snapshot *fa, *fb, *c;
	char err[256];
	struct snapdiff *d;

	(void)state;
	fa = snapshot_regroup(a, PROTO_KEY_FILENAME, err, sizeof(err));
	fb = snapshot_regroup(b, PROTO_KEY_FILENAME, err, sizeof(err));
	assert_non_null(fa);
	assert_non_null(fb);
	assert_null(snapdiff_new(fa, b, err, sizeof(err)));
	assert_string_equal(err, "cannot diff a snapshot grouped by filename with one grouped by "
				 "lineno: regroup both by filename (--key filename)");
	d = snapdiff_new(fa, fb, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(d->key, PROTO_KEY_FILENAME);
	assert_int_equal(d->n, 6);
	assert_string_equal(loc(&d->entries[0]), "/srv/app/cache.py:0");
	snapdiff_free(d);

	c = snapshot_new(PROTO_KEY_LINENO, true, 1);
	assert_null(snapdiff_new(a, c, err, sizeof(err)));
	assert_string_equal(err, "cannot diff a cumulative snapshot with a non-cumulative one: "
				 "take both with the same cumulative setting");
	snapshot_free(c);
	snapshot_free(fa);
	snapshot_free(fb);
	snapshot_free(a);
	snapshot_free(b);
}

static void test_empty(void **state)
{
	struct snapshot *a = snapshot_new(PROTO_KEY_LINENO, false, 1);
	struct snapshot *b = snapshot_new(PROTO_KEY_LINENO, false, 1);
	char err[256];
	struct snapdiff *d = snapdiff_new(a, b, err, sizeof(err));

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->n, 0);
	snapdiff_free(d);
	add(b, "x.py", 1, 10, 1);
	d = snapdiff_new(a, b, err, sizeof(err));
	assert_int_equal(d->n, 1);
	assert_int_equal(d->entries[0].status, SNAPDIFF_NEW);
	snapdiff_free(d);
	d = snapdiff_new(b, a, err, sizeof(err));
	assert_int_equal(d->n, 1);
	assert_int_equal(d->entries[0].status, SNAPDIFF_GONE);
	assert_int_equal(d->total_size_diff, -10);
	snapdiff_free(d);
	snapshot_free(a);
	snapshot_free(b);
}

/* The hash join agrees with a naive nested-loop join on random data. */
static void test_against_naive_join(void **state)
{
	uint64_t r = 12345;
	struct snapshot *a = snapshot_new(PROTO_KEY_TRACEBACK, false, 3);
	struct snapshot *b = snapshot_new(PROTO_KEY_TRACEBACK, false, 3);
	char err[256], files[8][24];
	struct snapdiff *d;
	size_t found_new = 0;

	(void)state;
	for (int i = 0; i < 8; i++)
		snprintf(files[i], sizeof(files[i]), "mod%d.py", i);
	for (int side = 0; side < 2; side++) {
		struct snapshot *s = side ? b : a;

		for (int i = 0; i < 1500; i++) {
			struct snapshot_frame f[3];
			uint32_t nf;

			r = r * 6364136223846793005ULL + 1442695040888963407ULL;
			nf = 1 + (uint32_t)(r >> 60) % 3;
			for (uint32_t k = 0; k < nf; k++) {
				f[k].filename = files[(r >> (8 * k + 3)) % 8];
				f[k].lineno = (uint32_t)((r >> (8 * k + 10)) % 6);
			}
			/* skip duplicate keys within one snapshot */
			{
				bool dup = false;

				for (size_t j = 0; j < s->ngroups && !dup; j++) {
					const struct snapshot_group *o = &s->groups[j];

					if (o->nframes != nf)
						continue;
					dup = true;
					for (uint32_t k = 0; k < nf; k++)
						if (o->frames[k].lineno != f[k].lineno ||
						    strcmp(o->frames[k].filename, f[k].filename) != 0)
							dup = false;
				}
				if (dup)
					continue;
			}
			snapshot_add_group(s, (r >> 20) % 100000, 1 + (r >> 40) % 100, f, nf, "");
		}
	}
	d = snapdiff_new(a, b, err, sizeof(err));
	assert_non_null(d);
	for (size_t i = 0; i < d->n; i++) {
		const struct snapdiff_entry *e = &d->entries[i];
		const struct snapshot_group *g = snapdiff_entry_group(e);
		const struct snapshot_group *in_a = NULL, *in_b = NULL;

		for (size_t j = 0; j < a->ngroups; j++)
			if (snapshot_group_equal(&a->groups[j], g))
				in_a = &a->groups[j];
		for (size_t j = 0; j < b->ngroups; j++)
			if (snapshot_group_equal(&b->groups[j], g))
				in_b = &b->groups[j];
		assert_ptr_equal(e->old_group, in_a);
		assert_ptr_equal(e->new_group, in_b);
		if (in_a == NULL)
			found_new++;
		if (i > 0)
			assert_true(llabs(d->entries[i - 1].size_diff) >= llabs(e->size_diff));
	}
	/* every group of both sides appears exactly once */
	assert_int_equal(d->n, a->ngroups + b->ngroups - (d->nchanged + d->nsame));
	assert_int_equal(found_new, d->nnew);
	assert_true(d->nnew > 10 && d->ngone > 10 && d->nchanged > 10);
	snapdiff_free(d);
	snapshot_free(a);
	snapshot_free(b);
}

static char *print_to_string(const struct snapdiff *d, size_t top, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(snapdiff_print(f, d, top, json), 0);
	fclose(f);
	return buf;
}

static void test_print(void **state)
{
	struct snapshot *a = load("lineno_old.json"), *b = load("lineno_new.json");
	char err[256];
	struct snapdiff *d = snapdiff_new(a, b, err, sizeof(err));
	char *out;
	cJSON *j, *e;

	(void)state;
	out = print_to_string(d, 4, false);
	assert_string_equal(out,
		"diff by lineno: \"before deploy\" (pid 31337, 2025-11-21 04:40:00 UTC) -> "
		"\"after deploy\" (pid 31337, 2025-11-21 04:41:00 UTC)\n"
		"traced 6.1 MiB -> 18.0 MiB (+11.9 MiB), blocks 5902 -> 9994 (+4092)\n"
		"6 locations: 1 new, 1 gone, 2 changed, 2 same; 4 shown by abs-size-diff\n"
		"  SIZE DIFF       SIZE COUNT DIFF      COUNT  LOCATION\n"
		"  +10.0 MiB   15.0 MiB      +2560       3840  /srv/app/cache.py:41: self._store[key] = bytes(blob)\n"
		"   +2.0 MiB    2.0 MiB      +2048       2048  [new] /srv/app/worker.py:88: buf.extend(chunk)\n"
		"  -64.0 KiB        0 B       -512          0  [gone] /usr/lib/python3.11/json/decoder.py:353: obj, end = self.scan_once(s, idx)\n"
		"     -400 B      600 B         -4          6  /srv/app/caf\xc3\xa9/\xc3\xbc" "ber.py:7: x = \"tab\\there\" + '\xc3\xa9'\n");
	free(out);

	out = print_to_string(d, 0, true);
	j = cJSON_Parse(out);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "format")->valuestring, "pmt-top-diff");
	assert_int_equal(cJSON_GetObjectItem(j, "version")->valueint, 1);
	assert_string_equal(cJSON_GetObjectItem(j, "key")->valuestring, "lineno");
	assert_string_equal(cJSON_GetObjectItem(j, "order")->valuestring, "abs-size-diff");
	assert_true(cJSON_GetObjectItem(j, "total_size_diff")->valuedouble ==
		    (double)d->total_size_diff);
	assert_int_equal(cJSON_GetObjectItem(j, "nentries")->valueint, 6);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "old"), "label")->valuestring,
			    "before deploy");
	assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "new"), "time")->valuedouble ==
		    1763700060.25);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "entries")), 6);
	e = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 2);
	assert_string_equal(cJSON_GetObjectItem(e, "status")->valuestring, "gone");
	assert_int_equal(cJSON_GetObjectItem(e, "size_diff")->valueint, -65536);
	assert_int_equal(cJSON_GetObjectItem(e, "old_count")->valueint, 512);
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(e, "frames"), 0), 0)->valuestring,
			    "/usr/lib/python3.11/json/decoder.py");
	e = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 3);
	assert_string_equal(cJSON_GetObjectItem(e, "line")->valuestring, "x = \"tab\\there\" + '\xc3\xa9'");
	cJSON_Delete(j);
	free(out);

	out = print_to_string(d, 1, true);
	j = cJSON_Parse(out);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "entries")), 1);
	assert_int_equal(cJSON_GetObjectItem(j, "nentries")->valueint, 6);
	cJSON_Delete(j);
	free(out);
	snapdiff_free(d);
	snapshot_free(a);
	snapshot_free(b);
}

/* Two snapshots measured differently still diff, with a warning line in
 * the table and the source of each side in the header and the JSON. */
static void test_mixed_sources(void **state)
{
	struct snapshot *a = load("lineno_old.json"), *b = load("lineno_new.json");
	char err[256], warn[256];
	struct snapdiff *d;
	char *out;
	cJSON *j;

	(void)state;
	d = snapdiff_new(a, b, err, sizeof(err));
	assert_string_equal(snapdiff_source_warning(d, warn, sizeof(warn)), "");
	snapdiff_free(d);
	b->source = SNAPSHOT_SOURCE_SAMPLED;
	b->interval = 4096;
	d = snapdiff_new(a, b, err, sizeof(err));
	assert_non_null(d);
	assert_string_equal(snapdiff_source_warning(d, warn, sizeof(warn)),
			    "measured differently (tracemalloc -> sampled, 1 per 4 KiB): part of every "
			    "difference is the method, not the program");
	out = print_to_string(d, 1, false);
	assert_non_null(strstr(out, "-> \"after deploy\" (pid 31337, 2025-11-21 04:41:00 UTC, sampled, 1 per 4 KiB)\n"));
	assert_non_null(strstr(out, "\nwarning: measured differently (tracemalloc -> sampled, 1 per 4 KiB)"));
	free(out);
	out = print_to_string(d, 1, true);
	j = cJSON_Parse(out);
	assert_non_null(j);
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "old"), "source"));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "new"), "source")->valuestring, "sampled");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "new"), "interval")->valueint, 4096);
	cJSON_Delete(j);
	free(out);
	snapdiff_free(d);
	/* the same source with another interval is another measure too */
	a->source = SNAPSHOT_SOURCE_SAMPLED;
	a->interval = 1;
	d = snapdiff_new(a, b, err, sizeof(err));
	assert_non_null(strstr(snapdiff_source_warning(d, warn, sizeof(warn)),
			       "(sampled, every block -> sampled, 1 per 4 KiB)"));
	snapdiff_free(d);
	snapshot_free(a);
	snapshot_free(b);
}

/* The kind of growth, before any line, when both snapshots know their RSS. */
static void test_memory_text(void **state)
{
	struct snapshot *a = load("lineno_old.json"), *b = load("lineno_new.json");
	char err[256], text[256];
	struct snapdiff *d;
	char *out;

	(void)state;
	d = snapdiff_new(a, b, err, sizeof(err));
	assert_string_equal(snapdiff_memory_text(d, text, sizeof text), "");
	out = print_to_string(d, 1, false);
	assert_null(strstr(out, "RSS"));
	free(out);
	snapdiff_free(d);
	a->mem = (struct snapshot_memory){ .has = true, .rss = 100u << 20, .known = 0x3ff };
	a->mem.part[0] = 10u << 20;
	a->mem.part[2] = 50u << 20;
	a->mem.part[3] = 5u << 20;
	b->mem = a->mem;
	b->mem.rss += 27u << 20;
	b->mem.part[2] += 26u << 20;      /* native heap */
	b->mem.part[0] -= 15258;          /* Python objects: -14.9 KiB */
	b->mem.part[3] += 1u << 20;       /* malloc free: +1 MiB */
	b->mem.part[9] += 100;            /* under 1/16 of the largest: left out */
	d = snapdiff_new(a, b, err, sizeof(err));
	/* Python objects always (did they grow?); malloc free's +1 MiB is
	 * under 1/16 of the largest change. */
	assert_string_equal(snapdiff_memory_text(d, text, sizeof text),
			    "RSS +27.0 MiB: native heap +26.0 MiB, Python objects -14.9 KiB");
	b->mem.part[0] -= 3u << 20;
	b->mem.part[3] += 1u << 20;
	assert_string_equal(snapdiff_memory_text(d, text, sizeof text),
			    "RSS +27.0 MiB: native heap +26.0 MiB, Python objects -3.01 MiB, malloc free +2.00 MiB");
	out = print_to_string(d, 1, false);
	assert_non_null(strstr(out, "\nRSS +27.0 MiB: native heap +26.0 MiB, Python objects -3.01 MiB"));
	free(out);
	out = print_to_string(d, 1, true);
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "new"), "rss_native")->valuedouble,
			 (double)(76u << 20));
	cJSON_Delete(j);
	free(out);
	/* A part only one side knows is not compared. */
	b->mem.known &= ~(1u << 2);
	assert_string_equal(snapdiff_memory_text(d, text, sizeof text),
			    "RSS +27.0 MiB: Python objects -3.01 MiB, malloc free +2.00 MiB");
	snapdiff_free(d);
	snapshot_free(a);
	snapshot_free(b);
}

static void test_names(void **state)
{
	enum snapdiff_order o;

	(void)state;
	for (int i = 0; i < SNAPDIFF_ORDER_COUNT_; i++) {
		assert_int_equal(snapdiff_order_from_name(snapdiff_order_name((enum snapdiff_order)i), &o), 0);
		assert_int_equal(o, i);
	}
	assert_int_equal(snapdiff_order_from_name("bogus", &o), -1);
	assert_null(snapdiff_order_name(SNAPDIFF_ORDER_COUNT_));
	assert_string_equal(snapdiff_status_name(SNAPDIFF_GONE), "gone");
}

/*
 * A diff of regrouped snapshots whose groups summed past 2^63 before
 * regrouping capped them: every difference is a plain int64_t (UBSan reported
 * a signed overflow here).
 */
static void test_regrouped_sums(void **state)
{
	const uint64_t max = 9007199254740991ULL;
	struct snapshot *a = snapshot_new(PROTO_KEY_LINENO, false, 1);
	struct snapshot *b = snapshot_new(PROTO_KEY_FILENAME, false, 1), *ra;
	struct snapdiff *d;
	char err[256];

	(void)state;
	for (uint32_t line = 1; line <= 1025; line++) {
		struct snapshot_frame f = { "big.py", line };

		snapshot_add_group(a, max, 1, &f, 1, "");
	}
	a->total_size = max; /* as a file must say: at most 2^53 - 1 */
	a->total_count = 1025;
	add(b, "big.py", 0, max, 1);
	ra = snapshot_regroup(a, PROTO_KEY_FILENAME, err, sizeof(err));
	assert_non_null(ra);
	d = snapdiff_new(b, ra, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(d->n, 1);
	assert_true(d->entries[0].size_diff == 0);
	assert_int_equal(d->entries[0].count_diff, 1024);
	snapdiff_free(d);
	d = snapdiff_new(ra, b, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(d->entries[0].count_diff, -1024);
	snapdiff_free(d);
	snapshot_free(ra);
	snapshot_free(a);
	snapshot_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_diff),
		cmocka_unit_test(test_orders_differ),
		cmocka_unit_test(test_ties_follow_tracemalloc),
		cmocka_unit_test(test_traceback_keys),
		cmocka_unit_test(test_filename_regroup_and_cumulative),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_against_naive_join),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_mixed_sources),
		cmocka_unit_test(test_memory_text),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_regrouped_sums),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
