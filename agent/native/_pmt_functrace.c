/*
 * _pmt_functrace: the native half of pmt_agent.functions, the per-function
 * memory tracer that runs inside the target process.
 *
 * Two parts share this file:
 *
 *  - a PEP 445 allocator hook on the RAW, MEM and OBJ domains that wraps (never
 *    replaces) whatever allocator is installed, passes every pointer through
 *    unchanged and counts bytes allocated and freed into thread-local counters.
 *    Sizes of freed blocks come from a striped pointer->size table filled at
 *    allocation time: a size header is impossible (blocks allocated before the
 *    hook are freed through it) and malloc_usable_size() is only valid for
 *    libc blocks, not for pymalloc's arenas. Blocks that existed before the
 *    tracer started are invisible: their frees and resizes are not counted.
 *    Nested calls (pymalloc handing a large request to PyMem_RawMalloc) are
 *    counted once, in the outer domain.
 *
 *  - a call accounting engine fed by either sys.monitoring callbacks (3.12+,
 *    METH_FASTCALL builtins registered from Python) or the C profile hook
 *    (PyEval_SetProfileAllThreads on 3.12+, PyEval_SetProfile per thread on
 *    3.8-3.11). Each thread keeps its own stack and its own per-code table, so
 *    no lock is needed beyond the GIL; the outermost active call of a code
 *    object in a thread owns the inclusive delta (recursion is not counted
 *    twice), generator segments between resume and yield add up.
 *
 * The hook stays in place as a pass-through when something (tracemalloc) hooked
 * after it: removal is LIFO-only. Free-threaded builds are not supported (the
 * engine relies on the GIL); it does not build there and the agent uses
 * the pure-Python tracer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if PY_VERSION_HEX < 0x03090000
#define PyThreadState_GetInterpreter(ts) ((ts)->interp)
#endif

/* initial-exec TLS: no __tls_get_addr call per allocation. It draws on the
 * static TLS surplus glibc keeps for dlopen()ed libraries (this module needs
 * 48 bytes); if that is used up the import fails and the agent falls back to
 * the pure-Python tracer. Build with -DTLS_MODEL= to use the dynamic model. */
#ifndef TLS_MODEL
#define TLS_MODEL __attribute__((tls_model("initial-exec")))
#endif

#ifdef Py_GIL_DISABLED
#error "_pmt_functrace needs the GIL; free-threaded builds use the pure-Python tracer"
#endif

#if PY_VERSION_HEX < 0x03080000
#error "_pmt_functrace needs CPython 3.8 or newer"
#endif

/* ------------------------------------------------------------------------ */
/* Thread-local memory counters                                              */

struct trec;

/* Everything per thread in one TLS block: one TLS address lookup per call. */
struct tl_state {
	uint64_t alloc;		/* bytes allocated by this thread while counting */
	uint64_t freed;		/* bytes of tracked blocks freed by this thread */
	int inner;		/* inside a MEM/OBJ hook: nested RAW calls are not counted */
	int busy;		/* call events ignored (looking up a thread name) */
	struct trec *rec;	/* this thread's accounting record ... */
	uint64_t gen;		/* ... valid while gen == g_gen */
};

static _Thread_local struct tl_state tl TLS_MODEL;

/* 1 while the tracer counts; the hooks pass through when 0. */
static atomic_int g_counting;

/* ------------------------------------------------------------------------ */
/* Striped pointer -> size table                                             */

#define NSTRIPES 64
#define STRIPE_MIN 256

struct slot {
	uintptr_t key;		/* 0 = empty */
	size_t size;
};

struct stripe {
	atomic_flag lock;
	size_t cap;		/* power of two, or 0 */
	size_t n;
	struct slot *slots;
} __attribute__((aligned(64)));	/* one cache line per stripe */

static struct stripe g_stripes[NSTRIPES];
static atomic_size_t g_table_bytes;	/* memory used by the table itself */

static inline uint64_t hash_ptr(uintptr_t p)
{
	uint64_t h = (uint64_t)p >> 4;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static inline void stripe_lock(struct stripe *s)
{
	while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire))
		;
}

static inline void stripe_unlock(struct stripe *s)
{
	atomic_flag_clear_explicit(&s->lock, memory_order_release);
}

/* The stripe comes from the hash's low bits, the slot from the bits above.
 * (A locality-preserving slot order was tried: it builds long runs that
 * make linear probing and backward-shift deletion slower.) */
#define SLOT_OF(h, mask) (((h) >> 6) & (mask))

