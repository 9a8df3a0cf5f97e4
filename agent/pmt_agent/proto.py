"""Protocol constants of the pmt-top <-> pmt_agent wire protocol.

This module mirrors src/ipc/proto.h (the single source of truth): the version,
the frame size limits and the command, push, error and key names, each tuple
in the same order as the header's X-list. A test parses the header and checks
that both agree, so change them together. docs/protocol.md describes them.
"""

VERSION = 1

# Frame size limits in bytes, including the terminating newline.
MAX_REQUEST = 64 * 1024
MAX_REPLY = 256 * 1024 * 1024

COMMANDS = (
    "hello",
    "status",
    "subscribe",
    "tracemalloc_start",
    "tracemalloc_stop",
    "reset_peak",
    "top",
    "snapshot",
    "functions_start",
    "functions_stop",
    "functions",
    "functions_reset",
    "profile_start",
    "profile_stop",
    "profile",
    "profile_tree",
    "detach",
)

PUSHES = (
    "status",
)

ERRORS = (
    "bad_frame",
    "too_large",
    "handshake",
    "version",
    "unknown_command",
    "bad_args",
    "not_tracing",
    "unavailable",
    "internal",
    "busy",
    "timeout",
)

KEYS = (
    "lineno",
    "filename",
    "traceback",
)
