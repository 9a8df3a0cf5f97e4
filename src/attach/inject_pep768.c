/*
 * inject_pep768.c - PEP 768 remote execution requests from C (see .h).
 *
 * Layout of _Py_DebugOffsets in CPython 3.14 (all fields u64): the cookie
 * "xdebugpy", version, free_threaded, then groups of offsets. Only the fields
 * used here are named; their byte positions in the table are fixed per minor
 * version, so the table version is checked first and the sizes it reports
 * are cross-checked against the offsets we are about to use.
 */
#include "attach/inject_pep768.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char inject_pep768_disabled_msg[] =
	"remote debugging is disabled in the target (PYTHON_DISABLE_REMOTE_DEBUG or -X disable-remote-debug); "
	"restart it without that, or use `import pmt_agent; pmt_agent.start()` in code";

/* Byte positions of fields inside the 3.14 _Py_DebugOffsets table. */
enum {
	T314_RUNTIME_SIZE = 24,
	T314_INTERPRETERS_HEAD = 40,
	T314_INTERP_SIZE = 48,
	T314_THREADS_HEAD = 72,
	T314_THREADS_MAIN = 80,
	T314_TSTATE_SIZE = 176,
	T314_TSTATE_NEXT = 192,
	T314_NATIVE_THREAD_ID = 224,
	T314_EVAL_BREAKER = 712,
	T314_REMOTE_SUPPORT = 720,
	T314_REMOTE_ENABLED = 728,
	T314_PENDING_CALL = 736,
	T314_SCRIPT_PATH = 744,
	T314_SCRIPT_PATH_SIZE = 752,
	T314_TABLE_SIZE = 760,
};

/* _PY_EVAL_PLEASE_STOP_BIT in 3.14's eval_breaker word. */
#define EVAL_PLEASE_STOP (1u << 5)

static uint64_t field(const unsigned char *t, int pos)
{
	uint64_t v;
	memcpy(&v, t + pos, sizeof v);
	return v;
}

static int read_err(const struct pyproc_info *pi, const char *what, char *err, size_t errlen)
{
	if (errno == EPERM || errno == EACCES)
		pyproc_perm_error(pi->pid, "reading the memory of", err, errlen);
	else if (errno == ESRCH)
		snprintf(err, errlen, "no such process: %d (it has exited)", (int)pi->pid);
	else
		snprintf(err, errlen, "cannot read the %s of process %d: %s", what, (int)pi->pid, strerror(errno));
	return -1;
}

