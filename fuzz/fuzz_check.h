/*
 * fuzz_check.h - checks the harnesses share: what must hold of any output,
 * whatever the input was. A failed check aborts, which libFuzzer reports
 * as a crash with the input that caused it.
 */
#ifndef PMT_FUZZ_FUZZ_CHECK_H
#define PMT_FUZZ_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strsafe.h"

static inline _Noreturn void fuzz_broken(const char *harness, const char *what, const char *detail)
{
	fprintf(stderr, "%s: %s%s%s\n", harness, what, detail ? ": " : "", detail ? detail : "");
	abort();
}

/*
 * An error sentence handed back for hostile input must be one non-empty line
 * that is safe to print on root's terminal (errfmt.h, strsafe.h): valid
 * UTF-8 without C0, DEL or C1 controls.
 */
static inline void fuzz_check_error(const char *harness, const char *err)
{
	size_t n = strlen(err), i = 0;

	if (n == 0)
		fuzz_broken(harness, "a failure without an error sentence", NULL);
	while (i < n) {
		size_t len;
		uint32_t cp = strsafe_decode(err + i, n - i, &len);

		if (cp == STRSAFE_INVALID || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
			fuzz_broken(harness, "an error sentence that is not safe to print", err);
		i += len;
	}
}

/* A malloc'd copy of the input, so that reading past its end is caught. */
static inline char *fuzz_copy(const void *data, size_t size, int terminate)
{
	char *p = malloc(size + (terminate ? 1 : 0) + (size == 0 && !terminate));

	if (p == NULL)
		abort();
	if (size)
		memcpy(p, data, size);
	if (terminate)
		p[size] = '\0';
	return p;
}

#endif
