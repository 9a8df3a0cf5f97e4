/*
 * snapshot.c - the snapshot model: compact storage (an arena with string
 * interning per snapshot), group keys (hash, equality, tracemalloc's order)
 * and regrouping. Reading files and replies is snapshot_read.c, writing
 * them snapshot_write.c, the tables snapshot_print.c.
 *
 * See snapshot.h for the contracts and docs/snapshots.md for the formats.
 */
#include "snapshot/snapshot.h"
#include "base/units.h"
#include "base/errfmt.h"
#include "base/strsafe.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <locale.h>
#include <math.h> /* isfinite only: no libm needed */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"

#include "snapshot/snapshot_intern.h"

/* ---------------------------------------------------------------- pool -- */

/*
 * Every string of a snapshot is stored once, behind a small header holding
 * its hash, so group keys of two snapshots can be hashed and compared
 * without looking strings up again.
 */
struct pool_str {
	uint32_t hash;
	uint32_t len;
	char s[];
};

struct pool_chunk {
	struct pool_chunk *next;
	size_t used;
	size_t cap;
	_Alignas(16) unsigned char data[];
};

struct snapshot_pool {
	struct pool_chunk *chunks;
	const struct pool_str **tab; /* open addressing, power-of-two size */
	size_t tabcap;
	size_t tabn;
};

#define POOL_CHUNK (64 * 1024)

void *snapshot_pool_alloc(struct snapshot_pool *p, size_t n)
{
	struct pool_chunk *c = p->chunks;

	n = (n + 7) & ~(size_t)7;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > POOL_CHUNK / 4 ? n : POOL_CHUNK;

		c = xmalloc(sizeof(*c) + cap);
		c->cap = cap;
		c->used = 0;
		if (n > POOL_CHUNK / 4 && p->chunks != NULL) {
			/* a big block gets its own chunk behind the current one */
			c->next = p->chunks->next;
			p->chunks->next = c;
		} else {
			c->next = p->chunks;
			p->chunks = c;
		}
	}
	c->used += n;
	return c->data + c->used - n;
}

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint32_t str_hash(const char *s, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	if (i < len) {
		uint64_t w = 0;

		memcpy(&w, s + i, len - i);
		h = (h ^ w) * 0x100000001b3ULL;
	}
	return (uint32_t)mix64(h);
}

static const struct pool_str *pool_hdr(const char *s)
{
	return (const struct pool_str *)(const void *)(s - offsetof(struct pool_str, s));
}

static void pool_grow(struct snapshot_pool *p)
{
	size_t ncap = p->tabcap ? p->tabcap * 2 : 256;
	const struct pool_str **nt = xcalloc(ncap, sizeof(*nt));

	for (size_t i = 0; i < p->tabcap; i++) {
		const struct pool_str *e = p->tab[i];
		size_t j;

		if (e == NULL)
			continue;
		for (j = e->hash & (ncap - 1); nt[j] != NULL; j = (j + 1) & (ncap - 1))
			;
		nt[j] = e;
	}
	free(p->tab);
	p->tab = nt;
	p->tabcap = ncap;
}

/* Return the pool's copy of s[0..len), adding it if new. */
const char *snapshot_pool_intern(struct snapshot_pool *p, const char *s, size_t len)
{
	uint32_t h = str_hash(s, len);
	struct pool_str *ps;
	size_t j;

	if (len > UINT32_MAX)
		len = UINT32_MAX; /* cannot happen below SNAPSHOT_MAX_FILE */
	if ((p->tabn + 1) * 2 > p->tabcap)
		pool_grow(p);
	for (j = h & (p->tabcap - 1); p->tab[j] != NULL; j = (j + 1) & (p->tabcap - 1)) {
		const struct pool_str *e = p->tab[j];

		if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0)
			return e->s;
	}
	ps = snapshot_pool_alloc(p, sizeof(*ps) + len + 1);
	ps->hash = h;
	ps->len = (uint32_t)len;
	memcpy(ps->s, s, len);
	ps->s[len] = '\0';
	p->tab[j] = ps;
	p->tabn++;
	return ps->s;
}

