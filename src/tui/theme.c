/*
 * theme.c - theme files (JSON) to a semantic style table (see theme.h).
 */
#include "tui/theme.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/xalloc.h"

#define THEME_NAME_ROLE(e, s) s,
static const char *const role_names[] = { THEME_ROLE_LIST(THEME_NAME_ROLE) };

static const char *const colour_names[] = {
	"black", "red", "green", "yellow", "blue", "magenta", "cyan", "white",
};

/* Largest theme file we read: themes are a few KiB. */
#define THEME_MAX_FILE (256 * 1024)

const char *theme_role_name(enum theme_role r)
{
	return r < THEME_ROLE_COUNT ? role_names[r] : "?";
}

void theme_mono(struct theme *t)
{
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "mono");
	for (int i = 0; i < THEME_ROLE_COUNT; i++)
		t->style[i] = (struct theme_style){ -1, -1, 0 };
	t->style[THEME_TITLE].attrs = THEME_ATTR_BOLD;
	t->style[THEME_HEADER_VALUE].attrs = THEME_ATTR_BOLD;
	t->style[THEME_TAB_ACTIVE].attrs = THEME_ATTR_REVERSE;
	t->style[THEME_STATUS].attrs = THEME_ATTR_REVERSE;
	t->style[THEME_STATUS_ERROR].attrs = THEME_ATTR_REVERSE | THEME_ATTR_BOLD;
	t->style[THEME_WARNING].attrs = THEME_ATTR_BOLD;
	t->style[THEME_DIM].attrs = THEME_ATTR_DIM;
	t->style[THEME_GRAPH_HEAP].attrs = THEME_ATTR_BOLD;
	t->style[THEME_GRAPH_MARKER].attrs = THEME_ATTR_BOLD;
	t->style[THEME_TABLE_HEADER].attrs = THEME_ATTR_UNDERLINE | THEME_ATTR_BOLD;
	t->style[THEME_SELECTION].attrs = THEME_ATTR_REVERSE;
	t->style[THEME_GROWTH].attrs = THEME_ATTR_BOLD;
	t->style[THEME_HELP_KEY].attrs = THEME_ATTR_BOLD;
}

static int parse_colour(const cJSON *v, short *out, const char *where, char *err, size_t errlen)
{
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d != (double)(int)d || d < -1 || d > 255) {
			snprintf(err, errlen, "%s: colour numbers go from -1 (default) to 255", where);
			return -1;
		}
		*out = (short)d;
		return 0;
	}
	if (!cJSON_IsString(v)) {
		snprintf(err, errlen, "%s: a colour is a name or a number", where);
		return -1;
	}
	const char *s = v->valuestring;
	if (strcmp(s, "default") == 0) {
		*out = -1;
		return 0;
	}
	int bright = 0;
	if (strncmp(s, "bright-", 7) == 0) {
		bright = 8;
		s += 7;
	}
	for (int i = 0; i < 8; i++) {
		if (strcmp(s, colour_names[i]) == 0) {
			*out = (short)(i + bright);
			return 0;
		}
	}
	snprintf(err, errlen, "%s: unknown colour \"%s\"", where, v->valuestring);
	return -1;
}

static int parse_attrs(const cJSON *v, unsigned *out, const char *where, char *err, size_t errlen)
{
	static const struct { const char *name; unsigned bit; } attr[] = {
		{ "bold", THEME_ATTR_BOLD }, { "dim", THEME_ATTR_DIM },
		{ "reverse", THEME_ATTR_REVERSE }, { "underline", THEME_ATTR_UNDERLINE },
	};
	if (!cJSON_IsArray(v)) {
		snprintf(err, errlen, "%s: attrs must be a list such as [\"bold\"]", where);
		return -1;
	}
	*out = 0;
	const cJSON *a;
	cJSON_ArrayForEach(a, v) {
		size_t k;
		for (k = 0; k < sizeof attr / sizeof attr[0]; k++)
			if (cJSON_IsString(a) && strcmp(a->valuestring, attr[k].name) == 0)
				break;
		if (k == sizeof attr / sizeof attr[0]) {
			snprintf(err, errlen, "%s: unknown attribute (use bold, dim, reverse, underline)", where);
			return -1;
		}
		*out |= attr[k].bit;
	}
	return 0;
}

