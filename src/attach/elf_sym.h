/*
 * elf_sym.h - minimal read-only ELF64 reader: sections, load base, symbols.
 *
 * The injector needs three facts about the binaries mapped into a target
 * process, without loading them: where the `.PyRuntime` section lies (CPython
 * 3.12+ keeps _PyRuntime, and in 3.13+ the _Py_DebugOffsets table, there),
 * the first PT_LOAD address (to turn a link-time address into a run-time one
 * with the mapping's start address) and the value of exported symbols such as
 * `Py_Version` or `PyRun_SimpleString` (looked up in .dynsym, then .symtab).
 * Only little-endian ELF64 (x86-64, aarch64) files are accepted.
 */
#ifndef PMT_ATTACH_ELF_SYM_H
#define PMT_ATTACH_ELF_SYM_H

#include <stddef.h>
#include <stdint.h>

struct elf_sym;

struct elf_sym_section {
	uint64_t addr;   /* sh_addr: link-time virtual address */
	uint64_t offset; /* sh_offset: position in the file */
	uint64_t size;   /* sh_size */
};

/*
 * Opens PATH read-only (fsafe_open: a regular file, never a FIFO or device). Returns NULL and fills ERR with one sentence
 * (cannot open, not ELF, not a 64-bit little-endian ELF, truncated) on failure.
 * The object owns the descriptor; release it with elf_sym_free. Not thread-safe
 * per object; distinct objects may be used from distinct threads.
 */
struct elf_sym *elf_sym_new(const char *path, char *err, size_t errlen);
void elf_sym_free(struct elf_sym *es);

/* Finds the section called NAME. Returns 0 and fills OUT, or -1 if absent. */
int elf_sym_section(const struct elf_sym *es, const char *name, struct elf_sym_section *out);

/*
 * Link-time virtual address of the first PT_LOAD segment rounded down to its
 * alignment (page): run-time address = mapping start of file offset 0 +
 * link-time address - this value. 0 for ordinary shared objects and PIE.
 */
uint64_t elf_sym_first_load(const struct elf_sym *es);

/* True for ET_DYN (shared objects and PIE executables), false for ET_EXEC. */
int elf_sym_is_dyn(const struct elf_sym *es);

/*
 * Looks NAME up in .dynsym, then .symtab (defined symbols only). Returns 0 and
 * stores the link-time value (and size when SIZE is not NULL), or -1.
 */
int elf_sym_lookup(const struct elf_sym *es, const char *name, uint64_t *value, uint64_t *size);

/*
 * Copies up to LEN bytes of file content that is mapped at link-time virtual
 * address ADDR (inside a PT_LOAD segment's file part) into BUF. Returns the
 * number of bytes copied (0 when ADDR is not backed by file content).
 */
size_t elf_sym_read_vaddr(const struct elf_sym *es, uint64_t addr, void *buf, size_t len);

#endif
