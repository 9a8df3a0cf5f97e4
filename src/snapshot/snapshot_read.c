/*
 * snapshot_read.c - snapshots from JSON: the strict validator, shared by
 * snapshot_from_json() (a cJSON tree: agent replies) and a one-pass reader
 * for files that builds no tree (bench/bench_diff: 3.35x less CPU than
 * cJSON + snapshot_from_json on a 16 MiB file), and loading files.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"

#include "snapshot/snapshot_intern.h"

/* ---------------------------------------------------------- errors -- */

/* ------------------------------------------------------- raw values -- */

/*
 * Validation works on a neutral "raw" form of the object, filled either from
 * a cJSON tree (snapshot_from_json) or straight from the text by the fast
 * reader below (snapshot_parse). One validator, so both give the same
 * snapshot and the same messages. Strings are interned in the snapshot's
 * pool as they are read.
 */
enum jtype { J_MISSING, J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT, J_INVALID };

struct jval {
	uint8_t t;
	double num;      /* J_NUMBER */
	const char *str; /* J_STRING: interned, NUL-terminated */
};

struct raw_frame {
	struct jval lineno;
	const char *file; /* when pair */
	bool pair;        /* a 2-element array whose first element is a string */
};

struct raw_group {
	struct jval size, count, line, native;
	uint32_t frame0, nframes;
	uint8_t self_t;   /* J_OBJECT, or what the element was instead */
	uint8_t frames_t; /* J_ARRAY, or what "frames" was instead */
};

enum raw_field {
	RF_FORMAT, RF_VERSION, RF_LABEL, RF_TIME, RF_PID, RF_KEY, RF_CUMULATIVE, RF_NFRAME,
	RF_TRACED_CURRENT, RF_TRACED_PEAK, RF_TOTAL_SIZE, RF_TOTAL_COUNT, RF_NTRACES,
	RF_SOURCE, RF_INTERVAL, RF_RSS, RF_RSS_PART, /* RF_RSS_PART + i: "rss_" + part i */
	RF_COUNT_ = RF_RSS_PART + SNAPSHOT_MEM_PARTS
};

static const char *const raw_field_names[RF_COUNT_] = {
	"format", "version", "label", "time", "pid", "key", "cumulative", "nframe",
	"traced_current", "traced_peak", "total_size", "total_count", "ntraces",
	"source", "interval", "rss", "rss_python", "rss_slack", "rss_native", "rss_malloc_free",
	"rss_heaps", "rss_anon", "rss_stacks", "rss_files", "rss_shmem", "rss_rest",
};

struct raw {
	uint8_t top_t;
	uint8_t groups_t;
	struct jval f[RF_COUNT_];
	struct raw_group *g;
	size_t ng, gcap;
	struct raw_frame *fr;
	size_t nfr, frcap;
};

static void raw_done(struct raw *r)
{
	free(r->g);
	free(r->fr);
}

static struct raw_group *raw_add_group(struct raw *r)
{
	struct raw_group *g;

	if (r->ng == r->gcap) {
		r->gcap = r->gcap ? r->gcap * 2 : 256;
		r->g = xreallocarray(r->g, r->gcap, sizeof(*r->g));
	}
	g = &r->g[r->ng++];
	memset(g, 0, sizeof(*g));
	g->self_t = J_OBJECT;
	g->frames_t = J_MISSING;
	g->frame0 = (uint32_t)r->nfr;
	return g;
}

static struct raw_frame *raw_add_frame(struct raw *r, struct raw_group *g)
{
	if (r->nfr == r->frcap) {
		r->frcap = r->frcap ? r->frcap * 2 : 256;
		r->fr = xreallocarray(r->fr, r->frcap, sizeof(*r->fr));
	}
	g->nframes++;
	memset(&r->fr[r->nfr], 0, sizeof(r->fr[0]));
	return &r->fr[r->nfr++];
}

static int raw_field_index(const char *s, size_t len)
{
	for (int i = 0; i < RF_COUNT_; i++)
		if (strlen(raw_field_names[i]) == len && memcmp(raw_field_names[i], s, len) == 0)
			return i;
	return -1;
}

