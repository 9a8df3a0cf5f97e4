/*
 * snapshot_print.c - snapshots as tables and JSON for the headless commands;
 * every string in them is the target's and goes through strsafe.
 */
#include "snapshot/snapshot.h"
#include "base/units.h"
#include "base/errfmt.h"
#include "base/strsafe.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <locale.h>
#include <math.h> /* isfinite only: no libm needed */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"

#include "snapshot/snapshot_intern.h"

/* ------------------------------------------------------------- print -- */

void snapshot_print_location(FILE *fp, const struct snapshot_group *g,
			     enum proto_key key, int indent)
{
	if (g->native)
		fputs("[native] ", fp);
	strsafe_fputs(g->frames[0].filename, fp);
	if (key != PROTO_KEY_FILENAME)
		fprintf(fp, ":%" PRIu32, g->frames[0].lineno);
	if (g->line[0] != '\0') {
		fputs(": ", fp);
		strsafe_fputs(g->line, fp);
	}
	fputc('\n', fp);
	for (uint32_t i = 1; i < g->nframes; i++) {
		fprintf(fp, "%*s  from ", indent, "");
		strsafe_fputs(g->frames[i].filename, fp);
		fprintf(fp, ":%" PRIu32 "\n", g->frames[i].lineno);
	}
}

void snapshot_fput_json_string(FILE *fp, const char *s)
{
	struct sbuf b = { 0 };

	snapshot_sb_json_string(&b, s);
	fwrite(b.p, 1, b.len, fp);
	free(b.p);
}

void snapshot_fput_json_frames(FILE *fp, const struct snapshot_group *g)
{
	struct sbuf b = { 0 };

	snapshot_sb_frames(&b, g);
	fwrite(b.p, 1, b.len, fp);
	free(b.p);
}

static const struct snapshot_group **sorted_groups(const struct snapshot *snap, size_t *n,
						   size_t top_n)
{
	const struct snapshot_group **v = xcalloc(snap->ngroups, sizeof(*v));

	for (size_t i = 0; i < snap->ngroups; i++)
		v[i] = &snap->groups[i];
	if (snap->ngroups > 1)
		qsort(v, snap->ngroups, sizeof(*v), snapshot_group_ptr_cmp_size);
	*n = top_n && top_n < snap->ngroups ? top_n : snap->ngroups;
	return v;
}

int snapshot_print(FILE *fp, const struct snapshot *snap, size_t top_n, bool json)
{
	const struct snapshot_group **v;
	char when[64], s1[32], s2[32], s3[32];
	struct tm tm;
	time_t t;
	size_t n;

	v = sorted_groups(snap, &n, top_n);
	if (json) {
		size_t len;
		char *text = snapshot_serialize_groups(snap, v, n, &len);

		fwrite(text, 1, len, fp);
		free(text);
		free(v);
		return ferror(fp) ? -1 : 0;
	}
	t = (time_t)snap->time;
	if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(when, sizeof(when), "%.0f", snap->time);
	fprintf(fp, "snapshot");
	if (snap->label[0]) {
		fputs(" \"", fp);
		strsafe_fputs(snap->label, fp);
		fputc('"', fp);
	}
	fprintf(fp, " of pid %" PRIu32 " at %s, key %s%s, nframe %" PRIu32, snap->pid, when,
		snapshot_key_name(snap->key), snap->cumulative ? " (cumulative)" : "", snap->nframe);
	if (snap->source != SNAPSHOT_SOURCE_TRACEMALLOC) {
		char src[64];

		fprintf(fp, ", %s (estimates)", snapshot_source_text(src, sizeof(src), snap->source,
								   snap->interval));
	}
	fputc('\n', fp);
	fprintf(fp, "traced %s in %" PRIu64 " blocks (current %s, peak %s); %s%zu groups, %zu shown\n",
		units_bytes_table(s1, sizeof(s1), (int64_t)snap->total_size, false),
		snap->total_count,
		units_bytes_table(s2, sizeof(s2), (int64_t)snap->traced_current, false),
		units_bytes_table(s3, sizeof(s3), (int64_t)snap->traced_peak, false),
		snap->cut && snap->all_groups <= n ? "more than " : "",
		!snap->cut ? snap->ngroups : snap->all_groups > n ? snap->all_groups : n, n);
	fprintf(fp, "%10s %10s %10s  %s\n", "SIZE", "COUNT", "AVERAGE", "LOCATION");
	for (size_t i = 0; i < n; i++) {
		const struct snapshot_group *g = v[i];

		fprintf(fp, "%10s %10" PRIu64 " %10s  ",
			units_bytes_table(s1, sizeof(s1), (int64_t)g->size, false), g->count,
			g->count ? units_bytes_table(s2, sizeof(s2),
							(int64_t)(g->size / g->count), false)
				 : "-");
		snapshot_print_location(fp, g, snap->key, 33);
	}
	free(v);
	return ferror(fp) ? -1 : 0;
}

