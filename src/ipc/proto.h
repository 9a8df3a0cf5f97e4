/*
 * proto.h - the pmt-top <-> pmt_agent protocol: version, limits, names.
 *
 * The single source of truth for the wire protocol described in
 * docs/protocol.md. The Python agent mirrors these lists in pmt_agent/proto.py
 * and a test compares the two files, so change both together.
 */
#ifndef PMT_IPC_PROTO_H
#define PMT_IPC_PROTO_H

#define PROTO_VERSION 1

/* Frame size limits, in bytes, including the terminating newline. */
#define PROTO_MAX_REQUEST (64 * 1024)
#define PROTO_MAX_REPLY (256 * 1024 * 1024)

/* Commands a client may send: X(ENUM_SUFFIX, "wire name"). */
#define PROTO_CMD_LIST(X)                        \
	X(HELLO, "hello")                        \
	X(STATUS, "status")                      \
	X(SUBSCRIBE, "subscribe")                \
	X(TRACEMALLOC_START, "tracemalloc_start") \
	X(TRACEMALLOC_STOP, "tracemalloc_stop")  \
	X(RESET_PEAK, "reset_peak")              \
	X(TOP, "top")                            \
	X(SNAPSHOT, "snapshot")                  \
	X(FUNCTIONS_START, "functions_start")    \
	X(FUNCTIONS_STOP, "functions_stop")      \
	X(FUNCTIONS, "functions")                \
	X(FUNCTIONS_RESET, "functions_reset")    \
	X(PROFILE_START, "profile_start")        \
	X(PROFILE_STOP, "profile_stop")          \
	X(PROFILE, "profile")                    \
	X(PROFILE_TREE, "profile_tree")          \
	X(TRIM, "trim")                          \
	X(TYPES, "types")                        \
	X(WHY, "why")                            \
	X(DETACH, "detach")

/* Unsolicited messages from the agent. */
#define PROTO_PUSH_LIST(X) \
	X(STATUS, "status")

/* Error codes carried in {"ok": false, "error": {"code": ...}}. */
#define PROTO_ERR_LIST(X)                   \
	X(BAD_FRAME, "bad_frame")           \
	X(TOO_LARGE, "too_large")           \
	X(HANDSHAKE, "handshake")           \
	X(VERSION, "version")               \
	X(UNKNOWN_COMMAND, "unknown_command") \
	X(BAD_ARGS, "bad_args")             \
	X(NOT_TRACING, "not_tracing")       \
	X(UNAVAILABLE, "unavailable")       \
	X(INTERNAL, "internal")             \
	X(BUSY, "busy")                     \
	X(TIMEOUT, "timeout")

/* Grouping keys for top/snapshot. */
#define PROTO_KEY_LIST(X)          \
	X(LINENO, "lineno")        \
	X(FILENAME, "filename")    \
	X(TRACEBACK, "traceback")

#define PROTO_ENUM_CMD(e, s) PROTO_CMD_##e,
#define PROTO_ENUM_PUSH(e, s) PROTO_PUSH_##e,
#define PROTO_ENUM_ERR(e, s) PROTO_ERR_##e,
#define PROTO_ENUM_KEY(e, s) PROTO_KEY_##e,
enum proto_cmd { PROTO_CMD_LIST(PROTO_ENUM_CMD) PROTO_CMD_COUNT };
enum proto_push { PROTO_PUSH_LIST(PROTO_ENUM_PUSH) PROTO_PUSH_COUNT };
enum proto_err { PROTO_ERR_LIST(PROTO_ENUM_ERR) PROTO_ERR_COUNT };
enum proto_key { PROTO_KEY_LIST(PROTO_ENUM_KEY) PROTO_KEY_COUNT };

/*
 * Name <-> enum lookups (proto.c). The *_name functions return the wire name,
 * or NULL for a value outside the enum. The *_from_name functions return the
 * enum value for an exact, case-sensitive wire name, or -1 when the name is
 * unknown or NULL. All are pure and thread-safe.
 */
const char *proto_cmd_name(enum proto_cmd cmd);
int proto_cmd_from_name(const char *name);
const char *proto_push_name(enum proto_push push);
int proto_push_from_name(const char *name);
const char *proto_err_name(enum proto_err err);
int proto_err_from_name(const char *name);
const char *proto_key_name(enum proto_key key);
int proto_key_from_name(const char *name);

#endif
