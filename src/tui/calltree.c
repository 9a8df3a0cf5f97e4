/*
 * calltree.c - the call tree's path (see calltree.h).
 */
#include "tui/calltree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

#define SEP " > "

static void fn_free(struct calltree_fn *f)
{
	free(f->file);
	free(f->function);
	f->file = f->function = NULL;
}

static void fn_set(struct calltree_fn *f, const char *file, const char *function, int first_line)
{
	f->file = xstrdup(file);
	f->function = xstrdup(function);
	f->first_line = first_line;
}

void calltree_init(struct calltree *t)
{
	memset(t, 0, sizeof *t);
}

void calltree_done(struct calltree *t)
{
	calltree_reset(t);
	fn_free(&t->back);
	t->has_back = false;
}

bool calltree_push(struct calltree *t, const char *file, const char *function, int first_line)
{
	if (t->depth >= CALLTREE_MAX_DEPTH)
		return false;
	fn_set(&t->path[t->depth++], file, function, first_line);
	fn_free(&t->back);
	t->has_back = false;
	return true;
}

bool calltree_pop(struct calltree *t)
{
	if (t->depth == 0)
		return false;
	fn_free(&t->back);
	t->back = t->path[--t->depth];
	memset(&t->path[t->depth], 0, sizeof t->path[t->depth]);
	t->has_back = true;
	return true;
}

void calltree_reset(struct calltree *t)
{
	while (t->depth > 0)
		fn_free(&t->path[--t->depth]);
}

cJSON *calltree_args(const struct calltree *t, int limit)
{
	cJSON *args = cJSON_CreateObject();
	cJSON *path = cJSON_AddArrayToObject(args, "path");
	if (args == NULL || path == NULL)
		xalloc_die(0);
	for (size_t i = 0; i < t->depth; i++) {
		cJSON *e = cJSON_CreateArray();
		if (e == NULL || !cJSON_AddItemToArray(path, e))
			xalloc_die(0);
		cJSON_AddItemToArray(e, cJSON_CreateString(t->path[i].file));
		cJSON_AddItemToArray(e, cJSON_CreateString(t->path[i].function));
		cJSON_AddItemToArray(e, cJSON_CreateNumber(t->path[i].first_line));
	}
	cJSON_AddNumberToObject(args, "limit", limit);
	return args;
}

bool calltree_is(const struct calltree_fn *f, const char *file, const char *function, int first_line)
{
	return f->file && f->first_line == first_line && strcmp(f->file, file) == 0 &&
	       strcmp(f->function, function) == 0;
}

bool calltree_matches(const struct calltree *t, const struct msg_profile_tree *r)
{
	if (r->npath != t->depth)
		return false;
	for (size_t i = 0; i < t->depth; i++)
		if (!calltree_is(&t->path[i], r->path[i].file, r->path[i].function, r->path[i].first_line))
			return false;
	return true;
}

/* Width of the innermost K names joined (with separators). */
static size_t tail_width(const struct calltree *t, size_t k)
{
	size_t w = 0;
	for (size_t i = t->depth - k; i < t->depth; i++)
		w += strlen(t->path[i].function) + (i + 1 < t->depth ? strlen(SEP) : 0);
	return w;
}

char *calltree_title(const struct calltree *t, char *buf, size_t len, int width)
{
	size_t w = width > 0 ? (size_t)width : 0, at = 0;
	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (t->depth == 0) {
		snprintf(buf, len, "%.*s", (int)w, "entry points");
		return buf;
	}
	size_t k = t->depth;
	if (tail_width(t, k) > w) {
		/* The entry point, "...", then what fits of the innermost. */
		size_t head = strlen(t->path[0].function) + strlen(SEP "..." SEP);
		for (k = t->depth - 1; k > 0 && head + tail_width(t, k) > w; k--)
			;
		if (k == 0) {
			/* Not even the innermost with the entry point: its end. */
			const char *last = t->path[t->depth - 1].function;
			size_t n = strlen(last);
			if (n <= w)
				snprintf(buf, len, "%s", last);
			else if (w > 3)
				snprintf(buf, len, "...%s", last + n - (w - 3));
			else
				snprintf(buf, len, "%.*s", (int)w, "...");
			return buf;
		}
		at = (size_t)snprintf(buf, len, "%s" SEP "..." SEP, t->path[0].function);
	}
	for (size_t i = t->depth - k; i < t->depth && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s", t->path[i].function,
				       i + 1 < t->depth ? SEP : "");
	return buf;
}
