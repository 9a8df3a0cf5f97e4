/*
 * _pmt_sampler: the sampled allocation profiler that runs inside the target.
 *
 * A PEP 445 hook on the RAW, MEM and OBJ domains wraps (never replaces) the
 * installed allocators and passes every pointer through. Each thread keeps a
 * byte countdown drawn from an exponential distribution of mean T (the
 * sampling interval); an allocation subtracts its size and, when the countdown
 * crosses zero, the block is sampled: its Python stack (code object and
 * instruction offset per frame, innermost first, at most nframe frames) is
 * interned, and the block goes into a pointer table with that stack. A block of
 * size s is sampled with probability 1 - exp(-s/T), so it stands for
 * s / (1 - exp(-s/T)) bytes: per-stack sums of those weights are unbiased
 * estimates of the live bytes (and blocks) each stack owns. T = 1 is the exact
 * mode: every block, weight = size.
 *
 * Ownership: a free is credited to the stack the block was allocated under,
 * whoever frees it and whenever. A free first reads one bit of a bitmap
 * keyed by address; only a possible hit takes the table lock.
 *
 * Per-thread sampling state is a few words of thread-local storage, gone
 * with the thread. The sample and stack tables are bounded (max_samples,
 * max_stacks): past a cap samples are dropped and counted. stop() releases
 * everything.
 *
 * Optional call counting (calls per code object, and the largest sampled
 * allocation total inside one outermost call) comes from sys.monitoring C
 * callbacks on 3.12+ or the C profile hook before; it keeps a per-thread
 * shadow stack of fixed depth, freed when its thread exits or at stop().
 *
 * Stacks are captured only for the MEM and OBJ domains (GIL held, no other
 * allocator's lock held): RAW allocations are counted in nogil_bytes, not
 * attributed (pymalloc's large blocks are seen in the OBJ domain).
 *
 * Native allocations (start(native=True)): the malloc family called by C
 * extensions and libraries is sent through hooks of ours by rewriting the
 * callers' GOT entries (pmt_got.h); the interpreter's own calls are left to
 * the PEP 445 hooks. They share the countdown, the sample table and the
 * stack table with Python's allocations; their stacks carry a native flag.
 * A thread that holds the GIL gets its Python stack captured at once. One
 * that released it (lxml parses with the GIL released) cannot read its
 * frames safely: the block goes to the "native, no Python stack" stack and
 * to a short per-thread list, and is moved to the thread's Python stack the
 * next time that thread allocates with the GIL (in practice: as the C call
 * returns and builds its result). The hooks stay callable forever (this
 * module is never unloaded): a thread may still hold an old GOT value.
 *
 * Free-threaded builds are not supported.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "pmt_got.h"

#ifdef Py_GIL_DISABLED
#error "_pmt_sampler needs the GIL"
#endif
#if PY_VERSION_HEX < 0x03080000
#error "_pmt_sampler needs CPython 3.8 or newer"
#endif

#if PY_VERSION_HEX >= 0x030D0000
#define tstate_unchecked() PyThreadState_GetUnchecked()
#else
#define tstate_unchecked() _PyThreadState_UncheckedGet()
#endif

#ifndef TLS_MODEL
#define TLS_MODEL __attribute__((tls_model("initial-exec")))
#endif

#define MAX_NFRAME 128
#define FILTER_BITS 20		/* 2^20 buckets of 16 bytes of address */
#define CALL_DEPTH 256

/* ------------------------------------------------------------------------ */
/* Configuration and global state                                            */

static atomic_int g_on;			/* hooks sample and credit frees */
static atomic_uint g_gen = 1;		/* bumped by start(): stale countdowns redraw */
static double g_interval = 524288.0;	/* mean bytes between samples; 1 = exact */
static int g_exact;
static int g_nframe = 64;
static size_t g_max_samples, g_max_stacks;
static double g_started;		/* monotonic seconds at start */

/* Everything below is guarded by g_mu. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

struct frame {
	PyObject *code;			/* strong reference */
	int lasti;			/* byte offset of the instruction */
};

struct stack {
	uint64_t hash;
	uint32_t n;			/* frames, innermost first */
	uint16_t truncated;		/* deeper than nframe */
	uint16_t native;		/* allocated by native code under these frames */
	double live_bytes, live_blocks;	/* estimates of what is alive now */
	double alloc_bytes, alloc_blocks;	/* estimates of everything allocated */
	uint64_t samples;		/* live samples */
	struct frame f[];
};

static struct stack **g_stacks;		/* by id; id 0 unused */
static size_t g_nstacks, g_stacks_cap;
static uint32_t *g_stack_index;		/* open addressing: stack id or 0 */
static size_t g_stack_index_cap;

struct sample {
	uintptr_t ptr;			/* 0 = empty */
	uint64_t size;
	uint32_t stack;
	uint32_t pad;
};

static struct sample *g_table;
static size_t g_table_cap, g_nsamples;

/* Filter over sampled pointers. Bucket = address bits 4..23, so the frees
 * of neighbouring blocks read the same cache lines. A clear bit means "not
 * sampled" and lets a free go by without the lock: the 128 KiB bitmap is all
 * a free reads. Writers (under g_mu) keep a count per bucket beside it
 * (saturating: a full count stays set) and clear the bit when it drops to
 * zero. Both are mappings made once and never unmapped, since a thread
 * freeing without the GIL may read the bitmap just after stop(); stop()
 * hands their pages back with MADV_DONTNEED (they read as zeros). */
#define FILTER_MASK (((size_t)1 << FILTER_BITS) - 1)
static _Atomic uint64_t *g_bits;	/* 2^FILTER_BITS bits */
static uint8_t *g_counts;		/* 2^FILTER_BITS counts */
static atomic_int g_filter_on;

static uint64_t g_dropped_samples, g_dropped_stacks;
static double g_dropped_bytes;
static uint64_t g_total_samples;
static double g_nogil_bytes;		/* RAW allocations: counted, not attributed */
/* Blocks over pymalloc's largest size class come from malloc: the estimate
 * of the live ones, for the RSS composition. */
#define PYMALLOC_MAX 512
static double g_live_malloc;
static uint32_t g_nostack_id;		/* native, no Python stack (GIL released) */

/* Native hooks: on while the GOT entries point to them. */
static atomic_int g_native_on;
static size_t g_stack_bytes;		/* memory held by stack records */

/* Call counting (GIL). */
struct callstat {
	PyObject *code;			/* strong reference */
	uint64_t calls;
	double largest;			/* sampled bytes allocated in one outermost call */
	uint32_t depth;			/* only meaningful per thread: see below */
};
static struct callstat *g_calls;
static size_t g_calls_cap, g_ncalls;
static int g_counting_calls;
static uint64_t g_dropped_calls;
static size_t g_max_calls = 65536;

/* ------------------------------------------------------------------------ */
/* Thread-local state                                                        */

struct tl_state {
	int64_t countdown;		/* bytes until the next sample */
	unsigned gen;			/* countdown belongs to this g_gen */
	int inner;			/* inside our hook or our sampling code */
	int ignore;			/* this thread is the agent's: never sampled */
	uint64_t rng;
	double sampled;			/* weights sampled by this thread, for calls */
	unsigned npend;			/* native blocks wait in tlp for a stack */
};

static _Thread_local struct tl_state tl TLS_MODEL;

/* The native blocks a thread sampled while it had released the GIL, to be
 * given its Python stack when it next allocates with the GIL. Made on the
 * first one, grown to PEND_MAX (past that a block stays unattributed); on
 * a list, touched only under g_mu: stop() frees them all (a thread notices
 * by the epoch), and a thread's own goes when it exits. */
#define PEND_MAX 8192
struct tl_pend {
	struct tl_pend *prev, *next;
	pthread_t owner;
	unsigned n, cap;
	uintptr_t ptr[];
};
static _Thread_local struct tl_pend *tlp TLS_MODEL;
static _Thread_local unsigned tlp_epoch TLS_MODEL;
static unsigned g_pend_epoch = 1;	/* g_mu */
static struct tl_pend *g_pend_list;	/* g_mu */
static size_t g_pend_bytes;		/* g_mu */
static pthread_key_t g_pend_key;

/* The call shadow stack is too big for static TLS: it is allocated on a
 * thread's first call event. Every one is on a list: stop() frees them all
 * (a thread notices by its epoch and makes a new one if counting starts
 * again), and the key's destructor frees a thread's own when it exits, so a
 * thread-per-request server holds one per live thread at most. */
struct call_frame {
	uint32_t idx;			/* g_calls index + 1, 0 = not counted */
	double sampled0;
};
struct tl_calls {
	struct tl_calls *prev, *next;	/* on g_call_list */
	pthread_t owner;
	unsigned gen;
	uint32_t sp;
	struct call_frame stk[CALL_DEPTH];
};
static _Thread_local struct tl_calls *tlc TLS_MODEL;
static _Thread_local unsigned tlc_epoch TLS_MODEL;
static unsigned g_tlc_epoch = 1;	/* bumped when stop() frees the list (GIL) */
static pthread_key_t g_calls_key;
static pthread_mutex_t g_calls_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tl_calls *g_call_list;	/* g_calls_mu */
static long g_call_stacks;		/* g_calls_mu: live shadow stacks */

