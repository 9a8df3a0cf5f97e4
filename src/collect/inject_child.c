/*
 * inject_child.c - helper processes with collected output (see .h).
 */
#include "collect/inject_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double inject_child_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int inject_child_spawn(struct inject_child *c, char *const argv[], char *const setenv_[],
		       char *const unsetenv_[], const struct inject_child_opts *opts, char *err,
		       size_t errlen)
{
	static const struct inject_child_opts none;
	if (!opts)
		opts = &none;
	memset(c, 0, sizeof *c);
	c->fd = -1;
	int p[2], e[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	/* A second pipe reports an exec failure (errno) from the child. */
	if (pipe2(e, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		close(p[0]), close(p[1]);
		return -1;
	}
	c->t_start = inject_child_now_ms();
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(errno));
		close(p[0]), close(p[1]), close(e[0]), close(e[1]);
		return -1;
	}
	if (pid == 0) {
		setsid();
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0)
			dup2(null, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		for (int i = 0; unsetenv_ && unsetenv_[i]; i++)
			unsetenv(unsetenv_[i]);
		for (int i = 0; setenv_ && setenv_[i]; i++)
			putenv(setenv_[i]);
		signal(SIGPIPE, SIG_DFL);
		if (opts->keep_fd > 0)
			fcntl(opts->keep_fd, F_SETFD, 0);
		if (opts->shield) {
			sigset_t set;
			sigemptyset(&set);
			sigaddset(&set, SIGHUP);
			sigaddset(&set, SIGINT);
			sigaddset(&set, SIGQUIT);
			sigaddset(&set, SIGTERM);
			sigaddset(&set, SIGUSR1);
			sigaddset(&set, SIGUSR2);
			sigaddset(&set, SIGALRM);
			sigprocmask(SIG_BLOCK, &set, NULL);
			signal(SIGPIPE, SIG_IGN);
		}
		execvp(argv[0], argv);
		int code = errno;
		if (write(e[1], &code, sizeof code) < 0)
			_exit(127);
		_exit(127);
	}
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
		close(p[0]);
		if (code == ENOENT)
			snprintf(err, errlen, "%s is not installed or not in PATH", argv[0]);
		else
			snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(code));
		errno = code;
		return -1;
	}
	fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
	c->pid = pid;
	c->fd = p[0];
	return 0;
}

static void drain(struct inject_child *c)
{
	while (c->fd >= 0) {
		char buf[4096];
		ssize_t n = read(c->fd, buf, sizeof buf);
		if (n > 0) {
			size_t room = sizeof c->out - 1 - c->outlen;
			size_t k = (size_t)n < room ? (size_t)n : room;
			memcpy(c->out + c->outlen, buf, k);
			c->outlen += k;
			c->out[c->outlen] = '\0';
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			close(c->fd);
			c->fd = -1;
		}
		break;
	}
}

static void reap(struct inject_child *c, int options)
{
	if (c->exited || c->pid <= 0)
		return;
	int st;
	pid_t r = waitpid(c->pid, &st, options);
	if (r == c->pid || (r < 0 && errno == ECHILD)) {
		c->exited = 1;
		c->status = r == c->pid ? st : 0;
		c->t_end = inject_child_now_ms();
	}
}

int inject_child_poll(struct inject_child *c)
{
	drain(c);
	reap(c, WNOHANG);
	if (c->exited)
		drain(c);
	return c->exited && c->fd < 0;
}

int inject_child_signal_wait(struct inject_child *c, int sig, int wait_ms)
{
	if (c->exited || c->pid <= 0)
		return 1;
	kill(c->pid, sig);
	double end = inject_child_now_ms() + wait_ms;
	for (;;) {
		drain(c);
		reap(c, WNOHANG);
		if (c->exited || inject_child_now_ms() >= end)
			break;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return c->exited;
}

void inject_child_done(struct inject_child *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
