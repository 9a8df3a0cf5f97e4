/*
 * elf_sym.c - minimal read-only ELF64 reader (see elf_sym.h).
 *
 * The file is opened with fsafe_open and read with pread; every table access
 * is bounds-checked against the file size, so a truncated or hostile file
 * yields "not found", never a crash or a hang.
 */
#include "attach/elf_sym.h"

#include "base/fsafe.h"
#include "base/xalloc.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct elf_sym {
	int fd;
	size_t size;
	Elf64_Ehdr eh;
	Elf64_Phdr *ph;       /* e_phnum entries */
	Elf64_Shdr *sh;       /* NULL when the section table is unusable */
	char *shstr;
	size_t shstrsize;
};

/* Larger files are not the binaries of a Python process. */
#define MAX_FILE ((off_t)4 << 30)
#define MAX_TABLE ((uint64_t)256 << 20)

/* True when [off, off+len) lies inside the file. */
static int in_file(const struct elf_sym *es, uint64_t off, uint64_t len)
{
	return off <= es->size && len <= es->size - off;
}

/* Reads [off, off+len) of the file into BUF; 0 when all of it was read. A
 * file truncated since it was opened reads short: "not found", no crash. */
static int read_at(const struct elf_sym *es, uint64_t off, void *buf, size_t len)
{
	size_t n = 0;
	if (!in_file(es, off, len))
		return -1;
	while (n < len) {
		ssize_t r = pread(es->fd, (char *)buf + n, len - n, (off_t)(off + n));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n += (size_t)r;
	}
	return 0;
}

/* A heap copy of [off, off+len), or NULL (tables past MAX_TABLE are not
 * believed: a hostile header must not make us allocate gigabytes). */
static void *read_copy(const struct elf_sym *es, uint64_t off, uint64_t len)
{
	if (len > MAX_TABLE || !in_file(es, off, len))
		return NULL;
	void *p = xcalloc(1, (size_t)len);
	if (read_at(es, off, p, (size_t)len) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

struct elf_sym *elf_sym_new(const char *path, char *err, size_t errlen)
{
	/* The file may belong to the target's user: never a FIFO or device,
	 * and read with pread (a file truncated under a mapping would SIGBUS). */
	const struct fsafe_want want = { 0, MAX_FILE, (uid_t)-1, (uid_t)-1 };
	struct stat st;
	int fd = fsafe_open(AT_FDCWD, path, &want, &st, err, errlen);
	if (fd < 0)
		return NULL;
	if ((size_t)st.st_size < sizeof(Elf64_Ehdr)) {
		snprintf(err, errlen, "%s is not an ELF file (too small)", path);
		close(fd);
		return NULL;
	}
	struct elf_sym *es = xcalloc(1, sizeof *es);
	es->fd = fd;
	es->size = (size_t)st.st_size;
	const Elf64_Ehdr *eh = &es->eh;
	if (read_at(es, 0, &es->eh, sizeof es->eh) != 0 || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
		snprintf(err, errlen, "%s is not an ELF file", path);
		goto fail;
	}
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB) {
		snprintf(err, errlen, "%s is not a 64-bit little-endian ELF file", path);
		goto fail;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    !(es->ph = read_copy(es, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))) {
		snprintf(err, errlen, "%s is truncated or corrupt (program headers)", path);
		goto fail;
	}
	if (eh->e_shnum && eh->e_shentsize == sizeof(Elf64_Shdr) && eh->e_shstrndx < eh->e_shnum &&
	    (es->sh = read_copy(es, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)))) {
		const Elf64_Shdr *s = &es->sh[eh->e_shstrndx];
		if ((es->shstr = read_copy(es, s->sh_offset, s->sh_size)) != NULL) {
			es->shstrsize = s->sh_size;
		} else {
			free(es->sh);
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
	close(es->fd);
	free(es->ph);
	free(es->sh);
	free(es->shstr);
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
	for (unsigned i = 0; i < es->eh.e_shnum; i++) {
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
	const Elf64_Phdr *ph = es->ph;
	for (unsigned i = 0; i < es->eh.e_phnum; i++) {
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
	return es->eh.e_type == ET_DYN;
}

/* Searches one symbol table section (SHT_DYNSYM or SHT_SYMTAB). */
static int lookup_in(const struct elf_sym *es, uint32_t type, const char *name, uint64_t *value, uint64_t *size)
{
	for (unsigned i = 0; i < es->eh.e_shnum; i++) {
		const Elf64_Shdr *s = &es->sh[i];
		if (s->sh_type != type || s->sh_entsize != sizeof(Elf64_Sym) || s->sh_link >= es->eh.e_shnum)
			continue;
		const Elf64_Shdr *strs = &es->sh[s->sh_link];
		Elf64_Sym *sym = read_copy(es, s->sh_offset, s->sh_size);
		char *str = sym ? read_copy(es, strs->sh_offset, strs->sh_size) : NULL;
		if (!str) {
			free(sym);
			continue;
		}
		size_t n = s->sh_size / sizeof(Elf64_Sym);
		size_t namelen = strlen(name);
		int found = -1;
		for (size_t k = 0; k < n && found < 0; k++) {
			if (sym[k].st_shndx == SHN_UNDEF || sym[k].st_name >= strs->sh_size)
				continue;
			if (strs->sh_size - sym[k].st_name <= namelen)
				continue;
			if (memcmp(str + sym[k].st_name, name, namelen + 1) != 0)
				continue;
			*value = sym[k].st_value;
			if (size)
				*size = sym[k].st_size;
			found = 0;
		}
		free(sym);
		free(str);
		if (found == 0)
			return 0;
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
	const Elf64_Phdr *ph = es->ph;
	for (unsigned i = 0; i < es->eh.e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || addr < ph[i].p_vaddr || addr - ph[i].p_vaddr >= ph[i].p_filesz)
			continue;
		uint64_t delta = addr - ph[i].p_vaddr;
		uint64_t avail = ph[i].p_filesz - delta;
		uint64_t off = ph[i].p_offset + delta;
		if (len > avail)
			len = (size_t)avail;
		return read_at(es, off, buf, len) == 0 ? len : 0;
	}
	return 0;
}
