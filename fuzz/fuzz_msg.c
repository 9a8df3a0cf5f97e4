/*
 * fuzz_msg.c - libFuzzer harness for the message decoders (src/ipc/msg.c).
 *
 * An input is one frame as the agent would send it, without its newline. It
 * goes through msg_decode() (the strict envelope check), and is parsed again
 * with cJSON so that every result decoder meets it, whatever the envelope:
 * the hello, status, functions, profile status, profile, profile_tree, types
 * and why decoders, and snapshot_from_json() for top and snapshot results. Each
 * decoder runs on the whole object and on its "result", "data" and
 * "profile" members. What a decoder accepts is read back field by field (so
 * that AddressSanitizer sees every pointer) and freed; what it refuses must
 * come with a one-line error that is safe to print.
 */
#include "ipc/msg.h"
#include "ipc/proto.h"
#include "snapshot/snapshot.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#define H "fuzz_msg"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void touch(const char *s)
{
	if (s != NULL)
		sink += strlen(s);
}

static void result_failed(int rc, const char *err)
{
	if (rc < 0)
		fuzz_check_error(H, err);
}

static void try_hello(const cJSON *obj)
{
	struct msg_hello h;
	char err[512];
	int rc = msg_decode_hello(obj, &h, err, sizeof err);

	result_failed(rc, err);
	if (rc == 0) {
		touch(h.agent);
		touch(h.python);
		touch(h.implementation);
		touch(h.executable);
		touch(h.argv);
		for (size_t i = 0; i < h.ncapabilities; i++)
			touch(h.capabilities[i]);
		sink += msg_hello_has_capability(&h, "profile");
	}
	msg_hello_done(&h);
}

static void try_status(const cJSON *obj)
{
	struct msg_status s;
	struct msg_profile_status p;
	char err[512];

	struct msg_trim t;

	result_failed(msg_decode_status(obj, &s, err, sizeof err), err);
	if (s.gc_counts.n > MSG_GC_MAX || s.gc_objects.n > MSG_GC_MAX)
		fuzz_broken(H, "a gc array longer than its storage", NULL);
	if (memchr(s.memory.malloc_why, '\0', sizeof s.memory.malloc_why) == NULL ||
	    memchr(s.memory.pymalloc_why, '\0', sizeof s.memory.pymalloc_why) == NULL)
		fuzz_broken(H, "a memory reason without its NUL", NULL);
	result_failed(msg_decode_trim(obj, &t, err, sizeof err), err);
	result_failed(msg_decode_profile_status(obj, &p, err, sizeof err), err);
	if (memchr(p.error, '\0', sizeof p.error) == NULL ||
	    memchr(p.calls_mode, '\0', sizeof p.calls_mode) == NULL)
		fuzz_broken(H, "a profile status string without its NUL", NULL);
}

static void try_functions(const cJSON *obj)
{
	struct msg_functions f;
	char err[512];
	int rc = msg_decode_functions(obj, &f, err, sizeof err);

	result_failed(rc, err);
	touch(f.mode);
	touch(f.accounting);
	touch(f.error);
	for (size_t i = 0; i < f.nrows; i++) {
		touch(f.rows[i].name);
		touch(f.rows[i].file);
		for (size_t k = 0; k < f.rows[i].nthreads; k++)
			touch(f.rows[i].threads[k].name);
	}
	msg_functions_done(&f);
}

static void try_profile(const cJSON *obj)
{
	struct msg_profile_functions pf;
	struct msg_profile_tree t;
	char err[512];
	int rc;

	rc = msg_decode_profile_functions(obj, &pf, err, sizeof err);
	result_failed(rc, err);
	for (size_t i = 0; i < pf.nrows; i++) {
		touch(pf.rows[i].file);
		touch(pf.rows[i].function);
	}
	if (rc == 0)
		touch(msg_profile_sort_name(pf.sort));
	msg_profile_functions_done(&pf);

	rc = msg_decode_profile_tree(obj, &t, err, sizeof err);
	result_failed(rc, err);
	for (size_t i = 0; i < t.npath; i++) {
		touch(t.path[i].file);
		touch(t.path[i].function);
	}
	for (size_t i = 0; i < t.nrows; i++) {
		touch(t.rows[i].file);
		touch(t.rows[i].function);
	}
	msg_profile_tree_done(&t);
}

/* A string a heap decoder kept: its own copy, display-safe, within the cap. */
static void touch_heap_text(const char *s)
{
	size_t n, i = 0;

	if (s == NULL)
		return;
	n = strlen(s);
	if (n >= MSG_HEAP_TEXT_MAX)
		fuzz_broken(H, "a heap walk's string over its cap", NULL);
	while (i < n) {
		size_t len;

		if (!strsafe_cp_ok(strsafe_decode(s + i, n - i, &len)))
			fuzz_broken(H, "a heap walk's string that is not display-safe", NULL);
		i += len;
	}
	sink += n;
}

