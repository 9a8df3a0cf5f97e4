/*
 * inject_gdb.c - the gdb injection method (see inject_gdb.h).
 */
#include "attach/inject_gdb.h"
#include "attach/tracer.h"
#include "base/monotime.h"

#include "attach/elf_sym.h"
#include "attach/pyproc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MARK_ATTACHED "PMT-ATTACHED"
#define MARK_CALL "PMT-CALL-BEGIN"
#define MARK_CALL_END "PMT-CALL-END"
#define MARK_RC "PMT-RC "
#define MARK_DETACHED "PMT-DETACHED"
#define MARK_MMAP_FAIL "PMT-MMAP-FAILED"
#define MARK_WAY "PMT-WAY "

static void emit_call(FILE *f, const char *assign)
{
	fprintf(f, "echo " MARK_CALL "\\n\n%s\necho " MARK_CALL_END "\\n\n", assign);
}

/* The expression that calls a function: by address when known, else by name. */
static void fn(char *buf, size_t len, const char *type, uint64_t addr, const char *name)
{
	if (addr)
		snprintf(buf, len, "((%s)0x%llx)", type, (unsigned long long)addr);
	else
		snprintf(buf, len, "((%s)%s)", type, name);
}

/*
 * Writes gdb's commands into an anonymous memory file and seals it: gdb runs
 * as root when pmt-top does, and reads its commands from storage nobody else
 * can name, let alone replace (a command file in a directory the target's
 * user could write would let that user run anything as root).
 * Returns the descriptor (close-on-exec), or -1 with a sentence in ERR.
 */
