/*
 * test_msg.c - request encoding and strict decoding (src/ipc/msg.c): every
 * envelope shape, the hello, status, profiler and heap walk decoders, and a
 * deterministic fuzz loop that throws mutated frames at frame_reader +
 * msg_decode (run under ASan/UBSan in the sanitizer build).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipc/frame.h"
#include "ipc/msg.h"

#define DATA PMT_TEST_DATA "/ipc/"

static char *slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (lenp)
		*lenp = (size_t)n;
	return buf;
}

static cJSON *load_json(const char *name)
{
	char *text = slurp(name, NULL);
	cJSON *j = cJSON_Parse(text);

	assert_non_null(j);
	free(text);
	return j;
}

/* A fixture of "# expectation" + frame line pairs. */
struct case_ {
	char *expect;
	char *frame;
	size_t len;
};

static size_t load_cases(const char *path, struct case_ **out)
{
	char *text = slurp(path, NULL), *p = text, *pending = NULL;
	size_t n = 0, cap = 0;

	*out = NULL;
	while (*p) {
		char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);

		if (l >= 2 && p[0] == '#' && p[1] == ' ') {
			free(pending);
			pending = strndup(p + 2, l - 2);
		} else if (pending != NULL) {
			if (n == cap) {
				cap = cap ? cap * 2 : 32;
				*out = realloc(*out, cap * sizeof **out);
			}
			(*out)[n].expect = pending;
			(*out)[n].frame = malloc(l + 1);
			memcpy((*out)[n].frame, p, l);
			(*out)[n].frame[l] = '\0';
			(*out)[n].len = l;
			n++;
			pending = NULL;
		}
		p += l + (nl ? 1 : 0);
	}
	free(pending);
	free(text);
	return n;
}

static void free_cases(struct case_ *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].expect);
		free(c[i].frame);
	}
	free(c);
}

/* ---- encoding ---- */

static void test_encode_request(void **state)
{
	char err[256];
	size_t len;
	cJSON *args = cJSON_CreateObject(), *back;
	char *line;

	(void)state;
	cJSON_AddStringToObject(args, "key", "lineno");
	cJSON_AddNumberToObject(args, "limit", 50);
	cJSON_AddStringToObject(args, "pattern", "a\nb\"c");
	line = msg_encode_request(7, PROTO_CMD_TOP, args, &len, err, sizeof err);
	assert_non_null(line);
	assert_int_equal(len, strlen(line));
	assert_int_equal(line[len - 1], '\n');
	assert_null(memchr(line, '\n', len - 1)); /* one line, newline escaped */
	back = cJSON_ParseWithLength(line, len);
	assert_non_null(back);
	assert_int_equal(cJSON_GetObjectItem(back, "id")->valuedouble, 7);
	assert_string_equal(cJSON_GetObjectItem(back, "cmd")->valuestring, "top");
	assert_true(cJSON_Compare(cJSON_GetObjectItem(back, "args"), args, 1));
	assert_int_equal(cJSON_GetArraySize(back), 3);
	cJSON_Delete(back);
	free(line);

	/* No args: no "args" member; the caller's object is untouched. */
	line = msg_encode_request(MSG_ID_MAX, PROTO_CMD_STATUS, NULL, NULL, err, sizeof err);
	assert_non_null(line);
	assert_string_equal(line, "{\"id\":9007199254740991,\"cmd\":\"status\"}\n");
	free(line);
	assert_string_equal(cJSON_GetObjectItem(args, "key")->valuestring, "lineno");
	cJSON_Delete(args);
}

static void test_encode_errors(void **state)
{
	char err[256];
	cJSON *arr = cJSON_CreateArray(), *args;
	char *pad, *line;
	size_t len, base;

	(void)state;
	assert_null(msg_encode_request(1, PROTO_CMD_COUNT, NULL, NULL, err, sizeof err));
	assert_non_null(strstr(err, "unknown command"));
	assert_null(msg_encode_request(MSG_ID_MAX + 1, PROTO_CMD_STATUS, NULL, NULL, err, sizeof err));
	assert_non_null(strstr(err, "above the protocol's limit"));
	assert_null(msg_encode_request(1, PROTO_CMD_STATUS, arr, NULL, err, sizeof err));
	assert_string_equal(err, "arguments of \"status\" must be a JSON object, not an array");
	cJSON_Delete(arr);

	/* The size limit counts the newline: exactly PROTO_MAX_REQUEST passes. */
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "s", "");
	line = msg_encode_request(1, PROTO_CMD_TOP, args, &base, err, sizeof err);
	free(line);
	pad = malloc(PROTO_MAX_REQUEST + 1);
	memset(pad, 'p', PROTO_MAX_REQUEST);
	pad[PROTO_MAX_REQUEST - base] = '\0';
	cJSON_ReplaceItemInObject(args, "s", cJSON_CreateString(pad));
	line = msg_encode_request(1, PROTO_CMD_TOP, args, &len, err, sizeof err);
	assert_non_null(line);
	assert_int_equal(len, PROTO_MAX_REQUEST);
	free(line);
	pad[PROTO_MAX_REQUEST - base] = 'p';
	pad[PROTO_MAX_REQUEST - base + 1] = '\0';
	cJSON_ReplaceItemInObject(args, "s", cJSON_CreateString(pad));
	assert_null(msg_encode_request(1, PROTO_CMD_TOP, args, &len, err, sizeof err));
	assert_non_null(strstr(err, "over the protocol limit of 65536 bytes"));
	free(pad);
	cJSON_Delete(args);
}

/* Every command name goes out as written in proto.h. */
static void test_encode_every_command(void **state)
{
	char err[256], want[128];

	(void)state;
	for (int i = 0; i < PROTO_CMD_COUNT; i++) {
		char *line = msg_encode_request((uint64_t)i, (enum proto_cmd)i, NULL, NULL, err,
						sizeof err);

		assert_non_null(line);
		snprintf(want, sizeof want, "{\"id\":%d,\"cmd\":\"%s\"}\n", i,
			 proto_cmd_name((enum proto_cmd)i));
		assert_string_equal(line, want);
		free(line);
	}
}

/* ---- decoding envelopes ---- */

static void test_decode_valid_fixtures(void **state)
{
	struct case_ *cases;
	size_t n = load_cases(DATA "valid_frames.ndjson", &cases);
	char err[256];

	(void)state;
	assert_true(n >= 10);
	for (size_t i = 0; i < n; i++) {
		char kind[16], id[32], code[64];
		struct msg m;
		/* An exact-size copy: msg_decode must not need a terminator. */
		char *exact = malloc(cases[i].len);

		memcpy(exact, cases[i].frame, cases[i].len);
		assert_int_equal(sscanf(cases[i].expect, "%15s %31s %63s", kind, id, code), 3);
		if (msg_decode(exact, cases[i].len, &m, err, sizeof err) != 0)
			fail_msg("valid frame %zu refused: %s\n%s", i, err, cases[i].frame);
		assert_non_null(m.root);
		if (strcmp(kind, "ok") == 0) {
			assert_int_equal(m.kind, MSG_REPLY_OK);
			assert_true(m.has_id);
			assert_int_equal(m.id, strtoull(id, NULL, 10));
			assert_true(cJSON_IsObject(m.result));
		} else if (strcmp(kind, "error") == 0) {
			assert_int_equal(m.kind, MSG_REPLY_ERROR);
			if (strcmp(id, "null") == 0) {
				assert_false(m.has_id);
			} else {
				assert_true(m.has_id);
				assert_int_equal(m.id, strtoull(id, NULL, 10));
			}
			assert_string_equal(m.error_code_name, code);
			assert_int_equal(m.error_code, proto_err_from_name(code));
			assert_non_null(m.error_message);
			assert_null(m.result);
		} else {
			assert_string_equal(kind, "push");
			assert_int_equal(m.kind, MSG_PUSH);
			assert_int_equal((int)m.push, proto_push_from_name(code));
			assert_true(cJSON_IsObject(m.data));
		}
		msg_done(&m);
		assert_null(m.root);
		free(exact);
	}
	free_cases(cases, n);
}

static void test_decode_invalid_fixtures(void **state)
{
	struct case_ *cases;
	size_t n = load_cases(DATA "invalid_frames.ndjson", &cases);
	char err[256];

	(void)state;
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		struct msg m;
		char *exact = malloc(cases[i].len ? cases[i].len : 1);

		memcpy(exact, cases[i].frame, cases[i].len);
		err[0] = '\0';
		if (msg_decode(exact, cases[i].len, &m, err, sizeof err) == 0)
			fail_msg("invalid frame accepted: %s", cases[i].frame);
		assert_null(m.root);
		if (strstr(err, cases[i].expect) == NULL)
			fail_msg("frame %s\n  error: %s\n  wanted: %s", cases[i].frame, err,
				 cases[i].expect);
		free(exact);
	}
	free_cases(cases, n);
}

static void test_decode_deep_nesting(void **state)
{
	size_t depth = 200000;
	char *s = malloc(depth * 2 + 64), err[256];
	struct msg m;
	size_t at = 0;

	(void)state;
	at += (size_t)sprintf(s, "{\"id\":1,\"ok\":true,\"result\":{\"x\":");
	for (size_t i = 0; i < depth; i++)
		s[at++] = '[';
	for (size_t i = 0; i < depth; i++)
		s[at++] = ']';
	s[at++] = '}';
	s[at++] = '}';
	assert_int_equal(msg_decode(s, at, &m, err, sizeof err), -1);
	assert_non_null(strstr(err, "not valid JSON"));
	free(s);
}

static void test_take_result(void **state)
{
	const char *f = "{\"id\":4,\"ok\":true,\"result\":{\"groups\":[1,2,3]}}";
	const char *p = "{\"push\":\"status\",\"data\":{\"a\":1}}";
	const char *e = "{\"id\":4,\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"boom\"}}";
	struct msg m;
	cJSON *r;
	char err[128];

	(void)state;
	assert_int_equal(msg_decode(f, strlen(f), &m, err, sizeof err), 0);
	r = msg_take_result(&m);
	assert_non_null(r);
	assert_null(msg_take_result(&m));
	msg_done(&m);
	/* The result outlives the message. */
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "groups")), 3);
	cJSON_Delete(r);

	assert_int_equal(msg_decode(p, strlen(p), &m, err, sizeof err), 0);
	r = msg_take_result(&m);
	assert_int_equal(cJSON_GetObjectItem(r, "a")->valuedouble, 1);
	msg_done(&m);
	cJSON_Delete(r);

	assert_int_equal(msg_decode(e, strlen(e), &m, err, sizeof err), 0);
	assert_int_equal(m.error_code, PROTO_ERR_INTERNAL);
	assert_string_equal(m.error_message, "boom");
	assert_null(msg_take_result(&m));
	msg_done(&m);
	msg_done(&m); /* twice is harmless */
}

/* ---- hello ---- */

