/*
 * test_snapshot.c - snapshot model: validation, files, regrouping, printing,
 * and a deterministic fuzz loop over mutated snapshot files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/msg.h"
#include "snapshot/snapshot.h"
#include "base/units.h"
#include "base/xalloc.h"

static char tmpdir[64];

/* ------------------------------------------------------------ helpers -- */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static char *data_path(const char *name)
{
	return xasprintf("%s/snapshots/%s", PMT_TEST_DATA, name);
}

static char *tmp_path(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

/* Number of directory entries in tmpdir (not . and ..). */
static int tmp_entries(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void tmp_clean(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char *p;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		p = tmp_path(e->d_name);
		if (unlink(p) < 0 && errno == EISDIR)
			rmdir(p);
		free(p);
	}
	closedir(d);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pmt-test-snapshot-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	tmp_clean();
	return rmdir(tmpdir);
}

static int test_teardown(void **state)
{
	(void)state;
	tmp_clean();
	return 0;
}

/* s with the first occurrence of from replaced by to (fresh string). */
static char *replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);

	assert_non_null(p);
	return xasprintf("%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
}

static const char base[] =
	"{\"format\":\"pmt-top-snapshot\",\"version\":1,\"time\":1.5,\"pid\":7,"
	"\"key\":\"lineno\",\"cumulative\":false,\"nframe\":1,\"traced_current\":10,"
	"\"traced_peak\":20,\"total_size\":10,\"total_count\":1,\"ntraces\":1,"
	"\"groups\":[{\"size\":10,\"count\":1,\"frames\":[[\"a.py\",3]],\"line\":\"x\"}]}";

/* ---------------------------------------------------------- validation -- */

static void test_parse_valid(void **state)
{
	char err[256] = "";
	struct snapshot *s;

	(void)state;
	s = snapshot_parse(base, strlen(base), "mem", err, sizeof(err));
	assert_non_null(s);
	assert_string_equal(err, "");
	assert_int_equal(s->key, PROTO_KEY_LINENO);
	assert_false(s->cumulative);
	assert_int_equal(s->pid, 7);
	assert_true(s->time == 1.5);
	assert_int_equal(s->traced_peak, 20);
	assert_int_equal(s->ngroups, 1);
	assert_int_equal(s->groups[0].size, 10);
	assert_int_equal(s->groups[0].nframes, 1);
	assert_string_equal(s->groups[0].frames[0].filename, "a.py");
	assert_int_equal(s->groups[0].frames[0].lineno, 3);
	assert_string_equal(s->groups[0].line, "x");
	assert_string_equal(s->label, "");
	snapshot_free(s);
}

static void test_parse_limits_accepted(void **state)
{
	char err[256];
	char *t = replace(base, "\"size\":10,", "\"size\":9007199254740991,");
	char *u = replace(t, "\"time\":1.5", "\"time\":1763700000.125");
	struct snapshot *s = snapshot_parse(u, strlen(u), "mem", err, sizeof(err));

	(void)state;
	assert_non_null(s);
	assert_int_equal(s->groups[0].size, 9007199254740991ULL);
	assert_true(s->time == 1763700000.125);
	snapshot_free(s);
	free(t);
	free(u);
}

struct bad_case {
	const char *from, *to; /* edit of base */
	const char *msg;       /* expected message after "mem: " */
};

static const struct bad_case bad_cases[] = {
	{ "\"size\":10", "\"size\":-10", "groups[0].size is negative" },
	{ "\"size\":10", "\"size\":9007199254740992", "groups[0].size is too large (above 2^53-1)" },
	{ "\"size\":10", "\"size\":1e300", "groups[0].size is too large (above 2^53-1)" },
	{ "\"size\":10", "\"size\":1.5", "groups[0].size is not an integer (1.5)" },
	{ "\"size\":10", "\"size\":\"10\"", "groups[0].size is a string, not an integer" },
	{ "\"size\":10", "\"size\":null", "groups[0].size is null, not an integer" },
	{ "\"count\":1,", "", "groups[0].count is missing" },
	{ "[[\"a.py\",3]]", "[[\"a.py\"]]", "groups[0].frames[0] is not a [filename, lineno] pair" },
	{ "[[\"a.py\",3]]", "[[3,\"a.py\"]]", "groups[0].frames[0] is not a [filename, lineno] pair" },
	{ "[[\"a.py\",3]]", "[[\"a.py\",3,4]]", "groups[0].frames[0] is not a [filename, lineno] pair" },
	{ "[[\"a.py\",3]]", "[\"a.py\"]", "groups[0].frames[0] is not a [filename, lineno] pair" },
	{ "[[\"a.py\",3]]", "[[\"a.py\",-3]]", "groups[0].frames[0] line number is negative" },
	{ "[[\"a.py\",3]]", "[[\"a.py\",3.25]]", "groups[0].frames[0] line number is not an integer (3.25)" },
	{ "[[\"a.py\",3]]", "[]", "groups[0].frames is empty" },
	{ "[[\"a.py\",3]]", "{}", "groups[0].frames is an object, not an array" },
	{ "[[\"a.py\",3]]", "[[\"a.py\",3],[\"b.py\",4]]",
	  "groups[0].frames has more than nframe (1) frames" },
	{ ",\"line\":\"x\"", "", "groups[0].line is missing" },
	{ "\"line\":\"x\"", "\"line\":false", "groups[0].line is a boolean, not a string" },
	{ "\"key\":\"lineno\"", "\"key\":\"func\"", "key \"func\" is not lineno, filename or traceback" },
	{ "\"key\":\"lineno\"", "\"key\":7", "key is a number, not a string" },
	{ "\"key\":\"lineno\",", "", "key is missing" },
	{ "\"cumulative\":false", "\"cumulative\":\"no\"", "cumulative is a string, not true or false" },
	{ "\"cumulative\":false", "\"cumulative\":0", "cumulative is a number, not true or false" },
	{ "\"nframe\":1", "\"nframe\":0", "nframe is 0 (must be 1 to 65535)" },
	{ "\"nframe\":1", "\"nframe\":65536", "nframe is too large (above 65535)" },
	{ "\"time\":1.5", "\"time\":\"x\"", "time is a string, not a number" },
	{ "\"time\":1.5", "\"time\":-1", "time is out of range (-1)" },
	{ "\"time\":1.5,", "", "time is missing" },
	{ "\"pid\":7", "\"pid\":-1", "pid is negative" },
	{ "\"pid\":7", "\"pid\":4294967296", "pid is too large (above 2147483647)" },
	{ "\"total_size\":10", "\"total_size\":1e16", "total_size is too large (above 2^53-1)" },
	{ "\"ntraces\":1,", "", "ntraces is missing" },
	{ "\"traced_peak\":20", "\"traced_peak\":[]", "traced_peak is an array, not an integer" },
	{ "\"groups\":[", "\"groups\":{},\"g\":[", "groups is an object, not an array" },
	{ "[{\"size\"", "[1,{\"size\"", "groups[0] is a number, not an object" },
	{ "\"version\":1", "\"version\":2",
	  "version 2 is newer than this pmt-top understands (1); open it with a newer pmt-top" },
	{ "\"version\":1", "\"version\":0", "version 0 is not a snapshot version (1 to 1)" },
	{ "\"version\":1", "\"version\":\"1\"", "version is a string, not an integer" },
	{ "\"version\":1,", "", "version is missing" },
	{ "\"format\":\"pmt-top-snapshot\"", "\"format\":\"x\"", "not a pmt-top snapshot (format is \"x\")" },
	{ "\"format\":\"pmt-top-snapshot\"", "\"format\":\"a\\nb\"",
	  "not a pmt-top snapshot (format is \"a?b\")" },
	{ "\"format\":\"pmt-top-snapshot\"", "\"format\":1",
	  "not a pmt-top snapshot (format is a number, not a string)" },
	{ "\"line\":\"x\"}", "\"line\":\"x\"},{\"size\":5,\"count\":1,\"frames\":[[\"a.py\",3]],\"line\":\"\"}",
	  "groups[1] has the same location as groups[0] (a.py:3)" },
	{ "\"time\"", "\"label\":5,\"time\"", "label is a number, not a string" },
	{ "\"key\":\"lineno\"", "\"key\":\"filename\"",
	  "groups[0].frames[0] has line 3 (a filename snapshot has line 0)" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"source\":5", "source is a number, not a string" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"source\":null", "source is null, not a string" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"source\":\"exact\"", "source \"exact\" is not tracemalloc or sampled" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"source\":\"sampled\"", "interval is missing" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"source\":\"sampled\",\"interval\":0",
	  "interval is 0 (must be 1 to 2^30 bytes)" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"source\":\"sampled\",\"interval\":1073741825",
	  "interval is too large (above 1073741824)" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"source\":\"sampled\",\"interval\":-4096", "interval is negative" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"source\":\"sampled\",\"interval\":4096.5",
	  "interval is not an integer (4096.5)" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"source\":\"sampled\",\"interval\":\"4096\"",
	  "interval is a string, not an integer" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"interval\":4096",
	  "interval is given but source is tracemalloc (only a sampled snapshot has one)" },
	{ "\"ntraces\":1", "\"ntraces\":1,\"source\":\"tracemalloc\",\"interval\":4096",
	  "interval is given but source is tracemalloc (only a sampled snapshot has one)" },
};

