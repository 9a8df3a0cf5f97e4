/*
 * test_textwrap.c - messages broken into rows at spaces: every character
 * kept, no row wider than asked, long words split, wide characters counted
 * twice, UTF-8 sequences never split, and the count when rows run out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/strsafe.h"
#include "tui/textwrap.h"

/* CJK ideographs take two cells, everything else one (as on a terminal). */
static int width_of(uint32_t cp)
{
	return cp >= 0x4E00 && cp <= 0x9FFF ? 2 : 1;
}

/* Cells of bytes [s, s + n). */
static int cells(const char *s, size_t n)
{
	int w = 0;
	for (size_t i = 0; i < n;) {
		size_t len;
		w += width_of(strsafe_decode(s + i, n - i, &len));
		i += len;
	}
	return w;
}

/* The rows of TEXT at WIDTH joined by "|". */
static const char *wrapped(const char *text, int width)
{
	static char out[1024];
	struct textwrap_row rows[64];
	size_t n = textwrap(text, width, width_of, rows, 64);
	size_t k = 0;
	assert_true(n <= 64);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		assert_true(cells(text + rows[i].start, rows[i].len) <= (width < 1 ? 1 : width) ||
			    rows[i].len == strlen("\xe4\xb8\xad"));
		k += (size_t)snprintf(out + k, sizeof out - k, "%s%.*s", i ? "|" : "", (int)rows[i].len,
				      text + rows[i].start);
	}
	return out;
}

static void test_short_text_is_one_row(void **state)
{
	(void)state;
	assert_string_equal(wrapped("attached", 20), "attached");
	assert_string_equal(wrapped("exactly ten", 11), "exactly ten");
}

static void test_breaks_at_the_last_space_that_fits(void **state)
{
	(void)state;
	assert_string_equal(wrapped("the pep768 method needs 3.14+ (use --inject-method gdb)", 20),
			    "the pep768 method|needs 3.14+ (use|--inject-method gdb)");
	/* A break right at the edge: the space is dropped, not carried. */
	assert_string_equal(wrapped("abcde fghij", 5), "abcde|fghij");
	assert_string_equal(wrapped("abcd  efgh", 5), "abcd|efgh");
}

static void test_spaces_at_the_ends_are_dropped(void **state)
{
	(void)state;
	assert_string_equal(wrapped("  lead and trail  ", 40), "lead and trail");
	assert_string_equal(wrapped("a     b", 3), "a|b");
}

static void test_a_word_longer_than_the_row_is_split(void **state)
{
	(void)state;
	assert_string_equal(wrapped("/very/long/path/name ok", 8), "/very/lo|ng/path/|name ok");
	assert_string_equal(wrapped("x", 0), "x"); /* width < 1 counts as 1 */
	assert_string_equal(wrapped("abc", -5), "a|b|c");
}

static void test_nothing_to_show_needs_no_row(void **state)
{
	(void)state;
	assert_int_equal(textwrap("", 10, width_of, NULL, 0), 0);
	assert_int_equal(textwrap("    ", 10, width_of, NULL, 0), 0);
}

static void test_wide_characters_take_two_cells(void **state)
{
	(void)state;
	/* Four ideographs are 8 cells: 5 cells hold two of them. */
	assert_string_equal(wrapped("\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87", 5),
			    "\xe4\xb8\xad\xe6\x96\x87|\xe4\xb8\xad\xe6\x96\x87");
	/* One that cannot fit a one-cell row still gets a row of its own. */
	assert_string_equal(wrapped("\xe4\xb8\xad" "a", 1), "\xe4\xb8\xad|a");
}

static void test_utf8_sequences_are_never_split(void **state)
{
	(void)state;
	/* "é" is two bytes and one cell. */
	assert_string_equal(wrapped("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 3), "\xc3\xa9\xc3\xa9\xc3\xa9|\xc3\xa9");
	/* Invalid bytes count one cell each, as the screen draws them ('?'). */
	assert_string_equal(wrapped("\xff\xfe\xfd", 2), "\xff\xfe|\xfd");
}

static void test_every_character_is_kept(void **state)
{
	(void)state;
	const char *msg = "no agent in pid 4242 and it could not be loaded: process 4242 runs Python 3.11; "
			  "the pep768 method needs 3.14+ (use --inject-method gdb)";
	for (int width = 1; width <= 90; width++) {
		struct textwrap_row rows[200];
		size_t n = textwrap(msg, width, width_of, rows, 200);
		char joined[512] = "", words[512] = "";
		size_t k = 0, m = 0;
		for (size_t i = 0; i < n; i++)
			k += (size_t)snprintf(joined + k, sizeof joined - k, "%.*s", (int)rows[i].len,
					      msg + rows[i].start);
		for (const char *p = msg; *p; p++)
			if (*p != ' ')
				words[m++] = *p;
		/* Without the spaces (some are dropped at breaks) the same text. */
		size_t j = 0;
		for (size_t i = 0; i < k; i++)
			if (joined[i] != ' ')
				joined[j++] = joined[i];
		joined[j] = '\0';
		assert_string_equal(joined, words);
		/* Rows are in order and never overlap. */
		for (size_t i = 1; i < n; i++)
			assert_true(rows[i].start >= rows[i - 1].start + rows[i - 1].len);
		if (width >= 15) /* as wide as the longest word: none is split */
			for (size_t i = 1; i < n; i++)
				assert_true(msg[rows[i].start - 1] == ' ');
	}
	/* 80 columns: the remedy reaches the second row whole. */
	assert_string_equal(wrapped(msg, 78),
			    "no agent in pid 4242 and it could not be loaded: process 4242 runs Python|"
			    "3.11; the pep768 method needs 3.14+ (use --inject-method gdb)");
}

static void test_the_count_goes_on_past_max(void **state)
{
	(void)state;
	struct textwrap_row rows[2];
	memset(rows, 0xab, sizeof rows);
	assert_int_equal(textwrap("one two three four", 5, width_of, rows, 2), 4);
	assert_int_equal(rows[0].start, 0);
	assert_int_equal(rows[0].len, 3);
	assert_int_equal(rows[1].start, 4);
	assert_int_equal(rows[1].len, 3);
	assert_int_equal(textwrap("one two three four", 5, width_of, NULL, 0), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_text_is_one_row),
		cmocka_unit_test(test_breaks_at_the_last_space_that_fits),
		cmocka_unit_test(test_spaces_at_the_ends_are_dropped),
		cmocka_unit_test(test_a_word_longer_than_the_row_is_split),
		cmocka_unit_test(test_nothing_to_show_needs_no_row),
		cmocka_unit_test(test_wide_characters_take_two_cells),
		cmocka_unit_test(test_utf8_sequences_are_never_split),
		cmocka_unit_test(test_every_character_is_kept),
		cmocka_unit_test(test_the_count_goes_on_past_max),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
