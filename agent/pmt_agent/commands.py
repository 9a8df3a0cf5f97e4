"""Request handling: parse one frame, validate it, run the command, build the reply.

handle(session, line) is called by a connection thread with one request line
(without its newline) and returns the reply object to send. It never raises:
bad input gets an error reply, an unexpected exception the error "internal".
Commands are the fixed set of docs/protocol.md; nothing from the socket is
ever executed. Command state shared by every connection (whether the agent
started tracemalloc, the gc object count cache) lives here behind a lock.
"""

import gc
import os
import sys
import threading
import time
import tracemalloc

from . import grouping
from . import heap
from . import memory
from . import profiler
from . import proto
from . import safefile

AGENT_VERSION = "0.1.0"
MAX_ID = 2 ** 53 - 1
MAX_LIMIT = 100000
MAX_PATTERNS = 64
MAX_PATTERN_BYTES = 1024
GC_OBJECTS_TTL = 5.0
GC_OBJECTS_DUTY = 0.01    # counting gc objects may take this share of one core
SOURCE_SECONDS = 0.25     # reading source lines, per top/snapshot request

_lock = threading.Lock()
_started_by_agent = False
_gc_objects = None
_gc_objects_time = 0.0
_gc_objects_ttl = GC_OBJECTS_TTL
_socket = None
_socket_note = None
started_time = time.time()


