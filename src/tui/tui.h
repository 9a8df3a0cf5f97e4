/*
 * tui.h - the interactive front end, as the rest of pmt-top sees it: one
 * entry point. Everything else of src/tui stays inside src/tui.
 */
#ifndef PMT_TUI_TUI_H
#define PMT_TUI_TUI_H

#include "cli.h"

/* Run the interactive session for opts (CLI_WATCH, CLI_RUN, CLI_DEMO).
 * Returns a process exit code (cli.h); prints a one-line reason on failure
 * after the terminal is restored. */
int app_run(const struct cli_opts *opts);

#endif
