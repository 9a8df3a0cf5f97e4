/*
 * test_leftover.c - naming and sweeping what a killed pmt-top left behind
 * (src/base/leftover.c, and the inject directories' names in
 * src/attach/inject_dir.c), in a real mkdtemp() directory: stale entries go,
 * and nothing that is not exactly ours and stale is touched: not another
 * uid's, not a symbolic link (nor what it points to), not a live creator's,
 * not one of another pid namespace, not one with an unexpected mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach/inject_dir.h"
#include "base/leftover.h"

static char dir[64], outside[64];

static const struct leftover_kind dirs = {
	.prefix = "pmt-top-inject-", .directory = true, .modes = { 0700, 0711 }, .max_depth = 2,
};
static const struct leftover_kind logs = {
	.prefix = "pmt-top-demo-", .suffix = ".log", .modes = { 0600, 0600 },
};

static pid_t dead_pid(void)
{
	pid_t p = fork();

	assert_true(p >= 0);
	if (p == 0)
		_exit(0);
	assert_int_equal(waitpid(p, NULL, 0), p);
	return p;
}

static char *at(const char *name)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%.400s", dir, name);
	return buf[i];
}

static void touch(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x\n", 2), 2);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

/* A tree as inject.c leaves it, with a symbolic link to OUTSIDE inside. */
static void make_tree(const char *name, mode_t mode)
{
	char p[600];

	assert_int_equal(mkdir(at(name), mode), 0);
	assert_int_equal(chmod(at(name), mode), 0);
	snprintf(p, sizeof p, "%s/agent", at(name));
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/agent/pmt_agent", at(name));
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/agent/pmt_agent/__init__.py", at(name));
	touch(p, 0644);
	snprintf(p, sizeof p, "%s/bootstrap.py", at(name));
	touch(p, 0644);
	snprintf(p, sizeof p, "%s/status", at(name));
	touch(p, 0600);
	snprintf(p, sizeof p, "%s/agent/escape", at(name));
	assert_int_equal(symlink(outside, p), 0);
}

