/*
 * test_proctree.c - the group of a service: /proc parsers on hostile text,
 * the tree walk and the sampler's table on a fixture /proc (a master with
 * workers, one forked by a second thread, one that exits, one whose pid comes
 * back), the growth fit, and the whole thing on real forked children.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/monotime.h"
#include "proc/group.h"
#include "proc/proctree.h"

static void test_parse_stat(void **state)
{
	(void)state;
	struct proctree_stat st;
	const char *real = "4242 (python3) S 4200 4242 4200 34816 4242 4194560 6075 0 0 0 29 6 0 0 20 0 "
			   "3 0 5638411 1077194752 10519 18446744073709551615 1 1 0 0 0 0 0 16781312 "
			   "134234626 0 0 0 17 1 0 0 0 0 0\n";
	assert_int_equal(proctree_parse_stat(real, &st), 0);
	assert_int_equal(st.ppid, 4200);
	assert_int_equal(st.state, 'S');
	assert_true(st.start_ticks == 5638411ULL);
	assert_string_equal(st.comm, "python3");

	/* A name with spaces, parentheses and a newline: from the first '(' to
	 * the last ')', made display-safe. */
	const char *hostile = "7 (a) S 1 (b)\n) Z 99 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0\n";
	assert_int_equal(proctree_parse_stat(hostile, &st), 0);
	assert_int_equal(st.ppid, 99);
	assert_int_equal(st.state, 'Z');
	assert_true(st.start_ticks == 777ULL);
	assert_null(strchr(st.comm, '\n'));

	assert_int_equal(proctree_parse_stat("", &st), -1);
	assert_int_equal(proctree_parse_stat("1 (x", &st), -1);
	assert_int_equal(proctree_parse_stat("1 (x) S", &st), -1);
	assert_int_equal(proctree_parse_stat("1 (x) S -4 1 1 0 0 0 0 0 0 0 0 0 0 0 20 0 1 0 5", &st), -1);
	assert_int_equal(proctree_parse_stat("1 (x) S 2 1 1 0 0 0 0 0 0 0 0 0 0 0 20 0 1 0 5x 0", &st), -1);
	assert_int_equal(proctree_parse_stat("1 (x) S 99999999999 1 1 0 0 0 0 0 0 0 0 0 0 0 20 0 1 0 5", &st), -1);
}

static void test_parse_children(void **state)
{
	(void)state;
	pid_t out[4];
	assert_int_equal(proctree_parse_children("", out, 4), 0);
	assert_int_equal(proctree_parse_children("12 34 56 ", out, 4), 3);
	assert_int_equal(out[0], 12);
	assert_int_equal(out[2], 56);
	/* More than fit: the first MAX. */
	assert_int_equal(proctree_parse_children("1 2 3 4 5 6", out, 4), 4);
	assert_int_equal(out[3], 4);
	assert_int_equal(proctree_parse_children("1 x 3", out, 4), -1);
	assert_int_equal(proctree_parse_children("1 -3", out, 4), -1);
	assert_int_equal(proctree_parse_children("0", out, 4), -1);
	assert_int_equal(proctree_parse_children("99999999999999999999", out, 4), -1);
}

/* Which processes are Python's: by the executable, by a mapped libpython
 * (an embedder such as uWSGI), or neither. */
static void test_python_files(void **state)
{
	(void)state;
	char root[] = "/tmp/pmt-pyfiles-XXXXXX";
	assert_non_null(mkdtemp(root));
	static const struct { const char *exe, *lib; int want, minor; } cases[] = {
		{ "/usr/bin/python3.11", NULL, 1, 11 },
		{ "/opt/py/bin/python3.14 (deleted)", NULL, 1, 14 },
		{ "/usr/bin/python3.13t", NULL, 1, 13 },
		{ "/usr/bin/python3", NULL, 1, 0 },
		{ "/usr/bin/uwsgi-core", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", 1, 11 },
		{ "/usr/bin/python2.7", NULL, 0, 0 },
		{ "/usr/bin/pythonista", NULL, 0, 0 },
		{ "/usr/bin/bash", "/usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so", 0, 0 },
	};
	for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
		char path[256];
		snprintf(path, sizeof path, "%s/%d", root, i + 1);
		assert_int_equal(mkdir(path, 0755), 0);
		snprintf(path, sizeof path, "%s/%d/exe", root, i + 1);
		assert_int_equal(symlink(cases[i].exe, path), 0);
		snprintf(path, sizeof path, "%s/%d/maps", root, i + 1);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "55d0c0000000-55d0c0001000 r--p 00000000 08:01 1 %s\n", cases[i].exe);
		if (cases[i].lib)
			fprintf(f, "7f0000000000-7f0000001000 r-xp 00000000 08:01 2 %s\n", cases[i].lib);
		fclose(f);
		int minor = -1;
		assert_int_equal(proctree_python(root, i + 1, &minor), cases[i].want);
		if (cases[i].want)
			assert_int_equal(minor, cases[i].minor);
	}
	/* Nothing readable: unknown. */
	assert_int_equal(proctree_python(root, 999, &(int){ 0 }), -1);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

