/*
 * snapdiff.h - the difference between two snapshots.
 *
 * Like tracemalloc's Snapshot.compare_to(): groups of the two snapshots are
 * matched on their key (the frame sequence; file name and line), by a hash
 * join. Every group of either snapshot gives one entry: groups only in the new
 * snapshot have an old size of 0, groups that vanished a new size of 0,
 * unchanged groups a diff of 0. Entries are sorted; the default order is
 * tracemalloc's (see snapdiff_sort()).
 *
 * A diff borrows both snapshots: keep them alive (and unmodified) until
 * snapdiff_free(). Not thread-safe for writing; read-only use from several
 * threads is fine. Out of memory aborts.
 */
#ifndef PMT_SNAPSHOT_SNAPDIFF_H
#define PMT_SNAPSHOT_SNAPDIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "snapshot/snapshot.h"

enum snapdiff_order {
	SNAPDIFF_ORDER_ABS_SIZE_DIFF, /* |size diff| desc (default) */
	SNAPDIFF_ORDER_SIZE_DIFF,     /* size diff desc: biggest growth first */
	SNAPDIFF_ORDER_SIZE,          /* new size desc */
	SNAPDIFF_ORDER_COUNT_DIFF,    /* count diff desc */
	SNAPDIFF_ORDER_COUNT,         /* new count desc */
	SNAPDIFF_ORDER_COUNT_
};

enum snapdiff_status {
	SNAPDIFF_NEW,     /* only in the new snapshot */
	SNAPDIFF_GONE,    /* only in the old snapshot */
	SNAPDIFF_CHANGED, /* in both, size or count differ */
	SNAPDIFF_SAME     /* in both, same size and count */
};

struct snapdiff_entry {
	const struct snapshot_group *old_group; /* NULL for SNAPDIFF_NEW */
	const struct snapshot_group *new_group; /* NULL for SNAPDIFF_GONE */
	int64_t size_diff;   /* size - old_size */
	int64_t count_diff;  /* count - old_count */
	uint64_t size;       /* in the new snapshot, 0 if gone */
	uint64_t count;
	uint64_t old_size;   /* in the old snapshot, 0 if new */
	uint64_t old_count;
	enum snapdiff_status status;
};

struct snapdiff {
	const struct snapshot *old_snap; /* borrowed */
	const struct snapshot *new_snap; /* borrowed */
	enum proto_key key;
	bool cumulative;
	enum snapdiff_order order;
	struct snapdiff_entry *entries;
	size_t n;
	size_t nnew, ngone, nchanged, nsame;
	int64_t total_size_diff;  /* new total_size - old total_size */
	int64_t total_count_diff;
};

/*
 * Diff old -> new. Both must have the same key and cumulative flag: if not,
 * NULL with an error telling to regroup (snapshot_regroup()) to a common key.
 * The result is sorted by SNAPDIFF_ORDER_ABS_SIZE_DIFF. Free with
 * snapdiff_free().
 */
struct snapdiff *snapdiff_new(const struct snapshot *old_snap,
			      const struct snapshot *new_snap, char *err, size_t errlen);

void snapdiff_free(struct snapdiff *diff);

/*
 * Sort entries. Every order falls back on tracemalloc's own order, so the
 * result is deterministic: |size diff| desc, new size desc, |count diff|
 * desc, new count desc, then location descending as tracemalloc compares
 * Traceback objects (snapshot_group_location_cmp()).
 */
void snapdiff_sort(struct snapdiff *diff, enum snapdiff_order order);

/* The group an entry describes (the new one, or the old one if gone). */
const struct snapshot_group *snapdiff_entry_group(const struct snapdiff_entry *e);

/* "abs-size-diff", "size-diff", "size", "count-diff", "count"; NULL if out of range. */
const char *snapdiff_order_name(enum snapdiff_order order);
/* Parse an order name; 0 and *order set, or -1. */
int snapdiff_order_from_name(const char *name, enum snapdiff_order *order);
/* "new", "gone", "changed", "same". */
const char *snapdiff_status_name(enum snapdiff_status status);

/*
 * One line when the two snapshots were measured differently (another
 * source, or another sampling interval), e.g. "measured differently
 * (tracemalloc -> sampled, 1 per 4 KiB): part of every difference is the
 * method, not the program"; "" when alike. The diff is still made: the
 * caller shows this beside it. Returns buf.
 */
char *snapdiff_source_warning(const struct snapdiff *diff, char *buf, size_t len);

/*
 * Print the first top_n entries (0 = all) in the current order, as a table
 * for `pmt-top diff` or, with json, as the object documented in
 * docs/snapshots.md. Returns 0, or -1 if writing failed.
 */
int snapdiff_print(FILE *fp, const struct snapdiff *diff, size_t top_n, bool json);

/*
 * What kind of growth it was, before any line: "RSS +26.8 MiB: native heap
 * +26.1 MiB, Python objects -14.9 KiB" (the parts both snapshots know, the
 * largest changes first: Python objects always, the others when at least
 * 1/16 of the largest; four at most), into BUF; "" when either snapshot has no record of its RSS.
 * Returns BUF.
 */
char *snapdiff_memory_text(const struct snapdiff *diff, char *buf, size_t len);
/* The same for two snapshots (a diff's may be regrouped copies). */
char *snapshot_memory_diff_text(const struct snapshot *old_snap, const struct snapshot *new_snap, char *buf,
				size_t len);

#endif
