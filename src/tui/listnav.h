/*
 * listnav.h - selection and scrolling for the list views (pure state).
 */
#ifndef PMT_TUI_LISTNAV_H
#define PMT_TUI_LISTNAV_H

#include <stdbool.h>

struct listnav {
	int sel;  /* selected row, 0..n-1 (0 when empty) */
	int top;  /* first row shown */
};

/* Arrow keys, j/k, PgUp/PgDn, Home/End. Returns true when the key moved. */
bool listnav_key(struct listnav *ln, int ch, int n, int page);

/* Clamp to n rows and scroll so that sel is visible in `rows` rows. */
void listnav_fit(struct listnav *ln, int n, int rows);

#endif
