/*
 * pmt_got.h - send the calls that the loaded objects make to a few functions
 * (malloc and its family) to hooks, by rewriting their GOT entries, and put
 * every entry back exactly.
 *
 * A shared object calls an imported function through its global offset
 * table: the PLT jumps through a JUMP_SLOT entry, and code built with -fno-plt
 * (or that takes the function's address) loads a GLOB_DAT entry. A pointer
 * variable initialised with the function (libxml2's `xmlMalloc = malloc`) is
 * an absolute relocation (R_X86_64_64) against it. All three are relocations
 * against the function's symbol, listed in the object's dynamic section
 * (DT_JMPREL and DT_RELA), so they are found without reading any file:
 * dl_iterate_phdr gives each loaded object's program headers.
 *
 * Patching: each entry that names a hooked symbol is saved (its address and
 * value) and overwritten with the hook, atomically (one aligned pointer
 * store: a thread calling through it sees the old or the new target, never
 * half of one). An entry inside PT_GNU_RELRO (read-only once relocated) is
 * made writable for the store and read-only again.
 * Restoring: an entry is put back only while it still holds our hook;
 * another tool that patched it after us keeps its own value, and is counted.
 * Entries are put back newest first, from inside dl_iterate_phdr (the
 * loader's lock is held: no object can be unloaded meanwhile), and only in
 * objects still loaded; the entries of an object unloaded since are dropped
 * and counted. The hooks must stay callable after the restore (a thread may
 * have read the entry just before, or kept the address): the code that
 * holds them is never unloaded.
 *
 * Not patched: the dynamic loader, the C library (its own calls to malloc
 * do not go through its GOT), the vDSO, the sanitizers' runtimes (they are
 * allocators), the object that holds the hooks, and the objects that
 * contain an address of skip[] (the interpreter, whose allocations its own
 * allocator hooks see).
 *
 * Header-only, for the profiler's module and for a unit test; no Python.
 * Not thread-safe itself: one caller patches and restores.
 */
#ifndef PMT_GOT_H
#define PMT_GOT_H

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)
#define PMT_GOT_JUMP_SLOT R_X86_64_JUMP_SLOT
#define PMT_GOT_GLOB_DAT R_X86_64_GLOB_DAT
#define PMT_GOT_ABS R_X86_64_64
#elif defined(__aarch64__)
#define PMT_GOT_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define PMT_GOT_GLOB_DAT R_AARCH64_GLOB_DAT
#define PMT_GOT_ABS R_AARCH64_ABS64
#else
#error "pmt_got.h: GOT relocation types are known for x86-64 and aarch64 only"
#endif

struct pmt_got_hook {
	const char *name;   /* "malloc" */
	void *hook;         /* what the entries get */
	void *target;       /* what the hook calls: only entries bound to it (or not
	                     * bound yet) are patched, so the hook changes nothing */
	void *bound;        /* the same function as a JUMP_SLOT sees it (set by
	                     * pmt_got_bind()): a non-PIE executable that takes
	                     * malloc's address makes its own PLT entry the address
	                     * `target` reads, while libraries' calls bind to libc */
	const void *only;   /* when set: patched only in the object that contains
	                     * this address (NULL there: nowhere) */
	int restricted;     /* `only` applies */
};

struct pmt_got_slot {
	void **addr;        /* the GOT entry */
	void *orig;         /* its value before */
	uintptr_t base;     /* its object: load address and program headers */
	const void *phdr;
	int hook;           /* index in the hook table */
	int relro;          /* inside PT_GNU_RELRO: read-only between stores */
	int done;           /* restore: handled */
};

#define PMT_GOT_MAX_SKIP 8

struct pmt_got {
	const struct pmt_got_hook *hooks;
	int nhooks;
	const void *self;   /* an address inside the object that holds the hooks */
	const void *skip[PMT_GOT_MAX_SKIP]; /* addresses inside objects left alone */
	int nskip;
	struct pmt_got_slot *slots;
	size_t nslots, cap;
	size_t objects;     /* objects looked at */
	size_t kept;        /* restore: entries someone else had changed after us */
	size_t gone;        /* restore: entries of objects unloaded since */
	unsigned long long adds, subs; /* the loader's counters at the last pass */
	int failed;         /* an allocation or mprotect failed (errno kept) */
	int restoring;      /* inside pmt_got_restore() */
};