class CommandError(Exception):
    """A request failed with one of proto.ERRORS."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


class Abandoned(Exception):
    """The client went away while its request waited: no reply is sent."""


# Requests whose cost grows with the target's heap: one runs at a time.
HEAVY = frozenset(("top", "snapshot", "functions", "profile", "profile_tree", "types", "why"))


class _NoGate(object):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _no_gate():
    return _NoGate()


class Session(object):
    """Per-connection protocol state."""

    def __init__(self):
        self.hello = False
        self.interval = 0.0          # status push interval, 0 = no pushes
        self.detach = False          # set by detach: close and stop the server
        self.profile_prev = {}       # (cmd, key) -> allocated bytes per group, for rates
        self.give_back = False       # a reply built from many traces is on its way


def after_fork_child():
    """Reinitialise locks that a thread of the parent may have held."""
    global _lock
    _lock = threading.Lock()
    profiler.after_fork_child()
    memory.after_fork_child()
    mod = sys.modules.get(__package__ + ".functions")
    if mod is not None:
        mod.after_fork_child()


def set_location(path, note):
    """Record the socket path and why its directory was chosen (for hello)."""
    global _socket, _socket_note
    with _lock:
        _socket, _socket_note = path, note


def set_started_by_agent(value):
    global _started_by_agent
    with _lock:
        _started_by_agent = bool(value)


def start_tracing(nframe):
    """Start tracemalloc with nframe frames unless already on (then check nframe)."""
    global _started_by_agent
    with _lock:
        if tracemalloc.is_tracing():
            current = tracemalloc.get_traceback_limit()
            if current != nframe:
                raise CommandError("bad_args", "tracemalloc is already tracing with nframe %d; "
                                   "stop it first to change nframe to %d" % (current, nframe))
            return
        tracemalloc.start(nframe)
        _started_by_agent = True


def restore():
    """Undo what the agent changed: its tracer and, if it started it, tracemalloc."""
    global _started_by_agent
    mod = sys.modules.get(__package__ + ".functions")
    if mod is not None:
        try:
            if mod.running():
                mod.stop()
        except Exception:
            pass
    try:
        if profiler.running():
            profiler.stop()
    except Exception:
        pass
    with _lock:
        if _started_by_agent and tracemalloc.is_tracing():
            tracemalloc.stop()
        _started_by_agent = False


# --- argument validation -------------------------------------------------

def _check_args(cmd, args, allowed):
    for name in args:
        if name not in allowed:
            raise CommandError("bad_args", "unknown argument %r for %s" % (name, cmd))


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _int_arg(args, name, default, lo, hi):
    v = args.get(name, default)
    if not _is_int(v) or v < lo or v > hi:
        raise CommandError("bad_args", "%s must be an integer from %d to %d" % (name, lo, hi))
    return v


def _bool_arg(args, name, default):
    v = args.get(name, default)
    if not isinstance(v, bool):
        raise CommandError("bad_args", "%s must be true or false" % name)
    return v


def _str_list_arg(args, name):
    v = args.get(name, [])
    if not isinstance(v, list) or len(v) > MAX_PATTERNS:
        raise CommandError("bad_args", "%s must be a list of at most %d strings" % (name, MAX_PATTERNS))
    for s in v:
        if not isinstance(s, str) or len(s.encode("utf-8", "replace")) > MAX_PATTERN_BYTES:
            raise CommandError("bad_args", "each %s item must be a string of at most %d bytes"
                               % (name, MAX_PATTERN_BYTES))
    return v


# --- status --------------------------------------------------------------

def _gc_object_counts():
    """Objects per gc generation, counted again at most every GC_OBJECTS_TTL
    seconds, or less often where counting costs more than GC_OBJECTS_DUTY of
    one core (gc.get_objects() lists millions of objects in a large heap)."""
    global _gc_objects, _gc_objects_time, _gc_objects_ttl
    now = time.monotonic()
    with _lock:
        if _gc_objects is not None and now - _gc_objects_time < _gc_objects_ttl:
            return _gc_objects
    c0 = time.thread_time()
    try:
        counts = [len(gc.get_objects(generation=g)) for g in range(len(gc.get_count()))]
    except Exception:
        counts = None
    cost = time.thread_time() - c0
    with _lock:
        _gc_objects = counts
        _gc_objects_time = now
        _gc_objects_ttl = max(GC_OBJECTS_TTL, cost / GC_OBJECTS_DUTY)
    return counts


def status(fresh=False):
    """The status object (also the payload of status pushes). FRESH: the
    allocator figures taken again now (see memory.figures)."""
    tracing = tracemalloc.is_tracing()
    if tracing:
        current, peak = tracemalloc.get_traced_memory()
        overhead = tracemalloc.get_tracemalloc_memory()
    else:
        current = peak = overhead = 0
    try:
        collections = [s.get("collections", 0) for s in gc.get_stats()]
    except Exception:
        collections = None
    with _lock:
        by_agent = _started_by_agent
    return {
        "time": time.time(),
        "tracing": tracing,
        "nframe": tracemalloc.get_traceback_limit(),
        "started_by_agent": by_agent and tracing,
        "traced_current": current,
        "traced_peak": peak,
        "tracemalloc_memory": overhead,
        "gc_counts": list(gc.get_count()),
        "gc_thresholds": list(gc.get_threshold()),
        "gc_objects": _gc_object_counts(),
        "memory": memory.figures(fresh),
        "gc_collections": collections,
        "threads": threading.active_count() + len(profiler.AGENT_THREADS),
        "profile": _profile_summary(),
        "clients": _clients_summary(),
    }


_clients = None


def set_clients(provider):
    """Register the server's function that describes its clients (for status)."""
    global _clients
    _clients = provider


def _clients_summary():
    """What the server says about its connections, or None before it runs."""
    provider = _clients
    if provider is None:
        return None
    try:
        return provider()
    except Exception:
        return None


def _profile_summary():
    """What status pushes say about the sampled profiler, or None without it."""
    if not profiler.available():
        return None
    st = profiler.status()
    return {"running": st["running"], "interval": st["interval"], "exact": st["exact"],
            "samples": st["samples"], "stacks": st["stacks"], "memory": st["memory"],
            "live_bytes": int(st["live_bytes"]), "live_malloc_bytes": int(st.get("live_malloc_bytes", 0)),
            "dropped_samples": st["dropped_samples"],
            "calls": st["calls_mode"] is not None, "lost_hooks": st["lost_hooks"],
            "native": _native_summary(st.get("native"))}


