/*
 * units.c - human-readable sizes and durations (see units.h).
 */
#include "base/units.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
#define NUNIT (sizeof unit / sizeof unit[0])

/* Scales V to its unit: the first at which it shows below 1024 once rounded
 * at ROUND_LIMIT (a value of 1023.7 KiB would print as "1024 KiB"). */
static size_t scale(double *v, double round_limit)
{
	size_t u = 0;
	while (*v >= round_limit && u + 1 < NUNIT) {
		*v /= 1024;
		u++;
	}
	return u;
}

char *units_bytes(char *buf, size_t len, double bytes)
{
	double v = fabs(bytes);
	size_t u = scale(&v, 1023.5);
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

char *units_bytes_table(char *buf, size_t len, int64_t bytes, bool sign)
{
	uint64_t a = bytes < 0 ? (uint64_t)0 - (uint64_t)bytes : (uint64_t)bytes;
	const char *s = bytes < 0 ? "-" : (sign && bytes > 0) ? "+" : "";
	if (a < 1024) {
		snprintf(buf, len, "%s%" PRIu64 " B", s, a);
		return buf;
	}
	double v = (double)a;
	size_t u = scale(&v, 1023.95);
	snprintf(buf, len, "%s%.1f %s", s, v, unit[u]);
	return buf;
}

char *units_count(char *buf, size_t len, int64_t v, bool sign)
{
	char digits[24];
	uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	int n = snprintf(digits, sizeof digits, "%" PRIu64, a);
	size_t o = 0;
	if (len == 0)
		return buf;
	if (v < 0 || (sign && v > 0))
		if (o + 1 < len)
			buf[o++] = v < 0 ? '-' : '+';
	for (int i = 0; i < n && o + 1 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0) {
			if (o + 2 >= len)
				break;
			buf[o++] = ',';
		}
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
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
