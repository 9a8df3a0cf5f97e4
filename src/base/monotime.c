/*
 * monotime.c - the one clock (see monotime.h).
 */
#include "base/monotime.h"

#include <time.h>

double monotime_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double monotime_ms(void)
{
	return monotime_now() * 1e3;
}
