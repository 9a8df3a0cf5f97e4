/*
 * whypanel.h - the "why alive" panel that Enter opens in the Types view:
 * the agent's `why` reply for one type, drawn over the view. First each
 * holder (the first object under a root that the sampled objects' chains go
 * through) with what it retains, then every chain on one line, root first,
 * and a footer with how many objects matched and what the search cost.
 *
 * The text is made once, when the reply comes (whypanel_set); drawing only
 * wraps and scrolls it. The text forms are pure functions, tested without
 * a terminal.
 */
#ifndef PMT_TUI_WHYPANEL_H
#define PMT_TUI_WHYPANEL_H

#include <stdbool.h>
#include <stddef.h>

#include "ipc/msg.h"
#include "tui/theme.h"

/* One line of the panel, before wrapping. */
struct whypanel_line {
	char *text;            /* owned */
	enum theme_role role;
	int indent;            /* cells; rows it wraps onto go 2 further in */
};

struct whypanel {
	bool open;
	bool loading;          /* waiting for the agent */
	bool ascii;            /* "->", "~", "..." instead of the Unicode signs */
	char *type;            /* what was asked (owned), NULL when closed for good */
	struct whypanel_line *lines;
	size_t nlines;
	char *footer;          /* pinned to the last row (owned), or NULL */
	int scroll;            /* rows scrolled away at the top */
	int scroll_max;        /* as far as the last draw could go */
	int page;              /* rows the last draw showed */
};

/* Open for objects of TYPE, waiting for the reply (whypanel_set or
 * whypanel_fail). ASCII: no Unicode arrows (--ascii, or no UTF-8). */
void whypanel_open(struct whypanel *p, const char *type, bool ascii);

/* The decoded reply (borrowed: the text is copied out). */
void whypanel_set(struct whypanel *p, const struct msg_why *w);

/* The request failed: MESSAGE, one sentence, is all the panel shows. */
void whypanel_fail(struct whypanel *p, const char *message);

/* Keys while open: arrows, j/k, PgUp/PgDn, Home/End scroll; Esc, q and Enter
 * close. Returns true when the key was used: every key but F10 (quit) and
 * the help keys while open, none while closed. */
bool whypanel_key(struct whypanel *p, int ch);

/* The panel over rows [top, top + rows) of a screen COLS wide. */
void whypanel_draw(struct whypanel *p, int top, int rows, int cols);

void whypanel_done(struct whypanel *p);

/*
 * The text forms (allocated; the caller frees them):
 *
 *   "7 of 8 samples: module app → global _CACHE (dict, 20,412 items, 1.1 MiB)
 *    retains ≈ 84.3 MiB in 61,236 objects (estimate)"
 *   "module app → global _CACHE (dict, 20,412 items) → value for key 'id-9'
 *    → app.Record 48 B"
 *   "thread worker-1, run(): local batch → list (3 items) → index 0 → ..."
 *   "app.Record 48 B: no referrer the gc can see (...)"
 *
 * With ASCII "->" and "~" stand for the arrow and the approximation sign.
 */
char *whypanel_holder_text(const struct msg_why_holder *h, size_t nchains, bool ascii);
char *whypanel_chain_text(const struct msg_why_chain *c, bool ascii);
/* "module app", "class app.Registry", "thread T, run(): local batch"; "" for none. */
char *whypanel_root_text(const struct msg_why_root *r);

#endif
