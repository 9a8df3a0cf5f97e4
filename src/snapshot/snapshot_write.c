/*
 * snapshot_write.c - the canonical JSON writer and atomic saves: a new
 * 0600 file of ours beside the destination, fsync, rename.
 */
#include "snapshot/snapshot.h"
#include "base/units.h"
#include "base/errfmt.h"
#include "base/strsafe.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
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

/* --------------------------------------------------------- serialize -- */


static void sb_reserve(struct sbuf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return;
	while (b->cap - b->len < n)
		b->cap = b->cap ? b->cap * 2 : 4096;
	b->p = xrealloc(b->p, b->cap);
}

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	sb_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define sb_lit(b, s) sb_put((b), (s), sizeof(s) - 1)

static void sb_u64(struct sbuf *b, uint64_t v)
{
	char t[24];
	int i = sizeof(t);

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sb_put(b, t + i, sizeof(t) - (size_t)i);
}

/* Shortest decimal that reads back as d, in C-locale form. */
static void fmt_double(char *t, size_t tlen, double d)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(t, tlen, "%.*g", prec, d);
		if (strtod(t, NULL) == d)
			break;
	}
	for (char *p = t; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == 'e'))
			*p = '.'; /* a locale's decimal comma */
}

static void sb_double(struct sbuf *b, double d)
{
	char t[40];

	fmt_double(t, sizeof(t), d);
	sb_put(b, t, strlen(t));
}

/* JSON string literal; bad UTF-8 as U+FFFD, and every character strsafe
 * rejects (controls, C1, bidi) escaped, so the text is safe on a terminal. */
void snapshot_sb_json_string(struct sbuf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0, run = 0;

	sb_reserve(b, n + 2);
	b->p[b->len++] = '"';
	while (i < n) {
		unsigned char c = s[i];
		size_t k;

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			run++;
			i++;
			continue;
		}
		sb_put(b, (const char *)s + i - run, run);
		run = 0;
		if (c >= 0x80) {
			uint32_t cp = strsafe_decode(str + i, n - i, &k);

			if (cp == STRSAFE_INVALID) {
				sb_lit(b, "\xef\xbf\xbd");
			} else if (strsafe_cp_ok(cp)) {
				sb_put(b, (const char *)s + i, k);
			} else {
				char t[16]; /* cp < 0x10000 here: six bytes */

				snprintf(t, sizeof(t), "\\u%04x", (unsigned)cp);
				sb_put(b, t, 6);
			}
			i += k;
			continue;
		}
		switch (c) {
		case '"': sb_lit(b, "\\\""); break;
		case '\\': sb_lit(b, "\\\\"); break;
		case '\n': sb_lit(b, "\\n"); break;
		case '\t': sb_lit(b, "\\t"); break;
		case '\r': sb_lit(b, "\\r"); break;
		case '\b': sb_lit(b, "\\b"); break;
		case '\f': sb_lit(b, "\\f"); break;
		default: {
			char t[8];

			snprintf(t, sizeof(t), "\\u%04x", c);
			sb_put(b, t, 6);
		}
		}
		i++;
	}
	sb_put(b, (const char *)s + i - run, run);
	sb_lit(b, "\"");
}

void snapshot_sb_frames(struct sbuf *b, const struct snapshot_group *g)
{
	sb_lit(b, "[");
	for (uint32_t i = 0; i < g->nframes; i++) {
		if (i)
			sb_lit(b, ", ");
		sb_lit(b, "[");
		snapshot_sb_json_string(b, g->frames[i].filename);
		sb_lit(b, ", ");
		sb_u64(b, g->frames[i].lineno);
		sb_lit(b, "]");
	}
	sb_lit(b, "]");
}