/* Grows a stripe (lock held). Returns 0, or -1 when libc is out of memory. */
static int stripe_grow(struct stripe *s)
{
	size_t ncap = s->cap ? s->cap * 2 : STRIPE_MIN;
	struct slot *ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -1;
	for (size_t i = 0; i < s->cap; i++) {
		uintptr_t k = s->slots[i].key;
		if (!k)
			continue;
		size_t j = SLOT_OF(hash_ptr(k), ncap - 1);
		while (ns[j].key)
			j = (j + 1) & (ncap - 1);
		ns[j] = s->slots[i];
	}
	atomic_fetch_add(&g_table_bytes, ncap * sizeof(*ns));
	atomic_fetch_sub(&g_table_bytes, s->cap * sizeof(*ns));
	free(s->slots);
	s->slots = ns;
	s->cap = ncap;
	return 0;
}

static void table_put(void *ptr, size_t size)
{
	uintptr_t k = (uintptr_t)ptr;
	uint64_t h = hash_ptr(k);
	struct stripe *s = &g_stripes[h & (NSTRIPES - 1)];
	stripe_lock(s);
	/* Checked under the lock: table_clear() turns counting off first, then
	 * takes every lock, so nothing is inserted after a clear. */
	if (!atomic_load_explicit(&g_counting, memory_order_relaxed))
		goto out;
	if ((s->n + 1) * 2 > s->cap && stripe_grow(s) < 0)
		goto out;
	size_t mask = s->cap - 1, j = SLOT_OF(h, mask);
	while (s->slots[j].key && s->slots[j].key != k)
		j = (j + 1) & mask;
	if (!s->slots[j].key)
		s->n++;
	s->slots[j].key = k;
	s->slots[j].size = size;
out:
	stripe_unlock(s);
}

