/*
 * sock.c - runtime directory rules and the checked client connect (sock.h).
 */
#include "ipc/sock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	errno = saved;
}

/* Fills buf with the directory the rules pick, without touching it. */
static int pick_dir(char *buf, size_t buflen, char *err, size_t errlen)
{
	const char *env = getenv("PMT_TOP_RUNTIME_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	uid_t uid = geteuid();
	struct stat st;
	int n;

	if (env != NULL && env[0] != '\0') {
		if (env[0] != '/') {
			errno = EINVAL;
			set_err(err, errlen, "PMT_TOP_RUNTIME_DIR must be an absolute path, not \"%s\"",
				env);
			return -1;
		}
		n = snprintf(buf, buflen, "%s", env);
	} else if (xdg != NULL && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode) &&
		   st.st_uid == uid) {
		n = snprintf(buf, buflen, "%s/pmt-top", xdg);
	} else {
		n = snprintf(buf, buflen, "/tmp/pmt-top-%lu", (unsigned long)uid);
	}
	if (n < 0 || (size_t)n >= buflen) {
		errno = ENAMETOOLONG;
		set_err(err, errlen, "runtime directory path is too long (%d bytes)", n);
		return -1;
	}
	/* Drop trailing slashes so "<dir>/<pid>.sock" and messages read well. */
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return 0;
}

int sock_runtime_dir(char *buf, size_t buflen, bool create, char *err, size_t errlen)
{
	struct stat st;
	bool created = false;
	int fd;

	if (pick_dir(buf, buflen, err, errlen) < 0)
		return -1;
	for (;;) {
		fd = open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno == ENOENT && create && !created) {
			if (mkdir(buf, 0700) == 0) {
				created = true;
				continue;
			}
			if (errno == EEXIST)
				continue; /* lost a race: check what is there now */
			set_err(err, errlen, "cannot create runtime directory %s: %s", buf,
				strerror(errno));
			return -1;
		}
		if (errno == ENOENT) {
			set_err(err, errlen, "runtime directory %s does not exist", buf);
			return -1;
		}
		if (errno == ELOOP || errno == ENOTDIR) {
			bool link = lstat(buf, &st) == 0 && S_ISLNK(st.st_mode);

			errno = EPERM;
			set_err(err, errlen, "refusing runtime directory %s: it is %s (remove it, or set "
				"PMT_TOP_RUNTIME_DIR to a private directory)", buf,
				link ? "a symbolic link" : "not a directory");
			return -1;
		}
		set_err(err, errlen, "cannot open runtime directory %s: %s", buf, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		set_err(err, errlen, "cannot stat runtime directory %s: %s", buf, strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		errno = EPERM;
		set_err(err, errlen, "refusing runtime directory %s: it is owned by uid %lu, not by "
			"you (uid %lu)", buf, (unsigned long)st.st_uid, (unsigned long)geteuid());
		return -1;
	}
	/* mkdir() honours the umask; make a directory we created exactly 0700. */
	if (created && (st.st_mode & 07777) != 0700) {
		if (fchmod(fd, 0700) < 0 || fstat(fd, &st) < 0) {
			set_err(err, errlen, "cannot set mode 0700 on %s: %s", buf, strerror(errno));
			close(fd);
			return -1;
		}
	}
	close(fd);
	if (st.st_mode & 077) {
		errno = EPERM;
		set_err(err, errlen, "refusing runtime directory %s: mode %04o lets group or others "
			"in (run: chmod 700 %s)", buf, (unsigned)(st.st_mode & 07777), buf);
		return -1;
	}
	return 0;
}

int sock_path_for_pid(pid_t pid, bool create, char *buf, size_t buflen, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	size_t dlen;
	int n;

	if (pid <= 0) {
		errno = EINVAL;
		set_err(err, errlen, "invalid pid %ld", (long)pid);
		return -1;
	}
	if (sock_runtime_dir(buf, buflen, create, err, errlen) < 0)
		return -1;
	dlen = strlen(buf);
	n = snprintf(buf + dlen, buflen - dlen, "/%ld.sock", (long)pid);
	if (n < 0 || (size_t)n >= buflen - dlen || dlen + (size_t)n >= sizeof sa.sun_path) {
		buf[dlen] = '\0';
		errno = ENAMETOOLONG;
		set_err(err, errlen, "socket path %s/%ld.sock is too long for a Unix socket (limit "
			"%zu bytes): set PMT_TOP_RUNTIME_DIR to a shorter directory", buf, (long)pid,
			sizeof sa.sun_path - 1);
		return -1;
	}
	return 0;
}

pid_t sock_peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof cred;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	return cred.pid;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "for pid 123 " or "" for messages. */
static const char *for_pid(pid_t pid, char *buf, size_t buflen)
{
	if (pid > 0)
		snprintf(buf, buflen, " for pid %ld", (long)pid);
	else
		buf[0] = '\0';
	return buf;
}

int sock_connect(const char *path, pid_t expect_pid, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	long deadline = now_ms() + SOCK_CONNECT_TIMEOUT_MS;
	char fp[40];
	pid_t peer;
	int fd, rc;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		set_err(err, errlen, "socket path %s is too long for a Unix socket (limit %zu bytes)",
			path, sizeof sa.sun_path - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_err(err, errlen, "cannot create a Unix socket: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
		if (rc == 0 || errno == EISCONN)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && now_ms() < deadline) {
			/* Accept queue full: the agent is busy; retry briefly. */
			struct timespec ts = { 0, 10 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			continue;
		}
		if (errno == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int soerr = 0;
			socklen_t sl = sizeof soerr;
			long left = deadline - now_ms();

			rc = poll(&p, 1, left > 0 ? (int)left : 0);
			if (rc == 0) {
				errno = ETIMEDOUT;
			} else if (rc > 0 &&
				   getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0) {
				if (soerr == 0)
					break;
				errno = soerr;
			}
		}
		goto fail;
	}

	peer = sock_peer_pid(fd);
	if (peer < 0) {
		set_err(err, errlen, "cannot read the peer credentials of %s: %s", path,
			strerror(errno));
		close(fd);
		return -1;
	}
	if (expect_pid > 0 && peer != expect_pid) {
		close(fd);
		errno = EPERM;
		if (peer == 0)
			set_err(err, errlen, "socket %s belongs to a process outside this pid namespace, "
				"not pid %ld", path, (long)expect_pid);
		else
			set_err(err, errlen, "socket %s belongs to pid %ld, not %ld", path, (long)peer,
				(long)expect_pid);
		return -1;
	}
	return fd;

fail:
	{
		int e = errno;

		close(fd);
		errno = e;
	}
	switch (errno) {
	case ENOENT:
		set_err(err, errlen, "no agent is listening%s (socket %s missing)",
			for_pid(expect_pid, fp, sizeof fp), path);
		break;
	case ECONNREFUSED:
		set_err(err, errlen, "no agent is listening%s (socket %s is stale or not a socket)",
			for_pid(expect_pid, fp, sizeof fp), path);
		break;
	case EACCES:
	case EPERM:
		set_err(err, errlen, "cannot connect to %s: permission denied (run as the target "
			"process's user)", path);
		break;
	case EAGAIN:
	case ETIMEDOUT:
		errno = ETIMEDOUT;
		set_err(err, errlen, "agent%s did not accept a connection on %s within %d ms",
			for_pid(expect_pid, fp, sizeof fp), path, SOCK_CONNECT_TIMEOUT_MS);
		break;
	default:
		set_err(err, errlen, "cannot connect to %s: %s", path, strerror(errno));
		break;
	}
	return -1;
}