static void test_rate(void **state)
{
	(void)state;
	struct group_point h[200];
	/* 1 MiB a second for 100 s, sampled twice a second: 60 MiB a minute
	 * over the last minute. */
	for (int i = 0; i < 200; i++) {
		h[i].t = 1000.0 + i * 0.5;
		h[i].rss = (uint64_t)(50 << 20) + (uint64_t)i * (512 << 10);
	}
	assert_true(fabs(group_rate(h, 200, 60) - 60.0 * (1 << 20)) < 1.0);
	/* Flat, then a step: the fit sees only the window. */
	for (int i = 0; i < 200; i++)
		h[i].rss = i < 150 ? 100 : 100 + (uint64_t)(i - 149) * 1000;
	double r = group_rate(h, 200, 10);
	assert_true(fabs(r - 2000.0 * 60) < 1.0);
	assert_true(isnan(group_rate(h, 1, 60)));
	h[1].t = h[0].t + 0.5;
	assert_true(isnan(group_rate(h, 2, 60))); /* less than a second */
	/* Shrinking is negative. */
	h[0] = (struct group_point){ 10, 5000 };
	h[1] = (struct group_point){ 12, 3000 };
	assert_true(fabs(group_rate(h, 2, 60) + 60000.0) < 1e-6);
}

static void test_sort(void **state)
{
	(void)state;
	struct group_member m[5] = {0};
	m[0] = (struct group_member){ .pid = 1, .rss = 10, .rate = NAN };
	m[1] = (struct group_member){ .pid = 2, .rss = 5, .rate = 100 };
	m[2] = (struct group_member){ .pid = 3, .rss = 50, .rate = -10 };
	m[3] = (struct group_member){ .pid = 4, .rss = 99, .rate = 1000, .gone = true };
	m[4] = (struct group_member){ .pid = 5, .rss = 20, .rate = NAN };
	struct group_table t = { .m = m, .n = 5 };
	group_sort(&t);
	assert_int_equal(m[0].pid, 2);
	assert_int_equal(m[1].pid, 3);
	assert_int_equal(m[2].pid, 5); /* no rate: the larger first */
	assert_int_equal(m[3].pid, 1);
	assert_int_equal(m[4].pid, 4); /* exited: last */
}

static void test_cells(void **state)
{
	(void)state;
	struct group_member m = { .rss = 3 << 20, .rate = 1536.0 * 1024, .started = 100.0, .python = 1, .py_minor = 12 };
	struct group_cells c;
	group_member_cells(&m, 285.0, &c);
	assert_string_equal(c.rss, "3.0 MiB");
	assert_string_equal(c.rate, "+1.5 MiB");
	assert_string_equal(c.age, "3m05s");
	assert_string_equal(c.py, "3.12");
	m.rate = NAN;
	m.started = NAN;
	m.python = -1;
	group_member_cells(&m, 285.0, &c);
	assert_string_equal(c.rate, "-");
	assert_string_equal(c.age, "?");
	assert_string_equal(c.py, "?");
	m.gone = true;
	m.rate = 5;
	m.python = 0;
	group_member_cells(&m, 285.0, &c);
	assert_string_equal(c.rss, "-");
	assert_string_equal(c.rate, "-");
	assert_string_equal(c.py, "no");
}

/* A fixture /proc: each process a directory with stat, statm, cmdline,
 * exe (a symlink), maps and task/TID/children. */
struct fixture {
	char root[128];
};

