/*
 * refresh.h - how often a view asks the agent again, from what asking costs
 * the target (pure, no curses, unit-tested).
 *
 * A `top` over a million tracemalloc traces costs the target most of a
 * second of CPU: asked every 2 s, one view alone would take a quarter of a
 * core. So the next automatic refresh waits max(the view's minimum,
 * cost / cap), the cost being what the newest reply says the last request
 * cost (its cpu_ms, else its took_ms) and the cap a share of one core
 * (--max-cost, in percent). Requests are then at least cost / cap apart,
 * start to start: the agent spends at most that share of a core on them.
 * A request the user asks for (r) goes at once.
 *
 * Not thread-safe: one owner (the UI thread). Times are monotime_now()
 * seconds, given by the caller.
 */
#ifndef PMT_TUI_REFRESH_H
#define PMT_TUI_REFRESH_H

#include <stdbool.h>
#include <stddef.h>

#include "ipc/msg.h"

/*
 * The seconds from one automatic refresh to the next: at least min_s, and
 * long enough that one costing cost_ms of the target's time stays within
 * max_cost_pct percent of one core. A cost that is unknown (negative, NaN)
 * or a cap that is not above 0 gives min_s.
 */
double refresh_every(double min_s, double cost_ms, double max_cost_pct);

/* One view's pacing: refresh_init() first (due at once, cost unknown). */
struct refresh {
	double min_s;      /* the view's own shortest interval */
	double max_cost;   /* the cap, percent of one core */
	double cost_ms;    /* what the newest reply said its request cost; -1 unknown */
	bool cost_cpu;     /* cost_ms is the agent thread's CPU time (else its wall time) */
	double asked;      /* when the last request went out; 0 never */
	double next;       /* when the next may go; 0 at once */
};

void refresh_init(struct refresh *r, double min_s, double max_cost);

/* A request goes out at NOW: the next waits for the interval the newest
 * known cost gives (min_s, the view's minimum at this moment). */
void refresh_asked(struct refresh *r, double now, double min_s);

/* Its reply said what it cost: the next is due that interval after the
 * request went out. A cost the reply did not give keeps the interval. */
void refresh_cost(struct refresh *r, const struct msg_cost *cost);

/* The next automatic request may go out at NOW. */
bool refresh_due(const struct refresh *r, double now);

/* The next goes at once (r, a regroup, another source); the cost is kept. */
void refresh_now(struct refresh *r);

/* The interval in force: refresh_every() of the newest cost. */
double refresh_interval(const struct refresh *r);

/*
 * One line for a view's header, e.g. "refresh every 12 s (one costs 240 ms
 * of the target's CPU; cap 2 % of a core)"; just "refresh every 2 s" while
 * the cost is unknown. Always NUL-terminated (when len > 0).
 */
void refresh_describe(const struct refresh *r, char *buf, size_t len);

#endif
