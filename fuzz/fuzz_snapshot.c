/*
 * fuzz_snapshot.c - libFuzzer harness for the snapshot loader
 * (src/snapshot/snapshot_read.c) and everything that shows a loaded file.
 *
 * A saved snapshot may come from anywhere, and an agent's top or snapshot
 * reply is read by the same code. An input is the text of a file: it is
 * loaded with snapshot_load() from a memfd (a regular file without a disk),
 * and parsed by both halves of snapshot_parse(), which must agree whenever
 * the fast reader does not give up: the same snapshot or the same error.
 * What loads must save and load back to the same bytes, through a cJSON
 * tree too, and then goes through everything a user can do with it:
 * regrouping, the table and JSON printers, and diffs against itself and
 * against a changed copy of itself (groups gone, new and changed), in every
 * order. The JSON printers' output must be JSON, and the tables must hold
 * nothing that a terminal would take as a control.
 *
 * Whole snapshot replies are read from their text: snapshot_parse_consume()
 * must give what snapshot_parse() gives, and when an input is a reply frame
 * that msg_peek_result() takes, its result text must read as the cJSON
 * tree of that frame reads (unless the text is not UTF-8, which only the
 * text path refuses), every error in one line.
 */
#include "snapshot/snapdiff.h"
#include "snapshot/snapshot.h"
#include "ipc/msg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_check.h"

#define H "fuzz_snapshot"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char memfd_path[64];

/* The text a snapshot saves as (the canonical form), malloc'd. */
static char *saved(const struct snapshot *s, size_t *len)
{
	char *text = snapshot_serialize(s, SIZE_MAX, len);

	if (strlen(text) != *len)
		fuzz_broken(H, "a saved snapshot with a NUL inside", NULL);
	return text;
}

/* a and b (either may be NULL) are the same outcome: same error, or same snapshot. */
static void same_outcome(const struct snapshot *a, const char *ea, const struct snapshot *b,
			 const char *eb, const char *what)
{
	char *ta, *tb;
	size_t la, lb;

	if ((a == NULL) != (b == NULL)) {
		fprintf(stderr, "%s: %s\n", H, a ? eb : ea);
		fuzz_broken(H, what, "one loaded, the other did not");
	}
	if (a == NULL) {
		if (strcmp(ea, eb) != 0) {
			fprintf(stderr, "%s: \"%s\" vs \"%s\"\n", H, ea, eb);
			fuzz_broken(H, what, "different errors");
		}
		return;
	}
	ta = saved(a, &la);
	tb = saved(b, &lb);
	if (la != lb || memcmp(ta, tb, la) != 0)
		fuzz_broken(H, what, "different snapshots");
	free(ta);
	free(tb);
}

/* Output of a printer, captured. */
struct out {
	FILE *fp;
	char *buf;
	size_t len;
};

static void out_open(struct out *o)
{
	o->buf = NULL;
	o->len = 0;
	o->fp = open_memstream(&o->buf, &o->len);
	if (o->fp == NULL)
		abort();
}

static void out_close(struct out *o)
{
	if (fclose(o->fp) != 0)
		abort();
}

/* A table for the terminal: valid UTF-8, no control but the newline. */
static void check_table(struct out *o, const char *what)
{
	size_t i = 0;

	out_close(o);
	while (i < o->len) {
		size_t len;
		uint32_t cp = strsafe_decode(o->buf + i, o->len - i, &len);

		if (cp == STRSAFE_INVALID || (cp < 0x20 && cp != '\n') || cp == 0x7f ||
		    (cp >= 0x80 && cp <= 0x9f))
			fuzz_broken(H, what, "a control or invalid UTF-8 in a table");
		i += len;
	}
	free(o->buf);
}

/* JSON printer output: parses with cJSON. */
static void check_json(struct out *o, const char *what)
{
	cJSON *j;

	out_close(o);
	j = cJSON_ParseWithLength(o->buf, o->len);
	if (j == NULL)
		fuzz_broken(H, what, "the JSON printer wrote something that is not JSON");
	cJSON_Delete(j);
	free(o->buf);
}

