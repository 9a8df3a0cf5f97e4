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
 *   mappings right above an inaccessible guard of at most 64 KiB);
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
	uint32_t mappings;
	uint32_t thread_stacks;          /* stacks found beside the main one */
	uint32_t arenas;                 /* glibc arenas beside the main one */
};

/* "file", "shmem", "heap", "arena", "stack", "anon", "other". */
const char *smaps_kind_name(enum smaps_kind k);

/* Parses the whole text of a smaps file (NUL-terminated) into T. Returns 0,
 * or -1 when the text has no mapping at all. Lines it does not know are
 * skipped. */
int smaps_parse(const char *text, struct smaps_totals *t);

#endif
