/*
 * snapdiff_check.c - end-to-end check of pmt-top's snapshot diff against
 * tracemalloc's Snapshot.compare_to().
 *
 * Usage: snapdiff_check OLD NEW EXPECTED [KEY]
 * Loads OLD and NEW (as pmt-top diff does), regroups both to KEY if given,
 * saves and reloads them (next to EXPECTED, removed afterwards), diffs, and
 * compares the top entries and the number of entries with EXPECTED, written
 * by make_snapshots.py. Prints the diff table; exits 1 on any difference.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/snapdiff.h"
#include "snapshot/snapshot.h"
#include "base/xalloc.h"

static int failures;

static void check(bool ok, size_t i, const char *what, double want, double got)
{
	if (!ok) {
		fprintf(stderr, "entry %zu: %s is %.0f, tracemalloc says %.0f\n", i, what, got, want);
		failures++;
	}
}

static struct snapshot *load_regroup_resave(const char *path, const char *key, const char *tmp,
					    char *err, size_t errlen)
{
	struct snapshot *s = snapshot_load(path, err, errlen), *r;
	enum proto_key k;

	if (s == NULL)
		return NULL;
	if (key != NULL) {
		if (snapshot_key_from_name(key, &k) < 0) {
			snprintf(err, errlen, "unknown key %s", key);
			snapshot_free(s);
			return NULL;
		}
		r = snapshot_regroup(s, k, err, errlen);
		snapshot_free(s);
		if (r == NULL)
			return NULL;
		s = r;
	}
	if (snapshot_save(s, tmp, err, errlen) < 0) {
		snapshot_free(s);
		return NULL;
	}
	snapshot_free(s);
	s = snapshot_load(tmp, err, errlen);
	unlink(tmp);
	return s;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
		perror(path);
		exit(2);
	}
	rewind(f);
	buf = xmalloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		perror(path);
		exit(2);
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	char err[512];
	char *tmp1, *tmp2, *text;
	struct snapshot *a, *b;
	struct snapdiff *d;
	cJSON *exp, *top, *e;
	size_t i = 0;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: snapdiff_check OLD NEW EXPECTED [KEY]\n");
		return 2;
	}
	tmp1 = xasprintf("%s.old.resaved", argv[3]);
	tmp2 = xasprintf("%s.new.resaved", argv[3]);
	a = load_regroup_resave(argv[1], argc > 4 ? argv[4] : NULL, tmp1, err, sizeof(err));
	b = a ? load_regroup_resave(argv[2], argc > 4 ? argv[4] : NULL, tmp2, err, sizeof(err)) : NULL;
	d = b ? snapdiff_new(a, b, err, sizeof(err)) : NULL;
	if (d == NULL) {
		fprintf(stderr, "snapdiff_check: %s\n", err);
		return 1;
	}
	snapdiff_print(stdout, d, 10, false);

	text = slurp(argv[3]);
	exp = cJSON_Parse(text);
	top = cJSON_GetObjectItem(exp, "top");
	if (!cJSON_IsArray(top)) {
		fprintf(stderr, "%s: no \"top\" array\n", argv[3]);
		return 2;
	}
	if (strcmp(cJSON_GetObjectItem(exp, "key")->valuestring, snapshot_key_name(d->key)) != 0 ||
	    cJSON_IsTrue(cJSON_GetObjectItem(exp, "cumulative")) != d->cumulative) {
		fprintf(stderr, "key/cumulative differ from the expected file\n");
		failures++;
	}
	check((double)d->n == cJSON_GetObjectItem(exp, "nentries")->valuedouble, 0, "number of entries",
	      cJSON_GetObjectItem(exp, "nentries")->valuedouble, (double)d->n);
	cJSON_ArrayForEach(e, top) {
		const struct snapdiff_entry *x;
		const struct snapshot_group *g;
		const cJSON *frames = cJSON_GetObjectItem(e, "frames"), *f;
		uint32_t k = 0;

		if (i >= d->n) {
			fprintf(stderr, "entry %zu: missing\n", i);
			failures++;
			break;
		}
		x = &d->entries[i];
		g = snapdiff_entry_group(x);
		check((double)x->size_diff == cJSON_GetObjectItem(e, "size_diff")->valuedouble, i,
		      "size_diff", cJSON_GetObjectItem(e, "size_diff")->valuedouble, (double)x->size_diff);
		check((double)x->size == cJSON_GetObjectItem(e, "size")->valuedouble, i, "size",
		      cJSON_GetObjectItem(e, "size")->valuedouble, (double)x->size);
		check((double)x->count_diff == cJSON_GetObjectItem(e, "count_diff")->valuedouble, i,
		      "count_diff", cJSON_GetObjectItem(e, "count_diff")->valuedouble, (double)x->count_diff);
		check((double)x->count == cJSON_GetObjectItem(e, "count")->valuedouble, i, "count",
		      cJSON_GetObjectItem(e, "count")->valuedouble, (double)x->count);
		check((uint32_t)cJSON_GetArraySize(frames) == g->nframes, i, "number of frames",
		      cJSON_GetArraySize(frames), g->nframes);
		cJSON_ArrayForEach(f, frames) {
			const char *fn = cJSON_GetArrayItem(f, 0)->valuestring;
			double ln = cJSON_GetArrayItem(f, 1)->valuedouble;

			if (k >= g->nframes || strcmp(fn, g->frames[k].filename) != 0 ||
			    ln != g->frames[k].lineno) {
				fprintf(stderr, "entry %zu: frame %u is %s:%u, tracemalloc says %s:%.0f\n", i,
					k, k < g->nframes ? g->frames[k].filename : "-",
					k < g->nframes ? g->frames[k].lineno : 0, fn, ln);
				failures++;
				break;
			}
			k++;
		}
		i++;
	}
	if (i == 0) {
		fprintf(stderr, "expected file has no entries: nothing was compared\n");
		failures++;
	}
	printf("%s: %zu top entries compared, %zu entries in all, %d difference(s)\n", argv[3], i,
	       d->n, failures);
	cJSON_Delete(exp);
	free(text);
	snapdiff_free(d);
	snapshot_free(a);
	snapshot_free(b);
	free(tmp1);
	free(tmp2);
	return failures ? 1 : 0;
}
