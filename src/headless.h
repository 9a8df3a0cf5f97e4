/*
 * headless.h - the subcommands that print and exit: snapshot, diff, functions,
 * profile, trace, ps, rss, trim, types, why.
 *
 * Each returns a process exit code (cli.h) and prints a one-line reason on
 * stderr when it fails.
 */
#ifndef PMT_HEADLESS_H
#define PMT_HEADLESS_H

#include "cli.h"

/* `pmt-top snapshot PID`; with --start-tracing it first starts tracemalloc
 * when it is off, and leaves it on (said on stderr). */
int headless_snapshot(const struct cli_opts *opts);
int headless_diff(const struct cli_opts *opts);
int headless_functions(const struct cli_opts *opts);
/* `pmt-top profile PID`: the sampled profiler for --duration seconds, or
 * tracemalloc when the agent has no profiler (said in one line on stderr). */
int headless_profile(const struct cli_opts *opts);
/* `pmt-top trace PID start|stop|status`: tracemalloc on (left on: that is
 * the point), off, or how it is. Starts no sampled profiler. */
int headless_trace(const struct cli_opts *opts);
/* `pmt-top ps PID`: the process and its descendants (or -p's list), their
 * RSS and its growth over --duration, from /proc (headless_ps.c). */
int headless_ps(const struct cli_opts *opts);
/* `pmt-top rss PID`: what its RSS is made of (session/composition.h), from
 * smaps and the agent's allocator figures; with --no-inject and no agent
 * there, from smaps alone (headless_mem.c). */
int headless_rss(const struct cli_opts *opts);
/* `pmt-top trim PID`: malloc_trim in the target, RSS before and after. */
int headless_trim(const struct cli_opts *opts);
/* `pmt-top types PID`: live objects by type, largest first (headless_heap.c). */
int headless_types(const struct cli_opts *opts);
/* `pmt-top why PID`: the reference chains that keep a few objects of a
 * type, or allocated at a line, alive, grouped by holder (headless_heap.c). */
int headless_why(const struct cli_opts *opts);

#endif
