/*
 * test_msglog.c - the messages kept whole: order, a repeat counted instead
 * of stored again, the oldest dropped when full, a huge one cut on a
 * character boundary with a visible "...".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/msglog.h"

static void test_kept_in_order_whole(void **state)
{
	(void)state;
	struct msglog log;
	char long_text[1500];
	msglog_init(&log);
	assert_null(msglog_last(&log));
	memset(long_text, 'x', sizeof long_text - 1);
	long_text[sizeof long_text - 1] = '\0';
	msglog_add(&log, false, "first", 100);
	msglog_add(&log, true, long_text, 101);
	assert_int_equal(msglog_count(&log), 2);
	assert_string_equal(msglog_get(&log, 0)->text, "first");
	assert_false(msglog_get(&log, 0)->error);
	assert_string_equal(msglog_get(&log, 1)->text, long_text); /* longer than any row: whole */
	assert_true(msglog_last(&log)->error);
	assert_int_equal(msglog_last(&log)->wall, 101);
	assert_null(msglog_get(&log, 2));
	msglog_add(&log, false, NULL, 102);
	assert_string_equal(msglog_last(&log)->text, "");
	msglog_done(&log);
	assert_int_equal(msglog_count(&log), 0);
}

static void test_a_repeat_is_counted(void **state)
{
	(void)state;
	struct msglog log;
	msglog_init(&log);
	msglog_add(&log, true, "lost the agent (retrying)", 1);
	msglog_add(&log, true, "lost the agent (retrying)", 2);
	msglog_add(&log, true, "lost the agent (retrying)", 3);
	assert_int_equal(msglog_count(&log), 1);
	assert_int_equal(msglog_last(&log)->repeat, 3);
	assert_int_equal(msglog_last(&log)->wall, 3);
	char *t = msglog_text(msglog_last(&log));
	assert_string_equal(t, "lost the agent (retrying) (3 times)");
	free(t);
	/* The same words as info rather than error: a new message. */
	msglog_add(&log, false, "lost the agent (retrying)", 4);
	assert_int_equal(msglog_count(&log), 2);
	t = msglog_text(msglog_last(&log));
	assert_string_equal(t, "lost the agent (retrying)");
	free(t);
	assert_int_equal(log.added, 4);
	msglog_done(&log);
}

static void test_the_oldest_go_first(void **state)
{
	(void)state;
	struct msglog log;
	char text[32];
	msglog_init(&log);
	for (int i = 0; i < MSGLOG_MAX + 10; i++) {
		snprintf(text, sizeof text, "message %d", i);
		msglog_add(&log, false, text, i);
	}
	assert_int_equal(msglog_count(&log), MSGLOG_MAX);
	assert_string_equal(msglog_get(&log, 0)->text, "message 10");
	snprintf(text, sizeof text, "message %d", MSGLOG_MAX + 9);
	assert_string_equal(msglog_last(&log)->text, text);
	msglog_done(&log);
}

static void test_a_huge_one_is_cut_visibly_between_characters(void **state)
{
	(void)state;
	struct msglog log;
	size_t n = MSGLOG_TEXT_MAX * 2;
	char *huge = malloc(n + 1);
	for (size_t i = 0; i + 1 < n; i += 2)
		memcpy(huge + i, "\xc3\xa9", 2); /* é: two bytes each */
	huge[n] = '\0';
	msglog_init(&log);
	msglog_add(&log, false, huge, 0);
	const char *t = msglog_last(&log)->text;
	size_t len = strlen(t);
	assert_true(len < MSGLOG_TEXT_MAX);
	assert_string_equal(t + len - 3, "...");
	assert_int_equal((len - 3) % 2, 0); /* no half character before it */
	assert_memory_equal(t, huge, len - 3);
	msglog_done(&log);
	free(huge);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kept_in_order_whole),
		cmocka_unit_test(test_a_repeat_is_counted),
		cmocka_unit_test(test_the_oldest_go_first),
		cmocka_unit_test(test_a_huge_one_is_cut_visibly_between_characters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