static void touch_root(const struct msg_why_root *r)
{
	touch_heap_text(r->name);
	touch_heap_text(r->thread);
	touch_heap_text(r->function);
	if (r->kind != MSG_WHY_ROOT_NONE && (r->name == NULL || msg_why_root_name(r->kind) == NULL))
		fuzz_broken(H, "a root without its name", NULL);
}

static void touch_step(const struct msg_why_step *s)
{
	touch_heap_text(s->via);
	touch_heap_text(s->type);
	if (s->type == NULL)
		fuzz_broken(H, "a step without its type", NULL);
}

static void try_heap(const cJSON *obj)
{
	struct msg_types t;
	struct msg_why w;
	char err[512];

	result_failed(msg_decode_types(obj, &t, err, sizeof err), err);
	if (t.nrows > MSG_TYPES_ROWS_MAX)
		fuzz_broken(H, "more type rows than the cap", NULL);
	for (size_t i = 0; i < t.nrows; i++)
		touch_heap_text(t.rows[i].type);
	msg_types_done(&t);

	result_failed(msg_decode_why(obj, &w, err, sizeof err), err);
	if (w.nchains > MSG_WHY_CHAINS_MAX || w.nholders > MSG_WHY_HOLDERS_MAX)
		fuzz_broken(H, "more chains or holders than the caps", NULL);
	for (size_t i = 0; i < w.nchains; i++) {
		const struct msg_why_chain *c = &w.chains[i];

		touch_root(&c->root);
		touch_heap_text(c->end);
		if (c->nsteps == 0 || c->nsteps > MSG_WHY_STEPS_MAX)
			fuzz_broken(H, "a chain with no steps or too many", NULL);
		for (size_t k = 0; k < c->nsteps; k++)
			touch_step(&c->steps[k]);
	}
	for (size_t i = 0; i < w.nholders; i++) {
		touch_root(&w.holders[i].root);
		touch_step(&w.holders[i].holder);
	}
	msg_why_done(&w);
}

static void try_snapshot(const cJSON *obj)
{
	char err[512];
	struct snapshot *s = snapshot_from_json(obj, err, sizeof err);
	char *text;
	size_t len;

	if (s == NULL) {
		fuzz_check_error(H, err);
		return;
	}
	text = snapshot_serialize(s, SIZE_MAX, &len);
	if (strlen(text) != len)
		fuzz_broken(H, "a serialized snapshot with a NUL inside", NULL);
	free(text);
	snapshot_free(s);
}

/* Every decoder on obj. */
static void try_all(const cJSON *obj)
{
	try_hello(obj);
	try_status(obj);
	try_functions(obj);
	try_profile(obj);
	try_heap(obj);
	try_snapshot(obj);
}

static void try_members(const cJSON *root)
{
	static const char *const names[] = { "result", "data", "profile" };

	try_all(root);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, names[i]);

		if (m != NULL)
			try_all(m);
	}
}

/* The envelope, as the client reads every frame. */
static void try_envelope(const char *line, size_t len)
{
	struct msg m;
	char err[512];
	cJSON *taken;

	if (msg_decode(line, len, &m, err, sizeof err) < 0) {
		fuzz_check_error(H, err);
		if (m.root != NULL)
			fuzz_broken(H, "a refused frame left a tree behind", NULL);
		return;
	}
	switch (m.kind) {
	case MSG_REPLY_OK:
		if (!cJSON_IsObject(m.result) || !m.has_id || m.id > MSG_ID_MAX)
			fuzz_broken(H, "an accepted reply breaks the envelope's contract", NULL);
		break;
	case MSG_REPLY_ERROR:
		touch(m.error_code_name);
		touch(m.error_message);
		if (m.error_code >= 0)
			touch(proto_err_name((enum proto_err)m.error_code));
		break;
	case MSG_PUSH:
		if (!cJSON_IsObject(m.data) || proto_push_name(m.push) == NULL)
			fuzz_broken(H, "an accepted push breaks the envelope's contract", NULL);
		break;
	}
	taken = msg_take_result(&m);
	if (taken != NULL && msg_take_result(&m) != NULL)
		fuzz_broken(H, "a result taken twice", NULL);
	cJSON_Delete(taken);
	msg_done(&m);
}

/* The request encoder with the parsed value as arguments. */
static void try_encode(const cJSON *root, size_t size)
{
	char err[512], *line;
	size_t len = 0;
	enum proto_cmd cmd = (enum proto_cmd)(size % PROTO_CMD_COUNT);

	line = msg_encode_request(size, cmd, root, &len, err, sizeof err);
	if (line == NULL) {
		fuzz_check_error(H, err);
		return;
	}
	if (len == 0 || strlen(line) != len || line[len - 1] != '\n' ||
	    memchr(line, '\n', len - 1) != NULL)
		fuzz_broken(H, "an encoded request is not one line", line);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = fuzz_copy(data, size, 0);
	cJSON *root;

	try_envelope(line, size);
	root = cJSON_ParseWithLength(line, size);
	if (root != NULL) {
		try_members(root);
		try_encode(root, size);
		cJSON_Delete(root);
	}
	free(line);
	return 0;
}