static void round_trip(const struct snapshot *s)
{
	char err[512], *text, *again;
	struct snapshot *back;
	size_t len, len2;
	cJSON *j;

	text = saved(s, &len);
	back = snapshot_parse(text, len, "saved", err, sizeof err);
	if (back == NULL)
		fuzz_broken(H, "a saved snapshot does not load back", err);
	again = saved(back, &len2);
	if (len != len2 || memcmp(text, again, len) != 0)
		fuzz_broken(H, "a saved snapshot loads back different", NULL);
	snapshot_free(back);
	free(again);

	/* The tree, not cJSON's text of it: cJSON prints integers above 2^50
	 * with 15 digits when that is within its tolerance, so 2^53 - 1 comes
	 * back as 2^53 - 2. */
	j = snapshot_to_json(s);
	back = snapshot_from_json(j, err, sizeof err);
	if (back == NULL)
		fuzz_broken(H, "snapshot_to_json() gives a tree that does not load", err);
	again = saved(back, &len2);
	if (len != len2 || memcmp(text, again, len) != 0)
		fuzz_broken(H, "a snapshot through a cJSON tree loads back different", NULL);
	snapshot_free(back);
	free(again);
	cJSON_Delete(j);
	free(text);
}

static void print_snapshot(const struct snapshot *s)
{
	struct out o;
	char src[64];

	out_open(&o);
	if (snapshot_print(o.fp, s, 0, false) < 0)
		abort();
	check_table(&o, "snapshot table");
	out_open(&o);
	if (snapshot_print(o.fp, s, 3, true) < 0)
		abort();
	check_json(&o, "snapshot JSON");
	snapshot_source_text(src, sizeof src, s->source, s->interval);
}

static void print_diff(const struct snapshot *a, const struct snapshot *b)
{
	struct snapdiff *d;
	struct out o;
	char err[512], warn[256];

	d = snapdiff_new(a, b, err, sizeof err);
	if (d == NULL) {
		fuzz_check_error(H, err);
		return;
	}
	if (d->nnew + d->ngone + d->nchanged + d->nsame != d->n)
		fuzz_broken(H, "diff counts do not add up", NULL);
	if (a == b && d->nsame != d->n)
		fuzz_broken(H, "a snapshot differs from itself", NULL);
	snapdiff_source_warning(d, warn, sizeof warn);
	for (int k = 0; k < SNAPDIFF_ORDER_COUNT_; k++) {
		snapdiff_sort(d, (enum snapdiff_order)k);
		out_open(&o);
		if (snapdiff_print(o.fp, d, k == 0 ? 0 : 5, false) < 0)
			abort();
		check_table(&o, "diff table");
	}
	out_open(&o);
	if (snapdiff_print(o.fp, d, 0, true) < 0)
		abort();
	check_json(&o, "diff JSON");
	snapdiff_free(d);
}

/* s with every other group left out and the rest changed: a diff with
 * every status. */
static struct snapshot *changed_copy(const struct snapshot *s)
{
	struct snapshot *t = snapshot_new(s->key, s->cumulative, s->nframe);

	t->time = s->time;
	t->pid = s->pid;
	t->total_size = s->total_size / 2;
	t->total_count = s->total_count;
	t->source = s->source;
	t->interval = s->interval;
	for (size_t i = 0; i < s->ngroups; i++) {
		const struct snapshot_group *g = &s->groups[i];

		if (i % 2 == 0)
			snapshot_add_group(t, g->size / 2 + (i % 3), g->count, g->frames, g->nframes,
					   g->line);
	}
	return t;
}

static void exercise(const struct snapshot *s)
{
	char err[512];
	struct snapshot *t;

	round_trip(s);
	print_snapshot(s);
	print_diff(s, s);
	t = changed_copy(s);
	print_diff(s, t);
	print_diff(t, s);
	snapshot_free(t);
	for (int k = 0; k < PROTO_KEY_COUNT; k++) {
		struct snapshot *r = snapshot_regroup(s, (enum proto_key)k, err, sizeof err);

		if (r == NULL) {
			fuzz_check_error(H, err);
			continue;
		}
		if (r->key != (enum proto_key)k)
			fuzz_broken(H, "a regrouped snapshot has another key", NULL);
		round_trip(r);
		print_snapshot(r);
		t = changed_copy(r);
		print_diff(t, r);
		snapshot_free(t);
		snapshot_free(r);
	}
}