static void sb_header(struct sbuf *b, const struct snapshot *snap)
{
	sb_lit(b, "{\"format\": \"" SNAPSHOT_FORMAT "\", \"version\": 1, \"label\": ");
	snapshot_sb_json_string(b, snap->label);
	sb_lit(b, ", \"time\": ");
	sb_double(b, snap->time);
	sb_lit(b, ", \"pid\": ");
	sb_u64(b, snap->pid);
	sb_lit(b, ", \"key\": \"");
	sb_put(b, snapshot_key_name(snap->key), strlen(snapshot_key_name(snap->key)));
	sb_lit(b, "\", \"cumulative\": ");
	if (snap->cumulative)
		sb_lit(b, "true");
	else
		sb_lit(b, "false");
	sb_lit(b, ", \"nframe\": ");
	sb_u64(b, snap->nframe);
	sb_lit(b, ", \"traced_current\": ");
	sb_u64(b, snap->traced_current);
	sb_lit(b, ", \"traced_peak\": ");
	sb_u64(b, snap->traced_peak);
	sb_lit(b, ", \"total_size\": ");
	sb_u64(b, snap->total_size);
	sb_lit(b, ", \"total_count\": ");
	sb_u64(b, snap->total_count);
	sb_lit(b, ", \"ntraces\": ");
	sb_u64(b, snap->ntraces);
	/* Only a sampled snapshot says so: a file without "source" is
	 * tracemalloc's, as every file was before the profiler. */
	if (snap->source == SNAPSHOT_SOURCE_SAMPLED) {
		sb_lit(b, ", \"source\": \"sampled\", \"interval\": ");
		sb_u64(b, snap->interval);
	}
	if (snap->mem.has) {
		sb_lit(b, ", \"rss\": ");
		sb_u64(b, snap->mem.rss);
		for (int i = 0; i < SNAPSHOT_MEM_PARTS; i++) {
			if (!(snap->mem.known & (1u << i)))
				continue;
			sb_lit(b, ", \"rss_");
			sb_put(b, snapshot_mem_name(i), strlen(snapshot_mem_name(i)));
			sb_lit(b, "\": ");
			if (snap->mem.part[i] < 0)
				sb_lit(b, "-");
			sb_u64(b, (uint64_t)(snap->mem.part[i] < 0 ? -snap->mem.part[i] : snap->mem.part[i]));
		}
	}
	sb_lit(b, ", \"groups\": [");
}

static void sb_group(struct sbuf *b, const struct snapshot_group *g)
{
	sb_lit(b, "{\"size\": ");
	sb_u64(b, g->size);
	sb_lit(b, ", \"count\": ");
	sb_u64(b, g->count);
	sb_lit(b, ", \"frames\": ");
	snapshot_sb_frames(b, g);
	sb_lit(b, ", \"line\": ");
	snapshot_sb_json_string(b, g->line);
	if (g->native)
		sb_lit(b, ", \"native\": true");
	sb_lit(b, "}");
}

char *snapshot_serialize_groups(const struct snapshot *snap,
			      const struct snapshot_group *const *order, size_t n,
			      size_t *len)
{
	struct sbuf b = { 0 };

	sb_reserve(&b, 256 + n * 96);
	sb_header(&b, snap);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_lit(&b, ",\n");
		else
			sb_lit(&b, "\n");
		sb_group(&b, order ? order[i] : &snap->groups[i]);
	}
	sb_lit(&b, "\n]}\n");
	sb_reserve(&b, 1);
	b.p[b.len] = '\0';
	if (len)
		*len = b.len;
	return b.p;
}

char *snapshot_serialize(const struct snapshot *snap, size_t max_groups, size_t *len)
{
	size_t n = snap->ngroups < max_groups ? snap->ngroups : max_groups;

	return snapshot_serialize_groups(snap, NULL, n, len);
}

