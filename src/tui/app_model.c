/*
 * app_model.c - small services of the model that views and the agent link
 * use: the status line and the graph's time base. Nothing here calls a view
 * or the main loop, so that views depend on the model and never on app.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/monotime.h"
#include "base/xalloc.h"
#include "tui/app.h"
#include "tui/view.h"

void app_status(struct app *app, bool error, const char *fmt, ...)
{
	char small[512], *text = small;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof small) { /* all of it: the status line wraps */
		text = xmalloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(text, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	msglog_add(&app->msgs, error, text, time(NULL));
	if (text != small)
		free(text);
	app->status_error = error;
	app->status_t = monotime_now();
	app->dirty = true;
}

double app_graph_end(const struct app *app)
{
	if (app->paused)
		return app->pause_t;
	if (app->gone)
		return app->gone_t;
	return monotime_now();
}

void *app_view_state(const struct app *app, const struct view *v)
{
	for (int i = 0; i < views_count; i++)
		if (views[i] == v)
			return app->view_state[i];
	return NULL;
}