static bool key_is(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* --------------------------------------------------------- validation -- */

static const char *jtype_name(uint8_t t)
{
	switch (t) {
	case J_MISSING: return "missing";
	case J_NULL: return "null";
	case J_FALSE:
	case J_TRUE: return "a boolean";
	case J_NUMBER: return "a number";
	case J_STRING: return "a string";
	case J_ARRAY: return "an array";
	case J_OBJECT: return "an object";
	default: return "invalid";
	}
}

enum numerr { NUM_OK, NUM_MISSING, NUM_TYPE, NUM_NONFINITE, NUM_NONINT, NUM_NEG, NUM_BIG };

static enum numerr check_uint(const struct jval *j, double max, uint64_t *out)
{
	double d = j->num;

	if (j->t == J_MISSING)
		return NUM_MISSING;
	if (j->t != J_NUMBER)
		return NUM_TYPE;
	if (!isfinite(d))
		return NUM_NONFINITE;
	if (d < 0)
		return NUM_NEG;
	if (d > max)
		return NUM_BIG;
	if (d != (double)(uint64_t)d) /* in range now, so the cast is defined */
		return NUM_NONINT;
	*out = (uint64_t)d;
	return NUM_OK;
}

static void num_fail(char *err, size_t errlen, const char *path, enum numerr e,
		     const struct jval *j, double max)
{
	switch (e) {
	case NUM_MISSING:
		errfmt(err, errlen, "%s is missing", path);
		break;
	case NUM_TYPE:
		errfmt(err, errlen, "%s is %s, not an integer", path, jtype_name(j->t));
		break;
	case NUM_NONFINITE:
		errfmt(err, errlen, "%s is out of range", path);
		break;
	case NUM_NEG:
		errfmt(err, errlen, "%s is negative", path);
		break;
	case NUM_NONINT:
		errfmt(err, errlen, "%s is not an integer (%g)", path, j->num);
		break;
	case NUM_BIG:
		if (max == SNAPSHOT_MAX_INT)
			errfmt(err, errlen, "%s is too large (above 2^53-1)", path);
		else
			errfmt(err, errlen, "%s is too large (above %.0f)", path, max);
		break;
	case NUM_OK:
		break;
	}
}

static int field_uint(const struct raw *r, enum raw_field f, double max, uint64_t *out,
		      char *err, size_t errlen)
{
	enum numerr e = check_uint(&r->f[f], max, out);

	if (e != NUM_OK) {
		num_fail(err, errlen, raw_field_names[f], e, &r->f[f], max);
		return -1;
	}
	return 0;
}

static int validate_file_header(const struct raw *r, char *err, size_t errlen)
{
	const struct jval *fmt = &r->f[RF_FORMAT], *ver = &r->f[RF_VERSION];
	uint64_t v;
	char b[64];

	if (fmt->t == J_MISSING)
		return 0; /* a reply's result object */
	if (fmt->t != J_STRING) {
		errfmt(err, errlen, "not a pmt-top snapshot (format is %s, not a string)",
		       jtype_name(fmt->t));
		return -1;
	}
	if (strcmp(fmt->str, SNAPSHOT_FORMAT) != 0) {
		errfmt(err, errlen, "not a pmt-top snapshot (format is \"%s\")",
		       strsafe_shown(b, sizeof(b), fmt->str));
		return -1;
	}
	if (ver->t == J_MISSING) {
		errfmt(err, errlen, "version is missing");
		return -1;
	}
	if (ver->t == J_NUMBER && ver->num > SNAPSHOT_VERSION && ver->num <= SNAPSHOT_MAX_INT &&
	    ver->num == (double)(uint64_t)ver->num) {
		errfmt(err, errlen,
		       "version %.0f is newer than this pmt-top understands (%d); "
		       "open it with a newer pmt-top",
		       ver->num, SNAPSHOT_VERSION);
		return -1;
	}
	if (field_uint(r, RF_VERSION, SNAPSHOT_VERSION, &v, err, errlen) < 0)
		return -1;
	if (v < 1) {
		errfmt(err, errlen, "version %" PRIu64 " is not a snapshot version (1 to %d)",
		       v, SNAPSHOT_VERSION);
		return -1;
	}
	return 0;
}

/* "source" and "interval": absent means tracemalloc (files from before the
 * sampled profiler); a sampled snapshot says how it sampled. */
static int validate_source(struct snapshot *snap, const struct raw *r, char *err, size_t errlen)
{
	const struct jval *j = &r->f[RF_SOURCE];
	char b[64];

	snap->source = SNAPSHOT_SOURCE_TRACEMALLOC;
	snap->interval = 0;
	if (j->t != J_MISSING) {
		int found = -1;

		if (j->t != J_STRING) {
			errfmt(err, errlen, "source is %s, not a string", jtype_name(j->t));
			return -1;
		}
		for (int i = 0; i < SNAPSHOT_SOURCE_COUNT_; i++)
			if (strcmp(j->str, snapshot_source_name((enum snapshot_source)i)) == 0)
				found = i;
		if (found < 0) {
			errfmt(err, errlen, "source \"%s\" is not tracemalloc or sampled",
			       strsafe_shown(b, sizeof(b), j->str));
			return -1;
		}
		snap->source = (enum snapshot_source)found;
	}
	if (snap->source != SNAPSHOT_SOURCE_SAMPLED) {
		if (r->f[RF_INTERVAL].t != J_MISSING) {
			errfmt(err, errlen, "interval is given but source is tracemalloc (only a sampled "
			       "snapshot has one)");
			return -1;
		}
		return 0;
	}
	if (field_uint(r, RF_INTERVAL, SNAPSHOT_MAX_INTERVAL, &snap->interval, err, errlen) < 0)
		return -1;
	if (snap->interval < 1) {
		errfmt(err, errlen, "interval is 0 (must be 1 to 2^30 bytes)");
		return -1;
	}
	return 0;
}

/* "rss" and its parts: optional, whole numbers; only the rest may be
 * negative. */
static int validate_memory(struct snapshot *snap, const struct raw *r, char *err, size_t errlen)
{
	struct snapshot_memory *m = &snap->mem;
	memset(m, 0, sizeof *m);
	if (r->f[RF_RSS].t == J_MISSING)
		return 0;
	if (field_uint(r, RF_RSS, SNAPSHOT_MAX_INT, &m->rss, err, errlen) < 0)
		return -1;
	m->has = true;
	for (int i = 0; i < SNAPSHOT_MEM_PARTS; i++) {
		const struct jval *j = &r->f[RF_RSS_PART + i];
		uint64_t v;
		if (j->t == J_MISSING)
			continue;
		if (i == SNAPSHOT_MEM_PARTS - 1 && j->t == J_NUMBER && j->num < 0) {
			struct jval neg = *j;
			neg.num = -j->num;
			enum numerr e = check_uint(&neg, SNAPSHOT_MAX_INT, &v);
			if (e != NUM_OK) {
				num_fail(err, errlen, raw_field_names[RF_RSS_PART + i], e, j, SNAPSHOT_MAX_INT);
				return -1;
			}
			m->part[i] = -(int64_t)v;
		} else {
			if (field_uint(r, (enum raw_field)(RF_RSS_PART + i), SNAPSHOT_MAX_INT, &v, err, errlen) < 0)
				return -1;
			m->part[i] = (int64_t)v;
		}
		m->known |= 1u << i;
	}
	return 0;
}

static int validate_header(struct snapshot *snap, const struct raw *r, char *err, size_t errlen)
{
	const struct jval *j;
	enum proto_key key;
	uint64_t v;
	char b[64];

	if (r->top_t != J_OBJECT) {
		errfmt(err, errlen, "not a pmt-top snapshot (the JSON is %s, not an object)",
		       jtype_name(r->top_t));
		return -1;
	}
	if (validate_file_header(r, err, errlen) < 0)
		return -1;
	j = &r->f[RF_KEY];
	if (j->t == J_MISSING) {
		errfmt(err, errlen, "key is missing");
		return -1;
	}
	if (j->t != J_STRING) {
		errfmt(err, errlen, "key is %s, not a string", jtype_name(j->t));
		return -1;
	}
	if (snapshot_key_from_name(j->str, &key) < 0) {
		errfmt(err, errlen, "key \"%s\" is not lineno, filename or traceback",
		       strsafe_shown(b, sizeof(b), j->str));
		return -1;
	}
	snap->key = key;
	j = &r->f[RF_CUMULATIVE];
	if (j->t == J_MISSING) {
		errfmt(err, errlen, "cumulative is missing");
		return -1;
	}
	if (j->t != J_TRUE && j->t != J_FALSE) {
		errfmt(err, errlen, "cumulative is %s, not true or false", jtype_name(j->t));
		return -1;
	}
	snap->cumulative = j->t == J_TRUE;
	if (snap->cumulative && key == PROTO_KEY_TRACEBACK) {
		errfmt(err, errlen, "cumulative is true with key traceback (not allowed)");
		return -1;
	}
	if (field_uint(r, RF_NFRAME, SNAPSHOT_MAX_NFRAME, &v, err, errlen) < 0)
		return -1;
	if (v < 1) {
		errfmt(err, errlen, "nframe is 0 (must be 1 to %d)", SNAPSHOT_MAX_NFRAME);
		return -1;
	}
	snap->nframe = (uint32_t)v;
	j = &r->f[RF_TIME];
	if (j->t == J_MISSING) {
		errfmt(err, errlen, "time is missing");
		return -1;
	}
	if (j->t != J_NUMBER) {
		errfmt(err, errlen, "time is %s, not a number", jtype_name(j->t));
		return -1;
	}
	if (!isfinite(j->num) || j->num < 0 || j->num > 1e11) {
		errfmt(err, errlen, "time is out of range (%g)", j->num);
		return -1;
	}
	snap->time = j->num;
	if (field_uint(r, RF_PID, 2147483647.0, &v, err, errlen) < 0)
		return -1;
	snap->pid = (uint32_t)v;
	if (field_uint(r, RF_TRACED_CURRENT, SNAPSHOT_MAX_INT, &snap->traced_current, err, errlen) < 0 ||
	    field_uint(r, RF_TRACED_PEAK, SNAPSHOT_MAX_INT, &snap->traced_peak, err, errlen) < 0 ||
	    field_uint(r, RF_TOTAL_SIZE, SNAPSHOT_MAX_INT, &snap->total_size, err, errlen) < 0 ||
	    field_uint(r, RF_TOTAL_COUNT, SNAPSHOT_MAX_INT, &snap->total_count, err, errlen) < 0 ||
	    field_uint(r, RF_NTRACES, SNAPSHOT_MAX_INT, &snap->ntraces, err, errlen) < 0)
		return -1;
	if (validate_source(snap, r, err, errlen) < 0 || validate_memory(snap, r, err, errlen) < 0)
		return -1;
	j = &r->f[RF_LABEL];
	if (j->t != J_MISSING) {
		if (j->t != J_STRING) {
			errfmt(err, errlen, "label is %s, not a string", jtype_name(j->t));
			return -1;
		}
		snapshot_set_label(snap, j->str);
	}
	return 0;
}

static int validate_frames(const struct snapshot *snap, const struct raw *r,
			   const struct raw_group *g, size_t gi, char *err, size_t errlen)
{
	uint32_t n;

	if (g->frames_t == J_MISSING) {
		errfmt(err, errlen, "groups[%zu].frames is missing", gi);
		return -1;
	}
	if (g->frames_t != J_ARRAY) {
		errfmt(err, errlen, "groups[%zu].frames is %s, not an array", gi, jtype_name(g->frames_t));
		return -1;
	}
	for (n = 0; n < g->nframes; n++) {
		const struct raw_frame *f = &r->fr[g->frame0 + n];
		uint64_t lineno;
		enum numerr e;

		if (n >= snap->nframe) {
			errfmt(err, errlen, "groups[%zu].frames has more than nframe (%" PRIu32 ") frames",
			       gi, snap->nframe);
			return -1;
		}
		if (!f->pair) {
			errfmt(err, errlen, "groups[%zu].frames[%" PRIu32 "] is not a [filename, lineno] pair",
			       gi, n);
			return -1;
		}
		e = check_uint(&f->lineno, 4294967295.0, &lineno);
		if (e != NUM_OK) {
			char path[64];

			snprintf(path, sizeof(path), "groups[%zu].frames[%" PRIu32 "] line number", gi, n);
			num_fail(err, errlen, path, e, &f->lineno, 4294967295.0);
			return -1;
		}
		if (snap->key == PROTO_KEY_FILENAME && lineno != 0) {
			errfmt(err, errlen,
			       "groups[%zu].frames[0] has line %" PRIu64 " (a filename snapshot has line 0)",
			       gi, lineno);
			return -1;
		}
	}
	if (n == 0) {
		errfmt(err, errlen, "groups[%zu].frames is empty", gi);
		return -1;
	}
	if (snap->key != PROTO_KEY_TRACEBACK && n != 1) {
		errfmt(err, errlen, "groups[%zu].frames has %" PRIu32 " frames (a %s snapshot has one per group)",
		       gi, n, snapshot_key_name(snap->key));
		return -1;
	}
	return 0;
}

/* One group's checks; -1 with err naming groups[GI]. */
static int check_group(const struct snapshot *snap, const struct raw *r, const struct raw_group *g,
		       size_t gi, char *err, size_t errlen)
{
	uint64_t v;
	enum numerr e;
	char path[64];

	if (g->self_t != J_OBJECT) {
		errfmt(err, errlen, "groups[%zu] is %s, not an object", gi, jtype_name(g->self_t));
		return -1;
	}
	e = check_uint(&g->size, SNAPSHOT_MAX_INT, &v);
	if (e != NUM_OK) {
		snprintf(path, sizeof(path), "groups[%zu].size", gi);
		num_fail(err, errlen, path, e, &g->size, SNAPSHOT_MAX_INT);
		return -1;
	}
	e = check_uint(&g->count, SNAPSHOT_MAX_INT, &v);
	if (e != NUM_OK) {
		snprintf(path, sizeof(path), "groups[%zu].count", gi);
		num_fail(err, errlen, path, e, &g->count, SNAPSHOT_MAX_INT);
		return -1;
	}
	if (validate_frames(snap, r, g, gi, err, errlen) < 0)
		return -1;
	if (g->line.t == J_MISSING) {
		errfmt(err, errlen, "groups[%zu].line is missing", gi);
		return -1;
	}
	if (g->line.t != J_STRING) {
		errfmt(err, errlen, "groups[%zu].line is %s, not a string", gi, jtype_name(g->line.t));
		return -1;
	}
	if (g->native.t != J_MISSING && g->native.t != J_TRUE && g->native.t != J_FALSE) {
		errfmt(err, errlen, "groups[%zu].native is %s, not true or false", gi, jtype_name(g->native.t));
		return -1;
	}
	return 0;
}

/* Appends a checked group (its strings are already in the pool). */
static void store_group(struct snapshot *snap, const struct raw *r, const struct raw_group *g)
{
	struct snapshot_group *o;
	struct snapshot_frame *fr = snapshot_pool_alloc(snap->pool, g->nframes * sizeof(*fr));

	if (snap->ngroups == snap->groups_cap) {
		snap->groups_cap = snap->groups_cap ? snap->groups_cap * 2 : 256;
		snap->groups = xreallocarray(snap->groups, snap->groups_cap, sizeof(*snap->groups));
	}
	for (uint32_t k = 0; k < g->nframes; k++) {
		fr[k].filename = r->fr[g->frame0 + k].file;
		fr[k].lineno = (uint32_t)r->fr[g->frame0 + k].lineno.num;
	}
	o = &snap->groups[snap->ngroups++];
	o->size = (uint64_t)g->size.num;
	o->count = (uint64_t)g->count.num;
	o->frames = fr;
	o->nframes = g->nframes;
	o->line = g->line.str;
	o->native = g->native.t == J_TRUE;
	o->key_hash = snapshot_group_hash(o);
}

/* "groups" itself: present, an array, not too long. */
static int check_groups_array(uint8_t t, size_t n, char *err, size_t errlen)
{
	if (t == J_MISSING) {
		errfmt(err, errlen, "groups is missing");
		return -1;
	}
	if (t != J_ARRAY) {
		errfmt(err, errlen, "groups is %s, not an array", jtype_name(t));
		return -1;
	}
	if (n >= UINT32_MAX - 1) {
		errfmt(err, errlen, "groups has too many entries");
		return -1;
	}
	return 0;
}

/* Check every group, then store them (frames into the pool). */
static int validate_groups(struct snapshot *snap, const struct raw *r, char *err, size_t errlen)
{
	if (check_groups_array(r->groups_t, r->ng, err, errlen) < 0)
		return -1;
	for (size_t gi = 0; gi < r->ng; gi++)
		if (check_group(snap, r, &r->g[gi], gi, err, errlen) < 0)
			return -1;
	/* all valid: store them */
	snap->groups_cap = r->ng ? r->ng : 1;
	snap->groups = xreallocarray(snap->groups, snap->groups_cap, sizeof(*snap->groups));
	for (size_t gi = 0; gi < r->ng; gi++)
		store_group(snap, r, &r->g[gi]);
	return 0;
}

/* qsort_r order of group indices: by key hash, then by index. */
static int dup_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct snapshot_group *groups = ctx;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	uint64_t ha = groups[a].key_hash, hb = groups[b].key_hash;

	if (ha != hb)
		return ha < hb ? -1 : 1;
	return a < b ? -1 : a > b;
}

