/*
 * manpage.c - pmt-top.1 from the command-line help and the key tables, so
 * that the manual lists exactly the keys the program has (see keys.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tui/keys.h"
#include "tui/view.h"

/* Text safe for roff: backslashes escaped, a leading dot or quote kept
 * literal, hyphens as minus signs where roff would hyphenate options. */
static void roff(FILE *out, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", out);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else
			fputc(*s, out);
	}
}

static void keys_section(FILE *out, const struct binding *t)
{
	for (; t && t->keys; t++) {
		if (!t->help)
			continue;
		fputs(".TP\n.B ", out);
		roff(out, t->keys);
		fputc('\n', out);
		roff(out, t->help);
		fputc('\n', out);
	}
}

void binding_manpage(FILE *out, const char *version)
{
	fputs(".TH PMT\\-TOP 1 \"\" \"pmt-top ", out);
	roff(out, version);
	fputs("\" \"User Commands\"\n"
	      ".SH NAME\n"
	      "pmt\\-top \\- the live memory of a running Python process, in a terminal\n"
	      ".SH SYNOPSIS\n.nf\n", out);
	/* The usage and options are the --help text itself. */
	const char *help = cli_help();
	for (const char *line = help; *line;) {
		size_t n = strcspn(line, "\n");
		char buf[512];
		snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf ? n : sizeof buf - 1), line);
		roff(out, buf);
		fputc('\n', out);
		line += n;
		if (*line)
			line++;
	}
	fputs(".fi\n"
	      ".SH DESCRIPTION\n"
	      "pmt\\-top attaches to a running CPython 3.8\\(en3.14 process (loading a small agent into it\n"
	      "when none answers), graphs its RSS, and shows which lines and functions own its Python\n"
	      "heap and what changed between two moments. The headless commands print the same\n"
	      "as tables or JSON.\n"
	      ".SH KEYS\n"
	      "In every view:\n", out);
	keys_section(out, app_keys);
	for (int i = 0; i < views_count; i++) {
		fputs(".SS \"", out);
		roff(out, views[i]->name);
		fputs(" view\"\n", out);
		keys_section(out, views[i]->keys);
	}
	fputs(".SH FILES\n"
	      "Agent sockets live in $PMT_TOP_RUNTIME_DIR, else $XDG_RUNTIME_DIR/pmt\\-top, else\n"
	      "/tmp/pmt\\-top\\-UID (see docs/security.md for the checks made on them).\n"
	      ".SH SEE ALSO\n"
	      ".BR top (1),\n"
	      ".BR htop (1)\n", out);
}
