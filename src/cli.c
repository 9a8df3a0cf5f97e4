/*
 * cli.c - command-line parsing for pmt-top (see cli.h).
 *
 * Hand-written rather than getopt_long: subcommands take positional arguments
 * in different places (`run` stops at "--"), and every mistake must come back as
 * one readable sentence instead of getopt's messages on stderr.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
"usage: pmt-top PID                       watch a running process (attach; inject the agent if needed)\n"
"       pmt-top run [OPTS] -- CMD ...     start CMD with the agent preloaded and watch it\n"
"       pmt-top demo                      run the bundled demo workload and watch it\n"
"       pmt-top snapshot PID [--key K] [--top N] [-o FILE] [--json] [--start-tracing[=N]] [--wait S]\n"
"       pmt-top snapshot --tree PID | -p PID,... [-o DIR] [...]\n"
"                                         every Python process of a service, taken together,\n"
"                                         and their sum (DIR/PID.json each, DIR/merged.json)\n"
"       pmt-top diff OLD.json NEW.json [--key K] [--top N] [--json]\n"
"       pmt-top diff OLD_DIR NEW_DIR [...]  two group snapshots: process by process, summed,\n"
"                                         with in how many processes each line grew\n"
"       pmt-top functions PID [--duration S] [--top N] [--json]\n"
"       pmt-top profile PID [--duration S] [--key K] [--limit N] [--interval BYTES] [--calls] [--json]\n"
"       pmt-top trace PID start [--frames N] | stop | status [--json]\n"
"                                         tracemalloc on (it stays on), off, or how it is\n"
"       pmt-top ps PID [--duration S] [--json]\n"
"                                         a process and its descendants: RSS and its growth\n"
"       pmt-top rss PID [--json]          what the RSS is made of: Python objects, allocator\n"
"                                         slack, native heap, malloc free, stacks, files\n"
"       pmt-top trim PID [--json]         give malloc's free memory back to the system\n"
"                                         (malloc_trim) and show the RSS before and after\n"
"       pmt-top types PID [--top N] [--json]\n"
"                                         live objects by type, largest first (of those the\n"
"                                         gc tracks: containers and class instances)\n"
"       pmt-top why PID (--type NAME | --line FILE:LINE) [--samples N] [--json]\n"
"                                         what keeps objects of a type, or allocated at a\n"
"                                         line, alive: reference chains from a module, class\n"
"                                         or thread to a few of them, grouped by holder\n"
"       pmt-top PID PID ... | -p PID,PID,...  watch these processes together\n"
"\n"
"options:\n"
"  -i, --interval S       sampling interval in seconds, 0.05 to 60 (default 0.5);\n"
"                         profile: mean bytes between samples, 1 to 1G (default 4K)\n"
"      --theme NAME       colour theme: dark (default), light, mono, or a file in themes/\n"
"      --ascii            draw with ASCII only (also used when the locale is not UTF-8)\n"
"      --max-cost PCT     what the Top and Functions views' refreshes may cost the\n"
"                         target, in % of one core, 0.1 to 100 (default 2): when one\n"
"                         is dear they come less often (r still refreshes at once)\n"
"      --tree             watch PID and its descendants (the Processes view), even\n"
"                         before it has any (default: when it has children);\n"
"                         snapshot: of each of them\n"
"      --no-tree          watch PID alone, even when it has children\n"
"  -p, --pids LIST        watch these processes together (PID,PID,...; up to 64)\n"
"      --no-inject        never load the agent into the target: RSS only\n"
"      --inject-method M  auto, pep768, remote-exec, gdb or direct (default auto)\n"
"      --socket PATH      the agent's socket, when it is not in the usual place\n"
"      --key K            grouping: lineno (default), filename or traceback;\n"
"                         profile: function (default), lineno, traceback or filename\n"
"      --top N            how many entries to print (default 20; snapshot, diff: 0 for all;\n"
"                         types: at most 100000)\n"
"      --limit N          profile: how many rows to print (default 20)\n"
"  -o, --output FILE      snapshot: write the whole snapshot to FILE (JSON); with\n"
"                         --tree or -p, a directory: PID.json each, merged.json\n"
"      --json             print JSON instead of a table\n"
"      --start-tracing[=N] snapshot: when tracemalloc is off, start it with N frames (default 1)\n"
"                         first; only allocations from then on are seen, and it stays on\n"
"      --wait S           snapshot: wait S seconds first (Ctrl-C ends the wait and still writes)\n"
"      --frames N         trace start: frames kept per allocation, 1 to 100 (default 1)\n"
"      --duration S       functions, profile: how long to watch (default 5);\n"
"                         ps: how long growth is measured (default 2)\n"
"      --calls            profile: also count calls (CALLS, RET/CALL, LARGEST)\n"
"      --type NAME        why: objects of this type, named as `types` prints it (module.Class)\n"
"      --line FILE:LINE   why: objects allocated at this line (tracemalloc must be on, and\n"
"                         only what was allocated since it started is found)\n"
"      --samples N        why: how many objects to follow, 1 to 64 (default 8)\n"
"      --no-profile       do not start the sampled allocation profiler on attach\n"
"      --no-native        the profiler leaves native code's malloc alone (no GOT hooks)\n"
"                         (profile: use tracemalloc instead)\n"
"      --trace N          run/demo: start tracemalloc at once with N frames\n"
"      --log FILE         run/demo: where the program's output goes\n"
"      --load FILE...     open saved snapshots in the Snapshots view\n"
"  -h, --help             this help\n"
"  -V, --version          the version\n"
"\n"
"what stays switched on in a target that goes on running:\n"
"  the agent, once loaded, stays (idle) so that the next command connects at once;\n"
"  PID, snapshot, functions, profile: nothing they switched on (the sampled profiler,\n"
"    the function tracer, tracemalloc); what was on before they came stays on;\n"
"  types, why: nothing: they switch nothing on and keep nothing after the reply;\n"
"  snapshot --start-tracing, trace start: tracemalloc, until `pmt-top trace PID stop`.\n"
"  When pmt-top cannot switch something off, it says what is left on and how.\n"
"\n"
"keys: ? or F1 in the program lists them all; q or F10 quits.\n"
"\n"
"environment: NO_COLOR (no colours), PMT_TOP_RUNTIME_DIR (where agent sockets live)\n"
"\n"
"exit status: 0 ok, 1 runtime error, 2 bad command line, 3 no such process,\n"
"             4 permission denied, 5 no agent could be reached or loaded\n";

const char *cli_help(void)
{
	return help_text;
}

static int parse_pid(const char *s, pid_t *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v <= 0 || v > INT_MAX) {
		snprintf(err, errlen, "\"%s\" is not a process id (a positive number)", s);
		return -1;
	}
	*out = (pid_t)v;
	return 0;
}

/* A number in [lo, hi]; `what` says what it counts ("seconds"). */
static int parse_double(const char *opt, const char *what, const char *s, double lo, double hi,
			double *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) {
		snprintf(err, errlen, "%s: expected %s from %g to %g, got \"%s\"", opt, what, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out,
		     char *err, size_t errlen)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
		snprintf(err, errlen, "%s: expected a whole number from %d to %d, got \"%s\"",
			 opt, lo, hi, s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* Bytes: a whole number with an optional K, KiB, M, MiB, G or GiB (x1024). */
static int parse_bytes(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out,
		       char *err, size_t errlen)
{
	static const struct { const char *suffix; unsigned shift; } units[] = {
		{ "", 0 }, { "B", 0 }, { "K", 10 }, { "k", 10 }, { "KiB", 10 }, { "M", 20 },
		{ "MiB", 20 }, { "G", 30 }, { "GiB", 30 },
	};
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	bool ok = *s >= '0' && *s <= '9' && errno == 0 && v <= hi;
	size_t k;
	for (k = 0; ok && k < sizeof units / sizeof units[0]; k++)
		if (strcmp(end, units[k].suffix) == 0)
			break;
	if (ok && k < sizeof units / sizeof units[0] && (v << units[k].shift) >> units[k].shift == v) {
		v <<= units[k].shift;
		if (v >= lo && v <= hi) {
			*out = v;
			return 0;
		}
	}
	snprintf(err, errlen, "%s: expected bytes from %llu to %llu (e.g. 4096, 64K or 1M), got \"%s\"",
		 opt, (unsigned long long)lo, (unsigned long long)hi, s);
	return -1;
}

static bool one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

/* Which options each mode accepts. */
enum {
	OK_WATCH = 1 << CLI_WATCH, OK_RUN = 1 << CLI_RUN, OK_DEMO = 1 << CLI_DEMO,
	OK_SNAP = 1 << CLI_SNAPSHOT, OK_DIFF = 1 << CLI_DIFF, OK_FUNC = 1 << CLI_FUNCTIONS,
	OK_PROF = 1 << CLI_PROFILE, OK_TRACE = 1 << CLI_TRACE, OK_PS = 1 << CLI_PS,
	OK_RSS = 1 << CLI_RSS, OK_TRIM = 1 << CLI_TRIM, OK_TYPES = 1 << CLI_TYPES, OK_WHY = 1 << CLI_WHY,
	OK_TUI = OK_WATCH | OK_RUN | OK_DEMO,
	OK_ATTACH = OK_WATCH | OK_SNAP | OK_FUNC | OK_PROF | OK_TRACE | OK_RSS | OK_TRIM | OK_TYPES |
		    OK_WHY,
};

/* The action word of `pmt-top trace`, or -1. */
static int trace_action(const char *s)
{
	static const struct { const char *name; enum cli_trace_action action; } actions[] = {
		{ "start", CLI_TRACE_START }, { "stop", CLI_TRACE_STOP }, { "status", CLI_TRACE_STATUS },
	};
	for (size_t k = 0; k < sizeof actions / sizeof actions[0]; k++)
		if (strcmp(s, actions[k].name) == 0)
			return (int)actions[k].action;
	return -1;
}

/*
 * `pmt-top trace PID ACTION` (ACTION PID is understood too) and the options
 * that only some actions take.
 */
static int finish_trace(struct cli_opts *o, const char *const pos[2], int npos, char *err,
			size_t errlen)
{
	int a0 = npos > 0 ? trace_action(pos[0]) : -1, a1 = npos > 1 ? trace_action(pos[1]) : -1;
	const char *pid;

	if (npos == 2 && (a0 >= 0 || a1 >= 0)) {
		pid = a1 >= 0 ? pos[0] : pos[1];
		o->trace_action = (enum cli_trace_action)(a1 >= 0 ? a1 : a0);
	} else if (npos == 2) {
		const char *bad = parse_pid(pos[0], &o->pid, err, errlen) == 0 ? pos[1] : pos[0];
		snprintf(err, errlen, "trace: unknown action \"%s\" (expected start, stop or status)", bad);
		return -1;
	} else if (npos == 1 && a0 < 0) {
		if (parse_pid(pos[0], &o->pid, err, errlen) == 0)
			snprintf(err, errlen, "trace needs an action after the PID: start, stop or status");
		return -1;
	} else {
		snprintf(err, errlen, "which process? `pmt-top trace PID start|stop|status`");
		return -1;
	}
	if (parse_pid(pid, &o->pid, err, errlen) < 0)
		return -1;
	if (o->frames && o->trace_action != CLI_TRACE_START) {
		snprintf(err, errlen, "--frames is only for `pmt-top trace PID start`");
		return -1;
	}
	if (o->json && o->trace_action != CLI_TRACE_STATUS) {
		snprintf(err, errlen, "--json is only for `pmt-top trace PID status`");
		return -1;
	}
	return 0;
}

/* Characters in the first LEN bytes of UTF-8 text (bytes that do not continue one). */
static size_t utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}

/* why --line FILE:LINE, split at the last colon (a file name may hold one). */
static int parse_file_line(const char *opt, const char *val, struct cli_opts *o, char *err, size_t errlen)
{
	const char *colon = strrchr(val, ':');
	char *end;
	errno = 0;
	long line = colon ? strtol(colon + 1, &end, 10) : 0;
	if (colon == NULL || colon == val || colon[1] < '0' || colon[1] > '9' || *end != '\0' ||
	    errno != 0 || line < 1 || line > INT_MAX) {
		snprintf(err, errlen, "%s: expected FILE:LINE with a line number from 1 (e.g. app/cache.py:42), "
			 "got \"%s\"", opt, val);
		return -1;
	}
	if (utf8_chars(val, (size_t)(colon - val)) > CLI_WHY_FILE_MAX) {
		snprintf(err, errlen, "%s: the file name is longer than %d characters", opt, CLI_WHY_FILE_MAX);
		return -1;
	}
	o->why_file = val;
	o->why_file_len = (size_t)(colon - val);
	o->why_line = (int)line;
	return 0;
}

/* `pmt-top why PID`: exactly one of --type and --line. */
static int finish_why(struct cli_opts *o, char *err, size_t errlen)
{
	if (o->why_type == NULL && o->why_file == NULL) {
		snprintf(err, errlen, "why needs what to look for: --type NAME (as `pmt-top types PID` "
			 "prints it) or --line FILE:LINE");
		return -1;
	}
	if (o->why_type != NULL && o->why_file != NULL) {
		snprintf(err, errlen, "give why either --type or --line, not both");
		return -1;
	}
	if (o->samples == 0)
		o->samples = CLI_WHY_SAMPLES_DEFAULT;
	return 0;
}

static int add_pid(struct cli_opts *o, pid_t pid, char *err, size_t errlen)
{
	for (int k = 0; k < o->npids; k++)
		if (o->pids[k] == pid)
			return 0; /* named twice: watched once */
	if (o->npids == CLI_MAX_PIDS) {
		snprintf(err, errlen, "at most %d processes at once", CLI_MAX_PIDS);
		return -1;
	}
	o->pids[o->npids++] = pid;
	return 0;
}

/* -p PID,PID,... (spaces allowed after commas). */
static int parse_pid_list(const char *val, struct cli_opts *o, char *err, size_t errlen)
{
	char item[32];
	const char *p = val;
	o->group = CLI_GROUP_LIST;
	for (;;) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, ",");
		if (len == 0 || len >= sizeof item) {
			snprintf(err, errlen, "-p: expected PID,PID,..., got \"%s\"", val);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		while (len > 0 && item[len - 1] == ' ')
			item[--len] = '\0';
		pid_t pid;
		if (parse_pid(item, &pid, err, errlen) < 0 || add_pid(o, pid, err, errlen) < 0)
			return -1;
		p += strcspn(p, ",");
		if (*p == '\0')
			return 0;
		p++;
	}
}