/*
 * Two groups with one key would make a diff ambiguous: refuse them, naming
 * the first group that repeats an earlier one. The indices are sorted by
 * hash rather than put in a hash index: 4 bytes a group instead of 24, at
 * the moment a snapshot being read is at its largest.
 */
static int check_duplicates(const struct snapshot *snap, char *err, size_t errlen)
{
	size_t n = snap->ngroups, later = SIZE_MAX, earlier = 0;
	uint32_t *ix;

	if (n < 2)
		return 0;
	ix = xreallocarray(NULL, n, sizeof(*ix));
	for (size_t i = 0; i < n; i++)
		ix[i] = (uint32_t)i;
	qsort_r(ix, n, sizeof(*ix), dup_cmp, snap->groups);
	for (size_t run = 0, end; run < n; run = end) {
		uint64_t h = snap->groups[ix[run]].key_hash;

		for (end = run + 1; end < n && snap->groups[ix[end]].key_hash == h; end++)
			;
		/* within a run indices ascend: the first equal one is the earliest */
		for (size_t j = run + 1; j < end; j++) {
			if (ix[j] >= later)
				break;
			for (size_t k = run; k < j; k++) {
				if (snapshot_group_equal(&snap->groups[ix[k]], &snap->groups[ix[j]])) {
					later = ix[j];
					earlier = ix[k];
					break;
				}
			}
		}
	}
	free(ix);
	if (later != SIZE_MAX) {
		const struct snapshot_group *g = &snap->groups[later];
		char b[80];

		errfmt(err, errlen, "groups[%zu] has the same location as groups[%zu] (%s:%" PRIu32 ")",
		       later, earlier, strsafe_shown(b, sizeof(b), g->frames[0].filename), g->frames[0].lineno);
		return -1;
	}
	return 0;
}

