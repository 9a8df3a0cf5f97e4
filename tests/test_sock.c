/*
 * test_sock.c - runtime directory rules and checked connects (src/ipc/sock.c)
 * with real directories, real listening sockets and a forked server.
 * Everything lives under a mkdtemp() directory removed after each test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc/sock.h"

#define NOBODY_UID 65534

struct fixture {
	char base[64];
	char saved_rt[4096], saved_xdg[4096];
	bool had_rt, had_xdg;
	pid_t child;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	const char *rt = getenv("PMT_TOP_RUNTIME_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");

	snprintf(f->base, sizeof f->base, "/tmp/pmt-ipc-sock-XXXXXX");
	if (mkdtemp(f->base) == NULL)
		return -1;
	if ((f->had_rt = rt != NULL))
		snprintf(f->saved_rt, sizeof f->saved_rt, "%s", rt);
	if ((f->had_xdg = xdg != NULL))
		snprintf(f->saved_xdg, sizeof f->saved_xdg, "%s", xdg);
	unsetenv("PMT_TOP_RUNTIME_DIR");
	unsetenv("XDG_RUNTIME_DIR");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->child > 0) {
		kill(f->child, SIGKILL);
		waitpid(f->child, NULL, 0);
	}
	nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (f->had_rt)
		setenv("PMT_TOP_RUNTIME_DIR", f->saved_rt, 1);
	else
		unsetenv("PMT_TOP_RUNTIME_DIR");
	if (f->had_xdg)
		setenv("XDG_RUNTIME_DIR", f->saved_xdg, 1);
	else
		unsetenv("XDG_RUNTIME_DIR");
	free(f);
	return 0;
}

static char *path_in(struct fixture *f, const char *name)
{
	static char buf[4][256];
	static int i;
	char *p = buf[i++ % 4];

	snprintf(p, 256, "%s/%s", f->base, name);
	return p;
}

static void test_env_dir_created(void **state)
{
	struct fixture *f = *state;
	char buf[256], err[256], want[300];
	struct stat st;
	mode_t old;

	setenv("PMT_TOP_RUNTIME_DIR", path_in(f, "rt"), 1);
	errno = 0;
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, false, err, sizeof err), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(want, sizeof want, "runtime directory %s does not exist", path_in(f, "rt"));
	assert_string_equal(err, want);
	assert_string_equal(buf, path_in(f, "rt"));

	/* Created exactly 0700 whatever the umask says. */
	old = umask(0277);
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, true, err, sizeof err), 0);
	umask(old);
	assert_string_equal(buf, path_in(f, "rt"));
	assert_int_equal(lstat(buf, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, geteuid());
	/* Existing and good: accepted without create. */
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, false, err, sizeof err), 0);

	/* Trailing slashes are dropped. */
	snprintf(want, sizeof want, "%s//", path_in(f, "rt"));
	setenv("PMT_TOP_RUNTIME_DIR", want, 1);
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, false, err, sizeof err), 0);
	assert_string_equal(buf, path_in(f, "rt"));

	/* A buffer too small is an error, not a truncated path. */
	errno = 0;
	assert_int_equal(sock_runtime_dir(buf, 8, false, err, sizeof err), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

static void test_env_precedence(void **state)
{
	struct fixture *f = *state;
	char buf[256], err[256], fallback[64];
	struct stat st;

	snprintf(fallback, sizeof fallback, "/tmp/pmt-top-%lu", (unsigned long)geteuid());
	assert_int_equal(mkdir(path_in(f, "xdg"), 0700), 0);

	/* PMT_TOP_RUNTIME_DIR beats XDG_RUNTIME_DIR. */
	assert_int_equal(mkdir(path_in(f, "rt"), 0700), 0);
	setenv("PMT_TOP_RUNTIME_DIR", path_in(f, "rt"), 1);
	setenv("XDG_RUNTIME_DIR", path_in(f, "xdg"), 1);
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, false, err, sizeof err), 0);
	assert_string_equal(buf, path_in(f, "rt"));

	/* An empty PMT_TOP_RUNTIME_DIR counts as unset: XDG's pmt-top. */
	setenv("PMT_TOP_RUNTIME_DIR", "", 1);
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, true, err, sizeof err), 0);
	assert_string_equal(buf, path_in(f, "xdg/pmt-top"));
	assert_int_equal(stat(buf, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	/* XDG_RUNTIME_DIR unusable: /tmp/pmt-top-<uid> (path only; not created). */
	unsetenv("PMT_TOP_RUNTIME_DIR");
	setenv("XDG_RUNTIME_DIR", "relative/dir", 1);
	sock_runtime_dir(buf, sizeof buf, false, err, sizeof err);
	assert_string_equal(buf, fallback);
	setenv("XDG_RUNTIME_DIR", path_in(f, "missing"), 1);
	sock_runtime_dir(buf, sizeof buf, false, err, sizeof err);
	assert_string_equal(buf, fallback);
	close(open(path_in(f, "file"), O_CREAT | O_WRONLY, 0600));
	setenv("XDG_RUNTIME_DIR", path_in(f, "file"), 1);
	sock_runtime_dir(buf, sizeof buf, false, err, sizeof err);
	assert_string_equal(buf, fallback);
	unsetenv("XDG_RUNTIME_DIR");
	sock_runtime_dir(buf, sizeof buf, false, err, sizeof err);
	assert_string_equal(buf, fallback);
	if (geteuid() == 0) {
		/* Owned by someone else: not ours to use. */
		assert_int_equal(chown(path_in(f, "xdg"), NOBODY_UID, NOBODY_UID), 0);
		setenv("XDG_RUNTIME_DIR", path_in(f, "xdg"), 1);
		sock_runtime_dir(buf, sizeof buf, false, err, sizeof err);
		assert_string_equal(buf, fallback);
	}

	/* A relative PMT_TOP_RUNTIME_DIR is refused outright. */
	setenv("PMT_TOP_RUNTIME_DIR", "rel", 1);
	errno = 0;
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, true, err, sizeof err), -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, "PMT_TOP_RUNTIME_DIR must be an absolute path, not \"rel\"");
	assert_int_equal(access("rel", F_OK), -1);
}

