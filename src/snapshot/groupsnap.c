/*
 * groupsnap.c - merged snapshots of a group of processes (see groupsnap.h).
 */
#include "snapshot/groupsnap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

/* Open addressing over the groups of one snapshot, by their key hash. */
struct groupsnap_index {
	const struct snapshot *s;
	size_t *slot; /* group index + 1; 0 is empty */
	size_t mask;
};

static size_t table_size(size_t n)
{
	size_t size = 16;
	while (size < n * 2)
		size *= 2;
	return size;
}

static void index_put(struct groupsnap_index *ix, size_t i)
{
	size_t h = (size_t)ix->s->groups[i].key_hash & ix->mask;
	while (ix->slot[h])
		h = (h + 1) & ix->mask;
	ix->slot[h] = i + 1;
}

struct groupsnap_index *groupsnap_index_new(const struct snapshot *s)
{
	struct groupsnap_index *ix = xcalloc(1, sizeof *ix);
	size_t size = table_size(s->ngroups);
	ix->s = s;
	ix->slot = xcalloc(size, sizeof *ix->slot);
	ix->mask = size - 1;
	for (size_t i = 0; i < s->ngroups; i++)
		index_put(ix, i);
	return ix;
}

const struct snapshot_group *groupsnap_find(const struct groupsnap_index *ix, const struct snapshot_group *g)
{
	for (size_t h = (size_t)g->key_hash & ix->mask; ix->slot[h]; h = (h + 1) & ix->mask) {
		const struct snapshot_group *c = &ix->s->groups[ix->slot[h] - 1];
		if (c->key_hash == g->key_hash && snapshot_group_equal(c, g))
			return c;
	}
	return NULL;
}

void groupsnap_index_free(struct groupsnap_index *ix)
{
	if (ix == NULL)
		return;
	free(ix->slot);
	free(ix);
}

/* The index of a snapshot that is being built: grows with it. Returns true
 * when it was built again (with every group, the newest too). */
static bool index_grow(struct groupsnap_index *ix)
{
	if (ix->s->ngroups * 2 <= ix->mask + 1)
		return false;
	free(ix->slot);
	size_t size = table_size(ix->s->ngroups);
	ix->slot = xcalloc(size, sizeof *ix->slot);
	ix->mask = size - 1;
	for (size_t i = 0; i < ix->s->ngroups; i++)
		index_put(ix, i);
	return true;
}

struct snapshot *groupsnap_merge(struct snapshot *const *snaps, size_t n, bool *mixed, char *err,
				 size_t errlen)
{
	if (mixed)
		*mixed = false;
	if (n == 0) {
		snprintf(err, errlen, "no snapshot to merge");
		return NULL;
	}
	const struct snapshot *first = snaps[0];
	for (size_t i = 1; i < n; i++) {
		if (snaps[i]->key != first->key || snaps[i]->cumulative != first->cumulative) {
			snprintf(err, errlen, "the snapshot of pid %u is by %s, that of pid %u by %s: take them with "
				 "the same --key", snaps[i]->pid, snapshot_key_name(snaps[i]->key), first->pid,
				 snapshot_key_name(first->key));
			return NULL;
		}
		if (mixed && !snapshot_same_source(first, snaps[i]))
			*mixed = true;
	}
	struct snapshot *m = snapshot_new(first->key, first->cumulative, first->nframe);
	m->source = first->source;
	m->interval = first->interval;
	struct groupsnap_index *ix = groupsnap_index_new(m);
	/* The RSS sums only when every process's is known; each part where
	 * every process knows it. */
	m->mem.has = true;
	m->mem.known = ~0u;
	for (size_t i = 0; i < n; i++) {
		const struct snapshot_memory *sm = &snaps[i]->mem;
		m->mem.has &= sm->has;
		m->mem.known &= sm->known;
		m->mem.rss += sm->rss;
		for (int p = 0; p < SNAPSHOT_MEM_PARTS; p++)
			m->mem.part[p] += sm->part[p];
	}
	if (!m->mem.has)
		memset(&m->mem, 0, sizeof m->mem);
	m->mem.known &= (1u << SNAPSHOT_MEM_PARTS) - 1;
	for (int p = 0; p < SNAPSHOT_MEM_PARTS; p++)
		if (!(m->mem.known & (1u << p)))
			m->mem.part[p] = 0;
	for (size_t i = 0; i < n; i++) {
		const struct snapshot *s = snaps[i];
		if (s->time > m->time)
			m->time = s->time;
		if (s->nframe > m->nframe)
			m->nframe = s->nframe;
		m->traced_current += s->traced_current;
		m->traced_peak += s->traced_peak;
		m->total_size += s->total_size;
		m->total_count += s->total_count;
		m->ntraces += s->ntraces;
		for (size_t k = 0; k < s->ngroups; k++) {
			const struct snapshot_group *g = &s->groups[k];
			struct snapshot_group *have = (struct snapshot_group *)groupsnap_find(ix, g);
			if (have) {
				have->size += g->size;
				have->count += g->count;
				continue;
			}
			/* The index holds positions, not pointers: the group array may move. */
			struct snapshot_group *ng = snapshot_add_group(m, g->size, g->count, g->frames,
								       g->nframes, g->line);
			if (g->native)
				snapshot_group_set_native(ng, true);
			if (!index_grow(ix))
				index_put(ix, m->ngroups - 1);
		}
	}
	groupsnap_index_free(ix);
	return m;
}

void groupsnap_spread(const struct snapdiff *diff, struct snapshot *const *olds, struct snapshot *const *news,
		      size_t n, uint32_t *grew, uint32_t *seen)
{
	memset(grew, 0, diff->n * sizeof *grew);
	memset(seen, 0, diff->n * sizeof *seen);
	for (size_t i = 0; i < n; i++) {
		struct groupsnap_index *io = groupsnap_index_new(olds[i]), *in = groupsnap_index_new(news[i]);
		for (size_t k = 0; k < diff->n; k++) {
			const struct snapshot_group *key = snapdiff_entry_group(&diff->entries[k]);
			const struct snapshot_group *o = groupsnap_find(io, key), *w = groupsnap_find(in, key);
			if (o || w)
				seen[k]++;
			if ((w ? w->size : 0) > (o ? o->size : 0))
				grew[k]++;
		}
		groupsnap_index_free(io);
		groupsnap_index_free(in);
	}
}

void groupsnap_presence(const struct snapshot *merged, struct snapshot *const *snaps, size_t n, uint32_t *in)
{
	memset(in, 0, merged->ngroups * sizeof *in);
	for (size_t i = 0; i < n; i++) {
		struct groupsnap_index *ix = groupsnap_index_new(snaps[i]);
		for (size_t k = 0; k < merged->ngroups; k++)
			in[k] += groupsnap_find(ix, &merged->groups[k]) != NULL;
		groupsnap_index_free(ix);
	}
}

void groupsnap_spread_text(char *buf, size_t len, uint32_t grew, bool root_grew, bool have_root, size_t n)
{
	if (!have_root)
		snprintf(buf, len, "%u of %zu", grew, n);
	else if (n == 1)
		snprintf(buf, len, "%s", root_grew ? "master" : "-");
	else
		snprintf(buf, len, "%s%u of %zu worker%s", root_grew ? "master + " : "", grew - (root_grew ? 1 : 0), n - 1,
			 n == 2 ? "" : "s");
}
