/*
 * inject.h - load the Python agent into an already-running CPython process.
 *
 * pmt-top attaches to a process that did not start the agent itself by
 * making the target run a small bootstrap file, written to a directory of
 * ours (mode 0711) in the target's /tmp, seen through /proc/PID/root, with a
 * copy of the agent when the target cannot see pmt-top's (docs/security.md
 * says what the target's user can and cannot do to it):
 *
 *   import sys; put NATIVE and AGENT on sys.path; import pmt_agent;
 *   pmt_agent.start()
 *
 * wrapped so that no exception reaches the host program (one line goes to
 * its stderr instead) and idempotent (pmt_agent.start() is). The bootstrap
 * writes "ok" or the error into a status file that inject_poll watches, so
 * failures inside the target are reported too.
 *
 * Methods:
 *  - INJECT_PEP768: 3.14+. Writes a PEP 768 remote execution request into the
 *    target from C (no 3.14 interpreter needed here; see inject_pep768.h).
 *  - INJECT_REMOTE_EXEC: 3.14+. Runs the target's own interpreter with
 *    sys.remote_exec(PID, PATH).
 *  - INJECT_GDB: 3.8+. gdb maps a page in the target, writes the bootstrap
 *    loader into it and queues it with Py_AddPendingCall: the main thread
 *    runs it at its next safe point with the GIL held. The target is stopped
 *    only while gdb is attached (a few hundred ms) and never left stopped.
 *  - INJECT_DIRECT: 3.8+, via gdb: PyGILState_Ensure, PyRun_SimpleString,
 *    PyGILState_Release on the main thread right where it stopped. For a main
 *    thread parked in a system call for long (sleep, accept, select) with the
 *    GIL released; refused when the main thread is running, never chosen
 *    automatically.
 *  - INJECT_AUTO: PEP768 on 3.14+, GDB on 3.8-3.13, and what suits a main
 *    thread parked in a system call (a worker that waits in select, accept,
 *    queue.get or sleep while other threads work): on 3.14+ the request goes
 *    to a thread that runs Python (PEP 768 lets any thread take it); else,
 *    with gdb, the bootstrap runs on the main thread itself once gdb has
 *    checked, stopped, that it is still in that call and does not hold the
 *    GIL (INJECT_GDB_ENTER in inject_gdb.h). A main thread that holds the GIL
 *    while it waits cannot be entered safely: refused at once, with why.
 *    A main thread that parks only after the request was queued gets the
 *    same treatment once (after WAITING_AFTER_MS).
 * A target that opted out of remote debugging (3.14: PYTHON_DISABLE_REMOTE_DEBUG,
 * -X disable-remote-debug) is refused by every method.
 *
 * Everything is asynchronous: inject_start returns at once (PEP 768 writes
 * take microseconds; gdb and the remote-exec helper are child processes) and
 * the caller's poll loop calls inject_poll. Success proper is the agent's
 * socket answering; this module reports progress and failures.
 */
#ifndef PMT_ATTACH_INJECT_H
#define PMT_ATTACH_INJECT_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "attach/pyproc.h"

enum inject_method {
	INJECT_AUTO,
	INJECT_PEP768,
	INJECT_REMOTE_EXEC,
	INJECT_GDB,
	INJECT_DIRECT,
};

/* "auto", "pep768", "remote-exec", "gdb", "direct" -> method; -1 if unknown. */
int inject_method_from_name(const char *name);
/* The name above for M ("auto" for out-of-range values). */
const char *inject_method_name(enum inject_method m);

/* What pmt-top knows about a target before injecting (nothing is written). */
struct inject_probe {
	struct pyproc_info proc;  /* version, free-threading, pids, image */
	int remote_debug;         /* 3.14+: 1 enabled, 0 opted out; -1 not applicable/unknown */
	int gdb_available;        /* an executable gdb was found */
	char gdb_path[PATH_MAX];
	enum inject_method auto_method; /* what INJECT_AUTO would use */
	enum pyproc_thread_state main_thread;
};

/*
 * Probes PID. Returns 0 when the process exists and could be inspected (it
 * may still be unsupported: see pyproc_check_supported), else -1 with a
 * sentence in ERR (no such process, permission denied). Fast; any thread.
 */
int inject_probe(pid_t pid, struct inject_probe *out, char *err, size_t errlen);

struct inject_req {
	pid_t pid;
	enum inject_method method;
	const char *agent_dir;  /* directory that contains the pmt_agent package */
	const char *native_dir; /* directory of the optional _pmt_native module, or NULL */
	int timeout_ms;         /* whole injection, until the bootstrap ran; <= 0: 10000 */
	const char *gdb;        /* gdb program; NULL: "gdb" from PATH */
};

enum inject_state {
	INJECT_RUNNING, /* working, or the target has not reached a safe point yet */
	INJECT_WAITING, /* the request is queued but the main thread is in a system call */
	INJECT_DONE,    /* the bootstrap ran and pmt_agent.start() returned */
	INJECT_FAILED,  /* see the status sentence */
};

struct inject;

/*
 * Starts injecting into REQ->pid. Checks first (process exists, supported
 * version, permission, opt-out, gdb present) and returns NULL with a
 * one-sentence cause and remedy in ERR when the injection cannot start.
 * The strings in REQ are copied. The returned object must be released with
 * inject_free, and should be kept until the agent answered: it owns the
 * bootstrap file the target reads. Not thread-safe: use one thread.
 */
struct inject *inject_start(const struct inject_req *req, char *err, size_t errlen);

/*
 * Advances the injection without blocking and returns its state; STATUS
 * receives one sentence for a status line ("attaching with gdb...", "main
 * thread is in a system call; ...", the failure's cause and remedy). Call it
 * whenever inject_fd() is readable and at least every 100 ms otherwise.
 * Once DONE or FAILED, the state does not change.
 */
enum inject_state inject_poll(struct inject *ij, char *status, size_t statuslen);

/* A descriptor to poll for input while a child (gdb, remote-exec helper)
 * runs, or -1. It changes over time: ask again after each inject_poll. */
int inject_fd(const struct inject *ij);

/* How the bootstrap got in (or is meant to). */
enum inject_way {
	INJECT_WAY_QUEUED,       /* queued for the main thread's next safe point */
	INJECT_WAY_OTHER_THREAD, /* 3.14+: queued for another thread that runs Python */
	INJECT_WAY_PARKED,       /* run on the parked main thread, its GIL released */
	INJECT_WAY_DIRECT,       /* --inject-method direct */
};

/* "queued", "other-thread", "parked", "direct". */
const char *inject_way_name(enum inject_way w);

struct inject_stats {
	enum inject_method method;  /* the method actually used */
	enum inject_way way;
	double elapsed_ms;          /* since inject_start */
	double child_ms;            /* lifetime of gdb / the helper, -1 if none */
	double attached_ms;         /* gdb: first command after attach -> detached, -1 if n/a */
	double bootstrap_ms;        /* inject_start -> the bootstrap reported, -1 if not yet */
};
void inject_get_stats(const struct inject *ij, struct inject_stats *st);

/*
 * Releases IJ: withdraws a PEP 768 request not yet picked up, stops gdb if it
 * is still running (never while it executes a call inside the target: then
 * it is left to finish on its own), and removes the bootstrap files. NULL ok.
 * Blocks for at most about 2.5 s, and only when gdb is still running.
 */
void inject_free(struct inject *ij);

#endif
