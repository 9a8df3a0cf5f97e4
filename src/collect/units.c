/*
 * units.c - human-readable sizes and durations (see units.h).
 */
#include "collect/units.h"

#include <math.h>
#include <stdio.h>

char *units_bytes(char *buf, size_t len, double bytes)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = fabs(bytes);
	size_t u = 0;
	/* 1023.7 KiB would print as "1024 KiB": move up a unit first. */
	while (v >= 1023.5 && u + 1 < sizeof unit / sizeof unit[0]) {
		v /= 1024;
		u++;
	}
	const char *sign = bytes < 0 ? "-" : "";
	if (u == 0)
		snprintf(buf, len, "%s%.0f B", sign, v);
	else if (v < 9.995)
		snprintf(buf, len, "%s%.2f %s", sign, v, unit[u]);
	else if (v < 99.95)
		snprintf(buf, len, "%s%.1f %s", sign, v, unit[u]);
	else
		snprintf(buf, len, "%s%.0f %s", sign, v, unit[u]);
	return buf;
}

char *units_bytes_signed(char *buf, size_t len, double bytes)
{
	if (bytes > 0 && len > 1) {
		buf[0] = '+';
		units_bytes(buf + 1, len - 1, bytes);
		return buf;
	}
	return units_bytes(buf, len, bytes);
}

char *units_duration(char *buf, size_t len, double seconds)
{
	if (seconds < 0)
		seconds = 0;
	unsigned long s = (unsigned long)seconds;
	if (s < 60)
		snprintf(buf, len, "%lus", s);
	else if (s < 3600)
		snprintf(buf, len, "%lum%02lus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%luh%02lum", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%lud%02luh", s / 86400, s / 3600 % 24);
	return buf;
}