def _native_summary(nat):
    """The native hooks in a status push: on, entries patched, live bytes."""
    if not nat:
        return None
    return {"on": bool(nat["on"]), "entries": nat["entries"], "objects": nat["objects"],
            "live_bytes": int(nat["live_bytes"]), "no_stack_bytes": int(nat["no_stack_bytes"]),
            "error": os.strerror(nat["errno"]) if nat["errno"] else None}


# --- commands ------------------------------------------------------------

def _functions_available():
    try:
        from . import functions  # noqa: F401
        return True
    except Exception:
        return False


def _cmd_hello(session, args):
    _check_args("hello", args, ("protocol", "client"))
    if "protocol" not in args:
        raise CommandError("bad_args", "hello needs the argument protocol")
    version = args["protocol"]
    if not _is_int(version):
        raise CommandError("bad_args", "protocol must be an integer")
    if "client" in args and not isinstance(args["client"], str):
        raise CommandError("bad_args", "client must be a string")
    if version != proto.VERSION:
        raise CommandError("version", "protocol version %d is not supported; this agent speaks %d"
                           % (version, proto.VERSION))
    session.hello = True
    caps = ["status", "tracemalloc", "top", "snapshot", "subscribe", "detach"]
    if hasattr(tracemalloc, "reset_peak"):
        caps.append("reset_peak")
    if _functions_available():
        caps.append("functions")
    if profiler.available():
        caps.append("profile")
    impl = sys.implementation.name
    with _lock:
        sock, note = _socket, _socket_note
    return {
        "protocol": proto.VERSION,
        "agent": AGENT_VERSION,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "implementation": impl,
        "executable": sys.executable or "",
        "argv": [str(a) for a in getattr(sys, "argv", [])],
        "started": started_time,
        "native": grouping.native is not None,
        "capabilities": caps,
        "socket": sock or "",
        "socket_note": note,
    }


def _cmd_status(session, args):
    _check_args("status", args, ("fresh",))
    return status(fresh=_bool_arg(args, "fresh", False))


def _cmd_subscribe(session, args):
    _check_args("subscribe", args, ("interval",))
    v = args.get("interval", 0.5)
    if (not isinstance(v, (int, float)) or isinstance(v, bool) or v != v
            or not (v == 0 or 0.05 <= v <= 60)):
        raise CommandError("bad_args", "interval must be 0 or a number of seconds from 0.05 to 60")
    session.interval = float(v)
    return {"interval": session.interval}


def _cmd_tracemalloc_start(session, args):
    _check_args("tracemalloc_start", args, ("nframe",))
    start_tracing(_int_arg(args, "nframe", 1, 1, 100))
    return status()


def _cmd_tracemalloc_stop(session, args):
    global _started_by_agent
    _check_args("tracemalloc_stop", args, ())
    with _lock:
        tracemalloc.stop()
        _started_by_agent = False
    # tracemalloc.stop() restores the allocators it saved, which drops a
    # profiler hook installed after it: put it back at once.
    profiler.check_hooks()
    return status()


def _cmd_reset_peak(session, args):
    _check_args("reset_peak", args, ())
    if not hasattr(tracemalloc, "reset_peak"):
        raise CommandError("unavailable", "tracemalloc.reset_peak() needs Python 3.9 or later")
    tracemalloc.reset_peak()
    return status()


# The agent's own files: a trace with any frame there is the agent's, not
# the application's, and is left out of top and snapshot.
AGENT_PREFIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")