static void test_hello_ok(void **state)
{
	cJSON *j = load_json(DATA "hello_result.json");
	struct msg_hello h;
	char err[256];

	(void)state;
	assert_int_equal(msg_decode_hello(j, &h, err, sizeof err), 0);
	assert_int_equal(h.protocol, 1);
	assert_string_equal(h.agent, "0.1.0");
	assert_int_equal(h.pid, 1234);
	assert_int_equal(h.ppid, 1);
	assert_string_equal(h.python, "3.11.7");
	assert_string_equal(h.implementation, "cpython");
	assert_string_equal(h.executable, "/usr/bin/python3");
	assert_string_equal(h.argv, "app.py --port 8080");
	assert_int_equal(h.argc, 3);
	assert_true(h.started == 1763700000.5);
	assert_true(h.native);
	assert_int_equal(h.ncapabilities, 6);
	assert_true(msg_hello_has_capability(&h, "top"));
	assert_true(msg_hello_has_capability(&h, "detach"));
	assert_false(msg_hello_has_capability(&h, "functions"));
	msg_hello_done(&h);

	/* Empty argv and capabilities, unknown extra members: fine. */
	cJSON_ReplaceItemInObject(j, "argv", cJSON_CreateArray());
	cJSON_ReplaceItemInObject(j, "capabilities", cJSON_CreateArray());
	cJSON_AddStringToObject(j, "future_member", "x");
	assert_int_equal(msg_decode_hello(j, &h, err, sizeof err), 0);
	assert_string_equal(h.argv, "");
	assert_int_equal(h.argc, 0);
	assert_int_equal(h.ncapabilities, 0);
	msg_hello_done(&h);
	cJSON_Delete(j);
}

static const char *const hello_members[] = {
	"protocol", "agent", "pid", "ppid", "python", "implementation", "executable", "argv",
	"started", "native", "capabilities",
};

static void test_hello_each_member(void **state)
{
	char err[256], want[128];

	(void)state;
	for (size_t i = 0; i < sizeof hello_members / sizeof hello_members[0]; i++) {
		const char *name = hello_members[i];
		cJSON *j = load_json(DATA "hello_result.json");
		struct msg_hello h;
		/* A value of the wrong type for every member: an object. */
		cJSON_DeleteItemFromObject(j, name);
		assert_int_equal(msg_decode_hello(j, &h, err, sizeof err), -1);
		snprintf(want, sizeof want, "hello result: missing \"%s\"", name);
		assert_string_equal(err, want);
		assert_null(h.agent);
		cJSON_AddItemToObject(j, name, cJSON_CreateObject());
		assert_int_equal(msg_decode_hello(j, &h, err, sizeof err), -1);
		snprintf(want, sizeof want, "hello result: \"%s\" must be", name);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("%s: %s", name, err);
		assert_non_null(strstr(err, "got an object"));
		cJSON_Delete(j);
	}
}

static void expect_hello_err(const char *member, cJSON *value, const char *want)
{
	cJSON *j = load_json(DATA "hello_result.json");
	struct msg_hello h;
	char err[256];

	cJSON_ReplaceItemInObject(j, member, value);
	assert_int_equal(msg_decode_hello(j, &h, err, sizeof err), -1);
	if (strcmp(err, want) != 0)
		fail_msg("got \"%s\"\nwanted \"%s\"", err, want);
	cJSON_Delete(j);
}

static void test_hello_ranges(void **state)
{
	cJSON *arr;

	(void)state;
	expect_hello_err("protocol", cJSON_CreateNumber(0),
			 "hello result: \"protocol\" must be an integer from 1 to 2147483647, got 0");
	expect_hello_err("pid", cJSON_CreateNumber(0),
			 "hello result: \"pid\" must be an integer from 1 to 2147483647, got 0");
	expect_hello_err("pid", cJSON_CreateNumber(12.5),
			 "hello result: \"pid\" must be an integer from 1 to 2147483647, got 12.5");
	expect_hello_err("pid", cJSON_CreateNumber(4294967296.0),
			 "hello result: \"pid\" must be an integer from 1 to 2147483647, got 4294967296");
	expect_hello_err("pid", cJSON_CreateString("1234"),
			 "hello result: \"pid\" must be an integer from 1 to 2147483647, got a string");
	expect_hello_err("ppid", cJSON_CreateNumber(-1),
			 "hello result: \"ppid\" must be an integer from 0 to 2147483647, got -1");
	expect_hello_err("started", cJSON_CreateNumber(-5),
			 "hello result: \"started\" must not be negative, got -5");
	expect_hello_err("native", cJSON_CreateNumber(1),
			 "hello result: \"native\" must be true or false, got a number");
	expect_hello_err("executable", cJSON_CreateNull(),
			 "hello result: \"executable\" must be a string, got null");
	arr = cJSON_CreateArray();
	cJSON_AddItemToArray(arr, cJSON_CreateString("a"));
	cJSON_AddItemToArray(arr, cJSON_CreateNumber(2));
	expect_hello_err("argv", arr, "hello result: \"argv\"[1] must be a string, got a number");
	arr = cJSON_CreateArray();
	cJSON_AddItemToArray(arr, cJSON_CreateString("top"));
	cJSON_AddItemToArray(arr, cJSON_CreateArray());
	expect_hello_err("capabilities", arr,
			 "hello result: \"capabilities\"[1] must be a string, got an array");
	expect_hello_err("capabilities", cJSON_CreateString("top"),
			 "hello result: \"capabilities\" must be an array of strings, got a string");
	{
		struct msg_hello h;
		char err[128];
		cJSON *arr2 = cJSON_CreateArray();

		assert_int_equal(msg_decode_hello(arr2, &h, err, sizeof err), -1);
		assert_string_equal(err, "hello result must be a JSON object, got an array");
		cJSON_Delete(arr2);
	}
}

/* ---- status ---- */

static void test_status_ok(void **state)
{
	cJSON *j = load_json(DATA "status_result.json");
	struct msg_status s;
	char err[256];

	(void)state;
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), 0);
	assert_true(s.time == 1763700001.0);
	assert_true(s.tracing);
	assert_int_equal(s.nframe, 1);
	assert_true(s.started_by_agent);
	assert_int_equal(s.traced_current, 123456);
	assert_int_equal(s.traced_peak, 234567);
	assert_int_equal(s.tracemalloc_memory, 45678);
	assert_int_equal(s.gc_counts.n, 3);
	assert_int_equal(s.gc_counts.v[0], 512);
	assert_int_equal(s.gc_counts.v[2], 1);
	assert_int_equal(s.gc_thresholds.v[0], 700);
	assert_true(s.has_gc_objects);
	assert_int_equal(s.gc_objects.v[2], 90000);
	assert_int_equal(s.gc_collections.v[0], 10);
	assert_int_equal(s.threads, 3);

	/* gc_objects null: not computed yet. Biggest exact integer: fine. */
	cJSON_ReplaceItemInObject(j, "gc_objects", cJSON_CreateNull());
	cJSON_ReplaceItemInObject(j, "traced_peak", cJSON_CreateNumber(9007199254740991.0));
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), 0);
	assert_false(s.has_gc_objects);
	assert_int_equal(s.gc_objects.n, 0);
	assert_int_equal(s.traced_peak, MSG_INT_MAX);
	cJSON_Delete(j);
}

/* status.memory: optional (older agents); either allocator may be null with
 * its reason, whose text is made display-safe. */
static void test_status_memory(void **state)
{
	cJSON *j = load_json(DATA "status_result.json");
	struct msg_status s;
	char err[256];

	(void)state;
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), 0);
	assert_false(s.has_memory);
	cJSON_AddItemToObject(j, "memory", cJSON_Parse(
		"{\"time\": 1763700001.5, \"cost\": 0.0004, \"malloc\": {\"arena\": 9437184, \"in_use\": 5242880, "
		"\"free\": 4194304, \"mmapped\": 1048576, \"mmapped_blocks\": 1, \"top_pad\": 131072}, "
		"\"malloc_why\": null, \"pymalloc\": null, \"pymalloc_why\": \"hidden\\u001b[2J while tracing\"}"));
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), 0);
	assert_true(s.has_memory);
	assert_true(s.memory.has_malloc);
	assert_int_equal(s.memory.malloc.in_use, 5242880);
	assert_int_equal(s.memory.malloc.free, 4194304);
	assert_int_equal(s.memory.malloc.mmapped, 1048576);
	assert_string_equal(s.memory.malloc_why, "");
	assert_false(s.memory.has_pymalloc);
	assert_null(strchr(s.memory.pymalloc_why, '\x1b'));
	assert_non_null(strstr(s.memory.pymalloc_why, "while tracing"));

	cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "memory");
	cJSON_ReplaceItemInObject(m, "pymalloc", cJSON_Parse("{\"arenas\": 2, \"arena_bytes\": 2097152, "
		"\"allocated\": 1592656, \"available\": 374880, \"unused_pools\": -98304}"));
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), -1);
	assert_string_equal(err, "status: \"memory\": \"pymalloc\": \"unused_pools\" must be an integer from 0 to "
			    "9007199254740991, got -98304");
	cJSON_ReplaceItemInObject(m, "pymalloc", cJSON_CreateNull());
	cJSON_ReplaceItemInObject(m, "malloc", cJSON_CreateString("glibc"));
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), -1);
	assert_string_equal(err, "status: \"memory\": \"malloc\" must be an object, got a string");
	cJSON_ReplaceItemInObject(j, "memory", cJSON_CreateNumber(3));
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), -1);
	assert_string_equal(err, "status: \"memory\" must be an object or null");
	cJSON_Delete(j);
}

static void test_trim(void **state)
{
	static const char mall[] = "{\"arena\": 8, \"in_use\": 4, \"free\": %d, \"mmapped\": 0, "
				   "\"mmapped_blocks\": 0, \"top_pad\": 0}";
	char text[512], a[160], b[160], err[256];
	struct msg_trim t;

	(void)state;
	snprintf(a, sizeof a, mall, 4096);
	snprintf(b, sizeof b, mall, 0);
	snprintf(text, sizeof text, "{\"returned\": true, \"seconds\": 0.004, \"malloc_before\": %s, "
		 "\"malloc_after\": %s}", a, b);
	cJSON *j = cJSON_Parse(text);
	assert_int_equal(msg_decode_trim(j, &t, err, sizeof err), 0);
	assert_true(t.returned);
	assert_int_equal(t.before.free, 4096);
	assert_int_equal(t.after.free, 0);
	cJSON_DeleteItemFromObject(j, "malloc_after");
	assert_int_equal(msg_decode_trim(j, &t, err, sizeof err), -1);
	assert_string_equal(err, "trim: \"malloc_after\" must be an object, got nothing");
	cJSON_Delete(j);
}

/* status.clients: optional (older agents), each counter checked when there. */
static void test_status_clients(void **state)
{
	cJSON *j = load_json(DATA "status_result.json");
	struct msg_status s;
	char err[256];
	cJSON *c;

	(void)state;
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), 0);
	assert_false(s.has_clients);
	c = cJSON_Parse("{\"connections\": 3, \"max_connections\": 32, \"buffered\": 10, "
			"\"answered\": 7, \"dropped\": 991, \"busy\": 2, \"timeouts\": 1, \"refused\": 4}");
	cJSON_AddItemToObject(j, "clients", c);
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), 0);
	assert_true(s.has_clients);
	assert_int_equal(s.clients.connections, 3);
	assert_int_equal(s.clients.max_connections, 32);
	assert_int_equal(s.clients.buffered, 10);
	assert_int_equal(s.clients.answered, 7);
	assert_int_equal(s.clients.dropped, 991);
	assert_int_equal(s.clients.busy, 2);
	assert_int_equal(s.clients.timeouts, 1);
	assert_int_equal(s.clients.refused, 4);
	cJSON_ReplaceItemInObject(c, "dropped", cJSON_CreateNumber(-1));
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), -1);
	assert_non_null(strstr(err, "status: \"clients\": \"dropped\""));
	assert_false(s.has_clients);
	cJSON_ReplaceItemInObject(j, "clients", cJSON_CreateString("many"));
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), -1);
	assert_string_equal(err, "status: \"clients\" must be an object or null");
	cJSON_ReplaceItemInObject(j, "clients", cJSON_CreateNull());
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), 0);
	assert_false(s.has_clients);
	cJSON_Delete(j);
}

