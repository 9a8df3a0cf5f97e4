/*
 * test_pyproc.c - CPython process detection against real processes started
 * here: every interpreter on this machine (Debian's python3, pyenv builds,
 * the private 3.14), a non-Python process, an unsupported 3.7, a dead pid,
 * main-thread state, and the PEP 768 opt-out as read from a live 3.14.
 * Every process started is killed by pid in the teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach/inject.h"
#include "attach/inject_pep768.h"
#include "attach/pyproc.h"
#include "proc/proctree.h"

#define MAX_CHILDREN 16
static pid_t children[MAX_CHILDREN];
static int nchildren;

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/*
 * Starts ARGV with ENV_SET ("NAME=value" or NULL) added, reads the first line
 * of its stdout into LINE (when LINE is not NULL) and returns its pid.
 */
static pid_t start(char *const argv[], const char *env_set, char *line, size_t linelen)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		if (env_set)
			putenv((char *)env_set);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	assert_true(nchildren < MAX_CHILDREN);
	children[nchildren++] = pid;
	if (line) {
		FILE *f = fdopen(p[0], "r");
		assert_non_null(f);
		if (!fgets(line, (int)linelen, f))
			line[0] = '\0';
		fclose(f);
	} else {
		close(p[0]);
	}
	return pid;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < nchildren; i++) {
		kill(children[i], SIGKILL);
		waitpid(children[i], NULL, 0);
	}
	nchildren = 0;
	return 0;
}

static const char sleeper[] = "import sys, time; print(sys.hexversion, flush=True); time.sleep(60)";

/* Starts PY sleeping; checks what pyproc_detect reports against sys.hexversion. */
static void check_interpreter(const char *py)
{
	char line[64];
	char *argv[] = {(char *)py, "-c", (char *)sleeper, NULL};
	pid_t pid = start(argv, NULL, line, sizeof line);
	unsigned long long hex = strtoull(line, NULL, 10);
	assert_true(hex > 0);
	struct pyproc_info pi;
	char err[512];
	assert_int_equal(pyproc_detect(pid, &pi, err, sizeof err), 0);
	assert_int_equal(pi.is_python, 1);
	assert_int_equal(pi.major, (int)(hex >> 24));
	assert_int_equal(pi.minor, (int)((hex >> 16) & 0xff));
	if (pi.micro >= 0)
		assert_int_equal(pi.micro, (int)((hex >> 8) & 0xff));
	if (pi.minor >= 11)
		assert_int_equal(pi.hexversion, hex);
	assert_int_equal(pi.has_debug_offsets, pi.minor >= 13);
	assert_int_equal(pi.free_threaded, 0);
	assert_int_equal(pi.nspid, pid);
	assert_int_equal(pi.other_mntns, 0);
	assert_true(pi.image[0] == '/');
	assert_int_equal(pyproc_check_supported(&pi, err, sizeof err), 0);
	/* The image start is readable target memory: an ELF header. */
	unsigned char magic[4];
	assert_int_equal(pyproc_read(pid, pi.image_start, magic, 4), 0);
	assert_memory_equal(magic, "\177ELF", 4);
	/* The main thread sits in a system call (sleep). */
	enum pyproc_thread_state st = PYPROC_THREAD_UNKNOWN;
	for (int i = 0; i < 100 && st != PYPROC_THREAD_SYSCALL; i++, msleep(10))
		st = pyproc_main_thread(pid, NULL);
	assert_int_equal(st, PYPROC_THREAD_SYSCALL);
}

static void test_interpreters(void **state)
{
	(void)state;
	int seen = 0;
	if (access("/usr/bin/python3", X_OK) == 0) {
		check_interpreter("/usr/bin/python3");
		seen++;
	}
	const char *home = getenv("HOME");
	char pat[512];
	snprintf(pat, sizeof pat, "%s/.pyenv/versions/3.*/bin/python3", home ? home : "/root");
	glob_t g;
	if (glob(pat, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			const char *v = strstr(g.gl_pathv[i], "/versions/3.") + 12;
			int minor = atoi(v);
			if (minor < PYPROC_MIN_MINOR)
				continue;
			check_interpreter(g.gl_pathv[i]);
			seen++;
		}
		globfree(&g);
	}
	if (access("/opt/pmt-top-py314/bin/python3.14", X_OK) == 0) {
		check_interpreter("/opt/pmt-top-py314/bin/python3.14");
		seen++;
	} else {
		print_message("python3.14 not installed (tests/tools/python314.sh): not checked\n");
	}
	assert_true(seen > 0);
}

