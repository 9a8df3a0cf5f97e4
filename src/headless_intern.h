/*
 * headless_intern.h - what the headless commands share (headless.c), for
 * the group commands (headless_group.c), rss and trim (headless_mem.c) and
 * the heap walks (headless_heap.c).
 */
#ifndef PMT_HEADLESS_INTERN_H
#define PMT_HEADLESS_INTERN_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "cli.h"

struct session;

/* Set by headless_on_interrupt (SIGINT, SIGTERM): waits end early. */
extern volatile sig_atomic_t headless_interrupted;
void headless_on_interrupt(int sig);

/* A session on PID whose agent answers (loaded first when none does), or
 * NULL after printing why on stderr, with *RC set to the exit code. The
 * sampled profiler is started only when PROFILE (and not --no-profile). */
struct session *headless_attach(const struct cli_opts *o, pid_t pid, bool profile, int *rc);

/* An object as JSON on stdout, with what a terminal would act on escaped. */
struct cJSON;
void headless_print_json(const struct cJSON *result);

/* RC, or CLI_EXIT_FAILURE after saying why when RC is CLI_EXIT_OK but
 * stdout cannot be flushed (a full disk, a closed pipe). */
int headless_flushed(int rc);

struct snapshot;
/* What the RSS of PID is made of now (smaps, and the session's newest
 * status), into SNAP's record of it; left empty when smaps cannot be read
 * (headless_mem.c). */
void headless_snapshot_memory(struct session *s, pid_t pid, struct snapshot *snap);

struct msg_types;
struct msg_why;
/* The heap walks' printers (headless_heap.c): a decoded types or why reply
 * as text on FP, or as a new cJSON object (the caller deletes it) with the
 * protocol's names, the pid and, for why, what was asked ("type", or
 * "file" and "line"). Strings in them are printed display-safe. */
void headless_types_print(FILE *fp, pid_t pid, const struct msg_types *t);
struct cJSON *headless_types_json(pid_t pid, const struct msg_types *t);
void headless_why_print(FILE *fp, const struct cli_opts *o, const struct msg_why *w);
struct cJSON *headless_why_json(const struct cli_opts *o, const struct msg_why *w);

/* snapshot's --start-tracing and --wait for PID: 0, or -1 after printing
 * why (*RC set). */
int headless_snapshot_prepare(struct session *c, const struct cli_opts *o, pid_t pid, int *rc);

/* `snapshot --tree PID` / `snapshot -p PID,...` (headless_group.c): one
 * snapshot per Python process of the group, asked for together, and their
 * sum; with -o DIR, DIR/PID.json each and DIR/merged.json. */
int headless_snapshot_group(const struct cli_opts *o);
/* `diff OLD_DIR NEW_DIR`: two group snapshots, process by process (by
 * pid), summed, with in how many processes each line grew. */
int headless_diff_groups(const struct cli_opts *o);

#endif