/* Validate r into snap (created by the caller); -1 with err on any problem. */
static int validate_raw(struct snapshot *snap, const struct raw *r, char *err, size_t errlen)
{
	if (validate_header(snap, r, err, errlen) < 0 ||
	    validate_groups(snap, r, err, errlen) < 0 ||
	    check_duplicates(snap, err, errlen) < 0)
		return -1;
	return 0;
}

/* ---------------------------------------------------------- from cJSON -- */

static struct jval jval_of(const cJSON *j, struct snapshot_pool *pool)
{
	struct jval v = { J_INVALID, 0, NULL };

	if (cJSON_IsNull(j))
		v.t = J_NULL;
	else if (cJSON_IsFalse(j))
		v.t = J_FALSE;
	else if (cJSON_IsTrue(j))
		v.t = J_TRUE;
	else if (cJSON_IsNumber(j)) {
		v.t = J_NUMBER;
		v.num = j->valuedouble;
	} else if (cJSON_IsString(j)) {
		v.t = J_STRING;
		v.str = snapshot_pool_intern(pool, j->valuestring, strlen(j->valuestring));
	} else if (cJSON_IsArray(j))
		v.t = J_ARRAY;
	else if (cJSON_IsObject(j))
		v.t = J_OBJECT;
	return v;
}

static void raw_group_from_cjson(struct raw *r, const cJSON *item, struct snapshot_pool *pool)
{
	struct raw_group *g = raw_add_group(r);
	bool seen_frames = false;
	const cJSON *m;

	if (!cJSON_IsObject(item)) {
		g->self_t = jval_of(item, pool).t;
		return;
	}
	cJSON_ArrayForEach(m, item) {
		const char *k = m->string;

		if (k == NULL)
			continue;
		if (strcmp(k, "size") == 0 && g->size.t == J_MISSING) {
			g->size = jval_of(m, pool);
		} else if (strcmp(k, "count") == 0 && g->count.t == J_MISSING) {
			g->count = jval_of(m, pool);
		} else if (strcmp(k, "line") == 0 && g->line.t == J_MISSING) {
			g->line = jval_of(m, pool);
		} else if (strcmp(k, "native") == 0 && g->native.t == J_MISSING) {
			g->native = jval_of(m, pool);
		} else if (strcmp(k, "frames") == 0 && !seen_frames) {
			const cJSON *f;

			seen_frames = true;
			g->frames_t = jval_of(m, pool).t;
			if (g->frames_t != J_ARRAY)
				continue;
			cJSON_ArrayForEach(f, m) {
				struct raw_frame *rf = raw_add_frame(r, g);
				const cJSON *fn = cJSON_IsArray(f) ? f->child : NULL;
				const cJSON *ln = fn ? fn->next : NULL;

				rf->pair = fn && ln && !ln->next && cJSON_IsString(fn);
				if (rf->pair) {
					rf->file = snapshot_pool_intern(pool, fn->valuestring, strlen(fn->valuestring));
					rf->lineno = jval_of(ln, pool);
				}
			}
		}
	}
}

static void raw_from_cjson(struct raw *r, const cJSON *obj, struct snapshot_pool *pool)
{
	const cJSON *m;
	bool seen_groups = false;

	r->top_t = obj ? jval_of(obj, pool).t : J_MISSING;
	if (r->top_t != J_OBJECT)
		return;
	cJSON_ArrayForEach(m, obj) {
		int fi;

		if (m->string == NULL)
			continue;
		if (strcmp(m->string, "groups") == 0) {
			const cJSON *g;

			if (seen_groups)
				continue;
			seen_groups = true;
			r->groups_t = jval_of(m, pool).t;
			if (r->groups_t == J_ARRAY)
				cJSON_ArrayForEach(g, m)
					raw_group_from_cjson(r, g, pool);
			continue;
		}
		fi = raw_field_index(m->string, strlen(m->string));
		if (fi >= 0 && r->f[fi].t == J_MISSING)
			r->f[fi] = jval_of(m, pool);
	}
}

struct snapshot *snapshot_from_json(const cJSON *obj, char *err, size_t errlen)
{
	struct snapshot *snap = snapshot_new(PROTO_KEY_LINENO, false, 1);
	struct raw r;

	memset(&r, 0, sizeof(r));
	raw_from_cjson(&r, obj, snap->pool);
	if (validate_raw(snap, &r, err, errlen) < 0) {
		snapshot_free(snap);
		snap = NULL;
	}
	raw_done(&r);
	return snap;
}

/* -------------------------------------------------------- fast reader -- */

/*
 * A single-pass reader for snapshot text that fills the raw form without
 * building a cJSON tree (5-10 allocations per group, freed again): the
 * bulk of loading a 100k-group file. It accepts strict JSON only; whenever
 * it meets anything else (a syntax error, a construct it leaves to cJSON
 * such as a reply wrapper, raw control characters, deep nesting)
 * it gives up and snapshot_parse() takes the cJSON path, which then decides
 * and words the error. So both paths always agree.
 */
enum fr_stream {
	FR_STREAM_OFF,   /* groups go to the raw form, checked at the end */
	FR_STREAM_STORE, /* each group is checked and stored as it is read */
	FR_STREAM_SKIP,  /* the header is refused anyway: groups are only read */
};

struct fr {
	const char *p, *end;
	struct snapshot_pool *pool;
	struct raw *raw;
	char *sb;
	size_t scap;
	locale_t cloc;
	int depth;
	/* Streaming: once key, cumulative and nframe are known, groups go
	 * straight into snap, without the raw form (88 + 40 bytes a group). */
	struct snapshot *snap;
	enum fr_stream stream;
	size_t ngroups;  /* groups read while streaming */
	bool gfail;      /* the first bad group's error is in gerr */
	char gerr[256];
	/* Consumable input: pages before `released` are given back. */
	bool consume;
	const char *released;
};

