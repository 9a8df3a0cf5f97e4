/*
 * msg.c - request encoding and strict decoding of agent frames (see msg.h).
 */
#include "ipc/msg.h"
#include "base/errfmt.h"
#include "base/strsafe.h"
#include "base/xalloc.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(const cJSON *item)
{
	if (item == NULL)
		return "nothing";
	if (cJSON_IsNull(item))
		return "null";
	if (cJSON_IsBool(item))
		return "a boolean";
	if (cJSON_IsNumber(item))
		return "a number";
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsObject(item))
		return "an object";
	return "an unknown value";
}

/* A whole number in [min, max]? (max <= MSG_INT_MAX, so exact in a double) */
static bool whole_in(const cJSON *item, int64_t min, int64_t max, int64_t *out)
{
	double v;

	if (!cJSON_IsNumber(item))
		return false;
	v = item->valuedouble;
	/* Range first, so the cast is defined; no libm needed. */
	if (!isfinite(v) || v < (double)min || v > (double)max || (double)(int64_t)v != v)
		return false;
	*out = (int64_t)v;
	return true;
}

/* "a string", "the number 1.5" ... for messages about a wrong value. */
static const char *describe(const cJSON *item, char *buf, size_t buflen)
{
	if (cJSON_IsNumber(item)) {
		snprintf(buf, buflen, "%.17g", item->valuedouble);
		return buf;
	}
	return type_name(item);
}

char *msg_encode_request(uint64_t id, enum proto_cmd cmd, const cJSON *args, size_t *len,
			 char *err, size_t errlen)
{
	const char *name = proto_cmd_name(cmd);
	char *argstr = NULL, *line;
	size_t n;
	int head;
	char prefix[96];

	if (name == NULL) {
		errfmt(err, errlen, "cannot encode a request for unknown command number %d", (int)cmd);
		return NULL;
	}
	if (id > MSG_ID_MAX) {
		errfmt(err, errlen, "request id %" PRIu64 " is above the protocol's limit 2^53-1", id);
		return NULL;
	}
	if (args != NULL && !cJSON_IsObject(args)) {
		errfmt(err, errlen, "arguments of \"%s\" must be a JSON object, not %s", name,
			type_name(args));
		return NULL;
	}
	if (args != NULL) {
		argstr = cJSON_PrintUnformatted(args);
		if (argstr == NULL)
			xalloc_die(0);
		if (strchr(argstr, '\n') != NULL) {
			free(argstr);
			errfmt(err, errlen, "arguments of \"%s\" contain a raw newline", name);
			return NULL;
		}
	}
	head = snprintf(prefix, sizeof prefix, "{\"id\":%" PRIu64 ",\"cmd\":\"%s\"", id, name);
	n = (size_t)head + (argstr ? strlen(argstr) + 8 : 0) + 2; /* ,"args": + }\n */
	if (n > PROTO_MAX_REQUEST) {
		errfmt(err, errlen, "\"%s\" request is %zu bytes, over the protocol limit of %d bytes",
			name, n, PROTO_MAX_REQUEST);
		free(argstr);
		return NULL;
	}
	line = xmalloc(n + 1);
	memcpy(line, prefix, (size_t)head);
	if (argstr) {
		size_t alen = strlen(argstr);

		memcpy(line + head, ",\"args\":", 8);
		memcpy(line + head + 8, argstr, alen);
		head += (int)alen + 8;
	}
	memcpy(line + head, "}\n", 3);
	free(argstr);
	if (len)
		*len = n;
	return line;
}

void msg_done(struct msg *m)
{
	if (m == NULL)
		return;
	cJSON_Delete(m->root);
	memset(m, 0, sizeof *m);
}

cJSON *msg_take_result(struct msg *m)
{
	cJSON *item = NULL;

	if (m->root == NULL)
		return NULL;
	if (m->kind == MSG_REPLY_OK)
		item = m->result;
	else if (m->kind == MSG_PUSH)
		item = m->data;
	if (item == NULL)
		return NULL;
	cJSON_DetachItemViaPointer(m->root, item);
	m->result = m->data = NULL;
	return item;
}

enum {
	M_ID, M_OK, M_RESULT, M_ERROR, M_PUSH, M_DATA, M_COUNT
};
static const char *const envelope_names[M_COUNT] = {
	"id", "ok", "result", "error", "push", "data"
};

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int decode_error_object(const cJSON *error, struct msg *out, char *err, size_t errlen)
{
	const cJSON *code = NULL, *message = NULL, *it;
	char nb[48];

	cJSON_ArrayForEach(it, error) {
		const char *k = it->string ? it->string : "";

		if (strcmp(k, "code") == 0 && code == NULL)
			code = it;
		else if (strcmp(k, "message") == 0 && message == NULL)
			message = it;
		else if (strcmp(k, "code") == 0 || strcmp(k, "message") == 0) {
			errfmt(err, errlen, "error reply has member \"%s\" twice", k);
			return -1;
		} else {
			errfmt(err, errlen, "error reply has an unexpected member \"%s\" in \"error\"",
				strsafe_shown(nb, sizeof nb, k));
			return -1;
		}
	}
	if (!cJSON_IsString(code)) {
		errfmt(err, errlen, "error reply: \"error.code\" must be a string, got %s",
			type_name(code));
		return -1;
	}
	if (!cJSON_IsString(message)) {
		errfmt(err, errlen, "error reply: \"error.message\" must be a string, got %s",
			type_name(message));
		return -1;
	}
	out->error_code_name = code->valuestring;
	out->error_message = message->valuestring;
	out->error_code = proto_err_from_name(code->valuestring);
	return 0;
}

static size_t peek_ws(const char *s, size_t i, size_t len)
{
	while (i < len && is_json_space(s[i]))
		i++;
	return i;
}

/* Past the object or array that opens at s[i], strings followed; 0 if it never ends. */
static size_t peek_skip(const char *s, size_t i, size_t len)
{
	size_t depth = 0;

	for (; i < len; i++) {
		char c = s[i];

		if (c == '"') {
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			if (i >= len)
				return 0;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (--depth == 0) /* s[i] opened one: never below 0 */
				return i + 1;
		}
	}
	return 0;
}

bool msg_peek_result(const char *line, size_t len, uint64_t *id, size_t *off, size_t *rlen)
{
	bool have_id = false, have_ok = false, have_result = false;
	size_t i = peek_ws(line, 0, len);

	if (i >= len || line[i] != '{')
		return false;
	for (i++;;) {
		size_t k, klen;

		i = peek_ws(line, i, len);
		if (i >= len || line[i] != '"')
			return false;
		for (k = ++i; i < len && line[i] != '"' && line[i] != '\\'; i++)
			;
		if (i >= len || line[i] != '"')
			return false;
		klen = i - k;
		i = peek_ws(line, i + 1, len);
		if (i >= len || line[i] != ':')
			return false;
		i = peek_ws(line, i + 1, len);
		if (i >= len)
			return false;
		if (klen == 2 && memcmp(line + k, "id", 2) == 0 && !have_id) {
			size_t d = i;
			uint64_t v = 0;

			while (i < len && line[i] >= '0' && line[i] <= '9' && i - d < 17)
				v = v * 10 + (uint64_t)(line[i++] - '0');
			if (i == d || (line[d] == '0' && i - d > 1) || v > MSG_ID_MAX)
				return false;
			*id = v;
			have_id = true;
		} else if (klen == 2 && memcmp(line + k, "ok", 2) == 0 && !have_ok) {
			if (len - i < 4 || memcmp(line + i, "true", 4) != 0)
				return false;
			i += 4;
			have_ok = true;
		} else if (klen == 6 && memcmp(line + k, "result", 6) == 0 && !have_result) {
			size_t end = line[i] == '{' ? peek_skip(line, i, len) : 0;

			if (end == 0 || line[end - 1] != '}')
				return false;
			*off = i;
			*rlen = end - i;
			i = end;
			have_result = true;
		} else {
			return false;
		}
		i = peek_ws(line, i, len);
		if (i < len && line[i] == ',') {
			i++;
			continue;
		}
		if (i >= len || line[i] != '}')
			return false;
		return peek_ws(line, i + 1, len) == len && have_id && have_ok && have_result;
	}
}