static void test_busy_main_thread_runs(void **state)
{
	(void)state;
	char line[64];
	char *argv[] = {"/usr/bin/python3", "-c", "print(1, flush=True)\nwhile True: pass", NULL};
	if (access(argv[0], X_OK) != 0)
		skip();
	pid_t pid = start(argv, NULL, line, sizeof line);
	int running = 0;
	for (int i = 0; i < 50; i++, msleep(2))
		running += pyproc_main_thread(pid, NULL) == PYPROC_THREAD_RUNNING;
	assert_true(running > 0);
}

static void test_not_python(void **state)
{
	(void)state;
	char *argv[] = {access("/usr/bin/sleep", X_OK) == 0 ? "/usr/bin/sleep" : "/bin/sleep", "60", NULL};
	pid_t pid = start(argv, NULL, NULL, 0);
	msleep(100);
	struct pyproc_info pi;
	char err[512];
	assert_int_equal(pyproc_detect(pid, &pi, err, sizeof err), 0);
	assert_int_equal(pi.is_python, 0);
	assert_int_equal(pyproc_check_supported(&pi, err, sizeof err), -1);
	assert_non_null(strstr(err, "is not a Python process"));
}

/* Where a parked main thread waits: the system call, its name, its pc. */
static void test_parked_thread(void **state)
{
	(void)state;
	char line[64];
	char *argv[] = {"/usr/bin/python3", "-c", (char *)sleeper, NULL};
	pid_t pid = start(argv, NULL, line, sizeof line);
	struct pyproc_info pi;
	char err[512], nb[48];
	assert_int_equal(pyproc_detect(pid, &pi, err, sizeof err), 0);
	assert_true(pi.runtime_lo != 0 && pi.runtime_hi > pi.runtime_lo);
	struct pyproc_syscall sc = { 0 };
	for (int i = 0; i < 500 && pyproc_thread(pid, pid, &sc) != PYPROC_THREAD_SYSCALL; i++)
		msleep(2);
	assert_int_equal(pyproc_thread(pid, pid, &sc), PYPROC_THREAD_SYSCALL);
	/* time.sleep: clock_nanosleep on 3.11 (select() before 3.11). */
	assert_string_equal(pyproc_syscall_name(sc.nr, nb, sizeof nb), "clock_nanosleep");
	assert_true(sc.pc != 0);
	assert_false(pyproc_waits_for_runtime(&pi, &sc));
	/* A futex inside _PyRuntime is a wait for the GIL (or a runtime lock). */
	struct pyproc_syscall gil = { .nr = SYS_futex, .arg0 = pi.runtime_lo + 64, .pc = sc.pc };
	assert_true(pyproc_waits_for_runtime(&pi, &gil));
	gil.arg0 = pi.runtime_hi;
	assert_false(pyproc_waits_for_runtime(&pi, &gil));
	assert_string_equal(pyproc_syscall_name(-5, nb, sizeof nb), "system call -5");
}

/* Debian's debug build (python3.11-dbg) is detected as such and supported:
 * since 3.8 debug and release builds share one ABI. */
static void test_debug_build(void **state)
{
	(void)state;
	if (access("/usr/bin/python3.11-dbg", X_OK) != 0)
		fail_msg("python3.11-dbg is not installed (./pmt.sh installs it: apt-get install python3.11-dbg)");
	char line[64];
	char *argv[] = {"/usr/bin/python3.11-dbg", "-c", (char *)sleeper, NULL};
	pid_t pid = start(argv, NULL, line, sizeof line);
	struct pyproc_info pi;
	char err[512];
	assert_int_equal(pyproc_detect(pid, &pi, err, sizeof err), 0);
	assert_int_equal(pi.is_python, 1);
	assert_int_equal(pi.debug_build, 1);
	assert_int_equal(pyproc_check_supported(&pi, err, sizeof err), 0);
	struct pyproc_info rel;
	char *argv2[] = {"/usr/bin/python3", "-c", (char *)sleeper, NULL};
	pid = start(argv2, NULL, line, sizeof line);
	assert_int_equal(pyproc_detect(pid, &rel, err, sizeof err), 0);
	assert_int_equal(rel.debug_build, 0);
}

/* A free-threaded build is refused in one sentence. No such interpreter is
 * installed here, so the flag is set on a real detection of a GIL build. */