/* The text path of replies (see the top of this file). */
static void consume_checks(const char *buf, size_t size, const struct snapshot *fast, const char *ef,
			   const struct snapshot *slow, const char *ec, bool gave_up)
{
	char eo[512] = "", er[512] = "";
	struct snapshot *consumed, *want;
	size_t off, rlen;
	uint64_t id;
	struct msg m;
	char *text;
	bool gone;

	text = fuzz_copy(buf, size, 0);
	consumed = snapshot_parse_consume(text, size, "f", eo, sizeof eo, &gone);
	free(text);
	if (consumed == NULL)
		fuzz_check_error(H, eo);
	if (gone)
		fuzz_broken(H, "snapshot_parse_consume() gave pages back of a small text", NULL);
	same_outcome(consumed, eo, gave_up ? slow : fast, gave_up ? ec : ef,
		     "snapshot_parse_consume() and snapshot_parse() disagree");
	snapshot_free(consumed);

	if (!msg_peek_result(buf, size, &id, &off, &rlen))
		return;
	if (off + rlen > size || rlen < 2 || buf[off] != '{' || buf[off + rlen - 1] != '}')
		fuzz_broken(H, "msg_peek_result() gave a result outside the frame", NULL);
	text = fuzz_copy(buf + off, rlen, 0);
	consumed = snapshot_parse_consume(text, rlen, "reply", eo, sizeof eo, &gone);
	free(text);
	if (consumed == NULL)
		fuzz_check_error(H, eo);
	if (msg_decode(buf, size, &m, er, sizeof er) == 0) {
		if (m.kind != MSG_REPLY_OK || m.id != id)
			fuzz_broken(H, "msg_peek_result() and msg_decode() see different replies", NULL);
		want = snapshot_from_json(m.result, er, sizeof er);
		if (want != NULL && consumed == NULL && strstr(eo, "UTF-8") == NULL && strstr(eo, "NUL byte") == NULL) {
			fprintf(stderr, "%s: %s\n", H, eo);
			fuzz_broken(H, "a reply cJSON reads is refused as text", NULL);
		}
		if (want == NULL && consumed != NULL)
			fuzz_broken(H, "a reply cJSON refuses is read as text", er);
		if (want != NULL && consumed != NULL)
			same_outcome(consumed, "", want, "", "a reply reads differently as text and as cJSON");
		snapshot_free(want);
		msg_done(&m);
	}
	snapshot_free(consumed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_copy(data, size, 0);
	char el[512] = "", ep[512] = "", ef[512] = "", ec[512] = "";
	struct snapshot *loaded, *parsed, *fast, *slow;
	bool gave_up;

	if (memfd < 0) {
		memfd = memfd_create("fuzz_snapshot", MFD_CLOEXEC);
		if (memfd < 0)
			abort();
		snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
	}
	if (ftruncate(memfd, 0) < 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
		abort();
	loaded = snapshot_load(memfd_path, el, sizeof el);
	if (loaded == NULL)
		fuzz_check_error(H, el);
	parsed = snapshot_parse(buf, size, memfd_path, ep, sizeof ep);
	same_outcome(loaded, el, parsed, ep, "snapshot_load() and snapshot_parse() disagree");

	fast = snapshot_parse_fast(buf, size, "f", ef, sizeof ef, &gave_up);
	slow = snapshot_parse_cjson(buf, size, "f", ec, sizeof ec);
	if (slow == NULL)
		fuzz_check_error(H, ec);
	if (!gave_up)
		same_outcome(fast, ef, slow, ec, "the fast reader and cJSON disagree");
	else if (fast != NULL)
		fuzz_broken(H, "the fast reader gave up and still returned a snapshot", NULL);

	consume_checks(buf, size, fast, ef, slow, ec, gave_up);
	if (loaded != NULL)
		exercise(loaded);
	snapshot_free(loaded);
	snapshot_free(parsed);
	snapshot_free(fast);
	snapshot_free(slow);
	free(buf);
	return 0;
}
