/*
 * pyproc.h - is this pid a CPython process, which version, and where is its
 * interpreter state?
 *
 * Detection reads /proc/PID/{maps,exe,status} and the ELF file that holds the
 * interpreter (libpython3.X.so or the executable itself), opened through
 * /proc/PID/root so a target in another mount namespace is read as it sees
 * its files. The version comes, best first, from the _Py_DebugOffsets table
 * at the start of the `.PyRuntime` section (3.13+: exact hex version and
 * free-threading flag), the exported `Py_Version` constant (3.11+), or the
 * file name (libpython3.X / python3.X). Reading target memory uses
 * process_vm_readv, which needs ptrace permission (same user and a dumpable
 * target, or CAP_SYS_PTRACE).
 */
#ifndef PMT_ATTACH_PYPROC_H
#define PMT_ATTACH_PYPROC_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Oldest and newest CPython minor versions pmt-top can attach to (3.x). */
#define PYPROC_MIN_MINOR 8
#define PYPROC_MAX_MINOR 14

struct pyproc_info {
	pid_t pid;
	pid_t nspid;       /* the pid as the target sees it (os.getpid()), from NSpid */
	uid_t uid;         /* effective uid and gid of the target */
	gid_t gid;
	int other_mntns;   /* 1 when the target lives in another mount namespace */
	pid_t tracer;      /* TracerPid: a debugger attached to it, 0 if none */
	int stopped;       /* 1 when the process is stopped (state T) */
	int is_python;     /* 1 when a CPython interpreter was found in the process */
	int major, minor;  /* 0 when unknown */
	int micro;         /* -1 when unknown (3.8-3.10 without a version symbol) */
	int free_threaded; /* 1 free-threaded build, 0 GIL build, -1 unknown */
	uint64_t hexversion;        /* PY_VERSION_HEX, 0 when unknown */
	const char *version_source; /* "debug offsets", "Py_Version", "file name" */
	char exe[PATH_MAX];   /* readlink /proc/PID/exe (target's namespace) */
	char image[PATH_MAX]; /* the ELF holding the interpreter, target's namespace */
	uint64_t image_bias;  /* run-time address = link-time address + image_bias */
	uint64_t image_start; /* start of the image's first mapping (a readable address) */
	uint64_t runtime_addr; /* address of _PyRuntime (.PyRuntime section), 0 if none */
	int has_debug_offsets; /* the "xdebugpy" cookie was found at runtime_addr */
	uint64_t runtime_lo, runtime_hi; /* the _PyRuntime object [lo, hi) (its GIL and runtime
	                                  * locks live there), 0 when unknown */
	int debug_build;       /* a --with-pydebug build (_Py_RefTotal / _Py_NegativeRefcount) */
	int static_exe;        /* interpreter linked into the executable */
};

/*
 * Fills PI for process PID. Returns 0 when the process exists and its maps
 * were read (PI->is_python says whether it runs CPython, and PI->major/minor
 * which version), -1 with a one-sentence cause and remedy in ERR when the
 * process does not exist or cannot be inspected (permission). Blocking but
 * fast (reads /proc and maps one ELF file); safe from any thread.
 */
int pyproc_detect(pid_t pid, struct pyproc_info *pi, char *err, size_t errlen);

/*
 * Checks that PI is a CPython version pmt-top supports (3.8-3.14). Returns 0,
 * or -1 with "not a Python process" / "Python 3.7 is not supported" in ERR.
 */
int pyproc_check_supported(const struct pyproc_info *pi, char *err, size_t errlen);

/*
 * Reads or writes exactly LEN bytes of the target's memory at ADDR with
 * process_vm_readv / process_vm_writev. Returns 0, or -1 with errno set
 * (EPERM: no ptrace permission, EFAULT: address not mapped, ESRCH: gone).
 */
/*
 * Reads the numbers of line "KEY:" of /proc/PID/status into vals (at most
 * maxvals). Returns how many were read, or -1 when the file cannot be read.
 */
int pyproc_status_field(pid_t pid, const char *key, long *vals, int maxvals);