int msg_decode(const char *line, size_t len, struct msg *out, char *err, size_t errlen)
{
	const char *end = NULL;
	cJSON *root, *it, *m[M_COUNT] = { 0 };
	char nb[48], db[32];
	int64_t id;

	memset(out, 0, sizeof *out);
	if (len == 0) {
		errfmt(err, errlen, "empty frame (a blank line)");
		return -1;
	}
	root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
	if (root == NULL) {
		size_t at = (end && end >= line && end <= line + len) ? (size_t)(end - line) : 0;

		errfmt(err, errlen, "frame is not valid JSON (error near byte %zu of %zu)", at, len);
		return -1;
	}
	for (const char *p = end; p < line + len; p++) {
		if (!is_json_space(*p)) {
			errfmt(err, errlen, "frame has bytes after its JSON value (at byte %zu of %zu)",
				(size_t)(p - line), len);
			goto fail;
		}
	}
	if (!cJSON_IsObject(root)) {
		errfmt(err, errlen, "frame is %s, not a JSON object", type_name(root));
		goto fail;
	}
	cJSON_ArrayForEach(it, root) {
		const char *k = it->string ? it->string : "";
		int i;

		for (i = 0; i < M_COUNT; i++)
			if (strcmp(k, envelope_names[i]) == 0)
				break;
		if (i == M_COUNT) {
			errfmt(err, errlen, "frame has an unexpected member \"%s\"", strsafe_shown(nb, sizeof nb, k));
			goto fail;
		}
		if (m[i] != NULL) {
			errfmt(err, errlen, "frame has member \"%s\" twice", k);
			goto fail;
		}
		m[i] = it;
	}

	if (m[M_PUSH] != NULL) {
		int push;

		for (int i = M_ID; i <= M_ERROR; i++) {
			if (m[i] != NULL) {
				errfmt(err, errlen, "a push must not have member \"%s\"", envelope_names[i]);
				goto fail;
			}
		}
		if (!cJSON_IsString(m[M_PUSH])) {
			errfmt(err, errlen, "push: \"push\" must be a string, got %s", type_name(m[M_PUSH]));
			goto fail;
		}
		push = proto_push_from_name(m[M_PUSH]->valuestring);
		if (push < 0) {
			errfmt(err, errlen, "unknown push \"%s\"", strsafe_shown(nb, sizeof nb, m[M_PUSH]->valuestring));
			goto fail;
		}
		if (!cJSON_IsObject(m[M_DATA])) {
			errfmt(err, errlen, "push \"%s\": \"data\" must be an object, got %s",
				m[M_PUSH]->valuestring, type_name(m[M_DATA]));
			goto fail;
		}
		out->kind = MSG_PUSH;
		out->push = (enum proto_push)push;
		out->data = m[M_DATA];
		out->root = root;
		return 0;
	}

	if (m[M_DATA] != NULL) {
		errfmt(err, errlen, "a reply must not have member \"data\"");
		goto fail;
	}
	if (m[M_ID] == NULL || m[M_OK] == NULL) {
		errfmt(err, errlen, "frame is neither a reply (needs \"id\" and \"ok\") nor a push "
			"(needs \"push\")");
		goto fail;
	}
	if (!cJSON_IsBool(m[M_OK])) {
		errfmt(err, errlen, "reply: \"ok\" must be a boolean, got %s", type_name(m[M_OK]));
		goto fail;
	}
	if (cJSON_IsNull(m[M_ID]) && cJSON_IsFalse(m[M_OK])) {
		out->has_id = false;
	} else if (whole_in(m[M_ID], 0, (int64_t)MSG_ID_MAX, &id)) {
		out->has_id = true;
		out->id = (uint64_t)id;
	} else {
		errfmt(err, errlen, "reply: \"id\" must be an integer from 0 to 2^53-1%s, got %s",
			cJSON_IsFalse(m[M_OK]) ? " or null" : "", describe(m[M_ID], db, sizeof db));
		goto fail;
	}
	if (cJSON_IsTrue(m[M_OK])) {
		if (m[M_ERROR] != NULL) {
			errfmt(err, errlen, "reply with \"ok\": true must not have \"error\"");
			goto fail;
		}
		if (!cJSON_IsObject(m[M_RESULT])) {
			errfmt(err, errlen, "reply: \"result\" must be an object, got %s",
				type_name(m[M_RESULT]));
			goto fail;
		}
		out->kind = MSG_REPLY_OK;
		out->result = m[M_RESULT];
	} else {
		if (m[M_RESULT] != NULL) {
			errfmt(err, errlen, "reply with \"ok\": false must not have \"result\"");
			goto fail;
		}
		if (!cJSON_IsObject(m[M_ERROR])) {
			errfmt(err, errlen, "error reply: \"error\" must be an object, got %s",
				type_name(m[M_ERROR]));
			goto fail;
		}
		if (decode_error_object(m[M_ERROR], out, err, errlen) < 0)
			goto fail;
		out->kind = MSG_REPLY_ERROR;
	}
	out->root = root;
	return 0;
fail:
	cJSON_Delete(root);
	memset(out, 0, sizeof *out);
	return -1;
}

/* ---- typed members ---- */

static const cJSON *member(const cJSON *obj, const char *what, const char *name,
			   char *err, size_t errlen)
{
	const cJSON *it = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;

	if (!cJSON_IsObject(obj))
		errfmt(err, errlen, "%s must be a JSON object, got %s", what, type_name(obj));
	else if (it == NULL)
		errfmt(err, errlen, "%s: missing \"%s\"", what, name);
	return it;
}

int msg_get_int(const cJSON *obj, const char *what, const char *name, int64_t min, int64_t max,
		int64_t *out, char *err, size_t errlen)
{
	const cJSON *it = member(obj, what, name, err, errlen);
	char db[32];

	if (it == NULL)
		return -1;
	if (!whole_in(it, min, max, out)) {
		errfmt(err, errlen, "%s: \"%s\" must be an integer from %" PRId64 " to %" PRId64 ", got %s",
			what, name, min, max, describe(it, db, sizeof db));
		return -1;
	}
	return 0;
}

int msg_get_number(const cJSON *obj, const char *what, const char *name, double *out,
		   char *err, size_t errlen)
{
	const cJSON *it = member(obj, what, name, err, errlen);

	if (it == NULL)
		return -1;
	if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
		errfmt(err, errlen, "%s: \"%s\" must be a finite number, got %s", what, name,
			type_name(it));
		return -1;
	}
	*out = it->valuedouble;
	return 0;
}

int msg_get_bool(const cJSON *obj, const char *what, const char *name, bool *out,
		 char *err, size_t errlen)
{
	const cJSON *it = member(obj, what, name, err, errlen);

	if (it == NULL)
		return -1;
	if (!cJSON_IsBool(it)) {
		errfmt(err, errlen, "%s: \"%s\" must be true or false, got %s", what, name,
			type_name(it));
		return -1;
	}
	*out = cJSON_IsTrue(it);
	return 0;
}

int msg_get_string(const cJSON *obj, const char *what, const char *name, const char **out,
		   char *err, size_t errlen)
{
	const cJSON *it = member(obj, what, name, err, errlen);

	if (it == NULL)
		return -1;
	if (!cJSON_IsString(it)) {
		errfmt(err, errlen, "%s: \"%s\" must be a string, got %s", what, name, type_name(it));
		return -1;
	}
	*out = it->valuestring;
	return 0;
}

static int get_nonneg_time(const cJSON *obj, const char *what, const char *name, double *out,
			   char *err, size_t errlen)
{
	if (msg_get_number(obj, what, name, out, err, errlen) < 0)
		return -1;
	if (*out < 0) {
		errfmt(err, errlen, "%s: \"%s\" must not be negative, got %.17g", what, name, *out);
		return -1;
	}
	return 0;
}

/* An array of strings: malloc'd copies into *vec / *n. */
static int get_string_array(const cJSON *obj, const char *what, const char *name, char ***vec,
			    size_t *n, char *err, size_t errlen)
{
	const cJSON *arr = member(obj, what, name, err, errlen), *it;
	size_t count, i = 0;

	*vec = NULL;
	*n = 0;
	if (arr == NULL)
		return -1;
	if (!cJSON_IsArray(arr)) {
		errfmt(err, errlen, "%s: \"%s\" must be an array of strings, got %s", what, name,
			type_name(arr));
		return -1;
	}
	count = (size_t)cJSON_GetArraySize(arr);
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it)) {
			errfmt(err, errlen, "%s: \"%s\"[%zu] must be a string, got %s", what, name, i,
				type_name(it));
			for (size_t j = 0; j < i; j++)
				free((*vec)[j]);
			free(*vec);
			*vec = NULL;
			return -1;
		}
		if (*vec == NULL)
			*vec = xcalloc(count, sizeof **vec);
		(*vec)[i++] = xstrdup(it->valuestring);
	}
	*n = i;
	return 0;
}

static char *dup_member(const cJSON *obj, const char *what, const char *name, char *err,
			size_t errlen)
{
	const char *s;

	if (msg_get_string(obj, what, name, &s, err, errlen) < 0)
		return NULL;
	return xstrdup(s);
}

void msg_hello_done(struct msg_hello *h)
{
	if (h == NULL)
		return;
	free(h->agent);
	free(h->python);
	free(h->implementation);
	free(h->executable);
	free(h->argv);
	for (size_t i = 0; i < h->ncapabilities; i++)
		free(h->capabilities[i]);
	free(h->capabilities);
	memset(h, 0, sizeof *h);
}

