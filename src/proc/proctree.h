/*
 * proctree.h - the processes of a service: a process and its descendants,
 * read from /proc.
 *
 * A process's children are listed, thread by thread, in
 * /proc/PID/task/TID/children (a child forked by any thread, such as a
 * multiprocessing pool's handler thread, is there); on a kernel without that
 * file every /proc/N/stat is read for its parent instead. Everything here is
 * read from files the watched processes' owners control (their names, their
 * command lines, the paths they map), so nothing is trusted: the parsers take
 * the text already read, for the unit tests and the fuzzers.
 *
 * PROC is the /proc to read ("/proc"; the tests give a fixture tree).
 */
#ifndef PMT_PROC_PROCTREE_H
#define PMT_PROC_PROCTREE_H

#include <stddef.h>
#include <sys/types.h>

/* What the tree needs of /proc/PID/stat. */
struct proctree_stat {
	pid_t ppid;
	char state;                      /* R, S, D, Z, T, ... */
	unsigned long long start_ticks;  /* field 22: clock ticks after boot */
	char comm[64];                   /* display-safe (strsafe) */
};

/* Parses /proc/PID/stat. The name may hold spaces and parentheses: it runs
 * from the first '(' to the last ')'. Returns 0, or -1 when malformed. */
int proctree_parse_stat(const char *text, struct proctree_stat *st);

/* Parses a children file ("12 34 56 "): up to MAX pids into OUT. Returns how
 * many, or -1 when the text holds anything but pids and spaces. */
int proctree_parse_children(const char *text, pid_t *out, int max);

/*
 * A libpython / python executable base name: "libpython3.11.so.1.0",
 * "libpython3.13t.so" (LIB 1), "python3.8" (LIB 0). Returns 1 and fills
 * MAJOR, MINOR and FT (free-threaded) on a match, else 0.
 */
int proctree_python_name(const char *base, int lib, int *major, int *minor, int *ft);

/* Reads /proc/PID/stat. Returns 0, or -1 with errno (ENOENT: gone). */
int proctree_read_stat(const char *proc, pid_t pid, struct proctree_stat *st);

/* The children of PID, of all its threads, appended to OUT (at most MAX in
 * all). Returns how many, or -1 when PID cannot be read (gone). */
int proctree_children(const char *proc, pid_t pid, pid_t *out, int max);

/*
 * Does PID run CPython? 1 (and *MINOR when the file names say it) when its
 * executable or a library it maps is Python's, 0 when neither is, -1 when
 * neither could be read (permission). Reads the maps only when the
 * executable's name does not say.
 */
int proctree_python(const char *proc, pid_t pid, int *minor);

/* Its command line, display-safe, into OUT ("" when it has none: a zombie or
 * a kernel thread). */
void proctree_cmdline(const char *proc, pid_t pid, char *out, size_t outlen);

/* Seconds since boot, from PROC/uptime; a negative number when unreadable. */
double proctree_uptime(const char *proc);

#endif