/* Removes ptr; returns its size, or -1 when it is not in the table. */
static int64_t table_take(void *ptr)
{
	uintptr_t k = (uintptr_t)ptr;
	uint64_t h = hash_ptr(k);
	struct stripe *s = &g_stripes[h & (NSTRIPES - 1)];
	int64_t size = -1;
	stripe_lock(s);
	if (!s->n)
		goto out;
	size_t mask = s->cap - 1, j = SLOT_OF(h, mask);
	while (s->slots[j].key && s->slots[j].key != k)
		j = (j + 1) & mask;
	if (!s->slots[j].key)
		goto out;
	size = (int64_t)s->slots[j].size;
	/* Backward-shift deletion keeps probe chains intact without tombstones. */
	size_t i = j;
	for (;;) {
		j = (j + 1) & mask;
		if (!s->slots[j].key)
			break;
		size_t home = SLOT_OF(hash_ptr(s->slots[j].key), mask);
		if ((i <= j) ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		s->slots[i] = s->slots[j];
		i = j;
	}
	s->slots[i].key = 0;
	s->n--;
out:
	stripe_unlock(s);
	return size;
}

/* Empties the table. Call with counting already off. */
static void table_clear(void)
{
	for (int i = 0; i < NSTRIPES; i++) {
		struct stripe *s = &g_stripes[i];
		stripe_lock(s);
		struct slot *sl = s->slots;
		atomic_fetch_sub(&g_table_bytes, s->cap * sizeof(*sl));
		s->slots = NULL;
		s->cap = s->n = 0;
		stripe_unlock(s);
		free(sl);
	}
}

static size_t table_count(void)
{
	size_t n = 0;
	for (int i = 0; i < NSTRIPES; i++) {
		stripe_lock(&g_stripes[i]);
		n += g_stripes[i].n;
		stripe_unlock(&g_stripes[i]);
	}
	return n;
}

/* A fork while another thread holds a stripe lock must not deadlock the child. */
static void table_atfork_child(void)
{
	for (int i = 0; i < NSTRIPES; i++)
		atomic_flag_clear(&g_stripes[i].lock);
}

/* ------------------------------------------------------------------------ */
/* The allocator hook                                                         */

struct hook {
	PyMemAllocatorDomain domain;
	PyMemAllocatorEx orig;		/* what was installed below us */
	PyMemAllocatorEx mine;		/* our functions, ctx = this struct */
	int installed;			/* set in the chain at some point, not removed */
	atomic_int probe_seen;
};

/* Each (re)installation takes a fresh slot, so a thread still running in a
 * hook that was dropped long ago never sees its orig change under it. */
#define HOOK_SLOTS 16
static struct hook g_hook_pool[3][HOOK_SLOTS];
static struct hook *g_hooks[3];		/* current hook per domain, or NULL */
static unsigned g_hook_next[3];
static atomic_int g_probing;		/* hooks_probe() is running */

static inline void probe_note(struct hook *h)
{
	if (atomic_load_explicit(&g_probing, memory_order_relaxed))
		atomic_store_explicit(&h->probe_seen, 1, memory_order_relaxed);
}

/* Which thread state counts this call, or NULL to pass through: counting is
 * off, or this is a RAW call nested in one of our MEM/OBJ hooks (pymalloc
 * handing a large block to PyMem_RawMalloc), already counted outside. */
static inline struct tl_state *hook_counter(struct hook *h)
{
	if (!atomic_load_explicit(&g_counting, memory_order_relaxed))
		return NULL;
	struct tl_state *me = &tl;
	if (h->domain == PYMEM_DOMAIN_RAW && me->inner)
		return NULL;
	return me;
}

static void *hook_malloc(void *ctx, size_t n)
{
	struct hook *h = ctx;
	struct tl_state *me = hook_counter(h);
	probe_note(h);
	if (!me)
		return h->orig.malloc(h->orig.ctx, n);
	me->inner++;
	void *p = h->orig.malloc(h->orig.ctx, n);
	me->inner--;
	if (p) {
		me->alloc += n;
		table_put(p, n);
	}
	return p;
}

static void *hook_calloc(void *ctx, size_t nelem, size_t elsize)
{
	struct hook *h = ctx;
	struct tl_state *me = hook_counter(h);
	if (!me)
		return h->orig.calloc(h->orig.ctx, nelem, elsize);
	me->inner++;
	void *p = h->orig.calloc(h->orig.ctx, nelem, elsize);
	me->inner--;
	if (p) {
		me->alloc += nelem * elsize;
		table_put(p, nelem * elsize);
	}
	return p;
}

static void *hook_realloc(void *ctx, void *ptr, size_t n)
{
	struct hook *h = ctx;
	struct tl_state *me = hook_counter(h);
	if (!me)
		return h->orig.realloc(h->orig.ctx, ptr, n);
	/* Take the old entry before the block can be freed and its address reused
	 * by another thread. */
	int64_t old = ptr ? table_take(ptr) : 0;
	me->inner++;
	void *p = h->orig.realloc(h->orig.ctx, ptr, n);
	me->inner--;
	if (!p) {
		if (old > 0 && ptr)
			table_put(ptr, (size_t)old);
		return p;
	}
	if (old < 0)	/* block from before the tracer: stays invisible */
		return p;
	me->freed += (uint64_t)old;
	me->alloc += n;
	table_put(p, n);
	return p;
}

static void hook_free(void *ctx, void *ptr)
{
	struct hook *h = ctx;
	struct tl_state *me = ptr ? hook_counter(h) : NULL;
	if (!me) {
		h->orig.free(h->orig.ctx, ptr);
		return;
	}
	int64_t sz = table_take(ptr);
	if (sz >= 0)
		me->freed += (uint64_t)sz;
	me->inner++;
	h->orig.free(h->orig.ctx, ptr);
	me->inner--;
}

static int hook_on_top(struct hook *h)
{
	PyMemAllocatorEx cur;
	PyMem_GetAllocator(h->domain, &cur);
	return cur.malloc == hook_malloc && cur.ctx == h;
}

/* Is our hook still called for each domain? tracemalloc.stop() restores what
 * it saved and silently drops a hook installed after it, so ask the chain.
 * GIL held. */
static void hooks_probe(int seen[3])
{
	for (int d = 0; d < 3; d++)
		if (g_hooks[d])
			atomic_store(&g_hooks[d]->probe_seen, 0);
	atomic_store(&g_probing, 1);
	void *p = PyMem_RawMalloc(1);
	PyMem_RawFree(p);
	p = PyMem_Malloc(1);
	PyMem_Free(p);
	p = PyObject_Malloc(1);
	PyObject_Free(p);
	atomic_store(&g_probing, 0);
	for (int d = 0; d < 3; d++)
		seen[d] = g_hooks[d] && atomic_load(&g_hooks[d]->probe_seen);
}

/* Makes sure our hook is in every domain's chain (GIL held). Returns how many
 * domains had to be (re)installed. */
static int hooks_install(void)
{
	static const PyMemAllocatorDomain doms[3] = {
		PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ };
	int seen[3], n = 0;
	hooks_probe(seen);
	for (int d = 0; d < 3; d++) {
		struct hook *h = g_hooks[d];
		if (h && h->installed && seen[d])
			continue;
		if (h)
			h->installed = 0;	/* dropped by someone: left as it is */
		h = &g_hook_pool[d][g_hook_next[d]++ % HOOK_SLOTS];
		atomic_store(&h->probe_seen, 0);
		h->domain = doms[d];
		PyMem_GetAllocator(h->domain, &h->orig);
		h->mine.ctx = h;
		h->mine.malloc = hook_malloc;
		h->mine.calloc = hook_calloc;
		h->mine.realloc = hook_realloc;
		h->mine.free = hook_free;
		PyMem_SetAllocator(h->domain, &h->mine);
		h->installed = 1;
		g_hooks[d] = h;
		n++;
	}
	return n;
}

/* Removes our hook from each domain where it is still on top; elsewhere it
 * stays as a pass-through (counting is off). Returns the number of domains
 * left in pass-through mode. GIL held. */
static int hooks_remove(void)
{
	int seen[3], left = 0;
	hooks_probe(seen);
	for (int d = 0; d < 3; d++) {
		struct hook *h = g_hooks[d];
		if (!h || !h->installed)
			continue;
		if (hook_on_top(h)) {
			PyMem_SetAllocator(h->domain, &h->orig);
			h->installed = 0;
		} else if (!seen[d]) {
			h->installed = 0;	/* someone already dropped it */
		} else {
			left++;
		}
	}
	return left;
}

/* ------------------------------------------------------------------------ */
/* Call accounting                                                            */

struct fstat {
	PyObject *code;		/* strong reference */
	uint64_t calls;		/* starts (not resumes) */
	uint64_t outer;		/* outermost activations that completed */
	int64_t net, max;
	uint64_t gross;
	int64_t rss_net, rss_max;
	uint64_t rss_n;
	uint32_t depth;		/* active activations in this thread */
	int8_t rss_sel;		/* -1 unknown, 0 no, 1 yes */
};

struct frame {
	struct fstat *st;
	uint64_t a0, f0;
	int64_t rss0;
};

struct trec {
	struct trec *next;
	unsigned long ident;
	PyObject *name;		/* threading's name for it, or NULL */
	int name_tries;		/* lookups left before giving up */
	struct fstat **tab;	/* open addressing by code pointer */
	size_t cap, n;
	struct frame *stk;
	size_t sp, scap;
	uint64_t orphans;	/* leave events with no matching enter */
	struct fstat *last;	/* last entered code's stats (loops call the same code) */
};

static struct trec *g_threads;	/* GIL */
static uint64_t g_gen = 1;	/* bumped when g_threads is freed */

static int g_running;		/* accounting on (GIL) */
static PyObject *g_threading_str;	/* "threading" */
static int g_broken;		/* out of memory: events ignored until reset */
static PyObject *g_rss_names;	/* frozenset of names, or NULL */
static int g_statm_fd = -1;
static long g_pagesize = 4096;

static int64_t rss_now(void)
{
	char buf[128];
	if (g_statm_fd < 0)
		return -1;
	ssize_t n = pread(g_statm_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strchr(buf, ' ');
	if (!p)
		return -1;
	return strtoll(p + 1, NULL, 10) * g_pagesize;
}

/* threading._active[ident]._name, read without running Python code (the
 * thread may be gone by the time the table is read), or NULL. */
static PyObject *thread_name(unsigned long ident)
{
	PyObject *name = NULL, *mod, *active = NULL, *key = NULL, *th;
#if PY_VERSION_HEX >= 0x030C0000
	PyObject *exc = PyErr_GetRaisedException();
#else
	PyObject *exc_type, *exc_val, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
#endif
	tl.busy = 1;
	mod = PyImport_GetModule(g_threading_str);
	if (!mod)
		goto out;
	active = PyObject_GetAttrString(mod, "_active");
	Py_DECREF(mod);
	if (!active || !PyDict_Check(active))
		goto out;
	key = PyLong_FromUnsignedLong(ident);
	if (!key)
		goto out;
	th = PyDict_GetItemWithError(active, key);
	if (!th)
		goto out;
	name = PyObject_GetAttrString(th, "_name");
	if (name && !PyUnicode_Check(name))
		Py_CLEAR(name);
out:
	PyErr_Clear();
	Py_XDECREF(active);
	Py_XDECREF(key);
	tl.busy = 0;
#if PY_VERSION_HEX >= 0x030C0000
	PyErr_SetRaisedException(exc);
#else
	PyErr_Restore(exc_type, exc_val, exc_tb);
#endif
	return name;
}

/* This thread's record, created on its first event (GIL held). */
static __attribute__((noinline)) struct trec *trec_new(struct tl_state *me)
{
	struct trec *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ident = PyThread_get_thread_ident();
	t->next = g_threads;
	g_threads = t;
	me->rec = t;
	me->gen = g_gen;
	t->name_tries = 64;
	return t;
}

static void trec_free_all(void)
{
	struct trec *t = g_threads;
	g_threads = NULL;
	g_gen++;
	while (t) {
		struct trec *next = t->next;
		for (size_t i = 0; i < t->cap; i++) {
			if (t->tab[i]) {
				Py_DECREF(t->tab[i]->code);
				free(t->tab[i]);
			}
		}
		free(t->tab);
		free(t->stk);
		Py_XDECREF(t->name);
		free(t);
		t = next;
	}
}

static inline size_t hash_code(PyObject *code, size_t mask)
{
	return (size_t)(hash_ptr((uintptr_t)code) & mask);
}

static int trec_grow(struct trec *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 64;
	struct fstat **nt = calloc(ncap, sizeof(*nt));
	if (!nt)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		struct fstat *s = t->tab[i];
		if (!s)
			continue;
		size_t j = hash_code(s->code, ncap - 1);
		while (nt[j])
			j = (j + 1) & (ncap - 1);
		nt[j] = s;
	}
	free(t->tab);
	t->tab = nt;
	t->cap = ncap;
	return 0;
}

static struct fstat *fstat_get(struct trec *t, PyObject *code)
{
	if (t->cap) {
		size_t mask = t->cap - 1, j = hash_code(code, mask);
		for (;;) {
			struct fstat *s = t->tab[j];
			if (!s)
				break;
			if (s->code == code)
				return s;
			j = (j + 1) & mask;
		}
	}
	if ((t->n + 1) * 2 > t->cap && trec_grow(t) < 0)
		return NULL;
	struct fstat *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	Py_INCREF(code);
	s->code = code;
	s->rss_sel = g_rss_names ? -1 : 0;
	size_t mask = t->cap - 1, j = hash_code(code, mask);
	while (t->tab[j])
		j = (j + 1) & mask;
	t->tab[j] = s;
	t->n++;
	return s;
}

/* Is this code object one of the functions selected for RSS? Matched once per
 * (thread, code) on its first call: qualified name or plain name. */
static int rss_selected(struct fstat *s)
{
	if (s->rss_sel >= 0)
		return s->rss_sel;
	s->rss_sel = 0;
#if PY_VERSION_HEX >= 0x030C0000
	PyObject *exc = PyErr_GetRaisedException();
#else
	PyObject *exc_type, *exc_val, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
#endif
	static const char *attrs[] = { "co_qualname", "co_name" };
	for (int i = 0; i < 2 && !s->rss_sel; i++) {
		PyObject *name = PyObject_GetAttrString(s->code, attrs[i]);
		if (!name) {
			PyErr_Clear();
			continue;
		}
		int r = PySet_Contains(g_rss_names, name);
		Py_DECREF(name);
		if (r < 0)
			PyErr_Clear();
		else if (r)
			s->rss_sel = 1;
	}
#if PY_VERSION_HEX >= 0x030C0000
	PyErr_SetRaisedException(exc);
#else
	PyErr_Restore(exc_type, exc_val, exc_tb);
#endif
	return s->rss_sel;
}

/* Slow part of ev_enter: a new code object, a full stack, a thread without
 * a name yet. Returns the stats entry or NULL when out of memory. */
static __attribute__((noinline)) struct fstat *enter_slow(struct trec *t, PyObject *code)
{
	/* A new thread enters threading._active a few calls into its bootstrap. */
	if (!t->name && t->name_tries > 0) {
		t->name_tries--;
		t->name = thread_name(t->ident);
	}
	if (t->sp == t->scap) {
		size_t ncap = t->scap ? t->scap * 2 : 64;
		struct frame *ns = realloc(t->stk, ncap * sizeof(*ns));
		if (!ns)
			return NULL;
		t->stk = ns;
		t->scap = ncap;
	}
	return fstat_get(t, code);
}

static inline void ev_enter(PyObject *code, int start)
{
	if (!g_running || g_broken)
		return;
	struct tl_state *me = &tl;
	if (me->busy)
		return;
	struct trec *t = me->rec;
	if (!t || me->gen != g_gen) {
		t = trec_new(me);
		if (!t)
			goto oom;
	}
	struct fstat *s;
	if (t->last && t->last->code == code && t->sp < t->scap && t->name) {
		s = t->last;
	} else {
		s = (t->sp < t->scap && t->name) ? fstat_get(t, code) : enter_slow(t, code);
		if (!s)
			goto oom;
		t->last = s;
	}
	struct frame *f = &t->stk[t->sp++];
	f->st = s;
	s->calls += start;
	if (s->depth++ == 0) {
		f->a0 = me->alloc;
		f->f0 = me->freed;
		f->rss0 = (s->rss_sel && rss_selected(s)) ? rss_now() : -1;
	}
	return;
oom:
	g_broken = 1;
}

static inline void frame_close(struct tl_state *me, struct frame *f)
{
	struct fstat *s = f->st;
	if (--s->depth != 0)
		return;
	uint64_t a = me->alloc - f->a0;
	int64_t net = (int64_t)(a - (me->freed - f->f0));
	if (s->outer == 0 || net > s->max)
		s->max = net;
	s->outer++;
	s->net += net;
	s->gross += a;
	if (f->rss0 >= 0) {
		int64_t r = rss_now();
		if (r >= 0) {
			int64_t d = r - f->rss0;
			if (s->rss_n == 0 || d > s->rss_max)
				s->rss_max = d;
			s->rss_net += d;
			s->rss_n++;
		}
	}
}

static inline void ev_leave(PyObject *code)
{
	if (!g_running || g_broken)
		return;
	struct tl_state *me = &tl;
	struct trec *t = me->rec;
	if (!t || me->gen != g_gen || t->sp == 0 || me->busy)
		return;	/* a frame entered before the tracer started */
	struct frame *top = &t->stk[t->sp - 1];
	if (top->st->code == code) {
		t->sp--;
		frame_close(me, top);
		return;
	}
	/* A missed leave: close frames above the matching one, if any. */
	size_t i = t->sp - 1;
	while (i > 0 && t->stk[i - 1].st->code != code)
		i--;
	if (i == 0) {
		t->orphans++;
		return;
	}
	while (t->sp >= i) {
		t->sp--;
		frame_close(me, &t->stk[t->sp]);
	}
}

/* sys.monitoring callbacks: (code, offset[, arg]). */

static PyObject *mon_start(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	if (nargs >= 1)
		ev_enter(args[0], 1);
	Py_RETURN_NONE;
}

static PyObject *mon_resume(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	if (nargs >= 1)
		ev_enter(args[0], 0);
	Py_RETURN_NONE;
}

static PyObject *mon_leave(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	if (nargs >= 1)
		ev_leave(args[0]);
	Py_RETURN_NONE;
}

/* The C profile hook. */

static PyObject *frame_code(PyFrameObject *frame)
{
#if PY_VERSION_HEX >= 0x03090000
	PyCodeObject *c = PyFrame_GetCode(frame);
	Py_DECREF(c);	/* the frame keeps it alive */
	return (PyObject *)c;
#else
	return (PyObject *)frame->f_code;
#endif
}

#define GEN_FLAGS (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)

/* Is this 'call' event the start of a frame rather than a generator resume? */
static int frame_is_start(PyFrameObject *frame, PyObject *code)
{
	if (!(((PyCodeObject *)code)->co_flags & GEN_FLAGS))
		return 1;
#if PY_VERSION_HEX >= 0x030B0000
	/* 3.11+: a fresh generator frame sits on its RETURN_GENERATOR/RESUME
	 * prologue; first_traceable is past it. */
	return PyFrame_GetLasti(frame) <= 4;
#else
	return frame->f_lasti < 0;
#endif
}

static int prof_hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
	(void)obj;
	(void)arg;
	if (what == PyTrace_CALL) {
		PyObject *code = frame_code(frame);
		ev_enter(code, frame_is_start(frame, code));
	} else if (what == PyTrace_RETURN) {
		ev_leave(frame_code(frame));
	}
	return 0;
}

