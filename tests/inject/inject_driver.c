/*
 * inject_driver.c - command-line driver for the inject module, used by the
 * end-to-end tests and bench/bench_attach.py.
 *
 *   pmt-inject-driver probe PID
 *   pmt-inject-driver inject [--method M] [--timeout MS] [--agent DIR]
 *                            [--native DIR] [--gdb PATH] PID
 *   pmt-inject-driver rundir    (the runtime directory the C rules pick)
 *
 * inject prints one "state NAME: sentence" line whenever the state or the
 * sentence changes, then "stats ..." and "result DONE|FAILED: sentence".
 * Exit status: 0 done, 1 failed, 2 refused at start, 64 usage.
 */
#include "attach/inject.h"
#include "ipc/sock.h"

#include <errno.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *state_name(enum inject_state s)
{
	switch (s) {
	case INJECT_RUNNING: return "RUNNING";
	case INJECT_WAITING: return "WAITING";
	case INJECT_DONE: return "DONE";
	case INJECT_FAILED: return "FAILED";
	}
	return "?";
}

static const char *thread_name(enum pyproc_thread_state s)
{
	switch (s) {
	case PYPROC_THREAD_RUNNING: return "running";
	case PYPROC_THREAD_SYSCALL: return "syscall";
	case PYPROC_THREAD_STOPPED: return "stopped";
	case PYPROC_THREAD_GONE: return "gone";
	default: return "unknown";
	}
}

static int usage(void)
{
	fputs("usage: pmt-inject-driver probe PID\n"
	      "       pmt-inject-driver inject [--method M] [--timeout MS] [--agent DIR] [--native DIR]\n"
	      "                                [--gdb PATH] PID\n"
	      "       pmt-inject-driver rundir\n",
	      stderr);
	return 64;
}

static int do_probe(pid_t pid)
{
	struct inject_probe p;
	char err[512];
	if (inject_probe(pid, &p, err, sizeof err) != 0) {
		printf("error: %s\n", err);
		return 2;
	}
	const struct pyproc_info *pi = &p.proc;
	printf("is_python=%d\nversion=%d.%d.%d\nfree_threaded=%d\nversion_source=%s\nimage=%s\nstatic_exe=%d\n"
	       "nspid=%d\nother_mntns=%d\nremote_debug=%d\ngdb=%d\nauto_method=%s\nmain_thread=%s\n",
	       pi->is_python, pi->major, pi->minor, pi->micro, pi->free_threaded,
	       pi->version_source ? pi->version_source : "none", pi->image, pi->static_exe, (int)pi->nspid,
	       pi->other_mntns, p.remote_debug, p.gdb_available, inject_method_name(p.auto_method),
	       thread_name(p.main_thread));
	if (pyproc_check_supported(pi, err, sizeof err) != 0)
		printf("unsupported=%s\n", err);
	return 0;
}

/* The runtime directory pmt-top's rules pick here (not created). */
static int do_rundir(void)
{
	char dir[4096], err[512];
	if (sock_runtime_dir(dir, sizeof dir, false, err, sizeof err) < 0 && errno != ENOENT && errno != EPERM) {
		printf("error: %s\n", err);
		return 2;
	}
	printf("%s\n", dir);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "rundir") == 0)
		return do_rundir();
	if (argc < 3)
		return usage();
	if (strcmp(argv[1], "probe") == 0)
		return do_probe((pid_t)atoi(argv[2]));
	if (strcmp(argv[1], "inject") != 0)
		return usage();
	struct inject_req req = {.method = INJECT_AUTO, .timeout_ms = 10000};
	int i;
	for (i = 2; i < argc - 1; i += 2) {
		if (strcmp(argv[i], "--method") == 0) {
			int m = inject_method_from_name(argv[i + 1]);
			if (m < 0) {
				fprintf(stderr, "unknown method %s\n", argv[i + 1]);
				return 64;
			}
			req.method = (enum inject_method)m;
		} else if (strcmp(argv[i], "--timeout") == 0) {
			req.timeout_ms = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--agent") == 0) {
			req.agent_dir = argv[i + 1];
		} else if (strcmp(argv[i], "--native") == 0) {
			req.native_dir = argv[i + 1];
		} else if (strcmp(argv[i], "--gdb") == 0) {
			req.gdb = argv[i + 1];
		} else {
			break;
		}
	}
	if (i != argc - 1)
		return usage();
	req.pid = (pid_t)atoi(argv[i]);
	char err[512];
	struct inject *ij = inject_start(&req, err, sizeof err);
	if (!ij) {
		printf("result REFUSED: %s\n", err);
		return 2;
	}
	enum inject_state st, last = (enum inject_state)-1;
	char status[512], lastmsg[512] = "";
	for (;;) {
		int fd = inject_fd(ij);
		struct pollfd pfd = {fd, POLLIN, 0};
		poll(&pfd, fd >= 0 ? 1 : 0, 20);
		st = inject_poll(ij, status, sizeof status);
		if (st != last || strcmp(status, lastmsg) != 0) {
			printf("state %s: %s\n", state_name(st), status);
			fflush(stdout);
			last = st;
			snprintf(lastmsg, sizeof lastmsg, "%s", status);
		}
		if (st == INJECT_DONE || st == INJECT_FAILED)
			break;
	}
	struct inject_stats s;
	inject_get_stats(ij, &s);
	printf("stats method=%s way=%s elapsed_ms=%.1f child_ms=%.1f attached_ms=%.1f bootstrap_ms=%.1f\n",
	       inject_method_name(s.method), inject_way_name(s.way), s.elapsed_ms, s.child_ms, s.attached_ms,
	       s.bootstrap_ms);
	printf("result %s: %s\n", state_name(st), status);
	inject_free(ij);
	return st == INJECT_DONE ? 0 : 1;
}