int msg_decode_hello(const cJSON *result, struct msg_hello *out, char *err, size_t errlen)
{
	static const char what[] = "hello result";
	int64_t v;
	char **argv = NULL;
	size_t argc = 0, total = 1;

	memset(out, 0, sizeof *out);
	if (msg_get_int(result, what, "protocol", 1, INT32_MAX, &v, err, errlen) < 0)
		goto fail;
	out->protocol = (int)v;
	if ((out->agent = dup_member(result, what, "agent", err, errlen)) == NULL)
		goto fail;
	if (msg_get_int(result, what, "pid", 1, INT32_MAX, &v, err, errlen) < 0)
		goto fail;
	out->pid = (long)v;
	if (msg_get_int(result, what, "ppid", 0, INT32_MAX, &v, err, errlen) < 0)
		goto fail;
	out->ppid = (long)v;
	if ((out->python = dup_member(result, what, "python", err, errlen)) == NULL)
		goto fail;
	if ((out->implementation = dup_member(result, what, "implementation", err, errlen)) == NULL)
		goto fail;
	if ((out->executable = dup_member(result, what, "executable", err, errlen)) == NULL)
		goto fail;
	if (get_string_array(result, what, "argv", &argv, &argc, err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < argc; i++)
		total += strlen(argv[i]) + 1;
	out->argv = xmalloc(total);
	out->argv[0] = '\0';
	for (size_t i = 0, at = 0; i < argc; i++) {
		size_t l = strlen(argv[i]);

		if (i > 0)
			out->argv[at++] = ' ';
		memcpy(out->argv + at, argv[i], l + 1);
		at += l;
		free(argv[i]);
	}
	free(argv);
	out->argc = argc;
	if (get_nonneg_time(result, what, "started", &out->started, err, errlen) < 0)
		goto fail;
	if (msg_get_bool(result, what, "native", &out->native, err, errlen) < 0)
		goto fail;
	if (get_string_array(result, what, "capabilities", &out->capabilities, &out->ncapabilities,
			     err, errlen) < 0)
		goto fail;
	return 0;
fail:
	msg_hello_done(out);
	return -1;
}

bool msg_hello_has_capability(const struct msg_hello *h, const char *name)
{
	for (size_t i = 0; i < h->ncapabilities; i++)
		if (strcmp(h->capabilities[i], name) == 0)
			return true;
	return false;
}

static int get_gc_array(const cJSON *obj, const char *what, const char *name, bool allow_null,
			bool *present, struct msg_gc_array *out, char *err, size_t errlen)
{
	const cJSON *arr = member(obj, what, name, err, errlen), *it;
	int64_t v;
	char db[32];

	memset(out, 0, sizeof *out);
	if (present)
		*present = false;
	if (arr == NULL)
		return -1;
	if (allow_null && cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr)) {
		errfmt(err, errlen, "%s: \"%s\" must be an array of integers%s, got %s", what, name,
			allow_null ? " or null" : "", type_name(arr));
		return -1;
	}
	cJSON_ArrayForEach(it, arr) {
		if (out->n == MSG_GC_MAX) {
			errfmt(err, errlen, "%s: \"%s\" has more than %d generations", what, name,
				MSG_GC_MAX);
			return -1;
		}
		if (!whole_in(it, 0, (int64_t)MSG_INT_MAX, &v)) {
			errfmt(err, errlen, "%s: \"%s\"[%zu] must be an integer from 0 to 2^53-1, got %s",
				what, name, out->n, describe(it, db, sizeof db));
			return -1;
		}
		out->v[out->n++] = v;
	}
	if (out->n == 0) {
		errfmt(err, errlen, "%s: \"%s\" is empty", what, name);
		return -1;
	}
	if (present)
		*present = true;
	return 0;
}

static int get_size(const cJSON *obj, const char *what, const char *name, uint64_t *out,
		    char *err, size_t errlen)
{
	int64_t v;

	if (msg_get_int(obj, what, name, 0, (int64_t)MSG_INT_MAX, &v, err, errlen) < 0)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int msg_decode_malloc(const cJSON *obj, const char *what, struct msg_malloc *out, char *err,
		      size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!cJSON_IsObject(obj)) {
		errfmt(err, errlen, "%s must be an object, got %s", what, type_name(obj));
		return -1;
	}
	if (get_size(obj, what, "arena", &out->arena, err, errlen) < 0 ||
	    get_size(obj, what, "in_use", &out->in_use, err, errlen) < 0 ||
	    get_size(obj, what, "free", &out->free, err, errlen) < 0 ||
	    get_size(obj, what, "mmapped", &out->mmapped, err, errlen) < 0 ||
	    get_size(obj, what, "mmapped_blocks", &out->mmapped_blocks, err, errlen) < 0 ||
	    get_size(obj, what, "top_pad", &out->top_pad, err, errlen) < 0) {
		memset(out, 0, sizeof *out);
		return -1;
	}
	return 0;
}

static int get_string_into(const cJSON *obj, const char *what, const char *name, bool allow_null,
			   char *buf, size_t buflen, char *err, size_t errlen);
static int get_nonneg_number(const cJSON *obj, const char *what, const char *name, double *out,
			     char *err, size_t errlen);

int msg_decode_trim(const cJSON *result, struct msg_trim *out, char *err, size_t errlen)
{
	static const char what[] = "trim";

	memset(out, 0, sizeof *out);
	if (msg_get_bool(result, what, "returned", &out->returned, err, errlen) < 0 ||
	    get_nonneg_number(result, what, "seconds", &out->seconds, err, errlen) < 0 ||
	    msg_decode_malloc(cJSON_GetObjectItemCaseSensitive(result, "malloc_before"),
			      "trim: \"malloc_before\"", &out->before, err, errlen) < 0 ||
	    msg_decode_malloc(cJSON_GetObjectItemCaseSensitive(result, "malloc_after"),
			      "trim: \"malloc_after\"", &out->after, err, errlen) < 0) {
		memset(out, 0, sizeof *out);
		return -1;
	}
	return 0;
}

/* status.memory; either allocator's object may be null, with its reason. */
static int get_memory(const cJSON *obj, struct msg_memory *out, char *err, size_t errlen)
{
	static const char w[] = "status: \"memory\"";
	const cJSON *m, *p;

	if (!cJSON_IsObject(obj)) {
		errfmt(err, errlen, "%s must be an object or null", w);
		return -1;
	}
	if (get_nonneg_number(obj, w, "time", &out->time, err, errlen) < 0 ||
	    get_nonneg_number(obj, w, "cost", &out->cost, err, errlen) < 0 ||
	    get_string_into(obj, w, "malloc_why", true, out->malloc_why, sizeof out->malloc_why, err,
			    errlen) < 0 ||
	    get_string_into(obj, w, "pymalloc_why", true, out->pymalloc_why, sizeof out->pymalloc_why,
			    err, errlen) < 0)
		return -1;
	m = cJSON_GetObjectItemCaseSensitive(obj, "malloc");
	if (m != NULL && !cJSON_IsNull(m)) {
		if (msg_decode_malloc(m, "status: \"memory\": \"malloc\"", &out->malloc, err, errlen) < 0)
			return -1;
		out->has_malloc = true;
	}
	p = cJSON_GetObjectItemCaseSensitive(obj, "pymalloc");
	if (p != NULL && !cJSON_IsNull(p)) {
		static const char pw[] = "status: \"memory\": \"pymalloc\"";
		struct msg_pymalloc *y = &out->pymalloc;

		if (!cJSON_IsObject(p)) {
			errfmt(err, errlen, "%s must be an object or null", pw);
			return -1;
		}
		if (get_size(p, pw, "arenas", &y->arenas, err, errlen) < 0 ||
		    get_size(p, pw, "arena_bytes", &y->arena_bytes, err, errlen) < 0 ||
		    get_size(p, pw, "allocated", &y->allocated, err, errlen) < 0 ||
		    get_size(p, pw, "available", &y->available, err, errlen) < 0 ||
		    get_size(p, pw, "unused_pools", &y->unused_pools, err, errlen) < 0)
			return -1;
		out->has_pymalloc = true;
	}
	if (!out->has_malloc && !out->malloc_why[0])
		snprintf(out->malloc_why, sizeof out->malloc_why, "the agent did not say");
	if (!out->has_pymalloc && !out->pymalloc_why[0])
		snprintf(out->pymalloc_why, sizeof out->pymalloc_why, "the agent did not say");
	return 0;
}