static const char *const status_members[] = {
	"time", "tracing", "nframe", "started_by_agent", "traced_current", "traced_peak",
	"tracemalloc_memory", "gc_counts", "gc_thresholds", "gc_objects", "gc_collections", "threads",
};

static void test_status_each_member(void **state)
{
	char err[256], want[128];

	(void)state;
	for (size_t i = 0; i < sizeof status_members / sizeof status_members[0]; i++) {
		const char *name = status_members[i];
		cJSON *j = load_json(DATA "status_result.json");
		struct msg_status s;

		cJSON_DeleteItemFromObject(j, name);
		assert_int_equal(msg_decode_status(j, &s, err, sizeof err), -1);
		snprintf(want, sizeof want, "status: missing \"%s\"", name);
		assert_string_equal(err, want);
		cJSON_AddItemToObject(j, name, cJSON_CreateString("x"));
		assert_int_equal(msg_decode_status(j, &s, err, sizeof err), -1);
		snprintf(want, sizeof want, "status: \"%s\" must be", name);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("%s: %s", name, err);
		assert_non_null(strstr(err, "got a string"));
		cJSON_Delete(j);
	}
}

static void expect_status_err(const char *member, const char *json, const char *want)
{
	cJSON *j = load_json(DATA "status_result.json");
	struct msg_status s;
	char err[256];
	cJSON *v = cJSON_Parse(json);

	assert_non_null(v);
	cJSON_ReplaceItemInObject(j, member, v);
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), -1);
	if (strcmp(err, want) != 0)
		fail_msg("got \"%s\"\nwanted \"%s\"", err, want);
	cJSON_Delete(j);
}

static void test_status_ranges(void **state)
{
	(void)state;
	expect_status_err("traced_current", "-1",
			  "status: \"traced_current\" must be an integer from 0 to 9007199254740991, got -1");
	expect_status_err("traced_peak", "9007199254740992",
			  "status: \"traced_peak\" must be an integer from 0 to 9007199254740991, got 9007199254740992");
	expect_status_err("tracemalloc_memory", "1.25",
			  "status: \"tracemalloc_memory\" must be an integer from 0 to 9007199254740991, got 1.25");
	expect_status_err("nframe", "65536",
			  "status: \"nframe\" must be an integer from 0 to 65535, got 65536");
	expect_status_err("time", "-0.5", "status: \"time\" must not be negative, got -0.5");
	expect_status_err("time", "1e999", "status: \"time\" must be a finite number, got a number");
	expect_status_err("tracing", "0", "status: \"tracing\" must be true or false, got a number");
	expect_status_err("gc_counts", "[]", "status: \"gc_counts\" is empty");
	expect_status_err("gc_counts", "[1,2,3,4,5]", "status: \"gc_counts\" has more than 4 generations");
	expect_status_err("gc_counts", "[1,-2,3]",
			  "status: \"gc_counts\"[1] must be an integer from 0 to 2^53-1, got -2");
	expect_status_err("gc_thresholds", "[1,2,\"3\"]",
			  "status: \"gc_thresholds\"[2] must be an integer from 0 to 2^53-1, got a string");
	expect_status_err("gc_collections", "null",
			  "status: \"gc_collections\" must be an array of integers, got null");
	expect_status_err("gc_objects", "{}",
			  "status: \"gc_objects\" must be an array of integers or null, got an object");
	expect_status_err("threads", "true",
			  "status: \"threads\" must be an integer from 0 to 9007199254740991, got a boolean");
}

/* ---- the sampled profiler ---- */

/* Replaces (or with json NULL removes) member name of a copy of FIXTURE's
 * object at path (NULL = the top, else members separated by '/', a number
 * picking an array's element, an array elsewhere standing for its first
 * element: "chains/3/steps" is the first step of the fourth chain), decodes
 * it with fn and expects want. */
typedef int (*decode_fn)(const cJSON *, void *, char *, size_t);

static int dec_profile_status(const cJSON *j, void *out, char *err, size_t errlen)
{
	return msg_decode_profile_status(j, out, err, errlen);
}

static int dec_profile_functions(const cJSON *j, void *out, char *err, size_t errlen)
{
	int rc = msg_decode_profile_functions(j, out, err, errlen);

	if (rc == 0)
		msg_profile_functions_done(out);
	return rc;
}

static int dec_profile_tree(const cJSON *j, void *out, char *err, size_t errlen)
{
	int rc = msg_decode_profile_tree(j, out, err, errlen);

	if (rc == 0)
		msg_profile_tree_done(out);
	return rc;
}

static int dec_types(const cJSON *j, void *out, char *err, size_t errlen)
{
	int rc = msg_decode_types(j, out, err, errlen);

	if (rc == 0)
		msg_types_done(out);
	else
		assert_null(((struct msg_types *)out)->rows);
	return rc;
}

static int dec_why(const cJSON *j, void *out, char *err, size_t errlen)
{
	int rc = msg_decode_why(j, out, err, errlen);

	if (rc == 0)
		msg_why_done(out);
	else
		assert_null(((struct msg_why *)out)->chains);
	return rc;
}

static void expect_err(const char *fixture, decode_fn fn, const char *path, const char *name,
		       const char *json, const char *want)
{
	cJSON *j = load_json(fixture), *obj = j;
	union {
		struct msg_profile_status s;
		struct msg_profile_functions f;
		struct msg_profile_tree t;
		struct msg_types ty;
		struct msg_why w;
	} out;
	char err[320];

	if (path != NULL) {
		char segs[128], *save = NULL;

		snprintf(segs, sizeof segs, "%s", path);
		for (char *seg = strtok_r(segs, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
			if (cJSON_IsArray(obj) && seg[0] >= '0' && seg[0] <= '9') {
				obj = cJSON_GetArrayItem(obj, atoi(seg));
			} else {
				if (cJSON_IsArray(obj))
					obj = cJSON_GetArrayItem(obj, 0);
				obj = cJSON_GetObjectItemCaseSensitive(obj, seg);
			}
			assert_non_null(obj);
		}
		if (cJSON_IsArray(obj))
			obj = cJSON_GetArrayItem(obj, 0);
		assert_non_null(obj);
	}
	if (json == NULL) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
	} else {
		cJSON *v = cJSON_Parse(json);

		assert_non_null(v);
		if (cJSON_GetObjectItemCaseSensitive(obj, name) != NULL)
			cJSON_ReplaceItemInObjectCaseSensitive(obj, name, v);
		else
			cJSON_AddItemToObject(obj, name, v);
	}
	memset(&out, 0xa5, sizeof out);
	err[0] = '\0';
	assert_int_equal(fn(j, &out, err, sizeof err), -1);
	if (strcmp(err, want) != 0)
		fail_msg("%s %s=%s:\ngot    \"%s\"\nwanted \"%s\"", fixture, name, json ? json : "(removed)",
			 err, want);
	cJSON_Delete(j);
}

static void test_profile_status_ok(void **state)
{
	cJSON *j = load_json(DATA "profile_status.json");
	struct msg_profile_status p;
	char err[256];

	(void)state;
	assert_int_equal(msg_decode_profile_status(j, &p, err, sizeof err), 0);
	assert_true(p.available);
	assert_true(p.running);
	assert_int_equal(p.interval, 4096);
	assert_false(p.exact);
	assert_int_equal(p.samples, 1200);
	assert_int_equal(p.stacks, 310);
	assert_int_equal(p.memory, 1212416);
	assert_true(p.live_bytes == 4915200.0);
	assert_false(p.calls);
	assert_true(p.has_detail);
	assert_int_equal(p.nframe, 64);
	assert_int_equal(p.max_samples, 1048576);
	assert_int_equal(p.max_stacks, 65536);
	assert_int_equal(p.total_samples, 5100);
	assert_true(p.elapsed == 12.5);
	assert_true(p.started == 1763700000.5);
	assert_int_equal(p.hooks_installed, 3);
	assert_string_equal(p.calls_mode, "");
	assert_string_equal(p.error, "");
	assert_false(p.native_on); /* an agent without native hooks says nothing */
	assert_true(p.native_live_bytes == 0);

	/* The native hooks: as the full status and a push say them. */
	cJSON_AddItemToObject(j, "native", cJSON_Parse("{\"on\": true, \"entries\": 44, \"objects\": 12, "
						      "\"live_bytes\": 2048.0, \"no_stack_bytes\": 0.0, \"errno\": 0}"));
	assert_int_equal(msg_decode_profile_status(j, &p, err, sizeof err), 0);
	assert_true(p.native_on);
	assert_int_equal(p.native_entries, 44);
	assert_true(p.native_live_bytes == 2048.0);

	/* The summary a status push carries: no detail. */
	for (const char *const *m = (const char *const[]){ "nframe", "max_samples", "max_stacks",
		"dropped_stacks", "dropped_bytes", "total_samples", "nogil_bytes", "live_blocks",
		"elapsed", "hooks_installed", "hooks_on_top", "calls_mode", "functions_counted",
		"dropped_calls", "call_stacks", "call_stack_bytes", "started", "available", NULL };
	     *m; m++)
		cJSON_DeleteItemFromObjectCaseSensitive(j, *m);
	assert_int_equal(msg_decode_profile_status(j, &p, err, sizeof err), 0);
	assert_true(p.available);
	assert_false(p.has_detail);
	assert_int_equal(p.interval, 4096);
	cJSON_Delete(j);

	/* A call-counting mode is kept, display-safe. */
	j = load_json(DATA "profile_status.json");
	cJSON_ReplaceItemInObjectCaseSensitive(j, "calls_mode", cJSON_CreateString("mon\x1bitoring"));
	assert_int_equal(msg_decode_profile_status(j, &p, err, sizeof err), 0);
	assert_string_equal(p.calls_mode, "mon?itoring");
	cJSON_Delete(j);

	/* Without the extension. */
	j = cJSON_Parse("{\"available\": false, \"running\": false, \"error\": \"no _pmt_sampler\"}");
	assert_int_equal(msg_decode_profile_status(j, &p, err, sizeof err), 0);
	assert_false(p.available);
	assert_false(p.running);
	assert_string_equal(p.error, "no _pmt_sampler");
	cJSON_Delete(j);
}