#define FR_GIVE_UP (-1)
#define FR_MAX_DEPTH 64
/* Input given back in steps of at least this much. */
#define FR_RELEASE_STEP (1024 * 1024)

/* Gives back the whole pages of input read so far: the snapshot holds
 * copies of what it needs, and the text is not read again. */
static void fr_release(struct fr *f)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t from = ((uintptr_t)f->released + page - 1) & ~(page - 1);
	uintptr_t to = (uintptr_t)f->p & ~(page - 1);

	if (to > from && madvise((void *)from, to - from, MADV_DONTNEED) == 0)
		f->released = (const char *)to;
}

static void fr_ws(struct fr *f)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\r' || *f->p == '\t'))
		f->p++;
}

static int fr_hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/*
 * A string at f->p (which is '"'): *s, *len get its decoded bytes, pointing
 * into the input when it has no escapes, else into the scratch buffer.
 */
static int fr_string(struct fr *f, const char **s, size_t *len)
{
	const char *q = f->p + 1, *start = q;
	size_t n = 0, cut = SIZE_MAX;

	while (q < f->end) {
		unsigned char c = (unsigned char)*q;

		if (c == '"') {
			*s = start;
			*len = (size_t)(q - start);
			f->p = q + 1;
			return 0;
		}
		if (c == '\\')
			break;
		if (c < 0x20)
			return FR_GIVE_UP;
		q++;
	}
	if (q >= f->end)
		return FR_GIVE_UP;
	/* escapes: decode into the scratch buffer */
	n = (size_t)(q - start);
	if (f->scap < (size_t)(f->end - start) + 1) {
		f->scap = (size_t)(f->end - start) + 1;
		f->sb = xrealloc(f->sb, f->scap);
	}
	memcpy(f->sb, start, n);
	while (q < f->end) {
		unsigned char c = (unsigned char)*q;
		uint32_t cp, lo;

		if (c == '"') {
			*s = f->sb;
			*len = n < cut ? n : cut;
			f->p = q + 1;
			return 0;
		}
		if (c < 0x20)
			return FR_GIVE_UP;
		if (c != '\\') {
			f->sb[n++] = (char)c;
			q++;
			continue;
		}
		if (q + 1 >= f->end)
			return FR_GIVE_UP;
		switch (q[1]) {
		case '"': f->sb[n++] = '"'; q += 2; continue;
		case '\\': f->sb[n++] = '\\'; q += 2; continue;
		case '/': f->sb[n++] = '/'; q += 2; continue;
		case 'b': f->sb[n++] = '\b'; q += 2; continue;
		case 'f': f->sb[n++] = '\f'; q += 2; continue;
		case 'n': f->sb[n++] = '\n'; q += 2; continue;
		case 'r': f->sb[n++] = '\r'; q += 2; continue;
		case 't': f->sb[n++] = '\t'; q += 2; continue;
		case 'u': break;
		default: return FR_GIVE_UP;
		}
		if (q + 6 > f->end || fr_hex4(q + 2, &cp) < 0)
			return FR_GIVE_UP;
		q += 6;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return FR_GIVE_UP;
		if (cp == 0) {
			/* cJSON's strings are C strings: they end at a \u0000 */
			if (cut == SIZE_MAX)
				cut = n;
			continue;
		}
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (q + 6 > f->end || q[0] != '\\' || q[1] != 'u' || fr_hex4(q + 2, &lo) < 0 ||
			    lo < 0xdc00 || lo > 0xdfff)
				return FR_GIVE_UP;
			q += 6;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		/* the escape is never shorter than its UTF-8 form, so sb has room */
		if (cp < 0x80) {
			f->sb[n++] = (char)cp;
		} else if (cp < 0x800) {
			f->sb[n++] = (char)(0xc0 | cp >> 6);
			f->sb[n++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			f->sb[n++] = (char)(0xe0 | cp >> 12);
			f->sb[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			f->sb[n++] = (char)(0x80 | (cp & 0x3f));
		} else {
			f->sb[n++] = (char)(0xf0 | cp >> 18);
			f->sb[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			f->sb[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			f->sb[n++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	return FR_GIVE_UP;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A number in strict JSON syntax, converted as strtod does in the C locale. */
static int fr_number(struct fr *f, double *out)
{
	const char *s = f->p, *q = s;
	bool simple = true;
	uint64_t v = 0;
	int digits = 0;

	if (q < f->end && *q == '-')
		q++;
	if (q < f->end && *q == '0') {
		q++;
		digits = 1;
	} else if (q < f->end && *q >= '1' && *q <= '9') {
		while (q < f->end && is_digit(*q)) {
			v = v * 10 + (uint64_t)(*q - '0');
			q++;
			digits++;
		}
	} else {
		return FR_GIVE_UP;
	}
	if (q < f->end && *q == '.') {
		simple = false;
		q++;
		if (q >= f->end || !is_digit(*q))
			return FR_GIVE_UP;
		while (q < f->end && is_digit(*q))
			q++;
	}
	if (q < f->end && (*q == 'e' || *q == 'E')) {
		simple = false;
		q++;
		if (q < f->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= f->end || !is_digit(*q))
			return FR_GIVE_UP;
		while (q < f->end && is_digit(*q))
			q++;
	}
	f->p = q;
	if (simple && digits <= 15) {
		*out = *s == '-' ? -(double)v : (double)v; /* exact below 2^53 */
		return 0;
	}
	{
		size_t n = (size_t)(q - s);
		char small[64], *t = n < sizeof(small) ? small : xmalloc(n + 1);

		memcpy(t, s, n);
		t[n] = '\0';
		if (f->cloc == (locale_t)0)
			f->cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
		if (f->cloc == (locale_t)0) {
			if (t != small)
				free(t);
			return FR_GIVE_UP;
		}
		*out = strtod_l(t, NULL, f->cloc);
		if (t != small)
			free(t);
	}
	return 0;
}

static int fr_lit(struct fr *f, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(f->end - f->p) < n || memcmp(f->p, lit, n) != 0)
		return FR_GIVE_UP;
	f->p += n;
	return 0;
}

/*
 * Any value: its type in v->t, its number, its string (interned when
 * intern is set; otherwise only checked). Arrays and objects are checked
 * and skipped.
 */
static int fr_value(struct fr *f, struct jval *v, bool intern)
{
	const char *s;
	size_t len;

	v->str = NULL;
	v->num = 0;
	if (f->p >= f->end)
		return FR_GIVE_UP;
	switch (*f->p) {
	case '"':
		v->t = J_STRING;
		if (fr_string(f, &s, &len) < 0)
			return FR_GIVE_UP;
		v->str = intern ? snapshot_pool_intern(f->pool, s, len) : NULL;
		return 0;
	case 't':
		v->t = J_TRUE;
		return fr_lit(f, "true");
	case 'f':
		v->t = J_FALSE;
		return fr_lit(f, "false");
	case 'n':
		v->t = J_NULL;
		return fr_lit(f, "null");
	case '[':
	case '{': {
		bool obj = *f->p == '{';
		struct jval dummy;

		v->t = obj ? J_OBJECT : J_ARRAY;
		if (++f->depth > FR_MAX_DEPTH)
			return FR_GIVE_UP;
		f->p++;
		fr_ws(f);
		if (f->p < f->end && *f->p == (obj ? '}' : ']')) {
			f->p++;
			f->depth--;
			return 0;
		}
		for (;;) {
			fr_ws(f);
			if (obj) {
				if (f->p >= f->end || *f->p != '"' || fr_string(f, &s, &len) < 0)
					return FR_GIVE_UP;
				fr_ws(f);
				if (f->p >= f->end || *f->p != ':')
					return FR_GIVE_UP;
				f->p++;
				fr_ws(f);
			}
			if (fr_value(f, &dummy, false) < 0)
				return FR_GIVE_UP;
			fr_ws(f);
			if (f->p >= f->end)
				return FR_GIVE_UP;
			if (*f->p == ',') {
				f->p++;
				continue;
			}
			if (*f->p != (obj ? '}' : ']'))
				return FR_GIVE_UP;
			f->p++;
			f->depth--;
			return 0;
		}
	}
	default:
		v->t = J_NUMBER;
		return fr_number(f, &v->num);
	}
}

/* Object members: calls member(f, key, keylen, ctx) with f->p at the value. */
static int fr_object(struct fr *f, int (*member)(struct fr *, const char *, size_t, void *),
		     void *ctx)
{
	if (++f->depth > FR_MAX_DEPTH)
		return FR_GIVE_UP;
	f->p++; /* '{' */
	fr_ws(f);
	if (f->p < f->end && *f->p == '}') {
		f->p++;
		f->depth--;
		return 0;
	}
	for (;;) {
		const char *s;
		size_t len;
		char key[32];

		fr_ws(f);
		if (f->p >= f->end || *f->p != '"' || fr_string(f, &s, &len) < 0)
			return FR_GIVE_UP;
		/* the scratch buffer is reused by the value: keep a copy of the key */
		if (len >= sizeof(key))
			len = 0; /* longer than any name we look for */
		memcpy(key, s, len);
		fr_ws(f);
		if (f->p >= f->end || *f->p != ':')
			return FR_GIVE_UP;
		f->p++;
		fr_ws(f);
		if (f->p >= f->end) /* cut after the colon: members read a first byte */
			return FR_GIVE_UP;
		if (member(f, key, len, ctx) < 0)
			return FR_GIVE_UP;
		fr_ws(f);
		if (f->p >= f->end)
			return FR_GIVE_UP;
		if (*f->p == ',') {
			f->p++;
			continue;
		}
		if (*f->p != '}')
			return FR_GIVE_UP;
		f->p++;
		f->depth--;
		return 0;
	}
}

/* Array elements: calls elem(f, ctx) with f->p at each element. */
static int fr_array(struct fr *f, int (*elem)(struct fr *, void *), void *ctx)
{
	if (++f->depth > FR_MAX_DEPTH)
		return FR_GIVE_UP;
	f->p++; /* '[' */
	fr_ws(f);
	if (f->p < f->end && *f->p == ']') {
		f->p++;
		f->depth--;
		return 0;
	}
	for (;;) {
		fr_ws(f);
		if (f->p >= f->end) /* cut inside the array: elements read a first byte */
			return FR_GIVE_UP;
		if (elem(f, ctx) < 0)
			return FR_GIVE_UP;
		fr_ws(f);
		if (f->p >= f->end)
			return FR_GIVE_UP;
		if (*f->p == ',') {
			f->p++;
			continue;
		}
		if (*f->p != ']')
			return FR_GIVE_UP;
		f->p++;
		f->depth--;
		return 0;
	}
}

struct fr_pair {
	struct raw_frame *rf;
	int i;
};

static int fr_pair_elem(struct fr *f, void *ctx)
{
	struct fr_pair *pp = ctx;
	struct jval v;

	if (fr_value(f, &v, pp->i == 0) < 0)
		return FR_GIVE_UP;
	if (pp->i == 0) {
		pp->rf->pair = v.t == J_STRING;
		pp->rf->file = v.str;
	} else if (pp->i == 1) {
		pp->rf->lineno = v;
	} else {
		pp->rf->pair = false;
	}
	pp->i++;
	return 0;
}

static int fr_frame_elem(struct fr *f, void *ctx)
{
	struct raw_group *g = ctx;
	struct raw_frame *rf = raw_add_frame(f->raw, g);
	struct fr_pair pp = { rf, 0 };
	struct jval v;

	if (*f->p != '[')
		return fr_value(f, &v, false); /* rf->pair stays false */
	if (fr_array(f, fr_pair_elem, &pp) < 0)
		return FR_GIVE_UP;
	if (pp.i != 2)
		rf->pair = false;
	return 0;
}

static int fr_group_member(struct fr *f, const char *k, size_t len, void *ctx)
{
	struct raw_group *g = &f->raw->g[(size_t)(uintptr_t)ctx];
	struct jval v, *dst = NULL;

	if (key_is(k, len, "size"))
		dst = &g->size;
	else if (key_is(k, len, "count"))
		dst = &g->count;
	else if (key_is(k, len, "line"))
		dst = &g->line;
	else if (key_is(k, len, "native"))
		dst = &g->native;
	else if (key_is(k, len, "frames") && g->frames_t == J_MISSING) {
		if (*f->p == '[') {
			g->frames_t = J_ARRAY;
			g->frame0 = (uint32_t)f->raw->nfr;
			g->nframes = 0;
			return fr_array(f, fr_frame_elem, g);
		}
		if (fr_value(f, &v, false) < 0)
			return FR_GIVE_UP;
		g->frames_t = v.t;
		return 0;
	}
	if (dst != NULL && dst->t == J_MISSING)
		return fr_value(f, dst, true);
	return fr_value(f, &v, false);
}

/* A streamed group, just read into the raw form's only slot. */
static void fr_group_stream(struct fr *f)
{
	struct raw *r = f->raw;
	size_t gi = f->ngroups++;

	if (f->stream == FR_STREAM_STORE && !f->gfail) {
		if (check_group(f->snap, r, &r->g[0], gi, f->gerr, sizeof(f->gerr)) < 0)
			f->gfail = true;
		else
			store_group(f->snap, r, &r->g[0]);
	}
	r->ng = 0;
	r->nfr = 0;
	if (f->consume && f->p - f->released >= FR_RELEASE_STEP)
		fr_release(f);
}

static int fr_group_elem(struct fr *f, void *ctx)
{
	struct raw_group *g = raw_add_group(f->raw);
	size_t gi = f->raw->ng - 1;
	struct jval v;
	int rc;

	(void)ctx;
	if (*f->p != '{') {
		rc = fr_value(f, &v, false);
		g->self_t = v.t;
	} else {
		rc = fr_object(f, fr_group_member, (void *)(uintptr_t)gi);
	}
	if (rc == 0 && f->stream != FR_STREAM_OFF)
		fr_group_stream(f);
	return rc;
}

/*
 * Whether the groups can be streamed: key, cumulative and nframe came
 * before them (the agent and pmt-top's files put them first). STORE with
 * them set in snap when they are valid, SKIP when one is there but invalid
 * (validate_header() refuses it at the end), OFF when one is missing.
 */
static enum fr_stream fr_stream_mode(struct snapshot *snap, const struct raw *r)
{
	const struct jval *key = &r->f[RF_KEY], *cum = &r->f[RF_CUMULATIVE];
	enum proto_key k;
	uint64_t nframe;

	if (key->t == J_MISSING || cum->t == J_MISSING || r->f[RF_NFRAME].t == J_MISSING)
		return FR_STREAM_OFF;
	if (key->t != J_STRING || snapshot_key_from_name(key->str, &k) < 0 ||
	    (cum->t != J_TRUE && cum->t != J_FALSE) || (cum->t == J_TRUE && k == PROTO_KEY_TRACEBACK) ||
	    check_uint(&r->f[RF_NFRAME], SNAPSHOT_MAX_NFRAME, &nframe) != NUM_OK || nframe < 1)
		return FR_STREAM_SKIP;
	snap->key = k;
	snap->cumulative = cum->t == J_TRUE;
	snap->nframe = (uint32_t)nframe;
	return FR_STREAM_STORE;
}

static int fr_top_member(struct fr *f, const char *k, size_t len, void *ctx)
{
	struct raw *r = f->raw;
	struct jval v;
	int fi;

	(void)ctx;
	if (key_is(k, len, "result"))
		return FR_GIVE_UP; /* a reply line: the cJSON path unwraps it */
	if (key_is(k, len, "groups") && r->groups_t == J_MISSING) {
		if (*f->p == '[') {
			r->groups_t = J_ARRAY;
			f->stream = fr_stream_mode(f->snap, r);
			return fr_array(f, fr_group_elem, NULL);
		}
		if (fr_value(f, &v, false) < 0)
			return FR_GIVE_UP;
		r->groups_t = v.t;
		return 0;
	}
	fi = raw_field_index(k, len);
	if (fi >= 0 && r->f[fi].t == J_MISSING)
		return fr_value(f, &r->f[fi], true);
	return fr_value(f, &v, false);
}

/*
 * Fill r (and, streaming, snap's groups) from text; 0, or FR_GIVE_UP to
 * let the cJSON path decide. *STREAM says which way the groups went; with
 * CONSUME, *RELEASED is set when pages of the text were given back.
 */
static int fr_read(struct raw *r, struct snapshot *snap, const char *buf, size_t len, bool consume,
		   struct fr *out)
{
	struct fr f = { buf, buf + len, snap->pool, r, NULL, 0, (locale_t)0, 0, snap, FR_STREAM_OFF, 0,
			false, "", consume, buf };
	struct jval v;
	int rc;

	fr_ws(&f);
	if (f.p < f.end && *f.p == '{') {
		r->top_t = J_OBJECT;
		rc = fr_object(&f, fr_top_member, NULL);
	} else {
		rc = fr_value(&f, &v, false);
		r->top_t = v.t;
	}
	if (rc == 0) {
		fr_ws(&f);
		if (f.p != f.end)
			rc = FR_GIVE_UP;
	}
	free(f.sb);
	f.sb = NULL;
	if (f.cloc != (locale_t)0)
		freelocale(f.cloc);
	f.cloc = (locale_t)0;
	*out = f;
	return rc;
}

/* The checks of validate_raw() for streamed groups, in the same order. */
static int validate_streamed(struct snapshot *snap, const struct raw *r, const struct fr *f, char *err,
			     size_t errlen)
{
	if (validate_header(snap, r, err, errlen) < 0 ||
	    check_groups_array(J_ARRAY, f->ngroups, err, errlen) < 0)
		return -1;
	if (f->gfail) {
		errfmt(err, errlen, "%s", f->gerr);
		return -1;
	}
	return check_duplicates(snap, err, errlen);
}

/* ------------------------------------------------------------- parse -- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0; /* overlong, surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

/* Offset of the first byte that is not UTF-8 text (or is NUL), or len. */
static size_t utf8_check(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0;

	while (i < len) {
		if (i + 8 <= len) {
			uint64_t w;

			memcpy(&w, s + i, 8);
			/* all ASCII and no zero byte: skip the word */
			if (((w & 0x8080808080808080ULL) |
			     ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL)) == 0) {
				i += 8;
				continue;
			}
		}
		if (s[i] == 0)
			return i;
		size_t k = utf8_seq(s + i, len - i);

		if (k == 0)
			return i;
		i += k;
	}
	return len;
}

/*
 * Does buf look like JSON cut short? True when, outside strings, more
 * brackets open than close, or the text ends inside a string.
 */
static bool json_truncated(const char *buf, size_t len)
{
	long depth = 0;
	bool instr = false, esc = false, any = false;

	for (size_t i = 0; i < len; i++) {
		char c = buf[i];

		if (instr) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				instr = false;
			continue;
		}
		if (c == '"')
			instr = true;
		else if (c == '{' || c == '[')
			depth++, any = true;
		else if (c == '}' || c == ']')
			depth--;
		if (depth < 0)
			return false;
	}
	return instr || (any && depth > 0);
}

/* Empty, too large, not UTF-8: checks shared by both paths. */
static int parse_prechecks(const char *buf, size_t len, const char *name, char *err, size_t errlen)
{
	size_t bad, i;

	for (i = 0; i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'); i++)
		;
	if (i == len) {
		errfmt(err, errlen, "%s: empty file (not a pmt-top snapshot)", name);
		return -1;
	}
	if (len > SNAPSHOT_MAX_FILE) {
		errfmt(err, errlen, "%s: too large (%zu bytes; a snapshot is at most %zu)", name,
		       len, SNAPSHOT_MAX_FILE);
		return -1;
	}
	bad = utf8_check(buf, len);
	if (bad < len) {
		if (buf[bad] == '\0')
			errfmt(err, errlen, "%s: not a pmt-top snapshot (NUL byte at byte %zu)", name, bad);
		else
			errfmt(err, errlen, "%s: not UTF-8 text (byte 0x%02x at byte %zu)", name,
			       (unsigned char)buf[bad], bad);
		return -1;
	}
	return 0;
}

static struct snapshot *parse_cjson(const char *buf, size_t len, const char *name,
				    char *err, size_t errlen)
{
	const char *end = NULL;
	struct snapshot *snap;
	cJSON *root, *obj;
	char e[256];
	size_t i;

	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (root == NULL) {
		if (json_truncated(buf, len))
			errfmt(err, errlen, "%s: truncated JSON at byte %zu (the file is incomplete)",
			       name, len);
		else
			errfmt(err, errlen, "%s: invalid JSON at byte %zu", name,
			       end ? (size_t)(end - buf) : (size_t)0);
		return NULL;
	}
	for (i = (size_t)(end - buf); i < len && strchr(" \t\r\n", buf[i]) != NULL; i++)
		;
	if (i < len) {
		cJSON_Delete(root);
		errfmt(err, errlen, "%s: invalid JSON at byte %zu (unexpected data after the object)",
		       name, i);
		return NULL;
	}
	obj = root;
	/* a whole reply line ({"id": .., "ok": true, "result": {...}}) is fine too */
	if (cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "groups") == NULL &&
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "ok")) &&
	    cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "result")))
		obj = cJSON_GetObjectItemCaseSensitive(root, "result");
	snap = snapshot_from_json(obj, e, sizeof(e));
	cJSON_Delete(root);
	if (snap == NULL)
		errfmt(err, errlen, "%s: %s", name, e);
	return snap;
}

struct snapshot *snapshot_parse_cjson(const char *buf, size_t len, const char *name,
				      char *err, size_t errlen)
{
	if (parse_prechecks(buf, len, name, err, errlen) < 0)
		return NULL;
	return parse_cjson(buf, len, name, err, errlen);
}

/* snapshot_parse_fast(), giving back the text's pages as it goes when
 * CONSUME is set: then *GONE tells that it gave up after doing so. */
static struct snapshot *parse_fast(const char *buf, size_t len, const char *name, char *err,
				   size_t errlen, bool *gave_up, bool consume, bool *gone)
{
	struct snapshot *snap;
	struct raw r;
	struct fr f;
	char e[256];
	int rc;

	*gave_up = false;
	*gone = false;
	if (parse_prechecks(buf, len, name, err, errlen) < 0)
		return NULL;
	snap = snapshot_new(PROTO_KEY_LINENO, false, 1);
	memset(&r, 0, sizeof(r));
	rc = fr_read(&r, snap, buf, len, consume, &f);
	if (rc < 0) {
		*gave_up = true;
		*gone = f.released != buf;
		if (*gone)
			errfmt(err, errlen, "%s: invalid JSON near byte %zu, or JSON this reader does not take "
			       "(an unpaired surrogate in a string, nesting deeper than %d)",
			       name, (size_t)(f.p - buf), FR_MAX_DEPTH);
		else
			errfmt(err, errlen, "%s: not read by the fast reader", name);
		snapshot_free(snap);
		snap = NULL;
	} else if ((f.stream != FR_STREAM_OFF ? validate_streamed(snap, &r, &f, e, sizeof(e)) :
		    validate_raw(snap, &r, e, sizeof(e))) < 0) {
		errfmt(err, errlen, "%s: %s", name, e);
		snapshot_free(snap);
		snap = NULL;
	}
	raw_done(&r);
	return snap;
}

struct snapshot *snapshot_parse_fast(const char *buf, size_t len, const char *name,
				     char *err, size_t errlen, bool *gave_up)
{
	bool gone;

	return parse_fast(buf, len, name, err, errlen, gave_up, false, &gone);
}

struct snapshot *snapshot_parse_consume(char *buf, size_t len, const char *name, char *err,
					size_t errlen, bool *gone)
{
	bool gave_up;
	struct snapshot *snap = parse_fast(buf, len, name, err, errlen, &gave_up, true, gone);

	if (gave_up && !*gone)
		return parse_cjson(buf, len, name, err, errlen);
	return snap;
}

struct snapshot *snapshot_parse(const char *buf, size_t len, const char *name,
				char *err, size_t errlen)
{
	bool gave_up;
	struct snapshot *snap = snapshot_parse_fast(buf, len, name, err, errlen, &gave_up);

	if (gave_up)
		return parse_cjson(buf, len, name, err, errlen);
	return snap;
}

/*
 * Is PATH one of our own descriptors that is an anonymous pipe, as a
 * shell's <(zcat x.json.gz) gives? Its writer is the command the user
 * started, so reading it waits for that command and nothing else; a named
 * FIFO (one anybody may have made, with no writer) is another matter.
 */
static bool own_pipe(const char *path)
{
	static const char *const dirs[] = { "/dev/fd/", "/proc/self/fd/" };
	char link[64], target[64];

	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		size_t n = strlen(dirs[i]);
		const char *num = path + n;
		ssize_t r;

		if (strncmp(path, dirs[i], n) != 0 || *num == '\0' || strspn(num, "0123456789") != strlen(num) ||
		    strlen(num) > 9)
			continue;
		snprintf(link, sizeof link, "/proc/self/fd/%s", num);
		r = readlink(link, target, sizeof target - 1);
		if (r <= 0)
			return false;
		target[r] = '\0';
		return strncmp(target, "pipe:[", 6) == 0;
	}
	return false;
}

