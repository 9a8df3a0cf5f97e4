/*
 * agent_sock.c - find the agent's socket of a process (see agent_sock.h).
 */
#include "collect/agent_sock.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect/pyproc.h"
#include "ipc/sock.h"

static bool is_socket(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* The value of NAME in /proc/PID/environ (the environment at exec). */
static bool environ_get(pid_t pid, const char *name, char *out, size_t len)
{
	char path[64], buf[65536];
	snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	size_t nl = strlen(name);
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
		if (strncmp(buf + i, name, nl) == 0 && buf[i + nl] == '=') {
			snprintf(out, len, "%s", buf + i + nl + 1);
			return out[0] != '\0';
		}
	}
	return false;
}

/* The target's pid in its own namespace and its effective uid. */
static bool target_ids(pid_t pid, long *nspid, long *euid)
{
	long v[8];
	int n = pyproc_status_field(pid, "NSpid", v, 8);
	*nspid = n > 0 ? v[n - 1] : pid;
	if (pyproc_status_field(pid, "Uid", v, 4) < 2)
		return false;
	*euid = v[1];
	return true;
}

int agent_sock_find(pid_t pid, char *path, size_t len, char *err, size_t errlen)
{
	char own[512], dir[512], cand[2048];
	long nspid, euid;
	int rc = sock_path_for_pid(pid, false, own, sizeof own, err, errlen);
	if (rc == 0 && is_socket(own)) {
		snprintf(path, len, "%s", own);
		return 0;
	}
	if (target_ids(pid, &nspid, &euid)) {
		/* The target's own runtime directory, seen through its root. */
		char dirs[3][600];
		int nd = 0;
		if (environ_get(pid, "PMT_TOP_RUNTIME_DIR", dir, sizeof dir))
			snprintf(dirs[nd++], sizeof dirs[0], "%s", dir);
		if (environ_get(pid, "XDG_RUNTIME_DIR", dir, sizeof dir))
			snprintf(dirs[nd++], sizeof dirs[0], "%s/pmt-top", dir);
		snprintf(dirs[nd++], sizeof dirs[0], "/tmp/pmt-top-%ld", euid);
		for (int i = 0; i < nd; i++) {
			snprintf(cand, sizeof cand, "/proc/%d/root%s/%ld.sock", (int)pid, dirs[i], nspid);
			if (is_socket(cand) && strlen(cand) < 108) {
				snprintf(path, len, "%s", cand);
				return 0;
			}
		}
	}
	if (rc < 0)
		return -1;
	snprintf(path, len, "%s", own);
	return 0;
}