static void test_profile_status_bad(void **state)
{
	const char *f = DATA "profile_status.json";
	decode_fn d = dec_profile_status;
	static const char *const summary[] = { "running", "interval", "exact", "samples", "stacks",
		"memory", "live_bytes", "dropped_samples", "calls", "lost_hooks" };
	char want[160];

	(void)state;
	for (size_t i = 0; i < sizeof summary / sizeof summary[0]; i++) {
		snprintf(want, sizeof want, "profile status: missing \"%s\"", summary[i]);
		expect_err(f, d, NULL, summary[i], NULL, want);
	}
	expect_err(f, d, NULL, "max_stacks", NULL, "profile status: missing \"max_stacks\"");
	expect_err(f, d, NULL, "native", "[]", "profile status: native must be an object, got an array");
	expect_err(f, d, NULL, "native", "{\"on\": 1, \"entries\": 0, \"live_bytes\": 0}",
		   "profile status: native: \"on\" must be true or false, got a number");
	expect_err(f, d, NULL, "native", "{\"on\": true, \"entries\": 0, \"live_bytes\": -1}",
		   "profile status: native: \"live_bytes\" must not be negative, got -1");
	expect_err(f, d, NULL, "interval", "0",
		   "profile status: \"interval\" must be an integer from 1 to 1073741824, got 0");
	expect_err(f, d, NULL, "interval", "4096.5",
		   "profile status: \"interval\" must be an integer from 1 to 1073741824, got 4096.5");
	expect_err(f, d, NULL, "samples", "-1",
		   "profile status: \"samples\" must be an integer from 0 to 9007199254740991, got -1");
	expect_err(f, d, NULL, "live_bytes", "-2.5",
		   "profile status: \"live_bytes\" must not be negative, got -2.5");
	expect_err(f, d, NULL, "live_bytes", "\"5\"",
		   "profile status: \"live_bytes\" must be a finite number, got a string");
	expect_err(f, d, NULL, "running", "1",
		   "profile status: \"running\" must be true or false, got a number");
	expect_err(f, d, NULL, "available", "\"yes\"",
		   "profile status: \"available\" must be true or false, got a string");
	expect_err(f, d, NULL, "nframe", "0",
		   "profile status: \"nframe\" must be an integer from 1 to 128, got 0");
	expect_err(f, d, NULL, "hooks_on_top", "4",
		   "profile status: \"hooks_on_top\" must be an integer from 0 to 3, got 4");
	expect_err(f, d, NULL, "calls_mode", "7",
		   "profile status: \"calls_mode\" must be a string or null, got a number");
	expect_err(f, d, NULL, "started", "-1",
		   "profile status: \"started\" must not be negative, got -1");
}

static void test_status_profile_member(void **state)
{
	cJSON *j = load_json(DATA "status_result.json");
	struct msg_status s;
	char err[256];

	(void)state;
	/* Absent (an older agent) and null (no extension): no profile. */
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), 0);
	assert_false(s.has_profile);
	cJSON_AddItemToObject(j, "profile", cJSON_CreateNull());
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), 0);
	assert_false(s.has_profile);
	cJSON_ReplaceItemInObjectCaseSensitive(j, "profile", cJSON_Parse(
		"{\"running\": true, \"interval\": 4096, \"exact\": false, \"samples\": 10, "
		"\"stacks\": 3, \"memory\": 65536, \"live_bytes\": 40960, \"dropped_samples\": 0, "
		"\"calls\": false, \"lost_hooks\": 1}"));
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), 0);
	assert_true(s.has_profile);
	assert_true(s.profile.running);
	assert_int_equal(s.profile.interval, 4096);
	assert_int_equal(s.profile.samples, 10);
	assert_true(s.profile.live_bytes == 40960.0);
	assert_int_equal(s.profile.lost_hooks, 1);
	assert_false(s.profile.has_detail);
	/* A bad summary fails the whole status, naming the member. */
	cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "profile"),
					       "memory", cJSON_CreateNumber(-4));
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), -1);
	assert_string_equal(err, "status: \"profile\": profile status: \"memory\" must be an integer "
			    "from 0 to 9007199254740991, got -4");
	cJSON_ReplaceItemInObjectCaseSensitive(j, "profile", cJSON_CreateString("on"));
	assert_int_equal(msg_decode_status(j, &s, err, sizeof err), -1);
	assert_string_equal(err, "status: \"profile\": profile status must be a JSON object, got a string");
	cJSON_Delete(j);
}

static void test_profile_functions_ok(void **state)
{
	cJSON *j = load_json(DATA "profile_functions.json");
	struct msg_profile_functions f;
	const struct msg_profile_row *r;
	char err[256];

	(void)state;
	assert_int_equal(msg_decode_profile_functions(j, &f, err, sizeof err), 0);
	assert_true(f.time == 1763700013.0);
	assert_int_equal(f.sort, MSG_PROFILE_SORT_OWN);
	assert_int_equal(f.interval, 4096);
	assert_int_equal(f.functions, 7);
	assert_true(f.took_ms == 1.25);
	assert_true(f.cpu_ms == -1); /* an agent that does not measure it */
	assert_true(f.profile.calls);
	assert_string_equal(f.profile.calls_mode, "monitoring");
	assert_int_equal(f.nrows, 2);
	r = &f.rows[0];
	assert_string_equal(r->file, "/app/x.py");
	assert_string_equal(r->function, "Cache.load");
	assert_int_equal(r->first_line, 10);
	assert_int_equal(r->line, 14);
	assert_int_equal(r->own_size, 2048000);
	assert_int_equal(r->own_count, 2048);
	assert_int_equal(r->total_size, 2100000);
	assert_int_equal(r->total_count, 2100);
	assert_int_equal(r->alloc, 9000000);
	assert_int_equal(r->alloc_rate, 120000);
	assert_true(r->has_calls);
	assert_int_equal(r->calls, 5);
	assert_int_equal(r->retained_per_call, 420000);
	assert_int_equal(r->largest_call, 2200000);
	assert_false(r->native); /* absent */
	r = &f.rows[1];
	assert_string_equal(r->function, "churn");
	assert_true(r->native);
	assert_false(r->has_calls);
	assert_int_equal(r->calls, 0);
	assert_int_equal(r->own_size, 0);
	msg_profile_functions_done(&f);
	assert_null(f.rows);
	msg_profile_functions_done(&f); /* twice is harmless */

	/* An agent that measures its CPU time says so next to took_ms. */
	cJSON_AddNumberToObject(j, "cpu_ms", 0.75);
	assert_int_equal(msg_decode_profile_functions(j, &f, err, sizeof err), 0);
	assert_true(f.cpu_ms == 0.75);
	msg_profile_functions_done(&f);
	cJSON_DeleteItemFromObjectCaseSensitive(j, "cpu_ms");

	/* No rows at all: a profiler that saw nothing yet. */
	cJSON_ReplaceItemInObjectCaseSensitive(j, "rows", cJSON_CreateArray());
	assert_int_equal(msg_decode_profile_functions(j, &f, err, sizeof err), 0);
	assert_int_equal(f.nrows, 0);
	msg_profile_functions_done(&f);
	cJSON_Delete(j);

	for (int i = 0; i < MSG_PROFILE_SORT_COUNT; i++)
		assert_int_equal(msg_profile_sort_from_name(msg_profile_sort_name((enum msg_profile_sort)i)), i);
	assert_null(msg_profile_sort_name(MSG_PROFILE_SORT_COUNT));
	assert_int_equal(msg_profile_sort_from_name("Own"), -1);
	assert_int_equal(msg_profile_sort_from_name(NULL), -1);
}

static void test_profile_functions_bad(void **state)
{
	const char *f = DATA "profile_functions.json";
	decode_fn d = dec_profile_functions;
	static const char *const top[] = { "time", "sort", "source", "interval", "functions",
		"took_ms", "profile", "rows" };
	static const char *const row[] = { "file", "function", "first_line", "line", "own_size",
		"own_count", "total_size", "total_count", "alloc", "alloc_rate", "calls",
		"retained_per_call", "largest_call" };
	char want[160];

	(void)state;
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
		snprintf(want, sizeof want, "profile result: missing \"%s\"", top[i]);
		expect_err(f, d, NULL, top[i], NULL, want);
	}
	for (size_t i = 0; i < sizeof row / sizeof row[0]; i++) {
		snprintf(want, sizeof want, "profile rows[0]: missing \"%s\"", row[i]);
		expect_err(f, d, "rows", row[i], NULL, want);
	}
	expect_err(f, d, NULL, "source", "\"tracemalloc\"",
		   "profile result: \"source\" must be \"sampled\", got \"tracemalloc\"");
	expect_err(f, d, NULL, "sort", "\"size\"",
		   "profile result: \"sort\" must be own, total, rate, calls, retained or largest, got \"size\"");
	expect_err(f, d, NULL, "rows", "{}", "profile result: \"rows\" must be an array, got an object");
	expect_err(f, d, NULL, "rows", "[1]", "profile rows[0] must be an object, got a number");
	expect_err(f, d, NULL, "functions", "1", "profile result: 2 rows but \"functions\" is 1");
	expect_err(f, d, NULL, "profile", "null",
		   "profile result: profile status must be a JSON object, got null");
	expect_err(f, d, "profile", "interval", "-5",
		   "profile result: profile status: \"interval\" must be an integer from 1 to 1073741824, got -5");
	expect_err(f, d, "rows", "own_size", "-1",
		   "profile rows[0]: \"own_size\" must be an integer from 0 to 9007199254740991, got -1");
	expect_err(f, d, "rows", "total_size", "1e300",
		   "profile rows[0]: \"total_size\" must be an integer from 0 to 9007199254740991, got 1.0000000000000001e+300");
	expect_err(f, d, "rows", "alloc_rate", "\"fast\"",
		   "profile rows[0]: \"alloc_rate\" must be an integer from 0 to 9007199254740991, got a string");
	expect_err(f, d, "rows", "file", "null", "profile rows[0]: \"file\" must be a string, got null");
	expect_err(f, d, "rows", "native", "1", "profile rows[0]: \"native\" must be true or false, got a number");
	expect_err(f, d, "rows", "line", "-2",
		   "profile rows[0]: \"line\" must be an integer from -1 to 2147483647, got -2");
	expect_err(f, d, "rows", "calls", "-3",
		   "profile rows[0]: \"calls\" must be an integer from 0 to 2^53-1 or null, got -3");
	expect_err(f, d, "rows", "largest_call", "null",
		   "profile rows[0]: \"calls\", \"retained_per_call\" and \"largest_call\" must be all null or all integers");
	expect_err(f, d, NULL, "time", "-1", "profile result: \"time\" must not be negative, got -1");
	expect_err(f, d, NULL, "cpu_ms", "-2", "profile result: \"cpu_ms\" must not be negative, got -2");
	expect_err(f, d, NULL, "cpu_ms", "\"1\"", "profile result: \"cpu_ms\" must be a finite number, got a string");
}

/* The cost members of a top, snapshot or profile result: both optional. */
static void test_cost(void **state)
{
	static const struct {
		const char *json;
		double took, cpu, cost; /* -1: unknown */
	} ok[] = {
		{ "{}", -1, -1, -1 },
		{ "{\"took_ms\": 240.5}", 240.5, -1, 240.5 },
		{ "{\"took_ms\": 300, \"cpu_ms\": 120}", 300, 120, 120 },
		{ "{\"cpu_ms\": 0}", -1, 0, 0 },
		{ "{\"took_ms\": null, \"cpu_ms\": null}", -1, -1, -1 },
		{ "{\"took_ms\": 5, \"groups\": []}", 5, -1, 5 },
	};
	static const struct {
		const char *json, *want;
	} bad[] = {
		{ "{\"took_ms\": -1}", "top result: \"took_ms\" must not be negative, got -1" },
		{ "{\"cpu_ms\": \"fast\"}", "top result: \"cpu_ms\" must be a finite number, got a string" },
		{ "{\"took_ms\": 3, \"cpu_ms\": true}", "top result: \"cpu_ms\" must be a finite number, got a boolean" },
		{ "[]", "top result must be a JSON object, got an array" },
	};
	struct msg_cost c;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		cJSON *j = cJSON_Parse(ok[i].json);
		assert_non_null(j);
		assert_int_equal(msg_decode_cost(j, "top result", &c, err, sizeof err), 0);
		assert_true(c.took_ms == ok[i].took);
		assert_true(c.cpu_ms == ok[i].cpu);
		assert_true(msg_cost_ms(&c) == ok[i].cost);
		cJSON_Delete(j);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cJSON *j = cJSON_Parse(bad[i].json);
		assert_non_null(j);
		c.took_ms = c.cpu_ms = 7;
		assert_int_equal(msg_decode_cost(j, "top result", &c, err, sizeof err), -1);
		assert_string_equal(err, bad[i].want);
		assert_true(c.took_ms == -1 && c.cpu_ms == -1);
		cJSON_Delete(j);
	}
}