/* Thread exit: free this thread's stack if stop() has not already. */
static void tlc_destroy(void *p)
{
	pthread_mutex_lock(&g_calls_mu);
	for (struct tl_calls *c = g_call_list; c; c = c->next) {
		if (c != p)
			continue;
		if (pthread_equal(c->owner, pthread_self())) {
			if (c->prev)
				c->prev->next = c->next;
			else
				g_call_list = c->next;
			if (c->next)
				c->next->prev = c->prev;
			g_call_stacks--;
			free(c);
		}
		break;
	}
	pthread_mutex_unlock(&g_calls_mu);
}

/* This thread's shadow stack, made if it has none in this epoch. GIL. */
static inline struct tl_calls *tlc_get(void)
{
	return tlc_epoch == g_tlc_epoch ? tlc : NULL;
}

static __attribute__((noinline)) struct tl_calls *tlc_new(void)
{
	struct tl_calls *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (pthread_setspecific(g_calls_key, c) != 0) {
		free(c);
		return NULL;
	}
	c->owner = pthread_self();
	pthread_mutex_lock(&g_calls_mu);
	c->next = g_call_list;
	if (g_call_list)
		g_call_list->prev = c;
	g_call_list = c;
	g_call_stacks++;
	pthread_mutex_unlock(&g_calls_mu);
	tlc = c;
	tlc_epoch = g_tlc_epoch;
	return c;
}

/* stop(): every thread's shadow stack goes (GIL held: no call event runs). */
static void tlc_free_all(void)
{
	pthread_mutex_lock(&g_calls_mu);
	struct tl_calls *c = g_call_list;
	g_call_list = NULL;
	g_call_stacks = 0;
	g_tlc_epoch++;
	pthread_mutex_unlock(&g_calls_mu);
	while (c) {
		struct tl_calls *next = c->next;
		free(c);
		c = next;
	}
}

static long call_stacks_now(void)
{
	pthread_mutex_lock(&g_calls_mu);
	long n = g_call_stacks;
	pthread_mutex_unlock(&g_calls_mu);
	return n;
}

static uint64_t rng_next(struct tl_state *me)
{
	/* xorshift64*, seeded per thread from its TLS address and the clock */
	uint64_t x = me->rng;
	if (x == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (uint64_t)(uintptr_t)me ^ ((uint64_t)ts.tv_nsec << 17) ^ (uint64_t)ts.tv_sec;
		x ^= 0x9E3779B97F4A7C15ULL;
		if (x == 0)
			x = 1;
	}
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	me->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Bytes to the next sample: exponential with mean g_interval. */
static int64_t draw_countdown(struct tl_state *me)
{
	if (g_exact)
		return 0;
	double u = ((double)(rng_next(me) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
	double d = -log(u) * g_interval;
	if (d > 4e18)
		d = 4e18;
	return (int64_t)d + 1;
}

static double weight_of(uint64_t size)
{
	if (g_exact || size == 0)
		return (double)size;
	double p = -expm1(-(double)size / g_interval);
	return p > 0 ? (double)size / p : g_interval;
}

/* ------------------------------------------------------------------------ */
/* Hashing, filter, sample table (g_mu held unless said otherwise)           */

static inline uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static inline size_t filter_slot(uintptr_t p)
{
	return (size_t)(p >> 4) & FILTER_MASK;
}

/* No lock: may the block be sampled? */
static inline int filter_maybe(uintptr_t p)
{
	size_t i = filter_slot(p);
	return (atomic_load_explicit(&g_bits[i >> 6], memory_order_acquire) >> (i & 63)) & 1;
}

static void filter_add(uintptr_t p)
{
	size_t i = filter_slot(p);
	if (g_counts[i] != 255)
		g_counts[i]++;
	atomic_fetch_or_explicit(&g_bits[i >> 6], (uint64_t)1 << (i & 63), memory_order_release);
}

static void filter_del(uintptr_t p)
{
	size_t i = filter_slot(p);
	if (g_counts[i] == 255 || g_counts[i] == 0)
		return;
	if (--g_counts[i] == 0)
		atomic_fetch_and_explicit(&g_bits[i >> 6], ~((uint64_t)1 << (i & 63)), memory_order_release);
}

static inline size_t table_home(uintptr_t p, size_t cap)
{
	return (size_t)(mix64((uint64_t)p) & (cap - 1));
}

static int table_grow(void)
{
	size_t ncap = g_table_cap ? g_table_cap * 2 : 1024;
	struct sample *nt = calloc(ncap, sizeof(*nt));
	if (!nt)
		return -1;
	for (size_t i = 0; i < g_table_cap; i++) {
		struct sample *s = &g_table[i];
		if (!s->ptr)
			continue;
		size_t j = table_home(s->ptr, ncap);
		while (nt[j].ptr)
			j = (j + 1) & (ncap - 1);
		nt[j] = *s;
	}
	free(g_table);
	g_table = nt;
	g_table_cap = ncap;
	return 0;
}

static struct sample *table_find(uintptr_t p)
{
	if (!g_table_cap)
		return NULL;
	size_t mask = g_table_cap - 1;
	for (size_t j = table_home(p, g_table_cap);; j = (j + 1) & mask) {
		if (g_table[j].ptr == p)
			return &g_table[j];
		if (!g_table[j].ptr)
			return NULL;
	}
}

/* Linear probing with backward-shift deletion: no tombstones. */
static void table_delete(struct sample *s)
{
	size_t mask = g_table_cap - 1;
	size_t i = (size_t)(s - g_table), j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!g_table[j].ptr)
			break;
		size_t k = table_home(g_table[j].ptr, g_table_cap);
		/* can entry j move to the hole at i? (k cyclically outside (i, j]) */
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			g_table[i] = g_table[j];
			i = j;
		}
	}
	g_table[i].ptr = 0;
	g_nsamples--;
}

/* Ends the life of a sampled block: its stack loses the weight. Returns 1 if
 * the pointer was sampled, and copies the entry to *out. */
static int sample_remove(uintptr_t p, struct sample *out)
{
	int hit = 0;
	pthread_mutex_lock(&g_mu);
	struct sample *s = table_find(p);
	if (s) {
		*out = *s;
		struct stack *st = g_stacks[s->stack];
		double w = weight_of(s->size);
		st->live_bytes -= w;
		st->live_blocks -= s->size ? w / (double)s->size : 0;
		if (s->size > PYMALLOC_MAX && !st->native)
			g_live_malloc -= w;
		st->samples--;
		if (st->samples == 0) {
			st->live_bytes = 0;	/* no drift from rounding */
			st->live_blocks = 0;
		}
		filter_del(p);
		table_delete(s);
		hit = 1;
	}
	pthread_mutex_unlock(&g_mu);
	return hit;
}

static void sample_reinsert(const struct sample *e)
{
	pthread_mutex_lock(&g_mu);
	if ((g_nsamples + 1) * 10 <= g_table_cap * 7 || table_grow() == 0) {
		size_t j = table_home(e->ptr, g_table_cap);
		while (g_table[j].ptr)
			j = (j + 1) & (g_table_cap - 1);
		g_table[j] = *e;
		g_nsamples++;
		filter_add(e->ptr);
		struct stack *st = g_stacks[e->stack];
		double w = weight_of(e->size);
		st->live_bytes += w;
		st->live_blocks += e->size ? w / (double)e->size : 0;
		if (e->size > PYMALLOC_MAX && !st->native)
			g_live_malloc += w;
		st->samples++;
	}
	pthread_mutex_unlock(&g_mu);
}

/* ------------------------------------------------------------------------ */
/* Stack capture and interning                                                */

/* Fills fr[] with the calling thread's Python stack, innermost first; the
 * code references are borrowed (the frames keep them alive until we return).
 * Returns the number of frames; *truncated tells if there were more. GIL. */
static int capture(PyThreadState *ts, struct frame *fr, int max, int *truncated)
{
	int n = 0;
	*truncated = 0;
#if PY_VERSION_HEX >= 0x030B0000
	PyFrameObject *f = PyThreadState_GetFrame(ts);
	while (f) {
		if (n == max) {
			*truncated = 1;
			Py_DECREF(f);
			break;
		}
		PyCodeObject *code = PyFrame_GetCode(f);
		fr[n].code = (PyObject *)code;
		fr[n].lasti = PyFrame_GetLasti(f);
		Py_DECREF(code);	/* the frame holds it */
		n++;
		PyFrameObject *back = PyFrame_GetBack(f);
		Py_DECREF(f);
		f = back;
	}
#else
	for (PyFrameObject *f = ts->frame; f; f = f->f_back) {
		if (n == max) {
			*truncated = 1;
			break;
		}
		fr[n].code = (PyObject *)f->f_code;
#if PY_VERSION_HEX >= 0x030A0000
		fr[n].lasti = f->f_lasti < 0 ? 0 : f->f_lasti * (int)sizeof(_Py_CODEUNIT);
#else
		fr[n].lasti = f->f_lasti < 0 ? 0 : f->f_lasti;
#endif
		n++;
	}
#endif
	return n;
}

static uint64_t stack_hash(const struct frame *fr, int n, int native)
{
	uint64_t h = 0x84222325cbf29ce4ULL ^ (uint64_t)n ^ ((uint64_t)native << 40);
	for (int i = 0; i < n; i++) {
		h = mix64(h ^ (uint64_t)(uintptr_t)fr[i].code);
		h = mix64(h ^ (uint64_t)(uint32_t)fr[i].lasti);
	}
	return h | 1;
}

