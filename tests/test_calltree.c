/*
 * test_calltree.c - the Functions view's call tree path: going down and up,
 * the profile_tree arguments, which replies belong to the current place,
 * and the header's path when it does not fit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/xalloc.h"
#include "tui/calltree.h"

static void test_push_pop_back(void **state)
{
	struct calltree t;

	(void)state;
	calltree_init(&t);
	assert_false(calltree_pop(&t));
	assert_true(calltree_push(&t, "/app/main.py", "<module>", 0));
	assert_true(calltree_push(&t, "/app/server.py", "serve", 10));
	assert_true(calltree_push(&t, "/app/cache.py", "Cache.load", 40));
	assert_int_equal(t.depth, 3);
	assert_true(calltree_pop(&t));
	assert_int_equal(t.depth, 2);
	/* the function left is remembered, to be selected again */
	assert_true(t.has_back);
	assert_true(calltree_is(&t.back, "/app/cache.py", "Cache.load", 40));
	assert_false(calltree_is(&t.back, "/app/cache.py", "Cache.load", 41));
	assert_false(calltree_is(&t.back, "/app/other.py", "Cache.load", 40));
	/* going down again forgets it */
	assert_true(calltree_push(&t, "/app/db.py", "query", 5));
	assert_false(t.has_back);
	calltree_reset(&t);
	assert_int_equal(t.depth, 0);
	calltree_done(&t);
}

static void test_depth_limit(void **state)
{
	struct calltree t;

	(void)state;
	calltree_init(&t);
	for (int i = 0; i < CALLTREE_MAX_DEPTH; i++)
		assert_true(calltree_push(&t, "/r.py", "recurse", 1));
	assert_false(calltree_push(&t, "/r.py", "recurse", 1));
	assert_int_equal(t.depth, CALLTREE_MAX_DEPTH);
	calltree_done(&t);
}

static void test_args(void **state)
{
	struct calltree t;
	cJSON *a;
	char *text;

	(void)state;
	calltree_init(&t);
	a = calltree_args(&t, 50);
	text = cJSON_PrintUnformatted(a);
	assert_string_equal(text, "{\"path\":[],\"limit\":50}");
	cJSON_free(text);
	cJSON_Delete(a);
	calltree_push(&t, "/app/main.py", "<module>", 0);
	calltree_push(&t, "/app/x \"q\".py", "handler", 12);
	a = calltree_args(&t, 200);
	text = cJSON_PrintUnformatted(a);
	assert_string_equal(text, "{\"path\":[[\"/app/main.py\",\"<module>\",0],[\"/app/x \\\"q\\\".py\",\"handler\",12]],"
				  "\"limit\":200}");
	cJSON_free(text);
	cJSON_Delete(a);
	calltree_done(&t);
}

/* A reply names the path it answers: only one for the current path counts. */
static void test_matches(void **state)
{
	struct calltree t;
	struct msg_profile_frame p[2] = {
		{ (char *)"/app/main.py", (char *)"<module>", 0 },
		{ (char *)"/app/server.py", (char *)"serve", 10 },
	};
	struct msg_profile_tree r;

	(void)state;
	memset(&r, 0, sizeof r);
	calltree_init(&t);
	assert_true(calltree_matches(&t, &r)); /* the entry points */
	r.path = p;
	r.npath = 1;
	assert_false(calltree_matches(&t, &r));
	calltree_push(&t, "/app/main.py", "<module>", 0);
	assert_true(calltree_matches(&t, &r));
	calltree_push(&t, "/app/server.py", "serve", 11);
	r.npath = 2;
	assert_false(calltree_matches(&t, &r)); /* another serve */
	calltree_pop(&t);
	calltree_push(&t, "/app/server.py", "serve", 10);
	assert_true(calltree_matches(&t, &r));
	calltree_done(&t);
}

static void test_title(void **state)
{
	struct calltree t;
	char buf[256];

	(void)state;
	calltree_init(&t);
	assert_string_equal(calltree_title(&t, buf, sizeof buf, 80), "entry points");
	calltree_push(&t, "/a.py", "main", 1);
	calltree_push(&t, "/a.py", "serve", 5);
	calltree_push(&t, "/a.py", "handler", 9);
	calltree_push(&t, "/a.py", "Cache.load", 20);
	assert_string_equal(calltree_title(&t, buf, sizeof buf, 80), "main > serve > handler > Cache.load");
	assert_int_equal(strlen("main > serve > handler > Cache.load"), 35);
	assert_string_equal(calltree_title(&t, buf, sizeof buf, 35), "main > serve > handler > Cache.load");
	/* too long: the entry point, "...", the innermost that fit */
	assert_string_equal(calltree_title(&t, buf, sizeof buf, 34), "main > ... > handler > Cache.load");
	assert_string_equal(calltree_title(&t, buf, sizeof buf, 32), "main > ... > Cache.load");
	assert_string_equal(calltree_title(&t, buf, sizeof buf, 23), "main > ... > Cache.load");
	/* not even that: the end of the innermost */
	assert_string_equal(calltree_title(&t, buf, sizeof buf, 22), "Cache.load");
	assert_string_equal(calltree_title(&t, buf, sizeof buf, 9), "...e.load");
	assert_string_equal(calltree_title(&t, buf, sizeof buf, 2), "..");
	/* never past the buffer */
	assert_string_equal(calltree_title(&t, buf, 10, 80), "main > se");
	calltree_done(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_pop_back),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_title),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