int inject_pep768_open(const struct pyproc_info *pi, struct inject_pep768 *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	st->pid = pi->pid;
	if (!pi->runtime_addr || !pi->has_debug_offsets) {
		snprintf(err, errlen,
			 "process %d has no CPython debug offsets table (PEP 768 needs Python 3.14+; "
			 "use --inject-method gdb for older versions)",
			 (int)pi->pid);
		return -1;
	}
	unsigned char t[T314_TABLE_SIZE];
	if (pyproc_read(pi->pid, pi->runtime_addr, t, sizeof t) != 0)
		return read_err(pi, "interpreter runtime", err, errlen);
	if (memcmp(t, "xdebugpy", 8) != 0) {
		snprintf(err, errlen, "process %d: the CPython debug offsets cookie is missing at _PyRuntime "
			 "(not a CPython runtime, or memory changed); not writing anything", (int)pi->pid);
		return -1;
	}
	st->hexversion = field(t, 8);
	uint64_t ft = field(t, 16);
	int major = (int)(st->hexversion >> 24) & 0xff, minor = (int)(st->hexversion >> 16) & 0xff;
	if (major != 3 || minor != 14) {
		snprintf(err, errlen,
			 "process %d runs Python %d.%d, whose debug offsets layout pmt-top does not know "
			 "(it knows 3.14); use --inject-method gdb or start the agent from the application",
			 (int)pi->pid, major, minor);
		return -1;
	}
	if (ft > 1) {
		snprintf(err, errlen, "process %d: invalid free-threading flag %llu in the debug offsets; not writing anything",
			 (int)pi->pid, (unsigned long long)ft);
		return -1;
	}
	st->free_threaded = (int)ft;
	uint64_t rt_size = field(t, T314_RUNTIME_SIZE), interp_size = field(t, T314_INTERP_SIZE);
	uint64_t ts_size = field(t, T314_TSTATE_SIZE);
	uint64_t heads = field(t, T314_INTERPRETERS_HEAD), tmain = field(t, T314_THREADS_MAIN);
	uint64_t eb = field(t, T314_EVAL_BREAKER), sup = field(t, T314_REMOTE_SUPPORT);
	uint64_t en = field(t, T314_REMOTE_ENABLED), pend = field(t, T314_PENDING_CALL);
	uint64_t path = field(t, T314_SCRIPT_PATH), psize = field(t, T314_SCRIPT_PATH_SIZE);
	const uint64_t max = 64u << 20;
	if (rt_size < T314_TABLE_SIZE || rt_size > max || interp_size > max || ts_size > max ||
	    heads + 8 > rt_size || tmain + 8 > interp_size || en + 4 > interp_size || eb + 8 > ts_size ||
	    psize < 2 || psize > 4096 || pend + 4 > psize + path || sup + path + psize > ts_size) {
		snprintf(err, errlen,
			 "process %d: the 3.14 debug offsets table is inconsistent (runtime %llu, interpreter %llu, "
			 "thread %llu bytes); not writing anything",
			 (int)pi->pid, (unsigned long long)rt_size, (unsigned long long)interp_size,
			 (unsigned long long)ts_size);
		return -1;
	}
	if (pyproc_read(pi->pid, pi->runtime_addr + heads, &st->interp, 8) != 0)
		return read_err(pi, "interpreter list", err, errlen);
	if (!st->interp) {
		snprintf(err, errlen, "process %d has no interpreter yet (starting up or shutting down); try again",
			 (int)pi->pid);
		return -1;
	}
	int32_t enabled;
	if (pyproc_read(pi->pid, st->interp + en, &enabled, sizeof enabled) != 0)
		return read_err(pi, "interpreter state", err, errlen);
	st->remote_debug = enabled == 1;
	if (pyproc_read(pi->pid, st->interp + tmain, &st->tstate, 8) != 0)
		return read_err(pi, "interpreter state", err, errlen);
	uint64_t thead = field(t, T314_THREADS_HEAD), tnext = field(t, T314_TSTATE_NEXT);
	uint64_t tnid = field(t, T314_NATIVE_THREAD_ID);
	if (thead + 8 > interp_size || tnext + 8 > ts_size || tnid + 8 > ts_size) {
		snprintf(err, errlen, "process %d: the 3.14 debug offsets table is inconsistent (thread list); "
			 "not writing anything", (int)pi->pid);
		return -1;
	}
	st->off_threads_head = thead;
	st->off_next = tnext;
	st->off_native_id = tnid;
	st->off_eb = eb;
	st->off_sup = sup;
	st->off_pend = pend;
	st->off_path = path;
	st->eval_breaker_addr = st->tstate + eb;
	st->pending_addr = st->tstate + sup + pend;
	st->path_addr = st->tstate + sup + path;
	st->path_size = psize;
	return 0;
}