static int write_script(enum inject_gdb_mode mode, const struct pyproc_syscall *at, const char *snippet,
			const struct inject_gdb_addrs *a, char *err, size_t errlen)
{
	static const struct inject_gdb_addrs none;
	if (!a)
		a = &none;
	int fd = memfd_create("pmt-top-gdb", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int wfd = fd >= 0 ? dup(fd) : -1;
	FILE *f = wfd >= 0 ? fdopen(wfd, "w") : NULL;
	if (!f) {
		snprintf(err, errlen, "cannot create gdb's command file in memory: %s", strerror(errno));
		if (wfd >= 0)
			close(wfd);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char f_mmap[128], f_apc[128], f_run[128], f_ens[128], f_rel[128], f_chk[128], line[1024];
	fn(f_mmap, sizeof f_mmap, "void *(*)(void *, unsigned long, int, int, int, long)", a->mmap, "mmap");
	fn(f_apc, sizeof f_apc, "int (*)(int (*)(void *), void *)", a->add_pending_call, "Py_AddPendingCall");
	fn(f_run, sizeof f_run, "int (*)(const char *)", a->run_simple_string, "PyRun_SimpleString");
	fn(f_ens, sizeof f_ens, "int (*)(void)", a->gil_ensure, "PyGILState_Ensure");
	fn(f_rel, sizeof f_rel, "void (*)(int)", a->gil_release, "PyGILState_Release");
	fn(f_chk, sizeof f_chk, "int (*)(void)", a->gil_check, "PyGILState_Check");
	fputs("set pagination off\nset confirm off\nset width 0\nset height 0\n"
	      "set unwindonsignal on\nset print thread-events off\n"
	      "echo " MARK_ATTACHED "\\n\n",
	      f);
	/* gdb numbers the thread whose id is the pid (the main thread) 1. */
	fputs("thread 1\n", f);
	/* $pmt_way: 1 pending call, 2 run here, 3 leave it alone (see the header). */
	fprintf(f, "set $pmt_way = %d\nset $pmt_rc = 0\n", mode == INJECT_GDB_DIRECT ? 2 : 1);
	if (mode == INJECT_GDB_ENTER && INJECT_GDB_CAN_ENTER) {
		/* Still in the very call /proc showed: the same system call
		 * ($orig_rax is -1 outside one), first argument and pc. */
		fprintf(f, "if (unsigned long)$pc == 0x%llx && (long)$orig_rax == %ld && (unsigned long)$rdi == 0x%llx\n",
			(unsigned long long)at->pc, at->nr, (unsigned long long)at->arg0);
		snprintf(line, sizeof line, "set $pmt_held = (int)%s()", f_chk);
		emit_call(f, line);
		fputs("  if $pmt_held == 0\n    set $pmt_way = 2\n  else\n    set $pmt_way = 3\n  end\nend\n", f);
	}
	fputs("if $pmt_way != 3\n", f);
	snprintf(line, sizeof line, "set $pmt_page = (unsigned long)%s((void *)0, 4096, 3, 0x22, -1, 0)", f_mmap);
	emit_call(f, line);
	fputs("if $pmt_page == 0 || $pmt_page == 0xffffffffffffffff\n"
	      "  echo " MARK_MMAP_FAIL "\\n\n  detach\n  quit 3\nend\n",
	      f);
	size_t len = strlen(snippet) + 1;
	for (size_t off = 0; off < len; off += 8) {
		unsigned long long w = 0;
		for (size_t k = 0; k < 8 && off + k < len; k++)
			w |= (unsigned long long)(unsigned char)snippet[off + k] << (8 * k);
		fprintf(f, "set *(unsigned long *)($pmt_page + %zu) = 0x%llx\n", off, w);
	}
	fputs("end\nif $pmt_way == 2\n", f);
	snprintf(line, sizeof line, "set $pmt_gil = (int)%s()", f_ens);
	emit_call(f, line);
	snprintf(line, sizeof line, "set $pmt_rc = (int)%s((const char *)$pmt_page)", f_run);
	emit_call(f, line);
	snprintf(line, sizeof line, "call (void)%s((int)$pmt_gil)", f_rel);
	emit_call(f, line);
	fputs("  echo " MARK_WAY "direct\\n\nend\nif $pmt_way == 1\n", f);
	snprintf(line, sizeof line, "set $pmt_rc = (int)%s((int (*)(void *))%s, (void *)$pmt_page)", f_apc, f_run);
	emit_call(f, line);
	fputs("  echo " MARK_WAY "pending\\n\nend\n"
	      "if $pmt_way == 3\n  echo " MARK_WAY "held\\n\nend\n"
	      "printf \"" MARK_RC "%d\\n\", $pmt_rc\n"
	      "detach\n"
	      "echo " MARK_DETACHED "\\n\n"
	      "quit 0\n",
	      f);
	if (fclose(f) != 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
		snprintf(err, errlen, "cannot write gdb's command file in memory: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int inject_gdb_resolve(const struct pyproc_info *pi, struct inject_gdb_addrs *a)
{
	memset(a, 0, sizeof *a);
	char path[PATH_MAX + 64], err[256], libc[PATH_MAX];
	uint64_t libc_start;
	if (!pi->image[0] || pyproc_find_object(pi->pid, "libc.so", libc, sizeof libc, &libc_start) != 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/root%s", (int)pi->pid, pi->image);
	struct elf_sym *es = elf_sym_new(path, err, sizeof err);
	if (!es)
		return -1;
	static const char *const names[] = {"Py_AddPendingCall", "PyRun_SimpleString", "PyGILState_Ensure",
					    "PyGILState_Release", "PyGILState_Check"};
	uint64_t *slots[] = {&a->add_pending_call, &a->run_simple_string, &a->gil_ensure, &a->gil_release,
			     &a->gil_check};
	int ok = 1;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		uint64_t v;
		if (elf_sym_lookup(es, names[i], &v, NULL) != 0 || v == 0)
			ok = 0;
		else
			*slots[i] = v + pi->image_bias;
	}
	elf_sym_free(es);
	snprintf(path, sizeof path, "/proc/%d/root%s", (int)pi->pid, libc);
	es = elf_sym_new(path, err, sizeof err);
	if (!es)
		ok = 0;
	uint64_t v;
	if (es && elf_sym_lookup(es, "mmap", &v, NULL) == 0 && v)
		a->mmap = v + libc_start - elf_sym_first_load(es);
	else
		ok = 0;
	elf_sym_free(es);
	if (!ok)
		memset(a, 0, sizeof *a);
	return ok ? 0 : -1;
}

int inject_gdb_start(struct inject_gdb *g, const char *gdb, pid_t pid, enum inject_gdb_mode mode,
		     const struct pyproc_syscall *at, const char *snippet, const struct inject_gdb_addrs *addrs, char *err,
		     size_t errlen)
{
	memset(g, 0, sizeof *g);
	g->child.fd = -1;
	g->pid = pid;
	g->mode = mode;
	if (strlen(snippet) >= 4000) {
		snprintf(err, errlen, "the bootstrap loader is too long for one page");
		return -1;
	}
	int script = write_script(mode, at, snippet, addrs, err, errlen);
	if (script < 0)
		return -1;
	char pidbuf[32], exe[64], cmd[64];
	snprintf(cmd, sizeof cmd, "/proc/self/fd/%d", script);
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
	snprintf(exe, sizeof exe, "/proc/%d/exe", (int)pid);
	char *argv[24];
	int n = 0;
	argv[n++] = (char *)gdb;
	argv[n++] = "-batch";
	argv[n++] = "-nx";
	argv[n++] = "-q";
	argv[n++] = "-iex";
	argv[n++] = "set debuginfod enabled off";
	argv[n++] = "-iex";
	argv[n++] = "set auto-load off";
	/* Never a thread library from the target's directories. */
	argv[n++] = "-iex";
	argv[n++] = "set libthread-db-search-path $sdir";
	if (addrs) {
		/* Nothing to look up: skip the shared libraries' symbols, and read the
		 * executable's (for the entry point) before attaching. */
		argv[n++] = "-iex";
		argv[n++] = "set auto-solib-add off";
		argv[n++] = exe;
	}
	argv[n++] = "-p";
	argv[n++] = pidbuf;
	argv[n++] = "-x";
	argv[n++] = cmd;
	argv[n] = NULL;
	char *unset[] = {"DEBUGINFOD_URLS", "GDBHISTFILE", "PYTHONHOME", "PYTHONPATH", NULL};
	char *set[] = {"LC_ALL=C", NULL};
	const struct inject_child_opts opts = { .keep_fd = script, .shield = 1 };
	int rc = inject_child_spawn(&g->child, argv, set, unset, &opts, err, errlen);
	close(script);
	if (rc != 0) {
		if (errno == ENOENT)
			snprintf(err, errlen, "gdb is not installed (needed to attach to Python 3.8-3.13): "
				 "run `apt-get install gdb`, or start the agent in the application with "
				 "`import pmt_agent; pmt_agent.start()`");
		return -1;
	}
	return 0;
}

/* Index of the last occurrence of MARK at a line start, or NULL. */
static const char *last_line(const char *out, const char *mark)
{
	const char *hit = NULL;
	size_t n = strlen(mark);
	for (const char *p = out; (p = strstr(p, mark)); p += n)
		if (p == out || p[-1] == '\n')
			hit = p;
	return hit;
}

static int count_marks(const char *out, const char *mark)
{
	int n = 0;
	size_t len = strlen(mark);
	for (const char *p = out; (p = strstr(p, mark)); p += len)
		if ((p == out || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0'))
			n++;
	return n;
}

int inject_gdb_in_call(const struct inject_gdb *g)
{
	return !g->child.exited && count_marks(g->child.out, MARK_CALL) > count_marks(g->child.out, MARK_CALL_END);
}

int inject_gdb_attached(const struct inject_gdb *g)
{
	return g->t_attached > 0 && g->t_detached == 0;
}

/* Turns gdb's output into one sentence with a cause and remedy. */
static void explain(const struct inject_gdb *g, char *err, size_t errlen)
{
	const char *o = g->child.out;
	if (strstr(o, "ptrace: Operation not permitted") || strstr(o, "Could not attach to process")) {
		/* The usual reason when permissions are fine: a tracer is attached
		 * already (only one can be), often another pmt-top's gdb. */
		struct tracer t;
		char who[128];
		if (tracer_find(g->pid, &t) == 1 && t.pid != g->child.pid) {
			tracer_describe(&t, who, sizeof who);
			snprintf(err, errlen, "gdb could not attach to process %d: %s is tracing it already, and only "
				 "one debugger can attach at a time%s", (int)g->pid, who,
				 tracer_is_pmt_top(&t) ? " (another pmt-top is loading the agent into it)" :
							 "; detach it first");
			return;
		}
		snprintf(err, errlen,
			 "gdb could not attach to process %d: ptrace is not permitted (run pmt-top as the process's user "
			 "or with CAP_SYS_PTRACE, and check kernel.yama.ptrace_scope)",
			 (int)g->pid);
		return;
	}
	if (strstr(o, "No such process")) {
		snprintf(err, errlen, "gdb could not attach: process %d no longer exists", (int)g->pid);
		return;
	}
	if (strstr(o, MARK_MMAP_FAIL)) {
		snprintf(err, errlen, "gdb could not map a page in process %d (mmap failed); the target was left running",
			 (int)g->pid);
		return;
	}
	if (strstr(o, "No symbol") || strstr(o, "No symbol table")) {
		const char *p = strstr(o, "No symbol");
		int n = (int)strcspn(p, "\n");
		snprintf(err, errlen,
			 "gdb could not find the Python C API in process %d (%.*s); is it a CPython 3.8+ process?",
			 (int)g->pid, n, p);
		return;
	}
	if (strstr(o, "signaled while in a function called from GDB") || strstr(o, "received signal")) {
		snprintf(err, errlen,
			 "a function called by gdb in process %d was interrupted by a signal; gdb undid the call "
			 "and the target keeps running: try again",
			 (int)g->pid);
		return;
	}
	if (WIFSIGNALED(g->child.status) && !g->stop_sent) {
		snprintf(err, errlen, "gdb was killed by signal %d before it finished with process %d; try again",
			 WTERMSIG(g->child.status), (int)g->pid);
		return;
	}
	/* Otherwise the last non-marker line gdb printed. */
	const char *best = NULL;
	int bestlen = 0;
	for (const char *p = o; *p;) {
		int n = (int)strcspn(p, "\n");
		if (n > 0 && strncmp(p, "PMT-", 4) != 0 && strncmp(p, "[", 1) != 0 && strncmp(p, "warning:", 8) != 0)
			best = p, bestlen = n;
		p += n;
		if (*p)
			p++;
	}
	if (best)
		snprintf(err, errlen, "gdb failed on process %d: %.*s", (int)g->pid, bestlen > 300 ? 300 : bestlen, best);
	else
		snprintf(err, errlen, "gdb failed on process %d (exit status %d) without saying why", (int)g->pid,
			 WIFEXITED(g->child.status) ? WEXITSTATUS(g->child.status) : 128 + WTERMSIG(g->child.status));
}

/* Notes the attach and detach marks gdb printed so far. */
static void inject_gdb_poll_marks(struct inject_gdb *g)
{
	double now = monotime_ms();
	if (!g->t_attached && last_line(g->child.out, MARK_ATTACHED))
		g->t_attached = now;
	if (!g->t_detached && last_line(g->child.out, MARK_DETACHED))
		g->t_detached = now;
}

int inject_gdb_poll(struct inject_gdb *g, char *err, size_t errlen)
{
	int finished = inject_child_poll(&g->child);
	inject_gdb_poll_marks(g);
	const char *rc = last_line(g->child.out, MARK_RC);
	if (rc && !g->rc_seen) {
		g->rc_seen = 1;
		g->rc = atoi(rc + strlen(MARK_RC));
	}
	if (!finished)
		return 0;
	if (g->t_attached && !g->t_detached)
		g->t_detached = g->child.t_end;
	if (g->rc_seen && last_line(g->child.out, MARK_DETACHED)) {
		const char *way = last_line(g->child.out, MARK_WAY);
		way = way ? way + strlen(MARK_WAY) : "";
		g->way = strncmp(way, "direct", 6) == 0	 ? INJECT_GDB_WAY_DIRECT :
			 strncmp(way, "pending", 7) == 0 ? INJECT_GDB_WAY_PENDING :
			 strncmp(way, "held", 4) == 0	 ? INJECT_GDB_WAY_HELD :
							   INJECT_GDB_WAY_NONE;
		if (g->rc != 0) {
			if (g->way == INJECT_GDB_WAY_DIRECT)
				snprintf(err, errlen,
					 "the bootstrap raised inside process %d (PyRun_SimpleString returned %d); "
					 "see the target's stderr",
					 (int)g->pid, g->rc);
			else
				snprintf(err, errlen,
					 "process %d refused the pending call (its queue is full: Py_AddPendingCall "
					 "returned %d); try again",
					 (int)g->pid, g->rc);
			return -1;
		}
		return 1;
	}
	explain(g, err, errlen);
	return -1;
}

int inject_gdb_stop(struct inject_gdb *g)
{
	if (g->child.pid <= 0 || g->child.exited)
		return 1;
	inject_child_poll(&g->child);
	inject_gdb_poll_marks(g);
	if (g->child.exited)
		return 1;
	/* Attached: its script is short and fixed, and killing it inside a call
	 * would kill the target. Let it finish on its own (it ignores the loss of
	 * its output pipe). */
	if (g->t_attached && !g->t_detached)
		return 0;
	g->stop_sent = 1;
	/* Not attached yet, or detached: nothing of ours runs in the target. The
	 * kernel detaches a dead tracer's tracees; make sure none stays stopped
	 * by the attach's SIGSTOP. */
	inject_child_signal_wait(&g->child, SIGKILL, 1000);
	kill(g->pid, SIGCONT);
	return 1;
}

void inject_gdb_done(struct inject_gdb *g)
{
	inject_child_done(&g->child);
}