static void pool_free(struct snapshot_pool *p)
{
	struct pool_chunk *c, *n;

	if (p == NULL)
		return;
	for (c = p->chunks; c != NULL; c = n) {
		n = c->next;
		free(c);
	}
	free(p->tab);
	free(p);
}

/* ------------------------------------------------------------ basics -- */

static const char *const key_names[] = {
#define SNAPSHOT_KEY_NAME(e, s) s,
	PROTO_KEY_LIST(SNAPSHOT_KEY_NAME)
#undef SNAPSHOT_KEY_NAME
};

const char *snapshot_key_name(enum proto_key key)
{
	if ((unsigned)key >= PROTO_KEY_COUNT)
		return NULL;
	return key_names[key];
}

int snapshot_key_from_name(const char *name, enum proto_key *key)
{
	for (int i = 0; i < PROTO_KEY_COUNT; i++) {
		if (strcmp(name, key_names[i]) == 0) {
			*key = (enum proto_key)i;
			return 0;
		}
	}
	return -1;
}

static const char *const source_names[SNAPSHOT_SOURCE_COUNT_] = { "tracemalloc", "sampled" };

const char *snapshot_source_name(enum snapshot_source source)
{
	if ((unsigned)source >= SNAPSHOT_SOURCE_COUNT_)
		return NULL;
	return source_names[source];
}

char *snapshot_source_text(char *buf, size_t len, enum snapshot_source source, uint64_t interval)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB" };
	uint64_t v = interval;
	int u = 0;

	if (source != SNAPSHOT_SOURCE_SAMPLED) {
		snprintf(buf, len, "tracemalloc");
		return buf;
	}
	if (interval <= 1) {
		snprintf(buf, len, "sampled, every block");
		return buf;
	}
	/* Intervals are usually powers of two: "4 KiB", not "4.00 KiB". */
	while (u < 3 && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "sampled, 1 per %" PRIu64 " %s", v, unit[u]);
	return buf;
}

bool snapshot_same_source(const struct snapshot *a, const struct snapshot *b)
{
	return a->source == b->source && a->interval == b->interval;
}

struct snapshot *snapshot_new(enum proto_key key, bool cumulative, uint32_t nframe)
{
	struct snapshot *snap;

	if ((unsigned)key >= PROTO_KEY_COUNT || (cumulative && key == PROTO_KEY_TRACEBACK)) {
		fprintf(stderr, "pmt-top: snapshot_new: invalid key %d/cumulative %d\n",
			(int)key, (int)cumulative);
		abort();
	}
	snap = xcalloc(1, sizeof(*snap));
	snap->key = key;
	snap->cumulative = cumulative;
	snap->nframe = nframe < 1 ? 1 : nframe > SNAPSHOT_MAX_NFRAME ? SNAPSHOT_MAX_NFRAME : nframe;
	snap->label = xstrdup("");
	snap->pool = xcalloc(1, sizeof(*snap->pool));
	return snap;
}

void snapshot_free(struct snapshot *snap)
{
	if (snap == NULL)
		return;
	pool_free(snap->pool);
	free(snap->groups);
	free(snap->label);
	free(snap);
}

void snapshot_set_label(struct snapshot *snap, const char *label)
{
	free(snap->label);
	snap->label = xstrdup(label ? label : "");
}

struct snapshot_group *snapshot_add_group(struct snapshot *snap, uint64_t size,
					  uint64_t count,
					  const struct snapshot_frame *frames,
					  uint32_t nframes, const char *line)
{
	struct snapshot_frame *fr;
	struct snapshot_group *g;

	if (snap->ngroups == snap->groups_cap) {
		snap->groups_cap = snap->groups_cap ? snap->groups_cap * 2 : 64;
		snap->groups = xreallocarray(snap->groups, snap->groups_cap, sizeof(*snap->groups));
	}
	fr = snapshot_pool_alloc(snap->pool, (size_t)nframes * sizeof(*fr));
	for (uint32_t i = 0; i < nframes; i++) {
		fr[i].filename = snapshot_pool_intern(snap->pool, frames[i].filename,
					     strlen(frames[i].filename));
		fr[i].lineno = frames[i].lineno;
	}
	if (line == NULL)
		line = "";
	g = &snap->groups[snap->ngroups++];
	g->size = size;
	g->count = count;
	g->frames = fr;
	g->nframes = nframes;
	g->line = snapshot_pool_intern(snap->pool, line, strlen(line));
	g->native = false;
	g->key_hash = snapshot_group_hash(g);
	return g;
}