int msg_decode_status(const cJSON *obj, struct msg_status *out, char *err, size_t errlen)
{
	static const char what[] = "status";
	const cJSON *prof, *cl;
	int64_t v;

	memset(out, 0, sizeof *out);
	if (get_nonneg_time(obj, what, "time", &out->time, err, errlen) < 0 ||
	    msg_get_bool(obj, what, "tracing", &out->tracing, err, errlen) < 0)
		goto fail;
	if (msg_get_int(obj, what, "nframe", 0, 65535, &v, err, errlen) < 0)
		goto fail;
	out->nframe = (int)v;
	if (msg_get_bool(obj, what, "started_by_agent", &out->started_by_agent, err, errlen) < 0 ||
	    get_size(obj, what, "traced_current", &out->traced_current, err, errlen) < 0 ||
	    get_size(obj, what, "traced_peak", &out->traced_peak, err, errlen) < 0 ||
	    get_size(obj, what, "tracemalloc_memory", &out->tracemalloc_memory, err, errlen) < 0 ||
	    get_gc_array(obj, what, "gc_counts", false, NULL, &out->gc_counts, err, errlen) < 0 ||
	    get_gc_array(obj, what, "gc_thresholds", false, NULL, &out->gc_thresholds, err, errlen) < 0 ||
	    get_gc_array(obj, what, "gc_objects", true, &out->has_gc_objects, &out->gc_objects, err,
			 errlen) < 0 ||
	    get_gc_array(obj, what, "gc_collections", false, NULL, &out->gc_collections, err, errlen) < 0 ||
	    get_size(obj, what, "threads", &out->threads, err, errlen) < 0)
		goto fail;
	/* Agents before the sampled profiler send no "profile". */
	prof = cJSON_GetObjectItemCaseSensitive(obj, "profile");
	if (prof != NULL && !cJSON_IsNull(prof)) {
		char inner[256];

		if (msg_decode_profile_status(prof, &out->profile, inner, sizeof inner) < 0) {
			errfmt(err, errlen, "%s: \"profile\": %s", what, inner);
			goto fail;
		}
		out->has_profile = true;
	}
	/* Agents before the connection limits send no "clients". */
	cl = cJSON_GetObjectItemCaseSensitive(obj, "clients");
	if (cl != NULL && !cJSON_IsNull(cl)) {
		static const char cw[] = "status: \"clients\"";
		struct msg_clients *c = &out->clients;

		if (!cJSON_IsObject(cl)) {
			errfmt(err, errlen, "%s must be an object or null", cw);
			goto fail;
		}
		if (get_size(cl, cw, "connections", &c->connections, err, errlen) < 0 ||
		    get_size(cl, cw, "max_connections", &c->max_connections, err, errlen) < 0 ||
		    get_size(cl, cw, "buffered", &c->buffered, err, errlen) < 0 ||
		    get_size(cl, cw, "answered", &c->answered, err, errlen) < 0 ||
		    get_size(cl, cw, "dropped", &c->dropped, err, errlen) < 0 ||
		    get_size(cl, cw, "busy", &c->busy, err, errlen) < 0 ||
		    get_size(cl, cw, "timeouts", &c->timeouts, err, errlen) < 0 ||
		    get_size(cl, cw, "refused", &c->refused, err, errlen) < 0)
			goto fail;
		out->has_clients = true;
	}
	/* Agents before the RSS composition send no "memory". */
	cl = cJSON_GetObjectItemCaseSensitive(obj, "memory");
	if (cl != NULL && !cJSON_IsNull(cl)) {
		if (get_memory(cl, &out->memory, err, errlen) < 0)
			goto fail;
		out->has_memory = true;
	}
	return 0;
fail:
	memset(out, 0, sizeof *out);
	return -1;
}

/* A string member that may be null (NULL then), copied. */
static int opt_string(const cJSON *obj, const char *what, const char *name, char **out, char *err,
		      size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		errfmt(err, errlen, "%s: \"%s\" must be a string or null", what, name);
		return -1;
	}
	*out = xstrdup(v->valuestring);
	return 0;
}

static int get_bytes(const cJSON *obj, const char *what, const char *name, int64_t *out, char *err,
		     size_t errlen)
{
	return msg_get_int(obj, what, name, -(int64_t)MSG_INT_MAX, (int64_t)MSG_INT_MAX, out, err, errlen);
}

static int decode_function(const cJSON *f, struct msg_function *out, char *err, size_t errlen)
{
	const char *w = "functions row";
	const char *name, *file;
	int64_t line;
	const cJSON *rss, *threads, *t;

	if (!cJSON_IsObject(f)) {
		errfmt(err, errlen, "%s: not an object", w);
		return -1;
	}
	if (msg_get_string(f, w, "name", &name, err, errlen) < 0 ||
	    msg_get_string(f, w, "file", &file, err, errlen) < 0 ||
	    msg_get_int(f, w, "line", 0, INT32_MAX, &line, err, errlen) < 0 ||
	    msg_get_int(f, w, "calls", 0, MSG_INT_MAX, &out->calls, err, errlen) < 0 ||
	    msg_get_int(f, w, "outer", 0, MSG_INT_MAX, &out->outer, err, errlen) < 0 ||
	    get_bytes(f, w, "net", &out->net, err, errlen) < 0 ||
	    get_bytes(f, w, "max", &out->max, err, errlen) < 0 ||
	    msg_get_int(f, w, "gross", 0, MSG_INT_MAX, &out->gross, err, errlen) < 0 ||
	    get_bytes(f, w, "mean", &out->mean, err, errlen) < 0)
		return -1;
	out->name = xstrdup(name);
	out->file = xstrdup(file);
	out->line = (int)line;
	rss = cJSON_GetObjectItemCaseSensitive(f, "rss");
	if (rss != NULL && !cJSON_IsNull(rss)) {
		if (!cJSON_IsObject(rss)) {
			errfmt(err, errlen, "%s %s: \"rss\" must be an object or null", w, name);
			return -1;
		}
		if (get_bytes(rss, "rss", "net", &out->rss_net, err, errlen) < 0 ||
		    get_bytes(rss, "rss", "max", &out->rss_max, err, errlen) < 0 ||
		    msg_get_int(rss, "rss", "calls", 0, MSG_INT_MAX, &out->rss_calls, err, errlen) < 0)
			return -1;
		out->has_rss = true;
	}
	threads = cJSON_GetObjectItemCaseSensitive(f, "threads");
	if (threads != NULL && !cJSON_IsArray(threads)) {
		errfmt(err, errlen, "%s %s: \"threads\" must be an array", w, name);
		return -1;
	}
	out->threads = xcalloc((size_t)cJSON_GetArraySize(threads) + 1, sizeof *out->threads);
	cJSON_ArrayForEach(t, threads) {
		struct msg_function_thread *th = &out->threads[out->nthreads];
		const char *tname;

		if (!cJSON_IsObject(t) || msg_get_string(t, "thread", "name", &tname, err, errlen) < 0 ||
		    msg_get_int(t, "thread", "calls", 0, MSG_INT_MAX, &th->calls, err, errlen) < 0 ||
		    get_bytes(t, "thread", "net", &th->net, err, errlen) < 0 ||
		    msg_get_int(t, "thread", "gross", 0, MSG_INT_MAX, &th->gross, err, errlen) < 0) {
			if (!cJSON_IsObject(t))
				errfmt(err, errlen, "%s %s: a thread is not an object", w, name);
			return -1;
		}
		th->name = xstrdup(tname);
		out->nthreads++;
	}
	return 0;
}

int msg_decode_functions(const cJSON *result, struct msg_functions *out, char *err, size_t errlen)
{
	const char *w = "functions result";
	const cJSON *rows, *f;
	int64_t total = 0;

	memset(out, 0, sizeof *out);
	if (!cJSON_IsObject(result)) {
		errfmt(err, errlen, "%s: not an object", w);
		return -1;
	}
	if (msg_get_bool(result, w, "running", &out->running, err, errlen) < 0 ||
	    msg_get_bool(result, w, "native", &out->native, err, errlen) < 0 ||
	    msg_get_number(result, w, "elapsed", &out->elapsed, err, errlen) < 0 ||
	    opt_string(result, w, "mode", &out->mode, err, errlen) < 0 ||
	    opt_string(result, w, "accounting", &out->accounting, err, errlen) < 0 ||
	    opt_string(result, w, "error", &out->error, err, errlen) < 0)
		goto fail;
	/* Replies to functions_start/stop/reset carry no table. */
	rows = cJSON_GetObjectItemCaseSensitive(result, "functions");
	if (rows == NULL)
		return 0;
	if (!cJSON_IsArray(rows)) {
		errfmt(err, errlen, "%s: \"functions\" must be an array", w);
		goto fail;
	}
	if (msg_get_int(result, w, "total_functions", 0, MSG_INT_MAX, &total, err, errlen) < 0)
		goto fail;
	out->total = (size_t)total;
	out->rows = xcalloc((size_t)cJSON_GetArraySize(rows) + 1, sizeof *out->rows);
	out->has_table = true;
	cJSON_ArrayForEach(f, rows) {
		if (decode_function(f, &out->rows[out->nrows], err, errlen) < 0) {
			out->nrows++; /* what it holds is freed below */
			goto fail;
		}
		out->nrows++;
	}
	return 0;
fail:
	msg_functions_done(out);
	return -1;
}