static long pmt_got_page(void)
{
	static long page;
	if (page == 0)
		page = sysconf(_SC_PAGESIZE);
	return page;
}

/* Stores V into the entry, making its page writable around the store when
 * it lies in RELRO. Returns 0, or -1 (errno from mprotect). */
static int pmt_got_store(void **addr, void *v, int relro)
{
	uintptr_t page = (uintptr_t)addr & ~(uintptr_t)(pmt_got_page() - 1);
	if (relro && mprotect((void *)page, (size_t)pmt_got_page(), PROT_READ | PROT_WRITE) < 0)
		return -1;
	__atomic_store_n(addr, v, __ATOMIC_SEQ_CST);
	if (relro)
		mprotect((void *)page, (size_t)pmt_got_page(), PROT_READ);
	return 0;
}

/* Whether an object is one we never patch. */
static int pmt_got_skip(const struct dl_phdr_info *info, const struct pmt_got *g)
{
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	if (strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld-musl", 7) == 0 ||
	    strncmp(base, "libc.so", 7) == 0 || strncmp(base, "linux-vdso", 10) == 0 ||
	    strncmp(base, "linux-gate", 10) == 0 || strncmp(base, "libasan", 7) == 0 ||
	    strncmp(base, "libtsan", 7) == 0 || strncmp(base, "liblsan", 7) == 0 ||
	    strncmp(base, "libubsan", 8) == 0)
		return 1;
	/* The object that holds the hooks (its segments contain SELF), and
	 * those that contain an address of skip[]. */
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type != PT_LOAD)
			continue;
		if ((uintptr_t)g->self >= lo && (uintptr_t)g->self < lo + ph->p_memsz)
			return 1;
		for (int k = 0; k < g->nskip && k < PMT_GOT_MAX_SKIP; k++)
			if ((uintptr_t)g->skip[k] >= lo && (uintptr_t)g->skip[k] < lo + ph->p_memsz)
				return 1;
	}
	return 0;
}

/* Whether ADDR lies in one of the object's loaded segments (a lazily bound
 * entry points to its own PLT until the first call). */
static int pmt_got_inside(const struct dl_phdr_info *info, const void *addr)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (uintptr_t)addr >= lo && (uintptr_t)addr < lo + ph->p_memsz)
			return 1;
	}
	return 0;
}

/* A dynamic-section pointer: relocated in memory by glibc on most
 * architectures, left as a virtual address on some. */
static uintptr_t pmt_got_ptr(const struct dl_phdr_info *info, ElfW(Addr) v)
{
	return v < info->dlpi_addr ? info->dlpi_addr + v : v;
}

static void pmt_got_relocs(struct pmt_got *g, const struct dl_phdr_info *info, const ElfW(Rela) *rel,
			   size_t n, const ElfW(Sym) *symtab, const char *strtab, uintptr_t relro_lo,
			   uintptr_t relro_hi)
{
	for (size_t i = 0; i < n && !g->failed; i++) {
		unsigned long type = ELF64_R_TYPE(rel[i].r_info), sym = ELF64_R_SYM(rel[i].r_info);
		if ((type != PMT_GOT_JUMP_SLOT && type != PMT_GOT_GLOB_DAT &&
		     !(type == PMT_GOT_ABS && rel[i].r_addend == 0)) || sym == 0)
			continue;
		const char *name = strtab + symtab[sym].st_name;
		int h;
		for (h = 0; h < g->nhooks; h++)
			if (strcmp(name, g->hooks[h].name) == 0)
				break;
		if (h == g->nhooks)
			continue;
		if (g->hooks[h].restricted && !(g->hooks[h].only && pmt_got_inside(info, g->hooks[h].only)))
			continue;
		void **addr = (void **)(info->dlpi_addr + rel[i].r_offset);
		void *now = __atomic_load_n(addr, __ATOMIC_SEQ_CST);
		if (now == g->hooks[h].hook)
			continue; /* patched already (a second pass) */
		if (now != g->hooks[h].target && (now != g->hooks[h].bound || now == NULL) &&
		    !(type == PMT_GOT_JUMP_SLOT && pmt_got_inside(info, now)))
			continue; /* bound elsewhere (its own allocator, another tool): left alone */
		if (g->nslots == g->cap) {
			size_t cap = g->cap ? g->cap * 2 : 64;
			struct pmt_got_slot *s = realloc(g->slots, cap * sizeof *s);
			if (s == NULL) {
				g->failed = 1;
				return;
			}
			g->slots = s;
			g->cap = cap;
		}
		int relro = (uintptr_t)addr >= relro_lo && (uintptr_t)addr < relro_hi;
		if (pmt_got_store(addr, g->hooks[h].hook, relro) < 0) {
			g->failed = 1;
			return;
		}
		g->slots[g->nslots++] = (struct pmt_got_slot){ addr, now, info->dlpi_addr,
							      (const void *)info->dlpi_phdr, h, relro, 0 };
	}
}

