/*
 * inject_dir.c - inject directories: names, leftovers, peers (see
 * inject_dir.h).
 */
#include "attach/inject_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach/pyproc.h"
#include "attach/tracer.h"
#include "base/leftover.h"
#include "base/monotime.h"

/* Entries of a target's /tmp looked at for a peer's directory, at most. */
#define MAX_TMP_ENTRIES 100000

/* What inject.c makes: mode 0700, or 0711 when the target's user is not us
 * (it must reach the bootstrap by name); agent/pmt_agent/ and native/ inside. */
static const struct leftover_kind inject_kind = {
	.prefix = INJECT_DIR_PREFIX,
	.suffix = NULL,
	.directory = true,
	.modes = { 0700, 0711 },
	.max_depth = 2,
};

int inject_dir_name(pid_t target, char *buf, size_t len)
{
	unsigned long long r;
	size_t n;

	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = (unsigned long long)monotime_ms() * 2654435761u ^ (unsigned long long)getpid();
	if (leftover_name(buf, len, INJECT_DIR_PREFIX) < 0)
		return -1;
	n = strlen(buf);
	if ((size_t)snprintf(buf + n, len - n, "%ld-%016llx", (long)target, r) >= len - n)
		return -1;
	return 0;
}

int inject_dir_sweep(int tmpfd)
{
	return leftover_sweep(tmpfd, &inject_kind);
}

int inject_dir_sweep_tmp(void)
{
	return leftover_sweep_path("/tmp", &inject_kind);
}

pid_t inject_dir_peer(pid_t target)
{
	char tmp[64], comm[32];
	unsigned long long ns, ours = leftover_pidns();
	long uid[4];
	uid_t tuid = (uid_t)-1;
	pid_t found = 0;
	int seen = 0;
	struct dirent *e;
	DIR *d;
	int fd;

	if (pyproc_status_field(target, "Uid", uid, 4) >= 2)
		tuid = (uid_t)uid[1];
	snprintf(tmp, sizeof tmp, "/proc/%ld/root/tmp", (long)target);
	fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (!found && seen++ < MAX_TMP_ENTRIES && (e = readdir(d)) != NULL) {
		const char *rest;
		char *end;
		pid_t creator;
		struct stat st;
		long t;

		if (leftover_parse(e->d_name, INJECT_DIR_PREFIX, &creator, &ns, &rest) < 0 || ns != ours ||
		    creator == getpid())
			continue;
		t = strtol(rest, &end, 10);
		if (end == rest || *end != '-' || t != (long)target)
			continue;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
		    (st.st_uid != 0 && st.st_uid != geteuid() && st.st_uid != tuid))
			continue;
		if ((kill(creator, 0) == 0 || errno == EPERM) &&
		    strcmp(tracer_comm(creator, comm, sizeof comm), "pmt-top") == 0)
			found = creator;
	}
	closedir(d);
	return found;
}
