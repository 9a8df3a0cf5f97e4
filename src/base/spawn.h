/*
 * spawn.h - start a helper or a program: the one fork/exec of pmt-top.
 *
 * Used for gdb and the remote-exec interpreter (output collected through a
 * pipe, own session) and for the program of `run`/`demo` (output into a log
 * file, own process group, dies with pmt-top). An exec failure is reported
 * to the caller as a sentence, not as a child that exits 127.
 */
#ifndef PMT_BASE_SPAWN_H
#define PMT_BASE_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct spawn_opts {
	int out_fd;               /* >= 0: stdout and stderr go there; < 0: into a pipe */
	bool new_session;         /* setsid(): no terminal signals reach it; else its own
	                           * process group */
	int parent_death_signal;  /* sent to it when pmt-top dies; 0: none */
	int keep_fd;              /* > 0: stays open in the child (close-on-exec cleared) */
	bool shield;              /* block SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1/2 and
	                           * SIGALRM and ignore SIGPIPE: for gdb, whose death inside
	                           * a call would kill the target, and which must finish if
	                           * pmt-top dies (its output pipe then breaks) */
	char *const *set_env;     /* "NAME=value", NULL-ended; set in the child */
	char *const *unset_env;   /* names removed in the child */
};

/*
 * Starts ARGV[0] (searched in PATH) with stdin from /dev/null. With
 * O->out_fd < 0, *OUT_PIPE receives the read end of its output pipe
 * (non-blocking, close-on-exec). Returns the pid, or -1 with errno and a
 * sentence in ERR ("gdb is not installed or not in PATH", "cannot run X: ...").
 */
pid_t spawn(char *const argv[], const struct spawn_opts *o, int *out_pipe, char *err, size_t errlen);

#endif