void msg_functions_done(struct msg_functions *f)
{
	for (size_t i = 0; i < f->nrows; i++) {
		struct msg_function *r = &f->rows[i];

		free(r->name);
		free(r->file);
		for (size_t k = 0; k < r->nthreads; k++)
			free(r->threads[k].name);
		free(r->threads);
	}
	free(f->rows);
	free(f->mode);
	free(f->accounting);
	free(f->error);
	memset(f, 0, sizeof *f);
}

/* ---- the sampled profiler ---- */

static const char *const profile_sort_names[MSG_PROFILE_SORT_COUNT] = {
	"own", "total", "rate", "calls", "retained", "largest"
};

const char *msg_profile_sort_name(enum msg_profile_sort sort)
{
	if ((int)sort < 0 || sort >= MSG_PROFILE_SORT_COUNT)
		return NULL;
	return profile_sort_names[sort];
}

int msg_profile_sort_from_name(const char *name)
{
	if (name == NULL)
		return -1;
	for (int i = 0; i < MSG_PROFILE_SORT_COUNT; i++)
		if (strcmp(name, profile_sort_names[i]) == 0)
			return i;
	return -1;
}

/* A finite number >= 0 (the agent's float estimates of bytes and blocks). */
static int get_nonneg_number(const cJSON *obj, const char *what, const char *name, double *out,
			     char *err, size_t errlen)
{
	if (msg_get_number(obj, what, name, out, err, errlen) < 0)
		return -1;
	if (*out < 0) {
		errfmt(err, errlen, "%s: \"%s\" must not be negative, got %.17g", what, name, *out);
		return -1;
	}
	return 0;
}

/* Like get_nonneg_number, but absent or null gives -1. */
static int opt_nonneg_number(const cJSON *obj, const char *what, const char *name, double *out,
			     char *err, size_t errlen)
{
	const cJSON *it = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;

	*out = -1;
	if (cJSON_IsObject(obj) && (it == NULL || cJSON_IsNull(it)))
		return 0;
	return get_nonneg_number(obj, what, name, out, err, errlen);
}

/* The profiler status's optional "native" object: on, entries, live_bytes. */
static int decode_profile_native(const cJSON *obj, const char *what, struct msg_profile_status *out,
				 char *err, size_t errlen)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, "native");
	char w[96];

	out->native_on = false;
	out->native_entries = 0;
	out->native_live_bytes = 0;
	if (n == NULL || cJSON_IsNull(n))
		return 0;
	snprintf(w, sizeof w, "%s: native", what);
	if (!cJSON_IsObject(n)) {
		errfmt(err, errlen, "%s must be an object, got %s", w, type_name(n));
		return -1;
	}
	return msg_get_bool(n, w, "on", &out->native_on, err, errlen) < 0 ||
	       get_size(n, w, "entries", &out->native_entries, err, errlen) < 0 ||
	       get_nonneg_number(n, w, "live_bytes", &out->native_live_bytes, err, errlen) < 0 ? -1 : 0;
}

int msg_decode_cost(const cJSON *result, const char *what, struct msg_cost *out, char *err,
		    size_t errlen)
{
	if (opt_nonneg_number(result, what, "took_ms", &out->took_ms, err, errlen) < 0 ||
	    opt_nonneg_number(result, what, "cpu_ms", &out->cpu_ms, err, errlen) < 0) {
		out->took_ms = out->cpu_ms = -1;
		return -1;
	}
	return 0;
}

double msg_cost_ms(const struct msg_cost *c)
{
	return c->cpu_ms >= 0 ? c->cpu_ms : c->took_ms >= 0 ? c->took_ms : -1;
}

