/*
 * snapdiff.c - diff two snapshots by a hash join on the group key, sort the
 * entries, print them (see snapdiff.h, docs/snapshots.md).
 */
#include "snapshot/snapdiff.h"
#include "base/units.h"
#include "base/errfmt.h"
#include "base/strsafe.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/xalloc.h"

static const char *const order_names[SNAPDIFF_ORDER_COUNT_] = {
	[SNAPDIFF_ORDER_ABS_SIZE_DIFF] = "abs-size-diff",
	[SNAPDIFF_ORDER_SIZE_DIFF] = "size-diff",
	[SNAPDIFF_ORDER_SIZE] = "size",
	[SNAPDIFF_ORDER_COUNT_DIFF] = "count-diff",
	[SNAPDIFF_ORDER_COUNT] = "count",
};

static const char *const status_names[] = {
	[SNAPDIFF_NEW] = "new",
	[SNAPDIFF_GONE] = "gone",
	[SNAPDIFF_CHANGED] = "changed",
	[SNAPDIFF_SAME] = "same",
};

const char *snapdiff_order_name(enum snapdiff_order order)
{
	return (unsigned)order < SNAPDIFF_ORDER_COUNT_ ? order_names[order] : NULL;
}

int snapdiff_order_from_name(const char *name, enum snapdiff_order *order)
{
	for (int i = 0; i < SNAPDIFF_ORDER_COUNT_; i++) {
		if (strcmp(name, order_names[i]) == 0) {
			*order = (enum snapdiff_order)i;
			return 0;
		}
	}
	return -1;
}

const char *snapdiff_status_name(enum snapdiff_status status)
{
	return (unsigned)status <= SNAPDIFF_SAME ? status_names[status] : "?";
}

const struct snapshot_group *snapdiff_entry_group(const struct snapdiff_entry *e)
{
	return e->new_group ? e->new_group : e->old_group;
}

static void entry_set(struct snapdiff_entry *e, const struct snapshot_group *og,
		      const struct snapshot_group *ng)
{
	e->old_group = og;
	e->new_group = ng;
	e->old_size = og ? og->size : 0;
	e->old_count = og ? og->count : 0;
	e->size = ng ? ng->size : 0;
	e->count = ng ? ng->count : 0;
	/* sizes are at most 2^53 - 1, so the differences fit */
	e->size_diff = (int64_t)e->size - (int64_t)e->old_size;
	e->count_diff = (int64_t)e->count - (int64_t)e->old_count;
	if (og == NULL)
		e->status = SNAPDIFF_NEW;
	else if (ng == NULL)
		e->status = SNAPDIFF_GONE;
	else if (e->size_diff == 0 && e->count_diff == 0)
		e->status = SNAPDIFF_SAME;
	else
		e->status = SNAPDIFF_CHANGED;
}