static void test_refuse_symlink(void **state)
{
	struct fixture *f = *state;
	char buf[256], err[512];

	assert_int_equal(mkdir(path_in(f, "real"), 0700), 0);
	assert_int_equal(symlink(path_in(f, "real"), path_in(f, "link")), 0);
	setenv("PMT_TOP_RUNTIME_DIR", path_in(f, "link"), 1);
	errno = 0;
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, true, err, sizeof err), -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(err, "it is a symbolic link"));
	assert_non_null(strstr(err, path_in(f, "link")));

	/* A dangling link is refused too, and nothing is created through it. */
	assert_int_equal(symlink(path_in(f, "target"), path_in(f, "dangling")), 0);
	setenv("PMT_TOP_RUNTIME_DIR", path_in(f, "dangling"), 1);
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, true, err, sizeof err), -1);
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(access(path_in(f, "target"), F_OK), -1);
}

static void test_refuse_not_dir(void **state)
{
	struct fixture *f = *state;
	char buf[256], err[512];

	close(open(path_in(f, "plain"), O_CREAT | O_WRONLY, 0600));
	setenv("PMT_TOP_RUNTIME_DIR", path_in(f, "plain"), 1);
	errno = 0;
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, true, err, sizeof err), -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(err, "it is not a directory"));
}

