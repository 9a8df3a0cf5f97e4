/*
 * test_headless_heap.c - the printers of `pmt-top types` and `pmt-top why`
 * (src/headless_heap.c): the tables as a person reads them, and the JSON,
 * which must read back through the decoders it came from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "headless_intern.h"
#include "ipc/msg.h"

#define DATA PMT_TEST_DATA "/ipc/"

static cJSON *load_json(const char *path)
{
	FILE *f = fopen(path, "rb");
	char buf[16384];
	size_t n;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	cJSON *j = cJSON_Parse(buf);
	assert_non_null(j);
	return j;
}

/* What a printer wrote, as one malloc'd string. */
struct capture {
	FILE *fp;
	char *text;
	size_t len;
};

static void capture_start(struct capture *c)
{
	c->text = NULL;
	c->len = 0;
	c->fp = open_memstream(&c->text, &c->len);
	assert_non_null(c->fp);
}

static char *capture_end(struct capture *c)
{
	assert_int_equal(fclose(c->fp), 0);
	return c->text;
}

static void expect_text(const char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("got:\n%s\nwanted:\n%s", got, want);
}

static void test_types_table(void **state)
{
	cJSON *j = load_json(DATA "types_result.json");
	struct msg_types t;
	struct capture c;
	char err[256], *text;

	(void)state;
	assert_int_equal(msg_decode_types(j, &t, err, sizeof err), 0);
	capture_start(&c);
	headless_types_print(c.fp, 123, &t);
	text = capture_end(&c);
	expect_text(text,
		    "pid 123: 34,228 objects tracked by the gc (3.5 MiB), 129,722 blocks allocated; "
		    "walk took 50 ms, longest pause 21 ms\n"
		    "       COUNT       SIZE  TYPE\n"
		    "       1,343 1012.7 KiB  dict\n"
		    "      20,015  781.8 KiB  app.Record\n"
		    "         437  517.9 KiB  type\n");
	free(text);
	msg_types_done(&t);

	/* Cut short, tracemalloc on, a hostile name, a long walk. */
	cJSON_ReplaceItemInObjectCaseSensitive(j, "complete", cJSON_CreateFalse());
	cJSON_ReplaceItemInObjectCaseSensitive(j, "traced", cJSON_CreateNumber(12582912));
	cJSON_ReplaceItemInObjectCaseSensitive(j, "seconds", cJSON_CreateNumber(30.04));
	cJSON_ReplaceItemInObjectCaseSensitive(j, "rows", cJSON_Parse(
		"[{\"type\": \"x.\\u001b[2JY\", \"count\": 1000000, \"size\": 0}]"));
	assert_int_equal(msg_decode_types(j, &t, err, sizeof err), 0);
	capture_start(&c);
	headless_types_print(c.fp, 9, &t);
	text = capture_end(&c);
	expect_text(text,
		    "pid 9: 34,228 objects tracked by the gc (3.5 MiB), 129,722 blocks allocated, "
		    "12.0 MiB traced by tracemalloc; walk took 30.0 s, longest pause 21 ms\n"
		    "(incomplete: the walk stopped before it counted every object)\n"
		    "       COUNT       SIZE  TYPE\n"
		    "   1,000,000        0 B  x.?[2JY\n");
	free(text);
	msg_types_done(&t);
	cJSON_Delete(j);
}

/* The JSON reads back into the same reply. */
static void test_types_json(void **state)
{
	cJSON *j = load_json(DATA "types_result.json");
	struct msg_types t, back;
	char err[256];

	(void)state;
	for (int traced = 0; traced < 2; traced++) {
		if (traced)
			cJSON_ReplaceItemInObjectCaseSensitive(j, "traced", cJSON_CreateNumber(4096));
		assert_int_equal(msg_decode_types(j, &t, err, sizeof err), 0);
		cJSON *out = headless_types_json(77, &t);
		assert_int_equal(cJSON_GetObjectItemCaseSensitive(out, "pid")->valuedouble, 77);
		assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(out, "traced")) == !traced);
		if (msg_decode_types(out, &back, err, sizeof err) != 0)
			fail_msg("the JSON does not read back: %s", err);
		assert_int_equal(back.nrows, t.nrows);
		for (size_t i = 0; i < t.nrows; i++) {
			assert_string_equal(back.rows[i].type, t.rows[i].type);
			assert_int_equal(back.rows[i].count, t.rows[i].count);
			assert_int_equal(back.rows[i].size, t.rows[i].size);
		}
		assert_int_equal(back.tracked, t.tracked);
		assert_int_equal(back.tracked_bytes, t.tracked_bytes);
		assert_int_equal(back.allocated_blocks, t.allocated_blocks);
		assert_int_equal(back.has_traced, t.has_traced);
		assert_int_equal(back.traced, t.traced);
		assert_int_equal(back.complete, t.complete);
		assert_true(back.pause_max == t.pause_max && back.seconds == t.seconds);
		assert_int_equal(back.slices, t.slices);
		msg_types_done(&back);
		msg_types_done(&t);
		cJSON_Delete(out);
	}
	cJSON_Delete(j);
}