static void test_profile_tree_ok(void **state)
{
	cJSON *j = load_json(DATA "profile_tree.json");
	struct msg_profile_tree t;
	char err[256];

	(void)state;
	assert_int_equal(msg_decode_profile_tree(j, &t, err, sizeof err), 0);
	assert_true(t.time == 1763700014.0);
	assert_int_equal(t.npath, 1);
	assert_string_equal(t.path[0].file, "/app/x.py");
	assert_string_equal(t.path[0].function, "handler");
	assert_int_equal(t.path[0].first_line, 5);
	assert_int_equal(t.interval, 4096);
	assert_int_equal(t.total_size, 2100000);
	assert_int_equal(t.total_count, 2100);
	assert_true(t.profile.has_detail);
	assert_int_equal(t.nrows, 2);
	assert_string_equal(t.rows[0].function, "Cache.load");
	assert_int_equal(t.rows[0].first_line, 10);
	assert_int_equal(t.rows[0].total_size, 2048000);
	assert_false(t.rows[0].self);
	assert_true(t.rows[1].self);
	assert_int_equal(t.rows[1].total_count, 52);
	msg_profile_tree_done(&t);
	msg_profile_tree_done(&t);

	/* The entry points: an empty path. */
	cJSON_ReplaceItemInObjectCaseSensitive(j, "path", cJSON_CreateArray());
	assert_int_equal(msg_decode_profile_tree(j, &t, err, sizeof err), 0);
	assert_int_equal(t.npath, 0);
	msg_profile_tree_done(&t);
	cJSON_Delete(j);
}

static void test_profile_tree_bad(void **state)
{
	const char *f = DATA "profile_tree.json";
	decode_fn d = dec_profile_tree;
	static const char *const top[] = { "time", "path", "source", "interval", "total_size",
		"total_count", "profile", "rows" };
	static const char *const row[] = { "file", "function", "first_line", "total_size",
		"total_count", "self" };
	char want[160];

	(void)state;
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
		snprintf(want, sizeof want, "profile_tree result: missing \"%s\"", top[i]);
		expect_err(f, d, NULL, top[i], NULL, want);
	}
	for (size_t i = 0; i < sizeof row / sizeof row[0]; i++) {
		snprintf(want, sizeof want, "profile_tree rows[0]: missing \"%s\"", row[i]);
		expect_err(f, d, "rows", row[i], NULL, want);
	}
	expect_err(f, d, NULL, "path", "\"/\"", "profile_tree result: \"path\" must be an array, got a string");
	expect_err(f, d, NULL, "path", "[[\"/a.py\", \"f\"]]",
		   "profile_tree result: \"path\"[0] must be [file, function, first_line], got an array");
	expect_err(f, d, NULL, "path", "[[\"/a.py\", \"f\", 1], [\"/a.py\", 2, 3]]",
		   "profile_tree result: \"path\"[1] must be [file, function, first_line], got an array");
	expect_err(f, d, NULL, "path", "[[\"/a.py\", \"f\", -1]]",
		   "profile_tree result: \"path\"[0] must be [file, function, first_line], got an array");
	expect_err(f, d, NULL, "path", "[7]",
		   "profile_tree result: \"path\"[0] must be [file, function, first_line], got a number");
	expect_err(f, d, NULL, "total_size", "-1",
		   "profile_tree result: \"total_size\" must be an integer from 0 to 9007199254740991, got -1");
	expect_err(f, d, NULL, "source", "\"x\"",
		   "profile_tree result: \"source\" must be \"sampled\", got \"x\"");
	expect_err(f, d, "rows", "self", "1",
		   "profile_tree rows[0]: \"self\" must be true or false, got a number");
	expect_err(f, d, "rows", "total_count", "0.5",
		   "profile_tree rows[0]: \"total_count\" must be an integer from 0 to 9007199254740991, got 0.5");
	expect_err(f, d, NULL, "rows", "[null]", "profile_tree rows[0] must be an object, got null");
	expect_err(f, d, NULL, "rows", "null", "profile_tree result: \"rows\" must be an array, got null");
}

/* ---- the heap walks: types and why ---- */

static void test_types_ok(void **state)
{
	cJSON *j = load_json(DATA "types_result.json");
	struct msg_types t;
	char err[256], *big;

	(void)state;
	assert_int_equal(msg_decode_types(j, &t, err, sizeof err), 0);
	assert_int_equal(t.nrows, 3);
	assert_string_equal(t.rows[0].type, "dict");
	assert_int_equal(t.rows[0].count, 1343);
	assert_int_equal(t.rows[0].size, 1036976);
	assert_string_equal(t.rows[1].type, "app.Record");
	assert_int_equal(t.rows[1].count, 20015);
	assert_int_equal(t.tracked, 34228);
	assert_int_equal(t.tracked_bytes, 3708460);
	assert_int_equal(t.allocated_blocks, 129722);
	assert_false(t.has_traced);
	assert_true(t.complete);
	assert_true(t.pause_max == 0.021);
	assert_true(t.seconds == 0.05);
	assert_int_equal(t.slices, 5);
	msg_types_done(&t);
	assert_null(t.rows);
	msg_types_done(&t); /* twice is harmless */
	msg_types_done(NULL);

	/* tracemalloc on, a walk cut at its budget, nothing found. */
	cJSON_ReplaceItemInObjectCaseSensitive(j, "traced", cJSON_CreateNumber(4096));
	cJSON_ReplaceItemInObjectCaseSensitive(j, "complete", cJSON_CreateFalse());
	cJSON_ReplaceItemInObjectCaseSensitive(j, "rows", cJSON_CreateArray());
	assert_int_equal(msg_decode_types(j, &t, err, sizeof err), 0);
	assert_true(t.has_traced);
	assert_int_equal(t.traced, 4096);
	assert_false(t.complete);
	assert_int_equal(t.nrows, 0);
	msg_types_done(&t);

	/* A class may be called anything: what a terminal acts on becomes '?',
	 * and a name past the cap is cut between whole characters. */
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(j, "rows"), cJSON_Parse(
		"{\"type\": \"app.\\u001b]0;owned\\u0007X\\u202e\\u009b\\u00e9\", \"count\": 1, \"size\": 16}"));
	big = malloc(3 * MSG_HEAP_TEXT_MAX + 1);
	for (size_t i = 0; i < 3 * MSG_HEAP_TEXT_MAX; i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3); /* euro sign */
	big[3 * MSG_HEAP_TEXT_MAX] = '\0';
	cJSON *row = cJSON_CreateObject();
	cJSON_AddStringToObject(row, "type", big);
	cJSON_AddNumberToObject(row, "count", 1);
	cJSON_AddNumberToObject(row, "size", 16);
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(j, "rows"), row);
	assert_int_equal(msg_decode_types(j, &t, err, sizeof err), 0);
	assert_int_equal(t.nrows, 2);
	assert_string_equal(t.rows[0].type, "app.?]0;owned?X??\xc3\xa9");
	assert_true(strlen(t.rows[1].type) < MSG_HEAP_TEXT_MAX);
	assert_int_equal(strlen(t.rows[1].type) % 3, 0);
	assert_int_equal(strlen(t.rows[1].type), (MSG_HEAP_TEXT_MAX - 1) / 3 * 3);
	assert_memory_equal(t.rows[1].type, big, strlen(t.rows[1].type));
	msg_types_done(&t);
	free(big);
	cJSON_Delete(j);
}

static void test_types_bad(void **state)
{
	const char *f = DATA "types_result.json";
	decode_fn d = dec_types;
	static const char *const top[] = { "rows", "tracked", "tracked_bytes", "allocated_blocks",
		"traced", "complete", "pause_max", "seconds", "slices" };
	static const char *const row[] = { "type", "count", "size" };
	char want[160];

	(void)state;
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
		snprintf(want, sizeof want, "types result: missing \"%s\"", top[i]);
		expect_err(f, d, NULL, top[i], NULL, want);
	}
	for (size_t i = 0; i < sizeof row / sizeof row[0]; i++) {
		snprintf(want, sizeof want, "types rows[0]: missing \"%s\"", row[i]);
		expect_err(f, d, "rows", row[i], NULL, want);
	}
	expect_err(f, d, NULL, "rows", "{}", "types result: \"rows\" must be an array, got an object");
	expect_err(f, d, NULL, "rows", "[[]]", "types rows[0] must be an object, got an array");
	expect_err(f, d, "rows", "type", "null", "types rows[0]: \"type\" must be a string, got null");
	expect_err(f, d, "rows", "type", "7", "types rows[0]: \"type\" must be a string, got a number");
	expect_err(f, d, "rows", "count", "-1",
		   "types rows[0]: \"count\" must be an integer from 0 to 9007199254740991, got -1");
	expect_err(f, d, "rows", "size", "1.5",
		   "types rows[0]: \"size\" must be an integer from 0 to 9007199254740991, got 1.5");
	expect_err(f, d, "rows", "size", "9007199254740992",
		   "types rows[0]: \"size\" must be an integer from 0 to 9007199254740991, got 9007199254740992");
	expect_err(f, d, NULL, "tracked", "\"many\"",
		   "types result: \"tracked\" must be an integer from 0 to 9007199254740991, got a string");
	expect_err(f, d, NULL, "traced", "\"off\"",
		   "types result: \"traced\" must be an integer from 0 to 2^53-1 or null, got a string");
	expect_err(f, d, NULL, "traced", "-4",
		   "types result: \"traced\" must be an integer from 0 to 2^53-1 or null, got -4");
	expect_err(f, d, NULL, "complete", "1", "types result: \"complete\" must be true or false, got a number");
	expect_err(f, d, NULL, "pause_max", "-0.5", "types result: \"pause_max\" must not be negative, got -0.5");
	expect_err(f, d, NULL, "seconds", "null", "types result: \"seconds\" must be a finite number, got null");
	expect_err(f, d, NULL, "slices", "2.5",
		   "types result: \"slices\" must be an integer from 0 to 9007199254740991, got 2.5");

	/* Not an object at all. */
	struct msg_types t;
	char err[256];
	cJSON *j = cJSON_CreateArray();
	assert_int_equal(msg_decode_types(j, &t, err, sizeof err), -1);
	assert_string_equal(err, "types result must be a JSON object, got an array");
	cJSON_Delete(j);

	/* The cap on rows; one row less passes. */
	j = load_json(f);
	cJSON *rows = cJSON_CreateArray();
	for (int i = 0; i < MSG_TYPES_ROWS_MAX; i++) {
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "type", "t");
		cJSON_AddNumberToObject(r, "count", 1);
		cJSON_AddNumberToObject(r, "size", 16);
		cJSON_AddItemToArray(rows, r);
	}
	cJSON_ReplaceItemInObjectCaseSensitive(j, "rows", rows);
	assert_int_equal(msg_decode_types(j, &t, err, sizeof err), 0);
	assert_int_equal(t.nrows, MSG_TYPES_ROWS_MAX);
	msg_types_done(&t);
	cJSON_AddItemToArray(rows, cJSON_Parse("{\"type\": \"t\", \"count\": 1, \"size\": 16}"));
	assert_int_equal(msg_decode_types(j, &t, err, sizeof err), -1);
	assert_string_equal(err, "types result: \"rows\" has 100001 entries, more than the 100000 a reply may hold");
	assert_null(t.rows);
	cJSON_Delete(j);
}

