/*
 * pyproc.c - CPython process detection (see pyproc.h).
 */
#include "attach/pyproc.h"
#include "proc/proctree.h"

#include "attach/elf_sym.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define DEBUG_COOKIE "xdebugpy"

int pyproc_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {buf, len};
	struct iovec remote = {(void *)(uintptr_t)addr, len};
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = EFAULT;
		return -1;
	}
	return 0;
}

int pyproc_write(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = {(void *)buf, len};
	struct iovec remote = {(void *)(uintptr_t)addr, len};
	ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = EFAULT;
		return -1;
	}
	return 0;
}

void pyproc_perm_error(pid_t pid, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen,
		 "permission denied %s process %d (run pmt-top as the process's user or with CAP_SYS_PTRACE; "
		 "check kernel.yama.ptrace_scope)",
		 what, (int)pid);
}

/* Longest status line read whole (a longer one is read in pieces of this size). */
#define STATUS_LINE_MAX 512

int pyproc_status_parse(const char *text, const char *key, long *vals, int maxvals)
{
	size_t klen = strlen(key);
	for (const char *l = text; *l != '\0';) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		if (strncmp(l, key, klen) == 0 && l[klen] == ':') {
			/* The numbers of this line only: strtol would skip a newline. */
			char line[STATUS_LINE_MAX];
			int n = 0;
			if (len > sizeof line - 1)
				len = sizeof line - 1;
			memcpy(line, l, len);
			line[len] = '\0';
			char *p = line + klen + 1;
			while (n < maxvals) {
				char *end;
				long v = strtol(p, &end, 10);
				if (end == p)
					break;
				vals[n++] = v;
				p = end;
			}
			return n;
		}
		l = nl ? nl + 1 : l + len;
	}
	return -1;
}

/* Reads "Key:\tv1\tv2..." from /proc/PID/status into VALS; returns the count. */
int pyproc_status_field(pid_t pid, const char *key, long *vals, int maxvals)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[STATUS_LINE_MAX];
	int n = 0;
	while (fgets(line, sizeof line, f)) {
		int got = pyproc_status_parse(line, key, vals, maxvals);
		if (got >= 0) {
			n = got;
			break;
		}
	}
	fclose(f);
	return n;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Path through which we can open a file of the target's namespace. */
static void root_path(pid_t pid, const char *path, char *out, size_t outlen)
{
	snprintf(out, outlen, "/proc/%d/root%s", (int)pid, path);
	if (access(out, R_OK) != 0)
		snprintf(out, outlen, "%s", path);
}

static void fill_namespace_facts(pid_t pid, struct pyproc_info *pi)
{
	long v[8];
	int n = pyproc_status_field(pid, "NSpid", v, 8);
	pi->nspid = n > 0 ? (pid_t)v[n - 1] : pid;
	pi->tracer = pyproc_status_field(pid, "TracerPid", v, 1) == 1 ? (pid_t)v[0] : 0;
	pi->stopped = pyproc_main_thread(pid, NULL) == PYPROC_THREAD_STOPPED && !pi->tracer;
	if (pyproc_status_field(pid, "Uid", v, 4) >= 2)
		pi->uid = (uid_t)v[1];
	else
		pi->uid = (uid_t)-1;
	if (pyproc_status_field(pid, "Gid", v, 4) >= 2)
		pi->gid = (gid_t)v[1];
	else
		pi->gid = (gid_t)-1;
	char path[64];
	struct stat self, them;
	snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
	pi->other_mntns = stat("/proc/self/ns/mnt", &self) == 0 && stat(path, &them) == 0 &&
			  (self.st_ino != them.st_ino || self.st_dev != them.st_dev);
}