static int stack_index_grow(void)
{
	size_t ncap = g_stack_index_cap ? g_stack_index_cap * 2 : 1024;
	uint32_t *ni = calloc(ncap, sizeof(*ni));
	if (!ni)
		return -1;
	for (size_t id = 1; id < g_nstacks; id++) {
		size_t j = (size_t)(g_stacks[id]->hash & (ncap - 1));
		while (ni[j])
			j = (j + 1) & (ncap - 1);
		ni[j] = (uint32_t)id;
	}
	free(g_stack_index);
	g_stack_index = ni;
	g_stack_index_cap = ncap;
	return 0;
}

/* The id of this stack, interned if new; 0 when the table is full or out of
 * memory. Takes references to new code objects: GIL held, g_mu held. */
static uint32_t stack_intern(const struct frame *fr, int n, int truncated, int native)
{
	uint64_t h = stack_hash(fr, n, native);
	if (g_stack_index_cap) {
		size_t mask = g_stack_index_cap - 1;
		for (size_t j = (size_t)(h & mask); g_stack_index[j]; j = (j + 1) & mask) {
			struct stack *s = g_stacks[g_stack_index[j]];
			if (s->hash != h || s->n != (uint32_t)n || s->native != native)
				continue;
			int same = 1;
			for (int i = 0; i < n && same; i++)
				same = s->f[i].code == fr[i].code && s->f[i].lasti == fr[i].lasti;
			if (same)
				return g_stack_index[j];
		}
	}
	if (g_nstacks == 0)
		g_nstacks = 1;	/* id 0 means "none" */
	if (g_nstacks - 1 >= g_max_stacks)
		return 0;
	if (g_nstacks >= g_stacks_cap) {
		size_t ncap = g_stacks_cap ? g_stacks_cap * 2 : 256;
		struct stack **ns = realloc(g_stacks, ncap * sizeof(*ns));
		if (!ns)
			return 0;
		g_stacks = ns;
		g_stacks_cap = ncap;
	}
	if ((g_nstacks + 1) * 2 > g_stack_index_cap && stack_index_grow() < 0)
		return 0;
	size_t sz = sizeof(struct stack) + (size_t)n * sizeof(struct frame);
	struct stack *s = calloc(1, sz);
	if (!s)
		return 0;
	s->hash = h;
	s->n = (uint32_t)n;
	s->truncated = (uint16_t)truncated;
	s->native = (uint16_t)native;
	for (int i = 0; i < n; i++) {
		s->f[i] = fr[i];
		Py_INCREF(fr[i].code);
	}
	uint32_t id = (uint32_t)g_nstacks++;
	g_stacks[id] = s;
	g_stack_bytes += sz;
	size_t mask = g_stack_index_cap - 1, j = (size_t)(h & mask);
	while (g_stack_index[j])
		j = (j + 1) & mask;
	g_stack_index[j] = id;
	return id;
}

/* ------------------------------------------------------------------------ */
/* Sampling                                                                   */

/* Enters a sampled block of N bytes (weight W) under stack ID (0: the stack
 * table is full) in the sample table. g_mu held, the profiler on. */
static void sample_record(uintptr_t key, uint64_t n, double w, uint32_t id)
{
	g_total_samples++;
	if (!id) {
		g_dropped_stacks++;
		goto drop;
	}
	if (g_nsamples >= g_max_samples
	    || ((g_nsamples + 1) * 10 > g_table_cap * 7 && table_grow() < 0))
		goto drop;
	struct sample *old = table_find(key);
	if (old) {	/* a free we never saw (hook bypassed): the block is new */
		struct stack *os = g_stacks[old->stack];
		double ow = weight_of(old->size);
		os->live_bytes -= ow;
		os->live_blocks -= old->size ? ow / (double)old->size : 0;
		if (old->size > PYMALLOC_MAX && !os->native)
			g_live_malloc -= ow;
		os->samples--;
		filter_del(key);
		table_delete(old);
	}
	size_t j = table_home(key, g_table_cap);
	while (g_table[j].ptr)
		j = (j + 1) & (g_table_cap - 1);
	g_table[j].ptr = key;
	g_table[j].size = n;
	g_table[j].stack = id;
	g_nsamples++;
	struct stack *st = g_stacks[id];
	st->live_bytes += w;
	st->live_blocks += n ? w / (double)n : 0;
	if (n > PYMALLOC_MAX && !st->native)
		g_live_malloc += w;
	st->alloc_bytes += w;
	st->alloc_blocks += n ? w / (double)n : 0;
	st->samples++;
	filter_add(key);
	return;
drop:
	g_dropped_samples++;
	g_dropped_bytes += w;
	if (id) {
		struct stack *st = g_stacks[id];
		st->alloc_bytes += w;
		st->alloc_blocks += n ? w / (double)n : 0;
	}
}

/* The countdown crossed zero (or belongs to an earlier run): whether the
 * block of N bytes is sampled. Draws the next countdown. */
static int countdown_due(struct tl_state *me, size_t n)
{
	unsigned gen = atomic_load_explicit(&g_gen, memory_order_relaxed);
	if (me->gen != gen) {
		/* first allocation of this thread in this run: a fresh countdown */
		me->gen = gen;
		me->countdown = draw_countdown(me) - (int64_t)n;
		if (me->countdown > 0)
			return 0;
	}
	me->countdown = draw_countdown(me);
	return !me->ignore;
}

/* Samples the block under the stack of TS, the calling thread's, which
 * holds the GIL (me->inner set). */
static void sample_with_stack(struct tl_state *me, PyThreadState *ts, void *p, size_t n, double w,
			      int native)
{
	struct frame fr[MAX_NFRAME];
	int truncated;
	int nf = capture(ts, fr, g_nframe, &truncated);
	me->sampled += w;
	pthread_mutex_lock(&g_mu);
	if (atomic_load_explicit(&g_on, memory_order_relaxed))
		sample_record((uintptr_t)p, n, w, stack_intern(fr, nf, truncated, native));
	pthread_mutex_unlock(&g_mu);
}

/* The countdown crossed zero (or belongs to an earlier run): decide, and
 * sample the block if it is due. me->inner is set by the caller. */
static __attribute__((noinline)) void sample_slow(struct tl_state *me, void *p, size_t n, int raw)
{
	if (!countdown_due(me, n) || !atomic_load_explicit(&g_on, memory_order_relaxed))
		return;
	double w = weight_of(n);
	/* RAW blocks are counted, never attributed: the caller may not hold the
	 * GIL, or may be another allocator hook holding its own lock (tracemalloc
	 * allocates its tables from the RAW allocator below it under its lock),
	 * and capturing a stack can allocate (frame objects on 3.11+). */
	if (raw) {
		pthread_mutex_lock(&g_mu);
		g_nogil_bytes += w;
		pthread_mutex_unlock(&g_mu);
		return;
	}
	PyThreadState *ts = tstate_unchecked();
	if (ts)
		sample_with_stack(me, ts, p, n, w, 0);
}

/* ------------------------------------------------------------------------ */
/* The allocator hook                                                         */

struct hook {
	PyMemAllocatorDomain domain;
	PyMemAllocatorEx orig;
	PyMemAllocatorEx mine;
	int installed;
	atomic_int probe_seen;
};

#define HOOK_SLOTS 16
static struct hook g_hook_pool[3][HOOK_SLOTS];
static struct hook *g_hooks[3];
static unsigned g_hook_next[3];
static atomic_int g_probing;

static inline void probe_note(struct hook *h)
{
	if (atomic_load_explicit(&g_probing, memory_order_relaxed))
		atomic_store_explicit(&h->probe_seen, 1, memory_order_relaxed);
}

static void pending_resolve(struct tl_state *me, PyThreadState *ts);

/* After the block exists: count it down, maybe sample it. */
static inline void after_alloc(struct hook *h, struct tl_state *me, void *p, size_t n)
{
	if (me->npend && h->domain != PYMEM_DOMAIN_RAW) {
		me->inner = 1;
		pending_resolve(me, tstate_unchecked());
		me->inner = 0;
	}
	me->countdown -= (int64_t)n;
	if (me->countdown <= 0
	    || me->gen != atomic_load_explicit(&g_gen, memory_order_relaxed)) {
		me->inner = 1;
		sample_slow(me, p, n, h->domain == PYMEM_DOMAIN_RAW);
		me->inner = 0;
	}
}

static void *hook_malloc(void *ctx, size_t n)
{
	struct hook *h = ctx;
	probe_note(h);
	struct tl_state *me = &tl;
	if (me->inner || !atomic_load_explicit(&g_on, memory_order_relaxed))
		return h->orig.malloc(h->orig.ctx, n);
	me->inner = 1;
	void *p = h->orig.malloc(h->orig.ctx, n);
	me->inner = 0;
	if (p)
		after_alloc(h, me, p, n);
	return p;
}

static void *hook_calloc(void *ctx, size_t nelem, size_t elsize)
{
	struct hook *h = ctx;
	struct tl_state *me = &tl;
	if (me->inner || !atomic_load_explicit(&g_on, memory_order_relaxed))
		return h->orig.calloc(h->orig.ctx, nelem, elsize);
	me->inner = 1;
	void *p = h->orig.calloc(h->orig.ctx, nelem, elsize);
	me->inner = 0;
	if (p)
		after_alloc(h, me, p, nelem * elsize);
	return p;
}