static void test_why_ok(void **state)
{
	cJSON *j = load_json(DATA "why_result.json");
	struct msg_why w;
	const struct msg_why_chain *c;
	const struct msg_why_holder *h;
	char err[256];

	(void)state;
	assert_int_equal(msg_decode_why(j, &w, err, sizeof err), 0);
	assert_int_equal(w.matched, 20000);
	assert_true(w.pause_max == 0.043);
	assert_true(w.seconds == 0.41);
	assert_int_equal(w.slices, 21);
	assert_int_equal(w.nchains, 4);
	c = &w.chains[0];
	assert_int_equal(c->root.kind, MSG_WHY_ROOT_MODULE);
	assert_string_equal(c->root.name, "app");
	assert_null(c->root.thread);
	assert_null(c->end);
	assert_int_equal(c->nsteps, 2);
	assert_string_equal(c->steps[0].via, "global _CACHE");
	assert_string_equal(c->steps[0].type, "dict");
	assert_int_equal(c->steps[0].size, 415152);
	assert_true(c->steps[0].has_len);
	assert_int_equal(c->steps[0].len, 20000);
	assert_string_equal(c->steps[1].via, "value for key 'id-981'");
	assert_false(c->steps[1].has_len);
	c = &w.chains[1];
	assert_int_equal(c->root.kind, MSG_WHY_ROOT_CLASS);
	assert_string_equal(c->root.name, "app.Registry");
	c = &w.chains[2];
	assert_int_equal(c->root.kind, MSG_WHY_ROOT_LOCAL);
	assert_string_equal(c->root.thread, "MainThread");
	assert_string_equal(c->root.function, "serve");
	assert_string_equal(c->root.name, "batch");
	c = &w.chains[3];
	assert_int_equal(c->root.kind, MSG_WHY_ROOT_NONE);
	assert_null(c->root.name);
	assert_string_equal(c->end, "no referrer the gc can see (held by C code or an untracked object)");
	assert_int_equal(c->nsteps, 1);
	assert_null(c->steps[0].via);
	assert_string_equal(c->steps[0].type, "app.Record");
	assert_int_equal(w.nholders, 3);
	h = &w.holders[0];
	assert_int_equal(h->root.kind, MSG_WHY_ROOT_MODULE);
	assert_int_equal(h->samples, 1);
	assert_string_equal(h->holder.via, "global _CACHE");
	assert_true(h->has_retained);
	assert_int_equal(h->retained.bytes, 84347956);
	assert_int_equal(h->retained.objects, 59744);
	assert_false(h->retained.truncated);
	assert_true(h->retained.estimate);
	assert_true(w.holders[1].retained.truncated);
	assert_false(w.holders[2].has_retained); /* the budget ran out first */
	msg_why_done(&w);
	assert_null(w.chains);
	msg_why_done(&w);
	msg_why_done(NULL);

	/* null retained, null len, an empty "end": all allowed. */
	cJSON *h2 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "holders"), 2);
	cJSON_AddItemToObject(h2, "retained", cJSON_CreateNull());
	cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "chains"), 3);
	cJSON_ReplaceItemInObjectCaseSensitive(last, "end", cJSON_CreateString(""));
	cJSON_AddItemToObject(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(last, "steps"), 0), "len",
			      cJSON_CreateNull());
	assert_int_equal(msg_decode_why(j, &w, err, sizeof err), 0);
	assert_false(w.holders[2].has_retained);
	assert_string_equal(w.chains[3].end, "");
	assert_false(w.chains[3].steps[0].has_len);
	msg_why_done(&w);

	/* Nothing found: no chains, no holders. */
	cJSON_ReplaceItemInObjectCaseSensitive(j, "chains", cJSON_CreateArray());
	cJSON_ReplaceItemInObjectCaseSensitive(j, "holders", cJSON_CreateArray());
	cJSON_ReplaceItemInObjectCaseSensitive(j, "matched", cJSON_CreateNumber(0));
	assert_int_equal(msg_decode_why(j, &w, err, sizeof err), 0);
	assert_int_equal(w.nchains, 0);
	assert_int_equal(w.nholders, 0);
	msg_why_done(&w);
	cJSON_Delete(j);

	assert_null(msg_why_root_name(MSG_WHY_ROOT_NONE));
	assert_string_equal(msg_why_root_name(MSG_WHY_ROOT_MODULE), "module");
	assert_string_equal(msg_why_root_name(MSG_WHY_ROOT_CLASS), "class");
	assert_string_equal(msg_why_root_name(MSG_WHY_ROOT_LOCAL), "local");
	assert_null(msg_why_root_name((enum msg_why_root_kind)4));
}

/* Names, keys and ends come from the target: every one is kept display-safe. */
static void test_why_hostile(void **state)
{
	cJSON *j = cJSON_Parse(
		"{\"matched\": 2, \"pause_max\": 0, \"seconds\": 0, \"slices\": 1,"
		" \"chains\": [{\"root\": {\"root\": \"local\", \"thread\": \"w\\u001b[2J\","
		"   \"function\": \"f\\u009b1m\", \"name\": \"x\\u202ey\"},"
		"   \"steps\": [{\"via\": \"value for key 'k\\u0007'\", \"type\": \"T\\r\\n\", \"size\": 1}]},"
		"  {\"root\": null, \"end\": \"held\\u0000by C\", \"steps\": [{\"via\": null, \"type\": \"\\u2028\", \"size\": 2}]}],"
		" \"holders\": [{\"root\": {\"root\": \"module\", \"name\": \"m\\u001b\"}, \"samples\": 1,"
		"   \"holder\": {\"via\": \"global \\u001bX\", \"type\": \"dict\", \"size\": 3}}]}");
	struct msg_why w;
	char err[256];

	(void)state;
	assert_non_null(j);
	assert_int_equal(msg_decode_why(j, &w, err, sizeof err), 0);
	assert_string_equal(w.chains[0].root.thread, "w?[2J");
	assert_string_equal(w.chains[0].root.function, "f?1m");
	assert_string_equal(w.chains[0].root.name, "x?y");
	assert_string_equal(w.chains[0].steps[0].via, "value for key 'k?'");
	assert_string_equal(w.chains[0].steps[0].type, "T??");
	assert_string_equal(w.chains[1].steps[0].type, "?");
	assert_non_null(w.chains[1].end);
	assert_null(strchr(w.chains[1].end, '\x1b'));
	assert_string_equal(w.holders[0].root.name, "m?");
	assert_string_equal(w.holders[0].holder.via, "global ?X");
	msg_why_done(&w);
	cJSON_Delete(j);
}

static void test_why_bad(void **state)
{
	const char *f = DATA "why_result.json";
	decode_fn d = dec_why;
	static const char *const top[] = { "matched", "chains", "holders", "pause_max", "seconds", "slices" };
	static const char *const step[] = { "via", "type", "size" };
	static const char *const retained[] = { "bytes", "objects", "truncated", "estimate" };
	char want[200];

	(void)state;
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
		snprintf(want, sizeof want, "why result: missing \"%s\"", top[i]);
		expect_err(f, d, NULL, top[i], NULL, want);
	}
	for (size_t i = 0; i < sizeof step / sizeof step[0]; i++) {
		snprintf(want, sizeof want, "why chains[0].steps[1]: missing \"%s\"", step[i]);
		expect_err(f, d, "chains/0/steps/1", step[i], NULL, want);
		snprintf(want, sizeof want, "why holders[0].holder: missing \"%s\"", step[i]);
		expect_err(f, d, "holders/holder", step[i], NULL, want);
	}
	for (size_t i = 0; i < sizeof retained / sizeof retained[0]; i++) {
		snprintf(want, sizeof want, "why holders[1].retained: missing \"%s\"", retained[i]);
		expect_err(f, d, "holders/1/retained", retained[i], NULL, want);
	}
	/* Roots. */
	expect_err(f, d, "chains", "root", NULL, "why chains[0]: missing \"root\"");
	expect_err(f, d, "chains", "root", "\"app\"", "why chains[0]: root must be an object or null, got a string");
	expect_err(f, d, "chains", "root", "{\"root\": \"global\", \"name\": \"x\"}",
		   "why chains[0]: root: \"root\" must be module, class or local, got \"global\"");
	expect_err(f, d, "chains", "root", "{\"root\": 1, \"name\": \"x\"}",
		   "why chains[0]: root: \"root\" must be a string, got a number");
	expect_err(f, d, "chains", "root", "{\"root\": \"module\"}", "why chains[0]: root: missing \"name\"");
	expect_err(f, d, "chains/2/root", "thread", NULL, "why chains[2]: root: missing \"thread\"");
	expect_err(f, d, "chains/2/root", "function", "null",
		   "why chains[2]: root: \"function\" must be a string, got null");
	expect_err(f, d, "holders", "root", "null", "why holders[0]: root must be an object, got null");
	expect_err(f, d, "holders/2/root", "name", "[]", "why holders[2]: root: \"name\" must be a string, got an array");
	/* Chains and their steps. */
	expect_err(f, d, NULL, "chains", "{}", "why result: \"chains\" must be an array, got an object");
	expect_err(f, d, NULL, "chains", "[3]", "why chains[0] must be an object, got a number");
	expect_err(f, d, "chains/3", "end", NULL, "why chains[3]: missing \"end\"");
	expect_err(f, d, "chains/3", "end", "null", "why chains[3]: \"end\" must be a string, got null");
	expect_err(f, d, "chains", "steps", "[]", "why chains[0]: \"steps\" is empty (a chain ends at its sample)");
	expect_err(f, d, "chains", "steps", "{}", "why chains[0]: \"steps\" must be an array, got an object");
	expect_err(f, d, "chains", "steps", "[null]", "why chains[0].steps[0] must be an object, got null");
	expect_err(f, d, "chains/0/steps", "via", "3",
		   "why chains[0].steps[0]: \"via\" must be a string or null, got a number");
	expect_err(f, d, "chains/0/steps", "type", "null", "why chains[0].steps[0]: \"type\" must be a string, got null");
	expect_err(f, d, "chains/0/steps", "len", "-1",
		   "why chains[0].steps[0]: \"len\" must be an integer from 0 to 2^53-1 or null, got -1");
	expect_err(f, d, "chains/0/steps", "len", "\"many\"",
		   "why chains[0].steps[0]: \"len\" must be an integer from 0 to 2^53-1 or null, got a string");
	expect_err(f, d, "chains/0/steps/1", "size", "1e300",
		   "why chains[0].steps[1]: \"size\" must be an integer from 0 to 9007199254740991, got 1.0000000000000001e+300");
	expect_err(f, d, NULL, "matched", "3", "why result: 4 chains but \"matched\" is 3");
	/* Holders. */
	expect_err(f, d, NULL, "holders", "null", "why result: \"holders\" must be an array, got null");
	expect_err(f, d, NULL, "holders", "[true]", "why holders[0] must be an object, got a boolean");
	expect_err(f, d, "holders", "samples", "0", "why holders[0]: \"samples\" must be an integer from 1 to 64, got 0");
	expect_err(f, d, "holders", "samples", "65", "why holders[0]: \"samples\" must be an integer from 1 to 64, got 65");
	expect_err(f, d, "holders", "samples", "2",
		   "why result: the holders count 4 samples but 3 chains have a root");
	expect_err(f, d, "holders", "holder", NULL, "why holders[0]: missing \"holder\"");
	expect_err(f, d, "holders", "holder", "\"dict\"", "why holders[0].holder must be an object, got a string");
	expect_err(f, d, "holders", "retained", "1", "why holders[0].retained must be an object or null, got a number");
	expect_err(f, d, "holders/retained", "estimate", "\"yes\"",
		   "why holders[0].retained: \"estimate\" must be true or false, got a string");
	expect_err(f, d, "holders/retained", "bytes", "-8",
		   "why holders[0].retained: \"bytes\" must be an integer from 0 to 9007199254740991, got -8");
	expect_err(f, d, NULL, "pause_max", "\"0.1\"", "why result: \"pause_max\" must be a finite number, got a string");
	expect_err(f, d, NULL, "seconds", "-1", "why result: \"seconds\" must not be negative, got -1");
}

