/*
 * composition.h - what a process's RSS is made of.
 *
 * Two sources meet here: /proc/PID/smaps, read by the sampler (resident
 * bytes by kind of mapping, smaps.h), and the agent's status (the traced
 * heap or the sampled profiler's estimate, glibc malloc's and pymalloc's
 * totals). With both, the RSS of the smaps sample is split into
 *
 *   Python objects   pymalloc's blocks in use (every small object) and
 *                    the sampled profiler's estimate of its blocks over
 *                    512 B (malloc's; those allocated since it started).
 *                    With tracemalloc instead: the larger of pymalloc's
 *                    blocks and the traced bytes (every size, but only
 *                    since tracing started)
 *   Python slack     pymalloc's arenas less its blocks in use
 *   native heap      malloc's blocks in use less Python's share of them
 *                    (the profiler's larger blocks, or what tracing saw
 *                    beyond pymalloc's blocks)
 *   malloc free      free bytes in malloc's heaps, not given back
 *   thread stacks, mapped files, shared memory (from smaps)
 *   unexplained      the rest: RSS less all of the above. Negative when
 *                    free memory counted above is not resident
 *
 * Without the agent's figures, the anonymous memory is split by what smaps
 * alone can tell: malloc's heaps (brk heap and glibc arenas) and other
 * anonymous mappings. Every part says where its number comes from; what
 * could not be had is said, never shown as zero.
 */
#ifndef PMT_SESSION_COMPOSITION_H
#define PMT_SESSION_COMPOSITION_H

#include <stdbool.h>
#include <stdint.h>

#include "ipc/msg.h"
#include "proc/proc_sample.h"

enum comp_part {
	COMP_PYTHON,      /* Python objects */
	COMP_SLACK,       /* pymalloc's free room */
	COMP_NATIVE,      /* malloc in use, not Python's */
	COMP_MALLOC_FREE, /* malloc's free bytes: fragmentation */
	COMP_HEAPS,       /* /proc only: brk heap + glibc arenas */
	COMP_ANON,        /* /proc only: other anonymous mappings */
	COMP_STACKS,
	COMP_FILES,
	COMP_SHMEM,
	COMP_REST,        /* unexplained (signed) */
	COMP_PART_COUNT
};

struct comp_value {
	bool shown;          /* this part is in the composition */
	int64_t bytes;       /* only COMP_REST may be negative */
	const char *source;  /* where the number comes from (static text) */
};

struct composition {
	bool valid;          /* false: no smaps sample yet (see why) */
	bool agent;          /* the agent's figures were used */
	uint64_t rss;        /* of the smaps sample: what the parts add up to */
	double t;            /* its time (monotonic seconds) */
	struct comp_value part[COMP_PART_COUNT];
	char why[240];       /* what is missing, and why ("" when nothing) */
};

/* Names ("Python objects", ...: snapshot_mem_label) and one-letter keys
 * for the bar. */
const char *comp_part_name(enum comp_part p);
char comp_part_key(enum comp_part p);

struct snapshot_memory;
/* Into a snapshot's record of its process's memory (snapshot.h). */
void composition_to_snapshot(const struct composition *c, struct snapshot_memory *m);

/*
 * KINDS is the newest sample that has PROC_SAMPLE_HAS_KINDS, or NULL; ST the
 * agent's newest status, or NULL. NO_KINDS_WHY says why there is no smaps
 * sample when KINDS is NULL ("" when one is just not there yet).
 */
void composition_make(const struct proc_sample *kinds, const struct msg_status *st,
		      const char *no_kinds_why, struct composition *out);

#endif