def _source_lines(wanted):
    """{(filename, lineno): stripped line} for the wanted places.

    Files are read with safefile: only regular files, each only up to the
    last line needed (and at most safefile.MAX_SCAN bytes), lines cut to
    safefile.MAX_LINE_CHARS, within SOURCE_SECONDS for the whole request (what
    is not read by then gets ""). Nothing is kept afterwards: linecache would
    hold whole files in the target's memory (and show up in its own top-N).
    """
    by_file = {}
    for filename, lineno in wanted:
        by_file.setdefault(filename, set()).add(lineno)
    out = {}
    deadline = time.monotonic() + SOURCE_SECONDS
    for filename, linenos in by_file.items():
        if not filename or filename.startswith("<"):
            continue
        if time.monotonic() >= deadline:
            break
        for n, text in safefile.read_lines(filename, linenos, deadline).items():
            out[(filename, n)] = text
    return out


def _grouped(cmd, args, with_limit):
    allowed = ("key", "cumulative", "include", "exclude", "source") + (("limit",) if with_limit else ())
    _check_args(cmd, args, allowed)
    source = args.get("source", "tracemalloc")
    if source not in ("tracemalloc", "sampled"):
        raise CommandError("bad_args", "source must be tracemalloc or sampled")
    if source == "sampled":
        return _sampled(cmd, args, with_limit)
    key = args.get("key", "lineno")
    if key not in proto.KEYS:
        raise CommandError("bad_args", "key must be one of %s" % ", ".join(proto.KEYS))
    cumulative = _bool_arg(args, "cumulative", False)
    if cumulative and key == "traceback":
        raise CommandError("bad_args", "cumulative is not allowed with key traceback")
    limit = _int_arg(args, "limit", 50, 1, MAX_LIMIT) if with_limit else None
    include = _str_list_arg(args, "include")
    exclude = _str_list_arg(args, "exclude")
    # Checked here, compiled again for the filter once the traces are taken:
    # a compiled pattern alive at _get_traces() would be in them.
    for pattern in include + exclude:
        try:
            grouping.compile_glob(pattern)
        except ValueError as e:
            raise CommandError("bad_args", str(e))
    if not tracemalloc.is_tracing():
        raise CommandError("not_tracing", "tracemalloc is not tracing; send tracemalloc_start first")
    t0 = time.perf_counter()
    c0 = time.thread_time()
    traces = tracemalloc._get_traces()
    nframe = tracemalloc.get_traceback_limit()
    current, peak = tracemalloc.get_traced_memory()
    ntraces = len(traces)
    folded = grouping.fold(traces, key, cumulative, include, exclude, AGENT_PREFIX, limit)
    del traces
    ngroups, total_size, total_count = folded.info
    lines = None
    if key != "filename":
        heads = folded.heads()
        found = _source_lines(heads)
        lines = [found.get(h, "") for h in heads]
    groups = grouping.Raw(folded.encode(lines))
    del folded, lines
    took = (time.perf_counter() - t0) * 1000.0
    return {
        "time": time.time(), "pid": os.getpid(), "key": key, "cumulative": cumulative,
        "nframe": nframe, "traced_current": current, "traced_peak": peak,
        "total_size": total_size, "total_count": total_count, "ntraces": ntraces,
        "ngroups": ngroups, "took_ms": round(took, 3),
        "cpu_ms": round((time.thread_time() - c0) * 1000.0, 3), "groups": groups,
    }


def _owe_give_back(session, result):
    """A request over many traces: the server gives freed memory back once its reply is sent."""
    if result.get("ntraces", 0) >= grouping.GIVE_BACK_TRACES:
        session.give_back = True
    return result


