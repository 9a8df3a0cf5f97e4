/*
 * keys.h - key bindings as data (tmux's bind -N, htop's key tables).
 *
 * Each view, and the app for the global keys, has one table of bindings:
 * the key dispatch, the help overlay, the hint bar and the man page
 * (pmt-top.1) are all made from these tables, so they cannot drift apart.
 */
#ifndef PMT_TUI_KEYS_H
#define PMT_TUI_KEYS_H

#include <stddef.h>
#include <stdio.h>

struct app;

#define BINDING_MAX_CODES 10

struct binding {
	const char *keys;  /* as people read them: "q F10", "Enter d"; NULL ends a table */
	const char *help;  /* what it does, one line */
	const char *hint;  /* a few words for the hint bar, or NULL */
	/* Runs it; returns VIEW_KEY_* flags. NULL: a line of help only (what a
	 * column means, keys a helper such as listnav handles). */
	int (*run)(struct app *app, int ch);
	int codes[BINDING_MAX_CODES]; /* the key codes that run it; 0 ends the list */
};

/* Runs the binding of CH in TABLE: its flags, or VIEW_KEY_IGNORED. A run
 * that returns VIEW_KEY_IGNORED (the view is in a mode where it does not
 * apply) lets a later binding of the same key have it. */
int binding_dispatch(const struct binding *table, struct app *app, int ch);

/* "q quit  ? help  Tab views" from the hints of TABLE, into BUF. */
void binding_hints(const struct binding *table, char *buf, size_t len);

/* Number of entries in TABLE (NULL: 0). */
size_t binding_count(const struct binding *table);

/* The man page, roff, from the global table and every view's (manpage.c). */
void binding_manpage(FILE *out, const char *version);

#endif
