/*
 * test_got.c - the GOT patcher of the profiler's native allocation hooks
 * (agent/native/pmt_got.h), on real shared objects: one lazily bound, one
 * with full RELRO (its GOT read-only once relocated).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "pmt_got.h"

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_realloc)(void *, size_t);
static atomic_long mallocs, frees, reallocs;

static void *hook_malloc(size_t n)
{
	atomic_fetch_add(&mallocs, 1);
	return real_malloc(n);
}

static void hook_free(void *p)
{
	atomic_fetch_add(&frees, 1);
	real_free(p);
}

static void *hook_realloc(void *p, size_t n)
{
	atomic_fetch_add(&reallocs, 1);
	return real_realloc(p, n);
}

static struct pmt_got_hook hooks[] = {
	{ .name = "malloc", .hook = (void *)hook_malloc },
	{ .name = "free", .hook = (void *)hook_free },
	{ .name = "realloc", .hook = (void *)hook_realloc },
};

struct lib {
	void *h;
	void *(*alloc)(size_t);
	void (*release)(void *);
	void *(*grow)(void *, size_t);
	void *(*alloc_ptr)(size_t);
};

static struct lib open_lib(const char *path)
{
	struct lib l;
	l.h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (l.h == NULL)
		fail_msg("dlopen %s: %s", path, dlerror());
	*(void **)&l.alloc = dlsym(l.h, "gotcase_alloc");
	*(void **)&l.release = dlsym(l.h, "gotcase_free");
	*(void **)&l.grow = dlsym(l.h, "gotcase_realloc");
	*(void **)&l.alloc_ptr = dlsym(l.h, "gotcase_alloc_ptr");
	assert_non_null(l.alloc);
	return l;
}

static void setup_real(void)
{
	*(void **)&real_malloc = dlsym(RTLD_NEXT, "malloc");
	*(void **)&real_free = dlsym(RTLD_NEXT, "free");
	*(void **)&real_realloc = dlsym(RTLD_NEXT, "realloc");
	assert_non_null(real_malloc);
	hooks[0].target = (void *)real_malloc;
	hooks[1].target = (void *)real_free;
	hooks[2].target = (void *)real_realloc;
}

static void test_patch_and_restore(void **state)
{
	(void)state;
	setup_real();
	struct lib lazy = open_lib(PMT_GOT_LAZY), relro = open_lib(PMT_GOT_RELRO);
	/* A first call resolves the lazy library's PLT entries. */
	lazy.release(lazy.alloc(16));
	struct pmt_got g = { .hooks = hooks, .nhooks = 3, .self = (void *)test_patch_and_restore };
	assert_int_equal(pmt_got_apply(&g), 0);
	assert_true(g.nslots >= 6); /* malloc, free, realloc in each library */
	void *before[256], *now[256];
	size_t n = g.nslots < 256 ? g.nslots : 256;
	for (size_t i = 0; i < n; i++)
		before[i] = g.slots[i].orig;
	int saw_relro = 0;
	for (size_t i = 0; i < g.nslots; i++)
		saw_relro |= g.slots[i].relro;
	assert_true(saw_relro);
	for (int k = 0; k < 2; k++) {
		struct lib *l = k ? &relro : &lazy;
		long m0 = atomic_load(&mallocs), f0 = atomic_load(&frees), r0 = atomic_load(&reallocs);
		void *p = l->grow(l->alloc(100), 200);
		l->release(p);
		assert_int_equal(atomic_load(&mallocs) - m0, 1);
		assert_int_equal(atomic_load(&reallocs) - r0, 1);
		assert_int_equal(atomic_load(&frees) - f0, 1);
	}
	/* A second pass finds nothing more to patch. */
	size_t had = g.nslots;
	assert_int_equal(pmt_got_apply(&g), 0);
	assert_int_equal(g.nslots, had);
	void **addrs[256];
	for (size_t i = 0; i < n; i++)
		addrs[i] = g.slots[i].addr;
	assert_int_equal(pmt_got_restore(&g), had);
	assert_int_equal(g.kept, 0);
	for (size_t i = 0; i < n; i++)
		now[i] = *addrs[i];
	assert_memory_equal(before, now, n * sizeof *now);
	long m0 = atomic_load(&mallocs);
	lazy.release(lazy.alloc(10));
	relro.release(relro.alloc(10));
	assert_int_equal(atomic_load(&mallocs), m0); /* the hooks are out */
	dlclose(lazy.h);
	dlclose(relro.h);
}