static void test_refuse_mode(void **state)
{
	struct fixture *f = *state;
	static const mode_t bad[] = { 0755, 0750, 0710, 0701, 0770, 0707, 0777 };
	char buf[256], err[512], want[400];

	assert_int_equal(mkdir(path_in(f, "rt"), 0700), 0);
	setenv("PMT_TOP_RUNTIME_DIR", path_in(f, "rt"), 1);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(chmod(path_in(f, "rt"), bad[i]), 0);
		errno = 0;
		assert_int_equal(sock_runtime_dir(buf, sizeof buf, true, err, sizeof err), -1);
		assert_int_equal(errno, EPERM);
		snprintf(want, sizeof want, "refusing runtime directory %s: mode %04o lets group or "
			 "others in (run: chmod 700 %s)", path_in(f, "rt"), (unsigned)bad[i],
			 path_in(f, "rt"));
		assert_string_equal(err, want);
		/* Refused, not repaired: the mode is still the bad one. */
		struct stat st;
		assert_int_equal(stat(path_in(f, "rt"), &st), 0);
		assert_int_equal(st.st_mode & 07777, bad[i]);
	}
	assert_int_equal(chmod(path_in(f, "rt"), 0700), 0);
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, false, err, sizeof err), 0);
}

static void test_refuse_foreign_owner(void **state)
{
	struct fixture *f = *state;
	char buf[256], err[512], want[400];

	assert_int_equal(mkdir(path_in(f, "rt"), 0700), 0);
	if (chown(path_in(f, "rt"), NOBODY_UID, NOBODY_UID) != 0)
		skip(); /* needs root (CAP_CHOWN) */
	setenv("PMT_TOP_RUNTIME_DIR", path_in(f, "rt"), 1);
	errno = 0;
	assert_int_equal(sock_runtime_dir(buf, sizeof buf, true, err, sizeof err), -1);
	assert_int_equal(errno, EPERM);
	snprintf(want, sizeof want, "refusing runtime directory %s: it is owned by uid %d, not by "
		 "you (uid %lu)", path_in(f, "rt"), NOBODY_UID, (unsigned long)geteuid());
	assert_string_equal(err, want);
}

