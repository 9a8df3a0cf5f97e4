/*
 * sock.c - runtime directory rules and the checked client connect (sock.h).
 */
#include "ipc/sock.h"
#include "base/monotime.h"

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
#include <limits.h>
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
		size_t xl = strlen(xdg);

		while (xl > 1 && xdg[xl - 1] == '/')
			xl--;
		n = snprintf(buf, buflen, "%.*s/pmt-top", (int)xl, xdg);
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
	return (long)monotime_ms();
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

/* The uids of PID (real, effective, saved, filesystem) from /proc/PID/status. */
static int proc_uids(pid_t pid, uid_t uids[4])
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *u = strstr(buf, "\nUid:");
	unsigned long v[4];
	if (!u || sscanf(u + 5, "%lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3]) != 4)
		return -1;
	for (int i = 0; i < 4; i++)
		uids[i] = (uid_t)v[i];
	return 0;
}

/* Field 22 of /proc/PID/stat (start time in clock ticks since boot), or 0. */
static unsigned long long proc_starttime(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* After ") ": state is field 3; start time is field 22. */
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

static bool uid_in(uid_t u, const uid_t uids[4])
{
	return u == 0 || u == uids[0] || u == uids[1] || u == uids[2] || u == uids[3];
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/*
 * With a kernel that has SO_PEERPIDFD (6.5+): the pid, now, of the process
 * that created the listening socket; -1 if it has exited; -2 if unknown.
 */
static long peer_pid_now(int fd)
{
	int pidfd = -1;
	socklen_t len = sizeof pidfd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0 || pidfd < 0)
		return -2;
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
	long pid = -2;
	int ffd = open(path, O_RDONLY | O_CLOEXEC);
	if (ffd >= 0) {
		ssize_t n = read(ffd, buf, sizeof buf - 1);
		close(ffd);
		if (n > 0) {
			buf[n] = '\0';
			const char *p = strncmp(buf, "Pid:", 4) == 0 ? buf : strstr(buf, "\nPid:");
			if (p)
				pid = strtol(p + (*p == '\n' ? 5 : 4), NULL, 10);
		}
	}
	close(pidfd);
	return pid;
}

/*
 * Opens the directory of PATH and checks that it may hold the agent of a
 * process with UIDS: a real directory (not a symlink), owned by one of them
 * or root, that nobody else may write in; and that the socket in it is a
 * socket owned likewise. Fills NAME with the socket's name in it. Returns
 * the directory's descriptor, or -1 with a sentence.
 */
static int open_agent_dir(const char *path, const uid_t uids[4], char *name, size_t namelen, char *err,
			  size_t errlen)
{
	char dir[PATH_MAX];
	struct stat st;
	const char *slash = strrchr(path, '/');
	if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	else
		snprintf(dir, sizeof dir, ".");
	snprintf(name, namelen, "%s", slash ? slash + 1 : path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ELOOP || errno == ENOTDIR) {
			errno = EPERM;
			set_err(err, errlen, "refusing agent socket %s: its directory is a symbolic link", path);
		} else {
			set_err(err, errlen, "no agent is listening (socket %s missing: %s)", path,
				strerror(errno));
		}
		return -1;
	}
	if (fstat(dfd, &st) != 0 || !uid_in(st.st_uid, uids) || (st.st_mode & 022)) {
		close(dfd);
		errno = EPERM;
		set_err(err, errlen, "refusing agent socket %s: its directory is owned by uid %lu or "
			"writable by others (mode %04o), not private to the target's user", path,
			(unsigned long)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		int e = errno;
		close(dfd);
		errno = e;
		set_err(err, errlen, "no agent is listening (socket %s missing)", path);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode) || !uid_in(st.st_uid, uids)) {
		close(dfd);
		errno = S_ISSOCK(st.st_mode) ? EPERM : ECONNREFUSED;
		set_err(err, errlen, "refusing agent socket %s: it is %s owned by uid %lu", path,
			S_ISSOCK(st.st_mode) ? "a socket" : "not a socket", (unsigned long)st.st_uid);
		return -1;
	}
	return dfd;
}

int sock_connect(const char *path, pid_t expect_pid, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	long deadline = now_ms() + SOCK_CONNECT_TIMEOUT_MS;
	char fp[40], name[256], viafd[PATH_MAX];
	const char *cpath = path;
	unsigned long long started = 0;
	uid_t uids[4];
	struct ucred cred;
	socklen_t credlen = sizeof cred;
	int fd, rc, dfd = -1;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		set_err(err, errlen, "socket path %s is too long for a Unix socket (limit %zu bytes)",
			path, sizeof sa.sun_path - 1);
		return -1;
	}
	if (expect_pid > 0) {
		/* Trust is earned: the socket must sit in a directory only the
		 * target's user (or root) controls, and we connect through that
		 * very directory, not a path that could be swapped meanwhile. */
		if (proc_uids(expect_pid, uids) != 0) {
			struct stat st;

			if (lstat(path, &st) != 0 && errno == ENOENT) {
				set_err(err, errlen, "no agent is listening%s (socket %s missing)",
					for_pid(expect_pid, fp, sizeof fp), path);
				return -1;
			}
			errno = ESRCH;
			set_err(err, errlen, "no process with pid %ld", (long)expect_pid);
			return -1;
		}
		started = proc_starttime(expect_pid);
		dfd = open_agent_dir(path, uids, name, sizeof name, err, errlen);
		if (dfd < 0) {
			if (errno == ENOENT)
				set_err(err, errlen, "no agent is listening%s (socket %s missing)",
					for_pid(expect_pid, fp, sizeof fp), path);
			return -1;
		}
		snprintf(viafd, sizeof viafd, "/proc/self/fd/%d/%s", dfd, name);
		if (strlen(viafd) < sizeof sa.sun_path)
			cpath = viafd;
	}
	memcpy(sa.sun_path, cpath, strlen(cpath) + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_err(err, errlen, "cannot create a Unix socket: %s", strerror(errno));
		if (dfd >= 0)
			close(dfd);
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

	if (dfd >= 0)
		close(dfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) < 0) {
		set_err(err, errlen, "cannot read the peer credentials of %s: %s", path,
			strerror(errno));
		close(fd);
		return -1;
	}
	if (expect_pid <= 0)
		return fd;
	errno = EPERM;
	if (cred.pid != expect_pid) {
		if (cred.pid == 0)
			set_err(err, errlen, "socket %s belongs to a process outside this pid namespace, "
				"not pid %ld", path, (long)expect_pid);
		else
			set_err(err, errlen, "socket %s belongs to pid %ld, not %ld", path, (long)cred.pid,
				(long)expect_pid);
		close(fd);
		return -1;
	}
	if (!uid_in(cred.uid, uids)) {
		set_err(err, errlen, "refusing agent socket %s: it was made by uid %lu, and pid %ld runs "
			"as uid %lu", path, (unsigned long)cred.uid, (long)expect_pid,
			(unsigned long)uids[1]);
		close(fd);
		return -1;
	}
	/* The pid in SO_PEERCRED is a number: it may have been reused since the
	 * socket was made. A pidfd names the process itself. */
	long now = peer_pid_now(fd);
	if (now == -1 || (now >= 0 && now != (long)expect_pid)) {
		set_err(err, errlen, "refusing agent socket %s: the process that made it has exited, and "
			"pid %ld is another process now", path, (long)expect_pid);
		close(fd);
		return -1;
	}
	if (started != 0 && proc_starttime(expect_pid) != started) {
		set_err(err, errlen, "refusing agent socket %s: pid %ld was replaced by another process "
			"while connecting", path, (long)expect_pid);
		close(fd);
		return -1;
	}
	return fd;

fail:
	{
		int e = errno;

		close(fd);
		if (dfd >= 0)
			close(dfd);
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