int inject_pep768_request(struct inject_pep768 *st, const char *script_path, char *err, size_t errlen)
{
	if (!st->remote_debug) {
		snprintf(err, errlen, "%s", inject_pep768_disabled_msg);
		return -1;
	}
	if (!st->tstate) {
		snprintf(err, errlen, "process %d has no main thread state (starting up or shutting down); try again",
			 (int)st->pid);
		return -1;
	}
	size_t len = strlen(script_path) + 1;
	if (len > st->path_size) {
		snprintf(err, errlen, "the bootstrap path is %zu bytes, over the target's %llu-byte limit; "
			 "set TMPDIR to a shorter directory", len - 1, (unsigned long long)st->path_size);
		return -1;
	}
	int32_t one = 1;
	uint64_t eb;
	/* Path first, then the flag, then the breaker bit: the order the target reads them in. */
	if (pyproc_write(st->pid, st->path_addr, script_path, len) != 0 ||
	    pyproc_write(st->pid, st->pending_addr, &one, sizeof one) != 0 ||
	    pyproc_read(st->pid, st->eval_breaker_addr, &eb, sizeof eb) != 0) {
		if (errno == EPERM || errno == EACCES)
			pyproc_perm_error(st->pid, "writing to the memory of", err, errlen);
		else
			snprintf(err, errlen, "cannot write the remote execution request into process %d: %s",
				 (int)st->pid, strerror(errno));
		return -1;
	}
	eb |= EVAL_PLEASE_STOP;
	if (pyproc_write(st->pid, st->eval_breaker_addr, &eb, sizeof eb) != 0) {
		snprintf(err, errlen, "cannot set the eval breaker of process %d: %s", (int)st->pid, strerror(errno));
		return -1;
	}
	return 0;
}

int inject_pep768_pending(const struct inject_pep768 *st)
{
	int32_t v;
	if (pyproc_read(st->pid, st->pending_addr, &v, sizeof v) != 0)
		return -1;
	return v == 1;
}

void inject_pep768_cancel(const struct inject_pep768 *st)
{
	int32_t zero = 0;
	if (inject_pep768_pending(st) == 1)
		(void)pyproc_write(st->pid, st->pending_addr, &zero, sizeof zero);
}

/* Walks the interpreter's thread list; calls FN on each until it returns
 * non-zero. Bounded, since the list is read from a live process. */
static int walk_threads(const struct inject_pep768 *st, int (*fn)(uint64_t ts, pid_t tid, void *ud), void *ud)
{
	uint64_t ts;
	if (pyproc_read(st->pid, st->interp + st->off_threads_head, &ts, 8) != 0)
		return -1;
	for (int n = 0; ts && n < 4096; n++) {
		uint64_t tid, next;
		if (pyproc_read(st->pid, ts + st->off_native_id, &tid, 8) != 0 ||
		    pyproc_read(st->pid, ts + st->off_next, &next, 8) != 0)
			return -1;
		if (fn(ts, (pid_t)tid, ud))
			return 1;
		ts = next;
	}
	return 0;
}

struct tid_list {
	pid_t *tids;
	int n, max;
};

static int add_tid(uint64_t ts, pid_t tid, void *ud)
{
	(void)ts;
	struct tid_list *l = ud;
	if (l->n < l->max && tid > 0)
		l->tids[l->n++] = tid;
	return l->n >= l->max;
}

int inject_pep768_threads(const struct inject_pep768 *st, pid_t *tids, int max)
{
	struct tid_list l = { tids, 0, max };
	return walk_threads(st, add_tid, &l) < 0 ? -1 : l.n;
}

struct tid_find {
	pid_t tid;
	uint64_t ts;
};

static int match_tid(uint64_t ts, pid_t tid, void *ud)
{
	struct tid_find *f = ud;
	if (tid != f->tid)
		return 0;
	f->ts = ts;
	return 1;
}

int inject_pep768_retarget(struct inject_pep768 *st, pid_t tid)
{
	struct tid_find f = { tid, 0 };
	if (walk_threads(st, match_tid, &f) != 1)
		return -1;
	st->tid = tid;
	st->tstate = f.ts;
	st->eval_breaker_addr = f.ts + st->off_eb;
	st->pending_addr = f.ts + st->off_sup + st->off_pend;
	st->path_addr = f.ts + st->off_sup + st->off_path;
	return 0;
}