/* Restore, in one loaded object: its entries that still hold our hook get
 * their value back, newest first. */
static void pmt_got_restore_object(struct pmt_got *g, const struct dl_phdr_info *info)
{
	for (size_t i = g->nslots; i-- > 0;) {
		struct pmt_got_slot *s = &g->slots[i];
		if (s->done || s->base != info->dlpi_addr || s->phdr != (const void *)info->dlpi_phdr)
			continue;
		s->done = 1;
		if (__atomic_load_n(s->addr, __ATOMIC_SEQ_CST) != g->hooks[s->hook].hook)
			g->kept++;
		else if (pmt_got_store(s->addr, s->orig, s->relro) < 0)
			g->failed = 1;
	}
}

#define PMT_GOT_HAS_COUNTERS(size) \
	((size) >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(unsigned long long))

static int pmt_got_object(struct dl_phdr_info *info, size_t size, void *data)
{
	struct pmt_got *g = data;
	if (PMT_GOT_HAS_COUNTERS(size)) {
		g->adds = info->dlpi_adds;
		g->subs = info->dlpi_subs;
	}
	if (g->restoring) {
		pmt_got_restore_object(g, info);
		return 0;
	}
	if (pmt_got_skip(info, g))
		return 0;
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t relro_lo = 0, relro_hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
		else if (ph->p_type == PT_GNU_RELRO) {
			relro_lo = info->dlpi_addr + ph->p_vaddr;
			relro_hi = relro_lo + ph->p_memsz;
		}
	}
	if (dyn == NULL)
		return 0;
	g->objects++;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const ElfW(Rela) *jmprel = NULL, *rela = NULL;
	size_t jmprel_size = 0, rela_size = 0;
	long pltrel = DT_RELA;
	for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB: symtab = (const ElfW(Sym) *)pmt_got_ptr(info, d->d_un.d_ptr); break;
		case DT_STRTAB: strtab = (const char *)pmt_got_ptr(info, d->d_un.d_ptr); break;
		case DT_JMPREL: jmprel = (const ElfW(Rela) *)pmt_got_ptr(info, d->d_un.d_ptr); break;
		case DT_PLTRELSZ: jmprel_size = d->d_un.d_val; break;
		case DT_PLTREL: pltrel = (long)d->d_un.d_val; break;
		case DT_RELA: rela = (const ElfW(Rela) *)pmt_got_ptr(info, d->d_un.d_ptr); break;
		case DT_RELASZ: rela_size = d->d_un.d_val; break;
		default: break;
		}
	}
	if (symtab == NULL || strtab == NULL)
		return 0;
	if (jmprel && pltrel == DT_RELA)
		pmt_got_relocs(g, info, jmprel, jmprel_size / sizeof *jmprel, symtab, strtab, relro_lo, relro_hi);
	if (rela)
		pmt_got_relocs(g, info, rela, rela_size / sizeof *rela, symtab, strtab, relro_lo, relro_hi);
	return g->failed;
}