/* An entry changed by someone else after us is left with their value. */
static void test_restore_keeps_others(void **state)
{
	(void)state;
	setup_real();
	struct lib lazy = open_lib(PMT_GOT_LAZY);
	struct pmt_got g = { .hooks = hooks, .nhooks = 3, .self = (void *)test_restore_keeps_others };
	assert_int_equal(pmt_got_apply(&g), 0);
	assert_true(g.nslots > 0);
	size_t i;
	for (i = 0; i < g.nslots && g.slots[i].relro; i++)
		;
	assert_true(i < g.nslots);
	void **addr = g.slots[i].addr;
	void *theirs = (void *)hook_free; /* any other value */
	if (g.hooks[g.slots[i].hook].hook == theirs)
		theirs = (void *)hook_malloc;
	*addr = theirs;
	size_t all = g.nslots;
	assert_int_equal(pmt_got_restore(&g), all - 1);
	assert_int_equal(g.kept, 1);
	assert_ptr_equal(*addr, theirs);
	dlclose(lazy.h);
}

static atomic_int stop_load;

static void *load(void *arg)
{
	struct lib *l = arg;
	while (!atomic_load(&stop_load)) {
		void *p[16];
		for (int i = 0; i < 16; i++)
			p[i] = l->alloc((size_t)(16 + i * 40));
		for (int i = 0; i < 16; i++)
			p[i] = l->grow(p[i], (size_t)(64 + i * 80));
		for (int i = 0; i < 16; i++)
			l->release(p[i]);
	}
	return NULL;
}

/* On and off 100 times while 4 threads allocate through both libraries: no
 * crash, every entry back to its value each time. */
static void test_on_off_under_load(void **state)
{
	(void)state;
	setup_real();
	struct lib libs[2] = { open_lib(PMT_GOT_LAZY), open_lib(PMT_GOT_RELRO) };
	libs[0].release(libs[0].alloc(1));
	pthread_t th[4];
	atomic_store(&stop_load, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, load, &libs[i % 2]), 0);
	long calls = atomic_load(&mallocs);
	for (int round = 0; round < 100; round++) {
		struct pmt_got g = { .hooks = hooks, .nhooks = 3, .self = (void *)test_on_off_under_load };
		assert_int_equal(pmt_got_apply(&g), 0);
		void *before[256];
		void **addrs[256];
		size_t n = g.nslots < 256 ? g.nslots : 256;
		for (size_t i = 0; i < n; i++) {
			before[i] = g.slots[i].orig;
			addrs[i] = g.slots[i].addr;
		}
		usleep(1000);
		assert_int_equal(pmt_got_restore(&g), n);
		for (size_t i = 0; i < n; i++)
			assert_ptr_equal(*addrs[i], before[i]);
	}
	atomic_store(&stop_load, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_true(atomic_load(&mallocs) > calls); /* the hooks did run */
	dlclose(libs[0].h);
	dlclose(libs[1].h);
}

/* A pointer variable set to malloc is followed too, and put back. */
static void test_pointer_variable(void **state)
{
	(void)state;
	setup_real();
	struct lib l = open_lib(PMT_GOT_RELRO);
	void *(**var)(size_t) = dlsym(l.h, "gotcase_mallocp");
	assert_non_null(var);
	assert_ptr_equal(*var, real_malloc);
	struct pmt_got g = { .hooks = hooks, .nhooks = 3, .self = (void *)test_pointer_variable };
	assert_int_equal(pmt_got_apply(&g), 0);
	assert_ptr_equal(*var, hook_malloc);
	long m0 = atomic_load(&mallocs);
	real_free(l.alloc_ptr(32));
	assert_int_equal(atomic_load(&mallocs) - m0, 1);
	pmt_got_restore(&g);
	assert_ptr_equal(*var, real_malloc);
	dlclose(l.h);
}

/* Objects named by skip[] are left alone, and so is an entry bound to
 * another function than the one the hook calls. */