static int g_prof_installed;

/* Installs (func != NULL) or removes the C profile hook in every thread. */
static void prof_set_all(Py_tracefunc func)
{
#if PY_VERSION_HEX >= 0x030C0000
	PyEval_SetProfileAllThreads(func, NULL);
#else
	PyThreadState *me = PyThreadState_Get();
	PyInterpreterState *interp = PyThreadState_GetInterpreter(me);
	for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts)) {
		if (func == NULL && ts->c_profilefunc != prof_hook)
			continue;
#if PY_VERSION_HEX >= 0x03090000
		_PyEval_SetProfile(ts, func, NULL);
#else
		PyObject *old = ts->c_profileobj;
		ts->c_profilefunc = NULL;
		ts->c_profileobj = NULL;
		ts->use_tracing = ts->c_tracefunc != NULL;
		Py_XDECREF(old);
		ts->c_profilefunc = func;
		ts->use_tracing = (func != NULL) || (ts->c_tracefunc != NULL);
#endif
	}
#endif
}

/* Another C or Python profiler in some thread? The C profile hook would
 * replace it (and on 3.12+ removing ours removes every thread's). */
static PyObject *ft_profile_conflict(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	PyThreadState *me = PyThreadState_Get();
	for (PyThreadState *ts = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(me)); ts;
	     ts = PyThreadState_Next(ts))
		if (ts->c_profilefunc && ts->c_profilefunc != prof_hook)
			Py_RETURN_TRUE;
	Py_RETURN_FALSE;
}

