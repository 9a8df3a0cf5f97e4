/*
 * test_strsafe.c - the display-safe copy of target text: each rejected class,
 * what is kept, cuts between whole characters, the printers built on it
 * (errfmt, the command line, JSON), and a fuzz loop checking the output
 * with a second, independently written UTF-8 checker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "proc/proc_sample.h"
#include "base/errfmt.h"
#include "base/strsafe.h"

/* strsafe_copy with a large buffer, as a fresh string. */
static char *safe(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	assert_non_null(out);
	assert_int_equal(strsafe_copy(out, n + 1, s, n), n);
	return out;
}

static void expect(const char *in, const char *want)
{
	char *got = safe(in, strlen(in));
	assert_string_equal(got, want);
	free(got);
	/* the same through the in-place and FILE forms */
	char *dup = strdup(in), *buf = NULL;
	size_t len = 0;
	strsafe_inplace(dup);
	assert_string_equal(dup, want);
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(strsafe_fputs(in, f), 0);
	fclose(f);
	assert_string_equal(buf, want);
	free(buf);
	free(dup);
}

static void test_kept(void **state)
{
	(void)state;
	expect("", "");
	expect("plain ascii ~!@#", "plain ascii ~!@#");
	expect("caf\xc3\xa9 \xe2\x82\xac \xe4\xb8\xad \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xe4\xb8\xad \xf0\x9f\x98\x80");
	expect("\xc2\xa0", "\xc2\xa0");          /* U+00A0, just after C1 */
	expect("\xe2\x80\x8d", "\xe2\x80\x8d");  /* U+200D joiner: not bidi */
	expect("\xe2\x80\xaf", "\xe2\x80\xaf");  /* U+202F, just after the bidi run */
	expect("\xe2\x81\xa5", "\xe2\x81\xa5");  /* U+2065, just before it */
	expect("\xe2\x81\xaa", "\xe2\x81\xaa");  /* U+206A, just after it */
	expect("\xef\xbf\xbd", "\xef\xbf\xbd");  /* U+FFFD */
	expect("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
}

static void test_c0_and_del(void **state)
{
	(void)state;
	char in[2] = { 0, 0 };
	for (int c = 1; c < 0x20; c++) {
		in[0] = (char)c;
		expect(in, "?");
	}
	expect("\x7f", "?");
	expect("\x1b]0;pwned\x07", "?]0;pwned?");
	expect("a\tb\nc\rd", "a?b?c?d");
	/* an embedded NUL counts as a control when the length is given */
	char out[8];
	assert_int_equal(strsafe_copy(out, sizeof out, "a\0b", 3), 3);
	assert_string_equal(out, "a?b");
}

static void test_c1(void **state)
{
	(void)state;
	char in[3] = { (char)0xc2, 0, 0 };
	for (int c = 0x80; c <= 0x9f; c++) {
		in[1] = (char)c;
		expect(in, "?"); /* one '?' for the whole character */
	}
	expect("x\xc2\x9b" "31mred", "x?31mred");
}

static void test_bidi(void **state)
{
	(void)state;
	static const char *const bidi[] = {
		"\xd8\x9c",                                                 /* U+061C */
		"\xe2\x80\x8e", "\xe2\x80\x8f",                             /* U+200E-F */
		"\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae", /* U+202A-E */
		"\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9", /* U+2066-9 */
	};
	for (size_t i = 0; i < sizeof bidi / sizeof bidi[0]; i++)
		expect(bidi[i], "?");
	expect("evil\xe2\x80\xaegpj.py", "evil?gpj.py");
	expect("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\xef\xbb\xbf", "a?b?c?"); /* U+2028, U+2029, U+FEFF */
}

static void test_invalid(void **state)
{
	(void)state;
	expect("\x80", "?");                    /* lone continuation */
	expect("\xbf\xbf", "??");
	expect("\xff\xfe", "??");               /* never in UTF-8 */
	expect("\xc0\xaf", "??");               /* overlong '/' */
	expect("\xc1\xbf", "??");
	expect("\xe0\x80\xaf", "???");          /* overlong, 3 bytes */
	expect("\xe0\x9f\xbf", "???");
	expect("\xf0\x80\x80\xaf", "????");     /* overlong, 4 bytes */
	expect("\xf0\x8f\xbf\xbf", "????");
	expect("\xed\xa0\x80", "???");          /* surrogate U+D800 */
	expect("\xed\xbf\xbf", "???");          /* surrogate U+DFFF */
	expect("\xf4\x90\x80\x80", "????");     /* U+110000 */
	expect("\xf5\x80\x80\x80", "????");
	expect("\xe2\x82", "??");               /* cut short at the end */
	expect("\xe2\x82x", "??x");             /* cut short by ASCII */
	expect("\xc3", "?");
	expect("\xf0\x9f\x98", "???");
	expect("a\xc3\xa9\xc3", "a\xc3\xa9?");
	/* the decoder never reads past the length it is given */
	size_t len;
	assert_int_equal(strsafe_decode("\xe2\x82\xac", 2, &len), STRSAFE_INVALID);
	assert_int_equal(len, 1);
	assert_int_equal(strsafe_decode("\xe2\x82\xac", 3, &len), 0x20ac);
	assert_int_equal(len, 3);
}

static void test_cut_between_characters(void **state)
{
	(void)state;
	char out[16];
	/* "a" + e-acute: 3 bytes need a 4-byte buffer */
	assert_int_equal(strsafe_copy(out, 3, "a\xc3\xa9", 3), 1);
	assert_string_equal(out, "a");
	assert_int_equal(strsafe_copy(out, 4, "a\xc3\xa9", 3), 3);
	assert_string_equal(out, "a\xc3\xa9");
	/* two euro signs into 5 bytes: only one fits whole */
	assert_int_equal(strsafe_copy(out, 5, "\xe2\x82\xac\xe2\x82\xac", 6), 3);
	assert_string_equal(out, "\xe2\x82\xac");
	/* a rejected character costs one byte of output */
	assert_int_equal(strsafe_copy(out, 3, "\xe2\x80\xae\xe2\x80\xae" "b", 7), 6);
	assert_string_equal(out, "??");
	assert_int_equal(strsafe_copy(out, 1, "abc", 3), 0);
	assert_string_equal(out, "");
	out[0] = 'x';
	assert_int_equal(strsafe_copy(out, 0, "abc", 3), 0);
	assert_int_equal(out[0], 'x');
}

static void test_shown(void **state)
{
	(void)state;
	char b[8];
	assert_string_equal(strsafe_shown(b, sizeof b, "short"), "short");
	assert_string_equal(strsafe_shown(b, sizeof b, NULL), "");
	assert_string_equal(strsafe_shown(b, sizeof b, "\x1b[2Jabcdef"), "?[2J...");
	/* the marker never lands inside a character */
	assert_string_equal(strsafe_shown(b, sizeof b, "ab\xe2\x82\xac\xe2\x82\xac"), "ab...");
	assert_string_equal(strsafe_shown(b, sizeof b, "abc\xe2\x82\xac"), "abc\xe2\x82\xac");
}

static void test_errfmt_is_safe(void **state)
{
	(void)state;
	char err[64];
	errfmt(err, sizeof err, "the agent says: %s", "\x1b]0;x\x07\xc2\x9b\xe2\x80\xae\nend");
	assert_string_equal(err, "the agent says: ?]0;x??? end");
	/* cut by the buffer in the middle of a character: no half of it left */
	errfmt(err, 6, "abcd%s", "\xe2\x82\xac");
	assert_null(strchr(err, (char)0xe2));
}

static void test_cmdline(void **state)
{
	(void)state;
	char out[64];
	static const char raw[] = "python3\0-c\0\x1b]0;t\x07\0\xc2\x9b\0\xe2\x80\xae\0";
	proc_sample_cmdline_text(raw, sizeof raw - 1, out, sizeof out);
	assert_string_equal(out, "python3 -c ?]0;t? ? ?");
	/* cut in a character: the character goes */
	proc_sample_cmdline_text("ab\0\xe2\x82\xac", 6, out, 6);
	assert_string_equal(out, "ab ");
}

static void test_json(void **state)
{
	(void)state;
	cJSON *o = cJSON_CreateObject();
	const char *hostile = "\x1b[31m\xc2\x9b" "6n\xe2\x80\xae\x7f\xc3\xa9";
	cJSON_AddStringToObject(o, "name", hostile);
	char *text = cJSON_PrintUnformatted(o), *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(strsafe_fputs_json(text, f), 0);
	fclose(f);
	assert_string_equal(buf, "{\"name\":\"\\u001b[31m\\u009b6n\\u202e\\u007f\xc3\xa9\"}");
	/* the same value when read back */
	cJSON *back = cJSON_Parse(buf);
	assert_non_null(back);
	assert_string_equal(cJSON_GetObjectItem(back, "name")->valuestring, hostile);
	cJSON_Delete(back);
	cJSON_Delete(o);
	free(text);
	free(buf);
}

/* ------------------------------------------------------------- fuzz -- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/*
 * A second UTF-8 checker, written from the definition rather than from the
 * lead-byte table: decode by the count of leading ones, then reject overlong
 * forms by the smallest value each length may hold, surrogates and values
 * past U+10FFFF, and every class the contract forbids. Returns 0 when S is
 * shown safely, else the offset + 1 of the first offending byte.
 */
static size_t first_unsafe(const unsigned char *s, size_t n)
{
	static const uint32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (k == 0 || i + k > n)
			return i + 1;
		uint32_t cp = k == 1 ? c : (uint32_t)(c & (0x7f >> k));
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return i + 1;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min_for_len[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i + 1;
		if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
		    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
		    cp == 0x2029 || cp == 0xfeff)
			return i + 1;
		i += k;
	}
	return 0;
}