cJSON *snapshot_to_json(const struct snapshot *snap)
{
	cJSON *o = cJSON_CreateObject(), *groups;

	if (o == NULL)
		goto oom;
	cJSON_AddStringToObject(o, "format", SNAPSHOT_FORMAT);
	cJSON_AddNumberToObject(o, "version", SNAPSHOT_VERSION);
	cJSON_AddStringToObject(o, "label", snap->label);
	cJSON_AddNumberToObject(o, "time", snap->time);
	cJSON_AddNumberToObject(o, "pid", snap->pid);
	cJSON_AddStringToObject(o, "key", snapshot_key_name(snap->key));
	cJSON_AddBoolToObject(o, "cumulative", snap->cumulative);
	cJSON_AddNumberToObject(o, "nframe", snap->nframe);
	cJSON_AddNumberToObject(o, "traced_current", (double)snap->traced_current);
	cJSON_AddNumberToObject(o, "traced_peak", (double)snap->traced_peak);
	cJSON_AddNumberToObject(o, "total_size", (double)snap->total_size);
	cJSON_AddNumberToObject(o, "total_count", (double)snap->total_count);
	cJSON_AddNumberToObject(o, "ntraces", (double)snap->ntraces);
	if (snap->source == SNAPSHOT_SOURCE_SAMPLED) {
		cJSON_AddStringToObject(o, "source", snapshot_source_name(snap->source));
		cJSON_AddNumberToObject(o, "interval", (double)snap->interval);
	}
	if (snap->mem.has) {
		cJSON_AddNumberToObject(o, "rss", (double)snap->mem.rss);
		for (int i = 0; i < SNAPSHOT_MEM_PARTS; i++) {
			char name[32];
			if (!(snap->mem.known & (1u << i)))
				continue;
			snprintf(name, sizeof name, "rss_%s", snapshot_mem_name(i));
			cJSON_AddNumberToObject(o, name, (double)snap->mem.part[i]);
		}
	}
	groups = cJSON_AddArrayToObject(o, "groups");
	if (groups == NULL)
		goto oom;
	for (size_t i = 0; i < snap->ngroups; i++) {
		const struct snapshot_group *g = &snap->groups[i];
		cJSON *go = cJSON_CreateObject(), *frames;

		if (go == NULL || !cJSON_AddItemToArray(groups, go))
			goto oom;
		cJSON_AddNumberToObject(go, "size", (double)g->size);
		cJSON_AddNumberToObject(go, "count", (double)g->count);
		frames = cJSON_AddArrayToObject(go, "frames");
		if (frames == NULL)
			goto oom;
		for (uint32_t k = 0; k < g->nframes; k++) {
			cJSON *pair = cJSON_CreateArray();

			if (pair == NULL || !cJSON_AddItemToArray(frames, pair))
				goto oom;
			cJSON_AddItemToArray(pair, cJSON_CreateString(g->frames[k].filename));
			cJSON_AddItemToArray(pair, cJSON_CreateNumber(g->frames[k].lineno));
		}
		if (cJSON_AddStringToObject(go, "line", g->line) == NULL)
			goto oom;
		if (g->native && cJSON_AddTrueToObject(go, "native") == NULL)
			goto oom;
	}
	return o;
oom:
	fprintf(stderr, "pmt-top: out of memory (building JSON)\n");
	abort();
}

/* -------------------------------------------------------------- save -- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Text written in pieces of about this size. */
#define WRITE_CHUNK (1024 * 1024)

/*
 * snapshot_serialize()'s text, written as it is made: the whole text at
 * once would cost as much again as the snapshot (22 MB for 300k groups).
 */
static int write_text(int fd, const struct snapshot *snap)
{
	struct sbuf b = { 0 };
	int rc = -1;

	sb_reserve(&b, WRITE_CHUNK + 4096);
	sb_header(&b, snap);
	for (size_t i = 0; i < snap->ngroups; i++) {
		if (i)
			sb_lit(&b, ",\n");
		else
			sb_lit(&b, "\n");
		sb_group(&b, &snap->groups[i]);
		if (b.len >= WRITE_CHUNK) {
			if (write_all(fd, b.p, b.len) < 0)
				goto out;
			b.len = 0;
		}
	}
	sb_lit(&b, "\n]}\n");
	rc = write_all(fd, b.p, b.len);
out:
	free(b.p);
	return rc;
}

/*
 * Create a fresh temporary file next to BASE in directory DFD: O_EXCL, so
 * never a file (or a symlink) someone else put there. Returns the fd and its
 * name in NAME, or -1 with errno.
 */
/* Temporary files are ".BASE.pmt<writer pid>-<random>": a pmt-top killed
 * between creating one and renaming it leaves it behind, and the next save
 * to the same name removes it once its writer is gone. */
#define TEMP_TAG ".pmt"
#define TEMP_STALE_SECONDS 60

