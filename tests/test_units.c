/*
 * test_units.c - human-readable sizes and durations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/units.h"

static void test_bytes(void **state)
{
	(void)state;
	char b[32];
	assert_string_equal(units_bytes(b, sizeof b, 0), "0 B");
	assert_string_equal(units_bytes(b, sizeof b, 512), "512 B");
	assert_string_equal(units_bytes(b, sizeof b, 1536), "1.50 KiB");
	assert_string_equal(units_bytes(b, sizeof b, 12.34 * 1024 * 1024), "12.3 MiB");
	assert_string_equal(units_bytes(b, sizeof b, 212.0 * 1024 * 1024), "212 MiB");
	assert_string_equal(units_bytes(b, sizeof b, 1023.9 * 1024), "1.00 MiB"); /* not "1024 KiB" */
	assert_string_equal(units_bytes(b, sizeof b, 1.5 * 1024 * 1024 * 1024), "1.50 GiB");
	assert_string_equal(units_bytes(b, sizeof b, -2048), "-2.00 KiB");
	assert_string_equal(units_bytes_signed(b, sizeof b, 2048), "+2.00 KiB");
	assert_string_equal(units_bytes_signed(b, sizeof b, 0), "0 B");
	assert_string_equal(units_bytes_signed(b, sizeof b, -100), "-100 B");
}

static void test_duration(void **state)
{
	(void)state;
	char b[32];
	assert_string_equal(units_duration(b, sizeof b, 45.7), "45s");
	assert_string_equal(units_duration(b, sizeof b, 723), "12m03s");
	assert_string_equal(units_duration(b, sizeof b, 3 * 3600 + 7 * 60), "3h07m");
	assert_string_equal(units_duration(b, sizeof b, 2 * 86400 + 4 * 3600 + 5), "2d04h");
	assert_string_equal(units_duration(b, sizeof b, -5), "0s");
}

static void test_count(void **state)
{
	(void)state;
	char b[32];
	assert_string_equal(units_count(b, sizeof b, 0, false), "0");
	assert_string_equal(units_count(b, sizeof b, 0, true), "0");
	assert_string_equal(units_count(b, sizeof b, 999, false), "999");
	assert_string_equal(units_count(b, sizeof b, 1000, false), "1,000");
	assert_string_equal(units_count(b, sizeof b, 145114, false), "145,114");
	assert_string_equal(units_count(b, sizeof b, 1204, true), "+1,204");
	assert_string_equal(units_count(b, sizeof b, -3, true), "-3");
	assert_string_equal(units_count(b, sizeof b, -1234567, false), "-1,234,567");
	assert_string_equal(units_count(b, sizeof b, INT64_MIN, false), "-9,223,372,036,854,775,808");
	/* Cut short, never past the buffer. */
	assert_string_equal(units_count(b, 6, 1234567, false), "1,234");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
