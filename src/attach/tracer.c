/*
 * tracer.c - who holds a process (see tracer.h).
 */
#include "attach/tracer.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach/pyproc.h"

/* Reads at most LEN-1 bytes of a small /proc file into BUF; -1 on failure. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

const char *tracer_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];

	snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
	if (len == 0)
		return buf;
	if (pid <= 0 || read_small(path, buf, len) < 0)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* The fields of /proc/PID/stat after the name: "S 123 ..." ; NULL if unreadable. */
static const char *stat_rest(pid_t pid, char *buf, size_t len)
{
	char path[64];
	const char *close_paren;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if (read_small(path, buf, len) < 0)
		return NULL;
	/* The name may hold anything, ')' too: the last one ends it. */
	close_paren = strrchr(buf, ')');
	if (close_paren == NULL || close_paren[1] != ' ')
		return NULL;
	return close_paren + 2;
}

char tracer_proc_state(pid_t pid)
{
	char buf[1024];
	const char *rest = pid > 0 ? stat_rest(pid, buf, sizeof buf) : NULL;

	return rest && *rest && *rest != ' ' ? *rest : 0;
}

static pid_t parent_of(pid_t pid)
{
	char buf[1024];
	const char *rest = stat_rest(pid, buf, sizeof buf);
	char *end;
	long ppid;

	if (rest == NULL || rest[0] == '\0' || rest[1] != ' ')
		return 0;
	ppid = strtol(rest + 2, &end, 10);
	return end != rest + 2 && ppid > 0 ? (pid_t)ppid : 0;
}

int tracer_find(pid_t pid, struct tracer *t)
{
	long v;

	memset(t, 0, sizeof *t);
	if (pyproc_status_field(pid, "TracerPid", &v, 1) != 1)
		return -1;
	if (v <= 0)
		return 0;
	t->pid = (pid_t)v;
	tracer_comm(t->pid, t->comm, sizeof t->comm);
	t->parent = parent_of(t->pid);
	if (t->parent > 0)
		tracer_comm(t->parent, t->parent_comm, sizeof t->parent_comm);
	return 1;
}

bool tracer_is_pmt_top(const struct tracer *t)
{
	return t->pid > 0 && strcmp(t->parent_comm, "pmt-top") == 0;
}

const char *tracer_describe(const struct tracer *t, char *buf, size_t len)
{
	if (t->pid <= 0)
		snprintf(buf, len, "no process");
	else if (t->parent > 0 && t->parent_comm[0])
		snprintf(buf, len, "process %ld (%s, started by %s pid %ld)", (long)t->pid,
			 t->comm[0] ? t->comm : "?", t->parent_comm, (long)t->parent);
	else
		snprintf(buf, len, "process %ld (%s)", (long)t->pid, t->comm[0] ? t->comm : "?");
	return buf;
}
