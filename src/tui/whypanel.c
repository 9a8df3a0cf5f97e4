/*
 * whypanel.c - the "why alive" panel (see whypanel.h).
 */
#include "tui/whypanel.h"

#include <curses.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/units.h"
#include "base/xalloc.h"
#include "tui/screen.h"
#include "tui/textwrap.h"

#define MAX_WRAP 64 /* rows one line may take; a longer one is cut */

/* A string that grows (out of memory aborts, as xalloc does). */
struct text {
	char *s;
	size_t len, cap;
};

static void put(struct text *t, const char *s)
{
	size_t n = strlen(s);
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->s = xrealloc(t->s, t->cap);
	}
	memcpy(t->s + t->len, s, n + 1);
	t->len += n;
}

static void putf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct text *t, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof small) {
		put(t, small);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	put(t, big);
	free(big);
}

/* The text so far, never NULL; the builder is spent. */
static char *take(struct text *t)
{
	return t->s ? t->s : xstrdup("");
}

static const char *arrow(bool ascii)
{
	return ascii ? " -> " : " \u2192 ";
}

static void put_root(struct text *t, const struct msg_why_root *r)
{
	switch (r->kind) {
	case MSG_WHY_ROOT_NONE:
		break;
	case MSG_WHY_ROOT_MODULE:
		putf(t, "module %s", r->name);
		break;
	case MSG_WHY_ROOT_CLASS:
		putf(t, "class %s", r->name);
		break;
	case MSG_WHY_ROOT_LOCAL:
		putf(t, "thread %s, %s(): local %s", r->thread, r->function, r->name);
		break;
	}
}

char *whypanel_root_text(const struct msg_why_root *r)
{
	struct text t = { 0 };
	put_root(&t, r);
	return take(&t);
}

enum step_form {
	STEP_PASSING, /* "global _CACHE (dict, 20,000 items)" */
	STEP_HOLDER,  /* the same with its size: "(dict, 20,000 items, 405 KiB)" */
	STEP_SAMPLE,  /* the chain's end: "value for key 'id-981' → app.Record 48 B" */
};

/* How the object before refers to S, unless the root said it already (a
 * local variable's root names the variable). */
static const char *step_via(const struct msg_why_step *s, const struct msg_why_root *root)
{
	if (s->via == NULL || root == NULL || root->kind != MSG_WHY_ROOT_LOCAL)
		return s->via;
	static const char local[] = "local variable ";
	if (strncmp(s->via, local, sizeof local - 1) == 0 && strcmp(s->via + sizeof local - 1, root->name) == 0)
		return NULL;
	return s->via;
}

/* One object on a chain: how the one before refers to it, then what it is.
 * ROOT: the chain's root when S is its first step, else NULL. */
static void put_step(struct text *t, const struct msg_why_step *s, enum step_form form,
		     const struct msg_why_root *root, bool ascii)
{
	char n[32], b[32], items[48] = "";
	const char *via = step_via(s, root);
	if (s->has_len)
		snprintf(items, sizeof items, "%s item%s", units_count(n, sizeof n, (int64_t)s->len, false),
			 s->len == 1 ? "" : "s");
	units_bytes(b, sizeof b, (double)s->size);
	if (form == STEP_SAMPLE) {
		if (via) {
			put(t, via);
			put(t, arrow(ascii));
		}
		put(t, s->type);
		if (items[0])
			putf(t, " (%s)", items);
		putf(t, " %s", b);
		return;
	}
	bool open = via != NULL;
	if (open)
		putf(t, "%s (", via);
	put(t, s->type);
	const char *more[2] = { items[0] ? items : NULL, form == STEP_HOLDER ? b : NULL };
	for (int k = 0; k < 2; k++) {
		if (more[k] == NULL)
			continue;
		put(t, open ? ", " : " (");
		put(t, more[k]);
		open = true;
	}
	if (open)
		put(t, ")");
}

