/*
 * inject.c - method choice, bootstrap files and the injection state machine
 * (see inject.h). The per-method mechanics live in inject_pep768.c and
 * inject_gdb.c; this file checks the target, writes the bootstrap, drives
 * the chosen method and turns what it sees into a state and one sentence.
 */
#include "attach/inject.h"
#include "base/monotime.h"

#include "base/fsafe.h"
#include "attach/inject_child.h"
#include "base/xalloc.h"
#include "attach/inject_dir.h"
#include "attach/inject_gdb.h"
#include "attach/inject_pep768.h"
#include "attach/tracer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 10000
/* How long a delivered request may stay unanswered, with the main thread
 * in a system call all along, before that is reported as the reason. */
#define WAITING_AFTER_MS 300
/* Extra time granted to gdb when the deadline passes inside a call. */
#define CALL_GRACE_MS 5000

static const char *const method_names[] = {
	[INJECT_AUTO] = "auto",
	[INJECT_PEP768] = "pep768",
	[INJECT_REMOTE_EXEC] = "remote-exec",
	[INJECT_GDB] = "gdb",
	[INJECT_DIRECT] = "direct",
};


struct inject {
	pid_t pid;
	enum inject_method method;
	struct inject_probe probe;
	int timeout_ms;
	double t0, t_delivered, t_boot;
	enum inject_state state;
	char msg[512];
	int tmpfd;                  /* the target's /tmp, -1 if not opened */
	int dirfd;                  /* our private directory in it, -1 if none */
	char dirname[96];           /* its name in tmpfd (see inject_dir.h) */
	char dir[PATH_MAX];         /* our path to it, for messages */
	char boot_t[PATH_MAX];      /* bootstrap.py as the target sees it */
	uid_t status_uid;           /* who writes the status file */
	bool copied;                /* the agent was copied into dirfd (agent/, native/) */
	int delivered;
	struct inject_pep768 pep;
	int pep_requested;
	int picked_up;             /* the target cleared the PEP 768 pending flag */
	double syscall_since;      /* main thread seen in a system call since, 0 if not */
	int use_gdb;
	struct inject_gdb gdb;
	enum inject_gdb_mode gdb_mode;
	char gdb_prog[PATH_MAX];    /* gdb's path, when have_gdb */
	bool have_gdb;
	enum inject_way way;
	bool automatic;            /* the method was chosen here (INJECT_AUTO) */
	bool escalated;            /* the one change of way after WAITING was made */
	struct pyproc_syscall parked; /* where the main thread is parked; nr -1 if it is not */
	int use_child;
	struct inject_child child;
	double deadline_extended;
};