struct snapdiff *snapdiff_new(const struct snapshot *old_snap,
			      const struct snapshot *new_snap, char *err, size_t errlen)
{
	struct snapdiff *d;
	struct slot {
		uint32_t idx;  /* old group index + 1, 0 = empty */
		uint32_t hash; /* low bits of the key hash: one cache line per probe */
	} *slot;
	uint8_t *matched;
	size_t cap = 16, n = 0;

	if (old_snap->key != new_snap->key) {
		/* advise the coarser of the two keys */
		const struct snapshot *coarse = old_snap->key == PROTO_KEY_TRACEBACK ||
			(old_snap->key == PROTO_KEY_LINENO && new_snap->key == PROTO_KEY_FILENAME)
			? new_snap : old_snap;

		errfmt(err, errlen,
		       "cannot diff a snapshot grouped by %s with one grouped by %s: "
		       "regroup both by %s (--key %s)",
		       snapshot_key_name(old_snap->key), snapshot_key_name(new_snap->key),
		       snapshot_key_name(coarse->key), snapshot_key_name(coarse->key));
		return NULL;
	}
	if (old_snap->cumulative != new_snap->cumulative) {
		errfmt(err, errlen,
		       "cannot diff a cumulative snapshot with a non-cumulative one: "
		       "take both with the same cumulative setting");
		return NULL;
	}
	d = xcalloc(1, sizeof(*d));
	d->old_snap = old_snap;
	d->new_snap = new_snap;
	d->key = new_snap->key;
	d->cumulative = new_snap->cumulative;
	d->total_size_diff = (int64_t)new_snap->total_size - (int64_t)old_snap->total_size;
	d->total_count_diff = (int64_t)new_snap->total_count - (int64_t)old_snap->total_count;
	d->entries = xreallocarray(NULL, old_snap->ngroups + new_snap->ngroups,
				   sizeof(*d->entries));

	/* build: old groups by key hash (open addressing, index + 1) */
	while (cap < old_snap->ngroups * 2)
		cap *= 2;
	slot = xcalloc(cap, sizeof(*slot));
	matched = xcalloc(old_snap->ngroups + 1, 1);
	for (size_t i = 0; i < old_snap->ngroups; i++) {
		const struct snapshot_group *g = &old_snap->groups[i];
		uint64_t h = g->key_hash;
		size_t j = (h >> 32) & (cap - 1);

		/* a duplicate key (only from snapshot_add_group) joins its first copy */
		while (slot[j].idx != 0)
			j = (j + 1) & (cap - 1);
		slot[j].idx = (uint32_t)i + 1;
		slot[j].hash = (uint32_t)h;
	}
	/* probe with the new groups */
	for (size_t i = 0; i < new_snap->ngroups; i++) {
		const struct snapshot_group *g = &new_snap->groups[i];
		const struct snapshot_group *og = NULL;
		uint64_t h = g->key_hash;

		for (size_t j = (h >> 32) & (cap - 1); slot[j].idx != 0; j = (j + 1) & (cap - 1)) {
			size_t k = slot[j].idx - 1;

			if (slot[j].hash == (uint32_t)h && !matched[k] &&
			    snapshot_group_equal(&old_snap->groups[k], g)) {
				og = &old_snap->groups[k];
				matched[k] = 1;
				break;
			}
		}
		entry_set(&d->entries[n++], og, g);
	}
	for (size_t i = 0; i < old_snap->ngroups; i++)
		if (!matched[i])
			entry_set(&d->entries[n++], &old_snap->groups[i], NULL);
	free(slot);
	free(matched);
	d->n = n;
	for (size_t i = 0; i < n; i++) {
		switch (d->entries[i].status) {
		case SNAPDIFF_NEW: d->nnew++; break;
		case SNAPDIFF_GONE: d->ngone++; break;
		case SNAPDIFF_CHANGED: d->nchanged++; break;
		case SNAPDIFF_SAME: d->nsame++; break;
		}
	}
	snapdiff_sort(d, SNAPDIFF_ORDER_ABS_SIZE_DIFF);
	return d;
}

void snapdiff_free(struct snapdiff *diff)
{
	if (diff == NULL)
		return;
	free(diff->entries);
	free(diff);
}

/* ------------------------------------------------------------- sort -- */

#define CMP_DESC(a, b) do { if ((a) != (b)) return (a) > (b) ? -1 : 1; } while (0)

