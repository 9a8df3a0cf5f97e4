/*
 * smaps.h - where a process's resident memory is, by kind of mapping, from
 * /proc/PID/smaps.
 *
 * Each mapping's Rss (and Swap) goes to one kind:
 * - file: a file mapped from disk (code, data, mapped files);
 * - shmem: shared memory (/dev/shm, SysV, memfd, shared anonymous);
 * - heap: the brk heap ([heap]), which is glibc's main malloc arena;
 * - arena: glibc's other malloc arenas (threads' arenas: anonymous heaps that
 *   start on a 64 MiB boundary and reserve the rest of it inaccessible);
 * - stack: the main thread's [stack] and the threads' stacks (anonymous
 *   mappings right above an inaccessible guard of at most 1 MiB);
 * - anon: every other anonymous mapping (large malloc blocks, which glibc
 *   maps on their own; pymalloc's arenas; what C extensions map);
 * - other: the kernel's ([vdso], [vvar], [vsyscall]).
 * The arena and stack rules are glibc's layout, read off the mappings: on
 * musl, or with another allocator preloaded, arenas read as anon. The
 * parser takes the text (the target controls its file names: a name is
 * only looked at, never trusted).
 */
#ifndef PMT_PROC_SMAPS_H
#define PMT_PROC_SMAPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum smaps_kind {
	SMAPS_FILE,
	SMAPS_SHMEM,
	SMAPS_HEAP,
	SMAPS_ARENA,
	SMAPS_STACK,
	SMAPS_ANON,
	SMAPS_OTHER,
	SMAPS_KIND_COUNT
};

struct smaps_totals {
	uint64_t rss[SMAPS_KIND_COUNT];  /* bytes */
	uint64_t swap[SMAPS_KIND_COUNT];
	uint64_t rss_all;
	/* What smaps_rollup sums, from the same read: PSS (split by the kind
	 * of page: a mapping's anonymous share of its PSS is its Anonymous
	 * share of its Rss), private pages, and the swapped share. */
	uint64_t pss, pss_anon, pss_file, pss_shmem;
	uint64_t private_clean, private_dirty, swap_pss;
	uint32_t mappings;
	uint32_t thread_stacks;          /* stacks found beside the main one */
	uint32_t arenas;                 /* glibc arenas beside the main one */
};

/* "file", "shmem", "heap", "arena", "stack", "anon", "other". */
const char *smaps_kind_name(enum smaps_kind k);

/* Parses the whole text of a smaps file (NUL-terminated) into T. THREADS is
 * the process's thread count, or 0 when not known: there are never more
 * thread stacks than threads beside the main one (other memory above a
 * guard page counts as anon; the largest candidates are taken as the
 * stacks). Returns 0, or -1 when the text has no mapping at all. Lines it
 * does not know are skipped. */
int smaps_parse(const char *text, int threads, struct smaps_totals *t);

/* The text is ~1 KiB per mapping: 64 MiB is some 60,000 mappings. */
#define SMAPS_MAX_TEXT ((size_t)64 << 20)

/* Reads the whole of the smaps file open on FD (from its start) into *TEXT,
 * grown as needed (*CAP its size; both may start NULL and 0), and
 * NUL-terminates it. Returns its length, or -1 with errno (EFBIG: over
 * SMAPS_MAX_TEXT). */
ssize_t smaps_read_fd(int fd, char **text, size_t *cap);

/* Reads /proc/PID/smaps and parses it into T; *COST (if not NULL) gets the
 * seconds it took. Returns 0, or -1 with a sentence in ERR. */
int smaps_read(pid_t pid, struct smaps_totals *t, double *cost, char *err, size_t errlen);

#endif
