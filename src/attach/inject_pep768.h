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
 * namespace) at its main thread's next eval-breaker check. Refuses, without
 * writing, when remote debugging is disabled or the path is too long.
 * Returns 0, or -1 with a sentence in ERR.
 */
int inject_pep768_request(struct inject_pep768 *st, const char *script_path, char *err, size_t errlen);

/* 1 while a request is pending (the target has not picked it up), 0 once it
 * has, -1 when the flag cannot be read (process gone). */
int inject_pep768_pending(const struct inject_pep768 *st);

/* Withdraws a request the target has not picked up yet (best effort). */
void inject_pep768_cancel(const struct inject_pep768 *st);

/* The refusal sentence used when the target opted out of remote debugging. */
extern const char inject_pep768_disabled_msg[];

#endif
