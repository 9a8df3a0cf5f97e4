/*
 * refresh.c - a view's refresh interval from what a refresh costs the
 * target (see refresh.h).
 */
#include "tui/refresh.h"

#include <math.h>
#include <stdio.h>

double refresh_every(double min_s, double cost_ms, double max_cost_pct)
{
	if (!(cost_ms >= 0) || !(max_cost_pct > 0) || !isfinite(cost_ms))
		return min_s;
	double every = cost_ms / 1000.0 / (max_cost_pct / 100.0);
	return every > min_s ? every : min_s;
}

void refresh_init(struct refresh *r, double min_s, double max_cost)
{
	*r = (struct refresh){ .min_s = min_s, .max_cost = max_cost, .cost_ms = -1 };
}

double refresh_interval(const struct refresh *r)
{
	return refresh_every(r->min_s, r->cost_ms, r->max_cost);
}

void refresh_asked(struct refresh *r, double now, double min_s)
{
	r->min_s = min_s;
	r->asked = now;
	r->next = now + refresh_interval(r);
}

void refresh_cost(struct refresh *r, const struct msg_cost *cost)
{
	double ms = msg_cost_ms(cost);
	if (ms < 0)
		return;
	r->cost_ms = ms;
	r->cost_cpu = cost->cpu_ms >= 0;
	/* Asked for at once meanwhile: that stands. */
	if (r->next > 0)
		r->next = r->asked + refresh_interval(r);
}

bool refresh_due(const struct refresh *r, double now)
{
	return now >= r->next;
}

void refresh_now(struct refresh *r)
{
	r->next = 0;
}

/* "12 s", "2.5 s": whole seconds from 10 s on, else tenths (a whole number
 * without them). */
static void fmt_seconds(char *buf, size_t len, double s)
{
	if (s >= 10 || s == floor(s))
		snprintf(buf, len, "%.0f s", s);
	else
		snprintf(buf, len, "%.1f s", s);
}

/* "240 ms", "3.5 ms". */
static void fmt_ms(char *buf, size_t len, double ms)
{
	snprintf(buf, len, ms >= 10 ? "%.0f ms" : "%.1f ms", ms);
}

void refresh_describe(const struct refresh *r, char *buf, size_t len)
{
	char every[32], cost[32];
	if (len == 0)
		return;
	fmt_seconds(every, sizeof every, refresh_interval(r));
	if (r->cost_ms < 0) {
		snprintf(buf, len, "refresh every %s", every);
		return;
	}
	fmt_ms(cost, sizeof cost, r->cost_ms);
	snprintf(buf, len, "refresh every %s (one %s %s of the target's %s; cap %g %% of a core)",
		 every, r->cost_cpu ? "costs" : "takes", cost, r->cost_cpu ? "CPU" : "time", r->max_cost);
}