def _sampled(cmd, args, with_limit):
    """top/snapshot from the sampled profiler (no include/exclude/cumulative)."""
    for name in ("include", "exclude", "cumulative"):
        if args.get(name):
            raise CommandError("bad_args", "%s is not supported with source sampled" % name)
    key = args.get("key", "lineno")
    if key not in ("lineno", "filename", "traceback"):
        raise CommandError("bad_args", "key must be lineno, filename or traceback")
    limit = _int_arg(args, "limit", 50, 1, MAX_LIMIT) if with_limit else MAX_LIMIT
    r = _call_profiler(profiler.report, key=key, limit=limit)
    if key != "filename":
        lines = _source_lines(tuple(g["frames"][0]) for g in r["groups"])
        for g in r["groups"]:
            g["line"] = lines.get(tuple(g["frames"][0]), "")
    r["pid"] = os.getpid()
    r["traced_current"] = r["total_size"]
    r["traced_peak"] = r["total_size"]
    return r


def _call_profiler(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except profiler.Unavailable as e:
        raise CommandError("unavailable", str(e))
    except ValueError as e:
        raise CommandError("bad_args", str(e) or "invalid argument")


def _cmd_profile_start(session, args):
    _check_args("profile_start", args, ("interval", "nframe", "calls", "max_samples", "max_stacks",
                                        "native"))
    kw = {"interval": _int_arg(args, "interval", profiler.DEFAULT_INTERVAL, 1, 1 << 30),
          "nframe": _int_arg(args, "nframe", profiler.DEFAULT_NFRAME, 1, 128),
          "calls": _bool_arg(args, "calls", False),
          "native": _bool_arg(args, "native", True),
          "max_samples": _int_arg(args, "max_samples", profiler.DEFAULT_MAX_SAMPLES, 1, 1 << 26),
          "max_stacks": _int_arg(args, "max_stacks", profiler.DEFAULT_MAX_STACKS, 1, 1 << 24)}
    session.profile_prev = {}
    return _call_profiler(profiler.start, **kw)


def _cmd_profile_stop(session, args):
    _check_args("profile_stop", args, ())
    session.profile_prev = {}
    return _call_profiler(profiler.stop)


def _cmd_profile(session, args):
    _check_args("profile", args, ("key", "limit", "sort"))
    key = args.get("key", "function")
    if key not in profiler.KEYS:
        raise CommandError("bad_args", "key must be one of %s" % ", ".join(profiler.KEYS))
    limit = _int_arg(args, "limit", 50, 1, MAX_LIMIT)
    sort = args.get("sort", "own")
    if not isinstance(sort, str):
        raise CommandError("bad_args", "sort must be a string")
    prev = session.profile_prev.setdefault(("profile", key), {})
    if key == "function":
        return _call_profiler(profiler.functions, limit=limit, sort=sort, prev=prev)
    if "sort" in args:
        raise CommandError("bad_args", "sort applies to key function only")
    r = _call_profiler(profiler.report, key=key, limit=limit, prev=prev)
    if key != "filename":
        lines = _source_lines(tuple(g["frames"][0]) for g in r["groups"])
        for g in r["groups"]:
            g["line"] = lines.get(tuple(g["frames"][0]), "")
    r["pid"] = os.getpid()
    r["traced_current"] = r["traced_peak"] = r["total_size"]
    return r


def _cmd_profile_tree(session, args):
    _check_args("profile_tree", args, ("path", "limit"))
    limit = _int_arg(args, "limit", 50, 1, MAX_LIMIT)
    return _call_profiler(profiler.tree, args.get("path", []), limit=limit)


def _cmd_top(session, args):
    return _owe_give_back(session, _grouped("top", args, True))


def _cmd_snapshot(session, args):
    return _owe_give_back(session, _grouped("snapshot", args, False))


def _functions_module():
    try:
        from . import functions
    except Exception as e:
        raise CommandError("unavailable", "per-function accounting is not available: %s" % e)
    return functions


def _call_functions(fn, *a, **kw):
    try:
        result = fn(*a, **kw)
    except ValueError as e:
        raise CommandError("bad_args", str(e) or "invalid argument")
    if not isinstance(result, dict):
        raise CommandError("internal", "the function tracer returned %s, not an object"
                           % type(result).__name__)
    return result


def _cmd_functions_start(session, args):
    _check_args("functions_start", args, ("rss",))
    rss = _str_list_arg(args, "rss")
    return _call_functions(_functions_module().start, rss=tuple(rss))


def _cmd_functions_stop(session, args):
    _check_args("functions_stop", args, ())
    return _call_functions(_functions_module().stop)


def _cmd_functions(session, args):
    _check_args("functions", args, ("limit", "sort"))
    limit = _int_arg(args, "limit", 50, 1, MAX_LIMIT)
    sort = args.get("sort", "net")
    if not isinstance(sort, str):
        raise CommandError("bad_args", "sort must be a string")
    return _call_functions(_functions_module().table, limit=limit, sort=sort)


def _cmd_functions_reset(session, args):
    _check_args("functions_reset", args, ())
    return _call_functions(_functions_module().reset)


def _cmd_trim(session, args):
    _check_args("trim", args, ())
    before = memory.figures(fresh=True)
    if before["malloc"] is None:
        raise CommandError("unavailable", "cannot trim: %s" % before["malloc_why"])
    t0 = time.perf_counter()
    returned = grouping.give_back()
    seconds = time.perf_counter() - t0
    after = memory.figures(fresh=True)
    return {"returned": returned, "seconds": seconds, "malloc_before": before["malloc"],
            "malloc_after": after["malloc"]}


def _cmd_types(session, args):
    _check_args("types", args, ("limit",))
    limit = _int_arg(args, "limit", 50, 1, MAX_LIMIT)
    try:
        return heap.types(limit=limit)
    except heap.Unavailable as e:
        raise CommandError("unavailable", str(e))


def _cmd_why(session, args):
    _check_args("why", args, ("type", "file", "line", "samples", "budget"))
    samples = _int_arg(args, "samples", 8, 1, heap.MAX_SAMPLES)
    budget = args.get("budget", 10)
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0.1 <= budget <= 60:
        raise CommandError("bad_args", "budget must be a number of seconds from 0.1 to 60")
    name = args.get("type")
    if ("type" in args) == ("file" in args or "line" in args):
        raise CommandError("bad_args", "give either type, or file and line")
    if name is not None:
        if not isinstance(name, str) or not 0 < len(name) <= 1024:
            raise CommandError("bad_args", "type must be a class name of 1 to 1024 characters")
        try:
            return heap.why(type_name_=name, samples=samples, budget_seconds=float(budget))
        except heap.Unavailable as e:
            raise CommandError("unavailable", str(e))
    path = args.get("file")
    if not isinstance(path, str) or not 0 < len(path) <= 4096:
        raise CommandError("bad_args", "file must be a path of 1 to 4096 characters")
    line = _int_arg(args, "line", None, 1, 1 << 31)
    if not tracemalloc.is_tracing():
        raise CommandError("not_tracing", "objects are found by line through tracemalloc, which is off")
    try:
        got = heap.why(line=(path, line), samples=samples, budget_seconds=float(budget))
    except heap.Unavailable as e:
        raise CommandError("unavailable", str(e))
    if got is None:
        raise CommandError("not_tracing", "objects are found by line through tracemalloc, which is off")
    return got


def _cmd_detach(session, args):
    _check_args("detach", args, ())
    restore()
    session.detach = True
    return {"detached": True}


HANDLERS = {
    "hello": _cmd_hello,
    "status": _cmd_status,
    "subscribe": _cmd_subscribe,
    "tracemalloc_start": _cmd_tracemalloc_start,
    "tracemalloc_stop": _cmd_tracemalloc_stop,
    "reset_peak": _cmd_reset_peak,
    "top": _cmd_top,
    "snapshot": _cmd_snapshot,
    "functions_start": _cmd_functions_start,
    "functions_stop": _cmd_functions_stop,
    "functions": _cmd_functions,
    "functions_reset": _cmd_functions_reset,
    "profile_start": _cmd_profile_start,
    "profile_stop": _cmd_profile_stop,
    "profile": _cmd_profile,
    "profile_tree": _cmd_profile_tree,
    "trim": _cmd_trim,
    "types": _cmd_types,
    "why": _cmd_why,
    "detach": _cmd_detach,
}


# --- frames --------------------------------------------------------------

def error(code, message, req_id=None):
    return {"id": req_id, "ok": False, "error": {"code": code, "message": message}}


def peek(line):
    """(id, cmd) of a request line, each None where the frame has no valid one.

    Lets the server queue a request by its weight before answering it.
    """
    try:
        req = proto.loads(line)
        rid, cmd = req.get("id"), req.get("cmd")
    except Exception:
        return None, None
    return (rid if _is_int(rid) and 0 <= rid <= MAX_ID else None,
            cmd if isinstance(cmd, str) else None)


def handle(session, line, heavy=_no_gate):
    """Answer one request line (bytes, no newline); returns the reply object.

    heavy() gives the with-block a heavy command runs in (the server's turn
    across connections); it may raise CommandError("busy") or Abandoned,
    for which handle returns None: there is nobody to answer.
    """
    req_id = None
    try:
        try:
            req = proto.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return error("bad_frame", "the frame is not valid UTF-8 JSON")
        if not isinstance(req, dict):
            return error("bad_frame", "the frame is not a JSON object")
        rid = req.get("id")
        if _is_int(rid) and 0 <= rid <= MAX_ID:
            req_id = rid
        else:
            return error("bad_frame", "id must be an integer from 0 to 2^53-1")
        cmd = req.get("cmd")
        if not isinstance(cmd, str):
            return error("bad_frame", "cmd must be a string", req_id)
        handler = HANDLERS.get(cmd)
        if handler is None:
            return error("unknown_command", "unknown command %r" % cmd[:100], req_id)
        args = req.get("args", {})
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return error("bad_args", "args must be an object", req_id)
        if not session.hello and cmd != "hello":
            return error("handshake", "send hello first", req_id)
        if cmd in HEAVY:
            with heavy():
                c0 = time.thread_time()
                result = handler(session, args)
                # What the request cost the target, for the client's pacing.
                if isinstance(result, dict) and "cpu_ms" not in result:
                    result["cpu_ms"] = round((time.thread_time() - c0) * 1000.0, 3)
        else:
            result = handler(session, args)
        return {"id": req_id, "ok": True, "result": result}
    except Abandoned:
        return None
    except CommandError as e:
        return error(e.code, e.message, req_id)
    except MemoryError:
        return error("internal", "out of memory while answering", req_id)
    except Exception as e:
        return error("internal", "%s: %s" % (type(e).__name__, e), req_id)


def encode(obj):
    """Encode a reply or push as one frame (bytes ending in a newline).

    A result whose "groups" is grouping.Raw (JSON the fold wrote in C) is
    spliced in as it is, last, as the result's last key.
    """
    raw = None
    result = obj.get("result")
    if isinstance(result, dict) and isinstance(result.get("groups"), grouping.Raw):
        result = dict(result)
        raw = result.pop("groups").data
        obj = dict(obj, result=result)
    try:
        text = proto.dumps(obj)
    except (TypeError, ValueError, RecursionError) as e:
        text = proto.dumps(error("internal", "cannot encode the reply: %s" % e, obj.get("id")))
        raw = None
    data = text.encode("utf-8", "replace")
    if raw is not None:
        # {"id":..,"ok":true,"result":{...}}: the result is the last key.
        data = b"".join((data[:-2], b',"groups":' if result else b'"groups":', raw, b"}}\n"))
    else:
        data += b"\n"
    if len(data) > proto.MAX_REPLY:
        data = encode(error("too_large", "the reply would be %d bytes, over the %d byte limit; "
                            "use a smaller limit or filters" % (len(data), proto.MAX_REPLY),
                            obj.get("id")))
    return data
