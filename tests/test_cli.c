/*
 * test_cli.c - command-line parsing: every mode, option values and ranges,
 * and the one-line errors for mistakes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"

#define ARGV(...) ((char *[]){ "pmt-top", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "pmt-top", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(o, err, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (o), (err), sizeof(err))

static void test_watch(void **state)
{
	(void)state;
	struct cli_opts o;
	char err[256];
	assert_int_equal(PARSE(&o, err, "1234"), 0);
	assert_int_equal(o.mode, CLI_WATCH);
	assert_int_equal(o.pid, 1234);
	assert_true(o.interval == 0.5);
	assert_int_equal(PARSE(&o, err, "-i", "0.05", "--ascii", "--theme", "light", "42"), 0);
	assert_true(o.interval == 0.05);
	assert_true(o.ascii);
	assert_string_equal(o.theme, "light");
	assert_int_equal(PARSE(&o, err, "--interval=60", "42"), 0);
	assert_true(o.interval == 60);
}

static void expect_err(int rc, const char *err, const char *needle)
{
	assert_int_equal(rc, -1);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
	assert_null(strchr(err, '\n'));
}

static void test_bad_input(void **state)
{
	(void)state;
	struct cli_opts o;
	char err[256];
	expect_err(PARSE(&o, err, "abc"), err, "\"abc\" is not a process id");
	expect_err(PARSE(&o, err, "-5"), err, "unknown option \"-5\"");
	expect_err(PARSE(&o, err, "0"), err, "not a process id");
	expect_err(PARSE(&o, err, "99999999999"), err, "not a process id");
	expect_err(PARSE(&o, err, "-i", "0.01", "1"), err, "--interval: expected seconds from 0.05 to 60");
	expect_err(PARSE(&o, err, "-i", "61", "1"), err, "0.05 to 60");
	expect_err(PARSE(&o, err, "-i", "nan", "1"), err, "0.05 to 60");
	expect_err(PARSE(&o, err, "-i"), err, "--interval needs a value");
	expect_err(PARSE(&o, err, "--bogus", "1"), err, "unknown option \"--bogus\"");
	expect_err(PARSE(&o, err, "--ascii=yes", "1"), err, "takes no value");
	expect_err(PARSE(&o, err, "snapshot", "1", "2"), err, "one PID");
	expect_err(PARSE(&o, err, "functions", "1", "2"), err, "one PID");
	expect_err(PARSE(&o, err, "--json", "1"), err, "--json does not apply here");
	cli_parse(1, (char *[]){ "pmt-top", NULL }, &o, err, sizeof err);
	assert_non_null(strstr(err, "which process?"));
}

static void test_subcommands(void **state)
{
	(void)state;
	struct cli_opts o;
	char err[256];
	assert_int_equal(PARSE(&o, err, "snapshot", "77", "--key", "traceback", "--top", "5", "-o", "x.json", "--json"), 0);
	assert_int_equal(o.mode, CLI_SNAPSHOT);
	assert_int_equal(o.pid, 77);
	assert_string_equal(o.key, "traceback");
	assert_int_equal(o.top, 5);
	assert_string_equal(o.output, "x.json");
	assert_true(o.json);
	expect_err(PARSE(&o, err, "snapshot", "77", "--key", "line"), err, "--key: expected lineno, filename or traceback");
	assert_int_equal(PARSE(&o, err, "snapshot", "77", "--top", "0"), 0); /* every group */
	assert_int_equal(o.top, 0);
	assert_int_equal(PARSE(&o, err, "diff", "a.json", "b.json", "--top", "0"), 0);
	assert_int_equal(o.top, 0);
	expect_err(PARSE(&o, err, "snapshot", "77", "--top", "-1"), err, "--top: expected a whole number from 0");
	expect_err(PARSE(&o, err, "functions", "77", "--top", "0"), err, "--top: expected a whole number from 1");

	assert_int_equal(PARSE(&o, err, "diff", "a.json", "b.json", "--top", "3"), 0);
	assert_int_equal(o.mode, CLI_DIFF);
	assert_string_equal(o.diff_old, "a.json");
	assert_string_equal(o.diff_new, "b.json");
	expect_err(PARSE(&o, err, "diff", "a.json"), err, "diff needs two snapshot files");

	assert_int_equal(PARSE(&o, err, "functions", "9", "--duration", "2.5"), 0);
	assert_true(o.duration == 2.5);
	expect_err(PARSE(&o, err, "functions", "9", "--duration", "0"), err, "--duration");

	assert_int_equal(PARSE(&o, err, "run", "--trace", "5", "--", "python3", "-c", "pass"), 0);
	assert_int_equal(o.mode, CLI_RUN);
	assert_int_equal(o.trace, 5);
	assert_int_equal(o.argc, 3);
	assert_string_equal(o.argv[0], "python3");
	assert_string_equal(o.argv[2], "pass");
	assert_int_equal(PARSE(&o, err, "run", "python3", "app.py", "--flag"), 0);
	assert_int_equal(o.argc, 3);
	assert_string_equal(o.argv[2], "--flag"); /* the program's own option */
	expect_err(PARSE(&o, err, "run", "--"), err, "run needs a command");

	assert_int_equal(PARSE(&o, err, "demo"), 0);
	assert_int_equal(o.mode, CLI_DEMO);
	expect_err(PARSE(&o, err, "demo", "1"), err, "demo takes no arguments");

	assert_int_equal(PARSE(&o, err, "--load", "a.json", "b.json"), 0);
	assert_int_equal(o.nload, 2);
	assert_int_equal(o.pid, 0);

	assert_int_equal(PARSE(&o, err, "--inject-method", "gdb", "5"), 0);
	assert_string_equal(o.inject_method, "gdb");
	expect_err(PARSE(&o, err, "--inject-method", "ptrace", "5"), err, "--inject-method: expected auto");

	assert_int_equal(PARSE(&o, err, "profile", "12"), 0);
	assert_int_equal(o.mode, CLI_PROFILE);
	assert_int_equal(o.pid, 12);
	assert_null(o.key); /* function */
	assert_true(o.duration == 5);
	assert_int_equal(o.top, 20);
	assert_int_equal(o.profile_interval, 0);
	assert_false(o.calls);
	assert_false(o.no_profile);
	assert_int_equal(PARSE(&o, err, "profile", "12", "--duration", "2", "--key", "traceback", "--limit", "7",
			       "--interval", "64K", "--calls", "--json", "--no-profile"), 0);
	assert_true(o.duration == 2);
	assert_string_equal(o.key, "traceback");
	assert_int_equal(o.top, 7);
	assert_int_equal(o.profile_interval, 65536);
	assert_true(o.calls);
	assert_true(o.json);
	assert_true(o.no_profile);
	assert_true(o.interval == 0.5); /* the seconds interval is untouched */
	assert_int_equal(PARSE(&o, err, "profile", "12", "--key", "function", "-i", "1"), 0);
	assert_string_equal(o.key, "function");
	assert_int_equal(o.profile_interval, 1);
	assert_int_equal(PARSE(&o, err, "profile", "12", "--interval=1GiB"), 0);
	assert_int_equal(o.profile_interval, 1u << 30);
	assert_int_equal(PARSE(&o, err, "profile", "12", "--interval", "4096"), 0);
	assert_int_equal(o.profile_interval, 4096);
	expect_err(PARSE(&o, err, "profile", "12", "--key", "bogus"), err,
		   "--key: expected function, lineno, traceback or filename, got \"bogus\"");
	expect_err(PARSE(&o, err, "snapshot", "12", "--key", "function"), err, "--key: expected lineno, filename or traceback");
	expect_err(PARSE(&o, err, "profile", "12", "--interval", "0"), err, "--interval: expected bytes from 1 to 1073741824");
	expect_err(PARSE(&o, err, "profile", "12", "--interval", "2G"), err, "--interval: expected bytes");
	expect_err(PARSE(&o, err, "profile", "12", "--interval", "-4"), err, "--interval: expected bytes");
	expect_err(PARSE(&o, err, "profile", "12", "--interval", "4X"), err, "--interval: expected bytes");
	expect_err(PARSE(&o, err, "profile", "12", "--interval", "99999999999999999999K"), err, "--interval: expected bytes");
	expect_err(PARSE(&o, err, "profile", "12", "--limit", "0"), err, "--limit: expected a whole number from 1 to 100000");
	expect_err(PARSE(&o, err, "profile", "12", "--duration", "0"), err, "--duration");
	expect_err(PARSE(&o, err, "profile", "12", "--top", "3"), err, "--top does not apply here");
	expect_err(PARSE(&o, err, "profile", "12", "--calls=yes"), err, "--calls takes no value");
	expect_err(PARSE(&o, err, "profile"), err, "which process?");
	expect_err(PARSE(&o, err, "snapshot", "12", "--calls"), err, "--calls does not apply here");
	expect_err(PARSE(&o, err, "snapshot", "12", "--no-profile"), err, "--no-profile does not apply here");
	assert_int_equal(PARSE(&o, err, "--no-profile", "5"), 0);
	assert_int_equal(o.mode, CLI_WATCH);
	assert_true(o.no_profile);
	assert_false(o.no_native);
	assert_int_equal(PARSE(&o, err, "--no-native", "5"), 0);
	assert_true(o.no_native);
	assert_int_equal(PARSE(&o, err, "profile", "5", "--no-native"), 0);
	assert_true(o.no_native);
	expect_err(PARSE(&o, err, "snapshot", "12", "--no-native"), err, "--no-native does not apply here");
	assert_int_equal(PARSE(&o, err, "run", "--no-profile", "--", "python3"), 0);
	assert_true(o.no_profile);

	assert_int_equal(PARSE(&o, err, "--version"), 0);
	assert_int_equal(o.mode, CLI_VERSION);
	assert_int_equal(PARSE(&o, err, "-h"), 0);
	assert_int_equal(o.mode, CLI_HELP);
	assert_non_null(strstr(cli_help(), "exit status"));
}

