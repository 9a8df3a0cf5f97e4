/*
 * fsafe.c - checked opens of files others may control (see fsafe.h).
 */
#include "base/fsafe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "a device";
	if (S_ISLNK(m))
		return "a symbolic link";
	return "not a regular file";
}

int fsafe_open(int dirfd, const char *path, const struct fsafe_want *want, struct stat *st, char *err,
	       size_t errlen)
{
	struct stat s1, s2;
	int flags = O_PATH | O_CLOEXEC;
	if (want->flags & FSAFE_NOFOLLOW)
		flags |= O_NOFOLLOW;
	int pfd = openat(dirfd, path, flags);
	if (pfd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(pfd, &s1) < 0) {
		snprintf(err, errlen, "cannot inspect %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(s1.st_mode)) {
		snprintf(err, errlen, "refusing %s: it is %s", path, kind(s1.st_mode));
		errno = S_ISLNK(s1.st_mode) ? ELOOP : EINVAL;
		goto fail;
	}
	if (want->owner != (uid_t)-1 && s1.st_uid != want->owner && s1.st_uid != want->owner2) {
		snprintf(err, errlen, "refusing %s: it is owned by uid %lu", path, (unsigned long)s1.st_uid);
		errno = EPERM;
		goto fail;
	}
	if (want->max_size > 0 && s1.st_size > want->max_size) {
		snprintf(err, errlen, "refusing %s: it is %lld bytes, more than the %lld expected", path,
			 (long long)s1.st_size, (long long)want->max_size);
		errno = EFBIG;
		goto fail;
	}
	/* Reopen the inode just checked; the path may have changed since. */
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", pfd);
	int fd = open(self, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &s2) < 0 || s2.st_ino != s1.st_ino || s2.st_dev != s1.st_dev) {
		snprintf(err, errlen, "refusing %s: it changed while being opened", path);
		close(fd);
		errno = EAGAIN;
		goto fail;
	}
	close(pfd);
	if (st)
		*st = s2;
	return fd;
fail:
	{
		int e = errno;
		close(pfd);
		errno = e;
	}
	return -1;
}

ssize_t fsafe_read_small(int fd, char *buf, size_t len)
{
	size_t n = 0;
	if (len == 0)
		return -1;
	while (n < len - 1) {
		ssize_t r = pread(fd, buf + n, len - 1 - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			buf[n] = '\0';
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}
