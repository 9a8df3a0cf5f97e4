/*
 * textwrap.c - break a message into rows at spaces (see textwrap.h).
 */
#include "tui/textwrap.h"

#include <stdbool.h>
#include <string.h>

#include "base/strsafe.h"

static int cells(textwrap_width_fn cell_width, uint32_t cp)
{
	int w = cell_width ? cell_width(cp) : 1;
	return w == 2 ? 2 : 1;
}

size_t textwrap(const char *text, int width, textwrap_width_fn cell_width, struct textwrap_row *rows,
		size_t max)
{
	size_t n = strlen(text), i = 0, count = 0;
	if (width < 1)
		width = 1;
	for (;;) {
		while (i < n && text[i] == ' ')
			i++;
		if (i == n)
			return count;
		size_t start = i, end = n, brk = 0;
		bool have_brk = false;
		int used = 0;
		while (i < n) {
			size_t len;
			uint32_t cp = strsafe_decode(text + i, n - i, &len);
			int w = cells(cell_width, cp);
			if (cp == ' ') {
				brk = i; /* the row may end here: it has something before */
				have_brk = true;
			}
			if (used + w > width) {
				if (have_brk)
					end = i = brk;
				else if (i == start) /* wider than the row itself: alone */
					end = i += len;
				else
					end = i; /* a word longer than the row: split it */
				break;
			}
			used += w;
			i += len;
		}
		while (end > start && text[end - 1] == ' ')
			end--;
		if (count < max)
			rows[count] = (struct textwrap_row){ start, end - start };
		count++;
	}
}