/* --max-cost: the share of a core the views' refreshes may cost the target. */
static void test_max_cost(void **state)
{
	(void)state;
	struct cli_opts o;
	char err[256];
	assert_int_equal(PARSE(&o, err, "1234"), 0);
	assert_true(o.max_cost == CLI_MAX_COST_DEFAULT);
	assert_true(o.max_cost == 2.0);
	assert_int_equal(PARSE(&o, err, "--max-cost", "0.5", "1234"), 0);
	assert_true(o.max_cost == 0.5);
	assert_int_equal(o.pid, 1234);
	assert_int_equal(PARSE(&o, err, "--max-cost=0.1", "1234"), 0);
	assert_true(o.max_cost == 0.1);
	assert_int_equal(PARSE(&o, err, "1234", "--max-cost", "100"), 0);
	assert_true(o.max_cost == 100);
	assert_int_equal(PARSE(&o, err, "run", "--max-cost", "10", "--", "python3", "app.py"), 0);
	assert_true(o.max_cost == 10);
	assert_int_equal(PARSE(&o, err, "demo", "--max-cost", "5"), 0);
	assert_true(o.max_cost == 5);

	expect_err(PARSE(&o, err, "--max-cost", "0.05", "1"), err,
		   "--max-cost: expected a percentage of one core from 0.1 to 100, got \"0.05\"");
	expect_err(PARSE(&o, err, "--max-cost", "0", "1"), err, "from 0.1 to 100");
	expect_err(PARSE(&o, err, "--max-cost", "101", "1"), err, "from 0.1 to 100");
	expect_err(PARSE(&o, err, "--max-cost", "-2", "1"), err, "from 0.1 to 100");
	expect_err(PARSE(&o, err, "--max-cost", "nan", "1"), err, "from 0.1 to 100");
	expect_err(PARSE(&o, err, "--max-cost", "2%", "1"), err, "got \"2%\"");
	expect_err(PARSE(&o, err, "--max-cost", "", "1"), err, "got \"\"");
	expect_err(PARSE(&o, err, "1", "--max-cost"), err, "--max-cost needs a value");
	expect_err(PARSE(&o, err, "snapshot", "1", "--max-cost", "5"), err, "--max-cost does not apply here");
	expect_err(PARSE(&o, err, "profile", "1", "--max-cost", "5"), err, "--max-cost does not apply here");
	assert_non_null(strstr(cli_help(), "--max-cost PCT"));
}

