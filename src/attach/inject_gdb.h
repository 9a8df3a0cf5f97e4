/*
 * inject_gdb.h - run a Python snippet inside a CPython 3.8+ process with gdb.
 *
 * gdb attaches (-batch -nx), maps one anonymous page in the target by calling
 * mmap, writes the snippet into it with plain memory writes (a string literal
 * in a gdb `call` would make gdb call the target's malloc), then either
 *  - queues it: Py_AddPendingCall(PyRun_SimpleString, page), so the main
 *    thread runs it at its next safe point with the GIL held (INJECT_GDB), or
 *  - runs it at once on the main thread: PyGILState_Ensure,
 *    PyRun_SimpleString, PyGILState_Release (INJECT_DIRECT), or
 *  - decides once attached (INJECT_GDB_ENTER, what the automatic method uses
 *    on a main thread parked in a system call): if the main thread is still
 *    stopped in the system call pmt-top saw (its pc is the one /proc gave)
 *    and PyGILState_Check() says it does not hold the GIL, it is in a
 *    blocking call that released the GIL, where Python state is consistent,
 *    so the snippet runs there as in DIRECT; if it holds the GIL, nothing is
 *    done (no Python code can run until that call returns); if it moved on,
 *    the snippet is queued as in the first case,
 * and detaches. `set unwindonsignal on` undoes a call that faults, and no
 * breakpoint is ever inserted. The output carries markers so the caller
 * knows the phase: gdb must not be killed during a call inside the target
 * (the target would die), only before attaching or between calls.
 */
#ifndef PMT_ATTACH_INJECT_GDB_H
#define PMT_ATTACH_INJECT_GDB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "attach/inject_child.h"
#include "attach/pyproc.h"

/*
 * Run-time addresses of the functions gdb calls, when pmt-top resolved them
 * from the ELF files itself. gdb then loads no shared-library symbols at all
 * (auto-solib-add off) and the executable's before attaching, which keeps
 * the target stopped for a few milliseconds instead of hundreds.
 */
struct inject_gdb_addrs {
	uint64_t mmap;
	uint64_t add_pending_call;
	uint64_t run_simple_string;
	uint64_t gil_ensure;
	uint64_t gil_release;
	uint64_t gil_check;
};

/* ENTER needs the system call's registers by name: x86-64 only. */
#if defined(__x86_64__)
#define INJECT_GDB_CAN_ENTER 1
#else
#define INJECT_GDB_CAN_ENTER 0
#endif

enum inject_gdb_mode {
	INJECT_GDB_PENDING, /* queue with Py_AddPendingCall */
	INJECT_GDB_DIRECT,  /* run on the main thread where it stopped */
	INJECT_GDB_ENTER,   /* decide when attached (see above) */
};

/* What gdb did (its "PMT-WAY" line). */
enum inject_gdb_way {
	INJECT_GDB_WAY_NONE,
	INJECT_GDB_WAY_PENDING, /* queued */
	INJECT_GDB_WAY_DIRECT,  /* ran it on the main thread */
	INJECT_GDB_WAY_HELD,    /* the main thread holds the GIL in its system call: nothing done */
};

struct inject_gdb {
	struct inject_child child;
	pid_t pid;
	enum inject_gdb_mode mode;
	enum inject_gdb_way way;
	double t_attached, t_detached; /* monotonic ms, 0 until seen */
	int rc_seen, rc;               /* the call's return value */
	int stop_sent;                 /* we asked gdb to stop */
};

/*
 * Writes gdb's commands for SNIPPET (NUL-free text under 4000 bytes) into a
 * sealed memory file and starts GDB (program name or path) on PID, with the
 * signals that would kill it inside a call blocked (see inject_child_opts). ADDRS, when not
 * NULL, gives every function's address (see above); otherwise gdb resolves
 * the names from the target's symbols. AT (ENTER only) is where /proc said
 * the main thread waits: gdb enters only if it finds the thread in that very
 * call (same system call, same first argument, same pc), since another wait
 * at the same pc may be one for the GIL, which must not be nested. Returns
 * 0, or -1 with a sentence in ERR (gdb missing: "apt-get install gdb").
 */
int inject_gdb_start(struct inject_gdb *g, const char *gdb, pid_t pid, enum inject_gdb_mode mode,
		     const struct pyproc_syscall *at, const char *snippet,
		     const struct inject_gdb_addrs *addrs, char *err, size_t errlen);

/*
 * Resolves ADDRS for the process described by PI (pyproc_detect): the C API
 * from the interpreter image, mmap from the libc mapped in the process.
 * Returns 0, or -1 when any of them cannot be found (then let gdb resolve).
 */
struct pyproc_info;
int inject_gdb_resolve(const struct pyproc_info *pi, struct inject_gdb_addrs *addrs);

/*
 * Advances; never blocks. Returns 0 while gdb runs, 1 when it detached after
 * a successful call, -1 on failure with a sentence (cause and remedy) in ERR.
 */
int inject_gdb_poll(struct inject_gdb *g, char *err, size_t errlen);

/* 1 while gdb executes a function call inside the target. */
int inject_gdb_in_call(const struct inject_gdb *g);

/* 1 once gdb reported it was attached (and not yet detached). */
int inject_gdb_attached(const struct inject_gdb *g);

/*
 * Stops gdb if that is safe. gdb runs with every catchable terminating signal
 * blocked (see inject_child_opts.shield): once attached, it is never stopped,
 * only left to finish its short script (a call cut short, even by gdb's own
 * SIGINT handling, could leave the target holding a lock or the GIL).
 * Before it attached, or after it detached, it is killed, and the target is
 * sent SIGCONT in case the attach stop was left pending. Returns 1 when gdb
 * is gone, 0 when it was left running.
 */
int inject_gdb_stop(struct inject_gdb *g);

/* Releases the pipe. gdb must have exited or been abandoned. */
void inject_gdb_done(struct inject_gdb *g);

#endif
