/*
 * test_whypanel.c - the "why alive" panel's text (src/tui/whypanel.c): each
 * holder and chain of a real agent's `why` reply as the panel writes it, in
 * UTF-8 and in ASCII, the footer, a failure, and the keys that close it.
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

#include "ipc/msg.h"
#include "tui/whypanel.h"

#define DATA PMT_TEST_DATA "/ipc/"

static cJSON *load_json(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	char buf[16384];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	cJSON *j = cJSON_Parse(buf);
	assert_non_null(j);
	return j;
}

static void decode(const char *text_or_path, bool is_path, struct msg_why *w)
{
	char err[256];
	cJSON *j = is_path ? load_json(text_or_path) : cJSON_Parse(text_or_path);
	assert_non_null(j);
	if (msg_decode_why(j, w, err, sizeof err) < 0)
		fail_msg("why_result.json: %s", err);
	cJSON_Delete(j);
}

static void assert_text(char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("\n got: %s\nwant: %s", got, want);
	free(got);
}

static void test_holders(void **state)
{
	struct msg_why w;
	(void)state;
	decode(DATA "why_result.json", true, &w);
	assert_int_equal(w.nholders, 3);
	assert_text(whypanel_holder_text(&w.holders[0], w.nchains, false),
		    "1 of 4 samples: module app \u2192 global _CACHE (dict, 20,000 items, 405 KiB) retains \u2248 "
		    "80.4 MiB in 59,744 objects (estimate)");
	assert_text(whypanel_holder_text(&w.holders[0], w.nchains, true),
		    "1 of 4 samples: module app -> global _CACHE (dict, 20,000 items, 405 KiB) retains ~80.4 MiB in "
		    "59,744 objects (estimate)");
	assert_text(whypanel_holder_text(&w.holders[1], w.nchains, true),
		    "1 of 4 samples: class app.Registry -> class attribute entries (list, 1 item, 88 B) retains ~136 B "
		    "in 2 objects (estimate, truncated: a lower bound)");
	/* The root names the local variable: the step does not say it again. */
	assert_text(whypanel_holder_text(&w.holders[2], w.nchains, true),
		    "1 of 4 samples: thread MainThread, serve(): local batch -> tuple (1 item, 48 B); what it "
		    "retains was not measured (the search's budget ran out first)");
	msg_why_done(&w);
}

static void test_chains(void **state)
{
	struct msg_why w;
	(void)state;
	decode(DATA "why_result.json", true, &w);
	assert_int_equal(w.nchains, 4);
	assert_text(whypanel_chain_text(&w.chains[0], false),
		    "module app \u2192 global _CACHE (dict, 20,000 items) \u2192 value for key 'id-981' \u2192 "
		    "app.Record 48 B");
	assert_text(whypanel_chain_text(&w.chains[0], true),
		    "module app -> global _CACHE (dict, 20,000 items) -> value for key 'id-981' -> app.Record 48 B");
	assert_text(whypanel_chain_text(&w.chains[1], true),
		    "class app.Registry -> class attribute entries (list, 1 item) -> index 0 -> app.Record 48 B");
	assert_text(whypanel_chain_text(&w.chains[2], true),
		    "thread MainThread, serve(): local batch -> tuple (1 item) -> index 0 -> app.Record 48 B");
	/* No root: the chain says why. */
	assert_text(whypanel_chain_text(&w.chains[3], true),
		    "app.Record 48 B: no referrer the gc can see (held by C code or an untracked object)");
	assert_text(whypanel_root_text(&w.chains[3].root), "");
	assert_text(whypanel_root_text(&w.chains[2].root), "thread MainThread, serve(): local batch");
	msg_why_done(&w);
}

static void test_panel(void **state)
{
	struct whypanel p = { 0 };
	struct msg_why w;
	(void)state;
	decode(DATA "why_result.json", true, &w);
	whypanel_open(&p, "app.Record", true);
	assert_true(p.open && p.loading);
	whypanel_set(&p, &w);
	msg_why_done(&w);
	assert_false(p.loading);
	/* Three holders, a heading, four chains. */
	assert_int_equal(p.nlines, 8);
	assert_string_equal(p.lines[3].text, "chains, root first:");
	assert_int_equal(p.lines[4].indent, 2);
	assert_int_equal(p.lines[7].role, THEME_DIM); /* the chain without root */
	assert_string_equal(p.footer, "20,000 objects matched, 4 followed; walk took 410 ms, longest pause 43 ms");
	/* Scrolling keys are the panel's; F10 and help pass; Esc closes. */
	assert_true(whypanel_key(&p, KEY_DOWN));
	assert_false(whypanel_key(&p, KEY_F(10)));
	assert_false(whypanel_key(&p, '?'));
	assert_true(whypanel_key(&p, 27));
	assert_false(p.open);
	assert_false(whypanel_key(&p, 'j'));

	/* Nothing of that type. */
	whypanel_open(&p, "no.such.Type", false);
	decode("{\"matched\": 0, \"chains\": [], \"holders\": [], \"pause_max\": 0.002, \"seconds\": 0.003, "
	       "\"slices\": 0}", false, &w);
	whypanel_set(&p, &w);
	msg_why_done(&w);
	assert_int_equal(p.nlines, 1);
	assert_non_null(strstr(p.lines[0].text, "no object of type no.such.Type"));
	assert_string_equal(p.footer, "0 objects matched; walk took 3 ms, longest pause 2 ms");
	assert_true(whypanel_key(&p, 'q'));
	assert_false(p.open);

	/* A failure is one line, without a footer. */
	whypanel_open(&p, "app.Record", false);
	whypanel_fail(&p, "the heap walks need the agent's C extension _pmt_heap");
	assert_int_equal(p.nlines, 1);
	assert_null(p.footer);
	assert_int_equal(p.lines[0].role, THEME_WARNING);
	whypanel_done(&p);
	assert_false(p.open);
	assert_null(p.type);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_holders),
		cmocka_unit_test(test_chains),
		cmocka_unit_test(test_panel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