/* Several PIDs, or -p (not both), for watch and ps. */
static int finish_pids(struct cli_opts *o, const char *const *pos, int npos, char *err, size_t errlen)
{
	if (o->group == CLI_GROUP_LIST && npos > 0) {
		snprintf(err, errlen, "give the processes either as PIDs or with -p, not both");
		return -1;
	}
	if (o->group != CLI_GROUP_AUTO && o->group != CLI_GROUP_LIST) {
		snprintf(err, errlen, "--tree and --no-tree take one PID");
		return -1;
	}
	o->group = CLI_GROUP_LIST;
	for (int k = 0; k < npos; k++) {
		pid_t pid;
		if (parse_pid(pos[k], &pid, err, errlen) < 0 || add_pid(o, pid, err, errlen) < 0)
			return -1;
	}
	if (o->npids == 0) {
		snprintf(err, errlen, "which processes? -p PID,PID,...");
		return -1;
	}
	o->pid = o->pids[0];
	return 0;
}

int cli_parse(int argc, char *const argv[], struct cli_opts *o, char *err, size_t errlen)
{
	static const char *const keys[] = { "lineno", "filename", "traceback", NULL };
	static const char *const profile_keys[] = { "function", "lineno", "traceback", "filename", NULL };
	static const char *const methods[] = { "auto", "pep768", "remote-exec", "gdb", "direct", NULL };
	/* Positional arguments: two at most, but PIDs of a group for watch and ps. */
	const char *pos[CLI_MAX_PIDS + 1] = { NULL };
	int npos = 0;
	bool duration_set = false;

	memset(o, 0, sizeof *o);
	o->interval = 0.5;
	o->max_cost = CLI_MAX_COST_DEFAULT;
	o->top = 20;
	o->duration = 5;
	o->mode = CLI_WATCH;

	int i = 1;
	if (i < argc) {
		const char *cmd = argv[i];
		if (strcmp(cmd, "run") == 0)
			o->mode = CLI_RUN, i++;
		else if (strcmp(cmd, "demo") == 0)
			o->mode = CLI_DEMO, i++;
		else if (strcmp(cmd, "snapshot") == 0)
			o->mode = CLI_SNAPSHOT, i++;
		else if (strcmp(cmd, "diff") == 0)
			o->mode = CLI_DIFF, i++;
		else if (strcmp(cmd, "functions") == 0)
			o->mode = CLI_FUNCTIONS, i++;
		else if (strcmp(cmd, "profile") == 0)
			o->mode = CLI_PROFILE, i++;
		else if (strcmp(cmd, "trace") == 0)
			o->mode = CLI_TRACE, i++;
		else if (strcmp(cmd, "ps") == 0)
			o->mode = CLI_PS, i++;
		else if (strcmp(cmd, "rss") == 0)
			o->mode = CLI_RSS, i++;
		else if (strcmp(cmd, "trim") == 0)
			o->mode = CLI_TRIM, i++;
		else if (strcmp(cmd, "types") == 0)
			o->mode = CLI_TYPES, i++;
		else if (strcmp(cmd, "why") == 0)
			o->mode = CLI_WHY, i++;
	}

	for (; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		char name[64];

		if (strcmp(a, "--") == 0) {
			if (o->mode != CLI_RUN) {
				snprintf(err, errlen, "\"--\" is only for `pmt-top run -- CMD ...`");
				return -1;
			}
			o->argv = argv + i + 1;
			o->argc = argc - i - 1;
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			if (o->mode == CLI_RUN && npos == 0 && o->argv == NULL) {
				/* `pmt-top run python app.py` without "--" also works. */
				o->argv = argv + i;
				o->argc = argc - i;
				break;
			}
			int maxpos = o->mode == CLI_WATCH || o->mode == CLI_PS ? CLI_MAX_PIDS : 2;
			if (npos == maxpos) {
				if (maxpos == CLI_MAX_PIDS)
					snprintf(err, errlen, "at most %d processes at once", CLI_MAX_PIDS);
				else
					snprintf(err, errlen, "unexpected argument \"%s\"", a);
				return -1;
			}
			pos[npos++] = a;
			continue;
		}
		/* Split "--name=value". */
		const char *eq = strchr(a, '=');
		if (a[1] == '-' && eq) {
			snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
			val = eq + 1;
		} else {
			snprintf(name, sizeof name, "%s", a);
		}

		/* arg: 0 none, 1 required, 2 optional (only as --name=value). */
		struct { const char *s, *l; int arg; unsigned ok; } table[] = {
			{ "-h", "--help", 0, ~0u },
			{ "-V", "--version", 0, ~0u },
			{ "-i", "--interval", 1, OK_TUI | OK_PROF | OK_PS },
			{ NULL, "--theme", 1, OK_TUI },
			{ NULL, "--ascii", 0, OK_TUI },
			{ NULL, "--max-cost", 1, OK_TUI },
			{ NULL, "--no-inject", 0, OK_ATTACH },
			{ NULL, "--inject-method", 1, OK_ATTACH },
			{ NULL, "--socket", 1, OK_ATTACH },
			{ NULL, "--key", 1, OK_SNAP | OK_DIFF | OK_PROF },
			{ NULL, "--top", 1, OK_SNAP | OK_DIFF | OK_FUNC | OK_TYPES },
			{ NULL, "--limit", 1, OK_PROF },
			{ "-o", "--output", 1, OK_SNAP },
			{ NULL, "--json", 0, OK_SNAP | OK_DIFF | OK_FUNC | OK_PROF | OK_TRACE | OK_PS | OK_RSS | OK_TRIM |
						 OK_TYPES | OK_WHY },
			{ NULL, "--duration", 1, OK_FUNC | OK_PROF | OK_PS },
			{ NULL, "--tree", 0, OK_WATCH | OK_SNAP },
			{ NULL, "--no-tree", 0, OK_WATCH },
			{ "-p", "--pids", 1, OK_WATCH | OK_PS | OK_SNAP },
			{ NULL, "--calls", 0, OK_PROF },
			{ NULL, "--no-profile", 0, OK_TUI | OK_PROF },
			{ NULL, "--no-native", 0, OK_TUI | OK_PROF },
			{ NULL, "--trace", 1, OK_RUN | OK_DEMO },
			{ NULL, "--log", 1, OK_RUN | OK_DEMO },
			{ NULL, "--load", 0, OK_TUI },
			{ NULL, "--start-tracing", 2, OK_SNAP },
			{ NULL, "--wait", 1, OK_SNAP },
			{ NULL, "--frames", 1, OK_TRACE },
			{ NULL, "--type", 1, OK_WHY },
			{ NULL, "--line", 1, OK_WHY },
			{ NULL, "--samples", 1, OK_WHY },
		};
		size_t k;
		for (k = 0; k < sizeof table / sizeof table[0]; k++)
			if ((table[k].s && strcmp(name, table[k].s) == 0) || strcmp(name, table[k].l) == 0)
				break;
		if (k == sizeof table / sizeof table[0]) {
			snprintf(err, errlen, "unknown option \"%s\" (see pmt-top --help)", name);
			return -1;
		}
		const char *lname = table[k].l;
		if (!(table[k].ok & (1u << o->mode))) {
			if (strcmp(lname, "--start-tracing") == 0)
				snprintf(err, errlen, "--start-tracing is only for `pmt-top snapshot PID` (tracing "
					 "on its own: `pmt-top trace PID start`)");
			else if (strcmp(lname, "--wait") == 0)
				snprintf(err, errlen, "--wait is only for `pmt-top snapshot PID`");
			else if (strcmp(lname, "--frames") == 0)
				snprintf(err, errlen, "--frames is only for `pmt-top trace PID start` "
					 "(snapshot: --start-tracing=N)");
			else if (strcmp(lname, "--type") == 0 || strcmp(lname, "--line") == 0 ||
				 strcmp(lname, "--samples") == 0)
				snprintf(err, errlen, "%s is only for `pmt-top why PID`", lname);
			else
				snprintf(err, errlen, "%s does not apply here (see pmt-top --help)", lname);
			return -1;
		}
		if (table[k].arg == 1 && val == NULL) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a value", lname);
				return -1;
			}
			val = argv[++i];
		} else if (table[k].arg == 0 && val != NULL) {
			snprintf(err, errlen, "%s takes no value", lname);
			return -1;
		}

		if (strcmp(lname, "--help") == 0) {
			o->mode = CLI_HELP;
			return 0;
		} else if (strcmp(lname, "--version") == 0) {
			o->mode = CLI_VERSION;
			return 0;
		} else if (strcmp(lname, "--interval") == 0 && o->mode == CLI_PROFILE) {
			if (parse_bytes(lname, val, 1, (uint64_t)1 << 30, &o->profile_interval, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--interval") == 0) {
			if (parse_double(lname, "seconds", val, 0.05, 60, &o->interval, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--theme") == 0) {
			o->theme = val;
		} else if (strcmp(lname, "--ascii") == 0) {
			o->ascii = true;
		} else if (strcmp(lname, "--max-cost") == 0) {
			if (parse_double(lname, "a percentage of one core", val, CLI_MAX_COST_MIN,
					 CLI_MAX_COST_MAX, &o->max_cost, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--no-inject") == 0) {
			o->no_inject = true;
		} else if (strcmp(lname, "--inject-method") == 0) {
			if (!one_of(val, methods)) {
				snprintf(err, errlen, "--inject-method: expected auto, pep768, remote-exec, gdb or direct, got \"%s\"", val);
				return -1;
			}
			o->inject_method = val;
		} else if (strcmp(lname, "--socket") == 0) {
			o->socket = val;
		} else if (strcmp(lname, "--key") == 0 && o->mode == CLI_PROFILE) {
			if (!one_of(val, profile_keys)) {
				snprintf(err, errlen, "--key: expected function, lineno, traceback or filename, got \"%s\"", val);
				return -1;
			}
			o->key = val;
		} else if (strcmp(lname, "--key") == 0) {
			if (!one_of(val, keys)) {
				snprintf(err, errlen, "--key: expected lineno, filename or traceback, got \"%s\"", val);
				return -1;
			}
			o->key = val;
		} else if (strcmp(lname, "--top") == 0) {
			/* snapshot and diff print every group with 0 (docs/snapshots.md). */
			int lo = o->mode == CLI_SNAPSHOT || o->mode == CLI_DIFF ? 0 : 1;
			/* types: the agent's limit for its rows. */
			int hi = o->mode == CLI_TYPES ? 100000 : 1000000;
			if (parse_int(lname, val, lo, hi, &o->top, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--limit") == 0) {
			/* The agent's limit for a profile reply. */
			if (parse_int(lname, val, 1, 100000, &o->top, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--calls") == 0) {
			o->calls = true;
		} else if (strcmp(lname, "--no-profile") == 0) {
			o->no_profile = true;
		} else if (strcmp(lname, "--no-native") == 0) {
			o->no_native = true;
		} else if (strcmp(lname, "--output") == 0) {
			o->output = val;
		} else if (strcmp(lname, "--json") == 0) {
			o->json = true;
		} else if (strcmp(lname, "--duration") == 0) {
			if (parse_double(lname, "seconds", val, 0.1, 86400, &o->duration, err, errlen) < 0)
				return -1;
			duration_set = true;
		} else if (strcmp(lname, "--tree") == 0 || strcmp(lname, "--no-tree") == 0) {
			if (o->group != CLI_GROUP_AUTO) {
				snprintf(err, errlen, "--tree, --no-tree and -p go one at a time");
				return -1;
			}
			o->group = lname[2] == 't' ? CLI_GROUP_TREE : CLI_GROUP_NONE;
		} else if (strcmp(lname, "--pids") == 0) {
			if (o->group != CLI_GROUP_AUTO) {
				snprintf(err, errlen, "--tree, --no-tree and -p go one at a time");
				return -1;
			}
			if (parse_pid_list(val, o, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--trace") == 0) {
			if (parse_int(lname, val, 1, 100, &o->trace, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--log") == 0) {
			o->log = val;
		} else if (strcmp(lname, "--start-tracing") == 0) {
			o->start_tracing = CLI_TRACE_FRAMES_DEFAULT;
			if (val && parse_int(lname, val, 1, 100, &o->start_tracing, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--wait") == 0) {
			if (parse_double(lname, "seconds", val, 0, 86400, &o->wait, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--frames") == 0) {
			if (parse_int(lname, val, 1, 100, &o->frames, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--type") == 0) {
			size_t n = utf8_chars(val, strlen(val));
			if (n == 0 || n > CLI_WHY_TYPE_MAX) {
				snprintf(err, errlen, "--type: expected a class name of 1 to %d characters, as "
					 "`pmt-top types PID` prints it", CLI_WHY_TYPE_MAX);
				return -1;
			}
			o->why_type = val;
		} else if (strcmp(lname, "--line") == 0) {
			if (parse_file_line(lname, val, o, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--samples") == 0) {
			if (parse_int(lname, val, 1, CLI_WHY_SAMPLES_MAX, &o->samples, err, errlen) < 0)
				return -1;
		} else if (strcmp(lname, "--load") == 0) {
			/* Every following non-option argument is a file to load. */
			int first = i + 1, j = first;
			while (j < argc && argv[j][0] != '-')
				j++;
			if (j == first) {
				snprintf(err, errlen, "--load needs at least one snapshot file");
				return -1;
			}
			o->load = argv + first;
			o->nload = j - first;
			i = j - 1;
		}
	}

	if (o->mode == CLI_PS && !duration_set)
		o->duration = CLI_PS_DURATION_DEFAULT;
	switch (o->mode) {
	case CLI_TRACE:
		return finish_trace(o, pos, npos, err, errlen);
	case CLI_PS:
	case CLI_WATCH:
		if (o->group == CLI_GROUP_LIST || npos > 1)
			return finish_pids(o, pos, npos, err, errlen);
		if (o->mode == CLI_PS) {
			if (npos == 0) {
				snprintf(err, errlen, "which process? `pmt-top ps PID` (or -p PID,PID,...)");
				return -1;
			}
			return parse_pid(pos[0], &o->pid, err, errlen);
		}
		/* fall through */
	case CLI_SNAPSHOT:
		if (o->mode == CLI_SNAPSHOT && o->group == CLI_GROUP_LIST)
			return finish_pids(o, pos, npos, err, errlen);
		if (o->mode == CLI_SNAPSHOT && npos == 2 && o->start_tracing &&
		    parse_pid(pos[1], &(pid_t){ 0 }, err, errlen) == 0) {
			snprintf(err, errlen, "give the frames as --start-tracing=%s (one argument), not as a "
				 "second number", pos[1]);
			return -1;
		}
		if (o->mode == CLI_WATCH && npos == 0 && o->nload > 0)
			return 0; /* only saved snapshots to look at */
		/* fall through */
	case CLI_FUNCTIONS:
	case CLI_PROFILE:
	case CLI_RSS:
	case CLI_TRIM:
	case CLI_TYPES:
	case CLI_WHY:
		if (npos != 1) {
			snprintf(err, errlen, npos == 0 ? "which process? give a PID (see pmt-top --help)"
						       : "give one PID, not two");
			return -1;
		}
		if (parse_pid(pos[0], &o->pid, err, errlen) < 0)
			return -1;
		return o->mode == CLI_WHY ? finish_why(o, err, errlen) : 0;
	case CLI_DIFF:
		if (npos != 2) {
			snprintf(err, errlen, "diff needs two snapshot files: pmt-top diff OLD.json NEW.json");
			return -1;
		}
		o->diff_old = pos[0];
		o->diff_new = pos[1];
		return 0;
	case CLI_RUN:
		if (o->argc == 0) {
			snprintf(err, errlen, "run needs a command: pmt-top run -- python3 app.py");
			return -1;
		}
		return 0;
	case CLI_DEMO:
		if (npos != 0) {
			snprintf(err, errlen, "demo takes no arguments");
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}
