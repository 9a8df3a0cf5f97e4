/*
 * proctree.c - a process and its descendants, from /proc (see proctree.h).
 */
#include "proc/proctree.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/strsafe.h"
#include "proc/proc_sample.h"

/* Reads PATH whole (at most LEN-1 bytes) into BUF, NUL-terminated. Returns
 * the bytes read, or -1 with errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t n = read(fd, buf + got, len - 1 - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

static bool parse_pid_text(const char *s, pid_t *out)
{
	if (*s < '0' || *s > '9')
		return false;
	long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > INT_MAX / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (v <= 0 || v > INT_MAX)
		return false;
	*out = (pid_t)v;
	return true;
}

int proctree_parse_stat(const char *text, struct proctree_stat *st)
{
	const char *open_paren = strchr(text, '(');
	const char *close_paren = strrchr(text, ')');
	if (open_paren == NULL || close_paren == NULL || close_paren < open_paren)
		return -1;
	memset(st, 0, sizeof *st);
	strsafe_copy(st->comm, sizeof st->comm, open_paren + 1, (size_t)(close_paren - open_paren - 1));

	/* Fields 3 (state) to 22 (starttime) follow the name. */
	const char *p = close_paren + 1;
	unsigned long long vals[23] = {0};
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (*p == '\0' || *p == '\n')
			return -1;
		if (field == 3) {
			st->state = *p;
			while (*p && *p != ' ')
				p++;
			continue;
		}
		char *end;
		errno = 0;
		/* Some fields may be negative (nice, priority): read them signed. */
		long long v = strtoll(p, &end, 10);
		if (end == p || errno != 0 || (*end != ' ' && *end != '\n' && *end != '\0'))
			return -1;
		vals[field] = (unsigned long long)v;
		p = end;
	}
	if ((long long)vals[4] < 0 || vals[4] > INT_MAX || (long long)vals[22] < 0)
		return -1;
	st->ppid = (pid_t)vals[4];
	st->start_ticks = vals[22];
	return 0;
}

int proctree_parse_children(const char *text, pid_t *out, int max)
{
	int n = 0;
	const char *p = text;
	for (;;) {
		while (*p == ' ' || *p == '\n')
			p++;
		if (*p == '\0')
			return n;
		char word[16];
		size_t len = 0;
		while (*p && *p != ' ' && *p != '\n') {
			if (len + 1 >= sizeof word)
				return -1;
			word[len++] = *p++;
		}
		word[len] = '\0';
		pid_t pid;
		if (!parse_pid_text(word, &pid))
			return -1;
		if (n < max)
			out[n++] = pid;
	}
}

int proctree_python_name(const char *base, int lib, int *major, int *minor, int *ft)
{
	const char *p = base;
	if (lib) {
		if (strncmp(p, "libpython", 9) != 0)
			return 0;
		p += 9;
	} else {
		if (strncmp(p, "python", 6) != 0)
			return 0;
		p += 6;
	}
	if (!isdigit((unsigned char)p[0]) || p[1] != '.' || !isdigit((unsigned char)p[2]))
		return 0;
	char *end;
	*major = p[0] - '0';
	*minor = (int)strtol(p + 2, &end, 10);
	*ft = 0;
	/* ABI flags: t (free-threaded), d (debug), m (pymalloc, <= 3.7) */
	while (*end == 't' || *end == 'd' || *end == 'm') {
		if (*end == 't')
			*ft = 1;
		end++;
	}
	if (lib)
		return strncmp(end, ".so", 3) == 0;
	return *end == '\0';
}

/* The Python 3 minor version in the file name at the end of PATH (an
 * executable, or a library with LIB), 0 when only "python3"; -1 when it
 * is not Python's. */
static int python_file(const char *path, int lib)
{
	const char *base = strrchr(path, '/');
	int major, minor, ft;
	base = base ? base + 1 : path;
	if (proctree_python_name(base, lib, &major, &minor, &ft))
		return major == 3 ? minor : -1;
	if (!lib && strcmp(base, "python3") == 0)
		return 0;
	return -1;
}

