/*
 * tracer.h - who holds a process: the debugger attached to it (TracerPid)
 * and whether it is stopped, named for messages.
 *
 * Only one tracer can attach to a process at a time, so a second gdb fails
 * with "ptrace: Operation not permitted" although nothing is wrong with the
 * permissions: typically two pmt-tops attaching to the same process at once.
 * These functions say who holds it instead, e.g. "process 812 (gdb, started
 * by pmt-top pid 790)". Everything here reads /proc and may race with the
 * processes it names; the answers are for messages and for deciding to wait,
 * never for trusting anything.
 */
#ifndef PMT_ATTACH_TRACER_H
#define PMT_ATTACH_TRACER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tracer {
	pid_t pid;            /* TracerPid, 0 when not traced */
	char comm[32];        /* its name (the process controls it), "" when unreadable */
	pid_t parent;         /* its parent, 0 when unknown */
	char parent_comm[32]; /* the parent's name, "" when unreadable */
};

/*
 * Fills T for PID. Returns 1 when PID is traced, 0 when it is not, -1 when
 * its status cannot be read (gone, or hidden from us). Any thread.
 */
int tracer_find(pid_t pid, struct tracer *t);

/* True when T's tracer was started by a pmt-top (its gdb loading the agent). */
bool tracer_is_pmt_top(const struct tracer *t);

/* "process 812 (gdb, started by pmt-top pid 790)" into BUF; returns BUF. */
const char *tracer_describe(const struct tracer *t, char *buf, size_t len);

/*
 * The state letter of /proc/PID/stat: 'R', 'S', 'D', 'T' (stopped by a
 * signal), 't' (stopped by its tracer), 'Z', ...; 0 when unreadable.
 */
char tracer_proc_state(pid_t pid);

/* Reads /proc/PID/comm into BUF (newline dropped; "" when unreadable). */
const char *tracer_comm(pid_t pid, char *buf, size_t len);

#endif
