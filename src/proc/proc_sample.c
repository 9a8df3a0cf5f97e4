/*
 * proc_sample.c - parsers for the /proc files pmt-top reads (see proc_sample.h).
 */
#include "proc/proc_sample.h"
#include "base/strsafe.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int proc_sample_parse_statm(const char *text, long page_size, struct proc_sample *s)
{
	char *end;
	errno = 0;
	unsigned long long size = strtoull(text, &end, 10);
	if (end == text || errno != 0)
		return -1;
	const char *p = end;
	unsigned long long resident = strtoull(p, &end, 10);
	if (end == p || errno != 0)
		return -1;
	s->vsize = size * (uint64_t)page_size;
	s->rss = resident * (uint64_t)page_size;
	return 0;
}

/* Match "Name:" at the start of line and return the value in kB as bytes. */
static int kb_field(const char *line, const char *name, uint64_t *out)
{
	size_t n = strlen(name);
	if (strncmp(line, name, n) != 0 || line[n] != ':')
		return 0;
	char *end;
	unsigned long long v = strtoull(line + n + 1, &end, 10);
	if (end == line + n + 1)
		return 0;
	*out = (uint64_t)v * 1024;
	return 1;
}

int proc_sample_parse_status(const char *text, struct proc_sample *s)
{
	int have_rss = 0;
	for (const char *line = text; line && *line; ) {
		if (kb_field(line, "VmRSS", &s->rss))
			have_rss = 1;
		else if (kb_field(line, "RssAnon", &s->anon) ||
			 kb_field(line, "RssFile", &s->file) ||
			 kb_field(line, "RssShmem", &s->shmem) ||
			 kb_field(line, "VmHWM", &s->hwm) ||
			 kb_field(line, "VmSwap", &s->swap) ||
			 kb_field(line, "VmSize", &s->vsize)) {
			/* stored by kb_field */
		} else if (strncmp(line, "Threads:", 8) == 0)
			s->threads = (int32_t)strtol(line + 8, NULL, 10);
		else if (strncmp(line, "State:", 6) == 0) {
			const char *p = line + 6;
			while (*p == ' ' || *p == '\t')
				p++;
			if (isalpha((unsigned char)*p))
				s->state = *p;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!have_rss)
		return -1;
	s->flags |= PROC_SAMPLE_HAS_STATUS;
	return 0;
}

int proc_sample_parse_smaps_rollup(const char *text, struct proc_sample *s)
{
	int have_pss = 0;
	for (const char *line = text; line && *line; ) {
		if (kb_field(line, "Pss", &s->pss))
			have_pss = 1;
		else if (kb_field(line, "Pss_Anon", &s->pss_anon) ||
			 kb_field(line, "Pss_File", &s->pss_file) ||
			 kb_field(line, "Pss_Shmem", &s->pss_shmem) ||
			 kb_field(line, "Private_Clean", &s->private_clean) ||
			 kb_field(line, "Private_Dirty", &s->private_dirty) ||
			 kb_field(line, "SwapPss", &s->swap_pss)) {
			/* stored by kb_field */
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!have_pss)
		return -1;
	s->flags |= PROC_SAMPLE_HAS_SMAPS;
	return 0;
}

int proc_sample_parse_stat_start(const char *text, unsigned long long *start_ticks)
{
	const char *p = strrchr(text, ')');
	if (p == NULL)
		return -1;
	p++;
	/* After ')' comes field 3 (state); starttime is field 22. */
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return -1;
		while (*p && *p != ' ')
			p++;
	}
	while (*p == ' ')
		p++;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (end == p || errno != 0)
		return -1;
	*start_ticks = v;
	return 0;
}

void proc_sample_cmdline_text(const char *raw, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	if (outlen == 0)
		return;
	out[0] = '\0';
	while (len > 0 && raw[len - 1] == '\0')
		len--;
	/* One argument at a time: the NULs between them become spaces, the
	 * rest is shown as strsafe does (the target chose its argv). */
	for (size_t i = 0; i < len; i++) {
		const char *arg = raw + i, *nul = memchr(arg, '\0', len - i);
		size_t n = nul ? (size_t)(nul - arg) : len - i;
		if (i > 0) {
			if (o + 2 > outlen)
				break;
			out[o++] = ' ';
			out[o] = '\0';
		}
		size_t used = strsafe_copy(out + o, outlen - o, arg, n);
		o += strlen(out + o);
		if (used < n)
			break;
		i += n;
	}
}

int proc_read_rss(pid_t pid, uint64_t *rss)
{
	char path[64], text[256];
	snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	struct proc_sample s;
	if (proc_sample_parse_statm(text, sysconf(_SC_PAGESIZE), &s) < 0)
		return -1;
	*rss = s.rss;
	return 0;
}