static void *hook_realloc(void *ctx, void *ptr, size_t n)
{
	struct hook *h = ctx;
	if (!atomic_load_explicit(&g_on, memory_order_relaxed))
		return h->orig.realloc(h->orig.ctx, ptr, n);
	/* The old block's life ends here: take its entry before its address can
	 * be reused by another thread. */
	struct sample old;
	int had = ptr && filter_maybe((uintptr_t)ptr) && sample_remove((uintptr_t)ptr, &old);
	struct tl_state *me = &tl;
	int outer = !me->inner;
	me->inner = 1;
	void *p = h->orig.realloc(h->orig.ctx, ptr, n);
	me->inner = !outer;
	if (!p) {
		if (had)
			sample_reinsert(&old);	/* the old block lives on */
		return p;
	}
	if (outer)
		after_alloc(h, me, p, n);
	return p;
}

static void hook_free(void *ctx, void *ptr)
{
	struct hook *h = ctx;
	struct sample old;
	/* Always credited, even inside our own code: a GC run while a stack was
	 * captured may free sampled blocks. */
	if (ptr && atomic_load_explicit(&g_on, memory_order_relaxed) && filter_maybe((uintptr_t)ptr))
		sample_remove((uintptr_t)ptr, &old);
	h->orig.free(h->orig.ctx, ptr);
}

static int hook_on_top(struct hook *h)
{
	PyMemAllocatorEx cur;
	PyMem_GetAllocator(h->domain, &cur);
	return cur.malloc == hook_malloc && cur.ctx == h;
}

/* Which domains still call our hook? tracemalloc.stop() restores what it
 * saved and silently drops a hook installed after it. GIL held. */
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
		seen[d] = g_hooks[d] && g_hooks[d]->installed && atomic_load(&g_hooks[d]->probe_seen);
}

static void hooks_install(void)
{
	static const PyMemAllocatorDomain doms[3] = {
		PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ };
	int seen[3];
	hooks_probe(seen);
	for (int d = 0; d < 3; d++) {
		if (seen[d])
			continue;
		if (g_hooks[d])
			g_hooks[d]->installed = 0;	/* dropped by someone: left as it is */
		struct hook *h = &g_hook_pool[d][g_hook_next[d]++ % HOOK_SLOTS];
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
	}
}

/* Removes the hook where it is on top; elsewhere it stays as a pass-through.
 * Returns the number of domains left in the chain. GIL held. */
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
			h->installed = 0;
		} else {
			left++;
		}
	}
	return left;
}


/* ------------------------------------------------------------------------ */
/* Native allocations: the malloc family, through the callers' GOT            */

static pthread_mutex_t g_got_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pmt_got g_got;		/* g_got_mu */
static int g_got_error;			/* errno of the last failed pass */

/* This thread's state if it holds the GIL, else NULL. Before 3.12 the
 * "current" thread state is the GIL holder's, whichever thread asks; since
 * 3.12 it is per thread and cleared while the thread has released the GIL. */
static inline PyThreadState *gil_self(void)
{
#if PY_VERSION_HEX >= 0x030C0000
	return tstate_unchecked();
#else
	PyThreadState *ts = tstate_unchecked();
	return ts && ts == PyGILState_GetThisThreadState() ? ts : NULL;
#endif
}

/* Thread exit: free this thread's pending list if stop() has not. */
static void pend_destroy(void *p)
{
	pthread_mutex_lock(&g_mu);
	for (struct tl_pend *c = g_pend_list; c; c = c->next) {
		if (c != p || !pthread_equal(c->owner, pthread_self()))
			continue;
		if (c->prev)
			c->prev->next = c->next;
		else
			g_pend_list = c->next;
		if (c->next)
			c->next->prev = c->prev;
		g_pend_bytes -= sizeof *c + c->cap * sizeof c->ptr[0];
		free(c);
		break;
	}
	pthread_mutex_unlock(&g_mu);
}

/* stop(): every list goes (g_mu held). */
static void pend_free_all(void)
{
	struct tl_pend *c = g_pend_list;
	g_pend_list = NULL;
	g_pend_bytes = 0;
	g_pend_epoch++;
	while (c) {
		struct tl_pend *next = c->next;
		free(c);
		c = next;
	}
}

/* This thread's list with room for one more, or NULL (g_mu held). */
static struct tl_pend *pend_room(void)
{
	struct tl_pend *c = tlp_epoch == g_pend_epoch ? tlp : NULL;
	if (c && c->n < c->cap)
		return c;
	if (c && c->cap >= PEND_MAX)
		return NULL;
	unsigned cap = c ? c->cap * 2 : 64;
	struct tl_pend *nc = malloc(sizeof *nc + cap * sizeof nc->ptr[0]);
	if (!nc)
		return NULL;
	if (c) {
		memcpy(nc, c, sizeof *c + c->n * sizeof c->ptr[0]);
		g_pend_bytes -= sizeof *c + c->cap * sizeof c->ptr[0];
		if (nc->prev)
			nc->prev->next = nc;
		else
			g_pend_list = nc;
		if (nc->next)
			nc->next->prev = nc;
		free(c);
	} else {
		nc->n = 0;
		nc->owner = pthread_self();
		nc->prev = NULL;
		nc->next = g_pend_list;
		if (g_pend_list)
			g_pend_list->prev = nc;
		g_pend_list = nc;
	}
	nc->cap = cap;
	g_pend_bytes += sizeof *nc + cap * sizeof nc->ptr[0];
	tlp = nc;
	tlp_epoch = g_pend_epoch;
	pthread_setspecific(g_pend_key, nc);
	return nc;
}

/* The blocks this thread sampled without the GIL move from the "no Python
 * stack" stack to its stack now (GIL held, me->inner set). A block freed
 * since, or taken by another stack, stays where it is. */
static void pending_resolve(struct tl_state *me, PyThreadState *ts)
{
	me->npend = 0;
	if (!ts)
		return;
	struct frame fr[MAX_NFRAME];
	int truncated;
	int nf = capture(ts, fr, g_nframe, &truncated);
	pthread_mutex_lock(&g_mu);
	struct tl_pend *c = tlp_epoch == g_pend_epoch ? tlp : NULL;
	uint32_t id;
	if (c && c->n && atomic_load_explicit(&g_on, memory_order_relaxed) && g_nostack_id
	    && (id = stack_intern(fr, nf, truncated, 1)) != 0) {
		struct stack *from = g_stacks[g_nostack_id], *to = g_stacks[id];
		for (unsigned i = 0; i < c->n; i++) {
			struct sample *e = table_find(c->ptr[i]);
			if (!e || e->stack != g_nostack_id)
				continue;
			double w = weight_of(e->size), k = e->size ? w / (double)e->size : 0;
			from->live_bytes -= w;
			from->live_blocks -= k;
			from->alloc_bytes -= w;
			from->alloc_blocks -= k;
			from->samples--;
			to->live_bytes += w;
			to->live_blocks += k;
			to->alloc_bytes += w;
			to->alloc_blocks += k;
			to->samples++;
			e->stack = id;
		}
		if (from->samples == 0)
			from->live_bytes = from->live_blocks = 0;
	}
	if (c)
		c->n = 0;
	pthread_mutex_unlock(&g_mu);
}

/* A native block is due (me->inner set by the caller). */
static __attribute__((noinline)) void native_slow(struct tl_state *me, void *p, size_t n)
{
	if (!countdown_due(me, n) || !atomic_load_explicit(&g_native_on, memory_order_relaxed))
		return;
	double w = weight_of(n);
	PyThreadState *ts = gil_self();
	if (ts) {
		if (me->npend)
			pending_resolve(me, ts);
		sample_with_stack(me, ts, p, n, w, 1);
		return;
	}
	/* No GIL: no interning (the stack table may only grow under the GIL,
	 * which its readers hold); the stack made at start() takes it. */
	pthread_mutex_lock(&g_mu);
	if (atomic_load_explicit(&g_on, memory_order_relaxed) && g_nostack_id) {
		sample_record((uintptr_t)p, n, w, g_nostack_id);
		struct tl_pend *c = pend_room();
		if (c) {
			c->ptr[c->n++] = (uintptr_t)p;
			me->npend = 1;
		}
	}
	pthread_mutex_unlock(&g_mu);
}

static inline void native_after(void *p, size_t n)
{
	struct tl_state *me = &tl;
	if (me->inner)
		return;
	/* Waiting blocks are resolved by the next sample taken with the GIL or
	 * the next allocation of Python's (after_alloc): asking every malloc
	 * whether the GIL is back would cost two calls each. */
	me->countdown -= (int64_t)n;
	if (me->countdown <= 0 || me->gen != atomic_load_explicit(&g_gen, memory_order_relaxed)) {
		me->inner = 1;
		native_slow(me, p, n);
		me->inner = 0;
	}
}

static inline void native_forget(void *p)
{
	struct sample old;
	if (p && atomic_load_explicit(&g_on, memory_order_relaxed) && filter_maybe((uintptr_t)p))
		sample_remove((uintptr_t)p, &old);
}

/* A new block P of N bytes from native code (NULL: none): counted down,
 * maybe sampled. Returns P. */