static int create_temp(int dfd, const char *base, char *name, size_t namelen)
{
	for (int tries = 0; tries < 100; tries++) {
		uint64_t r;
		int fd;

		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
			r = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL) ^ (uint64_t)tries * 0x9e3779b97f4a7c15ULL;
		if ((size_t)snprintf(name, namelen, ".%s" TEMP_TAG "%ld-%08" PRIx64, base, (long)getpid(),
				     r & UINT64_C(0xffffffff)) >= namelen) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

/* Is NAME a temporary file of a save to BASE whose writer has gone? Ours
 * (owner), a regular file (never a link), over a minute old (a writer in
 * another pid namespace has long finished), its writer's pid not running. */
static bool stale_temp(int dfd, const char *name, const char *base, size_t blen)
{
	const char *num;
	struct stat st;
	char *end;
	long pid;

	if (name[0] != '.' || strncmp(name + 1, base, blen) != 0 ||
	    strncmp(name + 1 + blen, TEMP_TAG, strlen(TEMP_TAG)) != 0)
		return false;
	num = name + 1 + blen + strlen(TEMP_TAG);
	errno = 0;
	pid = strtol(num, &end, 10);
	if (errno != 0 || end == num || *end != '-' || pid <= 0 || pid == (long)getpid())
		return false;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode) || st.st_uid != geteuid() || time(NULL) - st.st_mtime < TEMP_STALE_SECONDS)
		return false;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* Remove what killed saves to BASE left in the directory DFD. */
static void sweep_temps(int dfd, const char *base)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t blen = strlen(base);
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (stale_temp(dfd, e->d_name, base, blen))
			(void)unlinkat(dfd, e->d_name, 0);
	}
	closedir(d);
}

int snapshot_save(const struct snapshot *snap, const char *path, char *err, size_t errlen)
{
	char *dcopy = NULL, *bcopy = NULL, tmp[NAME_MAX + 1];
	const char *dir, *base;
	struct stat st;
	int fd = -1, dfd = -1, rc = -1;
	bool made = false;

	if (path == NULL || *path == '\0') {
		errfmt(err, errlen, "cannot save a snapshot: no file name given");
		return -1;
	}
	dcopy = xstrdup(path);
	bcopy = xstrdup(path);
	dir = dirname(dcopy);
	base = basename(bcopy);
	/* Everything below works relative to this one directory. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		errfmt(err, errlen, "cannot save to %s: cannot create a file in %s: %s", path, dir,
		       strerror(errno));
		goto out;
	}
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
		errfmt(err, errlen, "cannot save to %s: it is a directory (give a file name)", path);
		goto out;
	}
	sweep_temps(dfd, base);
	fd = create_temp(dfd, base, tmp, sizeof(tmp));
	if (fd < 0) {
		errfmt(err, errlen, "cannot save to %s: cannot create a file in %s: %s", path, dir,
		       strerror(errno));
		goto out;
	}
	made = true;
	/* Our mode, set explicitly: never one copied from a file that was
	 * there (another user may have made it world-writable for us). */
	if (write_text(fd, snap) < 0 || fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
		errfmt(err, errlen, "cannot save to %s: %s", path, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		errfmt(err, errlen, "cannot save to %s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, base) < 0) {
		int e = errno;
		struct stat dst;

		if ((e == EPERM || e == EACCES) && fstatat(dfd, base, &dst, AT_SYMLINK_NOFOLLOW) == 0 &&
		    dst.st_uid != geteuid() && fstat(dfd, &st) == 0 && (st.st_mode & S_ISVTX))
			errfmt(err, errlen, "cannot save to %s: the file there belongs to uid %u and %s is a "
			       "sticky directory, so it cannot be replaced (remove it or choose another name)",
			       path, (unsigned)dst.st_uid, dir);
		else
			errfmt(err, errlen, "cannot save to %s: %s", path, strerror(e));
		goto out;
	}
	made = false;
	/* make the rename itself durable; failing here loses nothing already written */
	(void)fsync(dfd);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (made)
		(void)unlinkat(dfd, tmp, 0);
	if (dfd >= 0)
		close(dfd);
	free(dcopy);
	free(bcopy);
	return rc;
}

