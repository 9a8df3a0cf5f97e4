/*
 * groupsnap.h - snapshots of a service's processes taken together: their
 * sum, and for each location in how many of the processes it is, or grew.
 *
 * A group snapshot is one snapshot per process (files in a directory, one
 * per pid). Merged, the groups of every process that share a key add up:
 * the service's memory by line. A diff of two merged snapshots says what
 * the service gained at a line; the spread says whether every worker gained
 * it or one did ("grew in 1 of 3"), which a sum cannot tell.
 */
#ifndef PMT_SNAPSHOT_GROUPSNAP_H
#define PMT_SNAPSHOT_GROUPSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/snapdiff.h"
#include "snapshot/snapshot.h"

/*
 * The sum of N snapshots (all with the same key and cumulative flag, else
 * NULL and ERR): each key's size and count summed, totals summed, the
 * newest time, pid 0, the source of the first (they should all be alike;
 * *MIXED, when not NULL, says whether they were not). N >= 1.
 */
struct snapshot *groupsnap_merge(struct snapshot *const *snaps, size_t n, bool *mixed, char *err,
				 size_t errlen);

/* A group's key looked up in one snapshot: an index over its groups. */
struct groupsnap_index;
struct groupsnap_index *groupsnap_index_new(const struct snapshot *s);
/* The group of S with G's key, or NULL. */
const struct snapshot_group *groupsnap_find(const struct groupsnap_index *ix, const struct snapshot_group *g);
void groupsnap_index_free(struct groupsnap_index *ix);

/*
 * For each entry of DIFF (a diff of two merged snapshots), how many of the N
 * pairs OLDS[i] -> NEWS[i] (one process each) have the entry's group grown
 * (GREW[k]: more bytes in NEWS[i] than in OLDS[i]) and present on either
 * side (SEEN[k]). GREW and SEEN have DIFF->n entries.
 */
void groupsnap_spread(const struct snapdiff *diff, struct snapshot *const *olds, struct snapshot *const *news,
		      size_t n, uint32_t *grew, uint32_t *seen);

/* "1 of 3 workers", "master + 2 of 3 workers", "master" when one of the N
 * processes is the service's root (HAVE_ROOT), else "1 of 4". GREW counts
 * the root too when ROOT_GREW. */
void groupsnap_spread_text(char *buf, size_t len, uint32_t grew, bool root_grew, bool have_root, size_t n);

/* For each group of MERGED (groupsnap_merge of SNAPS), in how many of the
 * N snapshots it is. IN has MERGED->ngroups entries. */
void groupsnap_presence(const struct snapshot *merged, struct snapshot *const *snaps, size_t n, uint32_t *in);

#endif
