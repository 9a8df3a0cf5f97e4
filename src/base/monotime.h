/*
 * monotime.h - the one clock of pmt-top: CLOCK_MONOTONIC, for samples,
 * deadlines, retries and redraws alike, so that times from any part compare.
 */
#ifndef PMT_BASE_MONOTIME_H
#define PMT_BASE_MONOTIME_H

/* Seconds since an arbitrary fixed point (boot). Thread-safe. */
double monotime_now(void);

/* The same in milliseconds. */
double monotime_ms(void);

#endif
