/*
 * errfmt.c - one-line error sentences (see errfmt.h).
 */
#include "base/errfmt.h"
#include "base/strsafe.h"

#include <stdarg.h>
#include <stdio.h>

void errfmt(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	/* Messages quote the target (agent errors, names, paths): whatever
	 * prints them, they hold nothing a terminal acts on. */
	strsafe_inplace(err);
}
