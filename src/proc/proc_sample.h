/*
 * proc_sample.h - one reading of a process's memory from /proc, and the pure
 * parsers that produce it.
 *
 * The parsers take the text of a /proc file (already read) and fill a sample,
 * so they can be tested on fixture files captured from real processes. The
 * sampler thread (proc_sampler.c) does the reading.
 */
#ifndef PMT_PROC_PROC_SAMPLE_H
#define PMT_PROC_PROC_SAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc/smaps.h"

enum {
	PROC_SAMPLE_HAS_STATUS = 1u << 0, /* rss breakdown, hwm, swap valid */
	PROC_SAMPLE_HAS_SMAPS = 1u << 1,  /* pss, private valid (this sample) */
	PROC_SAMPLE_GONE = 1u << 2,       /* the process has exited */
	PROC_SAMPLE_HAS_KINDS = 1u << 3,  /* kinds valid (this sample) */
	PROC_SAMPLE_KINDS_TOO_BIG = 1u << 4, /* smaps was over what the sampler reads */
};

/* All sizes in bytes. t is CLOCK_MONOTONIC seconds. */
struct proc_sample {
	double t;
	uint32_t flags;
	int32_t threads;
	char state; /* from status: R, S, D, Z, T, ... */
	uint64_t vsize;
	uint64_t rss;
	uint64_t anon, file, shmem;
	uint64_t swap;
	uint64_t hwm;
	uint64_t pss, pss_anon, pss_file, pss_shmem;
	uint64_t private_clean, private_dirty;
	uint64_t swap_pss;
	/* Resident bytes by kind of mapping, from /proc/PID/smaps (smaps.h),
	 * and what reading it took (seconds). */
	uint64_t kinds[SMAPS_KIND_COUNT];
	uint64_t kinds_rss;
	uint32_t kinds_stacks, kinds_arenas;
	double kinds_cost;
};

/* Parse /proc/PID/statm: "size resident shared text lib data dt" in pages.
 * Fills vsize and rss. Returns 0, or -1 when the text is malformed. */
int proc_sample_parse_statm(const char *text, long page_size, struct proc_sample *s);

/* The RSS of PID now, from one read of /proc/PID/statm (microseconds: fit
 * for any thread). Returns 0, or -1 when it cannot be read. */
int proc_read_rss(pid_t pid, uint64_t *rss);

/* Parse /proc/PID/status: VmRSS, RssAnon, RssFile, RssShmem, VmHWM, VmSwap,
 * VmSize, Threads, State. Sets PROC_SAMPLE_HAS_STATUS. Returns 0, or -1 when no
 * VmRSS line is present (a kernel thread or a zombie has none). */
int proc_sample_parse_status(const char *text, struct proc_sample *s);

/* Parse /proc/PID/smaps_rollup: Pss, Pss_Anon, Pss_File, Pss_Shmem,
 * Private_Clean, Private_Dirty, SwapPss. Sets PROC_SAMPLE_HAS_SMAPS.
 * Returns 0, or -1 when no Pss line is present. */
int proc_sample_parse_smaps_rollup(const char *text, struct proc_sample *s);

/* Parse /proc/PID/stat for the start time (field 22, clock ticks since boot).
 * The comm field may contain spaces and parentheses: the parser works from the
 * last ')'. Returns 0, or -1 when malformed. */
int proc_sample_parse_stat_start(const char *text, unsigned long long *start_ticks);

/* Turn /proc/PID/cmdline (NUL-separated, len bytes) into one display-safe line
 * in out (arguments separated by spaces, the rest as strsafe_copy makes it). */
void proc_sample_cmdline_text(const char *raw, size_t len, char *out, size_t outlen);

#endif
