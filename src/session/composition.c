/*
 * composition.c - what a process's RSS is made of (see composition.h).
 */
#include "session/composition.h"

#include <stdio.h>
#include <string.h>

#include "snapshot/snapshot.h"

_Static_assert(COMP_PART_COUNT == SNAPSHOT_MEM_PARTS, "a snapshot keeps every part of a composition");

static const char part_keys[COMP_PART_COUNT] = {
	[COMP_PYTHON] = 'P', [COMP_SLACK] = 's', [COMP_NATIVE] = 'N', [COMP_MALLOC_FREE] = 'f',
	[COMP_HEAPS] = 'H',  [COMP_ANON] = 'A',  [COMP_STACKS] = 't', [COMP_FILES] = 'F',
	[COMP_SHMEM] = 'm',  [COMP_REST] = '?',
};

const char *comp_part_name(enum comp_part p)
{
	return snapshot_mem_label((int)p);
}

char comp_part_key(enum comp_part p)
{
	return p < COMP_PART_COUNT ? part_keys[p] : '?';
}

static void set(struct composition *c, enum comp_part p, int64_t bytes, const char *source)
{
	c->part[p].shown = true;
	c->part[p].bytes = bytes;
	c->part[p].source = source;
}

static int64_t at_least_0(int64_t v)
{
	return v < 0 ? 0 : v;
}

static void say(struct composition *c, const char *what, const char *why)
{
	size_t n = strlen(c->why);
	snprintf(c->why + n, sizeof c->why - n, "%s%s: %s", n ? "; " : "", what, why);
}

void composition_make(const struct proc_sample *kinds, const struct msg_status *st,
		      const char *no_kinds_why, struct composition *out)
{
	memset(out, 0, sizeof *out);
	if (kinds == NULL || !(kinds->flags & PROC_SAMPLE_HAS_KINDS)) {
		snprintf(out->why, sizeof out->why, "%s",
			 no_kinds_why && no_kinds_why[0] ? no_kinds_why : "reading /proc/PID/smaps...");
		return;
	}
	out->valid = true;
	out->rss = kinds->kinds_rss;
	out->t = kinds->t;
	const uint64_t *k = kinds->kinds;
	set(out, COMP_STACKS, (int64_t)k[SMAPS_STACK], "smaps");
	set(out, COMP_FILES, (int64_t)k[SMAPS_FILE], "smaps");
	set(out, COMP_SHMEM, (int64_t)k[SMAPS_SHMEM], "smaps");

	const struct msg_memory *m = st && st->has_memory ? &st->memory : NULL;
	if (m == NULL || (!m->has_malloc && !m->has_pymalloc)) {
		set(out, COMP_HEAPS, (int64_t)(k[SMAPS_HEAP] + k[SMAPS_ARENA]), "smaps: brk heap and glibc arenas");
		set(out, COMP_ANON, (int64_t)k[SMAPS_ANON], "smaps: pymalloc arenas, large blocks, extensions' maps");
		if (st == NULL)
			say(out, "Python and native parts", "need the agent");
		else if (m == NULL)
			say(out, "Python and native parts", "this agent sends no allocator figures");
		else
			say(out, "allocator figures", m->malloc_why);
	} else {
		out->agent = true;
		/* pymalloc's blocks in use are every small object, whenever it was
		 * allocated. The larger ones went to malloc: the sampled profiler
		 * estimates those it saw (since it started). Without it, tracing
		 * (tracemalloc, or a profiler that does not split its blocks)
		 * sees objects of every size, but only since it started: the
		 * larger of it and pymalloc's blocks is shown, and what it saw
		 * beyond pymalloc's blocks is taken as Python's share of malloc. */
		int64_t small = m->has_pymalloc ? (int64_t)m->pymalloc.allocated : -1;
		int64_t share = -1; /* Python's bytes in malloc; -1: not known */
		const struct msg_profile_status *pr = st->has_profile ? &st->profile : NULL;
		if (!st->tracing && pr && pr->running && pr->live_malloc_bytes >= 0 && small >= 0) {
			share = (int64_t)pr->live_malloc_bytes;
			set(out, COMP_PYTHON, small + share, "pymalloc blocks in use + sampled profiler's larger blocks");
		} else {
			int64_t seen = -1;
			const char *seen_by = NULL;
			if (st->tracing) {
				seen = (int64_t)st->traced_current;
				seen_by = "tracemalloc";
			} else if (pr && pr->running) {
				/* less what its native hooks saw C code allocate */
				seen = (int64_t)(pr->live_bytes - pr->native_live_bytes);
				seen_by = "sampled profiler, estimate";
			}
			if (seen >= 0 && seen >= small) {
				set(out, COMP_PYTHON, seen, seen_by);
				share = small >= 0 ? seen - small : -1;
			} else if (small >= 0) {
				set(out, COMP_PYTHON, small,
				    seen_by ? "pymalloc blocks in use (tracing saw less: it started later)"
					    : "pymalloc blocks in use; objects over 512 B count as native");
				share = 0;
			} else {
				say(out, "Python objects", "tracing is off and there is no pymalloc (they count as native)");
			}
		}
		if (m->has_pymalloc)
			set(out, COMP_SLACK, at_least_0((int64_t)m->pymalloc.arena_bytes - small),
			    "pymalloc arenas less blocks in use");
		else
			say(out, "Python slack", m->pymalloc_why);
		if (m->has_malloc) {
			int64_t in_use = (int64_t)(m->malloc.in_use + m->malloc.mmapped);
			if (share >= 0)
				set(out, COMP_NATIVE, at_least_0(in_use - share), "malloc in use less Python's share");
			else
				set(out, COMP_NATIVE, in_use, "malloc in use, Python's larger objects included");
			set(out, COMP_MALLOC_FREE, (int64_t)m->malloc.free, "glibc: free, not given back");
		} else {
			say(out, "native heap and malloc free", m->malloc_why);
		}
	}
	int64_t rest = (int64_t)out->rss;
	for (int p = 0; p < COMP_REST; p++)
		if (out->part[p].shown)
			rest -= out->part[p].bytes;
	set(out, COMP_REST, rest, "RSS less the parts above");
}

void composition_to_snapshot(const struct composition *c, struct snapshot_memory *m)
{
	memset(m, 0, sizeof *m);
	if (!c->valid)
		return;
	m->has = true;
	m->rss = c->rss;
	for (int p = 0; p < COMP_PART_COUNT; p++)
		if (c->part[p].shown) {
			m->known |= 1u << p;
			m->part[p] = c->part[p].bytes;
		}
}
