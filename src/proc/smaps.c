/*
 * smaps.c - resident memory by kind of mapping (see smaps.h).
 */
#include "proc/smaps.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/monotime.h"
#include "base/xalloc.h"

/* glibc's non-main arenas: HEAP_MAX_SIZE, 2 * DEFAULT_MMAP_THRESHOLD_MAX. */
#define ARENA_ALIGN ((uint64_t)64 << 20)
/* A thread stack's guard is a page, or what pthread_attr_setguardsize asked. */
#define GUARD_MAX ((uint64_t)1 << 20)

struct mapping {
	uint64_t start, end;
	char perms[5];
	enum smaps_kind kind; /* from the name; SMAPS_ANON: to be told by its neighbours */
	bool named_anon;      /* [anon:...] names stay anon */
	bool guarded;         /* a stack by the guard below it (not [stack]) */
	uint64_t rss, swap;
	uint64_t pss, anon, private_clean, private_dirty, swap_pss;
};

const char *smaps_kind_name(enum smaps_kind k)
{
	static const char *const names[SMAPS_KIND_COUNT] = { "file", "shmem", "heap", "arena", "stack", "anon",
							      "other" };
	return k < SMAPS_KIND_COUNT ? names[k] : "?";
}

static bool hex_range(const char **pp, uint64_t *start, uint64_t *end)
{
	const char *p = *pp;
	uint64_t v[2] = { 0, 0 };
	for (int k = 0; k < 2; k++) {
		int digits = 0;
		for (;; p++) {
			int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
			if (d < 0)
				break;
			if (++digits > 16)
				return false;
			v[k] = v[k] << 4 | (uint64_t)d;
		}
		if (digits == 0 || *p != (k == 0 ? '-' : ' '))
			return false;
		p++;
	}
	if (v[1] < v[0])
		return false;
	*start = v[0];
	*end = v[1];
	*pp = p;
	return true;
}

static const char *skip_field(const char *p)
{
	while (*p == ' ')
		p++;
	while (*p && *p != ' ' && *p != '\n')
		p++;
	return p;
}

static bool starts(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(s, prefix, n) == 0;
}

/* The kind a mapping's name says, before its neighbours are looked at. */
static enum smaps_kind kind_of(const char *path, size_t len, const char *perms, bool *named_anon)
{
	bool shared = perms[3] == 's';
	*named_anon = false;
	if (len == 0)
		return shared ? SMAPS_SHMEM : SMAPS_ANON;
	if (len == 6 && memcmp(path, "[heap]", 6) == 0)
		return SMAPS_HEAP;
	if (len == 7 && memcmp(path, "[stack]", 7) == 0)
		return SMAPS_STACK;
	if (starts(path, len, "[anon")) {
		*named_anon = true;
		return shared ? SMAPS_SHMEM : SMAPS_ANON;
	}
	if (path[0] == '[')
		return SMAPS_OTHER;
	if (starts(path, len, "/dev/shm/") || starts(path, len, "/SYSV") || starts(path, len, "/memfd:") ||
	    starts(path, len, "/dev/zero"))
		return SMAPS_SHMEM;
	return SMAPS_FILE;
}

/* "Rss:   1234 kB" into bytes: true when LINE is the field NAME. */
static bool field_kb(const char *line, const char *name, uint64_t *out)
{
	size_t n = strlen(name);
	if (strncmp(line, name, n) != 0 || line[n] != ':')
		return false;
	const char *p = line + n + 1;
	while (*p == ' ' || *p == '\t')
		p++;
	uint64_t v = 0;
	int digits = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (++digits > 15)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (digits == 0)
		return false;
	*out = v * 1024;
	return true;
}

static bool inaccessible(const struct mapping *m)
{
	return memcmp(m->perms, "---", 3) == 0;
}

/* Largest virtual size first. */
static int by_size_desc(const void *a, const void *b)
{
	const struct mapping *x = *(struct mapping *const *)a, *y = *(struct mapping *const *)b;
	uint64_t sx = x->end - x->start, sy = y->end - y->start;
	return sx < sy ? 1 : sx > sy ? -1 : 0;
}