static void test_trace(void **state)
{
	(void)state;
	struct cli_opts o;
	char err[256];
	assert_int_equal(PARSE(&o, err, "trace", "42", "start"), 0);
	assert_int_equal(o.mode, CLI_TRACE);
	assert_int_equal(o.pid, 42);
	assert_int_equal(o.trace_action, CLI_TRACE_START);
	assert_int_equal(o.frames, 0); /* CLI_TRACE_FRAMES_DEFAULT */
	assert_int_equal(PARSE(&o, err, "trace", "42", "start", "--frames", "25", "--no-inject"), 0);
	assert_int_equal(o.frames, 25);
	assert_true(o.no_inject);
	assert_int_equal(PARSE(&o, err, "trace", "--frames=100", "42", "start"), 0);
	assert_int_equal(o.frames, 100);
	assert_int_equal(PARSE(&o, err, "trace", "stop", "42"), 0); /* the other order too */
	assert_int_equal(o.trace_action, CLI_TRACE_STOP);
	assert_int_equal(o.pid, 42);
	assert_int_equal(PARSE(&o, err, "trace", "42", "status", "--json", "--socket", "/x.sock"), 0);
	assert_int_equal(o.trace_action, CLI_TRACE_STATUS);
	assert_true(o.json);
	assert_string_equal(o.socket, "/x.sock");

	expect_err(PARSE(&o, err, "trace"), err, "which process? `pmt-top trace PID start|stop|status`");
	expect_err(PARSE(&o, err, "trace", "start"), err, "which process?");
	expect_err(PARSE(&o, err, "trace", "42"), err, "trace needs an action after the PID: start, stop or status");
	expect_err(PARSE(&o, err, "trace", "42", "begin"), err, "trace: unknown action \"begin\"");
	expect_err(PARSE(&o, err, "trace", "begin", "42"), err, "trace: unknown action \"begin\"");
	expect_err(PARSE(&o, err, "trace", "x", "start"), err, "\"x\" is not a process id");
	expect_err(PARSE(&o, err, "trace", "42", "start", "stop"), err, "unexpected argument \"stop\"");
	expect_err(PARSE(&o, err, "trace", "42", "start", "--frames", "0"), err,
		   "--frames: expected a whole number from 1 to 100, got \"0\"");
	expect_err(PARSE(&o, err, "trace", "42", "start", "--frames", "101"), err, "from 1 to 100");
	expect_err(PARSE(&o, err, "trace", "42", "start", "--frames"), err, "--frames needs a value");
	expect_err(PARSE(&o, err, "trace", "42", "stop", "--frames", "5"), err,
		   "--frames is only for `pmt-top trace PID start`");
	expect_err(PARSE(&o, err, "trace", "42", "start", "--json"), err,
		   "--json is only for `pmt-top trace PID status`");
	expect_err(PARSE(&o, err, "trace", "42", "start", "--start-tracing"), err,
		   "--start-tracing is only for `pmt-top snapshot PID`");
	expect_err(PARSE(&o, err, "trace", "42", "status", "--wait", "1"), err, "--wait is only for `pmt-top snapshot PID`");
	expect_err(PARSE(&o, err, "trace", "42", "start", "--top", "3"), err, "--top does not apply here");
	expect_err(PARSE(&o, err, "snapshot", "42", "--frames", "3"), err,
		   "--frames is only for `pmt-top trace PID start` (snapshot: --start-tracing=N)");
}

