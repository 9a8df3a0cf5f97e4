/*
 * views.c - the views in tab order (number keys follow this order).
 */
#include "tui/view.h"

const struct view *const views[] = {
	&view_overview,
	&view_top,
	&view_functions,
	&view_types,
	&view_snapshots,
	&view_log,
	&view_processes,
};

const int views_count = sizeof views / sizeof views[0];
