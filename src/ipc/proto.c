/*
 * proto.c - wire names <-> enums for the lists in proto.h.
 *
 * The tables are generated from the X-lists, so proto.h stays the only place
 * where a name is spelled.
 */
#include "ipc/proto.h"

#include <stddef.h>
#include <string.h>

#define PROTO_NAME(e, s) s,
static const char *const cmd_names[] = { PROTO_CMD_LIST(PROTO_NAME) };
static const char *const push_names[] = { PROTO_PUSH_LIST(PROTO_NAME) };
static const char *const err_names[] = { PROTO_ERR_LIST(PROTO_NAME) };
static const char *const key_names[] = { PROTO_KEY_LIST(PROTO_NAME) };
#undef PROTO_NAME

_Static_assert(sizeof cmd_names / sizeof cmd_names[0] == PROTO_CMD_COUNT, "cmd table");
_Static_assert(sizeof push_names / sizeof push_names[0] == PROTO_PUSH_COUNT, "push table");
_Static_assert(sizeof err_names / sizeof err_names[0] == PROTO_ERR_COUNT, "err table");
_Static_assert(sizeof key_names / sizeof key_names[0] == PROTO_KEY_COUNT, "key table");

static const char *name_of(const char *const *table, int count, int value)
{
	if (value < 0 || value >= count)
		return NULL;
	return table[value];
}

static int lookup(const char *const *table, int count, const char *name)
{
	if (name == NULL)
		return -1;
	for (int i = 0; i < count; i++)
		if (strcmp(table[i], name) == 0)
			return i;
	return -1;
}

const char *proto_cmd_name(enum proto_cmd cmd)
{
	return name_of(cmd_names, PROTO_CMD_COUNT, (int)cmd);
}

int proto_cmd_from_name(const char *name)
{
	return lookup(cmd_names, PROTO_CMD_COUNT, name);
}

const char *proto_push_name(enum proto_push push)
{
	return name_of(push_names, PROTO_PUSH_COUNT, (int)push);
}

int proto_push_from_name(const char *name)
{
	return lookup(push_names, PROTO_PUSH_COUNT, name);
}

const char *proto_err_name(enum proto_err err)
{
	return name_of(err_names, PROTO_ERR_COUNT, (int)err);
}

int proto_err_from_name(const char *name)
{
	return lookup(err_names, PROTO_ERR_COUNT, name);
}

const char *proto_key_name(enum proto_key key)
{
	return name_of(key_names, PROTO_KEY_COUNT, (int)key);
}

int proto_key_from_name(const char *name)
{
	return lookup(key_names, PROTO_KEY_COUNT, name);
}