/* Groups: pmt-top PID PID, -p, --tree, --no-tree, and `ps`. */
static void test_groups(void **state)
{
	(void)state;
	struct cli_opts o;
	char err[256];
	assert_int_equal(PARSE(&o, err, "10", "20", "30"), 0);
	assert_int_equal(o.mode, CLI_WATCH);
	assert_int_equal(o.group, CLI_GROUP_LIST);
	assert_int_equal(o.npids, 3);
	assert_int_equal(o.pid, 10);
	assert_int_equal(o.pids[2], 30);
	assert_int_equal(PARSE(&o, err, "-p", "7, 8,7,9"), 0);
	assert_int_equal(o.group, CLI_GROUP_LIST);
	assert_int_equal(o.npids, 3); /* 7 named twice counts once */
	assert_int_equal(o.pids[1], 8);
	assert_int_equal(PARSE(&o, err, "--pids=5"), 0);
	assert_int_equal(o.npids, 1);
	assert_int_equal(o.pid, 5);
	assert_int_equal(PARSE(&o, err, "--tree", "4"), 0);
	assert_int_equal(o.group, CLI_GROUP_TREE);
	assert_int_equal(o.pid, 4);
	assert_int_equal(PARSE(&o, err, "4", "--no-tree"), 0);
	assert_int_equal(o.group, CLI_GROUP_NONE);
	assert_int_equal(PARSE(&o, err, "4"), 0);
	assert_int_equal(o.group, CLI_GROUP_AUTO);

	assert_int_equal(PARSE(&o, err, "ps", "4"), 0);
	assert_int_equal(o.mode, CLI_PS);
	assert_int_equal(o.pid, 4);
	assert_true(o.duration == CLI_PS_DURATION_DEFAULT);
	assert_int_equal(PARSE(&o, err, "ps", "4", "--json", "--duration", "0.5", "-i", "0.1"), 0);
	assert_true(o.json && o.duration == 0.5 && o.interval == 0.1);
	assert_int_equal(PARSE(&o, err, "ps", "-p", "4,5"), 0);
	assert_int_equal(o.group, CLI_GROUP_LIST);
	assert_int_equal(o.npids, 2);

	expect_err(PARSE(&o, err, "-p", "4,", "x"), err, "-p: expected PID,PID");
	expect_err(PARSE(&o, err, "-p", "4,,5"), err, "-p: expected PID,PID");
	expect_err(PARSE(&o, err, "-p", "4,x"), err, "\"x\" is not a process id");
	expect_err(PARSE(&o, err, "-p", "4", "5"), err, "either as PIDs or with -p");
	expect_err(PARSE(&o, err, "--tree", "4", "5"), err, "--tree and --no-tree take one PID");
	expect_err(PARSE(&o, err, "--tree", "--no-tree", "4"), err, "one at a time");
	expect_err(PARSE(&o, err, "ps"), err, "which process?");
	expect_err(PARSE(&o, err, "ps", "4", "--tree"), err, "--tree does not apply here");
	expect_err(PARSE(&o, err, "functions", "-p", "4,5"), err, "--pids does not apply here");
	expect_err(PARSE(&o, err, "snapshot", "--no-tree", "4"), err, "--no-tree does not apply here");
	/* A group snapshot: the tree of one PID, or a list. */
	assert_int_equal(PARSE(&o, err, "snapshot", "--tree", "4", "-o", "dir"), 0);
	assert_int_equal(o.mode, CLI_SNAPSHOT);
	assert_int_equal(o.group, CLI_GROUP_TREE);
	assert_int_equal(o.pid, 4);
	assert_int_equal(PARSE(&o, err, "snapshot", "-p", "4,5"), 0);
	assert_int_equal(o.group, CLI_GROUP_LIST);
	assert_int_equal(o.npids, 2);
	expect_err(PARSE(&o, err, "snapshot", "-p", "4,5", "6"), err, "either as PIDs or with -p");
	char *many[CLI_MAX_PIDS + 3];
	char num[CLI_MAX_PIDS + 1][8];
	many[0] = "pmt-top";
	for (int k = 0; k <= CLI_MAX_PIDS; k++) {
		snprintf(num[k], sizeof num[k], "%d", k + 1);
		many[k + 1] = num[k];
	}
	many[CLI_MAX_PIDS + 2] = NULL;
	expect_err(cli_parse(CLI_MAX_PIDS + 2, many, &o, err, sizeof err), err, "at most 64 processes");
	assert_int_equal(cli_parse(CLI_MAX_PIDS + 1, many, &o, err, sizeof err), 0);
	assert_int_equal(o.npids, CLI_MAX_PIDS);
}