static void test_why_text(void **state)
{
	cJSON *j = load_json(DATA "why_result.json");
	struct cli_opts o = { .mode = CLI_WHY, .pid = 123, .why_type = "app.Record", .samples = 8 };
	struct msg_why w;
	struct capture c;
	char err[256], *text;

	(void)state;
	assert_int_equal(msg_decode_why(j, &w, err, sizeof err), 0);
	capture_start(&c);
	headless_why_print(c.fp, &o, &w);
	text = capture_end(&c);
	expect_text(text,
		    "1 of 4 samples: module app -> global _CACHE (dict, 20,000 items, 405.4 KiB) "
		    "retains ~80.4 MiB in 59,744 objects (estimate)\n"
		    "1 of 4 samples: class app.Registry -> class attribute entries (list, 1 item, 88 B) "
		    "retains ~136 B in 2 objects (estimate, truncated: a lower bound)\n"
		    "1 of 4 samples: thread MainThread, serve() -> local variable batch "
		    "(tuple, 1 item, 48 B); what it retains was not measured (the walk's budget ran out)\n"
		    "chains, root first:\n"
		    "  module app -> global _CACHE (dict, 20,000 items) -> value for key 'id-981' -> app.Record 48 B\n"
		    "  class app.Registry -> class attribute entries (list, 1 item) -> index 0 -> app.Record 48 B\n"
		    "  thread MainThread, serve() -> local variable batch (tuple, 1 item) -> index 0 "
		    "-> app.Record 48 B\n"
		    "  app.Record 48 B: no referrer the gc can see (held by C code or an untracked object)\n"
		    "pid 123: 20,000 objects of type app.Record matched, 4 followed; walk took 410 ms, "
		    "longest pause 43 ms\n");
	free(text);
	msg_why_done(&w);
	cJSON_Delete(j);
}

/* Asked by line; nothing with a root; nothing at all; hostile names. */
static void test_why_text_edges(void **state)
{
	static const char line_arg[] = "/srv/app.py:42";
	struct cli_opts o = { .mode = CLI_WHY, .pid = 5, .why_file = line_arg,
			      .why_file_len = sizeof line_arg - 4, .why_line = 42, .samples = 8 };
	struct msg_why w;
	struct capture c;
	char err[256], *text;
	cJSON *j = cJSON_Parse(
		"{\"matched\": 1, \"pause_max\": 0.002, \"seconds\": 0.01, \"slices\": 2, \"holders\": [],"
		" \"chains\": [{\"root\": null, \"end\": \"\", \"steps\": [{\"via\": null, \"type\": \"T\\u001b\","
		"  \"size\": 1048576, \"len\": 3}]}]}");

	(void)state;
	assert_non_null(j);
	assert_int_equal(msg_decode_why(j, &w, err, sizeof err), 0);
	capture_start(&c);
	headless_why_print(c.fp, &o, &w);
	text = capture_end(&c);
	expect_text(text,
		    "no holder: no sample is reachable from a module, a class or a thread's locals\n"
		    "chain, root first:\n"
		    "  T? (3 items) 1.0 MiB: no root found\n"
		    "pid 5: 1 object allocated at /srv/app.py:42 matched, 1 followed; walk took 10 ms, "
		    "longest pause 2 ms\n");
	free(text);
	msg_why_done(&w);
	cJSON_Delete(j);

	j = cJSON_Parse("{\"matched\": 0, \"pause_max\": 0.002, \"seconds\": 0.01, \"slices\": 2, "
			"\"holders\": [], \"chains\": []}");
	assert_int_equal(msg_decode_why(j, &w, err, sizeof err), 0);
	capture_start(&c);
	headless_why_print(c.fp, &o, &w);
	text = capture_end(&c);
	expect_text(text, "pid 5: no object allocated at /srv/app.py:42 that tracemalloc still traces (it sees "
		    "what was allocated since it started); walk took 10 ms, longest pause 2 ms\n");
	free(text);
	o.why_type = "app.\x1b[2JRecord";
	capture_start(&c);
	headless_why_print(c.fp, &o, &w);
	text = capture_end(&c);
	expect_text(text, "pid 5: no object of type app.?[2JRecord among those the gc tracks (named as "
		    "`pmt-top types 5` prints it); walk took 10 ms, longest pause 2 ms\n");
	free(text);
	msg_why_done(&w);
	cJSON_Delete(j);
}