/* Random input biased towards the interesting: lead bytes, continuation
 * bytes, pieces of rejected characters, and valid multi-byte text. */
static size_t random_input(unsigned char *buf, size_t cap)
{
	static const char *const pieces[] = {
		"\xc2\x9b", "\xe2\x80\xae", "\xe2\x81\xa6", "\xd8\x9c", "\x1b[", "\xed\xa0\x80",
		"\xf4\x90\x80\x80", "\xc0\xaf", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3\xa9", "\x7f",
	};
	size_t n = rnd() % cap, i = 0;
	while (i < n) {
		uint32_t r = rnd() % 8;
		if (r < 3) {
			buf[i++] = (unsigned char)rnd();
		} else if (r < 5) {
			buf[i++] = (unsigned char)(0x80 + rnd() % 0x80);
		} else if (r < 6) {
			buf[i++] = (unsigned char)(0x20 + rnd() % 0x5f);
		} else {
			const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
			size_t l = strlen(p);
			if (rnd() % 4 == 0)
				l = 1 + rnd() % l; /* a piece cut short */
			for (size_t j = 0; j < l && i < n; j++)
				buf[i++] = (unsigned char)p[j];
		}
	}
	return n;
}

static void test_fuzz(void **state)
{
	(void)state;
	unsigned char in[96];
	char out[128], small[40], inplace[97];
	for (int iter = 0; iter < 200000; iter++) {
		size_t n = random_input(in, sizeof in);
		/* whole copy */
		size_t used = strsafe_copy(out, sizeof out, (const char *)in, n);
		size_t len = strlen(out);
		assert_int_equal(used, n);
		assert_true(len <= n);
		if (first_unsafe((const unsigned char *)out, len) != 0) {
			fprintf(stderr, "iteration %d: unsafe output at byte %zu\n", iter,
				first_unsafe((const unsigned char *)out, len) - 1);
			fail();
		}
		/* a cut copy: a prefix of the whole one, still safe, and it
		 * stopped only because the next character did not fit */
		size_t cap = 1 + rnd() % sizeof small;
		size_t u2 = strsafe_copy(small, cap, (const char *)in, n);
		size_t l2 = strlen(small);
		assert_true(l2 < cap);
		assert_true(u2 <= n);
		assert_memory_equal(small, out, l2);
		assert_int_equal(first_unsafe((const unsigned char *)small, l2), 0);
		if (u2 < n) {
			size_t k;
			uint32_t cp = strsafe_decode((const char *)in + u2, n - u2, &k);
			size_t need = strsafe_cp_ok(cp) ? k : 1;
			assert_true(l2 + need + 1 > cap);
		}
		/* the in-place form gives the same (input without NULs) */
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (in[i])
				inplace[m++] = (char)in[i];
		inplace[m] = '\0';
		char ref[128];
		strsafe_copy(ref, sizeof ref, inplace, m);
		strsafe_inplace(inplace);
		assert_string_equal(inplace, ref);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kept),
		cmocka_unit_test(test_c0_and_del),
		cmocka_unit_test(test_c1),
		cmocka_unit_test(test_bidi),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_cut_between_characters),
		cmocka_unit_test(test_shown),
		cmocka_unit_test(test_errfmt_is_safe),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
