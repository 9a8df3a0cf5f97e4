/*
 * keys.c - dispatch and hints from key binding tables (see keys.h).
 */
#include "tui/keys.h"

#include <string.h>

#include "tui/view.h"

int binding_dispatch(const struct binding *table, struct app *app, int ch)
{
	for (const struct binding *b = table; b && b->keys; b++) {
		if (!b->run)
			continue;
		for (int i = 0; i < BINDING_MAX_CODES && b->codes[i]; i++) {
			if (b->codes[i] != ch)
				continue;
			/* A binding of another mode of the view passes. */
			int r = b->run(app, ch);
			if (r != VIEW_KEY_IGNORED)
				return r;
			break;
		}
	}
	return VIEW_KEY_IGNORED;
}

void binding_hints(const struct binding *table, char *buf, size_t len)
{
	size_t n = 0;
	if (len == 0)
		return;
	buf[0] = '\0';
	for (const struct binding *b = table; b && b->keys; b++) {
		if (!b->hint)
			continue;
		int w = snprintf(buf + n, len - n, "%s%s", n ? "  " : "", b->hint);
		if (w < 0 || (size_t)w >= len - n) {
			buf[n] = '\0'; /* whole hints only */
			return;
		}
		n += (size_t)w;
	}
}

size_t binding_count(const struct binding *table)
{
	size_t n = 0;
	while (table && table[n].keys)
		n++;
	return n;
}