/* pmt_got_bind(): the values of the hooked names' JUMP_SLOT entries in the
 * objects left alone (the one that holds the hooks, those of skip[]): what
 * their calls are bound to, since they are loaded (or first called). */
static int pmt_got_bind_object(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct pmt_got *g = data;
	int ours = pmt_got_inside(info, g->self);
	for (int k = 0; k < g->nskip && k < PMT_GOT_MAX_SKIP && !ours; k++)
		ours = pmt_got_inside(info, g->skip[k]);
	if (!ours)
		return 0;
	const ElfW(Dyn) *dyn = NULL;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const ElfW(Rela) *rel = NULL;
	size_t n = 0;
	for (const ElfW(Dyn) *d = dyn; d && d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_SYMTAB)
			symtab = (const ElfW(Sym) *)pmt_got_ptr(info, d->d_un.d_ptr);
		else if (d->d_tag == DT_STRTAB)
			strtab = (const char *)pmt_got_ptr(info, d->d_un.d_ptr);
		else if (d->d_tag == DT_JMPREL)
			rel = (const ElfW(Rela) *)pmt_got_ptr(info, d->d_un.d_ptr);
		else if (d->d_tag == DT_PLTRELSZ)
			n = d->d_un.d_val / sizeof(ElfW(Rela));
	}
	for (size_t i = 0; rel && symtab && strtab && i < n; i++) {
		if (ELF64_R_TYPE(rel[i].r_info) != PMT_GOT_JUMP_SLOT)
			continue;
		const char *name = strtab + symtab[ELF64_R_SYM(rel[i].r_info)].st_name;
		void *v = *(void **)(info->dlpi_addr + rel[i].r_offset);
		for (int h = 0; h < g->nhooks; h++)
			if (strcmp(name, g->hooks[h].name) == 0 && !pmt_got_inside(info, v))
				((struct pmt_got_hook *)g->hooks)[h].bound = v;
	}
	return 0;
}

/* Sets each hook's `bound` (the hooks' table must be writable). */
static inline void pmt_got_bind(struct pmt_got *g)
{
	dl_iterate_phdr(pmt_got_bind_object, g);
}

/*
 * Patches every loaded object's entries for G's hooks (again after a
 * dlopen: entries that hold a hook already are left). Returns 0, or -1 when
 * an entry could not be written; what was patched stays recorded, so that
 * pmt_got_restore() puts it back.
 */
static int pmt_got_apply(struct pmt_got *g)
{
	g->objects = 0;
	dl_iterate_phdr(pmt_got_object, g);
	return g->failed ? -1 : 0;
}

/* Puts back every entry that still holds our hook (G->kept counts those
 * another hand changed after us, G->gone those of objects unloaded since).
 * Returns the number put back. */
static size_t pmt_got_restore(struct pmt_got *g)
{
	size_t kept = g->kept, gone = g->gone;
	g->restoring = 1;
	g->failed = 0;
	dl_iterate_phdr(pmt_got_object, g);
	g->restoring = 0;
	for (size_t i = 0; i < g->nslots; i++)
		g->gone += !g->slots[i].done;
	size_t back = g->nslots - (g->kept - kept) - (g->gone - gone);
	free(g->slots);
	g->slots = NULL;
	g->nslots = g->cap = 0;
	return back;
}

static int pmt_got_first(struct dl_phdr_info *info, size_t size, void *data)
{
	unsigned long long *ctr = data;
	if (PMT_GOT_HAS_COUNTERS(size)) {
		ctr[0] = info->dlpi_adds;
		ctr[1] = info->dlpi_subs;
	}
	return 1; /* the counters are the same in every entry: one is enough */
}

/* Whether an object was loaded or unloaded since the last pass (then a new
 * pmt_got_apply() patches what came). */
static int pmt_got_changed(const struct pmt_got *g)
{
	unsigned long long ctr[2] = { g->adds, g->subs };
	dl_iterate_phdr(pmt_got_first, ctr);
	return ctr[0] != g->adds || ctr[1] != g->subs;
}

#endif