static int get_small(const cJSON *obj, const char *what, const char *name, int64_t min,
		     int64_t max, int *out, char *err, size_t errlen)
{
	int64_t v;

	if (msg_get_int(obj, what, name, min, max, &v, err, errlen) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

/* The string member NAME, display-safe, into a fixed buffer (cut if longer). */
static int get_string_into(const cJSON *obj, const char *what, const char *name, bool allow_null,
			   char *buf, size_t buflen, char *err, size_t errlen)
{
	const cJSON *it = member(obj, what, name, err, errlen);

	buf[0] = '\0';
	if (it == NULL)
		return -1;
	if (allow_null && cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsString(it)) {
		errfmt(err, errlen, "%s: \"%s\" must be a string%s, got %s", what, name,
			allow_null ? " or null" : "", type_name(it));
		return -1;
	}
	strsafe_copy(buf, buflen, it->valuestring, strlen(it->valuestring));
	return 0;
}

int msg_decode_profile_status(const cJSON *obj, struct msg_profile_status *out, char *err,
			      size_t errlen)
{
	static const char what[] = "profile status";
	const cJSON *avail;
	int64_t interval;

	memset(out, 0, sizeof *out);
	if (!cJSON_IsObject(obj)) {
		errfmt(err, errlen, "%s must be a JSON object, got %s", what, type_name(obj));
		return -1;
	}
	avail = cJSON_GetObjectItemCaseSensitive(obj, "available");
	if (avail != NULL && !cJSON_IsBool(avail)) {
		errfmt(err, errlen, "%s: \"available\" must be true or false, got %s", what,
			type_name(avail));
		return -1;
	}
	if (cJSON_IsFalse(avail)) {
		const cJSON *why = cJSON_GetObjectItemCaseSensitive(obj, "error");

		if (why != NULL && get_string_into(obj, what, "error", true, out->error,
						   sizeof out->error, err, errlen) < 0)
			goto fail;
		return 0;
	}
	out->available = true;
	if (msg_get_bool(obj, what, "running", &out->running, err, errlen) < 0 ||
	    msg_get_int(obj, what, "interval", 1, (int64_t)1 << 30, &interval, err, errlen) < 0)
		goto fail;
	out->interval = (uint64_t)interval;
	if (msg_get_bool(obj, what, "exact", &out->exact, err, errlen) < 0 ||
	    get_size(obj, what, "samples", &out->samples, err, errlen) < 0 ||
	    get_size(obj, what, "stacks", &out->stacks, err, errlen) < 0 ||
	    get_size(obj, what, "memory", &out->memory, err, errlen) < 0 ||
	    get_nonneg_number(obj, what, "live_bytes", &out->live_bytes, err, errlen) < 0 ||
	    get_size(obj, what, "dropped_samples", &out->dropped_samples, err, errlen) < 0 ||
	    msg_get_bool(obj, what, "calls", &out->calls, err, errlen) < 0 ||
	    get_size(obj, what, "lost_hooks", &out->lost_hooks, err, errlen) < 0 ||
	    /* Agents before the RSS composition do not say it. */
	    opt_nonneg_number(obj, what, "live_malloc_bytes", &out->live_malloc_bytes, err, errlen) < 0 ||
	    decode_profile_native(obj, what, out, err, errlen) < 0)
		goto fail;
	if (cJSON_GetObjectItemCaseSensitive(obj, "nframe") == NULL)
		return 0; /* the summary of a status push */
	out->has_detail = true;
	if (get_small(obj, what, "nframe", 1, 128, &out->nframe, err, errlen) < 0 ||
	    get_size(obj, what, "max_samples", &out->max_samples, err, errlen) < 0 ||
	    get_size(obj, what, "max_stacks", &out->max_stacks, err, errlen) < 0 ||
	    get_size(obj, what, "dropped_stacks", &out->dropped_stacks, err, errlen) < 0 ||
	    get_nonneg_number(obj, what, "dropped_bytes", &out->dropped_bytes, err, errlen) < 0 ||
	    get_size(obj, what, "total_samples", &out->total_samples, err, errlen) < 0 ||
	    get_nonneg_number(obj, what, "nogil_bytes", &out->nogil_bytes, err, errlen) < 0 ||
	    get_nonneg_number(obj, what, "live_blocks", &out->live_blocks, err, errlen) < 0 ||
	    get_nonneg_number(obj, what, "elapsed", &out->elapsed, err, errlen) < 0 ||
	    get_nonneg_time(obj, what, "started", &out->started, err, errlen) < 0 ||
	    get_small(obj, what, "hooks_installed", 0, 3, &out->hooks_installed, err, errlen) < 0 ||
	    get_small(obj, what, "hooks_on_top", 0, 3, &out->hooks_on_top, err, errlen) < 0 ||
	    get_string_into(obj, what, "calls_mode", true, out->calls_mode, sizeof out->calls_mode,
			    err, errlen) < 0 ||
	    get_size(obj, what, "functions_counted", &out->functions_counted, err, errlen) < 0 ||
	    get_size(obj, what, "dropped_calls", &out->dropped_calls, err, errlen) < 0 ||
	    get_size(obj, what, "call_stacks", &out->call_stacks, err, errlen) < 0 ||
	    get_size(obj, what, "call_stack_bytes", &out->call_stack_bytes, err, errlen) < 0)
		goto fail;
	return 0;
fail:
	memset(out, 0, sizeof *out);
	return -1;
}

/* The members every sampled reply carries: "source" must be "sampled". */
static int get_sampled_source(const cJSON *obj, const char *what, char *err, size_t errlen)
{
	const char *source;
	char nb[48];

	if (msg_get_string(obj, what, "source", &source, err, errlen) < 0)
		return -1;
	if (strcmp(source, "sampled") != 0) {
		errfmt(err, errlen, "%s: \"source\" must be \"sampled\", got \"%s\"", what,
			strsafe_shown(nb, sizeof nb, source));
		return -1;
	}
	return 0;
}

/* The "profile" member (the full status) of a profile or profile_tree result. */
static int get_profile_member(const cJSON *obj, const char *what, struct msg_profile_status *out,
			      char *err, size_t errlen)
{
	const cJSON *p = member(obj, what, "profile", err, errlen);
	char inner[256];

	if (p == NULL)
		return -1;
	if (msg_decode_profile_status(p, out, inner, sizeof inner) < 0) {
		errfmt(err, errlen, "%s: %s", what, inner);
		return -1;
	}
	return 0;
}

/* calls, retained_per_call and largest_call: all null or all integers. */
static int decode_row_calls(const cJSON *r, const char *w, struct msg_profile_row *out, char *err,
			    size_t errlen)
{
	static const char *const names[3] = { "calls", "retained_per_call", "largest_call" };
	uint64_t *dst[3] = { &out->calls, &out->retained_per_call, &out->largest_call };
	int nnull = 0;
	int64_t v;
	char db[32];

	for (int i = 0; i < 3; i++) {
		const cJSON *it = member(r, w, names[i], err, errlen);

		if (it == NULL)
			return -1;
		if (cJSON_IsNull(it)) {
			nnull++;
			continue;
		}
		if (!whole_in(it, 0, (int64_t)MSG_INT_MAX, &v)) {
			errfmt(err, errlen, "%s: \"%s\" must be an integer from 0 to 2^53-1 or null, got %s",
				w, names[i], describe(it, db, sizeof db));
			return -1;
		}
		*dst[i] = (uint64_t)v;
	}
	if (nnull != 0 && nnull != 3) {
		errfmt(err, errlen, "%s: \"calls\", \"retained_per_call\" and \"largest_call\" must be "
			"all null or all integers", w);
		return -1;
	}
	out->has_calls = nnull == 0;
	if (!out->has_calls)
		out->calls = out->retained_per_call = out->largest_call = 0;
	return 0;
}

static int decode_profile_row(const cJSON *r, size_t i, struct msg_profile_row *out, char *err,
			      size_t errlen)
{
	char w[48];
	const char *file, *function;

	snprintf(w, sizeof w, "profile rows[%zu]", i);
	if (!cJSON_IsObject(r)) {
		errfmt(err, errlen, "%s must be an object, got %s", w, type_name(r));
		return -1;
	}
	if (msg_get_string(r, w, "file", &file, err, errlen) < 0 ||
	    msg_get_string(r, w, "function", &function, err, errlen) < 0 ||
	    get_small(r, w, "first_line", 0, INT32_MAX, &out->first_line, err, errlen) < 0 ||
	    get_small(r, w, "line", -1, INT32_MAX, &out->line, err, errlen) < 0 ||
	    get_size(r, w, "own_size", &out->own_size, err, errlen) < 0 ||
	    get_size(r, w, "own_count", &out->own_count, err, errlen) < 0 ||
	    get_size(r, w, "total_size", &out->total_size, err, errlen) < 0 ||
	    get_size(r, w, "total_count", &out->total_count, err, errlen) < 0 ||
	    get_size(r, w, "alloc", &out->alloc, err, errlen) < 0 ||
	    get_size(r, w, "alloc_rate", &out->alloc_rate, err, errlen) < 0 ||
	    decode_row_calls(r, w, out, err, errlen) < 0)
		return -1;
	out->native = false;
	if (cJSON_HasObjectItem(r, "native") && msg_get_bool(r, w, "native", &out->native, err, errlen) < 0)
		return -1;
	out->file = xstrdup(file);
	out->function = xstrdup(function);
	return 0;
}

int msg_decode_profile_functions(const cJSON *result, struct msg_profile_functions *out,
				 char *err, size_t errlen)
{
	static const char w[] = "profile result";
	const cJSON *rows, *r;
	const char *sort;
	int64_t n;
	char nb[48];
	int si;

	memset(out, 0, sizeof *out);
	if (!cJSON_IsObject(result)) {
		errfmt(err, errlen, "%s must be a JSON object, got %s", w, type_name(result));
		return -1;
	}
	if (get_nonneg_time(result, w, "time", &out->time, err, errlen) < 0 ||
	    msg_get_string(result, w, "sort", &sort, err, errlen) < 0)
		goto fail;
	si = msg_profile_sort_from_name(sort);
	if (si < 0) {
		errfmt(err, errlen, "%s: \"sort\" must be own, total, rate, calls, retained or largest, "
			"got \"%s\"", w, strsafe_shown(nb, sizeof nb, sort));
		goto fail;
	}
	out->sort = (enum msg_profile_sort)si;
	if (get_sampled_source(result, w, err, errlen) < 0 ||
	    msg_get_int(result, w, "interval", 1, (int64_t)1 << 30, &n, err, errlen) < 0)
		goto fail;
	out->interval = (uint64_t)n;
	if (msg_get_int(result, w, "functions", 0, MSG_INT_MAX, &n, err, errlen) < 0)
		goto fail;
	out->functions = (size_t)n;
	if (get_nonneg_number(result, w, "took_ms", &out->took_ms, err, errlen) < 0 ||
	    opt_nonneg_number(result, w, "cpu_ms", &out->cpu_ms, err, errlen) < 0 ||
	    get_profile_member(result, w, &out->profile, err, errlen) < 0)
		goto fail;
	rows = member(result, w, "rows", err, errlen);
	if (rows == NULL)
		goto fail;
	if (!cJSON_IsArray(rows)) {
		errfmt(err, errlen, "%s: \"rows\" must be an array, got %s", w, type_name(rows));
		goto fail;
	}
	out->rows = xcalloc((size_t)cJSON_GetArraySize(rows) + 1, sizeof *out->rows);
	cJSON_ArrayForEach(r, rows) {
		if (decode_profile_row(r, out->nrows, &out->rows[out->nrows], err, errlen) < 0)
			goto fail;
		out->nrows++;
	}
	if (out->nrows > out->functions) {
		errfmt(err, errlen, "%s: %zu rows but \"functions\" is %zu", w, out->nrows,
			out->functions);
		goto fail;
	}
	return 0;
fail:
	msg_profile_functions_done(out);
	return -1;
}

void msg_profile_functions_done(struct msg_profile_functions *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->nrows; i++) {
		free(f->rows[i].file);
		free(f->rows[i].function);
	}
	free(f->rows);
	memset(f, 0, sizeof *f);
}

/* One [file, function, first_line] triple of a profile_tree path. */
static int decode_path_entry(const cJSON *e, size_t i, struct msg_profile_frame *out, char *err,
			     size_t errlen)
{
	const cJSON *file = cJSON_GetArrayItem(e, 0), *fn = cJSON_GetArrayItem(e, 1);
	const cJSON *line = cJSON_GetArrayItem(e, 2);
	int64_t v;

	if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 3 || !cJSON_IsString(file) ||
	    !cJSON_IsString(fn) || !whole_in(line, 0, INT32_MAX, &v)) {
		errfmt(err, errlen, "profile_tree result: \"path\"[%zu] must be "
			"[file, function, first_line], got %s", i, type_name(e));
		return -1;
	}
	out->file = xstrdup(file->valuestring);
	out->function = xstrdup(fn->valuestring);
	out->first_line = (int)v;
	return 0;
}

static int decode_tree_row(const cJSON *r, size_t i, struct msg_profile_node *out, char *err,
			   size_t errlen)
{
	char w[48];
	const char *file, *function;

	snprintf(w, sizeof w, "profile_tree rows[%zu]", i);
	if (!cJSON_IsObject(r)) {
		errfmt(err, errlen, "%s must be an object, got %s", w, type_name(r));
		return -1;
	}
	if (msg_get_string(r, w, "file", &file, err, errlen) < 0 ||
	    msg_get_string(r, w, "function", &function, err, errlen) < 0 ||
	    get_small(r, w, "first_line", 0, INT32_MAX, &out->first_line, err, errlen) < 0 ||
	    get_size(r, w, "total_size", &out->total_size, err, errlen) < 0 ||
	    get_size(r, w, "total_count", &out->total_count, err, errlen) < 0 ||
	    msg_get_bool(r, w, "self", &out->self, err, errlen) < 0)
		return -1;
	out->file = xstrdup(file);
	out->function = xstrdup(function);
	return 0;
}