void snapshot_group_set_native(struct snapshot_group *g, bool native)
{
	g->native = native;
	g->key_hash = snapshot_group_hash(g);
}

/* --------------------------------------------------------- group keys -- */

uint64_t snapshot_group_hash(const struct snapshot_group *g)
{
	uint64_t h = 0x84222325cbf29ce4ULL + g->nframes + (g->native ? 0x9e3779b97f4a7c15ULL : 0);

	for (uint32_t i = 0; i < g->nframes; i++) {
		h = mix64(h ^ pool_hdr(g->frames[i].filename)->hash);
		h = mix64(h ^ ((uint64_t)g->frames[i].lineno << 32 | i));
	}
	return h;
}

static bool same_str(const char *a, const char *b)
{
	const struct pool_str *pa, *pb;

	if (a == b)
		return true;
	pa = pool_hdr(a);
	pb = pool_hdr(b);
	return pa->hash == pb->hash && pa->len == pb->len && memcmp(a, b, pa->len) == 0;
}

bool snapshot_group_equal(const struct snapshot_group *a, const struct snapshot_group *b)
{
	if (a->nframes != b->nframes || a->native != b->native)
		return false;
	for (uint32_t i = 0; i < a->nframes; i++) {
		if (a->frames[i].lineno != b->frames[i].lineno ||
		    !same_str(a->frames[i].filename, b->frames[i].filename))
			return false;
	}
	return true;
}

int snapshot_group_location_cmp(const struct snapshot_group *a,
				const struct snapshot_group *b)
{
	uint32_t n = a->nframes < b->nframes ? a->nframes : b->nframes;

	for (uint32_t i = 0; i < n; i++) {
		const struct snapshot_frame *fa = &a->frames[a->nframes - 1 - i];
		const struct snapshot_frame *fb = &b->frames[b->nframes - 1 - i];
		int c = fa->filename == fb->filename ? 0 : strcmp(fa->filename, fb->filename);

		if (c != 0)
			return c;
		if (fa->lineno != fb->lineno)
			return fa->lineno < fb->lineno ? -1 : 1;
	}
	if (a->nframes != b->nframes)
		return a->nframes < b->nframes ? -1 : 1;
	return 0;
}

/*
 * Index of group keys: open addressing over group indices (+1, 0 = empty).
 * Used to find duplicate keys and to regroup.
 */

void snapshot_gindex_init(struct gindex *ix, size_t n)
{
	ix->cap = 16;
	while (ix->cap < n * 2)
		ix->cap *= 2;
	ix->slot = xcalloc(ix->cap, sizeof(*ix->slot));
	ix->hash = xmalloc(ix->cap * sizeof(*ix->hash));
}

void snapshot_gindex_done(struct gindex *ix)
{
	free(ix->slot);
	free(ix->hash);
}

/*
 * Find g among groups[] through the index; if absent, insert idx and return
 * SIZE_MAX. The index must have room (sized for every insert up front).
 */
size_t snapshot_gindex_find_or_add(struct gindex *ix, const struct snapshot_group *groups,
				 const struct snapshot_group *g, uint64_t h, size_t idx)
{
	size_t j;

	for (j = h & (ix->cap - 1); ix->slot[j] != 0; j = (j + 1) & (ix->cap - 1)) {
		if (ix->hash[j] == h && snapshot_group_equal(&groups[ix->slot[j] - 1], g))
			return ix->slot[j] - 1;
	}
	ix->slot[j] = (uint32_t)idx + 1;
	ix->hash[j] = h;
	return SIZE_MAX;
}

/* ----------------------------------------------------------- regroup -- */

static int group_cmp_size(const void *pa, const void *pb)
{
	const struct snapshot_group *a = pa, *b = pb;

	if (a->size != b->size)
		return a->size > b->size ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return -snapshot_group_location_cmp(a, b);
}

int snapshot_group_ptr_cmp_size(const void *pa, const void *pb)
{
	return group_cmp_size(*(const struct snapshot_group *const *)pa,
			      *(const struct snapshot_group *const *)pb);
}