int proctree_read_stat(const char *proc, pid_t pid, struct proctree_stat *st)
{
	char path[PATH_MAX], buf[1024];
	snprintf(path, sizeof path, "%s/%d/stat", proc, (int)pid);
	if (read_small(path, buf, sizeof buf) < 0)
		return -1;
	if (proctree_parse_stat(buf, st) < 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Without children files: every process whose parent is PID. */
static int children_by_scan(const char *proc, pid_t pid, pid_t *out, int max)
{
	DIR *d = opendir(proc);
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < max) {
		pid_t p;
		struct proctree_stat st;
		if (!parse_pid_text(e->d_name, &p) || p == pid)
			continue;
		if (proctree_read_stat(proc, p, &st) == 0 && st.ppid == pid)
			out[n++] = p;
	}
	closedir(d);
	return n;
}

int proctree_children(const char *proc, pid_t pid, pid_t *out, int max)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%d/task", proc, (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	int n = 0;
	bool have_file = false;
	struct dirent *e;
	char buf[4096];
	while ((e = readdir(d)) != NULL) {
		pid_t tid;
		if (!parse_pid_text(e->d_name, &tid))
			continue;
		snprintf(path, sizeof path, "%s/%d/task/%d/children", proc, (int)pid, (int)tid);
		if (read_small(path, buf, sizeof buf) < 0)
			continue; /* the thread ended, or no such file on this kernel */
		have_file = true;
		int k = proctree_parse_children(buf, out + n, max - n);
		if (k > 0)
			n += k;
	}
	closedir(d);
	if (!have_file) {
		snprintf(path, sizeof path, "%s/%d/task/%d/children", proc, (int)pid, (int)pid);
		if (access(path, F_OK) != 0 && errno == ENOENT) {
			/* Is the process there at all? */
			struct proctree_stat st;
			if (proctree_read_stat(proc, pid, &st) < 0)
				return -1;
			return children_by_scan(proc, pid, out, max);
		}
	}
	return n;
}

/* Scans the maps of PID for a libpython; 1, 0, or -1 when unreadable. */
static int maps_python(const char *proc, pid_t pid, int *minor)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%d/maps", proc, (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	/* Line by line through a window: a line longer than the window (a
	 * hostile file name) is skipped, never misread. */
	char buf[8192];
	size_t have = 0;
	bool skipping = false, read_any = false;
	int found = 0;
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		read_any = true;
		have += (size_t)r;
		buf[have] = '\0';
		char *line = buf, *nl;
		while ((nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
			*nl = '\0';
			if (!skipping) {
				const char *slash = strrchr(line, '/');
				int m = slash ? python_file(slash, 1) : -1;
				if (m < 0 && slash)
					m = python_file(slash, 0);
				if (m >= 0) {
					*minor = m;
					found = 1;
					break;
				}
			}
			skipping = false;
			line = nl + 1;
		}
		if (found)
			break;
		size_t rest = have - (size_t)(line - buf);
		if (rest == sizeof buf - 1) {
			skipping = true; /* no newline in a whole window */
			rest = 0;
		}
		memmove(buf, line, rest);
		have = rest;
	}
	close(fd);
	return found ? 1 : read_any ? 0 : -1;
}

int proctree_python(const char *proc, pid_t pid, int *minor)
{
	char path[PATH_MAX], exe[PATH_MAX];
	*minor = 0;
	snprintf(path, sizeof path, "%s/%d/exe", proc, (int)pid);
	ssize_t n = readlink(path, exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		/* " (deleted)" after an upgrade replaced the file. */
		char *del = strstr(exe, " (deleted)");
		if (del && del[10] == '\0')
			*del = '\0';
		int m = python_file(exe, 0);
		if (m >= 0) {
			*minor = m;
			return 1;
		}
	}
	int m = maps_python(proc, pid, minor);
	if (m >= 0)
		return m;
	return n > 0 ? 0 : -1;
}

void proctree_cmdline(const char *proc, pid_t pid, char *out, size_t outlen)
{
	char path[PATH_MAX], raw[4096];
	snprintf(path, sizeof path, "%s/%d/cmdline", proc, (int)pid);
	ssize_t n = read_small(path, raw, sizeof raw);
	if (outlen == 0)
		return;
	out[0] = '\0';
	if (n > 0)
		proc_sample_cmdline_text(raw, (size_t)n, out, outlen);
}

double proctree_uptime(const char *proc)
{
	char path[PATH_MAX], buf[128];
	snprintf(path, sizeof path, "%s/uptime", proc);
	if (read_small(path, buf, sizeof buf) <= 0)
		return -1;
	char *end;
	double v = strtod(buf, &end);
	return end == buf ? -1 : v;
}