/* Version facts from the ELF image at PI->image; fills what it can. */
static void inspect_image(pid_t pid, struct pyproc_info *pi)
{
	char path[PATH_MAX + 64], err[256];
	root_path(pid, pi->image, path, sizeof path);
	struct elf_sym *es = elf_sym_new(path, err, sizeof err);
	if (!es)
		return;
	struct elf_sym_section sec;
	if (elf_sym_section(es, ".PyRuntime", &sec) == 0 && sec.size >= 24) {
		pi->runtime_addr = sec.addr + pi->image_bias;
		unsigned char hdr[24];
		/* Prefer the live value; fall back to the initialiser in the file. */
		if (pyproc_read(pid, pi->runtime_addr, hdr, sizeof hdr) != 0 &&
		    elf_sym_read_vaddr(es, sec.addr, hdr, sizeof hdr) != sizeof hdr)
			memset(hdr, 0, sizeof hdr);
		if (memcmp(hdr, DEBUG_COOKIE, 8) == 0) {
			uint64_t ver, ft;
			memcpy(&ver, hdr + 8, 8);
			memcpy(&ft, hdr + 16, 8);
			pi->has_debug_offsets = 1;
			pi->hexversion = ver;
			pi->free_threaded = ft ? 1 : 0;
			pi->version_source = "debug offsets";
		}
	}
	uint64_t val, size;
	if (!pi->hexversion && elf_sym_lookup(es, "Py_Version", &val, &size) == 0) {
		uint64_t ver = 0;
		if (size >= 4 && pyproc_read(pid, val + pi->image_bias, &ver, size >= 8 ? 8 : 4) != 0)
			elf_sym_read_vaddr(es, val, &ver, size >= 8 ? 8 : 4);
		if (ver >> 24 == 3) {
			pi->hexversion = ver;
			pi->version_source = "Py_Version";
		}
	}
	if (elf_sym_lookup(es, "_PyRuntime", &val, &size) == 0 && val && size) {
		pi->runtime_lo = val + pi->image_bias;
		pi->runtime_hi = pi->runtime_lo + size;
	}
	pi->debug_build = elf_sym_lookup(es, "_Py_NegativeRefcount", &val, NULL) == 0 ||
			  elf_sym_lookup(es, "_Py_RefTotal", &val, NULL) == 0;
	if (!pi->is_python && (elf_sym_lookup(es, "Py_Initialize", &val, NULL) == 0 ||
			       elf_sym_lookup(es, "PyRun_SimpleString", &val, NULL) == 0 ||
			       pi->has_debug_offsets))
		pi->is_python = 1;
	elf_sym_free(es);
}

int pyproc_maps_line(char *line, uint64_t *start, uint64_t *end, uint64_t *offset, char **path)
{
	unsigned long long lo, hi, off;
	int pos = 0;
	if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &lo, &hi, &off, &pos) < 3 || pos == 0)
		return -1;
	char *p = line + pos;
	p[strcspn(p, "\n")] = '\0';
	*start = lo;
	*end = hi;
	*offset = off;
	*path = p;
	return 0;
}

int pyproc_detect(pid_t pid, struct pyproc_info *pi, char *err, size_t errlen)
{
	memset(pi, 0, sizeof *pi);
	pi->pid = pid;
	pi->micro = -1;
	pi->free_threaded = -1;
	if (pid <= 0) {
		snprintf(err, errlen, "invalid process id %d", (int)pid);
		return -1;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT || errno == ESRCH)
			snprintf(err, errlen, "no such process: %d (check the pid; the process may have exited)", (int)pid);
		else if (errno == EACCES || errno == EPERM)
			pyproc_perm_error(pid, "reading the memory map of", err, errlen);
		else
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, pi->exe, sizeof pi->exe - 1);
	pi->exe[n > 0 ? n : 0] = '\0';
	const char *del = strstr(pi->exe, " (deleted)");
	if (del && del[10] == '\0')
		pi->exe[del - pi->exe] = '\0';

	char line[PATH_MAX + 256];
	int lib_found = 0, exe_found = 0, nlines = 0;
	uint64_t lib_start = 0, exe_start = 0;
	char lib[PATH_MAX] = "";
	int lmaj = 0, lmin = 0, lft = 0;
	while (fgets(line, sizeof line, f)) {
		uint64_t start, end, off;
		char *p;
		nlines++;
		if (pyproc_maps_line(line, &start, &end, &off, &p) < 0)
			continue;
		if (p[0] != '/')
			continue;
		if (off != 0)
			continue;
		int maj, min, ft;
		if (!lib_found && proctree_python_name(base_name(p), 1, &maj, &min, &ft)) {
			lib_found = 1;
			lib_start = start;
			snprintf(lib, sizeof lib, "%s", p);
			lmaj = maj, lmin = min, lft = ft;
		}
		if (!exe_found && strcmp(p, pi->exe) == 0) {
			exe_found = 1;
			exe_start = start;
		}
	}
	fclose(f);
	if (nlines == 0) {
		/* Kernel threads and zombies have empty maps; so do processes we may not read. */
		if (kill(pid, 0) != 0 && errno == ESRCH) {
			snprintf(err, errlen, "no such process: %d (check the pid; the process may have exited)", (int)pid);
			return -1;
		}
		if (pi->exe[0] == '\0') {
			snprintf(err, errlen, "process %d has no memory map (a kernel thread or a zombie): not a Python process", (int)pid);
			pi->is_python = 0;
			return 0;
		}
		pyproc_perm_error(pid, "reading the memory map of", err, errlen);
		return -1;
	}
	fill_namespace_facts(pid, pi);

	if (lib_found) {
		snprintf(pi->image, sizeof pi->image, "%s", lib);
		pi->image_start = lib_start;
		pi->is_python = 1;
		pi->major = lmaj, pi->minor = lmin, pi->free_threaded = lft;
		pi->version_source = "file name";
		char rp[PATH_MAX + 64], e2[256];
		root_path(pid, lib, rp, sizeof rp);
		struct elf_sym *es = elf_sym_new(rp, e2, sizeof e2);
		if (es) {
			pi->image_bias = lib_start - elf_sym_first_load(es);
			elf_sym_free(es);
		}
	} else if (exe_found) {
		snprintf(pi->image, sizeof pi->image, "%s", pi->exe);
		pi->image_start = exe_start;
		pi->static_exe = 1; /* cleared below when no interpreter is found */
		char rp[PATH_MAX + 64], e2[256];
		root_path(pid, pi->exe, rp, sizeof rp);
		struct elf_sym *es = elf_sym_new(rp, e2, sizeof e2);
		if (es) {
			pi->image_bias = exe_start - elf_sym_first_load(es);
			elf_sym_free(es);
		}
		int maj, min, ft;
		if (proctree_python_name(base_name(pi->exe), 0, &maj, &min, &ft)) {
			pi->major = maj, pi->minor = min, pi->free_threaded = ft;
			pi->version_source = "file name";
		}
	}
	if (pi->image[0]) {
		inspect_image(pid, pi);
		if (!pi->is_python)
			pi->major = pi->minor = 0, pi->free_threaded = -1, pi->version_source = NULL, pi->static_exe = 0;
	}
	if (pi->hexversion) {
		pi->major = (int)(pi->hexversion >> 24) & 0xff;
		pi->minor = (int)(pi->hexversion >> 16) & 0xff;
		pi->micro = (int)(pi->hexversion >> 8) & 0xff;
	}
	return 0;
}