int theme_parse(const char *json, size_t len, struct theme *t, char *err, size_t errlen)
{
	int rc = -1;
	struct theme tmp;
	theme_mono(&tmp);
	cJSON *root = cJSON_ParseWithLength(json, len);
	if (root == NULL) {
		const char *at = cJSON_GetErrorPtr();
		long off = at && at >= json && at <= json + len ? (long)(at - json) : -1;
		snprintf(err, errlen, "not valid JSON (near byte %ld)", off);
		goto done;
	}
	if (!cJSON_IsObject(root)) {
		snprintf(err, errlen, "a theme is a JSON object with \"name\" and \"colors\"");
		goto done;
	}
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
	if (!cJSON_IsString(name) || name->valuestring[0] == '\0' ||
	    strlen(name->valuestring) >= sizeof tmp.name) {
		snprintf(err, errlen, "\"name\" must be a non-empty string under %zu bytes", sizeof tmp.name);
		goto done;
	}
	snprintf(tmp.name, sizeof tmp.name, "%s", name->valuestring);
	const cJSON *colors = cJSON_GetObjectItemCaseSensitive(root, "colors");
	if (!cJSON_IsObject(colors)) {
		snprintf(err, errlen, "\"colors\" must be an object mapping roles to styles");
		goto done;
	}
	const cJSON *item;
	cJSON_ArrayForEach(item, colors) {
		int r;
		for (r = 0; r < THEME_ROLE_COUNT; r++)
			if (strcmp(item->string, role_names[r]) == 0)
				break;
		if (r == THEME_ROLE_COUNT) {
			snprintf(err, errlen, "unknown role \"%s\"", item->string);
			goto done;
		}
		if (!cJSON_IsObject(item)) {
			snprintf(err, errlen, "%s: a style is an object {\"fg\", \"bg\", \"attrs\"}", item->string);
			goto done;
		}
		struct theme_style st = { -1, -1, 0 };
		const cJSON *v;
		cJSON_ArrayForEach(v, item) {
			int ok;
			if (strcmp(v->string, "fg") == 0)
				ok = parse_colour(v, &st.fg, item->string, err, errlen);
			else if (strcmp(v->string, "bg") == 0)
				ok = parse_colour(v, &st.bg, item->string, err, errlen);
			else if (strcmp(v->string, "attrs") == 0)
				ok = parse_attrs(v, &st.attrs, item->string, err, errlen);
			else {
				snprintf(err, errlen, "%s: unknown field \"%s\" (fg, bg, attrs)",
					 item->string, v->string);
				ok = -1;
			}
			if (ok < 0)
				goto done;
		}
		tmp.style[r] = st;
	}
	*t = tmp;
	rc = 0;
done:
	cJSON_Delete(root);
	return rc;
}

int theme_load(const char *dir, const char *name, struct theme *t, char *err, size_t errlen)
{
	char path[4096], why[256];
	int rc = -1;
	char *buf = NULL;
	if (name[0] == '\0' || strchr(name, '/') || name[0] == '.') {
		snprintf(err, errlen, "theme \"%s\": a theme name is a file name in %s without .json",
			 name, dir);
		return -1;
	}
	snprintf(path, sizeof path, "%s/%s.json", dir, name);
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		if (errno == ENOENT)
			snprintf(err, errlen, "no theme named \"%s\" (looked for %s)", name, path);
		else
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	buf = xmalloc(THEME_MAX_FILE + 1);
	size_t n = fread(buf, 1, THEME_MAX_FILE + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		goto done;
	}
	if (n > THEME_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %d KiB, not a theme", path, THEME_MAX_FILE / 1024);
		goto done;
	}
	if (theme_parse(buf, n, t, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto done;
	}
	rc = 0;
done:
	free(buf);
	fclose(f);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t theme_list(const char *dir, char ***names)
{
	*names = NULL;
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len <= 5 || e->d_name[0] == '.' || strcmp(e->d_name + len - 5, ".json") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			*names = xreallocarray(*names, cap, sizeof **names);
		}
		(*names)[n++] = xstrndup(e->d_name, len - 5);
	}
	closedir(d);
	if (n)
		qsort(*names, n, sizeof **names, cmp_str);
	return n;
}

void theme_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