int smaps_parse(const char *text, int threads, struct smaps_totals *t)
{
	memset(t, 0, sizeof *t);
	struct mapping *m = NULL;
	size_t n = 0, cap = 0;
	for (const char *line = text; *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		uint64_t start, end, v;
		const char *p = line;
		if (hex_range(&p, &start, &end)) {
			/* "start-end perms offset dev inode   path" */
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				m = xreallocarray(m, cap, sizeof *m);
			}
			struct mapping *c = &m[n++];
			memset(c, 0, sizeof *c);
			c->start = start;
			c->end = end;
			size_t i = 0;
			for (; i < 4 && p < line + len && *p != ' '; i++)
				c->perms[i] = *p++;
			while (i < 4)
				c->perms[i++] = '-';
			p = skip_field(skip_field(skip_field(p)));
			while (p < line + len && *p == ' ')
				p++;
			const char *path = p < line + len ? p : line + len;
			c->kind = kind_of(path, (size_t)(line + len - path), c->perms, &c->named_anon);
		} else if (n > 0) {
			struct mapping *c = &m[n - 1];
			if (field_kb(line, "Rss", &v))
				c->rss = v;
			else if (field_kb(line, "Pss", &v))
				c->pss = v;
			else if (field_kb(line, "Anonymous", &v))
				c->anon = v;
			else if (field_kb(line, "Private_Clean", &v))
				c->private_clean = v;
			else if (field_kb(line, "Private_Dirty", &v))
				c->private_dirty = v;
			else if (field_kb(line, "Swap", &v))
				c->swap = v;
			else if (field_kb(line, "SwapPss", &v))
				c->swap_pss = v;
		}
		line = eol ? eol + 1 : line + len;
	}
	if (n == 0) {
		free(m);
		return -1;
	}
	/* Anonymous private mappings: a thread's stack sits right above its
	 * guard; a glibc arena starts on its alignment and reserves the rest
	 * of it inaccessible above (or fills all of it). */
	for (size_t i = 0; i < n; i++) {
		struct mapping *c = &m[i];
		if (c->kind != SMAPS_ANON || c->named_anon || inaccessible(c))
			continue;
		const struct mapping *below = i > 0 ? &m[i - 1] : NULL, *above = i + 1 < n ? &m[i + 1] : NULL;
		if (below && below->end == c->start && inaccessible(below) && below->end - below->start <= GUARD_MAX &&
		    below->kind == SMAPS_ANON) {
			c->kind = SMAPS_STACK;
			c->guarded = true;
			t->thread_stacks++;
		} else if (c->start % ARENA_ALIGN == 0 &&
			   ((above && above->start == c->end && inaccessible(above) &&
			     above->end <= c->start + ARENA_ALIGN) || c->end - c->start == ARENA_ALIGN)) {
			c->kind = SMAPS_ARENA;
			t->arenas++;
		}
	}
	/* Other memory can sit above a guard page too (a program's own guarded
	 * regions): never more stacks than threads beside the main one. The
	 * largest stay (glibc's default stack is the stack rlimit, 8 MiB). */
	if (threads > 0 && t->thread_stacks > (uint32_t)(threads - 1)) {
		struct mapping **c = xreallocarray(NULL, t->thread_stacks, sizeof *c);
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (m[i].guarded)
				c[k++] = &m[i];
		qsort(c, k, sizeof *c, by_size_desc);
		for (size_t j = (size_t)(threads - 1); j < k; j++)
			c[j]->kind = SMAPS_ANON;
		t->thread_stacks = (uint32_t)(threads - 1);
		free(c);
	}
	for (size_t i = 0; i < n; i++) {
		const struct mapping *c = &m[i];
		t->rss[c->kind] += c->rss;
		t->swap[c->kind] += c->swap;
		t->rss_all += c->rss;
		t->pss += c->pss;
		t->private_clean += c->private_clean;
		t->private_dirty += c->private_dirty;
		t->swap_pss += c->swap_pss;
		if (c->kind == SMAPS_SHMEM) {
			t->pss_shmem += c->pss;
		} else {
			uint64_t anon = c->rss ? (uint64_t)((double)c->pss * (double)(c->anon < c->rss ? c->anon : c->rss) /
							   (double)c->rss) : 0;
			t->pss_anon += anon;
			t->pss_file += c->pss - anon;
		}
	}
	t->mappings = (uint32_t)n;
	free(m);
	return 0;
}

ssize_t smaps_read_fd(int fd, char **text, size_t *cap)
{
	size_t len = 0;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -1;
	for (;;) {
		if (*cap - len < 4097) {
			if (*cap >= SMAPS_MAX_TEXT) {
				errno = EFBIG;
				return -1;
			}
			size_t grown = *cap ? *cap * 2 : 64 * 1024;
			char *t = realloc(*text, grown);
			if (t == NULL)
				return -1;
			*text = t;
			*cap = grown;
		}
		ssize_t n = read(fd, *text + len, *cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	(*text)[len] = '\0';
	return (ssize_t)len;
}

/* Threads of PID (its task entries), or 0 when they cannot be counted. */
static int threads_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int smaps_read(pid_t pid, struct smaps_totals *t, double *cost, char *err, size_t errlen)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
	double t0 = monotime_now();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path,
			 e == EACCES || e == EPERM ? "needs the process's uid or CAP_SYS_PTRACE" : strerror(e));
		return -1;
	}
	char *text = NULL;
	size_t cap = 0;
	ssize_t n = smaps_read_fd(fd, &text, &cap);
	int e = errno;
	close(fd);
	int rc = n > 0 ? smaps_parse(text, threads_of(pid), t) : -1;
	free(text);
	if (cost)
		*cost = monotime_now() - t0;
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path,
			 n < 0 ? (e == EFBIG ? "too big to read" : strerror(e)) : "no mappings (the process exited?)");
	return rc;
}
