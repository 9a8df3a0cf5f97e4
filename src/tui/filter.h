/*
 * filter.h - the regex filter shared by the list views (PCRE2).
 *
 * An empty pattern matches everything. A bad pattern is refused with PCRE2's
 * message and the offset, and the previous filter stays in force.
 */
#ifndef PMT_TUI_FILTER_H
#define PMT_TUI_FILTER_H

#include <stdbool.h>
#include <stddef.h>

struct filter {
	char text[256];   /* the pattern in force ("" = none) */
	void *code;       /* pcre2_code_8 *, or NULL */
	void *match_data; /* pcre2_match_data_8 * */
};

/* Set the pattern (case-insensitive unless it has an upper-case letter, as in
 * less(1)). Returns 0, or -1 with "missing closing parenthesis at offset 3"
 * style text in err, leaving the old pattern in force. */
int filter_set(struct filter *f, const char *pattern, char *err, size_t errlen);

/* Does s (len bytes) match? Always true with no pattern. */
bool filter_match(const struct filter *f, const char *s, size_t len);

bool filter_active(const struct filter *f);
void filter_done(struct filter *f);

#endif