static void test_path_for_pid(void **state)
{
	struct fixture *f = *state;
	char buf[512], err[512], want[300], longdir[200];

	setenv("PMT_TOP_RUNTIME_DIR", path_in(f, "rt"), 1);
	assert_int_equal(sock_path_for_pid(4321, false, buf, sizeof buf, err, sizeof err), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(sock_path_for_pid(4321, true, buf, sizeof buf, err, sizeof err), 0);
	snprintf(want, sizeof want, "%s/4321.sock", path_in(f, "rt"));
	assert_string_equal(buf, want);
	errno = 0;
	assert_int_equal(sock_path_for_pid(0, true, buf, sizeof buf, err, sizeof err), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(sock_path_for_pid(-5, true, buf, sizeof buf, err, sizeof err), -1);

	/* A directory too deep for sun_path (108 bytes) is an error. */
	snprintf(longdir, sizeof longdir, "%s/", f->base);
	while (strlen(longdir) < 110)
		strcat(longdir, "d");
	setenv("PMT_TOP_RUNTIME_DIR", longdir, 1);
	errno = 0;
	assert_int_equal(sock_path_for_pid(4321, true, buf, sizeof buf, err, sizeof err), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_non_null(strstr(err, "too long for a Unix socket"));
}

/* A listening socket at path owned by this process. */
static int listen_at(const char *path, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

static void test_connect_missing_and_stale(void **state)
{
	struct fixture *f = *state;
	char err[512], want[400];
	int fd;

	errno = 0;
	assert_int_equal(sock_connect(path_in(f, "123.sock"), 123, err, sizeof err), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(want, sizeof want, "no agent is listening for pid 123 (socket %s missing)",
		 path_in(f, "123.sock"));
	assert_string_equal(err, want);
	assert_int_equal(sock_connect(path_in(f, "123.sock"), 0, err, sizeof err), -1);
	snprintf(want, sizeof want, "no agent is listening (socket %s missing)", path_in(f, "123.sock"));
	assert_string_equal(err, want);

	/* The socket file outlived its server. */
	fd = listen_at(path_in(f, "stale.sock"), 4);
	close(fd);
	errno = 0;
	assert_int_equal(sock_connect(path_in(f, "stale.sock"), getpid(), err, sizeof err), -1);
	assert_int_equal(errno, ECONNREFUSED);
	snprintf(want, sizeof want, "no agent is listening for pid %ld", (long)getpid());
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "stale"));

	/* Not a socket at all. */
	close(open(path_in(f, "plain.sock"), O_CREAT | O_WRONLY, 0600));
	assert_int_equal(sock_connect(path_in(f, "plain.sock"), getpid(), err, sizeof err), -1);
	assert_int_equal(errno, ECONNREFUSED);
}

static void test_connect_peer_pid(void **state)
{
	struct fixture *f = *state;
	char err[512], want[400];
	int lfd, fd, fl;
	pid_t me = getpid();

	lfd = listen_at(path_in(f, "me.sock"), 8);
	fd = sock_connect(path_in(f, "me.sock"), me, err, sizeof err);
	assert_true(fd >= 0);
	fl = fcntl(fd, F_GETFL);
	assert_true(fl & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(sock_peer_pid(fd), me);
	close(fd);
	fd = sock_connect(path_in(f, "me.sock"), 0, err, sizeof err);
	assert_true(fd >= 0);
	close(fd);

	/* Another live process of ours is not the socket's maker. */
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		pause();
		_exit(0);
	}
	errno = 0;
	assert_int_equal(sock_connect(path_in(f, "me.sock"), f->child, err, sizeof err), -1);
	assert_int_equal(errno, EPERM);
	snprintf(want, sizeof want, "socket %s belongs to pid %ld, not %ld", path_in(f, "me.sock"),
		 (long)me, (long)f->child);
	assert_string_equal(err, want);
	close(lfd);
}

/* A forked server: its pid is accepted, ours is refused. */
static void test_connect_forked_server(void **state)
{
	struct fixture *f = *state;
	char err[512], want[400], buf[8];
	int ready[2], quit[2], fd;
	const char *path = path_in(f, "child.sock");
	pid_t child;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(quit), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int l = socket(AF_UNIX, SOCK_STREAM, 0), c;

		close(quit[1]);
		close(ready[0]);
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 8) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		c = accept(l, NULL, NULL);
		if (c >= 0 && write(c, "hi\n", 3) != 3)
			_exit(1);
		/* Wait until the parent is done, then leave. */
		(void)read(quit[0], buf, 1);
		_exit(0);
	}
	f->child = child;
	close(ready[1]);
	close(quit[0]);
	assert_int_equal(read(ready[0], buf, 1), 1);

	fd = sock_connect(path, child, err, sizeof err);
	if (fd < 0)
		fail_msg("%s", err);
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		assert_int_equal(poll(&p, 1, 5000), 1);
		assert_int_equal(read(fd, buf, 3), 3);
		assert_memory_equal(buf, "hi\n", 3);
	}
	close(fd);

	errno = 0;
	assert_int_equal(sock_connect(path, getpid(), err, sizeof err), -1);
	assert_int_equal(errno, EPERM);
	snprintf(want, sizeof want, "socket %s belongs to pid %ld, not %ld", path, (long)child,
		 (long)getpid());
	assert_string_equal(err, want);

	close(quit[1]);
	close(ready[0]);
	{
		int status;

		assert_int_equal(waitpid(child, &status, 0), child);
		f->child = 0;
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}

struct late_accept {
	int lfd;
	int accepted;
};

static void *accept_later(void *p)
{
	struct late_accept *a = p;
	struct timespec ts = { 0, 150 * 1000 * 1000 };
	int c;

	nanosleep(&ts, NULL);
	while ((c = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		a->accepted++;
		close(c);
	}
	return NULL;
}

/* A full accept queue is waited out (briefly), not reported as "no agent". */
static void test_connect_busy_backlog(void **state)
{
	struct fixture *f = *state;
	char err[512];
	int lfd = listen_at(path_in(f, "busy.sock"), 0), fds[16], nfill = 0, fd;
	struct late_accept la = { .lfd = lfd };
	pthread_t th;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timespec t0, t1;

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path_in(f, "busy.sock"));
	for (; nfill < 16; nfill++) {
		fds[nfill] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(fds[nfill], (struct sockaddr *)&sa, sizeof sa) < 0) {
			assert_int_equal(errno, EAGAIN);
			close(fds[nfill]);
			break;
		}
	}
	assert_true(nfill < 16); /* the queue is full now */
	assert_int_equal(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(pthread_create(&th, NULL, accept_later, &la), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = sock_connect(path_in(f, "busy.sock"), getpid(), err, sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(th, NULL);
	if (fd < 0)
		fail_msg("%s", err);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 100);
	assert_true(la.accepted >= 1);
	close(fd);
	for (int i = 0; i < nfill; i++)
		close(fds[i]);
	close(lfd);
}

#define OTHER_UID 12345

/* Connects to PATH expecting pid PID; returns -1 and checks errno/err text. */
static void expect_refused(const char *path, pid_t pid, const char *needle)
{
	char err[512];

	errno = 0;
	assert_int_equal(sock_connect(path, pid, err, sizeof err), -1);
	assert_int_equal(errno, EPERM);
	if (strstr(err, needle) == NULL)
		fail_msg("wanted \"%s\" in: %s", needle, err);
}

/* Root attaching to another user's process trusts a socket only where that
 * user (or root) alone controls it, and only if its maker is the target. */
static void test_connect_trust(void **state)
{
	struct fixture *f = *state;
	char dir[200], path[300], link[300], err[512];
	int lfd, fd;

	if (geteuid() != 0)
		fail_msg("this test needs root (it changes owners)");
	snprintf(dir, sizeof dir, "%s/d", f->base);
	snprintf(path, sizeof path, "%s/me.sock", dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	lfd = listen_at(path, 8);
	fd = sock_connect(path, getpid(), err, sizeof err);
	if (fd < 0)
		fail_msg("%s", err);
	close(fd);

	/* A directory someone else owns (a squatted /tmp/pmt-top-<uid>). */
	assert_int_equal(chown(dir, OTHER_UID, OTHER_UID), 0);
	expect_refused(path, getpid(), "its directory is owned by uid 12345");
	assert_int_equal(chown(dir, 0, 0), 0);
	/* A directory others may write in. */
	assert_int_equal(chmod(dir, 0777), 0);
	expect_refused(path, getpid(), "writable by others (mode 0777)");
	assert_int_equal(chmod(dir, 0700), 0);
	/* A directory that is a symbolic link. */
	snprintf(link, sizeof link, "%s/l", f->base);
	assert_int_equal(symlink(dir, link), 0);
	snprintf(link, sizeof link, "%s/l/me.sock", f->base);
	expect_refused(link, getpid(), "its directory is a symbolic link");
	/* A socket file someone else owns. */
	assert_int_equal(lchown(path, OTHER_UID, OTHER_UID), 0);
	expect_refused(path, getpid(), "a socket owned by uid 12345");
	assert_int_equal(lchown(path, 0, 0), 0);
	close(lfd);
	unlink(path);

	/* A maker whose uid is not the target's: it listened as OTHER_UID, then
	 * became uid OTHER_UID + 1 for good. */
	int ready[2];
	char c;

	assert_int_equal(pipe(ready), 0);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int l = socket(AF_UNIX, SOCK_STREAM, 0);

		if (strlen(path) >= sizeof sa.sun_path)
			_exit(1);
		memcpy(sa.sun_path, path, strlen(path) + 1);
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || seteuid(OTHER_UID) < 0 ||
		    listen(l, 8) < 0 || seteuid(0) < 0 ||
		    setresuid(OTHER_UID + 1, OTHER_UID + 1, OTHER_UID + 1) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	expect_refused(path, f->child, "it was made by uid 12345");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_env_dir_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_not_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_foreign_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_for_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_missing_and_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_peer_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_forked_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_busy_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_trust, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