static inline void *native_new(void *p, size_t n)
{
	if (p && atomic_load_explicit(&g_native_on, memory_order_relaxed))
		native_after(p, n);
	return p;
}

/* The hooks call the functions this module is bound to: the same ones the
 * patched entries held (pmt_got.h patches only those). */
static void *nat_malloc(size_t n)
{
	return native_new(malloc(n), n);
}

static void *nat_calloc(size_t k, size_t n)
{
	return native_new(calloc(k, n), k * n);
}

static void *nat_realloc(void *old, size_t n)
{
	if (!atomic_load_explicit(&g_native_on, memory_order_relaxed))
		return realloc(old, n);
	/* The old block ends here (as in hook_realloc): take its entry first. */
	struct sample was;
	int had = old && atomic_load_explicit(&g_on, memory_order_relaxed)
		  && filter_maybe((uintptr_t)old) && sample_remove((uintptr_t)old, &was);
	void *p = realloc(old, n);
	if (!p) {
		if (had && n)
			sample_reinsert(&was);
		return p;
	}
	native_after(p, n);
	return p;
}

static void *nat_reallocarray(void *old, size_t k, size_t n)
{
	size_t bytes;
	if (__builtin_mul_overflow(k, n, &bytes))
		return reallocarray(old, k, n);	/* sets ENOMEM, allocates nothing */
	return nat_realloc(old, bytes);
}

static void nat_free(void *p)
{
	native_forget(p);
	free(p);
}

static int nat_posix_memalign(void **out, size_t align, size_t n)
{
	int rc = posix_memalign(out, align, n);
	if (rc == 0)
		native_new(*out, n);
	return rc;
}

static void *nat_aligned_alloc(size_t align, size_t n)
{
	return native_new(aligned_alloc(align, n), n);
}

static void *nat_memalign(size_t align, size_t n)
{
	return native_new(memalign(align, n), n);
}

static void *nat_valloc(size_t n)
{
	return native_new(valloc(n), n);
}

/* ctypes finds a C function with dlsym: through _ctypes's own entry (the
 * only one patched), a lookup of one of the family yields its hook, so that
 * calls through a ctypes function pointer (CDLL(None).malloc) are seen too.
 * Those made before the profiler started are swapped by the agent
 * (profiler.py, with native_funcs()). The pseudo-handles RTLD_NEXT and
 * RTLD_DEFAULT would resolve from this module instead of _ctypes's, which
 * makes no difference to a lookup of the C library's functions; ctypes
 * passes the handles dlopen() gave it. */
static void *nat_dlsym(void *handle, const char *name);

static struct pmt_got_hook g_got_hooks[] = {
	{ .name = "malloc", .hook = (void *)nat_malloc },
	{ .name = "calloc", .hook = (void *)nat_calloc },
	{ .name = "realloc", .hook = (void *)nat_realloc },
	{ .name = "reallocarray", .hook = (void *)nat_reallocarray },
	{ .name = "free", .hook = (void *)nat_free },
	{ .name = "posix_memalign", .hook = (void *)nat_posix_memalign },
	{ .name = "aligned_alloc", .hook = (void *)nat_aligned_alloc },
	{ .name = "memalign", .hook = (void *)nat_memalign },
	{ .name = "valloc", .hook = (void *)nat_valloc },
	{ .name = "dlsym", .hook = (void *)nat_dlsym, .restricted = 1 },
};
#define NGOT_HOOKS ((int)(sizeof g_got_hooks / sizeof g_got_hooks[0]))
#define NGOT_ALLOC (NGOT_HOOKS - 1)	/* the malloc family: all but dlsym */
#define GOT_DLSYM NGOT_ALLOC

static void *nat_dlsym(void *handle, const char *name)
{
	void *p = dlsym(handle, name);
	if (p && atomic_load_explicit(&g_native_on, memory_order_relaxed))
		for (int h = 0; h < NGOT_ALLOC; h++)
			if (p == g_got_hooks[h].target || p == g_got_hooks[h].bound)
				return g_got_hooks[h].hook;
	return p;
}

/* An address inside _ctypes's shared object (one of its functions), or NULL
 * while it is not imported. Read from the module's dict: no attribute
 * lookup that could run Python code. GIL held. */
static const void *ctypes_code(void)
{
	PyObject *mods = PySys_GetObject("modules");	/* borrowed */
	PyObject *m = mods && PyDict_Check(mods) ? PyDict_GetItemString(mods, "_ctypes") : NULL;
	if (m == NULL || !PyModule_Check(m))
		return NULL;
	PyObject *f = PyDict_GetItemString(PyModule_GetDict(m), "dlopen");
	if (f == NULL || !PyCFunction_Check(f))
		return NULL;
	return (const void *)PyCFunction_GetFunction(f);
}

static void got_setup(struct pmt_got *g)
{
	g_got_hooks[0].target = (void *)malloc;
	g_got_hooks[1].target = (void *)calloc;
	g_got_hooks[2].target = (void *)realloc;
	g_got_hooks[3].target = (void *)reallocarray;
	g_got_hooks[4].target = (void *)free;
	g_got_hooks[5].target = (void *)posix_memalign;
	g_got_hooks[6].target = (void *)aligned_alloc;
	g_got_hooks[7].target = (void *)memalign;
	g_got_hooks[8].target = (void *)valloc;
	g_got_hooks[GOT_DLSYM].target = (void *)dlsym;
	g_got_hooks[GOT_DLSYM].only = ctypes_code();
	memset(g, 0, sizeof *g);
	g->hooks = g_got_hooks;
	g->nhooks = NGOT_HOOKS;
	g->self = (const void *)got_setup;
	/* The interpreter (executable or libpython): its allocations are the
	 * PEP 445 domains' */
	g->skip[g->nskip++] = (const void *)PyMem_RawMalloc;
	pmt_got_bind(g);
}

/* Patches every loaded object (GIL held, the profiler on). Returns 0 or -1
 * (errno set; what was patched is restored). */
static int native_start(void)
{
	pthread_mutex_lock(&g_mu);
	g_nostack_id = stack_intern(NULL, 0, 0, 1);
	pthread_mutex_unlock(&g_mu);
	if (!g_nostack_id) {
		errno = ENOMEM;
		return -1;
	}
	pthread_mutex_lock(&g_got_mu);
	got_setup(&g_got);
	atomic_store(&g_native_on, 1);
	int rc = pmt_got_apply(&g_got);
	if (rc < 0) {
		g_got_error = errno;
		atomic_store(&g_native_on, 0);
		pmt_got_restore(&g_got);
		errno = g_got_error;
	}
	pthread_mutex_unlock(&g_got_mu);
	return rc;
}

/* Puts every entry back (the hooks stay: a thread may be inside one). */
static void native_stop(void)
{
	if (!atomic_exchange(&g_native_on, 0))
		return;
	pthread_mutex_lock(&g_got_mu);
	pmt_got_restore(&g_got);
	pthread_mutex_unlock(&g_got_mu);
}

/* sys._debugmallocstats() prints only while pymalloc itself is the object
 * allocator: with this hook on top of it, pymalloc is put back for the call
 * (the GIL is held: nothing allocates objects meanwhile; the call allocates
 * none) and the hook after it. The text, written to memory, never to the
 * target's stderr; None when pymalloc is not what is under the hook (it is
 * not in use, or tracemalloc sits between). */
static PyObject *sp_pymalloc_text(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	int (*fn)(FILE *) = NULL;
	*(void **)&fn = dlsym(RTLD_DEFAULT, "_PyObject_DebugMallocStats");
	if (fn == NULL)
		Py_RETURN_NONE;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return PyErr_SetFromErrno(PyExc_OSError);
	struct hook *h = g_hooks[2];
	int swapped = h && h->installed && hook_on_top(h);
	if (swapped)
		PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &h->orig);
	int used = fn(f);
	if (swapped)
		PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &h->mine);
	if (fclose(f) != 0) {
		free(buf);
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	PyObject *res = used ? PyUnicode_DecodeLatin1(buf, (Py_ssize_t)len, NULL) : (Py_INCREF(Py_None), Py_None);
	free(buf);
	return res;
}

/* ------------------------------------------------------------------------ */
/* Call counting                                                              */

static inline size_t code_home(PyObject *code, size_t cap)
{
	return (size_t)(mix64((uint64_t)(uintptr_t)code) & (cap - 1));
}

static int calls_grow(void)
{
	size_t ncap = g_calls_cap ? g_calls_cap * 2 : 1024;
	struct callstat *nt = calloc(ncap, sizeof(*nt));
	if (!nt)
		return -1;
	for (size_t i = 0; i < g_calls_cap; i++) {
		if (!g_calls[i].code)
			continue;
		size_t j = code_home(g_calls[i].code, ncap);
		while (nt[j].code)
			j = (j + 1) & (ncap - 1);
		nt[j] = g_calls[i];
	}
	free(g_calls);
	g_calls = nt;
	g_calls_cap = ncap;
	/* indexes on shadow stacks are stale: bump their generation */
	return 0;
}

static unsigned g_calls_gen = 1;	/* shadow stacks of older gens are dropped */