static uint64_t uabs(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

/* tracemalloc's StatisticDiff order, sorted with reverse=True */
static int cmp_default(const struct snapdiff_entry *a, const struct snapdiff_entry *b)
{
	CMP_DESC(uabs(a->size_diff), uabs(b->size_diff));
	CMP_DESC(a->size, b->size);
	CMP_DESC(uabs(a->count_diff), uabs(b->count_diff));
	CMP_DESC(a->count, b->count);
	return -snapshot_group_location_cmp(snapdiff_entry_group(a), snapdiff_entry_group(b));
}

static int cmp_abs_size_diff(const void *pa, const void *pb)
{
	return cmp_default(pa, pb);
}

static int cmp_size_diff(const void *pa, const void *pb)
{
	const struct snapdiff_entry *a = pa, *b = pb;

	CMP_DESC(a->size_diff, b->size_diff);
	return cmp_default(a, b);
}

static int cmp_size(const void *pa, const void *pb)
{
	const struct snapdiff_entry *a = pa, *b = pb;

	CMP_DESC(a->size, b->size);
	return cmp_default(a, b);
}

static int cmp_count_diff(const void *pa, const void *pb)
{
	const struct snapdiff_entry *a = pa, *b = pb;

	CMP_DESC(a->count_diff, b->count_diff);
	return cmp_default(a, b);
}

static int cmp_count(const void *pa, const void *pb)
{
	const struct snapdiff_entry *a = pa, *b = pb;

	CMP_DESC(a->count, b->count);
	return cmp_default(a, b);
}

/*
 * Sorting 100k+ entries of 80 bytes through qsort() is slow (pointer
 * chasing, big swaps): sort compact (primary key, index) pairs instead,
 * with the full comparison only on ties, then permute the entries once.
 */
struct sort_key {
	uint64_t k; /* ascending k = the order's first criterion */
	uint32_t i;
};

struct sort_ctx {
	const struct snapdiff_entry *base;
	int (*tie)(const void *, const void *);
};

static int cmp_key(const void *pa, const void *pb, void *arg)
{
	const struct sort_key *a = pa, *b = pb;
	const struct sort_ctx *c = arg;

	if (a->k != b->k)
		return a->k < b->k ? -1 : 1;
	return c->tie(&c->base[a->i], &c->base[b->i]);
}

/* Map a signed value to an unsigned one that sorts largest first. */
static uint64_t desc_signed(int64_t v)
{
	return ~((uint64_t)v ^ (UINT64_C(1) << 63));
}

void snapdiff_sort(struct snapdiff *diff, enum snapdiff_order order)
{
	static int (*const cmps[SNAPDIFF_ORDER_COUNT_])(const void *, const void *) = {
		[SNAPDIFF_ORDER_ABS_SIZE_DIFF] = cmp_abs_size_diff,
		[SNAPDIFF_ORDER_SIZE_DIFF] = cmp_size_diff,
		[SNAPDIFF_ORDER_SIZE] = cmp_size,
		[SNAPDIFF_ORDER_COUNT_DIFF] = cmp_count_diff,
		[SNAPDIFF_ORDER_COUNT] = cmp_count,
	};
	struct sort_key *keys;
	struct sort_ctx ctx;

	if ((unsigned)order >= SNAPDIFF_ORDER_COUNT_)
		order = SNAPDIFF_ORDER_ABS_SIZE_DIFF;
	diff->order = order;
	if (diff->n < 2)
		return;
	keys = xreallocarray(NULL, diff->n, sizeof(*keys));
	for (size_t i = 0; i < diff->n; i++) {
		const struct snapdiff_entry *e = &diff->entries[i];

		keys[i].i = (uint32_t)i;
		switch (order) {
		case SNAPDIFF_ORDER_ABS_SIZE_DIFF: keys[i].k = ~uabs(e->size_diff); break;
		case SNAPDIFF_ORDER_SIZE_DIFF: keys[i].k = desc_signed(e->size_diff); break;
		case SNAPDIFF_ORDER_SIZE: keys[i].k = ~e->size; break;
		case SNAPDIFF_ORDER_COUNT_DIFF: keys[i].k = desc_signed(e->count_diff); break;
		default: keys[i].k = ~e->count; break;
		}
	}
	ctx.base = diff->entries;
	ctx.tie = cmps[order];
	qsort_r(keys, diff->n, sizeof(*keys), cmp_key, &ctx);
	/* Entries move in place, cycle by cycle: a sorted copy would double
	 * the diff's largest array (72 bytes a location). */
	for (size_t i = 0; i < diff->n; i++) {
		struct snapdiff_entry tmp;
		size_t j = i;

		if (keys[i].i == i)
			continue;
		tmp = diff->entries[i];
		for (;;) {
			size_t from = keys[j].i;

			keys[j].i = (uint32_t)j;
			if (from == i) {
				diff->entries[j] = tmp;
				break;
			}
			diff->entries[j] = diff->entries[from];
			j = from;
		}
	}
	free(keys);
}

char *snapdiff_source_warning(const struct snapdiff *diff, char *buf, size_t len)
{
	const struct snapshot *a = diff->old_snap, *b = diff->new_snap;
	char sa[64], sb[64];

	if (snapshot_same_source(a, b)) {
		snprintf(buf, len, "%s", "");
		return buf;
	}
	snprintf(buf, len, "measured differently (%s -> %s): part of every difference is the method, "
		 "not the program", snapshot_source_text(sa, sizeof(sa), a->source, a->interval),
		 snapshot_source_text(sb, sizeof(sb), b->source, b->interval));
	return buf;
}

/* ------------------------------------------------------------ print -- */

/* Unix time with millisecond precision, locale-independent. */
static void fput_time(FILE *fp, double t)
{
	uint64_t ms = (uint64_t)(t * 1000.0 + 0.5);

	fprintf(fp, "%" PRIu64 ".%03u", ms / 1000, (unsigned)(ms % 1000));
}

static void describe(FILE *fp, const struct snapshot *s)
{
	char when[64];
	struct tm tm;
	time_t t = (time_t)s->time;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	if (s->label[0]) {
		fputc('"', fp);
		strsafe_fputs(s->label, fp);
		fputs("\" ", fp);
	}
	fprintf(fp, "(pid %" PRIu32 ", %s", s->pid, when);
	if (s->source != SNAPSHOT_SOURCE_TRACEMALLOC) {
		char src[64];

		fprintf(fp, ", %s", snapshot_source_text(src, sizeof(src), s->source, s->interval));
	}
	fputc(')', fp);
}

char *snapdiff_memory_text(const struct snapdiff *diff, char *buf, size_t len)
{
	return snapshot_memory_diff_text(diff->old_snap, diff->new_snap, buf, len);
}

char *snapshot_memory_diff_text(const struct snapshot *old_snap, const struct snapshot *new_snap, char *buf,
				size_t len)
{
	const struct snapshot_memory *a = &old_snap->mem, *b = &new_snap->mem;
	char v[32];
	int order[SNAPSHOT_MEM_PARTS], n = 0;
	int64_t d[SNAPSHOT_MEM_PARTS], biggest = 0;

	buf[0] = '\0';
	if (!a->has || !b->has)
		return buf;
	for (int i = 0; i < SNAPSHOT_MEM_PARTS; i++) {
		if (!(a->known & b->known & (1u << i)))
			continue;
		d[i] = b->part[i] - a->part[i];
		int64_t m = d[i] < 0 ? -d[i] : d[i];
		if (m > biggest)
			biggest = m;
		/* Insertion by size of the change, largest first. */
		int k = n++;
		while (k > 0 && (d[order[k - 1]] < 0 ? -d[order[k - 1]] : d[order[k - 1]]) < m) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
	size_t used = (size_t)snprintf(buf, len, "RSS %s",
				       units_bytes_signed(v, sizeof v, (double)b->rss - (double)a->rss));
	for (int k = 0, shown = 0; k < n && shown < 4 && used < len; k++) {
		int64_t m = d[order[k]] < 0 ? -d[order[k]] : d[order[k]];
		/* Python objects always: whether they grew is the question. */
		if (order[k] != 0 && (m == 0 || m * 16 < biggest))
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s %s", shown ? ", " : ": ",
					 snapshot_mem_label(order[k]), units_bytes_signed(v, sizeof v, (double)d[order[k]]));
		shown++;
	}
	return buf;
}

static void json_side(FILE *fp, const struct snapshot *s)
{
	fputs("{\"label\": ", fp);
	snapshot_fput_json_string(fp, s->label);
	fputs(", \"time\": ", fp);
	fput_time(fp, s->time);
	fprintf(fp, ", \"pid\": %" PRIu32 ", \"traced_current\": %" PRIu64
		", \"traced_peak\": %" PRIu64 ", \"total_size\": %" PRIu64
		", \"total_count\": %" PRIu64 ", \"ntraces\": %" PRIu64 ", \"ngroups\": %zu",
		s->pid, s->traced_current, s->traced_peak, s->total_size, s->total_count,
		s->ntraces, s->ngroups);
	/* As in a snapshot file: absent means tracemalloc. */
	if (s->source == SNAPSHOT_SOURCE_SAMPLED)
		fprintf(fp, ", \"source\": \"sampled\", \"interval\": %" PRIu64, s->interval);
	if (s->mem.has) {
		fprintf(fp, ", \"rss\": %" PRIu64, s->mem.rss);
		for (int i = 0; i < SNAPSHOT_MEM_PARTS; i++)
			if (s->mem.known & (1u << i))
				fprintf(fp, ", \"rss_%s\": %" PRId64, snapshot_mem_name(i), s->mem.part[i]);
	}
	fputc('}', fp);
}

static void print_json(FILE *fp, const struct snapdiff *d, size_t n)
{
	fprintf(fp, "{\"format\": \"pmt-top-diff\", \"version\": 1, \"key\": \"%s\", "
		"\"cumulative\": %s, \"order\": \"%s\",\n\"old\": ",
		snapshot_key_name(d->key), d->cumulative ? "true" : "false",
		snapdiff_order_name(d->order));
	json_side(fp, d->old_snap);
	fputs(",\n\"new\": ", fp);
	json_side(fp, d->new_snap);
	fprintf(fp, ",\n\"total_size_diff\": %" PRId64 ", \"total_count_diff\": %" PRId64
		", \"nentries\": %zu, \"nnew\": %zu, \"ngone\": %zu, \"nchanged\": %zu, "
		"\"nsame\": %zu, \"entries\": [",
		d->total_size_diff, d->total_count_diff, d->n, d->nnew, d->ngone, d->nchanged,
		d->nsame);
	for (size_t i = 0; i < n; i++) {
		const struct snapdiff_entry *e = &d->entries[i];
		const struct snapshot_group *g = snapdiff_entry_group(e);

		fprintf(fp, "%s\n{\"status\": \"%s\", \"size_diff\": %" PRId64 ", \"size\": %" PRIu64
			", \"old_size\": %" PRIu64 ", \"count_diff\": %" PRId64 ", \"count\": %" PRIu64
			", \"old_count\": %" PRIu64 ", \"frames\": ",
			i ? "," : "", snapdiff_status_name(e->status), e->size_diff, e->size,
			e->old_size, e->count_diff, e->count, e->old_count);
		snapshot_fput_json_frames(fp, g);
		fputs(", \"line\": ", fp);
		snapshot_fput_json_string(fp, g->line);
		fputc('}', fp);
	}
	fputs("\n]}\n", fp);
}

int snapdiff_print(FILE *fp, const struct snapdiff *diff, size_t top_n, bool json)
{
	size_t n = top_n && top_n < diff->n ? top_n : diff->n;
	char s1[32], s2[32], s3[32], warn[256];

	if (json) {
		print_json(fp, diff, n);
		return ferror(fp) ? -1 : 0;
	}
	fprintf(fp, "diff by %s%s: ", snapshot_key_name(diff->key),
		diff->cumulative ? " (cumulative)" : "");
	describe(fp, diff->old_snap);
	fputs(" -> ", fp);
	describe(fp, diff->new_snap);
	fprintf(fp, "\ntraced %s -> %s (%s), blocks %" PRIu64 " -> %" PRIu64 " (%+" PRId64 ")\n",
		units_bytes_table(s1, sizeof(s1), (int64_t)diff->old_snap->total_size, false),
		units_bytes_table(s2, sizeof(s2), (int64_t)diff->new_snap->total_size, false),
		units_bytes_table(s3, sizeof(s3), diff->total_size_diff, true),
		diff->old_snap->total_count, diff->new_snap->total_count, diff->total_count_diff);
	char mem[256];
	if (snapdiff_memory_text(diff, mem, sizeof mem)[0])
		fprintf(fp, "%s\n", mem);
	if (!snapshot_same_source(diff->old_snap, diff->new_snap))
		fprintf(fp, "warning: %s\n", snapdiff_source_warning(diff, warn, sizeof(warn)));
	fprintf(fp, "%zu locations: %zu new, %zu gone, %zu changed, %zu same; %zu shown by %s\n",
		diff->n, diff->nnew, diff->ngone, diff->nchanged, diff->nsame, n,
		snapdiff_order_name(diff->order));
	fprintf(fp, "%11s %10s %10s %10s  %s\n", "SIZE DIFF", "SIZE", "COUNT DIFF", "COUNT",
		"LOCATION");
	for (size_t i = 0; i < n; i++) {
		const struct snapdiff_entry *e = &diff->entries[i];

		fprintf(fp, "%11s %10s %+10" PRId64 " %10" PRIu64 "  %s",
			units_bytes_table(s1, sizeof(s1), e->size_diff, true),
			units_bytes_table(s2, sizeof(s2), (int64_t)e->size, false),
			e->count_diff, e->count,
			e->status == SNAPDIFF_NEW ? "[new] " : e->status == SNAPDIFF_GONE ? "[gone] " : "");
		snapshot_print_location(fp, snapdiff_entry_group(e), diff->key, 45);
	}
	return ferror(fp) ? -1 : 0;
}
