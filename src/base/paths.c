/*
 * paths.c - data file locations for build tree and install (see paths.h).
 */
#include "base/paths.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool resolved;
static char themes[PATH_MAX], agent[PATH_MAX], native[PATH_MAX], shim[PATH_MAX], demo[PATH_MAX];

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* True when the running executable lives in (or just below) this build tree. */
static bool in_build_tree(void)
{
	char exe[PATH_MAX], probe[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash == NULL)
		return false;
	*slash = '\0';
	for (int up = 0; up < 3; up++) {
		snprintf(probe, sizeof probe, "%s/CMakeCache.txt", exe);
		if (exists(probe)) {
			char *real = realpath(exe, NULL), *build = realpath(PMT_BUILD_DIR, NULL);
			bool same = real && build && strcmp(real, build) == 0;
			free(real);
			free(build);
			return same;
		}
		slash = strrchr(exe, '/');
		if (slash == NULL || slash == exe)
			return false;
		*slash = '\0';
	}
	return false;
}

static void set_share(const char *share)
{
	snprintf(themes, sizeof themes, "%s/themes", share);
	snprintf(agent, sizeof agent, "%s/agent", share);
	snprintf(native, sizeof native, "%s/agent-native", share);
	snprintf(shim, sizeof shim, "%s/agent/shim", share);
	snprintf(demo, sizeof demo, "%s/demo/workload.py", share);
}

static void resolve(void)
{
	if (resolved)
		return;
	resolved = true;
	const char *env = getenv("PMT_TOP_DATA_DIR");
	if (env && *env) {
		set_share(env);
		return;
	}
	if (in_build_tree()) {
		snprintf(themes, sizeof themes, "%s/themes", PMT_SOURCE_DIR);
		snprintf(agent, sizeof agent, "%s/agent", PMT_SOURCE_DIR);
		snprintf(native, sizeof native, "%s/agent-native", PMT_BUILD_DIR);
		snprintf(shim, sizeof shim, "%s/agent/shim", PMT_SOURCE_DIR);
		snprintf(demo, sizeof demo, "%s/demo/workload.py", PMT_SOURCE_DIR);
		return;
	}
	char exe[PATH_MAX], share[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(share, sizeof share, "%s/../share/pmt-top", exe);
			if (exists(share)) {
				char *real = realpath(share, NULL);
				set_share(real ? real : share);
				free(real);
				return;
			}
		}
	}
	set_share(PMT_DATA_DIR);
}

const char *paths_themes_dir(void) { resolve(); return themes; }
const char *paths_agent_dir(void) { resolve(); return agent; }
const char *paths_native_dir(void) { resolve(); return native; }
const char *paths_shim_dir(void) { resolve(); return shim; }
const char *paths_demo_script(void) { resolve(); return demo; }