/* Index + 1 of the code's entry, 0 when full. GIL held. */
static uint32_t calls_get(PyObject *code)
{
	if (g_calls_cap) {
		size_t mask = g_calls_cap - 1;
		for (size_t j = code_home(code, g_calls_cap); g_calls[j].code; j = (j + 1) & mask)
			if (g_calls[j].code == code)
				return (uint32_t)j + 1;
	}
	if (g_ncalls >= g_max_calls)
		return 0;
	if ((g_ncalls + 1) * 2 > g_calls_cap) {
		if (calls_grow() < 0)
			return 0;
		g_calls_gen++;
	}
	size_t mask = g_calls_cap - 1, j = code_home(code, g_calls_cap);
	while (g_calls[j].code)
		j = (j + 1) & mask;
	Py_INCREF(code);
	g_calls[j].code = code;
	g_ncalls++;
	return (uint32_t)j + 1;
}

static inline void call_enter(PyObject *code, int start)
{
	if (!g_counting_calls)
		return;
	struct tl_state *me = &tl;
	if (me->ignore)
		return;
	struct tl_calls *c = tlc_get();
	if (!c && !(c = tlc_new()))
		return;
	if (c->gen != g_calls_gen) {
		c->gen = g_calls_gen;
		c->sp = 0;
	}
	uint32_t idx = calls_get(code);
	if (c->gen != g_calls_gen) {	/* the table grew: indexes moved */
		c->gen = g_calls_gen;
		c->sp = 0;
	}
	if (!idx) {
		g_dropped_calls++;
	} else if (start) {
		g_calls[idx - 1].calls++;
	}
	if (c->sp < CALL_DEPTH) {
		c->stk[c->sp].idx = idx;
		c->stk[c->sp].sampled0 = me->sampled;
	}
	c->sp++;
}

static inline void call_leave(PyObject *code)
{
	if (!g_counting_calls)
		return;
	struct tl_calls *c = tlc_get();
	if (!c || c->gen != g_calls_gen || c->sp == 0)
		return;	/* a frame entered before counting started */
	c->sp--;
	if (c->sp >= CALL_DEPTH)
		return;
	struct call_frame *f = &c->stk[c->sp];
	if (!f->idx)
		return;
	struct callstat *s = &g_calls[f->idx - 1];
	if (s->code != code) {
		/* a missed event: resynchronise by dropping this thread's stack */
		c->sp = 0;
		return;
	}
	double d = tl.sampled - f->sampled0;
	if (d > s->largest)
		s->largest = d;
}

static PyObject *mon_start(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	if (nargs >= 1)
		call_enter(args[0], 1);
	Py_RETURN_NONE;
}

static PyObject *mon_resume(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	if (nargs >= 1)
		call_enter(args[0], 0);
	Py_RETURN_NONE;
}

static PyObject *mon_leave(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	if (nargs >= 1)
		call_leave(args[0]);
	Py_RETURN_NONE;
}

static PyObject *frame_code(PyFrameObject *frame)
{
#if PY_VERSION_HEX >= 0x03090000
	PyCodeObject *c = PyFrame_GetCode(frame);
	Py_DECREF(c);
	return (PyObject *)c;
#else
	return (PyObject *)frame->f_code;
#endif
}

#define GEN_FLAGS (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)

static int frame_is_start(PyFrameObject *frame, PyObject *code)
{
	if (!(((PyCodeObject *)code)->co_flags & GEN_FLAGS))
		return 1;
#if PY_VERSION_HEX >= 0x030B0000
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
		call_enter(code, frame_is_start(frame, code));
	} else if (what == PyTrace_RETURN) {
		call_leave(frame_code(frame));
	}
	return 0;
}

static int g_prof_installed;

static void prof_set_all(Py_tracefunc func)
{
#if PY_VERSION_HEX >= 0x030C0000
	PyEval_SetProfileAllThreads(func, NULL);
#else
	PyThreadState *me = PyThreadState_Get();
	PyInterpreterState *interp = me->interp;
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

static PyObject *sp_profile_conflict(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	PyThreadState *me = PyThreadState_Get();
	for (PyThreadState *ts = PyInterpreterState_ThreadHead(me->interp); ts; ts = PyThreadState_Next(ts))
		if (ts->c_profilefunc && ts->c_profilefunc != prof_hook)
			Py_RETURN_TRUE;
	Py_RETURN_FALSE;
}

/* threading.setprofile() target for threads started while the profile hook
 * is on (3.8-3.11): the first event swaps in the C hook. */
static PyObject *sp_thread_hook(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
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
		call_enter(code, frame_is_start(frame, code));
	}
	Py_RETURN_NONE;
}

static void calls_free_all(void)
{
	for (size_t i = 0; i < g_calls_cap; i++)
		Py_XDECREF(g_calls[i].code);
	free(g_calls);
	g_calls = NULL;
	g_calls_cap = g_ncalls = 0;
	g_dropped_calls = 0;
	g_calls_gen++;
	tlc_free_all();
}

/* ------------------------------------------------------------------------ */
/* Start, stop, report                                                       */

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define BITS_BYTES (((size_t)1 << FILTER_BITS) / 8)
#define COUNTS_BYTES ((size_t)1 << FILTER_BITS)

/* Resident bytes of a mapping: pages never touched cost nothing. */
static size_t resident(const void *addr, size_t len)
{
	if (!addr)
		return 0;
	size_t page = 4096, npages = (len + page - 1) / page, n = 0;
	unsigned char vec[COUNTS_BYTES / 4096];
	if (npages > sizeof vec || mincore((void *)addr, len, vec) != 0)
		return len;
	for (size_t i = 0; i < npages; i++)
		n += vec[i] & 1;
	return n * page;
}

static size_t filter_resident(void)
{
	if (!atomic_load(&g_filter_on))
		return 0;
	return resident((const void *)g_bits, BITS_BYTES) + resident(g_counts, COUNTS_BYTES);
}

static size_t memory_used(void)
{
	return g_table_cap * sizeof(struct sample) + filter_resident()
	       + g_stacks_cap * sizeof(struct stack *) + g_stack_index_cap * sizeof(uint32_t)
	       + g_stack_bytes + g_calls_cap * sizeof(struct callstat) + g_pend_bytes;
}

/* Frees every table (g_on is 0, GIL held). The tables are detached under the
 * lock; code references are dropped after it, since a deallocation frees
 * memory through our hook. */
static void release_all(void)
{
	pthread_mutex_lock(&g_mu);
	struct stack **stacks = g_stacks;
	size_t nstacks = g_nstacks;
	g_stacks = NULL;
	g_nstacks = g_stacks_cap = 0;
	free(g_stack_index);
	g_stack_index = NULL;
	g_stack_index_cap = 0;
	g_stack_bytes = 0;
	free(g_table);
	g_table = NULL;
	g_table_cap = g_nsamples = 0;
	int filter = atomic_exchange(&g_filter_on, 0);
	g_dropped_samples = g_dropped_stacks = g_total_samples = 0;
	g_dropped_bytes = g_nogil_bytes = g_live_malloc = 0;
	g_nostack_id = 0;
	pend_free_all();
	pthread_mutex_unlock(&g_mu);
	if (filter) {
		madvise((void *)g_bits, BITS_BYTES, MADV_DONTNEED);
		madvise(g_counts, COUNTS_BYTES, MADV_DONTNEED);
	}
	for (size_t id = 1; id < nstacks; id++) {
		struct stack *s = stacks[id];
		for (uint32_t i = 0; i < s->n; i++)
			Py_DECREF(s->f[i].code);
		free(s);
	}
	free(stacks);
	calls_free_all();
}

