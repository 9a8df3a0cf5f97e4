/*
 * manpage_main.c - writes pmt-top.1 to stdout (run by the build).
 */
#include <stdio.h>

#include "tui/keys.h"

int main(void)
{
	binding_manpage(stdout, PMT_VERSION);
	return fflush(stdout) == 0 ? 0 : 1;
}
