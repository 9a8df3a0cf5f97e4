/*
 * group.h - the RSS of every process of a service (a master and its workers),
 * from one thread.
 *
 * The group is either a process and all its descendants (found again every
 * second: workers that exit drop out, respawned ones come in) or a fixed list
 * of pids. One thread preads each member's held /proc/PID/statm every
 * interval: a held fd goes bad when its process exits, so a pid that the
 * kernel hands out again is a new member, never the old one's continuation.
 * A member that exited stays in the table, marked, for GROUP_GONE_KEEP
 * seconds, so that the user sees it go.
 *
 * The thread keeps the table; the user (the UI thread, a headless command)
 * copies it out with group_read() when the wake fd polls readable. Nothing
 * here attaches to anything: it is /proc only, for any user's processes
 * that /proc lets us read.
 */
#ifndef PMT_PROC_GROUP_H
#define PMT_PROC_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GROUP_MAX_MEMBERS 256 /* more are counted (group_table.unwatched), not watched */
#define GROUP_HIST 128        /* points of RSS kept per member */
#define GROUP_RATE_WINDOW 60.0 /* seconds over which the growth rate is fitted */
#define GROUP_GONE_KEEP 10.0  /* seconds an exited member stays in the table */
#define GROUP_RESCAN 1.0      /* seconds between looks for new members (at least) */

enum group_role {
	GROUP_ROLE_MAIN,   /* the root, with no children */
	GROUP_ROLE_MASTER, /* a member with children in the group */
	GROUP_ROLE_WORKER, /* a member with none */
};

struct group_point {
	double t;     /* monotonic seconds */
	uint64_t rss; /* bytes */
};

struct group_member {
	pid_t pid, ppid;
	int depth;                       /* 0: the root (tree mode) */
	unsigned long long start_ticks;  /* identity, with the pid */
	double started;                  /* monotonic time it started (may be < 0) */
	enum group_role role;
	int python;                      /* 1 CPython, 0 not, -1 unknown (permission) */
	int py_minor;                    /* 3.x, 0 when unknown */
	bool gone;                       /* it exited */
	double gone_t;
	char comm[64];
	char cmdline[256];               /* display-safe */
	uint64_t rss;
	double rate;                     /* bytes per minute fitted over GROUP_RATE_WINDOW; NAN
	                                  * until two points a second apart */
	struct group_point hist[GROUP_HIST]; /* oldest first */
	size_t nhist;
};

/* A copy of the table, owned by its reader. */
struct group_table {
	struct group_member *m;
	size_t n, cap;
	uint64_t total_rss;     /* of the members still running */
	size_t running;
	double t;               /* when it was sampled (monotonic) */
	unsigned long seq;      /* counts the samplings */
	size_t unwatched;       /* members found beyond GROUP_MAX_MEMBERS */
	bool root_gone;         /* tree mode: the root exited */
};

struct group;

/*
 * A group: ROOT and its descendants when TREE, else the NPIDS pids of PIDS.
 * PROC is the /proc to read (NULL: "/proc"). Returns NULL with a one-line
 * reason in ERR when no member can be read (*NO_PROCESS says whether it is
 * because none exists). Takes the first sample; starts no thread.
 */
struct group *group_new(const char *proc, bool tree, pid_t root, const pid_t *pids, size_t npids,
			double interval, bool *no_process, char *err, size_t errlen);

/* One round of work, for headless users and tests (no thread): a look for
 * new members when due, then a sample of each. */
void group_step(struct group *g);

/* Starts the thread (which then does the rounds). Returns 0 or -1 (errno). */
int group_start(struct group *g);
void group_set_interval(struct group *g, double seconds);
/* Polls readable when a new table waits. */
int group_wake_fd(const struct group *g);
/* Copies the newest table into T (its array grows as needed) and clears the
 * wake fd. Returns true when it is newer than the one T held. */
bool group_read(struct group *g, struct group_table *t);
void group_table_done(struct group_table *t);
/* Stops the thread, closes everything. NULL ok. */
void group_free(struct group *g);

/* The growth rate, bytes per minute, of the N points of H (oldest first)
 * that lie within WINDOW seconds of the newest: a least-squares fit. NAN
 * when they span less than a second. */
double group_rate(const struct group_point *h, size_t n, double window);

/* Sorts T's members: the fastest growing first (unknown rates last), then the
 * largest, exited ones at the end. */
void group_sort(struct group_table *t);

/* "master", "worker", "main". */
const char *group_role_name(enum group_role r);

/* A member's cells as `ps` and the Processes view show them, at time NOW:
 * "12.3 MiB", "+1.2 MiB" (or "-": no rate yet, or exited), "3m05s" (or "?"),
 * "3.11" (or "yes", "no", "?"). */
struct group_cells {
	char rss[32], rate[32], age[32], py[16];
};
void group_member_cells(const struct group_member *m, double now, struct group_cells *c);

#endif
