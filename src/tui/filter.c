/*
 * filter.c - PCRE2 filter for the list views (see filter.h).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tui/filter.h"

#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

int filter_set(struct filter *f, const char *pattern, char *err, size_t errlen)
{
	if (pattern[0] == '\0') {
		filter_done(f);
		return 0;
	}
	if (strlen(pattern) >= sizeof f->text) {
		snprintf(err, errlen, "the pattern is longer than %zu bytes", sizeof f->text - 1);
		return -1;
	}
	uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
	bool upper = false;
	for (const char *p = pattern; *p; p++)
		if (isupper((unsigned char)*p))
			upper = true;
	if (!upper)
		opts |= PCRE2_CASELESS;
	int code;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &code, &off, NULL);
	if (re == NULL) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(code, msg, sizeof msg);
		snprintf(err, errlen, "%s at offset %zu", (const char *)msg, (size_t)off);
		return -1;
	}
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	if (md == NULL) {
		pcre2_code_free(re);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	filter_done(f);
	f->code = re;
	f->match_data = md;
	snprintf(f->text, sizeof f->text, "%s", pattern);
	return 0;
}

bool filter_match(const struct filter *f, const char *s, size_t len)
{
	if (f->code == NULL)
		return true;
	return pcre2_match(f->code, (PCRE2_SPTR)s, len, 0, 0, f->match_data, NULL) >= 0;
}

bool filter_active(const struct filter *f)
{
	return f->code != NULL;
}

void filter_done(struct filter *f)
{
	if (f->match_data)
		pcre2_match_data_free(f->match_data);
	if (f->code)
		pcre2_code_free(f->code);
	f->code = NULL;
	f->match_data = NULL;
	f->text[0] = '\0';
}
