/*
 * inject_child.c - helper processes with collected output (see .h).
 */
#include "attach/inject_child.h"
#include "base/monotime.h"
#include "base/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int inject_child_spawn(struct inject_child *c, char *const argv[], char *const setenv_[],
		       char *const unsetenv_[], const struct inject_child_opts *opts, char *err,
		       size_t errlen)
{
	const struct spawn_opts so = {
		.out_fd = -1,
		.new_session = true,
		.keep_fd = opts ? opts->keep_fd : 0,
		.shield = opts && opts->shield,
		.set_env = setenv_,
		.unset_env = unsetenv_,
	};
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->t_start = monotime_ms();
	pid_t pid = spawn(argv, &so, &c->fd, err, errlen);
	if (pid < 0)
		return -1;
	c->pid = pid;
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
		c->t_end = monotime_ms();
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
	double end = monotime_ms() + wait_ms;
	for (;;) {
		drain(c);
		reap(c, WNOHANG);
		if (c->exited || monotime_ms() >= end)
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