char *whypanel_holder_text(const struct msg_why_holder *h, size_t nchains, bool ascii)
{
	struct text t = { 0 };
	char n[32], b[32];
	putf(&t, "%s of %zu sample%s: ", units_count(n, sizeof n, (int64_t)h->samples, false), nchains,
	     nchains == 1 ? "" : "s");
	put_root(&t, &h->root);
	put(&t, arrow(ascii));
	put_step(&t, &h->holder, STEP_HOLDER, &h->root, ascii);
	if (!h->has_retained) {
		put(&t, "; what it retains was not measured (the search's budget ran out first)");
		return take(&t);
	}
	const struct msg_why_retained *r = &h->retained;
	putf(&t, " retains %s%s in %s object%s", r->estimate ? (ascii ? "~" : "\u2248 ") : "",
	     units_bytes(b, sizeof b, (double)r->bytes), units_count(n, sizeof n, (int64_t)r->objects, false),
	     r->objects == 1 ? "" : "s");
	if (r->estimate || r->truncated)
		putf(&t, " (%s%s%s)", r->estimate ? "estimate" : "", r->estimate && r->truncated ? ", " : "",
		     r->truncated ? "truncated: a lower bound" : "");
	return take(&t);
}

char *whypanel_chain_text(const struct msg_why_chain *c, bool ascii)
{
	struct text t = { 0 };
	bool rooted = c->root.kind != MSG_WHY_ROOT_NONE;
	if (rooted) {
		put_root(&t, &c->root);
		put(&t, arrow(ascii));
	}
	for (size_t k = 0; k < c->nsteps; k++) {
		if (k > 0)
			put(&t, arrow(ascii));
		put_step(&t, &c->steps[k], k + 1 == c->nsteps ? STEP_SAMPLE : STEP_PASSING,
			 k == 0 ? &c->root : NULL, ascii);
	}
	if (!rooted) {
		put(&t, ": ");
		put(&t, c->end && c->end[0] ? c->end : "no root found");
	}
	return take(&t);
}

static void add_line(struct whypanel *p, char *text, enum theme_role role, int indent)
{
	p->lines = xreallocarray(p->lines, p->nlines + 1, sizeof *p->lines);
	p->lines[p->nlines++] = (struct whypanel_line){ .text = text, .role = role, .indent = indent };
}

static void clear_text(struct whypanel *p)
{
	for (size_t i = 0; i < p->nlines; i++)
		free(p->lines[i].text);
	free(p->lines);
	p->lines = NULL;
	p->nlines = 0;
	free(p->footer);
	p->footer = NULL;
	p->scroll = p->scroll_max = 0;
}

void whypanel_open(struct whypanel *p, const char *type, bool ascii)
{
	whypanel_done(p);
	p->open = true;
	p->loading = true;
	p->ascii = ascii;
	p->type = xstrdup(type);
}

/* "50 ms", or "12.3 s" from 10 s on. */
static void fmt_took(char *buf, size_t len, double seconds)
{
	if (seconds < 10)
		snprintf(buf, len, "%.0f ms", seconds * 1000);
	else
		snprintf(buf, len, "%.1f s", seconds);
}

void whypanel_set(struct whypanel *p, const struct msg_why *w)
{
	char n[32], d1[32], d2[32];
	clear_text(p);
	p->loading = false;
	for (size_t i = 0; i < w->nholders; i++)
		add_line(p, whypanel_holder_text(&w->holders[i], w->nchains, p->ascii), THEME_TITLE, 0);
	if (w->nchains > 0 && w->nholders == 0)
		add_line(p, xstrdup("no holder: no sample is reachable from a module, a class or a thread's locals"),
			 THEME_WARNING, 0);
	if (w->nchains > 0)
		add_line(p, xasprintf("chain%s, root first:", w->nchains == 1 ? "" : "s"), THEME_HEADER_LABEL, 0);
	for (size_t i = 0; i < w->nchains; i++)
		add_line(p, whypanel_chain_text(&w->chains[i], p->ascii),
			 w->chains[i].root.kind == MSG_WHY_ROOT_NONE ? THEME_DIM : THEME_NORMAL, 2);
	fmt_took(d1, sizeof d1, w->seconds);
	fmt_took(d2, sizeof d2, w->pause_max);
	if (w->matched == 0) {
		add_line(p, xasprintf("no object of type %s among those the gc tracks (named as the Types view "
				      "names it)", p->type), THEME_WARNING, 0);
		p->footer = xasprintf("0 objects matched; walk took %s, longest pause %s", d1, d2);
	} else {
		p->footer = xasprintf("%s object%s matched, %zu followed; walk took %s, longest pause %s",
				      units_count(n, sizeof n, (int64_t)w->matched, false), w->matched == 1 ? "" : "s",
				      w->nchains, d1, d2);
	}
}

