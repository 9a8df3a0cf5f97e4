/*
 * listnav.c - list selection and scrolling (see listnav.h).
 */
#include "tui/listnav.h"

#include <curses.h>

bool listnav_key(struct listnav *ln, int ch, int n, int page)
{
	if (page < 1)
		page = 1;
	switch (ch) {
	case KEY_UP: case 'k': ln->sel--; break;
	case KEY_DOWN: case 'j': ln->sel++; break;
	case KEY_PPAGE: ln->sel -= page; break;
	case KEY_NPAGE: ln->sel += page; break;
	case KEY_HOME: ln->sel = 0; break;
	case KEY_END: ln->sel = n - 1; break;
	default: return false;
	}
	if (ln->sel >= n)
		ln->sel = n - 1;
	if (ln->sel < 0)
		ln->sel = 0;
	return true;
}

void listnav_fit(struct listnav *ln, int n, int rows)
{
	if (ln->sel >= n)
		ln->sel = n - 1;
	if (ln->sel < 0)
		ln->sel = 0;
	if (rows < 1)
		rows = 1;
	if (ln->sel < ln->top)
		ln->top = ln->sel;
	if (ln->sel >= ln->top + rows)
		ln->top = ln->sel - rows + 1;
	if (ln->top > n - rows)
		ln->top = n - rows;
	if (ln->top < 0)
		ln->top = 0;
}
