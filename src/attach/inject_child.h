/*
 * inject_child.h - a helper process (gdb, the remote-exec interpreter) whose
 * stdout and stderr are collected through one non-blocking pipe, so the
 * caller's poll loop never blocks on it.
 */
#ifndef PMT_ATTACH_INJECT_CHILD_H
#define PMT_ATTACH_INJECT_CHILD_H

#include <stddef.h>
#include <sys/types.h>

struct inject_child {
	pid_t pid;        /* 0 when not running (never started or reaped) */
	int fd;           /* read end of the output pipe, -1 when closed */
	int exited;       /* 1 once reaped */
	int status;       /* wait status once exited */
	char out[16384];  /* output so far (truncated, NUL-terminated) */
	size_t outlen;
	double t_start, t_end; /* monotonic ms */
};

/* Extras for inject_child_spawn; a zeroed struct (or NULL) means none. */
struct inject_child_opts {
	int keep_fd;  /* > 0: this descriptor stays open in the child (close-on-exec cleared) */
	int shield;   /* see spawn_opts.shield (base/spawn.h) */
};

/*
 * Starts ARGV[0] (searched in PATH) with stdin from /dev/null, stdout and
 * stderr into a pipe, in its own session (so terminal signals do not reach
 * it), with the environment variables in SETENV ("NAME=value", NULL-ended)
 * set and those in UNSETENV removed. Returns 0, or -1 with a sentence in ERR.
 */
int inject_child_spawn(struct inject_child *c, char *const argv[], char *const setenv_[],
		       char *const unsetenv_[], const struct inject_child_opts *opts, char *err,
		       size_t errlen);

/* Reads what is available and reaps the child if it has exited. Returns 1
 * when the child has exited and all output was read, else 0. Never blocks. */
int inject_child_poll(struct inject_child *c);

/* Sends SIG, waits up to WAIT_MS for the child to exit; reaps it. Returns 1
 * if it exited. */
int inject_child_signal_wait(struct inject_child *c, int sig, int wait_ms);

/* Closes the pipe (the child must have been reaped, or is abandoned). */
void inject_child_done(struct inject_child *c);

#endif