/* Refuses anything but a regular file (or our own pipe) in one sentence; 0 when it may be read. */
static int refuse_irregular(const char *path, mode_t mode, char *err, size_t errlen)
{
	const char *kind = S_ISFIFO(mode) ? "a FIFO" : S_ISSOCK(mode) ? "a socket" :
			   S_ISCHR(mode) || S_ISBLK(mode) ? "a device" : "an unknown kind of file";

	if (S_ISREG(mode) || (S_ISFIFO(mode) && own_pipe(path)))
		return 0;
	if (S_ISDIR(mode))
		errfmt(err, errlen, "%s: is a directory, not a snapshot file", path);
	else
		errfmt(err, errlen, "%s: is %s, not a snapshot file (snapshots are read from "
		       "regular files only: save it to one first)", path, kind);
	return -1;
}

/*
 * Opens a regular file for reading without blocking on anything else: a FIFO
 * with no writer would block open(2) and read(2) for ever. What the path names
 * is looked at first, so nothing else is even opened; one swapped in since is
 * caught by fstat on the descriptor, opened O_NONBLOCK (which open(2) of a
 * FIFO does not wait on), and O_NONBLOCK is cleared again for the reads.
 * Returns the descriptor, or -1 with err set.
 */
static int open_regular(const char *path, struct stat *st, char *err, size_t errlen)
{
	int fd, fl;

	if (stat(path, st) < 0) {
		if (errno == ENOENT)
			errfmt(err, errlen, "%s: no such file", path);
		else
			errfmt(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (refuse_irregular(path, st->st_mode, err, errlen) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			errfmt(err, errlen, "%s: no such file", path);
		else
			errfmt(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0) {
		errfmt(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
		goto fail;
	}
	if (refuse_irregular(path, st->st_mode, err, errlen) < 0)
		goto fail;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		errfmt(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

struct snapshot *snapshot_load(const char *path, char *err, size_t errlen)
{
	struct snapshot *snap = NULL;
	size_t len = 0, cap;
	char *buf = NULL;
	struct stat st;
	bool gone;
	int fd;

	fd = open_regular(path, &st, err, errlen);
	if (fd < 0)
		return NULL;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > SNAPSHOT_MAX_FILE) {
		errfmt(err, errlen, "%s: too large (%jd bytes; a snapshot is at most %zu)", path,
		       (intmax_t)st.st_size, SNAPSHOT_MAX_FILE);
		goto out;
	}
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
	buf = xmalloc(cap);
	for (;;) {
		ssize_t r;

		if (len == cap) {
			if (cap > SNAPSHOT_MAX_FILE) {
				errfmt(err, errlen, "%s: too large (a snapshot is at most %zu bytes)",
				       path, SNAPSHOT_MAX_FILE);
				goto out;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			errfmt(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	/* The text's pages go as it is read: a 300k-group file then costs the
	 * larger of itself and its snapshot, not both. Text the one-pass reader
	 * leaves to cJSON is read again for it. */
	snap = snapshot_parse_consume(buf, len, path, err, errlen, &gone);
	if (snap == NULL && gone) {
		size_t again = 0;

		while (again < len) {
			ssize_t r = pread(fd, buf + again, len - again, (off_t)again);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				errfmt(err, errlen, "%s: cannot read it again: %s", path,
				       r < 0 ? strerror(errno) : "it became shorter");
				goto out;
			}
			again += (size_t)r;
		}
		snap = snapshot_parse(buf, len, path, err, errlen);
	}
out:
	free(buf);
	close(fd);
	return snap;
}