int inject_method_from_name(const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < sizeof method_names / sizeof method_names[0]; i++)
		if (strcmp(name, method_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *inject_way_name(enum inject_way w)
{
	static const char *const names[] = {
		[INJECT_WAY_QUEUED] = "queued",
		[INJECT_WAY_OTHER_THREAD] = "other-thread",
		[INJECT_WAY_PARKED] = "parked",
		[INJECT_WAY_DIRECT] = "direct",
	};
	return (unsigned)w < sizeof names / sizeof names[0] ? names[w] : "queued";
}

const char *inject_method_name(enum inject_method m)
{
	if ((unsigned)m >= sizeof method_names / sizeof method_names[0])
		return "auto";
	return method_names[m];
}

/* Finds PROG in PATH (or takes it as a path when it has a slash). */
static int find_program(const char *prog, char *out, size_t outlen)
{
	if (strchr(prog, '/')) {
		snprintf(out, outlen, "%s", prog);
		return access(prog, X_OK) == 0 ? 0 : -1;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		if (n > 0 && (size_t)snprintf(out, outlen, "%.*s/%s", (int)n, path, prog) < outlen &&
		    access(out, X_OK) == 0)
			return 0;
		path += n;
		if (*path == ':')
			path++;
	}
	out[0] = '\0';
	return -1;
}

int inject_probe(pid_t pid, struct inject_probe *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->remote_debug = -1;
	if (pyproc_detect(pid, &out->proc, err, errlen) != 0)
		return -1;
	out->gdb_available = find_program("gdb", out->gdb_path, sizeof out->gdb_path) == 0;
	out->main_thread = pyproc_main_thread(pid, NULL);
	const struct pyproc_info *pi = &out->proc;
	out->auto_method = pi->major == 3 && pi->minor >= 14 ? INJECT_PEP768 : INJECT_GDB;
	if (pi->has_debug_offsets && pi->major == 3 && pi->minor >= 14) {
		struct inject_pep768 st;
		char e2[256];
		if (inject_pep768_open(pi, &st, e2, sizeof e2) == 0)
			out->remote_debug = st.remote_debug;
	}
	return 0;
}

/* Appends S as a Python bytes literal (b'...') to BUF. */
static void py_bytes(char *buf, size_t buflen, const char *s)
{
	size_t n = strlen(buf);
	n += (size_t)snprintf(buf + n, buflen - n, "b'");
	for (const unsigned char *p = (const unsigned char *)s; p && *p && n + 5 < buflen; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '\'')
			buf[n++] = (char)*p;
		else
			n += (size_t)snprintf(buf + n, buflen - n, "\\x%02x", *p);
	}
	snprintf(buf + n, buflen - n, "'");
}

/* Creates NAME in our directory, exclusively, with exactly MODE, owned by
 * UID when that is not ours (we are root), and writes TEXT into it. */
static int write_file(struct inject *ij, const char *name, const char *text, mode_t mode, uid_t uid, char *err,
		      size_t errlen)
{
	int fd = openat(ij->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s/%s: %s", ij->dir, name, strerror(errno));
		return -1;
	}
	size_t len = strlen(text);
	ssize_t n = len ? write(fd, text, len) : 0;
	int ok = n == (ssize_t)len && fchmod(fd, mode) == 0;
	if (ok && uid != geteuid())
		ok = fchown(fd, uid, (gid_t)-1) == 0;
	if (close(fd) != 0 || !ok) {
		snprintf(err, errlen, "cannot write %s/%s: %s", ij->dir, name, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Makes our private directory in the target's /tmp (seen through
 * /proc/PID/root when it lives in another mount namespace). It is ours and
 * nobody else may write in it, so that the target's user can replace
 * nothing we read or delete: mode 0711 lets the target read the bootstrap
 * by its exact name. Everything after this goes through the directory's
 * descriptor, never through a path that could be swapped.
 */
static int make_dir(struct inject *ij, const char *prefix, char *err, size_t errlen)
{
	char tmp[96];
	struct stat st;
	snprintf(tmp, sizeof tmp, "%s/tmp", prefix);
	ij->tmpfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ij->tmpfd < 0 || fstat(ij->tmpfd, &st) != 0) {
		snprintf(err, errlen, "cannot open %s for the agent bootstrap: %s", tmp,
			 errno == ELOOP ? "it is a symbolic link" : strerror(errno));
		return -1;
	}
	if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
		snprintf(err, errlen, "refusing %s for the agent bootstrap: everyone may write there and it "
			 "lacks the sticky bit", tmp);
		return -1;
	}
	/* What a pmt-top killed before it could clean up left here goes first. */
	inject_dir_sweep(ij->tmpfd);
	for (int tries = 0; tries < 16; tries++) {
		if (inject_dir_name(ij->pid, ij->dirname, sizeof ij->dirname) != 0)
			ij->dirname[0] = '\0';
		else if (mkdirat(ij->tmpfd, ij->dirname, 0700) == 0)
			break;
		ij->dirname[0] = '\0';
		if (errno != EEXIST) {
			snprintf(err, errlen, "cannot create a directory in %s for the agent bootstrap: %s", tmp,
				 strerror(errno));
			return -1;
		}
	}
	if (!ij->dirname[0]) {
		snprintf(err, errlen, "cannot create a directory in %s for the agent bootstrap", tmp);
		return -1;
	}
	snprintf(ij->dir, sizeof ij->dir, "%s/%s", tmp, ij->dirname);
	errno = 0;
	ij->dirfd = openat(ij->tmpfd, ij->dirname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ij->dirfd < 0 || fstat(ij->dirfd, &st) != 0 || st.st_uid != geteuid() ||
	    fchmod(ij->dirfd, ij->status_uid == geteuid() ? 0700 : 0711) != 0) {
		snprintf(err, errlen, "cannot set up %s for the agent bootstrap: %s", ij->dir,
			 errno ? strerror(errno) : "it changed under us");
		return -1;
	}
	return 0;
}

/* True when the name of our directory no longer leads to it. */
static bool dir_moved(const struct inject *ij)
{
	struct stat a, b;
	if (ij->dirfd < 0 || fstat(ij->dirfd, &a) != 0)
		return false;
	return fstatat(ij->tmpfd, ij->dirname, &b, AT_SYMLINK_NOFOLLOW) != 0 || a.st_dev != b.st_dev ||
	       a.st_ino != b.st_ino;
}

/* Removes what copy_dir made (the files it names, then itself). */
static void remove_dir(int dfd, const char *name)
{
	int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = sub >= 0 ? fdopendir(sub) : NULL;
	for (struct dirent *e; d && (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.')
			unlinkat(sub, e->d_name, 0);
	if (d)
		closedir(d);
	else if (sub >= 0)
		close(sub);
	unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Removes what make_files made, through the descriptors; the directory
 * only if the name still is the directory we made. */
static void remove_files(struct inject *ij, int keep_bootstrap)
{
	if (ij->dirfd >= 0) {
		unlinkat(ij->dirfd, "status", 0);
		if (!keep_bootstrap && ij->copied) {
			int adir = openat(ij->dirfd, "agent", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (adir >= 0) {
				remove_dir(adir, "pmt_agent");
				close(adir);
			}
			unlinkat(ij->dirfd, "agent", AT_REMOVEDIR);
			remove_dir(ij->dirfd, "native");
		}
		if (!keep_bootstrap) {
			struct stat a, b;
			unlinkat(ij->dirfd, "bootstrap.py", 0);
			if (fstat(ij->dirfd, &a) == 0 &&
			    fstatat(ij->tmpfd, ij->dirname, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
			    a.st_dev == b.st_dev)
				unlinkat(ij->tmpfd, ij->dirname, AT_REMOVEDIR);
		}
		close(ij->dirfd);
		ij->dirfd = -1;
	}
	if (ij->tmpfd >= 0)
		close(ij->tmpfd);
	ij->tmpfd = -1;
}

/* True when we have the file DIR/NAME and the target does not see it at
 * the same path (a missing agent is left for the bootstrap to report). */
static bool target_misses(const struct inject *ij, const char *dir, const char *name)
{
	char ours[PATH_MAX + 64], theirs[PATH_MAX + 128];
	struct stat a, b;
	snprintf(ours, sizeof ours, "%s/%s", dir, name);
	snprintf(theirs, sizeof theirs, "/proc/%d/root%s/%s", (int)ij->pid, dir, name);
	if (stat(ours, &a) != 0)
		return false;
	return stat(theirs, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino;
}

/* Copies the regular file SRC into DFD as NAME, ours, mode 0644. */
static int copy_file(int dfd, const char *name, const char *src, char *err, size_t errlen)
{
	const struct fsafe_want want = { 0, 64 << 20, (uid_t)-1, (uid_t)-1 };
	char why[256], buf[65536];
	int in = fsafe_open(AT_FDCWD, src, &want, NULL, why, sizeof why);
	if (in < 0) {
		snprintf(err, errlen, "cannot copy the agent: %s", why);
		return -1;
	}
	int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc = out >= 0 && fchmod(out, 0644) == 0 ? 0 : -1;
	for (ssize_t n; rc == 0 && (n = read(in, buf, sizeof buf)) != 0;)
		if (n < 0 || write(out, buf, (size_t)n) != n)
			rc = -1;
	if (rc != 0)
		snprintf(err, errlen, "cannot copy %s for the target: %s", src, strerror(errno));
	close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* Copies the files of directory SRC that KEEP accepts into a new directory
 * NAME of DFD (ours, 0755). */
static int copy_dir(int dfd, const char *name, const char *src, bool (*keep)(const char *, int), int minor,
		    char *err, size_t errlen)
{
	if (mkdirat(dfd, name, 0755) != 0) {
		snprintf(err, errlen, "cannot make %s for the agent's copy: %s", name, strerror(errno));
		return -1;
	}
	int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = opendir(src);
	int rc = sub >= 0 && d && fchmod(sub, 0755) == 0 ? 0 : -1;
	if (rc != 0)
		snprintf(err, errlen, "cannot copy %s for the target: %s", src, strerror(errno));
	for (struct dirent *e; rc == 0 && d && (e = readdir(d)) != NULL;) {
		char path[PATH_MAX + 256];
		if (e->d_name[0] == '.' || !keep(e->d_name, minor))
			continue;
		snprintf(path, sizeof path, "%s/%s", src, e->d_name);
		rc = copy_file(sub, e->d_name, path, err, errlen);
	}
	if (d)
		closedir(d);
	if (sub >= 0)
		close(sub);
	return rc;
}

static bool is_py(const char *name, int minor)
{
	(void)minor;
	size_t n = strlen(name);
	return n > 3 && strcmp(name + n - 3, ".py") == 0;
}

/* The target's interpreter's builds of the agent's C extensions. */
static bool is_ext_for(const char *name, int minor)
{
	char tag[32];
	snprintf(tag, sizeof tag, ".cpython-3%d", minor);
	size_t n = strlen(name);
	return strstr(name, tag) && n > 3 && strcmp(name + n - 3, ".so") == 0;
}


/*
 * Creates the private directory and writes the bootstrap into it, and the
 * status file the bootstrap fills in (owned by the target's user: it is the
 * only thing there the target may write, and only its contents).
 */
static int make_files(struct inject *ij, const char *agent_dir, const char *native_dir, char *err, size_t errlen)
{
	const struct pyproc_info *pi = &ij->probe.proc;
	char prefix[64];
	if (pi->other_mntns)
		snprintf(prefix, sizeof prefix, "/proc/%d/root", (int)ij->pid);
	else
		prefix[0] = '\0';
	ij->status_uid = geteuid() == 0 && pi->uid != (uid_t)-1 ? pi->uid : geteuid();
	if (make_dir(ij, prefix, err, errlen) != 0)
		return -1;
	const char *target_dir = ij->dir + strlen(prefix);
	snprintf(ij->boot_t, sizeof ij->boot_t, "%s/bootstrap.py", target_dir);
	char status_t[PATH_MAX];
	snprintf(status_t, sizeof status_t, "%s/status", target_dir);

	/* A target in another mount namespace (a container, PrivateTmp) may not
	 * see pmt-top's files at all: then it gets a copy beside the bootstrap,
	 * ours and read-only to it, which it imports whole before the copy goes. */
	char agent_t[PATH_MAX], native_t[PATH_MAX];
	if (agent_dir && target_misses(ij, agent_dir, "pmt_agent/__init__.py")) {
		char src[PATH_MAX + 16];
		snprintf(src, sizeof src, "%s/pmt_agent", agent_dir);
		if (mkdirat(ij->dirfd, "agent", 0755) != 0 || fchmodat(ij->dirfd, "agent", 0755, 0) != 0) {
			snprintf(err, errlen, "cannot make a copy of the agent in %s: %s", ij->dir, strerror(errno));
			return -1;
		}
		ij->copied = true;
		int adir = openat(ij->dirfd, "agent", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int rc = adir >= 0 ? copy_dir(adir, "pmt_agent", src, is_py, pi->minor, err, errlen) : -1;
		if (adir >= 0)
			close(adir);
		/* The C extensions are optional: no directory of them, no copy. */
		struct stat nst;
		bool natives = native_dir && *native_dir && stat(native_dir, &nst) == 0 && S_ISDIR(nst.st_mode);
		if (rc == 0 && natives)
			rc = copy_dir(ij->dirfd, "native", native_dir, is_ext_for, pi->minor, err, errlen);
		if (rc != 0)
			return -1;
		snprintf(agent_t, sizeof agent_t, "%s/agent", target_dir);
		snprintf(native_t, sizeof native_t, "%s/native", target_dir);
		agent_dir = agent_t;
		native_dir = natives ? native_t : NULL;
	}

	static char text[16384];
	text[0] = '\0';
	size_t n = 0;
#define ADD(...) (n += (size_t)snprintf(text + n, sizeof text - n, __VA_ARGS__))
	ADD("# pmt-top agent bootstrap: generated; runs once inside this process.\n"
	    "def _pmt_top_bootstrap():\n"
	    "    import os, sys\n"
	    "    status = os.fsdecode(");
	py_bytes(text, sizeof text, status_t);
	n = strlen(text);
	ADD(")\n    try:\n        for p in (os.fsdecode(");
	py_bytes(text, sizeof text, native_dir ? native_dir : "");
	n = strlen(text);
	ADD("), os.fsdecode(");
	py_bytes(text, sizeof text, agent_dir ? agent_dir : "");
	n = strlen(text);
	ADD("),):\n"
	    "            if p and p not in sys.path:\n"
	    "                sys.path.insert(0, p)\n"
	    "        import pmt_agent\n"
	    "        pmt_agent.start()\n"
	    "        if %s:\n"
	    "            import pmt_agent.functions, pmt_agent.server, pmt_agent.safefile\n"
	    "        msg = 'ok'\n"
	    "    except BaseException as e:\n"
	    "        msg = 'error: %%s: %%s' %% (type(e).__name__, e)\n"
	    "        try:\n"
	    "            sys.stderr.write('pmt-top: agent bootstrap failed: %%s\\n' %% msg[7:])\n"
	    "        except BaseException:\n"
	    "            pass\n"
	    "    try:\n"
	    "        with open(status, 'w') as f:\n"
	    "            f.write(msg.replace('\\n', ' ')[:400] + '\\n')\n"
	    "    except BaseException:\n"
	    "        pass\n"
	    "_pmt_top_bootstrap()\n"
	    "del _pmt_top_bootstrap\n",
	    ij->copied ? "True" : "False");
#undef ADD
	if (n >= sizeof text - 1) {
		snprintf(err, errlen, "the agent or native directory path is too long");
		return -1;
	}
	if (write_file(ij, "status", "", 0600, ij->status_uid, err, errlen) != 0)
		return -1;
	return write_file(ij, "bootstrap.py", text, 0644, geteuid(), err, errlen);
}

/* The one-liner gdb hands to PyRun_SimpleString: exec the bootstrap file in
 * a fresh namespace, swallowing everything (even a missing file). */
static void gdb_snippet(const struct inject *ij, char *buf, size_t buflen)
{
	if (ij->gdb_mode != INJECT_GDB_PENDING) {
		/* Direct runs inside gdb's call, where a gdb killed with SIGKILL
		 * would kill the target: hand the bootstrap to a new thread, so
		 * that the call lasts a thread start, not the agent's import. */
		/* PyRun_SimpleString runs in __main__, where no name of the
		 * application may be bound or replaced: the thread's function is
		 * made in a dictionary of its own. It swallows everything (a
		 * request queued earlier may run it a second time, when the files
		 * are already gone). threading is imported here, on the main
		 * thread: before 3.13, the thread that first imports it becomes
		 * its "main thread", and a program that never imported it would
		 * fail an assertion at exit. */
		snprintf(buf, buflen,
			 "try:\n __import__('threading');(lambda d:(exec("
			 "'def f(p):\\n try:\\n  with open(p,\\'rb\\') as h:\\n   s=h.read()\\n"
			 "  exec(compile(s,\\'<pmt-top bootstrap>\\',\\'exec\\'),"
			 "{\\'__name__\\':\\'__pmt_top_bootstrap__\\'})\\n"
			 " except BaseException:\\n  pass\\n',d),"
			 "__import__('_thread').start_new_thread(d['f'],(");
		py_bytes(buf, buflen, ij->boot_t);
		size_t n = strlen(buf);
		snprintf(buf + n, buflen - n, ",))))({})\nexcept BaseException:\n pass\n");
		return;
	}
	/* The file is closed at once: a debug build warns about one left to the GC. */
	snprintf(buf, buflen, "try:\n exec(compile((lambda f:(f.read(),f.close())[0])(open(");
	py_bytes(buf, buflen, ij->boot_t);
	size_t n = strlen(buf);
	snprintf(buf + n, buflen - n,
		 ",'rb')),'<pmt-top bootstrap>','exec'),{'__name__':'__pmt_top_bootstrap__'})\n"
		 "except BaseException:\n pass\n");
}

/* Reads the target's PYTHONHOME, if set, into OUT ("PYTHONHOME=..."). */
static int target_pythonhome(pid_t pid, char *out, size_t outlen)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	static char env[65536];
	size_t n = fread(env, 1, sizeof env - 1, f);
	fclose(f);
	env[n] = '\0';
	for (size_t i = 0; i < n; i += strlen(env + i) + 1) {
		if (strncmp(env + i, "PYTHONHOME=", 11) == 0) {
			snprintf(out, outlen, "%s", env + i);
			return 0;
		}
	}
	return -1;
}

static int start_remote_exec(struct inject *ij, char *err, size_t errlen)
{
	char exe[64], code[PATH_MAX + 128];
	snprintf(exe, sizeof exe, "/proc/%d/exe", (int)ij->pid);
	snprintf(code, sizeof code, "import sys, os; sys.remote_exec(%d, os.fsdecode(", (int)ij->pid);
	py_bytes(code, sizeof code, ij->boot_t);
	strncat(code, "))", sizeof code - strlen(code) - 1);
	char *argv[] = {exe, "-S", "-s", "-c", code, NULL};
	static char home[PATH_MAX + 16];
	char *set[] = {home, NULL};
	char *unset[] = {"PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHON_DISABLE_REMOTE_DEBUG", NULL};
	if (target_pythonhome(ij->pid, home, sizeof home) != 0)
		set[0] = NULL;
	if (inject_child_spawn(&ij->child, argv, set, unset, NULL, err, errlen) != 0)
		return -1;
	ij->use_child = 1;
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {0, ms * 1000L * 1000L};
	nanosleep(&ts, NULL);
}

/*
 * True when the main thread stays in the same system call over a few
 * samples (20 ms) without running at all: parked in a blocking call, not
 * passing through one (a loop of short sleeps runs between them, and takes
 * a queued request within one of them). SC gets where (nr -1 when it is
 * not parked).
 */
static int main_thread_parked(pid_t pid, struct pyproc_syscall *sc)
{
	long nr = -1;
	long long sw = pyproc_thread_switches(pid, pid);
	for (int i = 0; i < 5; i++) {
		if (i)
			sleep_ms(5);
		if (pyproc_thread(pid, pid, sc) != PYPROC_THREAD_SYSCALL || sc->nr < 0 || (i && sc->nr != nr)) {
			sc->nr = -1;
			return 0;
		}
		nr = sc->nr;
	}
	if (sw >= 0 && pyproc_thread_switches(pid, pid) != sw) {
		sc->nr = -1;
		return 0;
	}
	return 1;
}

/*
 * 3.14+: a Python thread other than the main one that runs (seen on a CPU,
 * or it woke up, within 20 ms) and was never seen waiting for the GIL (a
 * thread that only waits for it wakes up every switch interval too), so it
 * reaches an eval-breaker check soon; or 0.
 */
static pid_t running_python_thread(const struct inject *ij)
{
	enum { MAXT = 64 };
	pid_t tids[MAXT];
	long long sw[MAXT];
	bool ran[MAXT] = { false }, gil_wait[MAXT] = { false };
	/* Native ids are the target's; in another pid namespace they do not
	 * name our /proc entries: then only the main thread is usable. */
	if (ij->probe.proc.nspid != ij->pid)
		return 0;
	int n = inject_pep768_threads(&ij->pep, tids, MAXT);
	for (int i = 0; i < n; i++)
		sw[i] = pyproc_thread_switches(ij->pid, tids[i]);
	for (int round = 0; round < 4; round++) {
		sleep_ms(5);
		for (int i = 0; i < n; i++) {
			struct pyproc_syscall sc;
			enum pyproc_thread_state st = pyproc_thread(ij->pid, tids[i], &sc);
			ran[i] |= st == PYPROC_THREAD_RUNNING;
			gil_wait[i] |= st == PYPROC_THREAD_SYSCALL && pyproc_waits_for_runtime(&ij->probe.proc, &sc);
		}
	}
	for (int i = 0; i < n; i++) {
		if (tids[i] == ij->pid || gil_wait[i])
			continue;
		if (ran[i] || (sw[i] >= 0 && pyproc_thread_switches(ij->pid, tids[i]) > sw[i]))
			return tids[i];
	}
	return 0;
}

/* One sentence on where the main thread is parked, for messages. */
static const char *parked_in(const struct inject *ij, char *buf, size_t len)
{
	char nb[48];
	snprintf(buf, len, "%s", pyproc_syscall_name(ij->parked.nr, nb, sizeof nb));
	return buf;
}

/*
 * INJECT_AUTO for a main thread that is parked (see inject.h): the way in,
 * as METHOD, GDB_MODE and, on 3.14+, the thread the request goes to. Left
 * as it was (queued for the main thread) when nothing else can enter.
 */
static void choose_parked_way(struct inject *ij)
{
	const struct pyproc_info *pi = &ij->probe.proc;
	if (pyproc_waits_for_runtime(pi, &ij->parked)) {
		/* It waits for the GIL: it will have it within a switch interval
		 * or two, unless a C call elsewhere keeps it; queue as usual. */
		ij->parked.nr = -1;
		return;
	}
	if (pi->minor >= 14) {
		pid_t tid = running_python_thread(ij);
		if (tid && inject_pep768_retarget(&ij->pep, tid) == 0) {
			ij->method = INJECT_PEP768;
			ij->way = INJECT_WAY_OTHER_THREAD;
			return;
		}
	}
	if (!ij->have_gdb || !INJECT_GDB_CAN_ENTER)
		return; /* nothing else can enter now: queue, and say why it waits */
	ij->method = INJECT_GDB;
	ij->gdb_mode = INJECT_GDB_ENTER;
	ij->way = INJECT_WAY_PARKED;
}

/* Checks the target and resolves AUTO. Fills ERR and returns -1 on refusal. */
static int check_target(struct inject *ij, const struct inject_req *req, char *err, size_t errlen)
{
	if (inject_probe(req->pid, &ij->probe, err, errlen) != 0)
		return -1;
	const struct pyproc_info *pi = &ij->probe.proc;
	if (pyproc_check_supported(pi, err, errlen) != 0)
		return -1;
	if (pi->tracer) {
		struct tracer t;
		char who[128];
		if (tracer_find(pi->pid, &t) != 1) {
			t.pid = pi->tracer;
			t.comm[0] = t.parent_comm[0] = '\0';
			t.parent = 0;
		}
		tracer_describe(&t, who, sizeof who);
		if (tracer_is_pmt_top(&t))
			snprintf(err, errlen, "process %d is being traced by %s: another pmt-top is loading the "
				 "agent into it", (int)pi->pid, who);
		else
			snprintf(err, errlen, "process %d is being traced by %s, and only one debugger can attach "
				 "at a time; detach it first", (int)pi->pid, who);
		return -1;
	}
	if (pi->stopped) {
		snprintf(err, errlen,
			 "process %d is stopped and could not run the agent; resume it first (kill -CONT %d)",
			 (int)pi->pid, (int)pi->pid);
		return -1;
	}
	/* process_vm_readv needs the same permission as ptrace attach. */
	unsigned char b;
	if (pi->image_start && pyproc_read(pi->pid, pi->image_start, &b, 1) != 0 && (errno == EPERM || errno == EACCES)) {
		pyproc_perm_error(pi->pid, "attaching to", err, errlen);
		return -1;
	}
	ij->automatic = req->method == INJECT_AUTO;
	ij->method = ij->automatic ? ij->probe.auto_method : req->method;
	ij->gdb_mode = ij->method == INJECT_DIRECT ? INJECT_GDB_DIRECT : INJECT_GDB_PENDING;
	ij->way = ij->method == INJECT_DIRECT ? INJECT_WAY_DIRECT : INJECT_WAY_QUEUED;
	ij->parked.nr = -1;
	int is314 = pi->minor >= 14;
	if (is314) {
		if (inject_pep768_open(pi, &ij->pep, err, errlen) != 0)
			return -1;
		if (!ij->pep.remote_debug) {
			/* The opt-out binds every method, not only PEP 768. */
			snprintf(err, errlen, "%s", inject_pep768_disabled_msg);
			return -1;
		}
	}
	ij->have_gdb = find_program(req->gdb ? req->gdb : "gdb", ij->gdb_prog, sizeof ij->gdb_prog) == 0;
	if (ij->automatic && main_thread_parked(pi->pid, &ij->parked))
		choose_parked_way(ij);
	switch (ij->method) {
	case INJECT_PEP768:
	case INJECT_REMOTE_EXEC:
		if (!is314) {
			snprintf(err, errlen,
				 "process %d runs Python %d.%d; the %s method needs 3.14+ (use --inject-method gdb)",
				 (int)pi->pid, pi->major, pi->minor, inject_method_name(ij->method));
			return -1;
		}
		if (ij->method == INJECT_REMOTE_EXEC && geteuid() == 0 && pi->uid != 0) {
			/* It would run the target's own interpreter (and PYTHONHOME) as root,
			 * and the target's user may be able to replace both. */
			snprintf(err, errlen,
				 "the remote-exec method would run process %d's own interpreter as root, and "
				 "uid %lu may control it; use --inject-method pep768",
				 (int)pi->pid, (unsigned long)pi->uid);
			return -1;
		}
		if (ij->method == INJECT_REMOTE_EXEC && ij->pep.free_threaded != (pi->free_threaded == 1)) {
			snprintf(err, errlen, "process %d: free-threading flag mismatch; use --inject-method pep768",
				 (int)pi->pid);
			return -1;
		}
		break;
	case INJECT_GDB:
	case INJECT_DIRECT: {
		if (ij->method == INJECT_DIRECT && !main_thread_parked(pi->pid, &ij->parked)) {
			snprintf(err, errlen,
				 "the direct method runs only while the main thread of process %d is blocked in a "
				 "system call, and it is running Python now; use --inject-method %s",
				 (int)pi->pid, is314 ? "pep768" : "gdb");
			return -1;
		}
		if (!ij->have_gdb) {
			snprintf(err, errlen,
				 "gdb is not installed (needed to attach to Python %d.%d with the %s method): run "
				 "`apt-get install gdb`, or start the agent in the application with "
				 "`import pmt_agent; pmt_agent.start()`",
				 pi->major, pi->minor, inject_method_name(ij->method));
			return -1;
		}
		break;
	}
	default:
		snprintf(err, errlen, "unknown injection method %d", (int)ij->method);
		return -1;
	}
	return 0;
}

/* Sends the request the chosen way: writes it (PEP 768) or starts the
 * helper process (gdb, remote-exec). */
static int start_way(struct inject *ij, char *err, size_t errlen)
{
	switch (ij->method) {
	case INJECT_PEP768:
		if (inject_pep768_request(&ij->pep, ij->boot_t, err, errlen) != 0)
			return -1;
		ij->pep_requested = 1;
		ij->delivered = 1;
		ij->t_delivered = monotime_ms();
		if (ij->way == INJECT_WAY_OTHER_THREAD)
			snprintf(ij->msg, sizeof ij->msg,
				 "asked thread %d of process %d to run the agent bootstrap (PEP 768; the main thread "
				 "is blocked)", (int)ij->pep.tid, (int)ij->pid);
		else
			snprintf(ij->msg, sizeof ij->msg, "asked process %d to run the agent bootstrap (PEP 768)",
				 (int)ij->pid);
		return 0;
	case INJECT_REMOTE_EXEC:
		if (start_remote_exec(ij, err, errlen) != 0)
			return -1;
		snprintf(ij->msg, sizeof ij->msg, "running sys.remote_exec on process %d", (int)ij->pid);
		return 0;
	case INJECT_GDB:
	case INJECT_DIRECT: {
		char snippet[PATH_MAX * 5];
		gdb_snippet(ij, snippet, sizeof snippet);
		struct inject_gdb_addrs addrs;
		int have = inject_gdb_resolve(&ij->probe.proc, &addrs) == 0;
		if (inject_gdb_start(&ij->gdb, ij->gdb_prog, ij->pid, ij->gdb_mode, &ij->parked, snippet,
				     have ? &addrs : NULL, err, errlen) != 0)
			return -1;
		ij->use_gdb = 1;
		ij->delivered = 0;
		snprintf(ij->msg, sizeof ij->msg, "attaching to process %d with gdb", (int)ij->pid);
		return 0;
	}
	default:
		snprintf(err, errlen, "unknown injection method %d", (int)ij->method);
		return -1;
	}
}

struct inject *inject_start(const struct inject_req *req, char *err, size_t errlen)
{
	struct inject *ij = xcalloc(1, sizeof *ij);
	ij->pid = req->pid;
	ij->t0 = monotime_ms();
	ij->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
	ij->child.fd = -1;
	ij->gdb.child.fd = -1;
	ij->tmpfd = ij->dirfd = -1;
	ij->state = INJECT_RUNNING;
	if (check_target(ij, req, err, errlen) != 0)
		goto fail;
	if (!req->agent_dir || !*req->agent_dir) {
		snprintf(err, errlen, "no agent directory given (the directory that contains pmt_agent)");
		goto fail;
	}
	if (make_files(ij, req->agent_dir, req->native_dir, err, errlen) != 0)
		goto fail;
	if (start_way(ij, err, errlen) != 0)
		goto fail;
	return ij;
fail:
	inject_free(ij);
	return NULL;
}

/*
 * Reads the bootstrap's status file: 1 ok, -1 error (MSG filled), 0 none yet.
 * Its contents come from the target: bounded, and a line only counts once
 * its newline is there (the bootstrap writes it in place).
 */
static int read_status(const struct inject *ij, char *msg, size_t msglen)
{
	const struct fsafe_want want = { FSAFE_NOFOLLOW, 4096, ij->status_uid, geteuid() };
	char why[256], line[512];
	if (ij->dirfd < 0)
		return 0;
	int fd = fsafe_open(ij->dirfd, "status", &want, NULL, why, sizeof why);
	if (fd < 0)
		return 0;
	ssize_t n = fsafe_read_small(fd, line, sizeof line);
	close(fd);
	if (n <= 0 || (line[n - 1] != '\n' && (size_t)n < sizeof line - 1))
		return 0;
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, "ok") == 0)
		return 1;
	const char *text = strncmp(line, "error: ", 7) == 0 ? line + 7 : line;
	snprintf(msg, msglen, "%.*s", (int)(msglen ? msglen - 1 : 0), text);
	return -1;
}

/*
 * Once per injection (INJECT_AUTO), when the request waits on a thread
 * parked in a system call: takes the way a parked main thread gets (see
 * choose_parked_way). Returns 1 when a new request went out, 0 when nothing
 * better can be done (keep waiting), -1 with WHY when nothing can enter.
 */
static int change_way(struct inject *ij, char *why, size_t whylen)
{
	ij->escalated = true;
	if (!main_thread_parked(ij->pid, &ij->parked) || pyproc_waits_for_runtime(&ij->probe.proc, &ij->parked))
		return 0;
	enum inject_way was = ij->way;
	if (ij->pep_requested) {
		inject_pep768_cancel(&ij->pep);
		ij->pep_requested = 0;
	}
	ij->use_gdb = 0;
	ij->gdb_mode = INJECT_GDB_PENDING;
	choose_parked_way(ij);
	if (ij->way == was || ij->way == INJECT_WAY_QUEUED) {
		char where[48];
		snprintf(why, whylen,
			 "the main thread of process %d is blocked in %s and no other thread runs Python, so the "
			 "agent cannot start until it returns%s",
			 (int)ij->pid, parked_in(ij, where, sizeof where),
			 ij->have_gdb ? "" : " (with gdb installed pmt-top could enter it: apt-get install gdb)");
		return -1;
	}
	if (start_way(ij, why, whylen) != 0)
		return -1;
	return 1;
}

static enum inject_state finish(struct inject *ij, enum inject_state st, char *status, size_t statuslen)
{
	ij->state = st;
	if (ij->use_gdb && ij->gdb.child.exited)
		inject_gdb_done(&ij->gdb);
	if (st == INJECT_FAILED && ij->pep_requested)
		inject_pep768_cancel(&ij->pep);
	snprintf(status, statuslen, "%s", ij->msg);
	return st;
}

static void stop_children(struct inject *ij)
{
	if (ij->use_gdb)
		inject_gdb_stop(&ij->gdb);
	if (ij->use_child && !ij->child.exited)
		inject_child_signal_wait(&ij->child, SIGKILL, 1000);
}

enum inject_state inject_poll(struct inject *ij, char *status, size_t statuslen)
{
	if (ij->state == INJECT_DONE || ij->state == INJECT_FAILED) {
		snprintf(status, statuslen, "%s", ij->msg);
		return ij->state;
	}
	double now = monotime_ms();
	char why[400];
	/* With gdb, the outcome counts only once gdb has detached (DIRECT runs
	 * the bootstrap before that), so gdb is never abandoned mid-call. */
	int st = ij->use_gdb && !ij->delivered ? 0 : read_status(ij, why, sizeof why);
	if (st != 0) {
		ij->t_boot = now;
		if (st > 0) {
			char how[160], where[48];
			if (ij->way == INJECT_WAY_PARKED || ij->way == INJECT_WAY_DIRECT)
				snprintf(how, sizeof how, " (with gdb, on its main thread, blocked in %s with the GIL released)",
					 parked_in(ij, where, sizeof where));
			else if (ij->way == INJECT_WAY_OTHER_THREAD)
				snprintf(how, sizeof how, " (PEP 768, through thread %d: the main thread is blocked in %s)",
					 (int)ij->pep.tid, parked_in(ij, where, sizeof where));
			else
				snprintf(how, sizeof how, " (%s, at its main thread's next safe point)",
					 ij->method == INJECT_PEP768 ? "PEP 768" : inject_method_name(ij->method));
			snprintf(ij->msg, sizeof ij->msg, "the agent bootstrap ran in process %d%s; waiting for the agent",
				 (int)ij->pid, how);
			return finish(ij, INJECT_DONE, status, statuslen);
		}
		snprintf(ij->msg, sizeof ij->msg,
			 "the agent failed to start in process %d: %s (check the agent directory)", (int)ij->pid, why);
		return finish(ij, INJECT_FAILED, status, statuslen);
	}
	if (ij->delivered && dir_moved(ij)) {
		/* The target runs the bootstrap by its path, which is gone now:
		 * waiting for the deadline would only delay the same answer. */
		snprintf(ij->msg, sizeof ij->msg,
			 "the bootstrap directory %.200s was moved away (by the user of process %d, which can write "
			 "to its /tmp): the agent cannot start from it; try again",
			 ij->dir, (int)ij->pid);
		return finish(ij, INJECT_FAILED, status, statuslen);
	}
	if (ij->use_gdb && !ij->delivered) {
		int r = inject_gdb_poll(&ij->gdb, why, sizeof why);
		if (r < 0) {
			snprintf(ij->msg, sizeof ij->msg, "%s", why);
			return finish(ij, INJECT_FAILED, status, statuslen);
		}
		if (r > 0) {
			ij->delivered = 1;
			ij->t_delivered = now;
			inject_gdb_done(&ij->gdb);
			char where[48];
			if (ij->gdb.way == INJECT_GDB_WAY_HELD) {
				snprintf(ij->msg, sizeof ij->msg,
					 "the main thread of process %d waits in %s while holding the GIL, so no Python "
					 "code can run in the process until that call returns (a C extension that keeps "
					 "the GIL, or uWSGI without --enable-threads); nothing was changed in it",
					 (int)ij->pid, parked_in(ij, where, sizeof where));
				return finish(ij, INJECT_FAILED, status, statuslen);
			}
			if (ij->gdb.way == INJECT_GDB_WAY_PENDING)
				ij->way = INJECT_WAY_QUEUED; /* it had moved on by the time gdb stopped it */
			/* Run on the main thread, the bootstrap starts a thread of its
			 * own: its status file comes soon, not necessarily yet. */
			if (read_status(ij, why, sizeof why) != 0)
				return inject_poll(ij, status, statuslen);
			if (ij->way == INJECT_WAY_PARKED || ij->way == INJECT_WAY_DIRECT)
				snprintf(ij->msg, sizeof ij->msg,
					 "started the agent bootstrap in process %d on its main thread, blocked in %s",
					 (int)ij->pid, parked_in(ij, where, sizeof where));
			else
				snprintf(ij->msg, sizeof ij->msg,
					 "queued the agent bootstrap in process %d; waiting for its main thread",
					 (int)ij->pid);
		} else if (inject_gdb_attached(&ij->gdb)) {
			snprintf(ij->msg, sizeof ij->msg, "gdb attached to process %d; queueing the bootstrap",
				 (int)ij->pid);
		}
	}
	if (ij->use_child && !ij->delivered) {
		if (inject_child_poll(&ij->child)) {
			if (WIFEXITED(ij->child.status) && WEXITSTATUS(ij->child.status) == 0) {
				ij->delivered = 1;
				ij->t_delivered = now;
				snprintf(ij->msg, sizeof ij->msg,
					 "sys.remote_exec queued the agent bootstrap in process %d", (int)ij->pid);
			} else {
				/* The last line of the helper's output says why (a traceback's last line). */
				char *o = ij->child.out;
				size_t len = strlen(o);
				while (len && o[len - 1] == '\n')
					o[--len] = '\0';
				const char *last = strrchr(o, '\n');
				last = last ? last + 1 : o;
				snprintf(ij->msg, sizeof ij->msg, "sys.remote_exec failed for process %d: %.300s",
					 (int)ij->pid, *last ? last : "no output");
				return finish(ij, INJECT_FAILED, status, statuslen);
			}
		}
	}
	enum pyproc_thread_state mt = pyproc_main_thread(ij->pid, NULL);
	if (mt == PYPROC_THREAD_GONE || (kill(ij->pid, 0) != 0 && errno == ESRCH)) {
		stop_children(ij);
		snprintf(ij->msg, sizeof ij->msg, "process %d exited before the agent started", (int)ij->pid);
		return finish(ij, INJECT_FAILED, status, statuslen);
	}
	if (ij->way == INJECT_WAY_OTHER_THREAD)
		mt = pyproc_thread(ij->pid, ij->pep.tid, NULL); /* the thread that has the request */
	/* Waiting means the main thread stayed in a system call, not that one
	 * sample caught it there (a thread waiting for the GIL also is). */
	if (mt != PYPROC_THREAD_SYSCALL)
		ij->syscall_since = 0;
	else if (ij->syscall_since == 0)
		ij->syscall_since = now;
	enum inject_state state = INJECT_RUNNING;
	if (ij->delivered) {
		int pending = ij->pep_requested ? inject_pep768_pending(&ij->pep) : 1;
		if (pending == 0) {
			ij->picked_up = 1;
			snprintf(ij->msg, sizeof ij->msg, "process %d is running the agent bootstrap", (int)ij->pid);
		} else if (ij->way == INJECT_WAY_PARKED || ij->way == INJECT_WAY_DIRECT) {
			/* Started on its own thread: the main one may stay parked. */
		} else if (now - ij->t_delivered >= WAITING_AFTER_MS && ij->syscall_since > 0 &&
			   now - ij->syscall_since >= WAITING_AFTER_MS) {
			if (ij->automatic && !ij->escalated) {
				int r = change_way(ij, why, sizeof why);
				if (r < 0) {
					snprintf(ij->msg, sizeof ij->msg, "%s", why);
					return finish(ij, INJECT_FAILED, status, statuslen);
				}
				if (r > 0) {
					ij->syscall_since = 0;
					ij->state = INJECT_RUNNING;
					snprintf(status, statuslen, "%s", ij->msg);
					return INJECT_RUNNING;
				}
			}
			state = INJECT_WAITING;
			snprintf(ij->msg, sizeof ij->msg,
				 "the %s thread of process %d is in a system call; the agent will start when it returns",
				 ij->way == INJECT_WAY_OTHER_THREAD ? "chosen" : "main", (int)ij->pid);
		} else if (ij->method == INJECT_PEP768) {
			snprintf(ij->msg, sizeof ij->msg,
				 "asked process %d to run the agent bootstrap; waiting for its main thread", (int)ij->pid);
		}
	}
	double limit = ij->t0 + ij->timeout_ms + ij->deadline_extended;
	if (now >= limit) {
		if (ij->use_gdb && !ij->delivered && inject_gdb_attached(&ij->gdb) && ij->deadline_extended == 0) {
			/* Never kill gdb inside a call: the target would crash. Give it time. */
			ij->deadline_extended = CALL_GRACE_MS;
		} else {
			double secs = (now - ij->t0) / 1000;
			if (state == INJECT_WAITING)
				snprintf(ij->msg, sizeof ij->msg,
					 "timed out after %.1f s: the %s thread of process %d stayed in a system call%s",
					 secs, ij->way == INJECT_WAY_OTHER_THREAD ? "chosen" : "main", (int)ij->pid,
					 ij->automatic ? "" : " (the default method would have entered it: leave out "
							     "--inject-method)");
			else if (ij->use_gdb && !ij->delivered && !ij->gdb.t_attached)
				snprintf(ij->msg, sizeof ij->msg,
					 "timed out after %.1f s: gdb did not finish attaching to process %d "
					 "(is it stopped, or is another debugger attached?)",
					 secs, (int)ij->pid);
			else if (ij->use_gdb && !ij->delivered)
				snprintf(ij->msg, sizeof ij->msg,
					 "timed out after %.1f s: gdb did not finish its calls in process %d", secs,
					 (int)ij->pid);
			else if (ij->picked_up)
				snprintf(ij->msg, sizeof ij->msg,
					 "timed out after %.1f s: process %d started the agent bootstrap but it did not "
					 "finish (is the agent directory on a slow or hung file system?)",
					 secs, (int)ij->pid);
			else
				snprintf(ij->msg, sizeof ij->msg,
					 "timed out after %.1f s waiting for process %d to run the agent bootstrap "
					 "(its main thread never reached a safe point: is it in a long C call?)",
					 secs, (int)ij->pid);
			stop_children(ij);
			return finish(ij, INJECT_FAILED, status, statuslen);
		}
	}
	ij->state = state;
	snprintf(status, statuslen, "%s", ij->msg);
	return state;
}

int inject_fd(const struct inject *ij)
{
	if (ij->state == INJECT_DONE || ij->state == INJECT_FAILED)
		return -1;
	if (ij->use_gdb && !ij->delivered)
		return ij->gdb.child.fd;
	if (ij->use_child && !ij->delivered)
		return ij->child.fd;
	return -1;
}

void inject_get_stats(const struct inject *ij, struct inject_stats *st)
{
	double now = monotime_ms();
	st->method = ij->method;
	st->way = ij->way;
	st->elapsed_ms = now - ij->t0;
	st->child_ms = -1;
	st->attached_ms = -1;
	const struct inject_child *c = ij->use_gdb ? &ij->gdb.child : ij->use_child ? &ij->child : NULL;
	if (c && c->t_start > 0)
		st->child_ms = (c->exited ? c->t_end : now) - c->t_start;
	if (ij->use_gdb && ij->gdb.t_attached > 0)
		st->attached_ms = (ij->gdb.t_detached > 0 ? ij->gdb.t_detached : now) - ij->gdb.t_attached;
	st->bootstrap_ms = ij->t_boot > 0 ? ij->t_boot - ij->t0 : -1;
}

void inject_free(struct inject *ij)
{
	if (!ij)
		return;
	if (ij->pep_requested && ij->state != INJECT_DONE)
		inject_pep768_cancel(&ij->pep);
	int gone = 1;
	if (ij->use_gdb) {
		gone = inject_gdb_stop(&ij->gdb);
		inject_gdb_done(&ij->gdb);
	}
	if (ij->use_child) {
		if (!ij->child.exited)
			inject_child_signal_wait(&ij->child, SIGKILL, 1000);
		inject_child_done(&ij->child);
	}
	/* A gdb left inside a call may yet queue the bootstrap: keep it, unless
	 * the bootstrap already ran (the target ran Python after gdb's call
	 * returned, so what gdb has left to do is detach and quit). */
	remove_files(ij, !gone && ij->state != INJECT_DONE);
	free(ij);
}