static void test_skip_and_foreign(void **state)
{
	(void)state;
	setup_real();
	struct lib lazy = open_lib(PMT_GOT_LAZY), relro = open_lib(PMT_GOT_RELRO);
	lazy.release(lazy.alloc(8));
	struct pmt_got g = { .hooks = hooks, .nhooks = 3, .self = (void *)test_skip_and_foreign,
			     .skip = { (void *)relro.alloc }, .nskip = 1 };
	assert_int_equal(pmt_got_apply(&g), 0);
	long m0 = atomic_load(&mallocs);
	relro.release(relro.alloc(8));
	assert_int_equal(atomic_load(&mallocs), m0); /* skipped */
	lazy.release(lazy.alloc(8));
	assert_int_equal(atomic_load(&mallocs) - m0, 1);
	/* The lazy library's malloc entry, bound now to something else. */
	void **entry = NULL;
	for (size_t i = 0; i < g.nslots; i++)
		if (g.slots[i].hook == 0 && !g.slots[i].relro)
			entry = g.slots[i].addr;
	assert_non_null(entry);
	pmt_got_restore(&g);
	void *theirs = (void *)hook_realloc; /* not malloc: a foreign binding */
	*entry = theirs;
	struct pmt_got g2 = { .hooks = hooks, .nhooks = 3, .self = (void *)test_skip_and_foreign };
	assert_int_equal(pmt_got_apply(&g2), 0);
	for (size_t i = 0; i < g2.nslots; i++)
		assert_ptr_not_equal(g2.slots[i].addr, entry);
	assert_ptr_equal(*entry, theirs);
	pmt_got_restore(&g2);
	*entry = (void *)real_malloc;
	dlclose(lazy.h);
	dlclose(relro.h);
}

/* An object unloaded while patched: the restore leaves its entries (their
 * memory is gone) and counts them. */
static void test_unloaded_object(void **state)
{
	(void)state;
	setup_real();
	struct lib l = open_lib(PMT_GOT_RELRO);
	struct pmt_got g = { .hooks = hooks, .nhooks = 3, .self = (void *)test_unloaded_object };
	assert_int_equal(pmt_got_apply(&g), 0);
	size_t all = g.nslots;
	assert_true(all >= 4);
	assert_false(pmt_got_changed(&g));
	dlclose(l.h);
	assert_true(pmt_got_changed(&g));
	size_t back = pmt_got_restore(&g);
	assert_true(g.gone >= 4);
	assert_int_equal(back + g.gone + g.kept, all);
}

/* A hook restricted to one object (`only`) is patched there and nowhere
 * else; restricted to none (`only` NULL), nowhere. */
static void test_only_one_object(void **state)
{
	(void)state;
	setup_real();
	struct lib lazy = open_lib(PMT_GOT_LAZY), relro = open_lib(PMT_GOT_RELRO);
	lazy.release(lazy.alloc(8));
	hooks[0].restricted = 1;
	hooks[0].only = (void *)relro.alloc;
	struct pmt_got g = { .hooks = hooks, .nhooks = 1, .self = (void *)test_only_one_object };
	assert_int_equal(pmt_got_apply(&g), 0);
	assert_true(g.nslots >= 1);
	long m0 = atomic_load(&mallocs);
	lazy.release(lazy.alloc(8));
	assert_int_equal(atomic_load(&mallocs), m0); /* not that one */
	relro.release(relro.alloc(8));
	assert_int_equal(atomic_load(&mallocs) - m0, 1);
	pmt_got_restore(&g);
	hooks[0].only = NULL;
	struct pmt_got g2 = { .hooks = hooks, .nhooks = 1, .self = (void *)test_only_one_object };
	assert_int_equal(pmt_got_apply(&g2), 0);
	assert_int_equal(g2.nslots, 0);
	pmt_got_restore(&g2);
	hooks[0].restricted = 0;
	dlclose(lazy.h);
	dlclose(relro.h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pointer_variable),
		cmocka_unit_test(test_skip_and_foreign),
		cmocka_unit_test(test_unloaded_object),
		cmocka_unit_test(test_only_one_object),
		cmocka_unit_test(test_patch_and_restore),
		cmocka_unit_test(test_restore_keeps_others),
		cmocka_unit_test(test_on_off_under_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
