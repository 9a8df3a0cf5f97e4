/*
 * test_proto.c - name <-> enum lookups of src/ipc/proto.c, and that the names
 * in proto.h are the ones docs/protocol.md documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/proto.h"

static void test_cmd_roundtrip(void **state)
{
	(void)state;
	for (int i = 0; i < PROTO_CMD_COUNT; i++) {
		const char *n = proto_cmd_name((enum proto_cmd)i);

		assert_non_null(n);
		assert_int_equal(proto_cmd_from_name(n), i);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(n, proto_cmd_name((enum proto_cmd)j));
	}
	assert_int_equal(proto_cmd_from_name("hello"), PROTO_CMD_HELLO);
	assert_int_equal(proto_cmd_from_name("detach"), PROTO_CMD_DETACH);
	assert_string_equal(proto_cmd_name(PROTO_CMD_TRACEMALLOC_START), "tracemalloc_start");
	assert_null(proto_cmd_name(PROTO_CMD_COUNT));
	assert_null(proto_cmd_name((enum proto_cmd)-1));
	assert_int_equal(proto_cmd_from_name("Hello"), -1);
	assert_int_equal(proto_cmd_from_name("hello "), -1);
	assert_int_equal(proto_cmd_from_name(""), -1);
	assert_int_equal(proto_cmd_from_name(NULL), -1);
}

static void test_other_lists(void **state)
{
	(void)state;
	for (int i = 0; i < PROTO_PUSH_COUNT; i++)
		assert_int_equal(proto_push_from_name(proto_push_name((enum proto_push)i)), i);
	for (int i = 0; i < PROTO_ERR_COUNT; i++)
		assert_int_equal(proto_err_from_name(proto_err_name((enum proto_err)i)), i);
	for (int i = 0; i < PROTO_KEY_COUNT; i++)
		assert_int_equal(proto_key_from_name(proto_key_name((enum proto_key)i)), i);
	assert_int_equal(proto_push_from_name("status"), PROTO_PUSH_STATUS);
	assert_int_equal(proto_err_from_name("bad_frame"), PROTO_ERR_BAD_FRAME);
	assert_int_equal(proto_err_from_name("internal"), PROTO_ERR_INTERNAL);
	assert_int_equal(proto_key_from_name("traceback"), PROTO_KEY_TRACEBACK);
	assert_null(proto_push_name(PROTO_PUSH_COUNT));
	assert_null(proto_err_name(PROTO_ERR_COUNT));
	assert_null(proto_key_name(PROTO_KEY_COUNT));
	assert_int_equal(proto_push_from_name("hello"), -1);
	assert_int_equal(proto_err_from_name("status"), -1);
	assert_int_equal(proto_key_from_name("line"), -1);
	assert_int_equal(proto_err_from_name(NULL), -1);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Every error code is a row of the doc's table; every key and push is named. */
static void test_doc_agrees(void **state)
{
	char *doc = slurp(PMT_SOURCE_DIR "/docs/protocol.md");
	char pat[128];

	(void)state;
	for (int i = 0; i < PROTO_ERR_COUNT; i++) {
		snprintf(pat, sizeof pat, "| `%s` |", proto_err_name((enum proto_err)i));
		if (strstr(doc, pat) == NULL)
			fail_msg("docs/protocol.md has no table row for error code %s", pat);
	}
	for (int i = 0; i < PROTO_KEY_COUNT; i++) {
		snprintf(pat, sizeof pat, "`%s`", proto_key_name((enum proto_key)i));
		if (strstr(doc, pat) == NULL)
			fail_msg("docs/protocol.md does not mention key %s", pat);
	}
	for (int i = 0; i < PROTO_PUSH_COUNT; i++) {
		snprintf(pat, sizeof pat, "{\"push\": \"%s\"", proto_push_name((enum proto_push)i));
		if (strstr(doc, pat) == NULL)
			fail_msg("docs/protocol.md does not show push %s", pat);
	}
	snprintf(pat, sizeof pat, "protocol (version %d)", PROTO_VERSION);
	assert_non_null(strstr(doc, pat));
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_roundtrip),
		cmocka_unit_test(test_other_lists),
		cmocka_unit_test(test_doc_agrees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
