/*
 * leftover.c - naming what pmt-top leaves in /tmp (see leftover.h).
 */
#include "base/leftover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

unsigned long long leftover_pidns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

int leftover_name(char *buf, size_t len, const char *prefix)
{
	int n = snprintf(buf, len, "%s%ld-%llu-", prefix, (long)getpid(), leftover_pidns());

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* A decimal number of at most 20 digits at *P, which is moved past it. */
static int number(const char **p, unsigned long long *out)
{
	const char *s = *p;
	unsigned long long v = 0;
	int n = 0;

	while (*s >= '0' && *s <= '9' && n < 20) {
		v = v * 10 + (unsigned long long)(*s++ - '0');
		n++;
	}
	if (n == 0 || (*s >= '0' && *s <= '9'))
		return -1;
	*p = s;
	*out = v;
	return 0;
}

int leftover_parse(const char *name, const char *prefix, pid_t *creator, unsigned long long *pidns,
		   const char **rest)
{
	size_t pl = strlen(prefix);
	const char *p = name;
	unsigned long long pid, ns;

	if (strncmp(name, prefix, pl) != 0)
		return -1;
	p += pl;
	if (number(&p, &pid) < 0 || *p++ != '-' || number(&p, &ns) < 0 || *p++ != '-')
		return -1;
	if (pid == 0 || pid > 0x7fffffffULL)
		return -1;
	*creator = (pid_t)pid;
	*pidns = ns;
	*rest = p;
	return 0;
}

bool leftover_creator_gone(pid_t creator, unsigned long long pidns)
{
	unsigned long long ours = leftover_pidns();

	if (creator <= 0 || pidns == 0 || ours == 0 || pidns != ours || creator == getpid())
		return false;
	return kill(creator, 0) != 0 && errno == ESRCH;
}
