/*
 * test_filter.c - the PCRE2 filter of the list views, and location strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "snapshot/snapshot.h"
#include "tui/filter.h"
#include "tui/location.h"

static bool m(const struct filter *f, const char *s)
{
	return filter_match(f, s, strlen(s));
}

static void test_filter(void **state)
{
	(void)state;
	struct filter f = { 0 };
	char err[256];
	assert_true(m(&f, "anything")); /* no pattern: everything */
	assert_int_equal(filter_set(&f, "models\\.py:1\\d$", err, sizeof err), 0);
	assert_true(m(&f, "/app/models.py:12"));
	assert_false(m(&f, "/app/models.py:120"));
	assert_true(m(&f, "/app/MODELS.py:15"));   /* lower-case pattern: caseless */
	assert_int_equal(filter_set(&f, "Models", err, sizeof err), 0);
	assert_false(m(&f, "/app/models.py:1"));   /* an upper-case letter: exact case */
	/* A bad pattern is refused with PCRE2's words and the offset; the old one stays. */
	assert_int_equal(filter_set(&f, "a(b", err, sizeof err), -1);
	assert_non_null(strstr(err, "missing closing parenthesis at offset 3"));
	assert_string_equal(f.text, "Models");
	assert_true(m(&f, "Models"));
	/* Invalid UTF-8 in a subject does not break matching. */
	assert_int_equal(filter_set(&f, "x", err, sizeof err), 0);
	assert_true(m(&f, "\xff\xfe x"));
	assert_int_equal(filter_set(&f, "", err, sizeof err), 0);
	assert_false(filter_active(&f));
	filter_done(&f);
}

static void test_location(void **state)
{
	(void)state;
	struct snapshot *s = snapshot_new(PROTO_KEY_TRACEBACK, false, 5);
	struct snapshot_frame fr[2] = { { "/srv/app/very/long/path/models.py", 42 }, { "/srv/app/main.py", 7 } };
	snapshot_add_group(s, 100, 1, fr, 2, "x = 1");
	char buf[256];
	location_format(buf, sizeof buf, &s->groups[0], 80);
	assert_string_equal(buf, "/srv/app/very/long/path/models.py:42 +1");
	location_format(buf, sizeof buf, &s->groups[0], 16);
	assert_string_equal(buf, "...dels.py:42 +1"); /* the tail kept, 16 columns */
	assert_int_equal(strlen(buf), 16);
	location_filter_text(buf, sizeof buf, &s->groups[0]);
	assert_string_equal(buf, "/srv/app/very/long/path/models.py:42\n/srv/app/main.py:7");
	/* a native group says so last, where a narrow column still shows it */
	snapshot_group_set_native(&s->groups[0], true);
	location_format(buf, sizeof buf, &s->groups[0], 80);
	assert_string_equal(buf, "/srv/app/very/long/path/models.py:42 +1 [native]");
	location_format(buf, sizeof buf, &s->groups[0], 20);
	assert_string_equal(buf, "...py:42 +1 [native]");
	location_filter_text(buf, sizeof buf, &s->groups[0]);
	assert_string_equal(buf, "/srv/app/very/long/path/models.py:42\n/srv/app/main.py:7\n[native]");
	snapshot_free(s);

	char line[128];
	location_source_line(0, PMT_SOURCE_DIR "/tests/test_filter.c", 2, line, sizeof line);
	assert_string_equal(line, "* test_filter.c - the PCRE2 filter of the list views, and location strings.");
	location_source_line(0, PMT_SOURCE_DIR "/no/such/file.py", 2, line, sizeof line);
	assert_string_equal(line, "");
	/* The target names the file: a FIFO (which would block the screen for
	 * ever) or a device is not opened for reading. */
	char dir[] = "/tmp/pmt-test-location-XXXXXX", fifo[64];
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof fifo, "%s/f.py", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	location_source_line(0, fifo, 1, line, sizeof line);
	assert_string_equal(line, "");
	location_source_line(0, "/dev/zero", 1, line, sizeof line);
	assert_string_equal(line, "");
	unlink(fifo);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_location),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