static void put(const struct fixture *f, const char *rel, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", f->root, rel);
	for (char *p = path + strlen(f->root) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void put_proc(const struct fixture *f, pid_t pid, pid_t ppid, unsigned long long start,
		     const char *exe, unsigned long rss_pages, const char *kids_main, const char *kids_thread)
{
	char rel[128], text[512];
	snprintf(rel, sizeof rel, "%d/stat", (int)pid);
	snprintf(text, sizeof text, "%d (w%d) S %d 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %llu 0 0\n", (int)pid,
		 (int)pid, (int)ppid, start);
	put(f, rel, text);
	snprintf(rel, sizeof rel, "%d/statm", (int)pid);
	snprintf(text, sizeof text, "1000 %lu 10 1 0 100 0\n", rss_pages);
	put(f, rel, text);
	snprintf(rel, sizeof rel, "%d/cmdline", (int)pid);
	put(f, rel, "gunicorn: worker [app]");
	snprintf(rel, sizeof rel, "%d/task/%d/children", (int)pid, (int)pid);
	put(f, rel, kids_main);
	if (kids_thread) {
		snprintf(rel, sizeof rel, "%d/task/%d/children", (int)pid, (int)pid + 1000);
		put(f, rel, kids_thread);
	}
	char link[512];
	snprintf(link, sizeof link, "%s/%d/exe", f->root, (int)pid);
	assert_int_equal(symlink(exe, link), 0);
	snprintf(rel, sizeof rel, "%d/maps", (int)pid);
	/* Only the embedder maps libpython here; the rest are known by their exe. */
	snprintf(text, sizeof text, "55d0c0000000-55d0c0001000 r--p 00000000 08:01 1 %s\n%s", exe,
		 strstr(exe, "uwsgi") ? "7f0000000000-7f0000001000 r-xp 00000000 08:01 2 "
					"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0\n" : "");
	put(f, rel, text);
}

static struct group_member *member(struct group_table *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->m[i].pid == pid && !t->m[i].gone)
			return &t->m[i];
	return NULL;
}

static void test_fixture_tree(void **state)
{
	(void)state;
	struct fixture f;
	snprintf(f.root, sizeof f.root, "/tmp/pmt-proctree-XXXXXX");
	assert_non_null(mkdtemp(f.root));
	put(&f, "uptime", "1000.00 1800.00\n");
	/* 100: the master; 101 and 102 forked by its main thread, 103 by
	 * another thread; 104 a grandchild under 102 (uwsgi, a Python
	 * library). 200 is someone else's process. */
	put_proc(&f, 100, 1, 1000, "/usr/bin/python3.11", 1000, "101 102 ", "103");
	put_proc(&f, 101, 100, 5000, "/usr/bin/python3.11", 2000, "", NULL);
	put_proc(&f, 102, 100, 5000, "/usr/bin/python3.11", 3000, "104", NULL);
	put_proc(&f, 103, 100, 6000, "/usr/bin/python3.11", 4000, "", NULL);
	put_proc(&f, 104, 102, 7000, "/usr/bin/uwsgi-core", 5000, "", NULL);
	put_proc(&f, 200, 1, 100, "/usr/bin/bash", 7000, "", NULL);

	pid_t kids[8];
	assert_int_equal(proctree_children(f.root, 100, kids, 8), 3);
	int minor = 0;
	assert_int_equal(proctree_python(f.root, 104, &minor), 1); /* by its maps */
	assert_int_equal(minor, 11);

	bool nop;
	char err[256];
	struct group *g = group_new(f.root, true, 100, NULL, 0, 0.1, &nop, err, sizeof err);
	assert_non_null(g);
	struct group_table t = {0};
	assert_true(group_read(g, &t));
	assert_int_equal(t.n, 5);
	assert_int_equal(t.running, 5);
	long page = sysconf(_SC_PAGESIZE);
	assert_true(t.total_rss == (uint64_t)(1000 + 2000 + 3000 + 4000 + 5000) * (uint64_t)page);
	assert_null(member(&t, 200));
	assert_int_equal(member(&t, 100)->role, GROUP_ROLE_MASTER);
	assert_int_equal(member(&t, 100)->depth, 0);
	assert_int_equal(member(&t, 101)->role, GROUP_ROLE_WORKER);
	assert_int_equal(member(&t, 102)->role, GROUP_ROLE_MASTER);
	assert_int_equal(member(&t, 103)->depth, 1);
	assert_int_equal(member(&t, 104)->depth, 2);
	assert_int_equal(member(&t, 104)->python, 1);
	assert_string_equal(member(&t, 101)->cmdline, "gunicorn: worker [app]");
	/* Started 5000 ticks after boot, 1000 s of uptime: 950 s old. */
	assert_true(fabs((t.t - member(&t, 101)->started) - (1000.0 - 5000.0 / (double)sysconf(_SC_CLK_TCK))) < 1.0);
	/* No second read without a new round. */
	assert_false(group_read(g, &t));

	/* 103 exits (its statm reads empty, as a dead process's held fd reads
	 * nothing) and the master forks 105 in its place. */
	put(&f, "103/statm", "");
	put_proc(&f, 105, 100, 9000, "/usr/bin/python3.11", 1500, "", NULL);
	put(&f, "100/task/1100/children", "105");
	usleep(1100 * 1000); /* the next look for members is due after GROUP_RESCAN */
	group_step(g);
	assert_true(group_read(g, &t));
	assert_null(member(&t, 103));
	assert_non_null(member(&t, 105));
	bool saw_exit = false;
	for (size_t i = 0; i < t.n; i++)
		saw_exit |= t.m[i].pid == 103 && t.m[i].gone;
	assert_true(saw_exit);
	assert_int_equal(t.running, 5);
	group_table_done(&t);
	group_free(g);

	/* A list: these pids only, no descendants. */
	pid_t list[] = { 101, 200, 424242 };
	g = group_new(f.root, false, 0, list, 3, 0.1, &nop, err, sizeof err);
	assert_non_null(g);
	group_read(g, &t);
	assert_int_equal(t.n, 2);
	assert_non_null(member(&t, 200));
	assert_int_equal(member(&t, 200)->python, 0);
	group_table_done(&t);
	group_free(g);

	assert_null(group_new(f.root, true, 424242, NULL, 0, 0.1, &nop, err, sizeof err));
	assert_true(nop);
	assert_non_null(strstr(err, "no process with pid 424242"));

	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f.root);
	assert_int_equal(system(cmd), 0);
}