void snapshot_sort(struct snapshot *snap)
{
	if (snap->ngroups > 1)
		qsort(snap->groups, snap->ngroups, sizeof(*snap->groups), group_cmp_size);
}

/*
 * a + b for figures that are at most 2^53 - 1, capped there: a file can
 * hold any groups, and summing them must keep every snapshot loadable once
 * saved and every difference of two figures within an int64_t (snapdiff).
 */
static uint64_t add_capped(uint64_t a, uint64_t b)
{
	const uint64_t max = (uint64_t)SNAPSHOT_MAX_INT;

	return a > max - b ? max : a + b;
}

struct snapshot *snapshot_regroup(const struct snapshot *snap, enum proto_key key,
				  char *err, size_t errlen)
{
	struct snapshot *out;
	struct gindex ix;

	if ((unsigned)key >= PROTO_KEY_COUNT) {
		errfmt(err, errlen, "cannot regroup: unknown key %d", (int)key);
		return NULL;
	}
	if (key == PROTO_KEY_TRACEBACK && snap->key != PROTO_KEY_TRACEBACK) {
		errfmt(err, errlen,
		       "cannot regroup a snapshot taken by %s into tracebacks: they were not "
		       "recorded (take the snapshot with --key traceback)",
		       key_names[snap->key]);
		return NULL;
	}
	if (key == PROTO_KEY_LINENO && snap->key == PROTO_KEY_FILENAME) {
		errfmt(err, errlen,
		       "cannot regroup a snapshot taken by filename into lines: line numbers "
		       "were not recorded (take the snapshot with --key lineno)");
		return NULL;
	}
	out = snapshot_new(key, snap->cumulative, snap->nframe);
	out->time = snap->time;
	out->pid = snap->pid;
	out->traced_current = snap->traced_current;
	out->traced_peak = snap->traced_peak;
	out->total_size = snap->total_size;
	out->total_count = snap->total_count;
	out->ntraces = snap->ntraces;
	out->source = snap->source;
	out->interval = snap->interval;
	snapshot_set_label(out, snap->label);
	out->mem = snap->mem;
	snapshot_gindex_init(&ix, snap->ngroups);
	for (size_t i = 0; i < snap->ngroups; i++) {
		const struct snapshot_group *g = &snap->groups[i];
		struct snapshot_frame f;
		struct snapshot_group k;
		size_t found;
		uint64_t h;

		k = *g;
		if (key != PROTO_KEY_TRACEBACK) {
			f.filename = g->frames[0].filename;
			f.lineno = key == PROTO_KEY_LINENO ? g->frames[0].lineno : 0;
			k.frames = &f;
			k.nframes = 1;
			k.line = key == PROTO_KEY_LINENO ? g->line : "";
		}
		h = snapshot_group_hash(&k);
		found = snapshot_gindex_find_or_add(&ix, out->groups, &k, h, out->ngroups);
		if (found == SIZE_MAX) {
			struct snapshot_group *ng = snapshot_add_group(out, k.size, k.count, k.frames,
								       k.nframes, k.line);
			if (k.native)
				snapshot_group_set_native(ng, true);
		} else {
			out->groups[found].size = add_capped(out->groups[found].size, g->size);
			out->groups[found].count = add_capped(out->groups[found].count, g->count);
		}
	}
	snapshot_gindex_done(&ix);
	snapshot_sort(out);
	return out;
}


static const char *const mem_names[SNAPSHOT_MEM_PARTS][2] = {
	{ "python", "Python objects" }, { "slack", "Python slack" },   { "native", "native heap" },
	{ "malloc_free", "malloc free" }, { "heaps", "malloc heaps" }, { "anon", "other anonymous" },
	{ "stacks", "thread stacks" },   { "files", "mapped files" },  { "shmem", "shared memory" },
	{ "rest", "unexplained" },
};

const char *snapshot_mem_name(int part)
{
	return part >= 0 && part < SNAPSHOT_MEM_PARTS ? mem_names[part][0] : "?";
}

const char *snapshot_mem_label(int part)
{
	return part >= 0 && part < SNAPSHOT_MEM_PARTS ? mem_names[part][1] : "?";
}
