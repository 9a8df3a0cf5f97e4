/*
 * test_elf_sym.c - ELF section and symbol lookup on real binaries of this
 * machine: Debian's static non-PIE python3.11, pyenv's libpython builds, a
 * non-Python binary, and broken files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach/elf_sym.h"

/* sys.hexversion of the interpreter PY, or 0. */
static uint64_t hexversion_of(const char *py)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "'%s' -c 'import sys; print(sys.hexversion)' 2>/dev/null", py);
	FILE *f = popen(cmd, "r");
	if (!f)
		return 0;
	unsigned long long v = 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	pclose(f);
	return v;
}

/* First path matching PATTERN, or "" (the caller skips). */
static int glob_one(const char *pattern, char *out, size_t outlen)
{
	glob_t g;
	int ok = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
	if (ok)
		snprintf(out, outlen, "%s", g.gl_pathv[0]);
	if (ok || g.gl_pathc == 0)
		globfree(&g);
	return ok;
}

static void check_python_image(const char *image, const char *python, int want_dyn, int has_version_symbol)
{
	char err[256];
	struct elf_sym *es = elf_sym_new(image, err, sizeof err);
	assert_non_null(es);
	assert_int_equal(elf_sym_is_dyn(es), want_dyn);
	uint64_t first = elf_sym_first_load(es);
	assert_int_equal(first & 0xfff, 0);
	if (want_dyn)
		assert_int_equal(first, 0);
	else
		assert_true(first > 0);
	uint64_t v, size;
	/* The C API the gdb method calls, exported even by the stripped binary. */
	assert_int_equal(elf_sym_lookup(es, "PyRun_SimpleString", &v, NULL), 0);
	assert_true(v > first);
	assert_int_equal(elf_sym_lookup(es, "Py_AddPendingCall", &v, NULL), 0);
	assert_int_equal(elf_sym_lookup(es, "PyGILState_Ensure", &v, NULL), 0);
	assert_int_equal(elf_sym_lookup(es, "no_such_symbol_pmt_top", &v, NULL), -1);
	if (has_version_symbol) {
		assert_int_equal(elf_sym_lookup(es, "Py_Version", &v, &size), 0);
		assert_true(size == 4 || size == 8);
		uint64_t ver = 0;
		assert_int_equal(elf_sym_read_vaddr(es, v, &ver, (size_t)size), (size_t)size);
		uint64_t want = hexversion_of(python);
		assert_true(want != 0);
		assert_int_equal(ver, want);
	}
	elf_sym_free(es);
}

static void test_debian_static_python(void **state)
{
	(void)state;
	if (access("/usr/bin/python3.11", R_OK) != 0)
		skip();
	check_python_image("/usr/bin/python3.11", "/usr/bin/python3.11", 0, 1);
	char err[256];
	struct elf_sym *es = elf_sym_new("/usr/bin/python3.11", err, sizeof err);
	assert_non_null(es);
	struct elf_sym_section sec;
	assert_int_equal(elf_sym_section(es, ".PyRuntime", &sec), 0);
	assert_true(sec.size > 0);
	assert_true(sec.addr >= elf_sym_first_load(es));
	elf_sym_free(es);
}

static void test_pyenv_libpython(void **state)
{
	(void)state;
	static const struct {
		const char *minor;
		int version_symbol; /* Py_Version exists from 3.11 on */
	} cases[] = {{"3.8", 0}, {"3.11", 1}, {"3.12", 1}, {"3.13", 1}};
	int seen = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char pat[512], lib[4096], py[4096];
		const char *home = getenv("HOME");
		snprintf(pat, sizeof pat, "%s/.pyenv/versions/%s.*/lib/libpython%s.so.1.0", home ? home : "/root",
			 cases[i].minor, cases[i].minor);
		if (!glob_one(pat, lib, sizeof lib))
			continue;
		snprintf(py, sizeof py, "%.*s/bin/python%s", (int)(strstr(lib, "/lib/libpython") - lib), lib,
			 cases[i].minor);
		check_python_image(lib, py, 1, cases[i].version_symbol);
		seen++;
	}
	if (!seen)
		skip();
}

static void test_py314_runtime_section(void **state)
{
	(void)state;
	const char *exe = "/opt/pmt-top-py314/usr/bin/python3.14";
	if (access(exe, R_OK) != 0)
		skip();
	char err[256];
	struct elf_sym *es = elf_sym_new(exe, err, sizeof err);
	assert_non_null(es);
	struct elf_sym_section sec;
	assert_int_equal(elf_sym_section(es, ".PyRuntime", &sec), 0);
	/* _PyRuntime starts with the debug offsets: cookie and PY_VERSION_HEX. */
	unsigned char hdr[24];
	assert_int_equal(elf_sym_read_vaddr(es, sec.addr, hdr, sizeof hdr), sizeof hdr);
	assert_memory_equal(hdr, "xdebugpy", 8);
	uint64_t ver;
	memcpy(&ver, hdr + 8, 8);
	assert_int_equal(ver >> 16, 0x030e);
	elf_sym_free(es);
}

static void test_non_python_binary(void **state)
{
	(void)state;
	const char *bin = access("/usr/bin/sleep", R_OK) == 0 ? "/usr/bin/sleep" : "/bin/sleep";
	char err[256];
	struct elf_sym *es = elf_sym_new(bin, err, sizeof err);
	assert_non_null(es);
	struct elf_sym_section sec;
	assert_int_equal(elf_sym_section(es, ".text", &sec), 0);
	assert_true(sec.size > 0);
	assert_int_equal(elf_sym_section(es, ".PyRuntime", &sec), -1);
	uint64_t v;
	assert_int_equal(elf_sym_lookup(es, "Py_Version", &v, NULL), -1);
	assert_int_equal(elf_sym_lookup(es, "PyRun_SimpleString", &v, NULL), -1);
	elf_sym_free(es);
}

static void test_broken_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/pmt-elf-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char text[64], trunc[64], err[256];
	snprintf(text, sizeof text, "%s/text", dir);
	snprintf(trunc, sizeof trunc, "%s/trunc", dir);
	FILE *f = fopen(text, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\necho this is not an ELF file, but it is long enough to be read\n", f);
	fclose(f);
	/* The first 100 bytes of a real ELF: a valid header whose tables are cut off. */
	FILE *in = fopen("/usr/bin/env", "rb");
	assert_non_null(in);
	unsigned char buf[100];
	assert_int_equal(fread(buf, 1, sizeof buf, in), sizeof buf);
	fclose(in);
	f = fopen(trunc, "wb");
	assert_non_null(f);
	fwrite(buf, 1, sizeof buf, f);
	fclose(f);

	struct elf_sym *es = elf_sym_new(text, err, sizeof err);
	int text_ok = es == NULL && strstr(err, "not an ELF") != NULL;
	elf_sym_free(es);
	es = elf_sym_new(trunc, err, sizeof err);
	int trunc_ok = es == NULL && strstr(err, "truncated") != NULL;
	elf_sym_free(es);
	es = elf_sym_new("/nonexistent/pmt-top/file", err, sizeof err);
	int missing_ok = es == NULL && strstr(err, "cannot open") != NULL;
	unlink(text);
	unlink(trunc);
	rmdir(dir);
	assert_true(text_ok);
	assert_true(trunc_ok);
	assert_true(missing_ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_debian_static_python),
		cmocka_unit_test(test_pyenv_libpython),
		cmocka_unit_test(test_py314_runtime_section),
		cmocka_unit_test(test_non_python_binary),
		cmocka_unit_test(test_broken_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