/*
 * The parsers behind the functions that read /proc, for text already read
 * (and for the fuzzers): the target controls some of it (its name, its file
 * names), so none of them trusts it. TEXT is NUL-terminated.
 *
 * pyproc_status_parse: the numbers of the first line "KEY:" of TEXT (a status
 * file, or one line of it) into VALS, at most MAXVALS; how many, or -1 when
 * no line has KEY.
 */
int pyproc_status_parse(const char *text, const char *key, long *vals, int maxvals);

/*
 * One line of /proc/PID/maps ("start-end perms offset dev inode  path"):
 * the addresses and offset, and *PATH pointing at the path in LINE (its
 * newline removed; "" for an anonymous mapping). Returns 0, or -1 for a
 * line of another shape.
 */
int pyproc_maps_line(char *line, uint64_t *start, uint64_t *end, uint64_t *offset, char **path);

int pyproc_read(pid_t pid, uint64_t addr, void *buf, size_t len);
int pyproc_write(pid_t pid, uint64_t addr, const void *buf, size_t len);

/*
 * Finds the first object mapped in PID whose base name starts with PREFIX
 * (e.g. "libc.so"): its path (target's namespace) and the start of its
 * mapping at file offset 0. Returns 0, or -1 when none is mapped.
 */
int pyproc_find_object(pid_t pid, const char *prefix, char *path, size_t pathlen, uint64_t *start);

enum pyproc_thread_state {
	PYPROC_THREAD_UNKNOWN,
	PYPROC_THREAD_RUNNING, /* on a CPU or runnable */
	PYPROC_THREAD_SYSCALL, /* blocked in a system call */
	PYPROC_THREAD_STOPPED, /* stopped or traced (a debugger holds it) */
	PYPROC_THREAD_GONE,    /* the process has exited */
};

/* Where a thread blocked in a system call is: from /proc/PID/task/TID/syscall. */
struct pyproc_syscall {
	long nr;       /* the system call's number, -1 when not in one */
	uint64_t arg0; /* its first argument (a futex's address) */
	uint64_t pc;   /* the user-space instruction it returns to */
};

/*
 * State of thread TID of process PID, from /proc/PID/task/TID/syscall (falling
 * back to stat). When SC is not NULL it receives where the thread is blocked
 * (nr -1 when it is not). Cheap (a few µs); safe from any thread.
 */
enum pyproc_thread_state pyproc_thread(pid_t pid, pid_t tid, struct pyproc_syscall *sc);

/* The state letter of a stat file (after the last ')'), '?' when there is none. */
char pyproc_stat_state(const char *stat);

/* A task's syscall file: PYPROC_THREAD_RUNNING ("running"), PYPROC_THREAD_SYSCALL
 * with *SC filled (when SC is not NULL), or PYPROC_THREAD_UNKNOWN for other text. */
enum pyproc_thread_state pyproc_syscall_parse(const char *text, struct pyproc_syscall *sc);

/* Voluntary plus involuntary context switches in a status file, -1 without them. */
long long pyproc_switches_parse(const char *status);

/* How many times thread TID of PID was switched off a CPU so far (voluntary
 * and not): it grows while the thread runs or wakes up, stays while it is
 * parked. -1 when it cannot be read. */
long long pyproc_thread_switches(pid_t pid, pid_t tid);

/* The same for the main thread; SYSCALL_NR (if not NULL) gets the number or -1. */
enum pyproc_thread_state pyproc_main_thread(pid_t pid, long *syscall_nr);

/* The name of system call NR for messages ("clock_nanosleep"), or "system call N"
 * in BUF when it has none here. */
const char *pyproc_syscall_name(long nr, char *buf, size_t len);

/* True when SC is a futex wait on a lock inside _PyRuntime: the thread waits
 * for the GIL (or another runtime lock), not in a call that released it. */
int pyproc_waits_for_runtime(const struct pyproc_info *pi, const struct pyproc_syscall *sc);

/*
 * Builds the permission error sentence for PID into ERR ("permission denied
 * ... run as the process's user or with CAP_SYS_PTRACE"), naming WHAT failed.
 */
void pyproc_perm_error(pid_t pid, const char *what, char *err, size_t errlen);

#endif