int pyproc_find_object(pid_t pid, const char *prefix, char *path, size_t pathlen, uint64_t *start)
{
	char maps[64], line[PATH_MAX + 256];
	snprintf(maps, sizeof maps, "/proc/%d/maps", (int)pid);
	FILE *f = fopen(maps, "re");
	if (!f)
		return -1;
	int found = -1;
	size_t plen = strlen(prefix);
	while (found != 0 && fgets(line, sizeof line, f)) {
		uint64_t lo, hi, off;
		char *p;
		if (pyproc_maps_line(line, &lo, &hi, &off, &p) < 0 || off != 0)
			continue;
		if (p[0] != '/' || strncmp(base_name(p), prefix, plen) != 0)
			continue;
		snprintf(path, pathlen, "%s", p);
		*start = lo;
		found = 0;
	}
	fclose(f);
	return found;
}

int pyproc_check_supported(const struct pyproc_info *pi, char *err, size_t errlen)
{
	if (pi->is_python && pi->major == 0) {
		snprintf(err, errlen,
			 "process %d (%s) embeds a CPython interpreter whose version pmt-top cannot tell; "
			 "start the agent from the application with `import pmt_agent; pmt_agent.start()`",
			 (int)pi->pid, pi->exe[0] ? base_name(pi->exe) : "?");
		return -1;
	}
	if (!pi->is_python) {
		snprintf(err, errlen,
			 "process %d (%s) is not a Python process: no CPython interpreter found in its memory map",
			 (int)pi->pid, pi->exe[0] ? base_name(pi->exe) : "?");
		return -1;
	}
	if (pi->major != 3 || pi->minor < PYPROC_MIN_MINOR || pi->minor > PYPROC_MAX_MINOR) {
		snprintf(err, errlen,
			 "process %d runs Python %d.%d, which pmt-top does not support (it needs CPython 3.%d-3.%d)",
			 (int)pi->pid, pi->major, pi->minor, PYPROC_MIN_MINOR, PYPROC_MAX_MINOR);
		return -1;
	}
	if (pi->free_threaded == 1) {
		/* Its GIL checks and the agent's C extensions assume a GIL build. */
		snprintf(err, errlen,
			 "process %d runs a free-threaded CPython %d.%d build, which pmt-top does not support yet "
			 "(it attaches to builds with the GIL)",
			 (int)pi->pid, pi->major, pi->minor);
		return -1;
	}
	return 0;
}

char pyproc_stat_state(const char *stat)
{
	const char *rp = strrchr(stat, ')');
	return rp && rp[1] == ' ' ? rp[2] : '?';
}

