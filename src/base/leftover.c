/*
 * leftover.c - naming and sweeping what a killed pmt-top left behind (see
 * leftover.h).
 */
#include "base/leftover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Entries looked at per directory, at most: /tmp can be huge. */
#define MAX_ENTRIES 100000

unsigned long long leftover_pidns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

int leftover_name(char *buf, size_t len, const char *prefix)
{
	int n = snprintf(buf, len, "%s%ld-%llu-", prefix, (long)getpid(), leftover_pidns());

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* A decimal number of at most 20 digits at *P, which is moved past it. */
static int number(const char **p, unsigned long long *out)
{
	const char *s = *p;
	unsigned long long v = 0;
	int n = 0;

	while (*s >= '0' && *s <= '9' && n < 20) {
		v = v * 10 + (unsigned long long)(*s++ - '0');
		n++;
	}
	if (n == 0 || (*s >= '0' && *s <= '9'))
		return -1;
	*p = s;
	*out = v;
	return 0;
}

int leftover_parse(const char *name, const char *prefix, pid_t *creator, unsigned long long *pidns,
		   const char **rest)
{
	size_t pl = strlen(prefix);
	const char *p = name;
	unsigned long long pid, ns;

	if (strncmp(name, prefix, pl) != 0)
		return -1;
	p += pl;
	if (number(&p, &pid) < 0 || *p++ != '-' || number(&p, &ns) < 0 || *p++ != '-')
		return -1;
	if (pid == 0 || pid > 0x7fffffffULL)
		return -1;
	*creator = (pid_t)pid;
	*pidns = ns;
	*rest = p;
	return 0;
}

bool leftover_creator_gone(pid_t creator, unsigned long long pidns)
{
	unsigned long long ours = leftover_pidns();

	if (creator <= 0 || pidns == 0 || ours == 0 || pidns != ours || creator == getpid())
		return false;
	return kill(creator, 0) != 0 && errno == ESRCH;
}

static bool mode_ok(const struct stat *st, const struct leftover_kind *kind)
{
	mode_t m = st->st_mode & 07777;

	return m == kind->modes[0] || m == kind->modes[1];
}

/*
 * Removes what the directory open as FD holds, DEPTH levels down at most.
 * It is ours and nobody else may write to it, so what is in it was made
 * by us (or, for a file, handed to the target's user, still ours to unlink).
 * Symbolic links are unlinked themselves, never followed.
 */
static void empty_dir(int fd, int depth)
{
	int dup = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	struct dirent *e;
	int seen = 0;

	if (d == NULL) {
		if (dup >= 0)
			close(dup);
		return;
	}
	while (seen++ < MAX_ENTRIES && (e = readdir(d)) != NULL) {
		struct stat st, fst;
		int sub;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			unlinkat(fd, e->d_name, 0);
			continue;
		}
		if (depth <= 0 || st.st_uid != geteuid())
			continue;
		sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			continue;
		if (fstat(sub, &fst) == 0 && fst.st_dev == st.st_dev && fst.st_ino == st.st_ino) {
			empty_dir(sub, depth - 1);
			unlinkat(fd, e->d_name, AT_REMOVEDIR);
		}
		close(sub);
	}
	closedir(d);
}

/* One stale directory NAME of DIRFD, as fstatat saw it (ST): checked again
 * through its own descriptor, emptied, removed. True when it is gone. */
static bool remove_dir(int dirfd, const char *name, const struct stat *st, const struct leftover_kind *kind)
{
	struct stat fst, now;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	bool gone = false;

	if (fd < 0)
		return false;
	if (fstat(fd, &fst) == 0 && fst.st_dev == st->st_dev && fst.st_ino == st->st_ino &&
	    fst.st_uid == geteuid() && mode_ok(&fst, kind)) {
		empty_dir(fd, kind->max_depth);
		/* Only if the name still is this very directory. */
		if (fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_dev == fst.st_dev &&
		    now.st_ino == fst.st_ino)
			gone = unlinkat(dirfd, name, AT_REMOVEDIR) == 0;
	}
	close(fd);
	return gone;
}

static bool has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = suffix ? strlen(suffix) : 0;

	return n >= s && strcmp(name + n - s, suffix ? suffix : "") == 0;
}

int leftover_sweep(int dirfd, const struct leftover_kind *kind)
{
	int dup = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	struct dirent *e;
	int seen = 0, removed = 0;

	if (d == NULL) {
		if (dup >= 0)
			close(dup);
		return 0;
	}
	while (seen++ < MAX_ENTRIES && (e = readdir(d)) != NULL) {
		unsigned long long ns;
		const char *rest;
		struct stat st;
		pid_t creator;

		if (leftover_parse(e->d_name, kind->prefix, &creator, &ns, &rest) < 0 ||
		    !has_suffix(rest, kind->suffix) || !leftover_creator_gone(creator, ns))
			continue;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid != geteuid() ||
		    !mode_ok(&st, kind))
			continue;
		if (kind->directory) {
			if (S_ISDIR(st.st_mode) && remove_dir(dirfd, e->d_name, &st, kind))
				removed++;
		} else if (S_ISREG(st.st_mode) && st.st_nlink == 1) {
			if (unlinkat(dirfd, e->d_name, 0) == 0)
				removed++;
		}
	}
	closedir(d);
	return removed;
}

int leftover_sweep_path(const char *path, const struct leftover_kind *kind)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	int removed = 0;

	if (fd < 0)
		return 0;
	/* Where everyone may rename anything, no check would hold. */
	if (fstat(fd, &st) == 0 && !((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)))
		removed = leftover_sweep(fd, kind);
	close(fd);
	return removed;
}
