"""Protocol constants of the pmt-top <-> pmt_agent wire protocol.

This module mirrors src/ipc/proto.h (the single source of truth): the version,
the frame size limits and the command, push, error and key names, each tuple
in the same order as the header's X-list. A test parses the header and checks
that both agree, so change them together. docs/protocol.md describes them.

loads() and dumps() read and write the frames' JSON with the json module's C
scanner and encoder called from here: tracemalloc gives what they allocate
this file's traceback, so the agent's own memory is left out of top and
snapshot however few frames it keeps (json.loads would put it under
json/decoder.py).
"""
import json
import json.encoder

try:
    from _json import make_encoder as _c_make_encoder
except ImportError:             # no C accelerator: json.dumps is the same text
    _c_make_encoder = None

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
    "trim",
    "types",
    "why",
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


_scan = json.decoder.JSONDecoder().scan_once
_BLANK = " \t\n\r"


def loads(line):
    """json.loads(line.decode("utf-8")); raises ValueError (or RecursionError)."""
    text = line.decode("utf-8")
    start = len(text) - len(text.lstrip(_BLANK))
    try:
        obj, end = _scan(text, start)
    except StopIteration:
        raise ValueError("no JSON value")
    if text[end:].strip(_BLANK):
        raise ValueError("extra data after the JSON value")
    return obj


def _reject(o):
    raise TypeError("%s is not JSON serializable" % type(o).__name__)


def dumps(obj):
    """json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)."""
    if _c_make_encoder is None:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    enc = _c_make_encoder({}, _reject, json.encoder.encode_basestring, None, ":", ",",
                          False, False, False)
    return "".join(enc(obj, 0))
