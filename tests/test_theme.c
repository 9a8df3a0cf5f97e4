/*
 * test_theme.c - the theme loader: the shipped themes, and broken files that
 * must be refused with a sentence naming the problem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tui/theme.h"

static void test_shipped_themes_load(void **state)
{
	(void)state;
	char **names;
	size_t n = theme_list(PMT_SOURCE_DIR "/themes", &names);
	assert_true(n >= 3);
	int seen = 0;
	for (size_t i = 0; i < n; i++) {
		struct theme t;
		char err[256] = "";
		if (theme_load(PMT_SOURCE_DIR "/themes", names[i], &t, err, sizeof err) != 0)
			fail_msg("%s: %s", names[i], err);
		assert_string_equal(t.name, names[i]);
		seen |= strcmp(names[i], "dark") == 0 ? 1 : strcmp(names[i], "light") == 0 ? 2 :
			strcmp(names[i], "mono") == 0 ? 4 : 0;
	}
	assert_int_equal(seen, 7);
	theme_list_free(names, n);

	struct theme dark;
	char err[256];
	assert_int_equal(theme_load(PMT_SOURCE_DIR "/themes", "dark", &dark, err, sizeof err), 0);
	assert_int_equal(dark.style[THEME_GRAPH_RSS].fg, 2);      /* green */
	assert_int_equal(dark.style[THEME_TITLE].fg, 15);         /* bright-white */
	assert_true(dark.style[THEME_GROWTH].attrs & THEME_ATTR_BOLD);
}

static void test_mono_uses_no_colour(void **state)
{
	(void)state;
	struct theme t;
	char err[256];
	assert_int_equal(theme_load(PMT_SOURCE_DIR "/themes", "mono", &t, err, sizeof err), 0);
	for (int r = 0; r < THEME_ROLE_COUNT; r++) {
		assert_int_equal(t.style[r].fg, -1);
		assert_int_equal(t.style[r].bg, -1);
	}
	/* Growth and shrink stay apart without colour: growth is bold. */
	assert_true(t.style[THEME_GROWTH].attrs != t.style[THEME_SHRINK].attrs);
}

static void expect_error(const char *name, const char *needle)
{
	struct theme t;
	char err[512] = "";
	theme_mono(&t);
	strcpy(t.name, "unchanged");
	assert_int_equal(theme_load(PMT_TEST_DATA "/themes", name, &t, err, sizeof err), -1);
	if (strstr(err, needle) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", name, err, needle);
	assert_non_null(strstr(err, name)); /* the file is named */
	assert_null(strchr(err, '\n'));     /* one line */
	assert_string_equal(t.name, "unchanged");
}

static void test_broken_files(void **state)
{
	(void)state;
	expect_error("broken-json", "not valid JSON");
	expect_error("bad-colour", "unknown colour \"chartreuse\"");
	expect_error("bad-role", "unknown role \"graph_rs\"");
	expect_error("missing", "no theme named \"missing\"");
}

static void test_parse_rules(void **state)
{
	(void)state;
	struct theme t;
	char err[256];
	const char *ok = "{\"name\":\"x\",\"colors\":{\"growth\":{\"fg\":196,\"bg\":\"default\",\"attrs\":[\"bold\",\"underline\"]}}}";
	assert_int_equal(theme_parse(ok, strlen(ok), &t, err, sizeof err), 0);
	assert_int_equal(t.style[THEME_GROWTH].fg, 196);
	assert_int_equal(t.style[THEME_GROWTH].attrs, THEME_ATTR_BOLD | THEME_ATTR_UNDERLINE);
	assert_true(t.style[THEME_TITLE].attrs & THEME_ATTR_BOLD); /* left out: mono style */

	const char *bad[] = {
		"[]",
		"{\"colors\":{}}",
		"{\"name\":\"x\"}",
		"{\"name\":\"x\",\"colors\":{\"growth\":{\"fg\":256}}}",
		"{\"name\":\"x\",\"colors\":{\"growth\":{\"fg\":1.5}}}",
		"{\"name\":\"x\",\"colors\":{\"growth\":{\"attrs\":\"bold\"}}}",
		"{\"name\":\"x\",\"colors\":{\"growth\":{\"attrs\":[\"blink\"]}}}",
		"{\"name\":\"x\",\"colors\":{\"growth\":{\"colour\":\"red\"}}}",
		"{\"name\":\"x\",\"colors\":{\"growth\":\"red\"}}",
		"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		if (theme_parse(bad[i], strlen(bad[i]), &t, err, sizeof err) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_themes_load),
		cmocka_unit_test(test_mono_uses_no_colour),
		cmocka_unit_test(test_broken_files),
		cmocka_unit_test(test_parse_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