static void test_snapshot_start_tracing(void **state)
{
	(void)state;
	struct cli_opts o;
	char err[256];
	assert_int_equal(PARSE(&o, err, "snapshot", "42"), 0);
	assert_int_equal(o.start_tracing, 0);
	assert_true(o.wait == 0);
	assert_int_equal(PARSE(&o, err, "snapshot", "42", "--start-tracing"), 0);
	assert_int_equal(o.start_tracing, CLI_TRACE_FRAMES_DEFAULT);
	assert_int_equal(PARSE(&o, err, "snapshot", "42", "--start-tracing=10", "--wait", "2.5", "--json"), 0);
	assert_int_equal(o.start_tracing, 10);
	assert_true(o.wait == 2.5);
	assert_int_equal(PARSE(&o, err, "snapshot", "--wait=0", "42"), 0);
	assert_true(o.wait == 0);

	expect_err(PARSE(&o, err, "snapshot", "42", "--start-tracing=0"), err,
		   "--start-tracing: expected a whole number from 1 to 100, got \"0\"");
	expect_err(PARSE(&o, err, "snapshot", "42", "--start-tracing=101"), err, "from 1 to 100");
	expect_err(PARSE(&o, err, "snapshot", "42", "--start-tracing="), err, "--start-tracing: expected");
	expect_err(PARSE(&o, err, "snapshot", "42", "--start-tracing", "5"), err,
		   "give the frames as --start-tracing=5 (one argument)");
	expect_err(PARSE(&o, err, "snapshot", "42", "--wait", "-1"), err,
		   "--wait: expected seconds from 0 to 86400, got \"-1\"");
	expect_err(PARSE(&o, err, "snapshot", "42", "--wait", "soon"), err, "--wait: expected seconds");
	expect_err(PARSE(&o, err, "snapshot", "42", "--wait"), err, "--wait needs a value");
	/* Only snapshot takes them. */
	expect_err(PARSE(&o, err, "42", "--start-tracing"), err, "--start-tracing is only for `pmt-top snapshot PID`");
	expect_err(PARSE(&o, err, "profile", "42", "--start-tracing=3"), err, "--start-tracing is only for");
	expect_err(PARSE(&o, err, "functions", "42", "--start-tracing"), err, "--start-tracing is only for");
	expect_err(PARSE(&o, err, "run", "--start-tracing", "--", "python3"), err, "--start-tracing is only for");
	expect_err(PARSE(&o, err, "diff", "a.json", "b.json", "--wait", "1"), err, "--wait is only for");
	/* The help says what each command leaves on. */
	assert_non_null(strstr(cli_help(), "pmt-top trace PID start [--frames N] | stop | status [--json]"));
	assert_non_null(strstr(cli_help(), "what stays switched on"));
	assert_non_null(strstr(cli_help(), "until `pmt-top trace PID stop`"));
}