static PyObject *sp_start(PyObject *self, PyObject *args, PyObject *kw)
{
	(void)self;
	static char *names[] = { "interval", "nframe", "max_samples", "max_stacks", "calls", "native", NULL };
	double interval = 524288.0;
	int nframe = 64, calls = 0, native = 0;
	Py_ssize_t max_samples = 1 << 20, max_stacks = 1 << 16;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|dinnpp", names, &interval, &nframe,
					 &max_samples, &max_stacks, &calls, &native))
		return NULL;
	if (!(interval >= 1 && interval <= 1e12) || nframe < 1 || nframe > MAX_NFRAME
	    || max_samples < 1 || max_samples > (1 << 26) || max_stacks < 1 || max_stacks > (1 << 24)) {
		PyErr_SetString(PyExc_ValueError, "argument out of range");
		return NULL;
	}
	if (atomic_load(&g_on)) {
		PyErr_SetString(PyExc_RuntimeError, "the profiler is already running");
		return NULL;
	}
	release_all();
	if (!g_bits) {
		void *b = mmap(NULL, BITS_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (b == MAP_FAILED)
			return PyErr_NoMemory();
		void *c = mmap(NULL, COUNTS_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (c == MAP_FAILED) {
			munmap(b, BITS_BYTES);
			return PyErr_NoMemory();
		}
		g_bits = b;
		g_counts = c;
	}
	pthread_mutex_lock(&g_mu);
	atomic_store(&g_filter_on, 1);
	g_interval = interval;
	g_exact = interval <= 1.0;
	g_nframe = nframe;
	g_max_samples = (size_t)max_samples;
	g_max_stacks = (size_t)max_stacks;
	pthread_mutex_unlock(&g_mu);
	g_started = mono_now();
	atomic_fetch_add(&g_gen, 1);
	atomic_store(&g_on, 1);
	hooks_install();
	g_got_error = 0;
	if (native && native_start() < 0)
		g_got_error = errno ? errno : EIO;	/* said in status(); Python's side runs on */
	if (calls) {
		g_counting_calls = 1;
		g_calls_gen++;
	}
	Py_RETURN_NONE;
}

/* Installs the C profile hook (3.8-3.11 path, or 3.12+ without monitoring). */
static PyObject *sp_profile_hook(PyObject *self, PyObject *arg)
{
	(void)self;
	int on = PyObject_IsTrue(arg);
	if (on < 0)
		return NULL;
	if (on && !g_prof_installed) {
		prof_set_all(prof_hook);
		g_prof_installed = 1;
	} else if (!on && g_prof_installed) {
		prof_set_all(NULL);
		g_prof_installed = 0;
	}
	Py_RETURN_NONE;
}

static PyObject *sp_stop(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	if (g_prof_installed) {
		prof_set_all(NULL);
		g_prof_installed = 0;
	}
	g_counting_calls = 0;
	native_stop();
	atomic_store(&g_on, 0);
	int left = hooks_remove();
	release_all();
	return PyLong_FromLong(left);
}

/* Patches the objects loaded since the last pass (the agent calls it every
 * second or so; a look at the loader's counters when nothing changed).
 * Returns the number of entries newly patched. */
static PyObject *sp_native_rescan(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	size_t added = 0;
	pthread_mutex_lock(&g_got_mu);
	if (atomic_load(&g_native_on) && g_got_hooks[GOT_DLSYM].only == NULL)
		g_got_hooks[GOT_DLSYM].only = ctypes_code();	/* imported since */
	if (atomic_load(&g_native_on) && pmt_got_changed(&g_got)) {
		size_t before = g_got.nslots;
		if (pmt_got_apply(&g_got) < 0)
			g_got_error = errno ? errno : EIO;
		added = g_got.nslots - before;
	}
	pthread_mutex_unlock(&g_got_mu);
	return PyLong_FromSize_t(added);
}

/* [(hook, function, bound)] of the malloc family: the addresses a ctypes
 * function pointer made before the profiler started may hold (the function
 * as this module sees it, or as a library's call is bound to it), and what
 * the agent swaps them for while the hooks are on. */
static PyObject *sp_native_funcs(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	PyObject *out = PyList_New(0);
	for (int h = 0; out && h < NGOT_ALLOC; h++) {
		PyObject *row = Py_BuildValue("(KKK)", (unsigned long long)(uintptr_t)g_got_hooks[h].hook,
					      (unsigned long long)(uintptr_t)g_got_hooks[h].target,
					      (unsigned long long)(uintptr_t)g_got_hooks[h].bound);
		if (row == NULL || PyList_Append(out, row) < 0)
			Py_CLEAR(out);
		Py_XDECREF(row);
	}
	return out;
}

/* [(object, symbol-index, address, value)] of every entry the native hooks
 * would patch or have patched, in every loaded object: for tests that the
 * entries are put back byte for byte. */
struct entries_ctx {
	PyObject *out;
	struct pmt_got probe;
	int failed;
};

static int entries_object(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct entries_ctx *c = data;
	if (pmt_got_skip(info, &c->probe))
		return 0;
	const ElfW(Dyn) *dyn = NULL;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	if (!dyn)
		return 0;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const ElfW(Rela) *tabs[2] = { NULL, NULL };
	size_t sizes[2] = { 0, 0 };
	for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_SYMTAB) symtab = (const ElfW(Sym) *)pmt_got_ptr(info, d->d_un.d_ptr);
		else if (d->d_tag == DT_STRTAB) strtab = (const char *)pmt_got_ptr(info, d->d_un.d_ptr);
		else if (d->d_tag == DT_JMPREL) tabs[0] = (const ElfW(Rela) *)pmt_got_ptr(info, d->d_un.d_ptr);
		else if (d->d_tag == DT_PLTRELSZ) sizes[0] = d->d_un.d_val;
		else if (d->d_tag == DT_RELA) tabs[1] = (const ElfW(Rela) *)pmt_got_ptr(info, d->d_un.d_ptr);
		else if (d->d_tag == DT_RELASZ) sizes[1] = d->d_un.d_val;
	}
	if (!symtab || !strtab)
		return 0;
	for (int t = 0; t < 2; t++) {
		for (size_t i = 0; tabs[t] && i < sizes[t] / sizeof(ElfW(Rela)); i++) {
			const ElfW(Rela) *r = &tabs[t][i];
			unsigned long type = ELF64_R_TYPE(r->r_info), sym = ELF64_R_SYM(r->r_info);
			if ((type != PMT_GOT_JUMP_SLOT && type != PMT_GOT_GLOB_DAT && type != PMT_GOT_ABS) || !sym)
				continue;
			const char *name = strtab + symtab[sym].st_name;
			for (int h = 0; h < NGOT_HOOKS; h++) {
				if (strcmp(name, g_got_hooks[h].name) != 0)
					continue;
				void **addr = (void **)(info->dlpi_addr + r->r_offset);
				PyObject *row = Py_BuildValue("(ssKK)", info->dlpi_name ? info->dlpi_name : "", name,
							      (unsigned long long)(uintptr_t)addr,
							      (unsigned long long)(uintptr_t)*addr);
				if (!row || PyList_Append(c->out, row) < 0) {
					Py_XDECREF(row);
					c->failed = 1;
					return 1;
				}
				Py_DECREF(row);
			}
		}
	}
	return 0;
}

static PyObject *sp_got_entries(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	struct entries_ctx c;
	c.out = PyList_New(0);
	c.failed = 0;
	if (!c.out)
		return NULL;
	pthread_mutex_lock(&g_got_mu);
	got_setup(&c.probe);
	pthread_mutex_unlock(&g_got_mu);
	dl_iterate_phdr(entries_object, &c);
	if (c.failed) {
		Py_DECREF(c.out);
		return NULL;
	}
	return c.out;
}

/* Re-installs the hook where something dropped it. The samples stay, but
 * frees that went around the hook were missed: returns how many domains
 * were lost so the caller can say so. */
static PyObject *sp_check_hooks(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	if (!atomic_load(&g_on))
		return PyLong_FromLong(0);
	int seen[3], lost = 0;
	hooks_probe(seen);
	for (int d = 0; d < 3; d++)
		lost += !seen[d];
	if (lost)
		hooks_install();
	return PyLong_FromLong(lost);
}

static PyObject *sp_ignore_thread(PyObject *self, PyObject *arg)
{
	(void)self;
	int on = PyObject_IsTrue(arg);
	if (on < 0)
		return NULL;
	tl.ignore = on;
	Py_RETURN_NONE;
}

static PyObject *sp_status(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	int on_top = 0, installed = 0;
	for (int d = 0; d < 3; d++) {
		installed += g_hooks[d] && g_hooks[d]->installed;
		on_top += g_hooks[d] && g_hooks[d]->installed && hook_on_top(g_hooks[d]);
	}
	long nstk = call_stacks_now();
	/* copy under the lock, build after: building allocates */
	pthread_mutex_lock(&g_mu);
	double live = 0, blocks = 0, native_live = 0, native_nostack = 0;
	for (size_t id = 1; id < g_nstacks; id++) {
		live += g_stacks[id]->live_bytes;
		blocks += g_stacks[id]->live_blocks;
		if (g_stacks[id]->native)
			native_live += g_stacks[id]->live_bytes;
	}
	if (g_nostack_id)
		native_nostack = g_stacks[g_nostack_id]->live_bytes;
	size_t nsamples = g_nsamples, nstacks = g_nstacks ? g_nstacks - 1 : 0, mem = memory_used();
	uint64_t dsamples = g_dropped_samples, dstacks = g_dropped_stacks, total = g_total_samples;
	double dbytes = g_dropped_bytes, nogil = g_nogil_bytes;
	double in_malloc = g_nsamples ? (g_live_malloc > 0 ? g_live_malloc : 0) : 0;
	pthread_mutex_unlock(&g_mu);
	pthread_mutex_lock(&g_got_mu);
	Py_ssize_t got_slots = atomic_load(&g_native_on) ? (Py_ssize_t)g_got.nslots : 0;
	Py_ssize_t got_objects = atomic_load(&g_native_on) ? (Py_ssize_t)g_got.objects : 0;
	pthread_mutex_unlock(&g_got_mu);
	PyObject *native = Py_BuildValue("{s:O,s:n,s:n,s:d,s:d,s:i}",
		"on", atomic_load(&g_native_on) ? Py_True : Py_False,
		"entries", got_slots, "objects", got_objects,
		"live_bytes", native_live > 0 ? native_live : 0.0,
		"no_stack_bytes", native_nostack > 0 ? native_nostack : 0.0,
		"errno", g_got_error);
	if (!native)
		return NULL;
	PyObject *r = Py_BuildValue(
		"{s:O,s:d,s:i,s:n,s:n,s:n,s:n,s:K,s:K,s:d,s:K,s:d,s:n,s:d,s:d,s:d,s:d,s:i,s:i,s:O,s:n,s:K,s:l,s:n,s:N}",
		"running", atomic_load(&g_on) ? Py_True : Py_False,
		"interval", g_interval, "nframe", g_nframe,
		"samples", (Py_ssize_t)nsamples, "max_samples", (Py_ssize_t)g_max_samples,
		"stacks", (Py_ssize_t)nstacks, "max_stacks", (Py_ssize_t)g_max_stacks,
		"dropped_samples", (unsigned long long)dsamples,
		"dropped_stacks", (unsigned long long)dstacks,
		"dropped_bytes", dbytes,
		"total_samples", (unsigned long long)total,
		"nogil_bytes", nogil,
		"memory", (Py_ssize_t)mem,
		"live_bytes", live, "live_blocks", blocks, "live_malloc_bytes", in_malloc,
		"elapsed", atomic_load(&g_on) ? mono_now() - g_started : 0.0,
		"hooks_installed", installed, "hooks_on_top", on_top,
		"calls", g_counting_calls ? Py_True : Py_False,
		"functions_counted", (Py_ssize_t)g_ncalls,
		"dropped_calls", (unsigned long long)g_dropped_calls,
		"call_stacks", nstk,
		"call_stack_bytes", (Py_ssize_t)(nstk * (long)sizeof(struct tl_calls)),
		"native", native);
	return r;
}

