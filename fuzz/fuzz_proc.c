/*
 * fuzz_proc.c - libFuzzer harness for the /proc parsers: src/proc/proc_sample.c
 * (status, stat, statm, smaps_rollup, cmdline), src/proc/proctree.c (stat,
 * children), src/proc/smaps.c and src/attach/pyproc.c (maps,
 * status fields, a task's stat and syscall files, context switches).
 *
 * pmt-top reads these files of processes that belong to other users; the
 * target decides part of their text (its name in stat and status, its
 * command line, the file names in its maps). An input is the text of one
 * such file and goes through every parser, as the callers hand it over:
 * NUL-terminated, and for maps and status a line at a time as fgets() cuts
 * it. The command line must come out display-safe.
 */
#include "attach/pyproc.h"
#include "proc/proctree.h"
#include "proc/smaps.h"
#include "proc/proc_sample.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#define H "fuzz_proc"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

/* The next line as fgets(buf, cap, f) would return it; false at the end. */
static bool next_line(const char *data, size_t size, size_t *at, char *buf, size_t cap)
{
	size_t n = 0;

	if (*at >= size)
		return false;
	while (*at < size && n < cap - 1) {
		char c = data[(*at)++];

		buf[n++] = c;
		if (c == '\n')
			break;
	}
	buf[n] = '\0';
	return true;
}

static void proc_sample_parsers(const char *text, const char *raw, size_t size)
{
	struct proc_sample s;
	unsigned long long ticks = 0;
	char cmd[256];

	memset(&s, 0, sizeof s);
	sink += (uint64_t)proc_sample_parse_statm(text, 4096, &s);
	sink += (uint64_t)proc_sample_parse_status(text, &s);
	sink += (uint64_t)proc_sample_parse_smaps_rollup(text, &s);
	sink += (uint64_t)proc_sample_parse_stat_start(text, &ticks);
	sink += s.rss + s.pss + ticks;

	proc_sample_cmdline_text(raw, size, cmd, sizeof cmd);
	if (memchr(cmd, '\0', sizeof cmd) == NULL)
		fuzz_broken(H, "a command line without its NUL", NULL);
	for (size_t i = 0, n = strlen(cmd); i < n;) {
		size_t len;
		uint32_t cp = strsafe_decode(cmd + i, n - i, &len);

		if (cp == STRSAFE_INVALID || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
			fuzz_broken(H, "a command line that is not safe to print", NULL);
		i += len;
	}
}

static void tree_files(const char *text)
{
	struct proctree_stat st;
	pid_t kids[8];

	if (proctree_parse_stat(text, &st) == 0) {
		if (st.ppid < 0)
			fuzz_broken(H, "a negative parent pid", NULL);
		if (memchr(st.comm, '\0', sizeof st.comm) == NULL)
			fuzz_broken(H, "a process name without its NUL", NULL);
		sink += st.start_ticks + (uint64_t)st.state;
	}
	int n = proctree_parse_children(text, kids, 8);
	if (n > 8)
		fuzz_broken(H, "more children than asked for", NULL);
	for (int i = 0; i < n; i++)
		if (kids[i] <= 0)
			fuzz_broken(H, "a child pid that is not positive", NULL);
}

static void smaps_text(const char *text)
{
	struct smaps_totals t;
	uint64_t sum = 0;

	if (smaps_parse(text, (int)(strlen(text) % 4), &t) < 0)
		return;
	for (int k = 0; k < SMAPS_KIND_COUNT; k++)
		sum += t.rss[k];
	if (sum != t.rss_all)
		fuzz_broken(H, "smaps kinds that do not add up to the whole", NULL);
	if (t.thread_stacks + t.arenas > t.mappings)
		fuzz_broken(H, "more stacks and arenas than mappings", NULL);
}

static void status_fields(const char *text, const char *raw, size_t size)
{
	static const char *const keys[] = { "NSpid", "TracerPid", "Uid", "Gid" };
	long vals[8];
	char line[512];

	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		size_t at = 0;
		int n = pyproc_status_parse(text, keys[k], vals, 8);

		if (n > 8)
			fuzz_broken(H, "more status values than asked for", keys[k]);
		/* as pyproc_status_field() reads it, line by line */
		while (next_line(raw, size, &at, line, sizeof line)) {
			n = pyproc_status_parse(line, keys[k], vals, 4);
			if (n > 4)
				fuzz_broken(H, "more status values than asked for", keys[k]);
			if (n >= 0)
				break;
		}
	}
}

static void task_files(const char *text)
{
	struct pyproc_syscall sc;
	enum pyproc_thread_state st;

	sink += (uint64_t)pyproc_stat_state(text);
	st = pyproc_syscall_parse(text, &sc);
	if (st != PYPROC_THREAD_RUNNING && st != PYPROC_THREAD_SYSCALL && st != PYPROC_THREAD_UNKNOWN)
		fuzz_broken(H, "a syscall file gave a state it cannot", NULL);
	if (st == PYPROC_THREAD_SYSCALL && sc.nr < 0)
		fuzz_broken(H, "a negative system call number", NULL);
	sink += (uint64_t)pyproc_switches_parse(text);
}

static void maps(const char *raw, size_t size)
{
	static char line[PATH_MAX + 256];
	size_t at = 0;

	while (next_line(raw, size, &at, line, sizeof line)) {
		uint64_t start, end, off;
		char *path;
		int major, minor, ft;

		if (pyproc_maps_line(line, &start, &end, &off, &path) < 0)
			continue;
		if (path < line || path > line + strlen(line))
			fuzz_broken(H, "a maps path outside its line", NULL);
		if (path[0] != '/')
			continue;
		const char *base = strrchr(path, '/') + 1;

		for (int lib = 0; lib <= 1; lib++) {
			if (proctree_python_name(base, lib, &major, &minor, &ft)) {
				if (major < 0 || major > 9 || (ft != 0 && ft != 1))
					fuzz_broken(H, "a python file name parsed out of range", base);
				sink += (uint64_t)minor;
			}
		}
		sink += start + end + off;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_copy(data, size, 1);
	char *raw = fuzz_copy(data, size, 0);

	proc_sample_parsers(text, raw, size);
	tree_files(text);
	smaps_text(text);
	status_fields(text, raw, size);
	task_files(text);
	maps(raw, size);
	free(raw);
	free(text);
	return 0;
}
