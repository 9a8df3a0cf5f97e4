/*
 * main.c - pmt-top's entry point: parse the command line, dispatch.
 */
#include <stdio.h>

#include "cli.h"
#include "headless.h"
#include "attach/inject_dir.h"
#include "base/strsafe.h"
#include "tui/tui.h"

int main(int argc, char *argv[])
{
	struct cli_opts opts;
	char err[512];

	if (cli_parse(argc, argv, &opts, err, sizeof err) < 0) {
		strsafe_eprintf("pmt-top: %s", err);
		return CLI_EXIT_USAGE;
	}
	/* What a pmt-top killed with SIGKILL left in /tmp, before we add ours. */
	if (opts.mode != CLI_HELP && opts.mode != CLI_VERSION && opts.mode != CLI_DIFF && opts.mode != CLI_PS)
		inject_dir_sweep_tmp();
	switch (opts.mode) {
	case CLI_HELP:
		fputs(cli_help(), stdout);
		return CLI_EXIT_OK;
	case CLI_VERSION:
		printf("pmt-top %s\n", PMT_VERSION);
		return CLI_EXIT_OK;
	case CLI_WATCH:
	case CLI_RUN:
	case CLI_DEMO:
		return app_run(&opts);
	case CLI_SNAPSHOT:
		return headless_snapshot(&opts);
	case CLI_DIFF:
		return headless_diff(&opts);
	case CLI_FUNCTIONS:
		return headless_functions(&opts);
	case CLI_PROFILE:
		return headless_profile(&opts);
	case CLI_TRACE:
		return headless_trace(&opts);
	case CLI_PS:
		return headless_ps(&opts);
	case CLI_RSS:
		return headless_rss(&opts);
	case CLI_TRIM:
		return headless_trim(&opts);
	case CLI_TYPES:
		return headless_types(&opts);
	case CLI_WHY:
		return headless_why(&opts);
	}
	return CLI_EXIT_FAILURE;
}
