/*
 * snapshot_intern.h - what the snapshot files share with each other and
 * with nobody else: the string pool, the group index, the JSON writer's
 * buffer. Not for use outside src/snapshot.
 */
#ifndef PMT_SNAPSHOT_SNAPSHOT_INTERN_H
#define PMT_SNAPSHOT_SNAPSHOT_INTERN_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot/snapshot.h"

/* The snapshot's arena (snapshot.c): N bytes that live as long as it. */
void *snapshot_pool_alloc(struct snapshot_pool *p, size_t n);
/* S[0..len) stored once per snapshot; returns the stored copy. */
const char *snapshot_pool_intern(struct snapshot_pool *p, const char *s, size_t len);

/* An open-addressing index of groups by key (snapshot.c). */
struct gindex {
	uint32_t *slot;
	uint64_t *hash; /* per slot */
	size_t cap;
};
void snapshot_gindex_init(struct gindex *ix, size_t n);
void snapshot_gindex_done(struct gindex *ix);
/* The index of a group equal to G (hash H) in GROUPS, or IDX after adding it. */
size_t snapshot_gindex_find_or_add(struct gindex *ix, const struct snapshot_group *groups,
				   const struct snapshot_group *g, uint64_t h, size_t idx);
/* qsort order of group pointers: tracemalloc's (size, then location). */
int snapshot_group_ptr_cmp_size(const void *pa, const void *pb);

/* The JSON writer (snapshot_write.c), also used by the printers. */
struct sbuf {
	char *p;
	size_t len, cap;
};
void snapshot_sb_json_string(struct sbuf *b, const char *str);
void snapshot_sb_frames(struct sbuf *b, const struct snapshot_group *g);
char *snapshot_serialize_groups(const struct snapshot *snap, const struct snapshot_group *const *order, size_t n,
				size_t *len);

#endif
