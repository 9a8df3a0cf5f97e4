/*
 * elf_sym.c - minimal read-only ELF64 reader (see elf_sym.h).
 *
 * The file is mmap'ed and every table access is bounds-checked against the
 * file size, so a truncated or hostile file yields "not found", never a crash.
 */
#include "collect/elf_sym.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct elf_sym {
	const unsigned char *map;
	size_t size;
	const Elf64_Ehdr *eh;
	const Elf64_Shdr *sh; /* NULL when the section table is unusable */
	const char *shstr;
	size_t shstrsize;
};

static void *xcalloc1(size_t n)
{
	void *p = calloc(1, n);
	if (!p) {
		fputs("pmt-top: out of memory\n", stderr);
		abort();
	}
	return p;
}

/* True when [off, off+len) lies inside the file. */
static int in_file(const struct elf_sym *es, uint64_t off, uint64_t len)
{
	return off <= es->size && len <= es->size - off;
}

struct elf_sym *elf_sym_new(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
		snprintf(err, errlen, "%s is not an ELF file (not a regular file or too small)", path);
		close(fd);
		return NULL;
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
		return NULL;
	}
	struct elf_sym *es = xcalloc1(sizeof *es);
	es->map = map;
	es->size = (size_t)st.st_size;
	es->eh = map;
	const Elf64_Ehdr *eh = es->eh;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
		snprintf(err, errlen, "%s is not an ELF file", path);
		goto fail;
	}
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB) {
		snprintf(err, errlen, "%s is not a 64-bit little-endian ELF file", path);
		goto fail;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || !in_file(es, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr))) {
		snprintf(err, errlen, "%s is truncated or corrupt (program headers)", path);
		goto fail;
	}
	if (eh->e_shnum && eh->e_shentsize == sizeof(Elf64_Shdr) &&
	    in_file(es, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)) && eh->e_shstrndx < eh->e_shnum) {
		es->sh = (const Elf64_Shdr *)(es->map + eh->e_shoff);
		const Elf64_Shdr *s = &es->sh[eh->e_shstrndx];
		if (in_file(es, s->sh_offset, s->sh_size)) {
			es->shstr = (const char *)es->map + s->sh_offset;
			es->shstrsize = s->sh_size;
		} else {
			es->sh = NULL;
		}
	}
	return es;
fail:
	elf_sym_free(es);
	return NULL;
}

void elf_sym_free(struct elf_sym *es)
{
	if (!es)
		return;
	munmap((void *)es->map, es->size);
	free(es);
}

static const char *sec_name(const struct elf_sym *es, const Elf64_Shdr *s)
{
	if (s->sh_name >= es->shstrsize)
		return "";
	const char *n = es->shstr + s->sh_name;
	if (!memchr(n, '\0', es->shstrsize - s->sh_name))
		return "";
	return n;
}

int elf_sym_section(const struct elf_sym *es, const char *name, struct elf_sym_section *out)
{
	if (!es->sh)
		return -1;
	for (unsigned i = 0; i < es->eh->e_shnum; i++) {
		const Elf64_Shdr *s = &es->sh[i];
		if (strcmp(sec_name(es, s), name) == 0) {
			out->addr = s->sh_addr;
			out->offset = s->sh_offset;
			out->size = s->sh_size;
			return 0;
		}
	}
	return -1;
}

uint64_t elf_sym_first_load(const struct elf_sym *es)
{
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(es->map + es->eh->e_phoff);
	for (unsigned i = 0; i < es->eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		uint64_t align = ph[i].p_align ? ph[i].p_align : 4096;
		/* Alignments are powers of two; mappings start on page boundaries. */
		if (align & (align - 1))
			align = 4096;
		return ph[i].p_vaddr & ~(align - 1);
	}
	return 0;
}

int elf_sym_is_dyn(const struct elf_sym *es)
{
	return es->eh->e_type == ET_DYN;
}

/* Searches one symbol table section (SHT_DYNSYM or SHT_SYMTAB). */
static int lookup_in(const struct elf_sym *es, uint32_t type, const char *name, uint64_t *value, uint64_t *size)
{
	for (unsigned i = 0; i < es->eh->e_shnum; i++) {
		const Elf64_Shdr *s = &es->sh[i];
		if (s->sh_type != type || s->sh_entsize != sizeof(Elf64_Sym) || s->sh_link >= es->eh->e_shnum)
			continue;
		const Elf64_Shdr *strs = &es->sh[s->sh_link];
		if (!in_file(es, s->sh_offset, s->sh_size) || !in_file(es, strs->sh_offset, strs->sh_size))
			continue;
		const Elf64_Sym *sym = (const Elf64_Sym *)(es->map + s->sh_offset);
		const char *str = (const char *)es->map + strs->sh_offset;
		size_t n = s->sh_size / sizeof(Elf64_Sym);
		size_t namelen = strlen(name);
		for (size_t k = 0; k < n; k++) {
			if (sym[k].st_shndx == SHN_UNDEF || sym[k].st_name >= strs->sh_size)
				continue;
			if (strs->sh_size - sym[k].st_name <= namelen)
				continue;
			if (memcmp(str + sym[k].st_name, name, namelen + 1) != 0)
				continue;
			*value = sym[k].st_value;
			if (size)
				*size = sym[k].st_size;
			return 0;
		}
	}
	return -1;
}

int elf_sym_lookup(const struct elf_sym *es, const char *name, uint64_t *value, uint64_t *size)
{
	if (!es->sh)
		return -1;
	if (lookup_in(es, SHT_DYNSYM, name, value, size) == 0)
		return 0;
	return lookup_in(es, SHT_SYMTAB, name, value, size);
}

size_t elf_sym_read_vaddr(const struct elf_sym *es, uint64_t addr, void *buf, size_t len)
{
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(es->map + es->eh->e_phoff);
	for (unsigned i = 0; i < es->eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || addr < ph[i].p_vaddr || addr - ph[i].p_vaddr >= ph[i].p_filesz)
			continue;
		uint64_t delta = addr - ph[i].p_vaddr;
		uint64_t avail = ph[i].p_filesz - delta;
		uint64_t off = ph[i].p_offset + delta;
		if (len > avail)
			len = (size_t)avail;
		if (!in_file(es, off, len))
			return 0;
		memcpy(buf, es->map + off, len);
		return len;
	}
	return 0;
}
