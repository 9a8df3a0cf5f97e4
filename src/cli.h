/*
 * cli.h - pmt-top's command line: parsing into a plain struct, and the help.
 *
 * Kept apart from main.c so it can be unit-tested: cli_parse never exits and
 * never prints; it reports a usage error as one sentence.
 */
#ifndef PMT_CLI_H
#define PMT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Exit codes (documented in --help). */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILURE = 1,   /* a runtime error (a file, a socket, ...) */
	CLI_EXIT_USAGE = 2,     /* bad command line */
	CLI_EXIT_NO_PROCESS = 3,/* no such process, or it exited before we could start */
	CLI_EXIT_PERMISSION = 4,/* the process is not ours to read or attach to */
	CLI_EXIT_NO_AGENT = 5,  /* no agent answers and none could be loaded */
};

enum cli_mode {
	CLI_WATCH,     /* pmt-top PID */
	CLI_RUN,       /* pmt-top run [OPTS] -- CMD ... */
	CLI_DEMO,      /* pmt-top demo */
	CLI_SNAPSHOT,  /* pmt-top snapshot PID */
	CLI_DIFF,      /* pmt-top diff OLD NEW */
	CLI_FUNCTIONS, /* pmt-top functions PID */
	CLI_PROFILE,   /* pmt-top profile PID */
	CLI_TRACE,     /* pmt-top trace PID start|stop|status */
	CLI_PS,        /* pmt-top ps PID|-p PID,... */
	CLI_RSS,       /* pmt-top rss PID: what the RSS is made of */
	CLI_TRIM,      /* pmt-top trim PID: malloc_trim, RSS before and after */
	CLI_TYPES,     /* pmt-top types PID: live objects by type */
	CLI_WHY,       /* pmt-top why PID --type NAME|--line FILE:LINE: what keeps them alive */
	CLI_HELP,
	CLI_VERSION,
};

/* What `pmt-top trace PID ACTION` does. */
enum cli_trace_action {
	CLI_TRACE_START,
	CLI_TRACE_STOP,
	CLI_TRACE_STATUS,
};

/* Frames for tracemalloc when started headless without a count: what the
 * interactive T chooser starts with (its first choice). */
#define CLI_TRACE_FRAMES_DEFAULT 1

/* --max-cost: the share of one core, in percent, that the views' automatic
 * refreshes may cost the target (tui/refresh.h), and its bounds. */
#define CLI_MAX_COST_DEFAULT 2.0
#define CLI_MAX_COST_MIN 0.1
#define CLI_MAX_COST_MAX 100.0

/* The most processes -p (or several PIDs) may name. */
#define CLI_MAX_PIDS 64

/* ps: how long the rates are measured when --duration is not given. */
#define CLI_PS_DURATION_DEFAULT 2.0

/* why --samples: objects followed when not given, and the most (the agent's). */
#define CLI_WHY_SAMPLES_DEFAULT 8
#define CLI_WHY_SAMPLES_MAX 64
/* The longest --type name and --line file, in characters (the agent's limits). */
#define CLI_WHY_TYPE_MAX 1024
#define CLI_WHY_FILE_MAX 4096

/* Watching a group (the Processes view): a PID with children is watched
 * with them unless --no-tree. */
enum cli_group {
	CLI_GROUP_AUTO,  /* with its children when it has any */
	CLI_GROUP_TREE,  /* --tree: the PID and its descendants, even none yet */
	CLI_GROUP_NONE,  /* --no-tree: this process only */
	CLI_GROUP_LIST,  /* -p PID,PID,... or several PIDs: these processes */
};

struct cli_opts {
	enum cli_mode mode;
	pid_t pid;                /* the process (a group's first or root) */
	enum cli_group group;     /* --tree, --no-tree, -p */
	pid_t pids[CLI_MAX_PIDS]; /* CLI_GROUP_LIST: the processes (pids[0] == pid) */
	int npids;
	double interval;          /* -i, seconds (not for profile: see profile_interval) */
	const char *theme;        /* --theme, NULL = default */
	bool ascii;               /* --ascii */
	double max_cost;          /* --max-cost PCT: refreshes' cap, percent of one core */
	bool no_inject;           /* --no-inject */
	const char *socket;       /* --socket PATH */
	const char *inject_method;/* --inject-method auto|pep768|remote-exec|gdb|direct */
	const char *key;          /* --key lineno|filename|traceback (profile: also function) */
	int top;                  /* --top N (profile: --limit N; types: 1-100000) */
	const char *output;       /* -o FILE */
	bool json;                /* --json */
	double duration;          /* --duration S */
	bool no_profile;          /* --no-profile: do not start the sampled profiler */
	bool no_native;           /* --no-native: the profiler without native hooks */
	uint64_t profile_interval;/* profile --interval BYTES; 0 = the agent's default */
	bool calls;               /* profile --calls: count calls per function */
	int trace;                /* --trace N: start tracemalloc with N frames (run/demo) */
	enum cli_trace_action trace_action; /* trace: start, stop or status */
	int frames;               /* trace start --frames N (1-100); 0 = CLI_TRACE_FRAMES_DEFAULT */
	int start_tracing;        /* snapshot --start-tracing[=N]: N frames (1-100); 0 = not asked */
	double wait;              /* snapshot --wait S: seconds to wait before taking it */
	const char *log;          /* --log FILE (run/demo: child's output) */
	char *const *argv;        /* run: the command */
	int argc;
	const char *diff_old, *diff_new; /* diff: the two files */
	const char *why_type;     /* why --type NAME; NULL with --line */
	const char *why_file;     /* why --line FILE:LINE: FILE, the first why_file_len */
	size_t why_file_len;      /*   bytes of the argument (not NUL-terminated there) */
	int why_line;             /*   and LINE, >= 1; 0 with --type */
	int samples;              /* why --samples N, 1-CLI_WHY_SAMPLES_MAX */
	char *const *load;        /* --load FILE...: snapshots to open */
	int nload;
};

/* Parse argv (argv[0] is the program). Returns 0, or -1 with a one-line
 * reason in err. Pointers in opts point into argv. */
int cli_parse(int argc, char *const argv[], struct cli_opts *opts, char *err, size_t errlen);

/* The --help text. */
const char *cli_help(void);

#endif