int msg_decode_profile_tree(const cJSON *result, struct msg_profile_tree *out, char *err,
			    size_t errlen)
{
	static const char w[] = "profile_tree result";
	const cJSON *path, *rows, *it;
	int64_t n;

	memset(out, 0, sizeof *out);
	if (!cJSON_IsObject(result)) {
		errfmt(err, errlen, "%s must be a JSON object, got %s", w, type_name(result));
		return -1;
	}
	if (get_nonneg_time(result, w, "time", &out->time, err, errlen) < 0)
		goto fail;
	path = member(result, w, "path", err, errlen);
	if (path == NULL)
		goto fail;
	if (!cJSON_IsArray(path)) {
		errfmt(err, errlen, "%s: \"path\" must be an array, got %s", w, type_name(path));
		goto fail;
	}
	out->path = xcalloc((size_t)cJSON_GetArraySize(path) + 1, sizeof *out->path);
	cJSON_ArrayForEach(it, path) {
		if (decode_path_entry(it, out->npath, &out->path[out->npath], err, errlen) < 0)
			goto fail;
		out->npath++;
	}
	if (get_sampled_source(result, w, err, errlen) < 0 ||
	    msg_get_int(result, w, "interval", 1, (int64_t)1 << 30, &n, err, errlen) < 0)
		goto fail;
	out->interval = (uint64_t)n;
	if (get_size(result, w, "total_size", &out->total_size, err, errlen) < 0 ||
	    get_size(result, w, "total_count", &out->total_count, err, errlen) < 0 ||
	    get_profile_member(result, w, &out->profile, err, errlen) < 0)
		goto fail;
	rows = member(result, w, "rows", err, errlen);
	if (rows == NULL)
		goto fail;
	if (!cJSON_IsArray(rows)) {
		errfmt(err, errlen, "%s: \"rows\" must be an array, got %s", w, type_name(rows));
		goto fail;
	}
	out->rows = xcalloc((size_t)cJSON_GetArraySize(rows) + 1, sizeof *out->rows);
	cJSON_ArrayForEach(it, rows) {
		if (decode_tree_row(it, out->nrows, &out->rows[out->nrows], err, errlen) < 0)
			goto fail;
		out->nrows++;
	}
	return 0;
fail:
	msg_profile_tree_done(out);
	return -1;
}

void msg_profile_tree_done(struct msg_profile_tree *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->npath; i++) {
		free(t->path[i].file);
		free(t->path[i].function);
	}
	for (size_t i = 0; i < t->nrows; i++) {
		free(t->rows[i].file);
		free(t->rows[i].function);
	}
	free(t->path);
	free(t->rows);
	memset(t, 0, sizeof *t);
}

/* ---- the heap walks: types and why ---- */

/* A display-safe copy of S, cut to fewer than MSG_HEAP_TEXT_MAX bytes (a
 * safe copy is never longer than what it copies). */
static char *heap_text(const char *s)
{
	size_t n = strlen(s), cap = n < MSG_HEAP_TEXT_MAX ? n + 1 : MSG_HEAP_TEXT_MAX;
	char *out = xmalloc(cap);

	strsafe_copy(out, cap, s, n);
	return out;
}

/* The string member NAME as heap_text(); null gives NULL when ALLOW_NULL. */
static int get_heap_text(const cJSON *obj, const char *what, const char *name, bool allow_null,
			 char **out, char *err, size_t errlen)
{
	const cJSON *it = member(obj, what, name, err, errlen);

	*out = NULL;
	if (it == NULL)
		return -1;
	if (allow_null && cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsString(it)) {
		errfmt(err, errlen, "%s: \"%s\" must be a string%s, got %s", what, name,
			allow_null ? " or null" : "", type_name(it));
		return -1;
	}
	*out = heap_text(it->valuestring);
	return 0;
}

/* The member NAME: an integer 0..MSG_INT_MAX, or null (*present false). */
static int get_size_or_null(const cJSON *obj, const char *what, const char *name, bool *present,
			    uint64_t *out, char *err, size_t errlen)
{
	const cJSON *it = member(obj, what, name, err, errlen);
	int64_t v;
	char db[32];

	*present = false;
	*out = 0;
	if (it == NULL)
		return -1;
	if (cJSON_IsNull(it))
		return 0;
	if (!whole_in(it, 0, (int64_t)MSG_INT_MAX, &v)) {
		errfmt(err, errlen, "%s: \"%s\" must be an integer from 0 to 2^53-1 or null, got %s",
			what, name, describe(it, db, sizeof db));
		return -1;
	}
	*out = (uint64_t)v;
	*present = true;
	return 0;
}

/* The member NAME as an array of at most MAX elements; *n gets its size. */
static const cJSON *get_array(const cJSON *obj, const char *what, const char *name, size_t max,
			      size_t *n, char *err, size_t errlen)
{
	const cJSON *arr = member(obj, what, name, err, errlen);

	*n = 0;
	if (arr == NULL)
		return NULL;
	if (!cJSON_IsArray(arr)) {
		errfmt(err, errlen, "%s: \"%s\" must be an array, got %s", what, name, type_name(arr));
		return NULL;
	}
	*n = (size_t)cJSON_GetArraySize(arr);
	if (*n > max) {
		errfmt(err, errlen, "%s: \"%s\" has %zu entries, more than the %zu a reply may hold",
			what, name, *n, max);
		return NULL;
	}
	return arr;
}

/* pause_max, seconds and slices: what a heap walk cost the target. */
static int get_walk(const cJSON *obj, const char *what, double *pause_max, double *seconds,
		    uint64_t *slices, char *err, size_t errlen)
{
	return get_nonneg_number(obj, what, "pause_max", pause_max, err, errlen) < 0 ||
	       get_nonneg_number(obj, what, "seconds", seconds, err, errlen) < 0 ||
	       get_size(obj, what, "slices", slices, err, errlen) < 0 ? -1 : 0;
}

static int decode_type_row(const cJSON *r, size_t i, struct msg_type_row *out, char *err,
			   size_t errlen)
{
	char w[48];

	snprintf(w, sizeof w, "types rows[%zu]", i);
	if (!cJSON_IsObject(r)) {
		errfmt(err, errlen, "%s must be an object, got %s", w, type_name(r));
		return -1;
	}
	if (get_size(r, w, "count", &out->count, err, errlen) < 0 ||
	    get_size(r, w, "size", &out->size, err, errlen) < 0 ||
	    get_heap_text(r, w, "type", false, &out->type, err, errlen) < 0)
		return -1;
	return 0;
}

int msg_decode_types(const cJSON *result, struct msg_types *out, char *err, size_t errlen)
{
	static const char w[] = "types result";
	const cJSON *rows, *r;
	size_t n;

	memset(out, 0, sizeof *out);
	if (!cJSON_IsObject(result)) {
		errfmt(err, errlen, "%s must be a JSON object, got %s", w, type_name(result));
		return -1;
	}
	if (get_size(result, w, "tracked", &out->tracked, err, errlen) < 0 ||
	    get_size(result, w, "tracked_bytes", &out->tracked_bytes, err, errlen) < 0 ||
	    get_size(result, w, "allocated_blocks", &out->allocated_blocks, err, errlen) < 0 ||
	    get_size_or_null(result, w, "traced", &out->has_traced, &out->traced, err, errlen) < 0 ||
	    msg_get_bool(result, w, "complete", &out->complete, err, errlen) < 0 ||
	    get_walk(result, w, &out->pause_max, &out->seconds, &out->slices, err, errlen) < 0)
		goto fail;
	rows = get_array(result, w, "rows", MSG_TYPES_ROWS_MAX, &n, err, errlen);
	if (rows == NULL)
		goto fail;
	out->rows = xcalloc(n + 1, sizeof *out->rows);
	cJSON_ArrayForEach(r, rows) {
		size_t i = out->nrows++; /* counted first: msg_types_done frees a half-made row */

		if (decode_type_row(r, i, &out->rows[i], err, errlen) < 0)
			goto fail;
	}
	return 0;
fail:
	msg_types_done(out);
	return -1;
}

void msg_types_done(struct msg_types *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows; i++)
		free(t->rows[i].type);
	free(t->rows);
	memset(t, 0, sizeof *t);
}

static const char *const why_root_names[] = { NULL, "module", "class", "local" };

const char *msg_why_root_name(enum msg_why_root_kind kind)
{
	if ((int)kind < 0 || (size_t)kind >= sizeof why_root_names / sizeof why_root_names[0])
		return NULL;
	return why_root_names[kind];
}

