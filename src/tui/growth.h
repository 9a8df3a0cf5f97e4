/*
 * growth.h - which lines keep growing: the model behind the Top view's
 * "growing" order (pure, no curses, unit-tested).
 *
 * A leak is not the biggest line nor the one that moved most since the last
 * refresh: it is the one that grows refresh after refresh and keeps what it
 * took. The tracker keeps, per line (any 64-bit identity the caller chooses,
 * e.g. snapshot_group_hash), its size at refreshes at least GROWTH_STEP
 * seconds apart over the last GROWTH_POINTS of them (about five minutes),
 * and scores a line by the slope of its size (bytes per minute) only when it
 * grew in at least GROWTH_MIN_GREW of the intervals, kept at least
 * GROWTH_MIN_KEPT of what it gained, and no single interval brought more
 * than GROWTH_MAX_JUMP of the gains: a cache that fills and is cleared
 * (gives its gains back), a one-off jump (one interval) and noise (gives
 * back what it gains) are left out.
 *
 * Memory is bounded: at most GROWTH_MAX_LINES lines (a line not seen for a
 * whole window is forgotten; while the table is full new lines are not
 * tracked) times GROWTH_POINTS doubles.
 *
 * Not thread-safe: one owner (the UI thread).
 */
#ifndef PMT_TUI_GROWTH_H
#define PMT_TUI_GROWTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GROWTH_STEP 10.0        /* seconds between two recorded refreshes, at least */
#define GROWTH_POINTS 32        /* refreshes kept: 32 x 10 s, a bit over five minutes */
#define GROWTH_MAX_LINES 2048
#define GROWTH_MIN_INTERVALS 4  /* a line needs this many intervals to be scored */
#define GROWTH_MIN_GREW 0.6     /* share of its intervals in which it grew */
#define GROWTH_MIN_KEPT 0.5     /* share of its gains still there at the end */
#define GROWTH_MAX_JUMP 0.5     /* largest share of the gains one interval may bring */

/* The verdict on one line's series. */
struct growth_score {
	double per_min;    /* least-squares slope, bytes per minute */
	double grew;       /* share of the intervals in which it grew, 0..1 */
	double kept;       /* net gain / sum of the gains, <= 1 (0 when no gain) */
	double jump;       /* the largest gain / sum of the gains (0 when no gain) */
	int intervals;     /* intervals between known sizes */
	bool steady;       /* it counts as growing */
};

/*
 * Scores a series: sizes V at times T (seconds, increasing), N points; a NaN
 * size means "not seen then" and is skipped. Fills *OUT and returns
 * out->steady.
 */
bool growth_series_score(const double *t, const double *v, size_t n, struct growth_score *out);

struct growth_line {
	uint64_t id;
	double v[GROWTH_POINTS]; /* by ring slot, NaN when not seen */
	int last_seen;           /* ring sequence number of its last sighting */
};

struct growth {
	double t[GROWTH_POINTS];     /* time of each ring slot */
	int seq;                     /* refreshes recorded so far */
	bool recording;              /* the current refresh is recorded */
	struct growth_line *lines;   /* dense, nlines of them */
	size_t nlines, lines_cap;
	uint32_t *index;             /* open addressing over lines: slot -> index + 1 */
	size_t index_cap;
};

/* An empty tracker (embedded: growth_init/growth_done). */
void growth_init(struct growth *g);
void growth_done(struct growth *g);
/* Forget every line (the grouping or the source changed). */
void growth_reset(struct growth *g);

/*
 * A refresh at time T (seconds, monotonic): returns true when it is
 * recorded (at least GROWTH_STEP after the last recorded one), then
 * growth_observe() each line of it. Refreshes in between are skipped.
 */
bool growth_begin(struct growth *g, double t);
/* Line ID has SIZE bytes in the refresh just begun (ignored when it is not
 * recorded, or when the table is full and ID is new). */
void growth_observe(struct growth *g, uint64_t id, uint64_t size);

/* The score of line ID (false, with *OUT zeroed, when it is not tracked). */
bool growth_line_score(const struct growth *g, uint64_t id, struct growth_score *out);

/* Refreshes recorded so far (to tell "not enough history yet"). */
int growth_history(const struct growth *g);

#endif