/* The real thing: forked children, one growing, one exiting, with the
 * sampler's own thread. */
static void test_real_children(void **state)
{
	(void)state;
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t kids[3];
	for (int i = 0; i < 3; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			char c;
			close(go[1]);
			if (i == 1) {
				/* Grows 2 MiB every 100 ms until told to stop. */
				for (int k = 0; k < 600; k++) {
					char *p = malloc(2 << 20);
					if (p)
						memset(p, 1, 2 << 20);
					usleep(100 * 1000);
				}
			}
			if (read(go[0], &c, 1) < 0)
				_exit(1);
			_exit(0);
		}
	}
	close(go[0]);
	bool nop;
	char err[256];
	struct group *g = group_new(NULL, true, getpid(), NULL, 0, 0.1, &nop, err, sizeof err);
	assert_non_null(g);
	assert_int_equal(group_start(g), 0);
	struct group_table t = {0};
	/* Until the grower has a rate of its own and leads the table. */
	bool ranked = false;
	for (int k = 0; k < 100 && !ranked; k++) {
		usleep(100 * 1000);
		if (group_read(g, &t)) {
			group_sort(&t);
			ranked = t.n >= 4 && t.m[0].pid == kids[1] && t.m[0].rate > (4 << 20);
		}
	}
	assert_true(ranked);
	assert_int_equal(member(&t, getpid())->role, GROUP_ROLE_MASTER);
	assert_int_equal(member(&t, kids[0])->role, GROUP_ROLE_WORKER);

	kill(kids[2], SIGKILL);
	waitpid(kids[2], NULL, 0);
	bool went = false;
	for (int k = 0; k < 100 && !went; k++) {
		usleep(100 * 1000);
		group_read(g, &t);
		for (size_t i = 0; i < t.n; i++)
			went |= t.m[i].pid == kids[2] && t.m[i].gone;
	}
	assert_true(went);
	group_table_done(&t);
	group_free(g);
	close(go[1]);
	kill(kids[1], SIGKILL);
	for (int i = 0; i < 2; i++)
		waitpid(kids[i], NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_stat),
		cmocka_unit_test(test_parse_children),
		cmocka_unit_test(test_python_files),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_cells),
		cmocka_unit_test(test_fixture_tree),
		cmocka_unit_test(test_real_children),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