static bool exists(const char *name)
{
	struct stat st;

	return lstat(at(name), &st) == 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	char keep[128];

	(void)state;
	snprintf(dir, sizeof dir, "/tmp/pmt-test-leftover-XXXXXX");
	snprintf(outside, sizeof outside, "/tmp/pmt-test-outside-XXXXXX");
	if (mkdtemp(dir) == NULL || mkdtemp(outside) == NULL)
		return -1;
	snprintf(keep, sizeof keep, "%s/keep", outside);
	touch(keep, 0644);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	nftw(outside, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void test_names(void **state)
{
	char name[96];
	pid_t creator;
	unsigned long long ns;
	const char *rest;

	(void)state;
	assert_int_equal(inject_dir_name(4242, name, sizeof name), 0);
	assert_int_equal(leftover_parse(name, INJECT_DIR_PREFIX, &creator, &ns, &rest), 0);
	assert_int_equal(creator, getpid());
	assert_true(ns == leftover_pidns() && ns != 0);
	assert_int_equal(strncmp(rest, "4242-", 5), 0);
	assert_int_equal(strlen(rest + 5), 16);
	assert_int_equal(inject_dir_name(4242, name, 30), -1);

	assert_int_equal(leftover_parse("pmt-top-inject-0123456789abcdef", INJECT_DIR_PREFIX, &creator, &ns,
					&rest), -1); /* an older pmt-top's name: never judged */
	assert_int_equal(leftover_parse("pmt-top-inject-12-x-1-00", INJECT_DIR_PREFIX, &creator, &ns, &rest), -1);
	assert_int_equal(leftover_parse("pmt-top-inject-0-5-1-00", INJECT_DIR_PREFIX, &creator, &ns, &rest), -1);
	assert_int_equal(leftover_parse("pmt-top-inject-99999999999-5-1", INJECT_DIR_PREFIX, &creator, &ns,
					&rest), -1);
	assert_int_equal(leftover_parse("other-12-5-1", INJECT_DIR_PREFIX, &creator, &ns, &rest), -1);
	assert_int_equal(leftover_parse("pmt-top-inject-12-5-", INJECT_DIR_PREFIX, &creator, &ns, &rest), 0);
	assert_int_equal(creator, 12);
	assert_true(ns == 5 && *rest == '\0');

	assert_false(leftover_creator_gone(getpid(), leftover_pidns()));
	assert_false(leftover_creator_gone(getppid(), leftover_pidns()));
	assert_true(leftover_creator_gone(dead_pid(), leftover_pidns()));
	assert_false(leftover_creator_gone(dead_pid(), leftover_pidns() + 1));
	assert_false(leftover_creator_gone(dead_pid(), 0));
}

static void test_sweep_dirs(void **state)
{
	char n[16][128];
	unsigned long long ns = leftover_pidns();
	pid_t gone = dead_pid();
	char deep[700];
	int i = 0;

	(void)state;
	/* Go: ours, creator dead, mode 0700 or 0711. */
	snprintf(n[i], sizeof n[i], "pmt-top-inject-%d-%llu-7-%016x", (int)gone, ns, 1);
	make_tree(n[i++], 0700);
	snprintf(n[i], sizeof n[i], "pmt-top-inject-%d-%llu-7-%016x", (int)gone, ns, 2);
	make_tree(n[i++], 0711);
	/* Stay. */
	snprintf(n[i], sizeof n[i], "pmt-top-inject-%d-%llu-7-%016x", (int)gone, ns, 3);
	make_tree(n[i++], 0755);                                                   /* 2: mode */
	snprintf(n[i], sizeof n[i], "pmt-top-inject-%d-%llu-7-%016x", (int)getpid(), ns, 4);
	make_tree(n[i++], 0700);                                                   /* 3: alive (us) */
	snprintf(n[i], sizeof n[i], "pmt-top-inject-%d-%llu-7-%016x", (int)getppid(), ns, 5);
	make_tree(n[i++], 0700);                                                   /* 4: alive */
	snprintf(n[i], sizeof n[i], "pmt-top-inject-%d-%llu-7-%016x", (int)gone, ns + 1, 6);
	make_tree(n[i++], 0700);                                                   /* 5: other namespace */
	snprintf(n[i], sizeof n[i], "pmt-top-inject-%d-%llu-7-%016x", (int)gone, ns, 7);
	assert_int_equal(symlink(outside, at(n[i++])), 0);                         /* 6: a symlink */
	snprintf(n[i], sizeof n[i], "pmt-top-inject-%d-%llu-7-%016x", (int)gone, ns, 8);
	touch(at(n[i++]), 0700);                                                   /* 7: not a directory */
	snprintf(n[i], sizeof n[i], "pmt-top-inject-0123456789abcdef");
	make_tree(n[i++], 0700);                                                   /* 8: old name */
	snprintf(n[i], sizeof n[i], "pmt-top-inject-%d-%llu-7-%016x", (int)gone, ns, 9);
	make_tree(n[i++], 0700);                                                   /* 9: too deep */
	snprintf(deep, sizeof deep, "%s/agent/pmt_agent/a", at(n[9]));
	assert_int_equal(mkdir(deep, 0700), 0);
	snprintf(deep, sizeof deep, "%s/agent/pmt_agent/a/b", at(n[9]));
	assert_int_equal(mkdir(deep, 0700), 0);
	if (geteuid() == 0) {
		snprintf(n[i], sizeof n[i], "pmt-top-inject-%d-%llu-7-%016x", (int)gone, ns, 10);
		make_tree(n[i], 0700);                                             /* 10: another uid */
		assert_int_equal(chown(at(n[i++]), 65534, (gid_t)-1), 0);
	}

	/* Everyone may rename anything here: refused whole. */
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(leftover_sweep_path(dir, &dirs), 0);
	assert_true(exists(n[0]));
	/* The same with the sticky bit, as /tmp: swept. */
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(leftover_sweep_path(dir, &dirs), 2);
	assert_false(exists(n[0]));
	assert_false(exists(n[1]));
	for (int k = 2; k < i; k++)
		assert_true(exists(n[k]));
	/* What the symlinks pointed to is untouched. */
	char keep[128];
	snprintf(keep, sizeof keep, "%s/keep", outside);
	assert_int_equal(access(keep, F_OK), 0);
	/* The too-deep tree lost what it could but is still there. */
	assert_true(exists(n[9]));
	assert_int_equal(leftover_sweep_path(dir, &dirs), 0);
	/* A symlink to the directory is not a directory to sweep. */
	assert_int_equal(leftover_sweep_path("/proc/self/cwd", &dirs), 0);
}

static void test_sweep_files(void **state)
{
	unsigned long long ns = leftover_pidns();
	pid_t gone = dead_pid();
	char a[128], b[128], c[128], d[128], e[128], f[128], g[256];

	(void)state;
	snprintf(a, sizeof a, "pmt-top-demo-%d-%llu-abc123.log", (int)gone, ns);
	touch(at(a), 0600);                      /* goes */
	snprintf(b, sizeof b, "pmt-top-demo-%d-%llu-abc124.txt", (int)gone, ns);
	touch(at(b), 0600);                      /* another suffix */
	snprintf(c, sizeof c, "pmt-top-demo-%d-%llu-abc125.log", (int)gone, ns);
	touch(at(c), 0644);                      /* another mode */
	snprintf(d, sizeof d, "pmt-top-demo-%d-%llu-abc126.log", (int)gone, ns);
	touch(at(d), 0600);                      /* hard-linked elsewhere */
	snprintf(g, sizeof g, "%s/hardlink", outside);
	assert_int_equal(link(at(d), g), 0);
	snprintf(e, sizeof e, "pmt-top-demo-%d-%llu-abc127.log", (int)gone, ns);
	snprintf(g, sizeof g, "%s/keep", outside);
	assert_int_equal(symlink(g, at(e)), 0);  /* a symlink */
	snprintf(f, sizeof f, "pmt-top-demo-%d-%llu-abc128.log", (int)getpid(), ns);
	touch(at(f), 0600);                      /* alive */

	assert_int_equal(leftover_sweep_path(dir, &logs), 1);
	assert_false(exists(a));
	assert_true(exists(b) && exists(c) && exists(d) && exists(e) && exists(f));
	assert_int_equal(access(g, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_sweep_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_files, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