/* threading.setprofile() target for threads started while the hook is on
 * (3.8-3.11): the first event swaps the Python-level trampoline for the C hook. */
static PyObject *ft_thread_hook(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	if (!g_prof_installed) {
		PyEval_SetProfile(NULL, NULL);
		Py_RETURN_NONE;
	}
	PyEval_SetProfile(prof_hook, NULL);
	if (nargs == 3 && PyFrame_Check(args[0]) && PyUnicode_Check(args[1])
	    && PyUnicode_CompareWithASCIIString(args[1], "call") == 0) {
		PyFrameObject *frame = (PyFrameObject *)args[0];
		PyObject *code = frame_code(frame);
		ev_enter(code, frame_is_start(frame, code));
	}
	Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* Module functions                                                            */

static PyObject *ft_start(PyObject *self, PyObject *args)
{
	(void)self;
	int profile;
	PyObject *rss;
	if (!PyArg_ParseTuple(args, "pO", &profile, &rss))
		return NULL;
	if (g_running) {
		PyErr_SetString(PyExc_RuntimeError, "the tracer is already running");
		return NULL;
	}
	PyObject *names = NULL;
	if (rss != Py_None && PyObject_Length(rss) > 0) {
		names = PyFrozenSet_New(rss);
		if (!names)
			return NULL;
		g_statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
		g_pagesize = sysconf(_SC_PAGESIZE);
	} else if (PyErr_Occurred()) {
		return NULL;
	}
	trec_free_all();
	Py_XSETREF(g_rss_names, names);
	g_broken = 0;
	table_clear();
	atomic_store(&g_counting, 1);
	int reinstalled = hooks_install();
	g_running = 1;
	if (profile) {
		prof_set_all(prof_hook);
		g_prof_installed = 1;
	}
	return PyLong_FromLong(reinstalled);
}

/* Stops counting and removes hooks where LIFO allows. Returns the number of
 * domains left as pass-through. Keeps the table of results. */
static PyObject *ft_stop(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	if (g_prof_installed) {
		prof_set_all(NULL);
		g_prof_installed = 0;
	}
	g_running = 0;
	atomic_store(&g_counting, 0);
	int left = hooks_remove();
	table_clear();
	if (g_statm_fd >= 0) {
		close(g_statm_fd);
		g_statm_fd = -1;
	}
	/* Open frames are discarded; completed activations stay for table(). */
	for (struct trec *t = g_threads; t; t = t->next) {
		for (size_t i = 0; i < t->sp; i++)
			t->stk[i].st->depth = 0;
		t->sp = 0;
	}
	return PyLong_FromLong(left);
}

/* Forgets every result; open frames are dropped too. */
static PyObject *ft_reset(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	trec_free_all();
	g_broken = 0;
	Py_RETURN_NONE;
}

/* Re-installs the hook in domains where something removed it while running
 * (tracemalloc.stop() after it had wrapped us). Returns the count. */
static PyObject *ft_check_hooks(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	if (!g_running)
		return PyLong_FromLong(0);
	int seen[3], lost = 0;
	hooks_probe(seen);
	for (int d = 0; d < 3; d++)
		if (!seen[d])
			lost++;
	if (lost) {
		/* Frees went around us: entries may be stale. */
		atomic_store(&g_counting, 0);
		table_clear();
		atomic_store(&g_counting, 1);
		hooks_install();
	}
	return PyLong_FromLong(lost);
}

/* [(code, thread ident, calls, outer, net, max, gross, rss or None,
 *   thread name or None), ...] */
static PyObject *ft_snapshot(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	PyObject *out = PyList_New(0);
	if (!out)
		return NULL;
	for (struct trec *t = g_threads; t; t = t->next) {
		for (size_t i = 0; i < t->cap; i++) {
			struct fstat *s = t->tab[i];
			if (!s || (s->calls == 0 && s->outer == 0))
				continue;
			PyObject *rss;
			if (s->rss_sel == 1) {
				rss = Py_BuildValue("(LLK)", (long long)s->rss_net,
						    (long long)s->rss_max, (unsigned long long)s->rss_n);
			} else {
				Py_INCREF(Py_None);
				rss = Py_None;
			}
			if (!rss)
				goto fail;
			PyObject *row = Py_BuildValue("(OkKKLLKNO)", s->code, t->ident,
						      (unsigned long long)s->calls,
						      (unsigned long long)s->outer,
						      (long long)s->net, (long long)s->max,
						      (unsigned long long)s->gross, rss,
						      t->name ? t->name : Py_None);
			if (!row || PyList_Append(out, row) < 0) {
				Py_XDECREF(row);
				goto fail;
			}
			Py_DECREF(row);
		}
	}
	return out;
fail:
	Py_DECREF(out);
	return NULL;
}

static PyObject *ft_state(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	int installed = 0, on_top = 0;
	uint64_t orphans = 0;
	size_t threads = 0, open_frames = 0;
	for (int d = 0; d < 3; d++) {
		struct hook *h = g_hooks[d];
		installed += h && h->installed;
		on_top += h && h->installed && hook_on_top(h);
	}
	for (struct trec *t = g_threads; t; t = t->next) {
		orphans += t->orphans;
		open_frames += t->sp;
		threads++;
	}
	return Py_BuildValue("{s:i,s:i,s:i,s:i,s:n,s:n,s:K,s:n,s:n}",
			     "running", g_running, "broken", g_broken,
			     "hooks_installed", installed, "hooks_on_top", on_top,
			     "tracked_blocks", (Py_ssize_t)table_count(),
			     "table_bytes", (Py_ssize_t)atomic_load(&g_table_bytes),
			     "orphan_leaves", (unsigned long long)orphans,
			     "threads", (Py_ssize_t)threads,
			     "open_frames", (Py_ssize_t)open_frames);
}

/* This thread's counters (allocated, freed): used by tests. */
static PyObject *ft_thread_counters(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return Py_BuildValue("(KK)", (unsigned long long)tl.alloc,
			     (unsigned long long)tl.freed);
}

/* The allocator functions currently installed per domain, as integers, so a
 * test can compare them before and after. */
static PyObject *ft_allocators(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	static const PyMemAllocatorDomain doms[3] = {
		PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ };
	PyObject *out = PyTuple_New(3);
	if (!out)
		return NULL;
	for (int d = 0; d < 3; d++) {
		PyMemAllocatorEx a;
		PyMem_GetAllocator(doms[d], &a);
		PyObject *t = Py_BuildValue("(KKKKK)",
					    (unsigned long long)(uintptr_t)a.ctx,
					    (unsigned long long)(uintptr_t)a.malloc,
					    (unsigned long long)(uintptr_t)a.calloc,
					    (unsigned long long)(uintptr_t)a.realloc,
					    (unsigned long long)(uintptr_t)a.free);
		if (!t) {
			Py_DECREF(out);
			return NULL;
		}
		PyTuple_SET_ITEM(out, d, t);
	}
	return out;
}

static PyMethodDef ft_methods[] = {
	{"start", ft_start, METH_VARARGS,
	 "start(profile, rss_names): begin counting; profile=True installs the C profile hook."},
	{"stop", ft_stop, METH_NOARGS, "stop(): stop counting and remove hooks (LIFO-safe)."},
	{"reset", ft_reset, METH_NOARGS, "reset(): forget all results."},
	{"check_hooks", ft_check_hooks, METH_NOARGS,
	 "check_hooks(): re-install the allocator hook where it was dropped; returns the count."},
	{"snapshot", ft_snapshot, METH_NOARGS, "snapshot(): per (code, thread) rows."},
	{"state", ft_state, METH_NOARGS, "state(): hook and table state."},
	{"thread_counters", ft_thread_counters, METH_NOARGS, "thread_counters(): (allocated, freed)."},
	{"allocators", ft_allocators, METH_NOARGS, "allocators(): installed allocator functions per domain."},
	{"profile_conflict", ft_profile_conflict, METH_NOARGS,
	 "profile_conflict(): True when another C profiler is set in some thread (3.8-3.11)."},
	{"thread_hook", (PyCFunction)(void (*)(void))ft_thread_hook, METH_FASTCALL,
	 "threading.setprofile() target that installs the C hook in a new thread."},
	{"mon_start", (PyCFunction)(void (*)(void))mon_start, METH_FASTCALL, "PY_START callback."},
	{"mon_resume", (PyCFunction)(void (*)(void))mon_resume, METH_FASTCALL, "PY_RESUME/PY_THROW callback."},
	{"mon_leave", (PyCFunction)(void (*)(void))mon_leave, METH_FASTCALL,
	 "PY_RETURN/PY_YIELD/PY_UNWIND callback."},
	{NULL, NULL, 0, NULL}
};

static struct PyModuleDef ft_module = {
	PyModuleDef_HEAD_INIT, "_pmt_functrace",
	"Native per-function memory tracer for pmt_agent.functions.", -1, ft_methods,
	NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__pmt_functrace(void);

PyMODINIT_FUNC PyInit__pmt_functrace(void)
{
	static int atfork_done;
	if (!atfork_done) {
		pthread_atfork(NULL, NULL, table_atfork_child);
		atfork_done = 1;
	}
	if (!g_threading_str && !(g_threading_str = PyUnicode_InternFromString("threading")))
		return NULL;
	return PyModule_Create(&ft_module);
}