static void test_free_threaded_refused(void **state)
{
	(void)state;
	char line[64];
	char *argv[] = {"/usr/bin/python3", "-c", (char *)sleeper, NULL};
	pid_t pid = start(argv, NULL, line, sizeof line);
	struct pyproc_info pi;
	char err[512];
	assert_int_equal(pyproc_detect(pid, &pi, err, sizeof err), 0);
	assert_int_equal(pi.free_threaded, 0);
	assert_int_equal(pyproc_check_supported(&pi, err, sizeof err), 0);
	pi.free_threaded = 1;
	assert_int_equal(pyproc_check_supported(&pi, err, sizeof err), -1);
	assert_non_null(strstr(err, "free-threaded CPython 3.11 build"));
	assert_non_null(strstr(err, "does not support"));
}

static void test_unsupported_37(void **state)
{
	(void)state;
	char pat[512], py[4096];
	const char *home = getenv("HOME");
	snprintf(pat, sizeof pat, "%s/.pyenv/versions/3.7.*/bin/python3", home ? home : "/root");
	glob_t g;
	if (glob(pat, 0, NULL, &g) != 0)
		skip();
	snprintf(py, sizeof py, "%s", g.gl_pathv[0]);
	globfree(&g);
	char line[64];
	char *argv[] = {py, "-c", (char *)sleeper, NULL};
	pid_t pid = start(argv, NULL, line, sizeof line);
	struct pyproc_info pi;
	char err[512];
	assert_int_equal(pyproc_detect(pid, &pi, err, sizeof err), 0);
	assert_int_equal(pi.is_python, 1);
	assert_int_equal(pi.minor, 7);
	assert_int_equal(pyproc_check_supported(&pi, err, sizeof err), -1);
	assert_non_null(strstr(err, "Python 3.7"));
	assert_non_null(strstr(err, "does not support"));
}

static void test_no_such_process(void **state)
{
	(void)state;
	char *argv[] = {"/bin/true", NULL};
	pid_t pid = start(argv, NULL, NULL, 0);
	waitpid(pid, NULL, 0);
	nchildren--;
	struct pyproc_info pi;
	char err[512];
	assert_int_equal(pyproc_detect(pid, &pi, err, sizeof err), -1);
	assert_non_null(strstr(err, "no such process"));
	assert_int_equal(pyproc_main_thread(pid, NULL), PYPROC_THREAD_GONE);
}

static void test_pep768_opt_out(void **state)
{
	(void)state;
	const char *py = "/opt/pmt-top-py314/bin/python3.14";
	if (access(py, X_OK) != 0) {
		print_message("python3.14 not installed (tests/tools/python314.sh)\n");
		skip();
	}
	char line[64], err[512];
	char *argv[] = {(char *)py, "-c", (char *)sleeper, NULL};
	pid_t on = start(argv, NULL, line, sizeof line);
	pid_t off = start(argv, "PYTHON_DISABLE_REMOTE_DEBUG=1", line, sizeof line);
	struct pyproc_info pi;
	struct inject_pep768 st;
	assert_int_equal(pyproc_detect(on, &pi, err, sizeof err), 0);
	assert_int_equal(inject_pep768_open(&pi, &st, err, sizeof err), 0);
	assert_int_equal(st.remote_debug, 1);
	assert_true(st.tstate != 0);
	assert_int_equal(st.path_size, 512);
	assert_int_equal(inject_pep768_pending(&st), 0);

	assert_int_equal(pyproc_detect(off, &pi, err, sizeof err), 0);
	assert_int_equal(inject_pep768_open(&pi, &st, err, sizeof err), 0);
	assert_int_equal(st.remote_debug, 0);
	assert_int_equal(inject_pep768_request(&st, "/tmp/never-written.py", err, sizeof err), -1);
	assert_non_null(strstr(err, "remote debugging is disabled"));
	/* Nothing was written. */
	assert_int_equal(inject_pep768_pending(&st), 0);
	char buf[8];
	assert_int_equal(pyproc_read(off, st.path_addr, buf, sizeof buf), 0);
	assert_int_not_equal(memcmp(buf, "/tmp/nev", 8), 0);
}

