/*
 * paths.h - where pmt-top's data files are: themes, the agent, the demo.
 *
 * Run from a build tree (the executable sits beside CMakeCache.txt, or one or
 * two levels below it), files come from the source tree and the build tree;
 * installed, from PREFIX/share/pmt-top relative to the executable (so a moved
 * prefix still works), else the configured data dir. PMT_TOP_DATA_DIR
 * overrides both. Results are computed once and are valid for the process's
 * life; not thread-safe on first call.
 */
#ifndef PMT_BASE_PATHS_H
#define PMT_BASE_PATHS_H

const char *paths_themes_dir(void);
const char *paths_agent_dir(void);   /* holds pmt_agent/ */
const char *paths_native_dir(void);  /* holds the agent's C extensions */
const char *paths_shim_dir(void);    /* holds the sitecustomize shim */
const char *paths_demo_script(void); /* the bundled demo workload */

#endif