static void expect_same_step(const struct msg_why_step *a, const struct msg_why_step *b)
{
	if (a->via == NULL || b->via == NULL)
		assert_ptr_equal(a->via, b->via);
	else
		assert_string_equal(a->via, b->via);
	assert_string_equal(a->type, b->type);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->has_len, b->has_len);
	assert_int_equal(a->len, b->len);
}

static void expect_same_root(const struct msg_why_root *a, const struct msg_why_root *b)
{
	assert_int_equal(a->kind, b->kind);
	if (a->kind == MSG_WHY_ROOT_NONE)
		return;
	assert_string_equal(a->name, b->name);
	if (a->kind == MSG_WHY_ROOT_LOCAL) {
		assert_string_equal(a->thread, b->thread);
		assert_string_equal(a->function, b->function);
	}
}

/* The JSON has the protocol's shape: it reads back into the same reply. */
static void test_why_json(void **state)
{
	cJSON *j = load_json(DATA "why_result.json");
	static const char line_arg[] = "app.py:7";
	struct cli_opts by_type = { .mode = CLI_WHY, .pid = 123, .why_type = "app.Record", .samples = 8 };
	struct cli_opts by_line = { .mode = CLI_WHY, .pid = 123, .why_file = line_arg, .why_file_len = 6,
				    .why_line = 7, .samples = 8 };
	struct msg_why w, back;
	char err[256];

	(void)state;
	assert_int_equal(msg_decode_why(j, &w, err, sizeof err), 0);
	cJSON *out = headless_why_json(&by_type, &w);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(out, "type")->valuestring, "app.Record");
	assert_null(cJSON_GetObjectItemCaseSensitive(out, "file"));
	/* Only a chain without root says how it ended; an unmeasured holder has no "retained". */
	assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
		cJSON_GetObjectItemCaseSensitive(out, "chains"), 0), "end"));
	assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
		cJSON_GetObjectItemCaseSensitive(out, "holders"), 2), "retained"));
	if (msg_decode_why(out, &back, err, sizeof err) != 0)
		fail_msg("the JSON does not read back: %s", err);
	assert_int_equal(back.matched, w.matched);
	assert_int_equal(back.nchains, w.nchains);
	for (size_t i = 0; i < w.nchains; i++) {
		expect_same_root(&back.chains[i].root, &w.chains[i].root);
		if (w.chains[i].end)
			assert_string_equal(back.chains[i].end, w.chains[i].end);
		assert_int_equal(back.chains[i].nsteps, w.chains[i].nsteps);
		for (size_t k = 0; k < w.chains[i].nsteps; k++)
			expect_same_step(&back.chains[i].steps[k], &w.chains[i].steps[k]);
	}
	assert_int_equal(back.nholders, w.nholders);
	for (size_t i = 0; i < w.nholders; i++) {
		const struct msg_why_holder *a = &back.holders[i], *b = &w.holders[i];
		expect_same_root(&a->root, &b->root);
		assert_int_equal(a->samples, b->samples);
		expect_same_step(&a->holder, &b->holder);
		assert_int_equal(a->has_retained, b->has_retained);
		assert_int_equal(a->retained.bytes, b->retained.bytes);
		assert_int_equal(a->retained.objects, b->retained.objects);
		assert_int_equal(a->retained.truncated, b->retained.truncated);
		assert_int_equal(a->retained.estimate, b->retained.estimate);
	}
	assert_true(back.pause_max == w.pause_max && back.seconds == w.seconds);
	assert_int_equal(back.slices, w.slices);
	msg_why_done(&back);
	cJSON_Delete(out);

	out = headless_why_json(&by_line, &w);
	assert_null(cJSON_GetObjectItemCaseSensitive(out, "type"));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(out, "file")->valuestring, "app.py");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(out, "line")->valuedouble, 7);
	cJSON_Delete(out);
	msg_why_done(&w);
	cJSON_Delete(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types_table),
		cmocka_unit_test(test_types_json),
		cmocka_unit_test(test_why_text),
		cmocka_unit_test(test_why_text_edges),
		cmocka_unit_test(test_why_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
