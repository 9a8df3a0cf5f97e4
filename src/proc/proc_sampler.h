/*
 * proc_sampler.h - a thread that samples a process's memory from /proc.
 *
 * It holds /proc/PID/{statm,status,smaps_rollup} open and preads them: a held
 * fd returns fresh values and goes bad (ESRCH) when the process exits, so a
 * recycled PID is never mistaken for the target. statm and status are read every
 * interval (a few microseconds); smaps_rollup, which walks the target's page
 * tables under its mmap lock, is read less often and backs off when it is slow,
 * and so is the whole smaps, for the resident memory by kind of mapping.
 * Samples travel to the UI thread through an SPSC ring; an eventfd wakes the
 * UI's poll() loop.
 */
#ifndef PMT_PROC_PROC_SAMPLER_H
#define PMT_PROC_PROC_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/monotime.h" /* monotime_now(): the time base of proc_sample.t */
#include "proc/proc_sample.h"

#define PROC_SAMPLER_MIN_INTERVAL 0.05
#define PROC_SAMPLER_MAX_INTERVAL 60.0

struct proc_sampler;

enum proc_sampler_error {
	PROC_SAMPLER_OK = 0,
	PROC_SAMPLER_NO_PROCESS,  /* no such pid (or a kernel thread) */
	PROC_SAMPLER_PERMISSION,  /* /proc files exist but are not ours to read */
	PROC_SAMPLER_FAILED,      /* anything else (out of fds, ...) */
};

/* Open the /proc files of pid. On failure returns NULL, sets *why (if not NULL)
 * and writes a one-line reason into err. Does not start the thread. */
struct proc_sampler *proc_sampler_new(pid_t pid, double interval,
				      enum proc_sampler_error *why,
				      char *err, size_t errlen);

/* Take one sample synchronously (before start, or from tests). Returns 0, or -1
 * when the process is gone. Not to be called while the thread runs. The
 * kinds of memory come from the thread only. */
int proc_sampler_read(struct proc_sampler *ps, struct proc_sample *out, bool with_smaps);

/* Start the sampling thread. Returns 0 or -1 (errno set). */
int proc_sampler_start(struct proc_sampler *ps);

/* Read the kinds of memory (the whole smaps) at once, whenever they were
 * last read: a snapshot wants them of its moment. Thread-safe. */
void proc_sampler_kinds_now(struct proc_sampler *ps);

/* Change the interval (clamped to the limits); thread-safe, takes effect at once. */
void proc_sampler_set_interval(struct proc_sampler *ps, double seconds);
double proc_sampler_interval(const struct proc_sampler *ps);

/* A fd that polls readable when samples wait in the ring. */
int proc_sampler_wake_fd(const struct proc_sampler *ps);

/* Consumer side (one thread only): move up to max samples out of the ring and
 * clear the wake fd. Returns the number moved. */
size_t proc_sampler_drain(struct proc_sampler *ps, struct proc_sample *out, size_t max);

/* Why PSS/private figures are missing ("" when smaps_rollup is readable). The
 * text is fixed before the thread starts. */
const char *proc_sampler_smaps_note(const struct proc_sampler *ps);

/* Why the kinds of memory are missing ("" when /proc/PID/smaps is
 * readable; a sample says when it was too big to read). Fixed before the
 * thread starts. */
const char *proc_sampler_kinds_note(const struct proc_sampler *ps);

/* Samples dropped because the ring was full (the UI did not drain). */
unsigned long proc_sampler_dropped(const struct proc_sampler *ps);

/* Stop the thread (if started), close everything. NULL is accepted. */
void proc_sampler_free(struct proc_sampler *ps);


#endif
