/*
 * test_keys.c - key binding tables: dispatch, the hint bar, the help and the
 * man page all come from the same tables and agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tui/keys.h"
#include "tui/view.h"

static int calls_a, calls_b, last_ch;

static int run_a(struct app *app, int ch)
{
	(void)app;
	calls_a++;
	last_ch = ch;
	return VIEW_KEY_HANDLED;
}

/* A binding of a mode that is not active: passes the key on. */
static int run_off(struct app *app, int ch)
{
	(void)app;
	(void)ch;
	return VIEW_KEY_IGNORED;
}

static int run_b(struct app *app, int ch)
{
	(void)app;
	(void)ch;
	calls_b++;
	return VIEW_KEY_HANDLED | VIEW_KEY_REDRAW;
}

static const struct binding table[] = {
	{ "a A", "does a", "a do", run_a, { 'a', 'A' } },
	{ "(doc)", "a line of help only", NULL, NULL, { 'z' } },
	{ "x", "x in another mode", NULL, run_off, { 'x' } },
	{ "x", "x here", "x ex", run_b, { 'x' } },
	{ NULL, NULL, NULL, NULL, { 0 } },
};

static void test_dispatch(void **state)
{
	(void)state;
	assert_int_equal(binding_dispatch(table, NULL, 'A'), VIEW_KEY_HANDLED);
	assert_int_equal(calls_a, 1);
	assert_int_equal(last_ch, 'A');
	assert_int_equal(binding_dispatch(table, NULL, 'x'), VIEW_KEY_HANDLED | VIEW_KEY_REDRAW);
	assert_int_equal(calls_b, 1);
	/* Help-only lines and unknown keys run nothing. */
	assert_int_equal(binding_dispatch(table, NULL, 'z'), VIEW_KEY_IGNORED);
	assert_int_equal(binding_dispatch(table, NULL, 'q'), VIEW_KEY_IGNORED);
	assert_int_equal(binding_dispatch(NULL, NULL, 'q'), VIEW_KEY_IGNORED);
	assert_int_equal(binding_count(table), 4);
}

static void test_hints(void **state)
{
	char buf[64];
	(void)state;
	binding_hints(table, buf, sizeof buf);
	assert_string_equal(buf, "a do  x ex");
	/* Only whole hints fit. */
	binding_hints(table, buf, 8);
	assert_string_equal(buf, "a do");
	/* The global hint bar: within 79 columns (an 80-column terminal). */
	char bar[256];
	binding_hints(app_keys, bar, sizeof bar);
	assert_string_equal(bar, "q quit  ? help  Tab views  p pause  +/- interval  </> zoom  t theme  M messages");
}

/* Every binding that runs has a key; no key is bound twice in the global
 * table; every table has help for what it runs (a hidden key is one with
 * no help and must still be bound). */
static void check_table(const char *name, const struct binding *t, bool unique)
{
	int seen[1024] = { 0 };
	for (; t && t->keys; t++) {
		if (t->run && t->codes[0] == 0)
			fail_msg("%s: \"%s\" runs but has no key", name, t->keys);
		if (!t->run && !t->help)
			fail_msg("%s: \"%s\" neither runs nor explains", name, t->keys);
		for (int i = 0; unique && i < BINDING_MAX_CODES && t->codes[i]; i++) {
			int c = t->codes[i];
			assert_true(c > 0 && c < 1024);
			if (seen[c]++)
				fail_msg("%s: key %d is bound twice", name, c);
		}
	}
}

static void test_tables(void **state)
{
	(void)state;
	check_table("global", app_keys, true);
	for (int i = 0; i < views_count; i++) {
		assert_non_null(views[i]->keys);
		check_table(views[i]->name, views[i]->keys, false);
	}
}

/* TEXT as the man page writes it: hyphens escaped. */
static const char *roff_escaped(const char *text, char *buf, size_t len)
{
	size_t k = 0;
	for (const char *p = text; *p && k + 3 < len; p++) {
		if (*p == '-')
			buf[k++] = '\\';
		buf[k++] = *p;
	}
	buf[k] = '\0';
	return buf;
}

/* The man page lists every key of every table, under each view's name. */
static void test_manpage(void **state)
{
	char *text = NULL;
	size_t len = 0;
	(void)state;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	binding_manpage(f, "9.9.9");
	fclose(f);
	assert_non_null(strstr(text, ".TH PMT\\-TOP 1"));
	assert_non_null(strstr(text, "pmt-top 9.9.9"));
	assert_non_null(strstr(text, "\\-\\-inject\\-method"));
	for (const struct binding *b = app_keys; b->keys; b++) {
		char want[256];
		if (b->help && !strstr(text, roff_escaped(b->help, want, sizeof want)))
			fail_msg("global key \"%s\" is missing from the man page", b->keys);
	}
	for (int i = 0; i < views_count; i++) {
		char title[64];
		snprintf(title, sizeof title, ".SS \"%s view\"", views[i]->name);
		assert_non_null(strstr(text, title));
		for (const struct binding *b = views[i]->keys; b->keys; b++) {
			char want[256];
			if (b->help && !strstr(text, roff_escaped(b->help, want, sizeof want)))
				fail_msg("%s view: \"%s\" is missing from the man page", views[i]->name, b->keys);
		}
	}
	/* And groff reads it without a warning. */
	char path[] = "/tmp/pmt-test-man-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	char cmd[128], out[4096];
	snprintf(cmd, sizeof cmd, "groff -man -ww -z %s 2>&1", path);
	FILE *g = popen(cmd, "r");
	assert_non_null(g);
	size_t n = fread(out, 1, sizeof out - 1, g);
	out[n] = '\0';
	int rc = pclose(g);
	unlink(path);
	if (rc != 0 || n != 0)
		fail_msg("groff on the man page (exit %d): %s", rc, out);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_hints),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_manpage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