/* The member "root" of PARENT: null (when ALLOW_NULL) or a root object. What
 * it holds is freed by why_root_done(), also after a failure. */
static int decode_why_root(const cJSON *parent, const char *what, bool allow_null,
			   struct msg_why_root *out, char *err, size_t errlen)
{
	const cJSON *r = member(parent, what, "root", err, errlen);
	const char *kind;
	char w[96], nb[48];

	out->kind = MSG_WHY_ROOT_NONE;
	if (r == NULL)
		return -1;
	if (allow_null && cJSON_IsNull(r))
		return 0;
	snprintf(w, sizeof w, "%s: root", what);
	if (!cJSON_IsObject(r)) {
		errfmt(err, errlen, "%s must be an object%s, got %s", w, allow_null ? " or null" : "",
			type_name(r));
		return -1;
	}
	if (msg_get_string(r, w, "root", &kind, err, errlen) < 0)
		return -1;
	if (strcmp(kind, "module") == 0) {
		out->kind = MSG_WHY_ROOT_MODULE;
	} else if (strcmp(kind, "class") == 0) {
		out->kind = MSG_WHY_ROOT_CLASS;
	} else if (strcmp(kind, "local") == 0) {
		out->kind = MSG_WHY_ROOT_LOCAL;
		if (get_heap_text(r, w, "thread", false, &out->thread, err, errlen) < 0 ||
		    get_heap_text(r, w, "function", false, &out->function, err, errlen) < 0)
			return -1;
	} else {
		errfmt(err, errlen, "%s: \"root\" must be module, class or local, got \"%s\"", w,
			strsafe_shown(nb, sizeof nb, kind));
		return -1;
	}
	return get_heap_text(r, w, "name", false, &out->name, err, errlen);
}

static void why_root_done(struct msg_why_root *r)
{
	free(r->name);
	free(r->thread);
	free(r->function);
}

/* One step of a chain, or a holder. What it holds is freed by
 * why_step_done(), also after a failure. */
static int decode_why_step(const cJSON *s, const char *what, struct msg_why_step *out, char *err,
			   size_t errlen)
{
	if (!cJSON_IsObject(s)) {
		errfmt(err, errlen, "%s must be an object, got %s", what, type_name(s));
		return -1;
	}
	if (get_size(s, what, "size", &out->size, err, errlen) < 0)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(s, "len") != NULL &&
	    get_size_or_null(s, what, "len", &out->has_len, &out->len, err, errlen) < 0)
		return -1;
	if (get_heap_text(s, what, "via", true, &out->via, err, errlen) < 0 ||
	    get_heap_text(s, what, "type", false, &out->type, err, errlen) < 0)
		return -1;
	return 0;
}

static void why_step_done(struct msg_why_step *s)
{
	free(s->via);
	free(s->type);
}

static int decode_why_chain(const cJSON *c, size_t i, struct msg_why_chain *out, char *err,
			    size_t errlen)
{
	char w[48], sw[80];
	const cJSON *steps, *s;
	size_t n;

	snprintf(w, sizeof w, "why chains[%zu]", i);
	if (!cJSON_IsObject(c)) {
		errfmt(err, errlen, "%s must be an object, got %s", w, type_name(c));
		return -1;
	}
	if (decode_why_root(c, w, true, &out->root, err, errlen) < 0)
		return -1;
	/* Only a search that found no root says how it ended. */
	if (out->root.kind == MSG_WHY_ROOT_NONE &&
	    get_heap_text(c, w, "end", false, &out->end, err, errlen) < 0)
		return -1;
	steps = get_array(c, w, "steps", MSG_WHY_STEPS_MAX, &n, err, errlen);
	if (steps == NULL)
		return -1;
	if (n == 0) {
		errfmt(err, errlen, "%s: \"steps\" is empty (a chain ends at its sample)", w);
		return -1;
	}
	out->steps = xcalloc(n, sizeof *out->steps);
	cJSON_ArrayForEach(s, steps) {
		size_t k = out->nsteps++;

		snprintf(sw, sizeof sw, "%s.steps[%zu]", w, k);
		if (decode_why_step(s, sw, &out->steps[k], err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int decode_why_retained(const cJSON *h, const char *what, struct msg_why_holder *out,
			       char *err, size_t errlen)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(h, "retained");
	struct msg_why_retained *t = &out->retained;
	char w[80];

	/* Absent when the budget ran out before it was measured. */
	if (r == NULL || cJSON_IsNull(r))
		return 0;
	snprintf(w, sizeof w, "%s.retained", what);
	if (!cJSON_IsObject(r)) {
		errfmt(err, errlen, "%s must be an object or null, got %s", w, type_name(r));
		return -1;
	}
	if (get_size(r, w, "bytes", &t->bytes, err, errlen) < 0 ||
	    get_size(r, w, "objects", &t->objects, err, errlen) < 0 ||
	    msg_get_bool(r, w, "truncated", &t->truncated, err, errlen) < 0 ||
	    msg_get_bool(r, w, "estimate", &t->estimate, err, errlen) < 0)
		return -1;
	out->has_retained = true;
	return 0;
}

static int decode_why_holder(const cJSON *h, size_t i, struct msg_why_holder *out, char *err,
			     size_t errlen)
{
	char w[48], hw[64];
	int64_t v;

	snprintf(w, sizeof w, "why holders[%zu]", i);
	snprintf(hw, sizeof hw, "%s.holder", w);
	if (!cJSON_IsObject(h)) {
		errfmt(err, errlen, "%s must be an object, got %s", w, type_name(h));
		return -1;
	}
	if (decode_why_root(h, w, false, &out->root, err, errlen) < 0 ||
	    msg_get_int(h, w, "samples", 1, MSG_WHY_CHAINS_MAX, &v, err, errlen) < 0)
		return -1;
	out->samples = (uint64_t)v;
	if (member(h, w, "holder", err, errlen) == NULL ||
	    decode_why_step(cJSON_GetObjectItemCaseSensitive(h, "holder"), hw, &out->holder, err,
			    errlen) < 0)
		return -1;
	return decode_why_retained(h, w, out, err, errlen);
}

int msg_decode_why(const cJSON *result, struct msg_why *out, char *err, size_t errlen)
{
	static const char w[] = "why result";
	const cJSON *chains, *holders, *it;
	size_t n, rooted = 0;
	uint64_t held = 0;

	memset(out, 0, sizeof *out);
	if (!cJSON_IsObject(result)) {
		errfmt(err, errlen, "%s must be a JSON object, got %s", w, type_name(result));
		return -1;
	}
	if (get_size(result, w, "matched", &out->matched, err, errlen) < 0 ||
	    get_walk(result, w, &out->pause_max, &out->seconds, &out->slices, err, errlen) < 0)
		goto fail;
	chains = get_array(result, w, "chains", MSG_WHY_CHAINS_MAX, &n, err, errlen);
	if (chains == NULL)
		goto fail;
	out->chains = xcalloc(n + 1, sizeof *out->chains);
	cJSON_ArrayForEach(it, chains) {
		size_t i = out->nchains++; /* counted first: msg_why_done frees a half-made one */

		if (decode_why_chain(it, i, &out->chains[i], err, errlen) < 0)
			goto fail;
		rooted += out->chains[i].root.kind != MSG_WHY_ROOT_NONE;
	}
	if (out->nchains > out->matched) {
		errfmt(err, errlen, "%s: %zu chains but \"matched\" is %" PRIu64, w, out->nchains,
			out->matched);
		goto fail;
	}
	holders = get_array(result, w, "holders", MSG_WHY_HOLDERS_MAX, &n, err, errlen);
	if (holders == NULL)
		goto fail;
	out->holders = xcalloc(n + 1, sizeof *out->holders);
	cJSON_ArrayForEach(it, holders) {
		size_t i = out->nholders++;

		if (decode_why_holder(it, i, &out->holders[i], err, errlen) < 0)
			goto fail;
		held += out->holders[i].samples;
	}
	if (held > rooted) {
		errfmt(err, errlen, "%s: the holders count %" PRIu64 " samples but %zu chains have a root",
			w, held, rooted);
		goto fail;
	}
	return 0;
fail:
	msg_why_done(out);
	return -1;
}

void msg_why_done(struct msg_why *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->nchains; i++) {
		struct msg_why_chain *c = &w->chains[i];

		why_root_done(&c->root);
		free(c->end);
		for (size_t k = 0; k < c->nsteps; k++)
			why_step_done(&c->steps[k]);
		free(c->steps);
	}
	for (size_t i = 0; i < w->nholders; i++) {
		why_root_done(&w->holders[i].root);
		why_step_done(&w->holders[i].holder);
	}
	free(w->chains);
	free(w->holders);
	memset(w, 0, sizeof *w);
}
