/*
 * agent_sock.c - find the agent's socket of a process (see agent_sock.h).
 */
#include "attach/agent_sock.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach/pyproc.h"
#include "ipc/sock.h"

/* Entries of the target's /tmp looked at for fallback directories, at most. */
#define MAX_TMP_ENTRIES 100000

static bool is_socket(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/*
 * True when PATH is a socket in a directory that only UID (or root) may
 * write, owned likewise: the only places the agent of a process of UID can
 * be. Anything else (a squatted /tmp/pmt-top-<uid> above all) is passed
 * over, so that the real agent, in its fallback directory, is found.
 * sock_connect checks the same again on the descriptor it connects through.
 */
static bool trusted_socket(const char *path, long uid, char *why, size_t whylen)
{
	struct stat st;
	char dir[2048];
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path || (size_t)(slash - path) >= sizeof dir)
		return false;
	snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	if (lstat(path, &st) != 0)
		return false; /* nothing there: not worth a word */
	bool sock = S_ISSOCK(st.st_mode), owner = st.st_uid == (uid_t)uid || st.st_uid == 0;
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 022) ||
	    (st.st_uid != (uid_t)uid && st.st_uid != 0)) {
		if (why && !why[0])
			snprintf(why, whylen, "refused %s: its directory is %s", path,
				 !S_ISDIR(st.st_mode) ? "a symbolic link or not a directory"
				 : (st.st_mode & 022) ? "writable by others"
						      : "owned by another user");
		return false;
	}
	if (!sock || !owner) {
		if (why && !why[0])
			snprintf(why, whylen, "refused %s: it is %s", path,
				 !sock ? "not a socket" : "owned by another user");
		return false;
	}
	return true;
}

/*
 * The agent's fallback when /tmp/pmt-top-<uid> is taken by someone else:
 * /tmp/pmt-top-<uid>.<random>, private to uid (see pmt_agent/rundir.py).
 * Looks for one that holds NSPID's socket; 0 and PATH filled if found.
 */
static int find_fallback(pid_t pid, long nspid, long euid, char *path, size_t len, char *why, size_t whylen)
{
	char tmp[64], prefix[48], cand[2048];
	snprintf(tmp, sizeof tmp, "/proc/%d/root/tmp", (int)pid);
	snprintf(prefix, sizeof prefix, "pmt-top-%ld.", euid);
	DIR *d = opendir(tmp);
	if (!d)
		return -1;
	int found = -1, seen = 0;
	struct dirent *e;
	while (found < 0 && seen++ < MAX_TMP_ENTRIES && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(cand, sizeof cand, "%s/%s/%ld.sock", tmp, e->d_name, nspid);
		if (strlen(cand) < 108 && trusted_socket(cand, euid, why, whylen)) {
			snprintf(path, len, "%s", cand);
			found = 0;
		}
	}
	closedir(d);
	return found;
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
			/* The target chose this: an absolute path that stays under
			 * /proc/PID/root, or nothing. */
			size_t ol = strlen(out);
			if (out[0] != '/' || strstr(out, "/../") ||
			    (ol >= 3 && strcmp(out + ol - 3, "/..") == 0))
				return false;
			return true;
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
	char own[512], dir[512], cand[2048], why[1200] = "", looked[1400];
	long nspid, euid;
	int rc = sock_path_for_pid(pid, false, own, sizeof own, err, errlen);
	bool ids = target_ids(pid, &nspid, &euid);
	if (rc == 0 && is_socket(own) && (!ids || trusted_socket(own, euid, why, sizeof why))) {
		snprintf(path, len, "%s", own);
		return 0;
	}
	if (!ids) {
		if (rc < 0)
			return -1;
		snprintf(path, len, "%s", own); /* errors then name the usual place */
		return 0;
	}
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
		if (strlen(cand) < 108 && trusted_socket(cand, euid, why, sizeof why)) {
			snprintf(path, len, "%s", cand);
			return 0;
		}
	}
	if (find_fallback(pid, nspid, euid, path, len, why, sizeof why) == 0)
		return 0;
	/* Say where we looked, and what was refused and why. */
	snprintf(looked, sizeof looked, "%.600s/%ld.sock", dirs[nd - 1], nspid);
	if (why[0])
		snprintf(err, errlen, "no agent socket for pid %d that it alone could have made (%s)", (int)pid,
			 why);
	else
		snprintf(err, errlen, "no agent is listening for pid %d (no socket at %s nor in its other "
			 "runtime directories)", (int)pid, looked);
	return -1;
}