static char *read_fixture(const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/proc/%s", PMT_TEST_DATA, name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[8192];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* The parsers behind the /proc readers, on captured files and edge cases. */
static void test_text_parsers(void **state)
{
	(void)state;
	long v[8];
	const char *status = read_fixture("python-status");
	assert_int_equal(pyproc_status_parse(status, "NSpid", v, 8), 1);
	assert_int_equal(v[0], 14801);
	assert_int_equal(pyproc_status_parse(status, "Uid", v, 2), 2);
	assert_int_equal(pyproc_status_parse(status, "NoSuchKey", v, 8), -1);
	/* only the numbers of the key's own line */
	assert_int_equal(pyproc_status_parse("NSpid:\n42\n", "NSpid", v, 8), 0);
	assert_int_equal(pyproc_status_parse("Uid:\t7\nGid:\t8\n", "Gid", v, 8), 1);
	assert_int_equal(v[0], 8);
	assert_int_equal(pyproc_switches_parse(status), 15 + 84);
	assert_int_equal(pyproc_switches_parse("voluntary_ctxt_switches:\t1\n"), -1);
	/* numbers that are not counters: -1, not a signed overflow */
	assert_int_equal(pyproc_switches_parse("x\nvoluntary_ctxt_switches:\t9223372036854775807\n"
					       "nonvoluntary_ctxt_switches:\t9\n"), -1);
	assert_int_equal(pyproc_switches_parse("x\nvoluntary_ctxt_switches:\t-5\n"
					       "nonvoluntary_ctxt_switches:\t9\n"), -1);

	assert_int_equal(pyproc_stat_state(read_fixture("weird-comm-stat")), 'R');
	assert_int_equal(pyproc_stat_state("12 (x"), '?');

	struct pyproc_syscall sc;
	assert_int_equal(pyproc_syscall_parse("running\n", &sc), PYPROC_THREAD_RUNNING);
	assert_int_equal(pyproc_syscall_parse("230 0x1 0x1 0x7fffc9d04020 0x0 0x0 0x0 0x7fffc9d04008 "
					      "0x7fcd23eed503\n", &sc), PYPROC_THREAD_SYSCALL);
	assert_int_equal(sc.nr, 230);
	assert_true(sc.arg0 == 1 && sc.pc == 0x7fcd23eed503ULL);
	assert_int_equal(pyproc_syscall_parse("-1 0x7ffd 0x7f00\n", &sc), PYPROC_THREAD_UNKNOWN);
	assert_int_equal(pyproc_syscall_parse("", &sc), PYPROC_THREAD_UNKNOWN);

	char line[] = "7fcd24000000-7fcd240f5000 r--p 00000000 fe:00 18834      "
		      "/opt/py/lib/libpython3.11.so.1.0\n";
	uint64_t lo, hi, off;
	char *path;
	assert_int_equal(pyproc_maps_line(line, &lo, &hi, &off, &path), 0);
	assert_true(lo == 0x7fcd24000000ULL && hi == 0x7fcd240f5000ULL && off == 0);
	assert_string_equal(path, "/opt/py/lib/libpython3.11.so.1.0");
	char anon[] = "7ffd9cca8000-7ffd9ccc9000 rw-p 00000000 00:00 0 \n";
	assert_int_equal(pyproc_maps_line(anon, &lo, &hi, &off, &path), 0);
	assert_string_equal(path, "");
	char bad[] = "not a mapping\n";
	assert_int_equal(pyproc_maps_line(bad, &lo, &hi, &off, &path), -1);

	int maj, min, ft;
	assert_int_equal(proctree_python_name("libpython3.13t.so.1.0", 1, &maj, &min, &ft), 1);
	assert_true(maj == 3 && min == 13 && ft == 1);
	assert_int_equal(proctree_python_name("python3.8", 0, &maj, &min, &ft), 1);
	assert_int_equal(proctree_python_name("python3.8.so", 0, &maj, &min, &ft), 0);
	assert_int_equal(proctree_python_name("libpython3.so", 1, &maj, &min, &ft), 0);
}

static void test_method_names(void **state)
{
	(void)state;
	static const char *const names[] = {"auto", "pep768", "remote-exec", "gdb", "direct"};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(inject_method_from_name(names[i]), i);
		assert_string_equal(inject_method_name((enum inject_method)i), names[i]);
	}
	assert_int_equal(inject_method_from_name("ptrace"), -1);
	assert_int_equal(inject_method_from_name(""), -1);
	assert_int_equal(inject_method_from_name(NULL), -1);
	assert_int_equal(INJECT_AUTO, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_interpreters, teardown),
		cmocka_unit_test_teardown(test_busy_main_thread_runs, teardown),
		cmocka_unit_test_teardown(test_not_python, teardown),
		cmocka_unit_test_teardown(test_parked_thread, teardown),
		cmocka_unit_test_teardown(test_debug_build, teardown),
		cmocka_unit_test_teardown(test_free_threaded_refused, teardown),
		cmocka_unit_test_teardown(test_unsupported_37, teardown),
		cmocka_unit_test_teardown(test_no_such_process, teardown),
		cmocka_unit_test_teardown(test_pep768_opt_out, teardown),
		cmocka_unit_test(test_text_parsers),
		cmocka_unit_test(test_method_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
