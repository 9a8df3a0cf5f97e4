/*
 * inject_pep768.h - PEP 768 remote execution requests written from C.
 *
 * CPython 3.14 runs a script file named in the main thread's
 * _PyRemoteDebuggerSupport buffer when it sees a pending-call flag and an
 * eval-breaker bit. sys.remote_exec() writes those fields; this module does
 * the same from C with process_vm_writev, so no 3.14 interpreter is needed on
 * pmt-top's side and embedded interpreters work too. Every offset comes from
 * the target's own _Py_DebugOffsets table, which is validated (cookie,
 * version 3.14, table sizes) before anything is written.
 */
#ifndef PMT_ATTACH_INJECT_PEP768_H
#define PMT_ATTACH_INJECT_PEP768_H

#include <stddef.h>
#include <stdint.h>

#include "attach/pyproc.h"

struct inject_pep768 {
	pid_t pid;
	int free_threaded;         /* from the table */
	uint64_t hexversion;       /* from the table */
	uint64_t interp;           /* address of the main PyInterpreterState */
	int remote_debug;          /* 1 enabled, 0 disabled in the target */
	uint64_t tstate;           /* main thread's PyThreadState, 0 if none yet */
	uint64_t pending_addr;     /* debugger_pending_call (int32) */
	uint64_t path_addr;        /* debugger_script_path buffer */
	uint64_t path_size;        /* its size including the NUL (512) */
	uint64_t eval_breaker_addr;/* tstate->eval_breaker (uintptr_t) */
	pid_t tid;                 /* the thread the request is for (0: the main one) */
	/* Offsets kept to walk the thread list (see inject_pep768_retarget). */
	uint64_t off_threads_head, off_next, off_native_id, off_eb, off_sup, off_pend, off_path;
};

/*
 * Reads and validates the target's debug offsets and fills ST (no write).
 * PI must come from pyproc_detect. Returns 0, or -1 with a sentence in ERR:
 * no .PyRuntime / no debug offsets (pre-3.14), unknown table version,
 * inconsistent table sizes, permission denied, no main thread.
 * ST->remote_debug tells whether the target allows remote execution.
 */
int inject_pep768_open(const struct pyproc_info *pi, struct inject_pep768 *st, char *err, size_t errlen);

/*
 * Asks the target to run the file SCRIPT_PATH (a path in the target's mount
 * namespace) at the chosen thread's (by default the main thread's) next
 * eval-breaker check. Refuses, without
 * writing, when remote debugging is disabled or the path is too long.
 * Returns 0, or -1 with a sentence in ERR.
 */
int inject_pep768_request(struct inject_pep768 *st, const char *script_path, char *err, size_t errlen);

/*
 * Native thread ids of the target's Python threads (at most MAX, newest
 * first, as the interpreter lists them). Returns how many, or -1 when the
 * list cannot be read.
 */
int inject_pep768_threads(const struct inject_pep768 *st, pid_t *tids, int max);

/*
 * Points the next request at the Python thread whose native id is TID: any
 * thread runs a pending request at its own next eval-breaker check, so a
 * thread that runs Python takes it while the main one is parked in a system
 * call. Returns 0, or -1 when no thread state has that id.
 */
int inject_pep768_retarget(struct inject_pep768 *st, pid_t tid);

/* 1 while a request is pending (the target has not picked it up), 0 once it
 * has, -1 when the flag cannot be read (process gone). */
int inject_pep768_pending(const struct inject_pep768 *st);

/* Withdraws a request the target has not picked up yet (best effort). */
void inject_pep768_cancel(const struct inject_pep768 *st);

/* The refusal sentence used when the target opted out of remote debugging. */
extern const char inject_pep768_disabled_msg[];

#endif