/* The caps: 64 chains, 64 steps a chain, 64 holders; one more is refused. */
static void test_why_caps(void **state)
{
	static const char step[] = "{\"via\": \"index 0\", \"type\": \"list\", \"size\": 56, \"len\": 1}";
	static const char root[] = "{\"root\": \"module\", \"name\": \"m\"}";
	struct msg_why w;
	char err[256];

	(void)state;
	for (int extra = 0; extra < 2; extra++) {
		cJSON *j = cJSON_Parse("{\"matched\": 1000, \"pause_max\": 0.02, \"seconds\": 1, \"slices\": 50}");
		cJSON *chains = cJSON_AddArrayToObject(j, "chains"), *holders = cJSON_AddArrayToObject(j, "holders");

		for (int i = 0; i < MSG_WHY_CHAINS_MAX + extra; i++) {
			cJSON *c = cJSON_CreateObject(), *steps;

			cJSON_AddItemToObject(c, "root", cJSON_Parse(root));
			steps = cJSON_AddArrayToObject(c, "steps");
			for (int k = 0; k < MSG_WHY_STEPS_MAX; k++)
				cJSON_AddItemToArray(steps, cJSON_Parse(step));
			cJSON_AddItemToArray(chains, c);
		}
		for (int i = 0; i < MSG_WHY_HOLDERS_MAX; i++) {
			cJSON *h = cJSON_CreateObject();

			cJSON_AddItemToObject(h, "root", cJSON_Parse(root));
			cJSON_AddNumberToObject(h, "samples", 1);
			cJSON_AddItemToObject(h, "holder", cJSON_Parse(step));
			cJSON_AddItemToArray(holders, h);
		}
		if (extra == 0) {
			assert_int_equal(msg_decode_why(j, &w, err, sizeof err), 0);
			assert_int_equal(w.nchains, MSG_WHY_CHAINS_MAX);
			assert_int_equal(w.chains[63].nsteps, MSG_WHY_STEPS_MAX);
			assert_int_equal(w.nholders, MSG_WHY_HOLDERS_MAX);
			msg_why_done(&w);
			/* One step more on the last chain. */
			cJSON *c = cJSON_GetArrayItem(chains, MSG_WHY_CHAINS_MAX - 1);
			cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(c, "steps"), cJSON_Parse(step));
			assert_int_equal(msg_decode_why(j, &w, err, sizeof err), -1);
			assert_string_equal(err, "why chains[63]: \"steps\" has 65 entries, more than the 64 a reply may hold");
			assert_null(w.chains);
			cJSON_DeleteItemFromArray(cJSON_GetObjectItemCaseSensitive(c, "steps"), MSG_WHY_STEPS_MAX);
			/* One holder more. */
			cJSON *h = cJSON_CreateObject();
			cJSON_AddItemToObject(h, "root", cJSON_Parse(root));
			cJSON_AddNumberToObject(h, "samples", 1);
			cJSON_AddItemToObject(h, "holder", cJSON_Parse(step));
			cJSON_AddItemToArray(holders, h);
			assert_int_equal(msg_decode_why(j, &w, err, sizeof err), -1);
			assert_string_equal(err, "why result: \"holders\" has 65 entries, more than the 64 a reply may hold");
		} else {
			assert_int_equal(msg_decode_why(j, &w, err, sizeof err), -1);
			assert_string_equal(err, "why result: \"chains\" has 65 entries, more than the 64 a reply may hold");
		}
		assert_null(w.chains);
		assert_null(w.holders);
		cJSON_Delete(j);
	}
}

/* ---- fuzz ---- */

static uint64_t rng;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic for a given seed. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static const char interesting[] = "{}[]\":,\\-+.eE0123456789tfnu \n\t\x01\x7f\xff\xc3";

static size_t mutate(char *buf, size_t len, size_t cap, struct case_ *seeds, size_t nseeds)
{
	int rounds = 1 + (int)rnd_below(4);

	for (int i = 0; i < rounds; i++) {
		size_t at = rnd_below(len + 1), k;

		switch (rnd_below(8)) {
		case 0: /* flip a bit */
			if (len)
				buf[rnd_below(len)] ^= (char)(1u << rnd_below(8));
			break;
		case 1: /* overwrite with a JSON-ish byte */
			if (len)
				buf[rnd_below(len)] = interesting[rnd_below(sizeof interesting - 1)];
			break;
		case 2: /* truncate */
			len = at;
			break;
		case 3: /* delete a range */
			k = rnd_below(len - at + 1);
			memmove(buf + at, buf + at + k, len - at - k);
			len -= k;
			break;
		case 4: /* duplicate a range */
			k = rnd_below(len - at + 1);
			if (len + k <= cap) {
				memmove(buf + at + k, buf + at, len - at);
				len += k;
			}
			break;
		case 5: /* insert bytes */
			k = 1 + rnd_below(4);
			if (len + k <= cap) {
				memmove(buf + at + k, buf + at, len - at);
				for (size_t j = 0; j < k; j++)
					buf[at + j] = interesting[rnd_below(sizeof interesting - 1)];
				len += k;
			}
			break;
		case 6: { /* splice another seed's tail */
			struct case_ *o = &seeds[rnd_below(nseeds)];
			size_t from = rnd_below(o->len + 1);

			k = o->len - from;
			if (at + k > cap)
				k = cap - at;
			memcpy(buf + at, o->frame + from, k);
			len = at + k;
			break;
		}
		default: { /* replace a digit run with an extreme number */
			static const char *const nums[] = { "-0", "1e308", "9007199254740993", "-1",
							    "0.5", "1e-320", "4294967296", "NaN" };
			const char *nm = nums[rnd_below(sizeof nums / sizeof nums[0])];
			size_t nl = strlen(nm);

			while (at < len && !(buf[at] >= '0' && buf[at] <= '9'))
				at++;
			k = 0;
			while (at + k < len && buf[at + k] >= '0' && buf[at + k] <= '9')
				k++;
			if (at < len && len - k + nl <= cap) {
				memmove(buf + at + nl, buf + at + k, len - at - k);
				memcpy(buf + at, nm, nl);
				len = len - k + nl;
			}
			break;
		}
		}
	}
	return len;
}

struct fuzz_counts {
	size_t ok, bad, hello_ok, status_ok, types_ok, why_ok, frames;
};

static void fuzz_one(const char *line, size_t len, struct fuzz_counts *fc)
{
	struct msg m;
	char err[256];
	cJSON *obj = NULL;

	err[0] = '\0';
	if (msg_decode(line, len, &m, err, sizeof err) != 0) {
		if (err[0] == '\0' || m.root != NULL)
			fail_msg("failed decode without a message or with a tree");
		fc->bad++;
		return;
	}
	fc->ok++;
	switch (m.kind) {
	case MSG_REPLY_OK:
		assert_true(cJSON_IsObject(m.result));
		obj = m.result;
		break;
	case MSG_PUSH:
		assert_true(cJSON_IsObject(m.data));
		obj = m.data;
		break;
	case MSG_REPLY_ERROR:
		assert_non_null(m.error_code_name);
		assert_non_null(m.error_message);
		break;
	}
	if (obj) {
		struct msg_hello h;
		struct msg_status s;
		struct msg_profile_functions pf;
		struct msg_profile_tree pt;
		struct msg_types ty;
		struct msg_why wy;

		if (msg_decode_hello(obj, &h, err, sizeof err) == 0) {
			fc->hello_ok++;
			msg_hello_done(&h);
		} else {
			assert_true(err[0] != '\0');
			assert_null(h.argv);
		}
		if (msg_decode_status(obj, &s, err, sizeof err) == 0)
			fc->status_ok++;
		if (msg_decode_profile_functions(obj, &pf, err, sizeof err) == 0)
			msg_profile_functions_done(&pf);
		else
			assert_null(pf.rows);
		if (msg_decode_profile_tree(obj, &pt, err, sizeof err) == 0)
			msg_profile_tree_done(&pt);
		else
			assert_null(pt.rows);
		if (msg_decode_types(obj, &ty, err, sizeof err) == 0) {
			fc->types_ok++;
			msg_types_done(&ty);
		} else {
			assert_true(err[0] != '\0');
			assert_null(ty.rows);
		}
		if (msg_decode_why(obj, &wy, err, sizeof err) == 0) {
			fc->why_ok++;
			msg_why_done(&wy);
		} else {
			assert_true(err[0] != '\0');
			assert_null(wy.chains);
			assert_null(wy.holders);
		}
		if (rnd_below(2)) {
			cJSON *t = msg_take_result(&m);

			assert_ptr_equal(t, obj);
			cJSON_Delete(t);
		}
	}
	msg_done(&m);
}

static void test_fuzz(void **state)
{
	struct case_ *v, *inv, *seeds;
	size_t nv = load_cases(DATA "valid_frames.ndjson", &v);
	size_t ninv = load_cases(DATA "invalid_frames.ndjson", &inv);
	size_t nseeds = nv + ninv, cap = 4096, iters = 300000;
	const char *env = getenv("PMT_FUZZ_ITERS");
	char *buf = malloc(cap);
	struct fuzz_counts fc = { 0 };
	double t0 = (double)clock();

	(void)state;
	if (env)
		iters = strtoul(env, NULL, 10);
	seeds = malloc(nseeds * sizeof *seeds);
	memcpy(seeds, v, nv * sizeof *v);
	memcpy(seeds + nv, inv, ninv * sizeof *inv);
	rng = 0x9e3779b97f4a7c15ull;

	for (size_t it = 0; it < iters; it++) {
		struct case_ *s = &seeds[rnd_below(nseeds)];
		size_t len = s->len < cap ? s->len : cap;
		char *exact;

		memcpy(buf, s->frame, len);
		len = mutate(buf, len, cap, seeds, nseeds);
		if (it % 8 != 0) {
			/* Direct: an exact-size heap copy, so ASan sees any overread. */
			exact = malloc(len ? len : 1);
			memcpy(exact, buf, len);
			fuzz_one(exact, len, &fc);
			free(exact);
		} else {
			/* Through the frame reader: random limit and chunking. */
			struct frame_reader r;
			const char *line;
			size_t ll, at = 0;
			enum frame_status st = FRAME_NONE;

			frame_reader_init(&r, 8 + rnd_below(600));
			if (len < cap)
				buf[len++] = '\n';
			while (at < len && st != FRAME_TOO_LARGE) {
				size_t k = 1 + rnd_below(len - at);

				at += frame_reader_feed(&r, buf + at, k);
				while ((st = frame_reader_next(&r, &line, &ll)) == FRAME_OK) {
					assert_true(ll <= r.limit - 1);
					assert_int_equal(line[ll], '\0');
					fc.frames++;
					fuzz_one(line, ll, &fc);
				}
			}
			frame_reader_done(&r);
		}
	}
	print_message("fuzz: %zu iterations in %.2f s CPU: %zu decoded, %zu refused, "
		      "%zu hello, %zu status, %zu types, %zu why, %zu frames via reader\n", iters,
		      ((double)clock() - t0) / CLOCKS_PER_SEC, fc.ok, fc.bad, fc.hello_ok,
		      fc.status_ok, fc.types_ok, fc.why_ok, fc.frames);
	/* Both outcomes must be exercised, or the loop tests nothing. */
	if (iters >= 100000) {
		assert_true(fc.ok > 1000);
		assert_true(fc.bad > 1000);
		assert_true(fc.hello_ok > 10);
		assert_true(fc.status_ok > 10);
		assert_true(fc.types_ok > 10);
		assert_true(fc.why_ok > 10);
	}
	free(seeds);
	free_cases(v, nv);
	free_cases(inv, ninv);
	free(buf);
}

