/*
 * fsafe.h - open files that another user may control, without being fooled.
 *
 * pmt-top often runs as root against a process of a less-trusted user, and
 * reads files that user can replace: the target's executable and libraries
 * (through /proc/PID/root), the status file its bootstrap writes. Opening
 * such a path plainly can block for ever (a FIFO), act on a device (a
 * symlink to /dev/...), or read gigabytes (a sparse file). fsafe_open first
 * resolves the path with O_PATH, which opens nothing, checks what is there
 * with fstat, and only then opens that very inode read-only and
 * non-blocking through /proc/self/fd.
 */
#ifndef PMT_BASE_FSAFE_H
#define PMT_BASE_FSAFE_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define FSAFE_NOFOLLOW 1 /* refuse a symbolic link as the last component */

/* What the opened file must be. */
struct fsafe_want {
	int flags;        /* FSAFE_* */
	off_t max_size;   /* larger files are refused; <= 0: no limit */
	uid_t owner;      /* required owner, or (uid_t)-1 for any */
	uid_t owner2;     /* a second accepted owner, or (uid_t)-1 */
};

/*
 * Opens PATH (relative to DIRFD, or AT_FDCWD) for reading. The file must be a
 * regular file that satisfies WANT. Returns a descriptor (O_RDONLY,
 * O_NONBLOCK, O_CLOEXEC) and fills ST when non-NULL, or -1 with errno and
 * one sentence in ERR naming PATH and what was wrong. Never blocks on a FIFO
 * and never opens a device. Thread-safe.
 */
int fsafe_open(int dirfd, const char *path, const struct fsafe_want *want, struct stat *st, char *err,
	       size_t errlen);

/*
 * Reads at most LEN - 1 bytes of the file opened by fsafe_open from offset 0
 * into BUF and NUL-terminates it. Returns the number of bytes, or -1.
 */
ssize_t fsafe_read_small(int fd, char *buf, size_t len);

#endif