/* The heap walks: `types PID` and `why PID --type NAME | --line FILE:LINE`. */
static void test_heap(void **state)
{
	(void)state;
	struct cli_opts o;
	char err[256];
	assert_int_equal(PARSE(&o, err, "types", "42"), 0);
	assert_int_equal(o.mode, CLI_TYPES);
	assert_int_equal(o.pid, 42);
	assert_int_equal(o.top, 20);
	assert_false(o.json);
	assert_int_equal(PARSE(&o, err, "types", "42", "--top", "100000", "--json", "--no-inject", "--socket", "/s"), 0);
	assert_int_equal(o.top, 100000);
	assert_true(o.json && o.no_inject);
	assert_string_equal(o.socket, "/s");
	expect_err(PARSE(&o, err, "types", "42", "--top", "100001"), err,
		   "--top: expected a whole number from 1 to 100000, got \"100001\"");
	expect_err(PARSE(&o, err, "types", "42", "--top", "0"), err, "--top: expected a whole number from 1");
	expect_err(PARSE(&o, err, "types"), err, "which process?");
	expect_err(PARSE(&o, err, "types", "42", "43"), err, "give one PID, not two");
	expect_err(PARSE(&o, err, "types", "x"), err, "\"x\" is not a process id");
	expect_err(PARSE(&o, err, "types", "42", "--type", "dict"), err, "--type is only for `pmt-top why PID`");
	expect_err(PARSE(&o, err, "types", "42", "--limit", "3"), err, "--limit does not apply here");

	assert_int_equal(PARSE(&o, err, "why", "42", "--type", "app.Record"), 0);
	assert_int_equal(o.mode, CLI_WHY);
	assert_int_equal(o.pid, 42);
	assert_string_equal(o.why_type, "app.Record");
	assert_null(o.why_file);
	assert_int_equal(o.why_line, 0);
	assert_int_equal(o.samples, CLI_WHY_SAMPLES_DEFAULT);
	assert_int_equal(PARSE(&o, err, "why", "--line", "app/cache.py:42", "7", "--samples", "64", "--json"), 0);
	assert_int_equal(o.pid, 7);
	assert_null(o.why_type);
	assert_int_equal(o.why_file_len, strlen("app/cache.py"));
	assert_memory_equal(o.why_file, "app/cache.py", o.why_file_len);
	assert_int_equal(o.why_line, 42);
	assert_int_equal(o.samples, 64);
	assert_true(o.json);
	/* A file name may hold a colon: the line is after the last one. */
	assert_int_equal(PARSE(&o, err, "why", "7", "--line=C:/srv/app.py:2147483647", "--samples=1"), 0);
	assert_int_equal(o.why_file_len, strlen("C:/srv/app.py"));
	assert_int_equal(o.why_line, 2147483647);
	assert_int_equal(o.samples, 1);

	expect_err(PARSE(&o, err, "why", "7"), err, "why needs what to look for: --type NAME");
	expect_err(PARSE(&o, err, "why", "7", "--type", "a.B", "--line", "a.py:3"), err,
		   "give why either --type or --line, not both");
	expect_err(PARSE(&o, err, "why", "--type", "a.B"), err, "which process?");
	expect_err(PARSE(&o, err, "why", "7", "--type", ""), err, "--type: expected a class name of 1 to 1024 characters");
	expect_err(PARSE(&o, err, "why", "7", "--type"), err, "--type needs a value");
	static char *const bad_lines[] = { "app.py", "app.py:", ":3", "app.py:0", "app.py:-3", "app.py:+3",
		"app.py:3x", "app.py: 3", "app.py:2147483648", "app.py:99999999999999999999" };
	for (size_t k = 0; k < sizeof bad_lines / sizeof bad_lines[0]; k++) {
		expect_err(PARSE(&o, err, "why", "7", "--line", bad_lines[k]), err,
			   "--line: expected FILE:LINE with a line number from 1");
		assert_non_null(strstr(err, bad_lines[k]));
	}
	expect_err(PARSE(&o, err, "why", "7", "--type", "a.B", "--samples", "0"), err,
		   "--samples: expected a whole number from 1 to 64, got \"0\"");
	expect_err(PARSE(&o, err, "why", "7", "--type", "a.B", "--samples", "65"), err, "from 1 to 64");
	expect_err(PARSE(&o, err, "why", "7", "--type", "a.B", "--top", "3"), err, "--top does not apply here");
	expect_err(PARSE(&o, err, "snapshot", "7", "--samples", "3"), err, "--samples is only for `pmt-top why PID`");
	expect_err(PARSE(&o, err, "7", "--line", "a.py:3"), err, "--line is only for `pmt-top why PID`");

	/* The agent's limits on a name and a path, in characters, not bytes. */
	char name[CLI_WHY_TYPE_MAX * 2 + 2], line[CLI_WHY_FILE_MAX + 8];
	for (int k = 0; k < CLI_WHY_TYPE_MAX; k++)
		memcpy(name + 2 * k, "\xc3\xa9", 2);
	name[2 * CLI_WHY_TYPE_MAX] = '\0';
	assert_int_equal(PARSE(&o, err, "why", "7", "--type", name), 0);
	strcat(name, "e");
	expect_err(PARSE(&o, err, "why", "7", "--type", name), err, "1 to 1024 characters");
	memset(line, 'a', CLI_WHY_FILE_MAX);
	strcpy(line + CLI_WHY_FILE_MAX, ":1");
	assert_int_equal(PARSE(&o, err, "why", "7", "--line", line), 0);
	memmove(line + 1, line, strlen(line) + 1);
	expect_err(PARSE(&o, err, "why", "7", "--line", line), err, "--line: the file name is longer than 4096 characters");

	assert_non_null(strstr(cli_help(), "pmt-top types PID [--top N] [--json]"));
	assert_non_null(strstr(cli_help(), "pmt-top why PID (--type NAME | --line FILE:LINE) [--samples N] [--json]"));
	assert_non_null(strstr(cli_help(), "--samples N"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_subcommands),
		cmocka_unit_test(test_max_cost),
		cmocka_unit_test(test_trace),
		cmocka_unit_test(test_snapshot_start_tracing),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_heap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