static void test_parse_rejects(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char err[256] = "", want[300];
		char *text;
		struct snapshot *s;

		if (c->msg == NULL)
			continue;
		text = replace(base, c->from, c->to);
		s = snapshot_parse(text, strlen(text), "mem", err, sizeof(err));
		snprintf(want, sizeof(want), "mem: %s", c->msg);
		if (s != NULL || strcmp(err, want) != 0)
			fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i, text, err, want);
		assert_null(strchr(err, '\n'));
		free(text);
	}
}

/* A snapshot of the sampled profiler says so, keeps saying so through a
 * save, a reload, cJSON and a regroup; one without "source" is tracemalloc's. */
static void test_sampled_source(void **state)
{
	char err[256] = "", txt[64];
	char *t = replace(base, "\"ntraces\":1", "\"ntraces\":1,\"source\":\"sampled\",\"interval\":4096");
	struct snapshot *s = snapshot_parse(t, strlen(t), "mem", err, sizeof(err)), *s2, *r;
	struct snapshot *plain = snapshot_parse(base, strlen(base), "mem", err, sizeof(err));
	char *b1, *b2;
	size_t l1, l2;

	(void)state;
	assert_non_null(s);
	assert_non_null(plain);
	assert_int_equal(s->source, SNAPSHOT_SOURCE_SAMPLED);
	assert_int_equal(s->interval, 4096);
	assert_int_equal(plain->source, SNAPSHOT_SOURCE_TRACEMALLOC);
	assert_int_equal(plain->interval, 0);
	assert_true(snapshot_same_source(s, s));
	assert_false(snapshot_same_source(s, plain));
	/* the canonical text names the source only for sampled snapshots */
	b1 = snapshot_serialize(s, SIZE_MAX, &l1);
	assert_non_null(strstr(b1, "\"ntraces\": 1, \"source\": \"sampled\", \"interval\": 4096, \"groups\""));
	b2 = snapshot_serialize(plain, SIZE_MAX, &l2);
	assert_null(strstr(b2, "source"));
	free(b2);
	s2 = snapshot_parse(b1, l1, "again", err, sizeof(err));
	assert_non_null(s2);
	b2 = snapshot_serialize(s2, SIZE_MAX, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	free(b2);
	snapshot_free(s2);
	{
		cJSON *j = snapshot_to_json(s);
		char *c = cJSON_PrintUnformatted(j);

		s2 = snapshot_parse(c, strlen(c), "cjson", err, sizeof(err));
		assert_non_null(s2);
		assert_int_equal(s2->source, SNAPSHOT_SOURCE_SAMPLED);
		assert_int_equal(s2->interval, 4096);
		snapshot_free(s2);
		cJSON_free(c);
		cJSON_Delete(j);
	}
	r = snapshot_regroup(s, PROTO_KEY_FILENAME, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(r->source, SNAPSHOT_SOURCE_SAMPLED);
	assert_int_equal(r->interval, 4096);
	snapshot_free(r);
	/* an exact-mode profile (interval 1) is a sampled snapshot too */
	free(t);
	t = replace(base, "\"ntraces\":1", "\"ntraces\":1,\"source\":\"sampled\",\"interval\":1");
	s2 = snapshot_parse(t, strlen(t), "mem", err, sizeof(err));
	assert_non_null(s2);
	assert_false(snapshot_same_source(s, s2));
	snapshot_free(s2);
	/* the source named explicitly is the same as none */
	free(t);
	t = replace(base, "\"ntraces\":1", "\"ntraces\":1,\"source\":\"tracemalloc\"");
	s2 = snapshot_parse(t, strlen(t), "mem", err, sizeof(err));
	assert_non_null(s2);
	assert_true(snapshot_same_source(plain, s2));
	snapshot_free(s2);

	assert_string_equal(snapshot_source_text(txt, sizeof(txt), SNAPSHOT_SOURCE_TRACEMALLOC, 0), "tracemalloc");
	assert_string_equal(snapshot_source_text(txt, sizeof(txt), SNAPSHOT_SOURCE_SAMPLED, 4096),
			    "sampled, 1 per 4 KiB");
	assert_string_equal(snapshot_source_text(txt, sizeof(txt), SNAPSHOT_SOURCE_SAMPLED, 1048576),
			    "sampled, 1 per 1 MiB");
	assert_string_equal(snapshot_source_text(txt, sizeof(txt), SNAPSHOT_SOURCE_SAMPLED, 1000),
			    "sampled, 1 per 1000 B");
	assert_string_equal(snapshot_source_text(txt, sizeof(txt), SNAPSHOT_SOURCE_SAMPLED, 1),
			    "sampled, every block");
	assert_string_equal(snapshot_source_name(SNAPSHOT_SOURCE_SAMPLED), "sampled");
	assert_null(snapshot_source_name(SNAPSHOT_SOURCE_COUNT_));
	free(b1);
	free(t);
	snapshot_free(s);
	snapshot_free(plain);
}

/* A native group (what C code called from that line allocated) is its own
 * key beside the Python group of the same line: kept by both readers, both
 * writers and regrouping; "native" must be true or false. */
static void test_native_groups(void **state)
{
	static const char two[] =
		"{\"format\":\"pmt-top-snapshot\",\"version\":1,\"time\":1.5,\"pid\":7,"
		"\"key\":\"lineno\",\"cumulative\":false,\"nframe\":1,\"traced_current\":30,"
		"\"traced_peak\":30,\"total_size\":30,\"total_count\":2,\"ntraces\":2,"
		"\"source\":\"sampled\",\"interval\":4096,"
		"\"groups\":[{\"size\":20,\"count\":1,\"frames\":[[\"a.py\",3]],\"line\":\"x\",\"native\":true},"
		"{\"size\":10,\"count\":1,\"frames\":[[\"a.py\",3]],\"line\":\"x\",\"native\":false}]}";
	char err[256] = "";
	struct snapshot *s, *s2, *r;
	char *b1, *b2, *t;
	size_t l1, l2;

	(void)state;
	s = snapshot_parse(two, strlen(two), "mem", err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(s->ngroups, 2);
	assert_true(s->groups[0].native);
	assert_false(s->groups[1].native);
	assert_false(snapshot_group_equal(&s->groups[0], &s->groups[1]));
	assert_true(s->groups[0].key_hash != s->groups[1].key_hash);
	b1 = snapshot_serialize(s, SIZE_MAX, &l1);
	assert_non_null(strstr(b1, "\"line\": \"x\", \"native\": true}"));
	assert_null(strstr(strstr(b1, "\"native\": true") + 8, "native"));
	s2 = snapshot_parse(b1, l1, "again", err, sizeof(err));
	assert_non_null(s2);
	b2 = snapshot_serialize(s2, SIZE_MAX, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	free(b2);
	snapshot_free(s2);
	{
		cJSON *j = snapshot_to_json(s), *back = cJSON_Parse(two);
		char *c = cJSON_PrintUnformatted(j);

		s2 = snapshot_parse(c, strlen(c), "cjson", err, sizeof(err));
		assert_non_null(s2);
		assert_true(s2->groups[0].native);
		assert_false(s2->groups[1].native);
		snapshot_free(s2);
		s2 = snapshot_from_json(back, err, sizeof(err));
		assert_non_null(s2);
		assert_true(s2->groups[0].native && !s2->groups[1].native);
		snapshot_free(s2);
		cJSON_free(c);
		cJSON_Delete(j);
		cJSON_Delete(back);
	}
	r = snapshot_regroup(s, PROTO_KEY_FILENAME, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(r->ngroups, 2);
	assert_true(r->groups[0].native != r->groups[1].native);
	snapshot_free(r);
	/* the same native key twice is a duplicate; a non-boolean is refused */
	t = replace(two, "\"native\":false", "\"native\":true");
	assert_null(snapshot_parse(t, strlen(t), "mem", err, sizeof(err)));
	assert_non_null(strstr(err, "groups[1]"));
	free(t);
	t = replace(two, "\"native\":false", "\"native\":1");
	assert_null(snapshot_parse(t, strlen(t), "mem", err, sizeof(err)));
	assert_string_equal(err, "mem: groups[1].native is a number, not true or false");
	{
		cJSON *j = cJSON_Parse(t);

		assert_null(snapshot_from_json(j, err, sizeof(err)));
		assert_non_null(strstr(err, "groups[1].native is a number, not true or false"));
		cJSON_Delete(j);
	}
	free(t);
	free(b1);
	snapshot_free(s);
}

/* What the RSS was made of: optional, kept through save, load, the cJSON
 * writer and regrouping; only the rest may be negative. */
static void test_memory_record(void **state)
{
	char err[256] = "";
	char *t = replace(base, "\"ntraces\":1", "\"ntraces\":1,\"rss\":104857600,\"rss_python\":1048576,"
			  "\"rss_native\":94371840,\"rss_files\":8388608,\"rss_rest\":-4096");
	struct snapshot *s = snapshot_parse(t, strlen(t), "mem", err, sizeof(err)), *s2;
	struct snapshot *plain = snapshot_parse(base, strlen(base), "mem", err, sizeof(err));
	size_t l1, l2;

	(void)state;
	assert_non_null(s);
	assert_false(plain->mem.has);
	assert_true(s->mem.has);
	assert_int_equal(s->mem.rss, 104857600);
	assert_int_equal(s->mem.known, (1u << 0) | (1u << 2) | (1u << 7) | (1u << 9));
	assert_int_equal(s->mem.part[2], 94371840);
	assert_int_equal(s->mem.part[9], -4096);
	assert_string_equal(snapshot_mem_name(3), "malloc_free");
	assert_string_equal(snapshot_mem_label(2), "native heap");
	char *b1 = snapshot_serialize(s, SIZE_MAX, &l1);
	assert_non_null(strstr(b1, "\"rss\": 104857600, \"rss_python\": 1048576, \"rss_native\": 94371840, "
				  "\"rss_files\": 8388608, \"rss_rest\": -4096, \"groups\""));
	s2 = snapshot_parse(b1, l1, "again", err, sizeof(err));
	assert_non_null(s2);
	assert_memory_equal(&s2->mem, &s->mem, sizeof s->mem);
	char *b2 = snapshot_serialize(s2, SIZE_MAX, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	free(b2);
	snapshot_free(s2);
	cJSON *j = snapshot_to_json(s);
	char *c = cJSON_PrintUnformatted(j);
	s2 = snapshot_parse(c, strlen(c), "cjson", err, sizeof(err));
	assert_non_null(s2);
	assert_memory_equal(&s2->mem, &s->mem, sizeof s->mem);
	snapshot_free(s2);
	cJSON_free(c);
	cJSON_Delete(j);
	s2 = snapshot_regroup(s, PROTO_KEY_FILENAME, err, sizeof(err));
	assert_non_null(s2);
	assert_memory_equal(&s2->mem, &s->mem, sizeof s->mem);
	snapshot_free(s2);
	free(b1);
	free(t);
	/* Only the rest may be negative; numbers must be whole. */
	static const struct { const char *field, *want; } bad[] = {
		{ "\"rss\":-1", "rss is negative" },
		{ "\"rss\":10,\"rss_native\":-5", "rss_native is negative" },
		{ "\"rss\":10,\"rss_slack\":1.5", "rss_slack is not an integer (1.5)" },
		{ "\"rss\":10,\"rss_rest\":-1e300", "rss_rest is too large (above 2^53-1)" },
		{ "\"rss\":\"a lot\"", "rss is a string, not an integer" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char with[128];
		snprintf(with, sizeof with, "\"ntraces\":1,%s", bad[i].field);
		t = replace(base, "\"ntraces\":1", with);
		s2 = snapshot_parse(t, strlen(t), "mem", err, sizeof(err));
		assert_null(s2);
		if (strstr(err, bad[i].want) == NULL)
			fail_msg("%s: got \"%s\", wanted \"%s\"", bad[i].field, err, bad[i].want);
		free(t);
	}
	snapshot_free(s);
	snapshot_free(plain);
}

static void test_parse_rejects_key_combinations(void **state)
{
	char err[256];
	char *a = replace(base, "\"key\":\"lineno\",\"cumulative\":false",
			  "\"key\":\"traceback\",\"cumulative\":true");
	char *b = replace(base, "[[\"a.py\",3]]", "[[\"a.py\",3],[\"b.py\",4]]");
	char *b2 = replace(b, "\"nframe\":1", "\"nframe\":5");
	char *c = replace(base, "\"key\":\"lineno\"", "\"key\":\"traceback\"");
	char *c2 = replace(c, "[[\"a.py\",3]]", "[[\"a.py\",3],[\"b.py\",4]]");
	struct snapshot *s;

	(void)state;
	assert_null(snapshot_parse(a, strlen(a), "mem", err, sizeof(err)));
	assert_string_equal(err, "mem: cumulative is true with key traceback (not allowed)");
	assert_null(snapshot_parse(b2, strlen(b2), "mem", err, sizeof(err)));
	assert_string_equal(err, "mem: groups[0].frames has 2 frames (a lineno snapshot has one per group)");
	/* a traceback longer than nframe */
	assert_null(snapshot_parse(c2, strlen(c2), "mem", err, sizeof(err)));
	assert_string_equal(err, "mem: groups[0].frames has more than nframe (1) frames");
	/* the same with room for two frames is fine */
	free(b);
	b = replace(c2, "\"nframe\":1", "\"nframe\":2");
	s = snapshot_parse(b, strlen(b), "mem", err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(s->groups[0].nframes, 2);
	assert_string_equal(s->groups[0].frames[1].filename, "b.py");
	snapshot_free(s);
	free(a);
	free(b);
	free(b2);
	free(c);
	free(c2);
}

static void expect_utf8_error(const char *err, const char *byte, ptrdiff_t off)
{
	char want[128];

	snprintf(want, sizeof(want), "snap.json: not UTF-8 text (byte %s at byte %td)", byte, off);
	assert_string_equal(err, want);
}

static void test_parse_syntax(void **state)
{
	char err[256];
	size_t n = strlen(base);
	char *t;

	(void)state;
	/* cut in the middle: truncated, wherever the cut falls */
	for (size_t cut = 1; cut < n; cut += 7) {
		char want[128];

		assert_null(snapshot_parse(base, cut, "snap.json", err, sizeof(err)));
		snprintf(want, sizeof(want), "snap.json: truncated JSON at byte %zu (the file is incomplete)",
			 cut);
		if (strcmp(err, want) != 0 && cut > 1)
			fail_msg("cut %zu: %s", cut, err);
	}
	t = xasprintf("%s x", base);
	assert_null(snapshot_parse(t, strlen(t), "snap.json", err, sizeof(err)));
	assert_string_equal(err, "snap.json: invalid JSON at byte 253 (unexpected data after the object)");
	assert_int_equal(n, 252);
	free(t);
	t = replace(base, "\"pid\":7", "\"pid\" 7");
	assert_null(snapshot_parse(t, strlen(t), "snap.json", err, sizeof(err)));
	assert_string_equal(err, "snap.json: invalid JSON at byte 58");
	free(t);
	assert_null(snapshot_parse("[]", 2, "snap.json", err, sizeof(err)));
	assert_string_equal(err, "snap.json: not a pmt-top snapshot (the JSON is an array, not an object)");
	assert_null(snapshot_parse(" \n\t", 3, "snap.json", err, sizeof(err)));
	assert_string_equal(err, "snap.json: empty file (not a pmt-top snapshot)");
	assert_null(snapshot_parse("", 0, "snap.json", err, sizeof(err)));
	assert_string_equal(err, "snap.json: empty file (not a pmt-top snapshot)");
	assert_null(snapshot_parse("{\"a\":\0}", 7, "snap.json", err, sizeof(err)));
	assert_string_equal(err, "snap.json: not a pmt-top snapshot (NUL byte at byte 5)");
	t = replace(base, "a.py", "a\xff.py");
	assert_null(snapshot_parse(t, strlen(t), "snap.json", err, sizeof(err)));
	expect_utf8_error(err, "0xff", strstr(base, "a.py") - base + 1);
	free(t);
	/* an overlong encoding and a UTF-16 surrogate are not UTF-8 either */
	t = replace(base, "a.py", "a\xc0\xaf.py");
	assert_null(snapshot_parse(t, strlen(t), "snap.json", err, sizeof(err)));
	expect_utf8_error(err, "0xc0", strstr(base, "a.py") - base + 1);
	free(t);
	t = replace(base, "a.py", "a\xed\xa0\x80.py");
	assert_null(snapshot_parse(t, strlen(t), "snap.json", err, sizeof(err)));
	expect_utf8_error(err, "0xed", strstr(base, "a.py") - base + 1);
	free(t);
}

/*
 * Every prefix of a file, in a heap buffer of exactly its length (so that
 * AddressSanitizer sees a read past the end): the fast reader read the byte
 * after a text cut right after a member's colon or an array's comma.
 */
static void test_parse_cut_anywhere(void **state)
{
	static const char *const texts[] = {
		base,
		"{\"groups\": [{\"frames\": [[\"a.py\", 1]], \"size\": 1}, {\"frames\": ",
		"{\"groups\": [{\"size\": 1}, ",
		"{\"groups\": [{\"frames\": [[\"a.py\", 1], ",
	};
	char err[256];

	(void)state;
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		/* the first is whole: all but its last byte */
		size_t last = strlen(texts[t]) - (t == 0);

		for (size_t cut = 2; cut <= last; cut++) {
			char *b = xmalloc(cut), want[128];

			memcpy(b, texts[t], cut);
			assert_null(snapshot_parse(b, cut, "cut.json", err, sizeof(err)));
			snprintf(want, sizeof(want),
				 "cut.json: truncated JSON at byte %zu (the file is incomplete)", cut);
			if (strcmp(err, want) != 0)
				fail_msg("text %zu cut at %zu: %s", t, cut, err);
			free(b);
		}
	}
}

/* ---------------------------------------------------------- load/save -- */

static void test_roundtrip_fixtures(void **state)
{
	static const char *const names[] = { "lineno_old.json", "lineno_new.json", "traceback.json" };

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		char err[512];
		char *src = data_path(names[i]), *dst = tmp_path(names[i]);
		size_t l1, l2;
		char *b1, *b2;
		struct snapshot *s = snapshot_load(src, err, sizeof(err));
		struct snapshot *s2;
		struct stat st;

		if (s == NULL)
			fail_msg("%s", err);
		assert_int_equal(snapshot_save(s, dst, err, sizeof(err)), 0);
		b1 = read_file(src, &l1);
		b2 = read_file(dst, &l2);
		/* the fixtures are canonical: a re-save is byte-identical */
		assert_int_equal(l1, l2);
		assert_memory_equal(b1, b2, l1);
		assert_int_equal(stat(dst, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		s2 = snapshot_load(dst, err, sizeof(err));
		assert_non_null(s2);
		assert_int_equal(s2->ngroups, s->ngroups);
		assert_string_equal(s2->label, s->label);
		free(b2);
		b2 = snapshot_serialize(s2, SIZE_MAX, &l2);
		assert_int_equal(l1, l2);
		assert_memory_equal(b1, b2, l1);
		/* through cJSON and back: the same snapshot */
		{
			cJSON *j = snapshot_to_json(s);
			char *txt = cJSON_PrintUnformatted(j);
			struct snapshot *s3 = snapshot_parse(txt, strlen(txt), "cjson", err, sizeof(err));
			char *b3;
			size_t l3;

			assert_non_null(s3);
			b3 = snapshot_serialize(s3, SIZE_MAX, &l3);
			assert_int_equal(l3, l1);
			assert_memory_equal(b3, b1, l1);
			free(b3);
			snapshot_free(s3);
			cJSON_free(txt);
			cJSON_Delete(j);
		}
		snapshot_free(s);
		snapshot_free(s2);
		free(b1);
		free(b2);
		free(src);
		free(dst);
	}
}

static void test_fixture_content(void **state)
{
	char err[512];
	char *p = data_path("lineno_old.json");
	struct snapshot *s = snapshot_load(p, err, sizeof(err));

	(void)state;
	assert_non_null(s);
	assert_string_equal(s->label, "before deploy");
	assert_int_equal(s->ngroups, 5);
	assert_int_equal(s->total_size, 6362088);
	assert_string_equal(s->groups[4].frames[0].filename, "/srv/app/caf\xc3\xa9/\xc3\xbc" "ber.py");
	assert_string_equal(s->groups[4].line, "x = \"tab\\there\" + '\xc3\xa9'");
	for (size_t i = 0; i < s->ngroups; i++)
		assert_true(s->groups[i].key_hash == snapshot_group_hash(&s->groups[i]));
	/* interned: one copy of each string */
	assert_ptr_equal(s->groups[0].frames[0].filename, s->groups[0].frames[0].filename);
	snapshot_free(s);
	free(p);
}

static void test_load_wire_reply(void **state)
{
	char err[512];
	char *p = data_path("wire_reply.json");
	char *q = data_path("lineno_old.json");
	struct snapshot *s = snapshot_load(p, err, sizeof(err));
	struct snapshot *f = snapshot_load(q, err, sizeof(err));

	(void)state;
	assert_non_null(s);
	assert_non_null(f);
	assert_string_equal(s->label, "");
	assert_int_equal(s->ngroups, f->ngroups);
	for (size_t i = 0; i < s->ngroups; i++) {
		assert_true(snapshot_group_equal(&s->groups[i], &f->groups[i]));
		assert_int_equal(s->groups[i].size, f->groups[i].size);
	}
	snapshot_free(s);
	snapshot_free(f);
	free(p);
	free(q);
}

static void expect_load_error(const char *path, const char *msg)
{
	char err[512] = "", want[600];
	struct snapshot *s = snapshot_load(path, err, sizeof(err));

	snprintf(want, sizeof(want), "%s: %s", path, msg);
	if (s != NULL)
		fail_msg("%s loaded", path);
	if (strcmp(err, want) != 0)
		fail_msg("got \"%s\", want \"%s\"", err, want);
}

static void test_load_bad_files(void **state)
{
	char *p, *t;
	size_t len;
	char *b;
	char off[64];

	(void)state;
	p = data_path("bad/empty.json");
	expect_load_error(p, "empty file (not a pmt-top snapshot)");
	free(p);
	p = data_path("bad/truncated.json");
	expect_load_error(p, "truncated JSON at byte 500 (the file is incomplete)");
	free(p);
	p = data_path("bad/version7.json");
	expect_load_error(p, "version 7 is newer than this pmt-top understands (1); open it with a newer pmt-top");
	free(p);
	p = data_path("bad/wrong_format.json");
	expect_load_error(p, "not a pmt-top snapshot (format is \"x\")");
	free(p);
	p = data_path("bad/not_utf8.json");
	b = read_file(p, &len);
	snprintf(off, sizeof(off), "not UTF-8 text (byte 0xe9 at byte %zu)",
		 (size_t)(strstr(b, "caf") + 3 - b));
	expect_load_error(p, off);
	free(b);
	free(p);
	p = data_path("");
	expect_load_error(p, "is a directory, not a snapshot file");
	free(p);
	p = tmp_path("missing.json");
	expect_load_error(p, "no such file");
	free(p);
	expect_load_error("/dev/null", "is a device, not a snapshot file (snapshots are read from "
			  "regular files only: save it to one first)");
	/* nothing was written anywhere by these failures */
	assert_int_equal(tmp_entries(), 0);
	/* a bare cJSON number at the top level */
	t = tmp_path("num.json");
	write_file(t, "42\n", 3);
	expect_load_error(t, "not a pmt-top snapshot (the JSON is a number, not an object)");
	free(t);
}

static void test_save_errors(void **state)
{
	char err[512];
	char *src = data_path("lineno_old.json");
	struct snapshot *s = snapshot_load(src, err, sizeof(err));
	char *dst = tmp_path("out.json"), *sub = tmp_path("sub"), *p, *want;
	struct rlimit old, lim;
	size_t len;
	char *b;
	struct stat st;

	(void)state;
	assert_non_null(s);
	/* a directory that does not exist */
	p = xasprintf("%s/nodir/x.json", tmpdir);
	assert_int_equal(snapshot_save(s, p, err, sizeof(err)), -1);
	want = xasprintf("cannot save to %s: cannot create a file in %s/nodir: No such file or directory",
			 p, tmpdir);
	assert_string_equal(err, want);
	free(want);
	free(p);
	assert_int_equal(tmp_entries(), 0);
	/* the target is a directory */
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(snapshot_save(s, sub, err, sizeof(err)), -1);
	want = xasprintf("cannot save to %s: it is a directory (give a file name)", sub);
	assert_string_equal(err, want);
	free(want);
	assert_int_equal(stat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(tmp_entries(), 1);
	rmdir(sub);
	/* a write that fails half way (file size limit) leaves the old file */
	write_file(dst, "old content\n", 12);
	assert_int_equal(chmod(dst, 0644), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 100;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(snapshot_save(s, dst, err, sizeof(err)), -1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	want = xasprintf("cannot save to %s: File too large", dst);
	assert_string_equal(err, want);
	free(want);
	b = read_file(dst, &len);
	assert_int_equal(len, 12);
	assert_memory_equal(b, "old content\n", 12);
	free(b);
	assert_int_equal(tmp_entries(), 1); /* no temporary file left */
	/* a successful save replaces it with a file of mode 0600, never the mode
	 * of the file that was there */
	assert_int_equal(snapshot_save(s, dst, err, sizeof(err)), 0);
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(tmp_entries(), 1);
	snapshot_free(s);
	s = snapshot_load(dst, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(s->ngroups, 5);
	/* empty name */
	assert_int_equal(snapshot_save(s, "", err, sizeof(err)), -1);
	assert_string_equal(err, "cannot save a snapshot: no file name given");
	snapshot_free(s);
	free(src);
	free(dst);
	free(sub);
}

/*
 * pmt-top saves as root where others may have been first: a file another user
 * made (mode 0666) is replaced by a new 0600 file of ours, a symlink is
 * replaced rather than followed, and a user who may not replace a file in a
 * sticky directory is told so in one sentence. Needs root (skipped without).
 */
/* A save removes the temporary files that killed saves to the same name
 * left (writer gone, ours, a regular file, over a minute old), and nothing else. */
static void test_save_sweeps_dead_writers_temps(void **state)
{
	char err[512];
	char *src = data_path("lineno_old.json"), *dst = tmp_path("x.json");
	struct snapshot *s = snapshot_load(src, err, sizeof(err));
	struct timespec old[2] = {{.tv_sec = time(NULL) - 600}, {.tv_sec = time(NULL) - 600}};
	char *stale, *fresh, *live, *other, *link;
	struct stat st;
	pid_t dead;
	int status;

	(void)state;
	assert_non_null(s);
	dead = fork();
	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, &status, 0), dead);
	stale = xasprintf("%s/.x.json.pmt%ld-0000beef", tmpdir, (long)dead);
	fresh = xasprintf("%s/.x.json.pmt%ld-0000cafe", tmpdir, (long)dead);
	live = xasprintf("%s/.x.json.pmt%ld-0000f00d", tmpdir, (long)getppid());
	other = xasprintf("%s/.y.json.pmt%ld-0000beef", tmpdir, (long)dead);
	link = xasprintf("%s/.x.json.pmt%ld-0000dead", tmpdir, (long)dead);
	write_file(stale, "{", 1);
	write_file(fresh, "{", 1);
	write_file(live, "{", 1);
	write_file(other, "{", 1);
	assert_int_equal(symlink(src, link), 0);
	assert_int_equal(utimensat(AT_FDCWD, stale, old, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, live, old, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, other, old, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, link, old, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(snapshot_save(s, dst, err, sizeof(err)), 0);
	assert_int_equal(lstat(stale, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(lstat(fresh, &st), 0);	/* its writer may still be at work elsewhere */
	assert_int_equal(lstat(live, &st), 0);
	assert_int_equal(lstat(other, &st), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	snapshot_free(s);
	free(src);
	free(dst);
	free(stale);
	free(fresh);
	free(live);
	free(other);
	free(link);
}

static void test_save_over_files_of_others(void **state)
{
	char err[512];
	char *src = data_path("lineno_old.json");
	char *sticky = tmp_path("sticky"), *victim = tmp_path("victim");
	char *dst = xasprintf("%s/x.json", sticky), *link = xasprintf("%s/l.json", sticky);
	char *theirs = xasprintf("%s/r.json", sticky), *b;
	struct snapshot *s;
	struct stat before, st;
	size_t len;
	int pfd[2], status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();
	s = snapshot_load(src, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(chmod(tmpdir, 0711), 0);
	assert_int_equal(mkdir(sticky, 0700), 0);
	assert_int_equal(chmod(sticky, 01777), 0);
	/* another user's world-writable file */
	write_file(dst, "planted\n", 8);
	assert_int_equal(chown(dst, 65534, 65534), 0);
	assert_int_equal(chmod(dst, 0666), 0);
	assert_int_equal(stat(dst, &before), 0);
	assert_int_equal(snapshot_save(s, dst, err, sizeof(err)), 0);
	assert_int_equal(lstat(dst, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(st.st_ino != before.st_ino);
	/* another user's symlink to a file of ours */
	write_file(victim, "victim\n", 7);
	assert_int_equal(symlink(victim, link), 0);
	assert_int_equal(lchown(link, 65534, 65534), 0);
	assert_int_equal(snapshot_save(s, link, err, sizeof(err)), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	b = read_file(victim, &len);
	assert_int_equal(len, 7);
	assert_memory_equal(b, "victim\n", 7);
	free(b);
	/* as another user, over root's file in the sticky directory */
	write_file(theirs, "root's\n", 7);
	assert_int_equal(chmod(theirs, 0666), 0);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc;

		close(pfd[0]);
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		rc = snapshot_save(s, theirs, err, sizeof(err));
		if (write(pfd[1], err, strlen(err)) < 0)
			_exit(3);
		_exit(rc == -1 ? 0 : 1);
	}
	close(pfd[1]);
	memset(err, 0, sizeof(err));
	len = 0;
	for (ssize_t n; (n = read(pfd[0], err + len, sizeof(err) - 1 - len)) > 0;)
		len += (size_t)n;
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	b = xasprintf("cannot save to %s: the file there belongs to uid 0 and %s is a sticky directory, "
		      "so it cannot be replaced (remove it or choose another name)", theirs, sticky);
	assert_string_equal(err, b);
	free(b);
	b = read_file(theirs, &len);
	assert_int_equal(len, 7);
	assert_memory_equal(b, "root's\n", 7);
	free(b);
	/* nothing left behind: the three files only */
	{
		DIR *d = opendir(sticky);
		struct dirent *e;
		int n = 0;

		assert_non_null(d);
		while ((e = readdir(d)) != NULL)
			n += e->d_name[0] != '.';
		closedir(d);
		assert_int_equal(n, 3);
	}
	unlink(dst);
	unlink(link);
	unlink(theirs);
	rmdir(sticky);
	assert_int_equal(chmod(tmpdir, 0700), 0);
	snapshot_free(s);
	free(src);
	free(sticky);
	free(victim);
	free(dst);
	free(link);
	free(theirs);
}

/*
 * A FIFO is refused at once, without waiting for a writer (open(2) and
 * read(2) of a FIFO with no writer block for ever), and so is one with a
 * writer: snapshots are read from regular files only.
 */
static void test_load_refuses_fifo(void **state)
{
	char *fifo = tmp_path("pipe.json"), want[600], err[512] = "";
	struct snapshot *s;
	int wfd;

	(void)state;
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(10); /* a hang fails the test instead of the suite's timeout */
	s = snapshot_load(fifo, err, sizeof(err));
	assert_null(s);
	snprintf(want, sizeof(want), "%s: is a FIFO, not a snapshot file (snapshots are read from "
		 "regular files only: save it to one first)", fifo);
	assert_string_equal(err, want);
	wfd = open(fifo, O_RDWR | O_NONBLOCK); /* now with a writer holding it open */
	assert_true(wfd >= 0);
	assert_true(write(wfd, "{}", 2) == 2);
	assert_null(snapshot_load(fifo, err, sizeof(err)));
	assert_string_equal(err, want);
	alarm(0);
	close(wfd);
	free(fifo);
}

/* ----------------------------------------------------------- regroup -- */

static const struct snapshot_group *find(const struct snapshot *s, const char *file, uint32_t line)
{
	for (size_t i = 0; i < s->ngroups; i++)
		if (strcmp(s->groups[i].frames[0].filename, file) == 0 &&
		    s->groups[i].frames[0].lineno == line)
			return &s->groups[i];
	return NULL;
}

static void test_regroup(void **state)
{
	char err[512];
	char *p = data_path("traceback.json");
	struct snapshot *tb = snapshot_load(p, err, sizeof(err));
	struct snapshot *ln, *fn, *fn2, *copy;
	const struct snapshot_group *g;

	(void)state;
	assert_non_null(tb);
	ln = snapshot_regroup(tb, PROTO_KEY_LINENO, err, sizeof(err));
	assert_non_null(ln);
	assert_int_equal(ln->key, PROTO_KEY_LINENO);
	assert_int_equal(ln->ngroups, 3);
	g = &ln->groups[0]; /* sorted by size */
	assert_string_equal(g->frames[0].filename, "/srv/app/cache.py");
	assert_int_equal(g->frames[0].lineno, 41);
	assert_int_equal(g->size, 5000000);
	assert_int_equal(g->count, 500);
	assert_int_equal(g->nframes, 1);
	assert_string_equal(g->line, "self._store[key] = bytes(blob)");
	g = find(ln, "/srv/app/cache.py", 44);
	assert_non_null(g);
	assert_int_equal(g->size, 500000);
	g = find(ln, "/srv/app/models.py", 120);
	assert_non_null(g);
	assert_int_equal(g->count, 7);
	assert_int_equal(ln->total_size, tb->total_size);
	assert_string_equal(ln->label, "tracebacks");

	fn = snapshot_regroup(tb, PROTO_KEY_FILENAME, err, sizeof(err));
	fn2 = snapshot_regroup(ln, PROTO_KEY_FILENAME, err, sizeof(err));
	assert_non_null(fn);
	assert_non_null(fn2);
	assert_int_equal(fn->ngroups, 2);
	assert_int_equal(fn2->ngroups, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_true(snapshot_group_equal(&fn->groups[i], &fn2->groups[i]));
		assert_int_equal(fn->groups[i].size, fn2->groups[i].size);
		assert_int_equal(fn->groups[i].frames[0].lineno, 0);
		assert_string_equal(fn->groups[i].line, "");
	}
	assert_string_equal(fn->groups[0].frames[0].filename, "/srv/app/cache.py");
	assert_int_equal(fn->groups[0].size, 5500000);
	assert_int_equal(fn->groups[0].count, 550);
	/* the saved form of a regrouped snapshot loads back */
	{
		size_t len;
		char *txt = snapshot_serialize(fn, SIZE_MAX, &len);
		struct snapshot *back = snapshot_parse(txt, len, "regrouped", err, sizeof(err));

		assert_non_null(back);
		assert_int_equal(back->key, PROTO_KEY_FILENAME);
		snapshot_free(back);
		free(txt);
	}
	/* same key: a copy */
	copy = snapshot_regroup(ln, PROTO_KEY_LINENO, err, sizeof(err));
	assert_non_null(copy);
	assert_int_equal(copy->ngroups, ln->ngroups);
	snapshot_free(copy);
	/* finer keys cannot be recovered */
	assert_null(snapshot_regroup(fn, PROTO_KEY_LINENO, err, sizeof(err)));
	assert_string_equal(err, "cannot regroup a snapshot taken by filename into lines: line numbers "
				 "were not recorded (take the snapshot with --key lineno)");
	assert_null(snapshot_regroup(ln, PROTO_KEY_TRACEBACK, err, sizeof(err)));
	assert_string_equal(err, "cannot regroup a snapshot taken by lineno into tracebacks: they were "
				 "not recorded (take the snapshot with --key traceback)");
	snapshot_free(tb);
	snapshot_free(ln);
	snapshot_free(fn);
	snapshot_free(fn2);
	free(p);
}

/*
 * Sums of groups stay within what a snapshot may hold (2^53 - 1): a file can
 * have a thousand groups of 2^53 - 1 bytes in one file, and their sum by
 * filename went past what a saved file may hold (and past 2^63, which
 * snapdiff's differences did not survive).
 */
static void test_regroup_caps_sums(void **state)
{
	const uint64_t max = (uint64_t)SNAPSHOT_MAX_INT;
	struct snapshot *s = snapshot_new(PROTO_KEY_LINENO, false, 1), *f, *back;
	char err[256], *text;
	size_t len;

	(void)state;
	for (uint32_t line = 1; line <= 1025; line++) {
		struct snapshot_frame fr = { "big.py", line };

		snapshot_add_group(s, max, max, &fr, 1, "");
	}
	f = snapshot_regroup(s, PROTO_KEY_FILENAME, err, sizeof(err));
	assert_non_null(f);
	assert_int_equal(f->ngroups, 1);
	assert_true(f->groups[0].size == max && f->groups[0].count == max);
	text = snapshot_serialize(f, SIZE_MAX, &len);
	back = snapshot_parse(text, len, "regrouped", err, sizeof(err));
	if (back == NULL)
		fail_msg("%s", err);
	snapshot_free(back);
	free(text);
	snapshot_free(s);
	snapshot_free(f);
}

static void test_regroup_cumulative(void **state)
{
	struct snapshot *s = snapshot_new(PROTO_KEY_LINENO, true, 4), *f;
	struct snapshot_frame a = { "m.py", 1 }, b = { "m.py", 9 }, c = { "n.py", 2 };
	char err[256];

	(void)state;
	snapshot_add_group(s, 100, 1, &a, 1, "a()");
	snapshot_add_group(s, 100, 1, &b, 1, "b()");
	snapshot_add_group(s, 40, 2, &c, 1, "");
	f = snapshot_regroup(s, PROTO_KEY_FILENAME, err, sizeof(err));
	assert_non_null(f);
	assert_true(f->cumulative);
	assert_int_equal(f->ngroups, 2);
	assert_string_equal(f->groups[0].frames[0].filename, "m.py");
	assert_int_equal(f->groups[0].size, 200);
	assert_int_equal(f->groups[0].count, 2);
	assert_int_equal(f->groups[1].size, 40);
	snapshot_free(s);
	snapshot_free(f);
}

/* ------------------------------------------------------------- print -- */

static void test_format_size(void **state)
{
	char b[32];

	(void)state;
	assert_string_equal(units_bytes_table(b, sizeof(b), 0, false), "0 B");
	assert_string_equal(units_bytes_table(b, sizeof(b), 0, true), "0 B");
	assert_string_equal(units_bytes_table(b, sizeof(b), 1023, false), "1023 B");
	assert_string_equal(units_bytes_table(b, sizeof(b), 1024, true), "+1.0 KiB");
	assert_string_equal(units_bytes_table(b, sizeof(b), -4096, true), "-4.0 KiB");
	assert_string_equal(units_bytes_table(b, sizeof(b), -4096, false), "-4.0 KiB");
	assert_string_equal(units_bytes_table(b, sizeof(b), 12897484, true), "+12.3 MiB");
	assert_string_equal(units_bytes_table(b, sizeof(b), 1048575, false), "1.0 MiB");
	assert_string_equal(units_bytes_table(b, sizeof(b), 3LL << 30, false), "3.0 GiB");
}

static char *print_to_string(const struct snapshot *s, size_t top, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(snapshot_print(f, s, top, json), 0);
	fclose(f);
	return buf;
}

static void test_print(void **state)
{
	char err[512];
	char *p = data_path("lineno_new.json"), *q = data_path("traceback.json");
	struct snapshot *s = snapshot_load(p, err, sizeof(err));
	struct snapshot *t = snapshot_load(q, err, sizeof(err)), *back;
	char *out;

	(void)state;
	assert_non_null(s);
	assert_non_null(t);
	out = print_to_string(s, 3, false);
	assert_string_equal(out,
		"snapshot \"after deploy\" of pid 31337 at 2025-11-21 04:41:00 UTC, key lineno, nframe 1\n"
		"traced 18.0 MiB in 9994 blocks (current 18.0 MiB, peak 36.0 MiB); 5 groups, 3 shown\n"
		"      SIZE      COUNT    AVERAGE  LOCATION\n"
		"  15.0 MiB       3840    4.0 KiB  /srv/app/cache.py:41: self._store[key] = bytes(blob)\n"
		"   2.0 MiB       2048    1.0 KiB  /srv/app/worker.py:88: buf.extend(chunk)\n"
		"   1.0 MiB       4096      256 B  /srv/app/models.py:120: return Record(**row)\n");
	free(out);
	out = print_to_string(t, 1, false);
	assert_non_null(strstr(out,
		"   2.9 MiB        300    9.8 KiB  /srv/app/cache.py:41: self._store[key] = bytes(blob)\n"
		"                                   from /srv/app/handlers.py:17\n"
		"                                   from /srv/app/main.py:5\n"));
	free(out);
	/* JSON: a loadable snapshot limited to the top groups */
	out = print_to_string(s, 2, true);
	back = snapshot_parse(out, strlen(out), "json", err, sizeof(err));
	assert_non_null(back);
	assert_int_equal(back->ngroups, 2);
	assert_int_equal(back->groups[1].size, 2097152);
	assert_int_equal(back->total_size, s->total_size);
	snapshot_free(back);
	free(out);
	snapshot_free(s);
	snapshot_free(t);
	free(p);
	free(q);
}

/* -------------------------------------------------------------- fuzz -- */

static uint64_t fuzz_state = 0x9e3779b97f4a7c15ULL;

static uint64_t fuzz_rand(void)
{
	fuzz_state ^= fuzz_state << 13;
	fuzz_state ^= fuzz_state >> 7;
	fuzz_state ^= fuzz_state << 17;
	return fuzz_state;
}

static const char *const tokens[] = {
	"-1", "1e309", "9007199254740993", "0.5", "null", "true", "\"\"", "[]", "{}",
	"\"\\ud800\"", "\"\\u0000\"", "\xff", "\xc3", "]]", "}", ",", "\"", "\\", "[[\"x\",1]]",
	"\"traceback\"", "\"filename\"", "65536", "1e2",
};

/* One deterministic mutation of src into a fresh buffer. */
static char *mutate(const char *src, size_t n, size_t *outlen)
{
	size_t cap = n * 2 + 64, len = n;
	char *b = xmalloc(cap);
	int rounds = 1 + (int)(fuzz_rand() % 3);

	memcpy(b, src, n);
	while (rounds--) {
		size_t pos = len ? fuzz_rand() % len : 0;

		switch (fuzz_rand() % 5) {
		case 0: /* bit flips */
			for (int k = 0; k < 1 + (int)(fuzz_rand() % 4) && len; k++)
				b[fuzz_rand() % len] ^= (char)(1u << (fuzz_rand() % 8));
			break;
		case 1: /* truncate */
			len = pos;
			break;
		case 2: { /* splice: copy a piece of the original over another place */
			size_t from = fuzz_rand() % n, cnt = fuzz_rand() % 64;

			if (from + cnt > n)
				cnt = n - from;
			if (pos + cnt > cap)
				cnt = cap - pos;
			memcpy(b + pos, src + from, cnt);
			if (pos + cnt > len)
				len = pos + cnt;
			break;
		}
		case 3: { /* insert a token */
			const char *t = tokens[fuzz_rand() % (sizeof(tokens) / sizeof(tokens[0]))];
			size_t tl = strlen(t);

			if (len + tl <= cap) {
				memmove(b + pos + tl, b + pos, len - pos);
				memcpy(b + pos, t, tl);
				len += tl;
			}
			break;
		}
		default: { /* delete a run */
			size_t cnt = fuzz_rand() % 16;

			if (pos + cnt > len)
				cnt = len - pos;
			memmove(b + pos, b + pos + cnt, len - pos - cnt);
			len -= cnt;
		}
		}
	}
	*outlen = len;
	return b;
}

static void test_fuzz(void **state)
{
	static const char *const names[] = { "lineno_old.json", "traceback.json" };
	int accepted = 0, rejected = 0;

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		char *p = data_path(names[f]);
		size_t n;
		char *src = read_file(p, &n);

		for (int it = 0; it < 2500; it++) {
			char err[256] = "";
			size_t len;
			char *m = mutate(src, n, &len);
			struct snapshot *s = snapshot_parse(m, len, "fuzz", err, sizeof(err));

			if (s == NULL) {
				rejected++;
				assert_true(strncmp(err, "fuzz: ", 6) == 0);
				assert_true(strlen(err) > 6);
				assert_null(strchr(err, '\n'));
			} else {
				/* whatever was accepted saves and reloads to the same bytes */
				size_t l1, l2;
				char *t1 = snapshot_serialize(s, SIZE_MAX, &l1);
				struct snapshot *s2 = snapshot_parse(t1, l1, "again", err, sizeof(err));
				char *t2;

				accepted++;
				if (s2 == NULL)
					fail_msg("re-parse failed: %s", err);
				t2 = snapshot_serialize(s2, SIZE_MAX, &l2);
				assert_int_equal(l1, l2);
				assert_memory_equal(t1, t2, l1);
				free(t1);
				free(t2);
				snapshot_free(s2);
				snapshot_free(s);
			}
			free(m);
		}
		free(src);
		free(p);
	}
	/* the loop exercised both outcomes */
	assert_true(accepted > 50);
	assert_true(rejected > 1000);
	print_message("fuzz: %d accepted, %d rejected\n", accepted, rejected);
}

/* Compare the fast reader with the cJSON path on one input. */
static bool same_outcome(const char *buf, size_t len)
{
	char e1[256] = "", e2[256] = "";
	bool gave_up;
	struct snapshot *a = snapshot_parse_fast(buf, len, "in", e1, sizeof(e1), &gave_up);
	struct snapshot *b = snapshot_parse_cjson(buf, len, "in", e2, sizeof(e2));

	if (gave_up) {
		assert_null(a);
	} else if (a == NULL || b == NULL) {
		if (a != NULL || b != NULL || strcmp(e1, e2) != 0)
			fail_msg("fast: %s / cJSON: %s on \"%.*s\"", a ? "ok" : e1, b ? "ok" : e2,
				 (int)len, buf);
	} else {
		size_t l1, l2;
		char *t1 = snapshot_serialize(a, SIZE_MAX, &l1);
		char *t2 = snapshot_serialize(b, SIZE_MAX, &l2);

		assert_int_equal(l1, l2);
		assert_memory_equal(t1, t2, l1);
		free(t1);
		free(t2);
	}
	snapshot_free(a);
	snapshot_free(b);
	return !gave_up;
}

static void test_fast_reader_agrees(void **state)
{
	static const char *const names[] = { "lineno_old.json", "lineno_new.json", "traceback.json",
					     "wire_reply.json" };
	int read_fast = 0, total = 0;

	(void)state;
	for (size_t f = 0; f < 4; f++) {
		char *p = data_path(names[f]);
		size_t n;
		char *src = read_file(p, &n);

		/* the fixtures themselves: read fast, except the reply wrapper */
		assert_true(same_outcome(src, n) == (f < 3));
		for (int it = 0; it < 2000; it++) {
			size_t len;
			char *m = mutate(src, n, &len);

			read_fast += same_outcome(m, len);
			total++;
			free(m);
		}
		free(src);
		free(p);
	}
	/* every edit of the validation table, too */
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char *text = replace(base, bad_cases[i].from, bad_cases[i].to);

		same_outcome(text, strlen(text));
		free(text);
	}
	{
		static const char *const odd[] = {
			"{\"format\":\"pmt-top-snapshot\",\"format\":\"x\"}", /* first wins */
			"{\"si\\u007ae\":1}", "{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":-0}", "[1,2]",
			"\"str\"", "true", "{\"a\":1e400}", "{\"groups\":[[[[]]]]}",
		};

		for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
			same_outcome(odd[i], strlen(odd[i]));
	}
	/* many mutated files are still read (or refused) by the fast reader */
	print_message("fast reader: %d of %d mutated inputs\n", read_fast, total);
	assert_true(read_fast > total / 10);
}

/* ------------------------------------------- replies read as text -- */

/* snap's canonical text, for comparisons. */
static char *text_of(const struct snapshot *snap)
{
	return snapshot_serialize(snap, SIZE_MAX, NULL);
}

/* An exact-size copy, so that ASan sees any read past the end. */
static char *exact_copy(const char *s, size_t n)
{
	char *c = xmalloc(n ? n : 1);

	memcpy(c, s, n);
	return c;
}

/* The result object of a real agent reply (tests/data/snapshots): the
 * text path and the cJSON path give the same snapshot. */
static void test_consume_real_reply(void **state)
{
	char *path = data_path("reply_snapshot.ndjson"), err[512], e2[512];
	size_t len, off, rlen;
	char *line = read_file(path, &len);
	uint64_t id;
	struct msg m;
	bool gone;

	(void)state;
	while (len > 0 && line[len - 1] == '\n')
		len--;
	assert_true(msg_peek_result(line, len, &id, &off, &rlen));
	assert_int_equal(msg_decode(line, len, &m, err, sizeof err), 0);
	struct snapshot *want = snapshot_from_json(m.result, err, sizeof err);
	assert_non_null(want);
	char *text = exact_copy(line + off, rlen);
	struct snapshot *got = snapshot_parse_consume(text, rlen, "reply", e2, sizeof e2, &gone);
	if (got == NULL)
		fail_msg("%s", e2);
	assert_false(gone);
	char *a = text_of(want), *b = text_of(got);
	assert_string_equal(a, b);
	assert_true(got->ngroups > 3);
	free(a);
	free(b);
	snapshot_free(got);
	free(text);

	/* Cut anywhere: a one-line error, never a snapshot, never a crash. */
	for (size_t n = 0; n < rlen; n++) {
		char *cut = exact_copy(line + off, n);

		got = snapshot_parse_consume(cut, n, "reply", e2, sizeof e2, &gone);
		if (got != NULL)
			fail_msg("a reply cut at byte %zu was read", n);
		assert_non_null(strstr(e2, "reply: "));
		assert_null(strchr(e2, '\n'));
		free(cut);
	}
	/* Mutated: the same outcome as snapshot_parse() (nothing is given
	 * back below 1 MiB, so the cJSON path decides as it always did). */
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	static const char bytes[] = "{}[],:\"\\0123456789-.eE tfnul\x01\xff";
	for (int t = 0; t < 4000; t++) {
		char *mut = exact_copy(line + off, rlen), *copy;
		struct snapshot *ref;
		char e3[512];

		for (int k = 0; k < 1 + t % 3; k++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			mut[(rng >> 33) % rlen] = bytes[(rng >> 20) % (sizeof bytes - 1)];
		}
		copy = exact_copy(mut, rlen);
		ref = snapshot_parse(copy, rlen, "reply", e3, sizeof e3);
		got = snapshot_parse_consume(mut, rlen, "reply", e2, sizeof e2, &gone);
		assert_false(gone);
		assert_int_equal(ref == NULL, got == NULL);
		if (ref == NULL) {
			assert_string_equal(e2, e3);
		} else {
			a = text_of(ref);
			b = text_of(got);
			assert_string_equal(a, b);
			free(a);
			free(b);
		}
		snapshot_free(ref);
		snapshot_free(got);
		free(copy);
		free(mut);
	}
	snapshot_free(want);
	msg_done(&m);
	free(line);
	free(path);
}

/* A result of n lineno groups as the agent writes it; HEAD_LAST puts the
 * header fields after the groups. Every group distinct, or with DUP the
 * last one repeats the first. */
static char *big_result(size_t n, bool head_last, bool dup, size_t *len)
{
	const char *head = "\"time\":1795833797.39,\"pid\":21887,\"key\":\"lineno\",\"cumulative\":false,"
			   "\"nframe\":1,\"traced_current\":1558938,\"traced_peak\":5351519,"
			   "\"total_size\":1024889,\"total_count\":4875,\"ntraces\":9289,\"took_ms\":20.2";
	size_t cap = 256 + n * 120, l = 0;
	char *b = xmalloc(cap);

	l += (size_t)snprintf(b + l, cap - l, "{%s%s\"groups\":[", head_last ? "" : head, head_last ? "" : ",");
	for (size_t i = 0; i < n; i++)
		l += (size_t)snprintf(b + l, cap - l, "%s{\"size\":%zu,\"count\":%zu,\"frames\":[[\"<gen \\u00e9>\",%zu]],"
				      "\"line\":\"keep.append([%zu])\\t\\u0000x\"}", i ? "," : "", 64 + i % 1000, 1 + i % 7,
				      dup && i == n - 1 ? (size_t)1 : i + 1, i);
	l += (size_t)snprintf(b + l, cap - l, "]%s%s}", head_last ? "," : "", head_last ? head : "");
	*len = l;
	return b;
}

/* 100k groups (several MiB, so pages are given back while reading): the
 * same snapshot as the cJSON path, whichever order the fields come in. */
static void test_consume_big(void **state)
{
	char err[512], e2[512];
	bool gone;

	(void)state;
	for (int head_last = 0; head_last < 2; head_last++) {
		size_t len;
		char *text = big_result(100000, head_last, false, &len);
		char *copy = exact_copy(text, len);
		struct snapshot *want = snapshot_parse_cjson(copy, len, "reply", err, sizeof err);
		struct snapshot *got = snapshot_parse_consume(text, len, "reply", e2, sizeof e2, &gone);

		if (want == NULL || got == NULL)
			fail_msg("%s / %s", want ? "" : err, got ? "" : e2);
		assert_int_equal(got->ngroups, 100000);
		assert_string_equal(got->groups[5].line, "keep.append([5])\t");
		char *a = text_of(want), *b = text_of(got);
		assert_string_equal(a, b);
		free(a);
		free(b);
		snapshot_free(want);
		snapshot_free(got);
		free(copy);
		free(text);
	}
	/* A duplicate at the end: found after the pages went, said the same way. */
	size_t len;
	char *text = big_result(100000, false, true, &len);
	char *copy = exact_copy(text, len);
	assert_null(snapshot_parse_cjson(copy, len, "reply", err, sizeof err));
	assert_null(snapshot_parse_consume(text, len, "reply", e2, sizeof e2, &gone));
	assert_false(gone);
	assert_string_equal(e2, err);
	assert_string_equal(e2, "reply: groups[99999] has the same location as groups[0] (<gen \xc3\xa9>:1)");
	free(text);
	free(copy);
	/* Broken near the end, after pages went: one line that says where. */
	text = big_result(100000, false, false, &len);
	text[len - 2] = '}'; /* "]}" becomes "}}" */
	assert_null(snapshot_parse_consume(text, len, "reply", e2, sizeof e2, &gone));
	assert_true(gone);
	assert_non_null(strstr(e2, "reply: invalid JSON near byte "));
	assert_null(strchr(e2, '\n'));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consume_real_reply),
		cmocka_unit_test(test_consume_big),
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_limits_accepted),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_rejects_key_combinations),
		cmocka_unit_test(test_sampled_source),
		cmocka_unit_test(test_native_groups),
		cmocka_unit_test(test_memory_record),
		cmocka_unit_test(test_parse_syntax),
		cmocka_unit_test(test_parse_cut_anywhere),
		cmocka_unit_test_teardown(test_roundtrip_fixtures, test_teardown),
		cmocka_unit_test(test_fixture_content),
		cmocka_unit_test(test_load_wire_reply),
		cmocka_unit_test_teardown(test_load_bad_files, test_teardown),
		cmocka_unit_test_teardown(test_save_errors, test_teardown),
		cmocka_unit_test_teardown(test_save_sweeps_dead_writers_temps, test_teardown),
		cmocka_unit_test_teardown(test_save_over_files_of_others, test_teardown),
		cmocka_unit_test_teardown(test_load_refuses_fifo, test_teardown),
		cmocka_unit_test(test_regroup),
		cmocka_unit_test(test_regroup_cumulative),
		cmocka_unit_test(test_regroup_caps_sums),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_fast_reader_agrees),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
