/*
 * location.c - code locations for the list views (see location.h).
 */
#include "tui/location.h"
#include "base/fsafe.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void location_format(char *buf, size_t len, const struct snapshot_group *g, int width)
{
	char full[4096];
	const struct snapshot_frame *f = &g->frames[0];
	int n;
	if (f->lineno == 0)
		n = snprintf(full, sizeof full, "%s", f->filename);
	else
		n = snprintf(full, sizeof full, "%s:%u", f->filename, f->lineno);
	if (g->nframes > 1 && n > 0 && (size_t)n < sizeof full)
		n += snprintf(full + n, sizeof full - (size_t)n, " +%u", g->nframes - 1);
	/* last: a narrow column keeps the tail */
	if (g->native && n > 0 && (size_t)n < sizeof full)
		snprintf(full + n, sizeof full - (size_t)n, " [native]");
	size_t fl = strlen(full);
	if (width < 4 || fl <= (size_t)width) {
		snprintf(buf, len, "%s", full);
		return;
	}
	/* Keep the tail: the file name and line are what tell places apart. */
	snprintf(buf, len, "...%s", full + fl - (size_t)(width - 3));
}

char *location_filter_text(char *buf, size_t len, const struct snapshot_group *g)
{
	size_t at = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; i < g->nframes && at + 1 < len; i++) {
		int n = snprintf(buf + at, len - at, i ? "\n%s:%u" : "%s:%u",
				 g->frames[i].filename, g->frames[i].lineno);
		if (n < 0)
			break;
		at += (size_t)n;
	}
	if (g->native && at + 1 < len)
		snprintf(buf + at, len - at, "\n[native]");
	return buf;
}

void location_source_line(pid_t pid, const char *file, unsigned lineno, char *buf, size_t len)
{
	char path[4200];
	buf[0] = '\0';
	if (lineno == 0 || file[0] != '/')
		return;
	snprintf(path, sizeof path, "/proc/%d/root%s", (int)pid, file);
	/* The target names the file: open only a regular file (never a FIFO
	 * that would hang the screen, nor a device), and not a huge one. */
	const struct fsafe_want want = { .max_size = 64 << 20, .owner = (uid_t)-1, .owner2 = (uid_t)-1 };
	char why[256];
	int fd = fsafe_open(AT_FDCWD, path, &want, NULL, why, sizeof why);
	if (fd < 0)
		fd = fsafe_open(AT_FDCWD, file, &want, NULL, why, sizeof why);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	char line[1024];
	unsigned n = 0;
	while (fgets(line, sizeof line, f)) {
		size_t l = strlen(line);
		bool whole = l > 0 && line[l - 1] == '\n';
		if (++n == lineno) {
			char *p = line;
			while (isspace((unsigned char)*p))
				p++;
			l = strlen(p);
			while (l > 0 && isspace((unsigned char)p[l - 1]))
				p[--l] = '\0';
			snprintf(buf, len, "%s", p);
			break;
		}
		/* A line longer than the buffer: skip the rest of it. */
		while (!whole && fgets(line, sizeof line, f)) {
			l = strlen(line);
			whole = l > 0 && line[l - 1] == '\n';
		}
	}
	fclose(f);
}