void whypanel_fail(struct whypanel *p, const char *message)
{
	clear_text(p);
	p->loading = false;
	add_line(p, xstrdup(message), THEME_WARNING, 0);
}

bool whypanel_key(struct whypanel *p, int ch)
{
	if (!p->open)
		return false;
	int page = p->page > 1 ? p->page - 1 : 1;
	switch (ch) {
	case KEY_F(10): case '?': case KEY_F(1):
		return false; /* quit and help work over the panel */
	case KEY_UP: case 'k': p->scroll--; break;
	case KEY_DOWN: case 'j': p->scroll++; break;
	case KEY_PPAGE: p->scroll -= page; break;
	case KEY_NPAGE: case ' ': p->scroll += page; break;
	case KEY_HOME: p->scroll = 0; break;
	case KEY_END: p->scroll = p->scroll_max; break;
	case 27: case 'q': case '\r': case '\n': case KEY_ENTER:
		p->open = false;
		break;
	default:
		break;
	}
	if (p->scroll > p->scroll_max)
		p->scroll = p->scroll_max;
	if (p->scroll < 0)
		p->scroll = 0;
	return true;
}

/* The rows LINE takes at width W. */
static int line_rows(const struct whypanel_line *l, int w)
{
	size_t n = textwrap(l->text, w - l->indent - 2, screen_cp_width, NULL, 0);
	if (n < 1)
		return 1;
	return n > MAX_WRAP ? MAX_WRAP : (int)n;
}

/* Draws LINE's rows from row Y of the body on, those in [y0, ymax) only. */
static void draw_line(const struct whypanel_line *l, int y, int x, int w, int y0, int ymax)
{
	struct textwrap_row r[MAX_WRAP];
	size_t n = textwrap(l->text, w - l->indent - 2, screen_cp_width, r, MAX_WRAP);
	if (n > MAX_WRAP)
		n = MAX_WRAP;
	for (size_t i = 0; i < n; i++) {
		int row = y + (int)i;
		int ind = l->indent + (i > 0 ? 2 : 0);
		if (row >= y0 && row < ymax)
			screen_textn(row, x + ind, w - ind, l->role, false, l->text + r[i].start, r[i].len);
	}
}

void whypanel_draw(struct whypanel *p, int top, int rows, int cols)
{
	int w = cols - 4, x = 2, y = top + 1, h = rows - 2;
	if (!p->open || w < 20 || h < 4)
		return;
	for (int r = 0; r < h; r++)
		screen_fill(y + r, x, w, THEME_NORMAL);
	screen_fill(y, x, w, THEME_TABLE_HEADER);
	screen_textf(y, x + 1, w - 2, THEME_TABLE_HEADER, "who holds %s  (shortest chains from a root; arrows "
		     "scroll, Esc closes)", p->type ? p->type : "");
	int body = y + 1, ymax = y + h - (p->footer ? 1 : 0);
	if (p->loading) {
		screen_textf(body, x + 1, w - 2, THEME_DIM, "asking the agent who holds %s%s", p->type ? p->type : "",
			     p->ascii ? "..." : "\u2026");
		p->scroll_max = 0;
		return;
	}
	int total = 0;
	for (size_t i = 0; i < p->nlines; i++)
		total += line_rows(&p->lines[i], w - 1);
	p->page = ymax - body;
	p->scroll_max = total > p->page ? total - p->page : 0;
	if (p->scroll > p->scroll_max)
		p->scroll = p->scroll_max;
	int row = body - p->scroll;
	for (size_t i = 0; i < p->nlines && row < ymax; i++) {
		int n = line_rows(&p->lines[i], w - 1);
		if (row + n > body)
			draw_line(&p->lines[i], row, x + 1, w - 1, body, ymax);
		row += n;
	}
	if (p->footer)
		screen_text(y + h - 1, x + 1, w - 2, THEME_DIM, false, p->footer);
	if (p->scroll < p->scroll_max) {
		char more[48];
		snprintf(more, sizeof more, " %d more rows below (Down, PgDn) ", p->scroll_max - p->scroll);
		int mw = (int)strlen(more);
		if (mw < w - 2)
			screen_text(y, x + w - mw - 1, mw, THEME_TABLE_HEADER, true, more);
	}
}

void whypanel_done(struct whypanel *p)
{
	clear_text(p);
	free(p->type);
	memset(p, 0, sizeof *p);
}
