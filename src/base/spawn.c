/*
 * spawn.c - the one fork/exec (see spawn.h).
 */
#include "base/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* In the child, between fork and exec: only async-signal-safe calls and
 * the environment edits (the child has one thread). Never returns. */
static void child(char *const argv[], const struct spawn_opts *o, int out, int report, pid_t parent)
{
	if (o->new_session)
		setsid();
	else
		setpgid(0, 0);
	if (o->parent_death_signal) {
		prctl(PR_SET_PDEATHSIG, o->parent_death_signal);
		if (getppid() != parent) /* it died already */
			_exit(127);
	}
	int null = open("/dev/null", O_RDONLY);
	if (null >= 0)
		dup2(null, STDIN_FILENO);
	dup2(out, STDOUT_FILENO);
	dup2(out, STDERR_FILENO);
	for (int i = 0; o->unset_env && o->unset_env[i]; i++)
		unsetenv(o->unset_env[i]);
	for (int i = 0; o->set_env && o->set_env[i]; i++)
		putenv(o->set_env[i]);
	signal(SIGPIPE, SIG_DFL);
	if (o->keep_fd > 0)
		fcntl(o->keep_fd, F_SETFD, 0);
	if (o->shield) {
		static const int blocked[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM };
		sigset_t set;
		sigemptyset(&set);
		for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++)
			sigaddset(&set, blocked[i]);
		sigprocmask(SIG_BLOCK, &set, NULL);
		signal(SIGPIPE, SIG_IGN);
	}
	execvp(argv[0], argv);
	int code = errno;
	ssize_t w = write(report, &code, sizeof code);
	(void)w;
	_exit(127);
}

pid_t spawn(char *const argv[], const struct spawn_opts *o, int *out_pipe, char *err, size_t errlen)
{
	int p[2] = { -1, -1 }, e[2];
	if (o->out_fd < 0 && pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	/* A close-on-exec pipe reports an exec failure (its errno); EOF means
	 * the exec worked. */
	if (pipe2(e, O_CLOEXEC) < 0) {
		int saved = errno;
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		if (p[0] >= 0)
			close(p[0]), close(p[1]);
		errno = saved;
		return -1;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int saved = errno;
		snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(errno));
		if (p[0] >= 0)
			close(p[0]), close(p[1]);
		close(e[0]), close(e[1]);
		errno = saved;
		return -1;
	}
	if (pid == 0)
		child(argv, o, o->out_fd >= 0 ? o->out_fd : p[1], e[1], parent);
	if (p[1] >= 0)
		close(p[1]);
	close(e[1]);
	int code = 0;
	ssize_t n;
	do
		n = read(e[0], &code, sizeof code);
	while (n < 0 && errno == EINTR);
	close(e[0]);
	if (n == (ssize_t)sizeof code) {
		waitpid(pid, NULL, 0);
		if (p[0] >= 0)
			close(p[0]);
		if (code == ENOENT)
			snprintf(err, errlen, "%s is not installed or not in PATH", argv[0]);
		else
			snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(code));
		errno = code;
		return -1;
	}
	if (p[0] >= 0) {
		fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
		*out_pipe = p[0];
	}
	return pid;
}
