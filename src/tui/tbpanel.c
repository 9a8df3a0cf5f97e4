/*
 * tbpanel.c - traceback panel (see tbpanel.h).
 */
#include "tui/tbpanel.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

#include "base/units.h"
#include "tui/location.h"
#include "tui/screen.h"

/* Free the source lines read for the current matches. */
static void free_lines(struct tbpanel *p)
{
	for (size_t k = 0; k < TBPANEL_MAX; k++) {
		if (p->src[k] == NULL)
			continue;
		for (uint32_t i = 0; p->snap && k < p->n && i < p->snap->groups[p->match[k]].nframes; i++)
			free(p->src[k][i]);
		free(p->src[k]);
		p->src[k] = NULL;
	}
}

void tbpanel_open(struct tbpanel *p, pid_t pid, const char *file, unsigned line)
{
	tbpanel_done(p);
	p->pid = pid;
	p->open = true;
	p->loading = true;
	snprintf(p->file, sizeof p->file, "%s", file);
	p->line = line;
}

void tbpanel_set(struct tbpanel *p, struct snapshot *tb, const char *note)
{
	p->loading = false;
	free_lines(p);
	snapshot_free(p->snap);
	p->snap = tb;
	p->n = 0;
	snprintf(p->note, sizeof p->note, "%s", note ? note : "");
	if (tb == NULL)
		return;
	snapshot_sort(tb);
	for (size_t i = 0; i < tb->ngroups && p->n < TBPANEL_MAX; i++) {
		const struct snapshot_frame *f = &tb->groups[i].frames[0];
		if (strcmp(f->filename, p->file) == 0 && (p->line == 0 || f->lineno == p->line))
			p->match[p->n++] = i;
	}
	for (size_t k = 0; k < p->n; k++) {
		const struct snapshot_group *g = &tb->groups[p->match[k]];
		p->src[k] = xcalloc(g->nframes, sizeof *p->src[k]);
		for (uint32_t i = 0; i < g->nframes; i++) {
			char line[512];
			if (i == 0 && g->line[0])
				snprintf(line, sizeof line, "%s", g->line);
			else
				location_source_line(p->pid, g->frames[i].filename, g->frames[i].lineno,
						     line, sizeof line);
			p->src[k][i] = xstrdup(line);
		}
	}
	if (p->n == 0 && p->note[0] == '\0')
		snprintf(p->note, sizeof p->note, "no traceback recorded for this place");
	else if (tb->nframe == 1 && p->note[0] == '\0')
		snprintf(p->note, sizeof p->note,
			 "tracemalloc keeps 1 frame: restart it with more frames (T) to see the callers");
}

bool tbpanel_key(struct tbpanel *p, int ch)
{
	if (!p->open)
		return false;
	if (ch == 27 || ch == 'q' || ch == '\r' || ch == '\n' || ch == KEY_ENTER)
		p->open = false;
	return true;
}

void tbpanel_draw(const struct tbpanel *p, int top, int rows, int cols)
{
	int w = cols - 4, x = 2, y = top + 1, h = rows - 2;
	if (!p->open || w < 10 || h < 3)
		return;
	for (int r = 0; r < h; r++)
		screen_fill(y + r, x, w, THEME_NORMAL);
	screen_fill(y, x, w, THEME_TABLE_HEADER);
	char title[1200];
	if (p->line)
		snprintf(title, sizeof title, "tracebacks of %s:%u  (most recent call first; Esc closes)", p->file, p->line);
	else
		snprintf(title, sizeof title, "tracebacks into %s  (most recent call first; Esc closes)", p->file);
	screen_text(y, x + 1, w - 2, THEME_TABLE_HEADER, false, title);
	int row = y + 1, ymax = y + h;
	if (p->loading) {
		screen_text(row, x + 1, w - 2, THEME_DIM, false, "asking the agent...");
		return;
	}
	if (p->note[0])
		row += screen_wrap(row, x + 1, w - 2, 3, THEME_WARNING, p->note, "...");
	for (size_t k = 0; k < p->n && row < ymax; k++) {
		const struct snapshot_group *g = &p->snap->groups[p->match[k]];
		char sz[32];
		screen_textf(row++, x + 1, w - 2, THEME_TITLE, "%s in %llu blocks:",
			     units_bytes(sz, sizeof sz, (double)g->size), (unsigned long long)g->count);
		for (uint32_t i = 0; i < g->nframes && row < ymax; i++) {
			const struct snapshot_frame *f = &g->frames[i];
			const char *src = p->src[k][i];
			int used = screen_textf(row, x + 3, w - 4, THEME_HEADER_LABEL, "%s:%u", f->filename, f->lineno);
			if (src[0] && 5 + used < w)
				screen_text(row, x + 5 + used, w - used - 6, THEME_DIM, false, src);
			row++;
		}
	}
}

void tbpanel_done(struct tbpanel *p)
{
	free_lines(p);
	snapshot_free(p->snap);
	memset(p, 0, sizeof *p);
}