/*
 * Property test: random envelopes built from JSON values (right and wrong
 * types, missing, extra and repeated members) must be accepted exactly when
 * an independent reading of docs/protocol.md says they are valid.
 */
enum { V_NULL, V_TRUE, V_FALSE, V_NEG, V_ZERO, V_FRAC, V_MAX, V_OVER, V_SMALL, V_STR_STATUS,
       V_STR_X, V_OBJ, V_ARR, V_ERR_OK, V_ERR_EXTRA, V_ERR_NOCODE, V_ERR_BADMSG, V_COUNT };

static cJSON *make_value(int v)
{
	cJSON *o;

	switch (v) {
	case V_NULL: return cJSON_CreateNull();
	case V_TRUE: return cJSON_CreateTrue();
	case V_FALSE: return cJSON_CreateFalse();
	case V_NEG: return cJSON_CreateNumber(-1);
	case V_ZERO: return cJSON_CreateNumber(0);
	case V_FRAC: return cJSON_CreateNumber(2.5);
	case V_MAX: return cJSON_CreateNumber(9007199254740991.0);
	case V_OVER: return cJSON_CreateNumber(1e16); /* 2^53 would print lossily */
	case V_SMALL: return cJSON_CreateNumber(42);
	case V_STR_STATUS: return cJSON_CreateString("status");
	case V_STR_X: return cJSON_CreateString("x");
	case V_OBJ: return cJSON_CreateObject();
	case V_ARR: return cJSON_CreateArray();
	case V_ERR_OK:
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "code", "bad_args");
		cJSON_AddStringToObject(o, "message", "m");
		return o;
	case V_ERR_EXTRA:
		o = make_value(V_ERR_OK);
		cJSON_AddNumberToObject(o, "extra", 1);
		return o;
	case V_ERR_NOCODE:
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "message", "m");
		return o;
	default:
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "code", "internal");
		cJSON_AddNumberToObject(o, "message", 3);
		return o;
	}
}

static const char *const env_keys[] = { "id", "ok", "result", "error", "push", "data", "extra" };
#define NKEYS 7

static bool oracle(const int *count, const int *val)
{
	enum { K_ID, K_OK, K_RESULT, K_ERROR, K_PUSH, K_DATA, K_EXTRA };
	bool is_int, id_null;

	for (int k = 0; k < NKEYS; k++)
		if (count[k] > 1)
			return false;
	if (count[K_EXTRA])
		return false;
	if (count[K_PUSH])
		return !count[K_ID] && !count[K_OK] && !count[K_RESULT] && !count[K_ERROR] &&
		       val[K_PUSH] == V_STR_STATUS && count[K_DATA] &&
		       (val[K_DATA] == V_OBJ || (val[K_DATA] >= V_ERR_OK));
	if (count[K_DATA] || !count[K_ID] || !count[K_OK])
		return false;
	if (val[K_OK] != V_TRUE && val[K_OK] != V_FALSE)
		return false;
	is_int = val[K_ID] == V_ZERO || val[K_ID] == V_MAX || val[K_ID] == V_SMALL;
	id_null = val[K_ID] == V_NULL;
	if (val[K_OK] == V_TRUE)
		return is_int && !count[K_ERROR] && count[K_RESULT] &&
		       (val[K_RESULT] == V_OBJ || val[K_RESULT] >= V_ERR_OK);
	return (is_int || id_null) && !count[K_RESULT] && count[K_ERROR] && val[K_ERROR] == V_ERR_OK;
}

static void test_envelope_property(void **state)
{
	size_t iters = 200000, accepted = 0;
	char err[256];

	(void)state;
	rng = 0x853c49e6748fea9bull;
	for (size_t it = 0; it < iters; it++) {
		cJSON *o = cJSON_CreateObject();
		int count[NKEYS] = { 0 }, val[NKEYS] = { 0 };
		struct msg m;
		char *text;
		bool want, got;
		int shape = (int)rnd_below(3);

		/* Start from a plausible reply or push most of the time. */
		for (int k = 0; k < NKEYS; k++) {
			bool add;

			if (shape == 0) /* reply-like */
				add = (k <= 1) ? rnd_below(10) != 0 : (k <= 3 ? rnd_below(2) : rnd_below(12) == 0);
			else if (shape == 1) /* push-like */
				add = (k == 4 || k == 5) ? rnd_below(10) != 0 : rnd_below(12) == 0;
			else
				add = rnd_below(3) == 0;
			for (int rep = 0; add && rep < (rnd_below(15) == 0 ? 2 : 1); rep++) {
				int v = (int)rnd_below(V_COUNT);

				/* Bias towards the right type so both outcomes are common. */
				if (rnd_below(2)) {
					static const int good[NKEYS] = { V_SMALL, V_TRUE, V_OBJ, V_ERR_OK,
									 V_STR_STATUS, V_OBJ, V_NULL };
					v = good[k];
					if (k == 1 && rnd_below(2))
						v = V_FALSE;
				}
				cJSON_AddItemToObject(o, env_keys[k], make_value(v));
				if (count[k]++ == 0)
					val[k] = v;
			}
		}
		want = oracle(count, val);
		text = cJSON_PrintUnformatted(o);
		got = msg_decode(text, strlen(text), &m, err, sizeof err) == 0;
		if (got != want)
			fail_msg("%s: decoder %s, rules %s (%s)", text, got ? "accepts" : "refuses",
				 want ? "accept" : "refuse", got ? "" : err);
		if (got) {
			accepted++;
			assert_int_equal(m.kind, count[4] ? MSG_PUSH :
					 (val[1] == V_TRUE ? MSG_REPLY_OK : MSG_REPLY_ERROR));
		}
		msg_done(&m);
		free(text);
		cJSON_Delete(o);
	}
	print_message("envelopes: %zu of %zu valid\n", accepted, iters);
	assert_true(accepted > iters / 20);
	assert_true(accepted < iters - iters / 20);
}

/* msg_peek_result: finds the result of a plain ok reply, refuses the rest. */
static bool peek(const char *line, uint64_t *id, char *res, size_t reslen)
{
	size_t off = 0, len = 0;
	char *copy = malloc(strlen(line) + 1); /* exact size: ASan sees any overread */
	bool ok;

	memcpy(copy, line, strlen(line));
	ok = msg_peek_result(copy, strlen(line), id, &off, &len);
	if (ok)
		snprintf(res, reslen, "%.*s", (int)len, copy + off);
	free(copy);
	return ok;
}

static void test_peek_result(void **state)
{
	static const char *const refused[] = {
		"", "{", "[]", "{}", "{\"id\":1,\"ok\":true}", "{\"id\":1,\"result\":{}}",
		"{\"id\":1,\"ok\":false,\"result\":{}}", "{\"id\":1,\"ok\":true,\"result\":[]}",
		"{\"id\":1,\"ok\":true,\"result\":{},\"x\":1}", "{\"id\":1,\"ok\":true,\"result\":{},\"id\":2}",
		"{\"id\":-1,\"ok\":true,\"result\":{}}", "{\"id\":01,\"ok\":true,\"result\":{}}",
		"{\"id\":1.5,\"ok\":true,\"result\":{}}", "{\"id\":1e3,\"ok\":true,\"result\":{}}",
		"{\"id\":9007199254740992,\"ok\":true,\"result\":{}}",
		"{\"id\":123456789012345678,\"ok\":true,\"result\":{}}",
		"{\"id\":null,\"ok\":true,\"result\":{}}", "{\"\\u0069d\":1,\"ok\":true,\"result\":{}}",
		"{\"id\":1,\"ok\":truex,\"result\":{}}", "{\"id\":1,\"ok\":true,\"result\":{}} x",
		"{\"id\":1,\"ok\":true,\"result\":{\"a\":\"}\"", "{\"id\":1,\"ok\":true,\"result\":{\"a\":\"\\\"}}",
		"{\"push\":\"status\",\"data\":{}}", "{\"id\":1 \"ok\":true,\"result\":{}}",
		"{\"id\":1,\"ok\":true,\"result\":{\"a\":[}]}", /* ends with ']' */
	};
	const char *good = "{\"id\":42,\"ok\":true,\"result\":{\"s\":\"}\\\"]\",\"g\":[{\"a\":[1,2]}]}}";
	char res[256];
	uint64_t id = 0;

	(void)state;
	assert_true(peek(good, &id, res, sizeof res));
	assert_int_equal(id, 42);
	assert_string_equal(res, "{\"s\":\"}\\\"]\",\"g\":[{\"a\":[1,2]}]}");
	assert_true(peek(" {\"result\" :{ } ,\"ok\": true , \"id\":0}\r\n", &id, res, sizeof res));
	assert_int_equal(id, 0);
	assert_string_equal(res, "{ }");
	assert_true(peek("{\"ok\":true,\"id\":9007199254740991,\"result\":{}}", &id, res, sizeof res));
	assert_int_equal(id, 9007199254740991ull);
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (peek(refused[i], &id, res, sizeof res))
			fail_msg("took %s", refused[i]);
	/* Cut anywhere, never taken, never read past its end. */
	for (size_t n = 0; n < strlen(good); n++) {
		char cut[256];

		snprintf(cut, sizeof cut, "%.*s", (int)n, good);
		assert_false(peek(cut, &id, res, sizeof res));
	}
	/* What it takes, msg_decode takes as the same reply. */
	struct msg m;
	char err[256];
	assert_int_equal(msg_decode(good, strlen(good), &m, err, sizeof err), 0);
	assert_int_equal(m.kind, MSG_REPLY_OK);
	assert_int_equal(m.id, 42);
	msg_done(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_request),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_encode_every_command),
		cmocka_unit_test(test_decode_valid_fixtures),
		cmocka_unit_test(test_decode_invalid_fixtures),
		cmocka_unit_test(test_decode_deep_nesting),
		cmocka_unit_test(test_take_result),
		cmocka_unit_test(test_hello_ok),
		cmocka_unit_test(test_hello_each_member),
		cmocka_unit_test(test_hello_ranges),
		cmocka_unit_test(test_status_ok),
		cmocka_unit_test(test_status_clients),
		cmocka_unit_test(test_status_each_member),
		cmocka_unit_test(test_status_ranges),
		cmocka_unit_test(test_status_memory),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_profile_status_ok),
		cmocka_unit_test(test_profile_status_bad),
		cmocka_unit_test(test_status_profile_member),
		cmocka_unit_test(test_profile_functions_ok),
		cmocka_unit_test(test_profile_functions_bad),
		cmocka_unit_test(test_cost),
		cmocka_unit_test(test_profile_tree_ok),
		cmocka_unit_test(test_profile_tree_bad),
		cmocka_unit_test(test_types_ok),
		cmocka_unit_test(test_types_bad),
		cmocka_unit_test(test_why_ok),
		cmocka_unit_test(test_why_hostile),
		cmocka_unit_test(test_why_bad),
		cmocka_unit_test(test_why_caps),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_envelope_property),
		cmocka_unit_test(test_peek_result),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