enum pyproc_thread_state pyproc_syscall_parse(const char *text, struct pyproc_syscall *sc)
{
	if (strncmp(text, "running", 7) == 0)
		return PYPROC_THREAD_RUNNING;
	/* "NR ARG1 ... ARG6 SP PC", the numbers after NR in hex. */
	const char *p = text;
	char *end;
	long nr = strtol(p, &end, 10);
	if (end == p || nr < 0)
		return PYPROC_THREAD_UNKNOWN;
	unsigned long long v[8];
	int k = 0;
	for (p = end; k < 8; k++, p = end) {
		v[k] = strtoull(p, &end, 16);
		if (end == p)
			break;
	}
	if (sc) {
		sc->nr = nr;
		sc->arg0 = k >= 1 ? v[0] : 0;
		sc->pc = k == 8 ? v[7] : 0;
	}
	return PYPROC_THREAD_SYSCALL;
}

long long pyproc_switches_parse(const char *status)
{
	const char *v = strstr(status, "\nvoluntary_ctxt_switches:");
	const char *nv = strstr(status, "\nnonvoluntary_ctxt_switches:");
	if (!v || !nv)
		return -1;
	long long a = strtoll(strchr(v + 1, ':') + 1, NULL, 10);
	long long b = strtoll(strchr(nv + 1, ':') + 1, NULL, 10);
	if (a < 0 || b < 0 || a > LLONG_MAX - b)
		return -1; /* not counters */
	return a + b;
}

enum pyproc_thread_state pyproc_thread(pid_t pid, pid_t tid, struct pyproc_syscall *sc)
{
	char path[80], buf[256];
	if (sc)
		*sc = (struct pyproc_syscall){ .nr = -1 };
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? PYPROC_THREAD_GONE : PYPROC_THREAD_UNKNOWN;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return PYPROC_THREAD_UNKNOWN;
	buf[n] = '\0';
	char st = pyproc_stat_state(buf);
	if (st == 'Z' || st == 'X')
		return PYPROC_THREAD_GONE;
	if (st == 't' || st == 'T')
		return PYPROC_THREAD_STOPPED;
	if (st == 'R')
		return PYPROC_THREAD_RUNNING;
	snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			enum pyproc_thread_state ts = pyproc_syscall_parse(buf, sc);
			if (ts != PYPROC_THREAD_UNKNOWN)
				return ts;
		}
	}
	/* Sleeping ('S'/'D') without a readable syscall: a blocking call all the same. */
	return (st == 'S' || st == 'D') ? PYPROC_THREAD_SYSCALL : PYPROC_THREAD_UNKNOWN;
}

long long pyproc_thread_switches(pid_t pid, pid_t tid)
{
	char path[80], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return pyproc_switches_parse(buf);
}

enum pyproc_thread_state pyproc_main_thread(pid_t pid, long *syscall_nr)
{
	struct pyproc_syscall sc;
	enum pyproc_thread_state st = pyproc_thread(pid, pid, &sc);
	if (syscall_nr)
		*syscall_nr = sc.nr;
	return st;
}

const char *pyproc_syscall_name(long nr, char *buf, size_t len)
{
	static const struct {
		long nr;
		const char *name;
	} names[] = {
#define N(x) { SYS_##x, #x }
		N(read), N(write), N(futex), N(wait4), N(waitid), N(connect), N(sendto), N(recvfrom),
		N(sendmsg), N(recvmsg), N(accept4), N(clock_nanosleep), N(nanosleep), N(ppoll),
		N(pselect6), N(epoll_pwait), N(rt_sigtimedwait), N(rt_sigsuspend), N(flock), N(fcntl),
		N(openat), N(readv), N(writev), N(pread64), N(pwrite64),
#ifdef SYS_select
		N(select),
#endif
#ifdef SYS_poll
		N(poll),
#endif
#ifdef SYS_accept
		N(accept),
#endif
#ifdef SYS_epoll_wait
		N(epoll_wait),
#endif
#ifdef SYS_pause
		N(pause),
#endif
#ifdef SYS_epoll_pwait2
		N(epoll_pwait2),
#endif
#undef N
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].nr == nr)
			return names[i].name;
	snprintf(buf, len, "system call %ld", nr);
	return buf;
}

int pyproc_waits_for_runtime(const struct pyproc_info *pi, const struct pyproc_syscall *sc)
{
	return sc->nr == SYS_futex && pi->runtime_lo && sc->arg0 >= pi->runtime_lo && sc->arg0 < pi->runtime_hi;
}