/* (filename, lineno, name, firstlineno) for one frame; memoised per report in
 * `cache` keyed by (code, lasti). */
static PyObject *frame_info(PyObject *cache, const struct frame *f)
{
	PyObject *key = Py_BuildValue("(Oi)", f->code, f->lasti);
	if (!key)
		return NULL;
	PyObject *v = PyDict_GetItemWithError(cache, key);
	if (v) {
		Py_DECREF(key);
		Py_INCREF(v);
		return v;
	}
	if (PyErr_Occurred()) {
		Py_DECREF(key);
		return NULL;
	}
	PyCodeObject *co = (PyCodeObject *)f->code;
	int line = PyCode_Addr2Line(co, f->lasti);
	if (line < 0)	/* before the first instruction */
		line = co->co_firstlineno > 0 ? co->co_firstlineno : 0;
#if PY_VERSION_HEX >= 0x030B0000
	PyObject *name = co->co_qualname;
#else
	PyObject *name = co->co_name;
#endif
	v = Py_BuildValue("(OiOi)", co->co_filename, line, name, co->co_firstlineno);
	if (!v || PyDict_SetItem(cache, key, v) < 0) {
		Py_XDECREF(v);
		v = NULL;
	}
	Py_DECREF(key);
	return v;
}

/* [(frames, live_bytes, live_blocks, alloc_bytes, alloc_blocks, truncated, native)]
 * for every stack; frames innermost first, each (file, line, name, firstline).
 * Stacks with nothing alive and nothing allocated are left out. */
static PyObject *sp_stacks(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	/* copy the numbers under the lock, build objects after: building them
	 * allocates, and frees of sampled blocks take the lock */
	pthread_mutex_lock(&g_mu);
	size_t n = g_nstacks ? g_nstacks - 1 : 0;
	struct row { uint32_t id; double lb, lk, ab, ak; } *rows = n ? malloc(n * sizeof(*rows)) : NULL;
	size_t k = 0;
	if (rows) {
		for (size_t id = 1; id < g_nstacks; id++) {
			struct stack *s = g_stacks[id];
			if (s->samples == 0 && s->alloc_bytes == 0)
				continue;
			rows[k++] = (struct row){ (uint32_t)id, s->live_bytes, s->live_blocks,
						  s->alloc_bytes, s->alloc_blocks };
		}
	}
	pthread_mutex_unlock(&g_mu);
	if (n && !rows)
		return PyErr_NoMemory();
	/* The stack records themselves are only freed by stop/start, which need
	 * the GIL we hold: reading them without the lock is safe. */
	PyObject *out = PyList_New(0), *cache = PyDict_New();
	if (!out || !cache)
		goto fail;
	for (size_t i = 0; i < k; i++) {
		struct stack *s = g_stacks[rows[i].id];
		PyObject *frames = PyTuple_New(s->n);
		if (!frames)
			goto fail;
		for (uint32_t j = 0; j < s->n; j++) {
			PyObject *fi = frame_info(cache, &s->f[j]);
			if (!fi) {
				Py_DECREF(frames);
				goto fail;
			}
			PyTuple_SET_ITEM(frames, j, fi);
		}
		PyObject *row = Py_BuildValue("(NddddOO)", frames, rows[i].lb, rows[i].lk,
					      rows[i].ab, rows[i].ak, s->truncated ? Py_True : Py_False,
					      s->native ? Py_True : Py_False);
		if (!row || PyList_Append(out, row) < 0) {
			Py_XDECREF(row);
			goto fail;
		}
		Py_DECREF(row);
	}
	free(rows);
	Py_DECREF(cache);
	return out;
fail:
	free(rows);
	Py_XDECREF(cache);
	Py_XDECREF(out);
	return NULL;
}

/* [(filename, name, firstlineno, calls, largest)] for counted code objects. */
static PyObject *sp_calls(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	PyObject *out = PyList_New(0);
	if (!out)
		return NULL;
	for (size_t i = 0; i < g_calls_cap; i++) {
		struct callstat *s = &g_calls[i];
		if (!s->code)
			continue;
		PyCodeObject *co = (PyCodeObject *)s->code;
#if PY_VERSION_HEX >= 0x030B0000
		PyObject *name = co->co_qualname;
#else
		PyObject *name = co->co_name;
#endif
		PyObject *row = Py_BuildValue("(OOiKd)", co->co_filename, name, co->co_firstlineno,
					      (unsigned long long)s->calls, s->largest);
		if (!row || PyList_Append(out, row) < 0) {
			Py_XDECREF(row);
			Py_DECREF(out);
			return NULL;
		}
		Py_DECREF(row);
	}
	return out;
}

/* Weight of one sampled block of `size` bytes at the current interval: used
 * by tests to check the estimator. */
static PyObject *sp_weight(PyObject *self, PyObject *arg)
{
	(void)self;
	unsigned long long size = PyLong_AsUnsignedLongLong(arg);
	if (size == (unsigned long long)-1 && PyErr_Occurred())
		return NULL;
	return PyFloat_FromDouble(weight_of(size));
}

static PyMethodDef sp_methods[] = {
	{"start", (PyCFunction)(void (*)(void))sp_start, METH_VARARGS | METH_KEYWORDS,
	 "start(interval=524288, nframe=64, max_samples=1<<20, max_stacks=1<<16, calls=False, native=False)"},
	{"native_rescan", sp_native_rescan, METH_NOARGS, "native_rescan(): patch objects loaded since."},
	{"native_funcs", sp_native_funcs, METH_NOARGS, "native_funcs(): [(hook, function, bound)] of the malloc family."},
	{"got_entries", sp_got_entries, METH_NOARGS, "got_entries(): [(object, symbol, address, value)]."},
	{"stop", sp_stop, METH_NOARGS, "stop(): remove the hooks (LIFO-safe) and free everything."},
	{"status", sp_status, METH_NOARGS, "status(): counters and memory."},
	{"stacks", sp_stacks, METH_NOARGS, "stacks(): per-stack estimates."},
	{"calls", sp_calls, METH_NOARGS, "calls(): per-code call counts."},
	{"check_hooks", sp_check_hooks, METH_NOARGS, "check_hooks(): re-install dropped hooks."},
	{"ignore_thread", sp_ignore_thread, METH_O, "ignore_thread(flag): never sample this thread."},
	{"profile_hook", sp_profile_hook, METH_O, "profile_hook(flag): C profile hook for call counting."},
	{"profile_conflict", sp_profile_conflict, METH_NOARGS, "profile_conflict(): another C profiler set?"},
	{"thread_hook", (PyCFunction)(void (*)(void))sp_thread_hook, METH_FASTCALL, "threading.setprofile target."},
	{"mon_start", (PyCFunction)(void (*)(void))mon_start, METH_FASTCALL, "PY_START callback."},
	{"mon_resume", (PyCFunction)(void (*)(void))mon_resume, METH_FASTCALL, "PY_RESUME/PY_THROW callback."},
	{"mon_leave", (PyCFunction)(void (*)(void))mon_leave, METH_FASTCALL, "PY_RETURN/PY_YIELD/PY_UNWIND callback."},
	{"weight", sp_weight, METH_O, "weight(size): bytes one sample of that size stands for."},
	{"pymalloc_text", sp_pymalloc_text, METH_NOARGS, "pymalloc_text(): sys._debugmallocstats() as text, or None."},
	{NULL, NULL, 0, NULL}
};

static struct PyModuleDef sp_module = {
	PyModuleDef_HEAD_INIT, "_pmt_sampler",
	"Sampled allocation profiler for pmt_agent.profiler.", -1, sp_methods,
	NULL, NULL, NULL, NULL
};

static void atfork_child(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	memcpy(&g_mu, &fresh, sizeof(fresh));
	memcpy(&g_calls_mu, &fresh, sizeof(fresh));
	memcpy(&g_got_mu, &fresh, sizeof(fresh));
}

PyMODINIT_FUNC PyInit__pmt_sampler(void);

PyMODINIT_FUNC PyInit__pmt_sampler(void)
{
	static int atfork_done;
	if (!atfork_done) {
		pthread_atfork(NULL, NULL, atfork_child);
		if (pthread_key_create(&g_calls_key, tlc_destroy) != 0
		    || pthread_key_create(&g_pend_key, pend_destroy) != 0) {
			PyErr_SetString(PyExc_OSError, "pthread_key_create failed");
			return NULL;
		}
		atfork_done = 1;
	}
	return PyModule_Create(&sp_module);
}
