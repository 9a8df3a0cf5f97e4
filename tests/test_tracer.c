/*
 * test_tracer.c - who holds a process (src/attach/tracer.c), on real
 * processes: a child stopped with SIGSTOP is state T, a child this test
 * traces names this test (and its parent) as its tracer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach/tracer.h"

static pid_t sleeper(void)
{
	pid_t p = fork();

	assert_true(p >= 0);
	if (p == 0) {
		for (;;)
			pause();
	}
	return p;
}

static void reap(pid_t p)
{
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
}

/* Waits (bounded by the loop, not by a clock) until P's state is WANT. */
static char wait_state(pid_t p, char want)
{
	char st = 0;

	for (int i = 0; i < 5000 && (st = tracer_proc_state(p)) != want; i++)
		usleep(1000);
	return st;
}

static void test_stopped(void **state)
{
	pid_t p = sleeper();
	struct tracer t;
	char buf[128];

	(void)state;
	assert_int_equal(wait_state(p, 'S'), 'S');
	kill(p, SIGSTOP);
	assert_int_equal(wait_state(p, 'T'), 'T');
	assert_int_equal(tracer_find(p, &t), 0);
	assert_int_equal(t.pid, 0);
	assert_string_equal(tracer_describe(&t, buf, sizeof buf), "no process");
	kill(p, SIGCONT);
	assert_int_equal(wait_state(p, 'S'), 'S');
	reap(p);
	assert_int_equal(tracer_proc_state(p), 0); /* gone */
	assert_int_equal(tracer_find(p, &t), -1);
}

static void test_traced(void **state)
{
	pid_t p = sleeper();
	struct tracer t;
	char buf[160], want[160], me[32], parent[32];

	(void)state;
	if (ptrace(PTRACE_SEIZE, p, NULL, NULL) != 0) {
		reap(p);
		skip(); /* ptrace not allowed here */
	}
	assert_int_equal(tracer_find(p, &t), 1);
	assert_int_equal(t.pid, getpid());
	assert_string_equal(t.comm, tracer_comm(getpid(), me, sizeof me));
	assert_int_equal(t.parent, getppid());
	assert_string_equal(t.parent_comm, tracer_comm(getppid(), parent, sizeof parent));
	assert_false(tracer_is_pmt_top(&t));
	snprintf(want, sizeof want, "process %d (%s, started by %s pid %d)", (int)getpid(), me, parent,
		 (int)getppid());
	assert_string_equal(tracer_describe(&t, buf, sizeof buf), want);
	/* A tracer started by pmt-top is recognised as such. */
	snprintf(t.parent_comm, sizeof t.parent_comm, "pmt-top");
	assert_true(tracer_is_pmt_top(&t));
	reap(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stopped),
		cmocka_unit_test(test_traced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
