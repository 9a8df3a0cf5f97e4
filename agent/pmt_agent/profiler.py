"""The sampled allocation profiler: who owns the live memory, by line, by
traceback and by function, without tracemalloc.

    from pmt_agent import profiler
    profiler.start(interval=4096, calls=False, native=True)  # -> status dict
    profiler.report("lineno", limit=50)         # -> top-shaped dict
    profiler.functions(limit=50, sort="own")    # -> function rows
    profiler.tree(path, limit=50)               # -> callees under a call path
    profiler.stop()                             # -> status dict; all memory given back

The native half (_pmt_sampler) samples allocations by bytes (Poisson, mean
`interval`) and credits every free to the stack the block was allocated under.
`interval` 1 is the exact mode. Call counting (sys.monitoring on 3.12+, the C
profile hook before) adds calls and the largest call per function.

With `native` (the default) the malloc family called by C extensions and
libraries is sampled too (GOT entries of the loaded objects point to the
extension's hooks until stop(); objects loaded later are patched at the next
status()). Their stacks are flagged native: the rows say "native" and name
the Python line that called into the C code.

Without the extension there is no profiler (no pure-Python sampler): start()
raises Unavailable with the reason, and the client falls back to tracemalloc.

Contract: bad arguments raise ValueError; a missing extension raises
Unavailable; nothing else is raised. Thread-safe.
"""

import sys
import threading
import time

DEFAULT_INTERVAL = 4096
DEFAULT_NFRAME = 64
DEFAULT_MAX_SAMPLES = 1 << 20
DEFAULT_MAX_STACKS = 1 << 16
KEYS = ("lineno", "traceback", "function", "filename")
FUNCTION_SORTS = ("own", "total", "rate", "calls", "retained", "largest")
_HAS_MONITORING = sys.version_info >= (3, 12) and hasattr(sys, "monitoring")


class Unavailable(Exception):
    """The sampler extension cannot be loaded here."""


def _load():
    from .native import load
    return load("_pmt_sampler")


_native, _native_why = _load()
_lock = threading.RLock()


def after_fork_child():
    """In a fork child: a lock a thread of the parent held stays held."""
    global _lock
    _lock = threading.RLock()
_state = {"running": False, "calls_mode": None, "tool": None, "saved_thread_hook": None,
          "started": 0.0, "lost_hooks": 0, "ctypes_swapped": {}}


def available():
    return _native is not None


def why_unavailable():
    return _native_why


# The agent's threads that threading does not list: ident -> name.
AGENT_THREADS = {}


def ignore_current_thread():
    """Never sample the calling thread (the agent's own threads)."""
    if _native is not None:
        _native.ignore_thread(True)


def running():
    return _state["running"]


def _free_tool_id():
    mon = sys.monitoring
    for tool in (mon.PROFILER_ID, 5, 4, 3, 1, 0):
        if mon.get_tool(tool) is None:
            return tool
    return None


def _calls_on():
    """Starts call events; returns the mode name or raises ValueError."""
    n = _native
    if _HAS_MONITORING:
        mon = sys.monitoring
        tool = _free_tool_id()
        if tool is None:
            raise ValueError("every sys.monitoring tool id is taken; free one to count calls")
        mon.use_tool_id(tool, "pmt-top")
        E = mon.events
        mon.register_callback(tool, E.PY_START, n.mon_start)
        mon.register_callback(tool, E.PY_RESUME, n.mon_resume)
        mon.register_callback(tool, E.PY_THROW, n.mon_resume)
        for ev in (E.PY_RETURN, E.PY_YIELD, E.PY_UNWIND):
            mon.register_callback(tool, ev, n.mon_leave)
        mon.set_events(tool, E.PY_START | E.PY_RESUME | E.PY_THROW |
                       E.PY_RETURN | E.PY_YIELD | E.PY_UNWIND)
        _state["tool"] = tool
        return "monitoring"
    if n.profile_conflict():
        raise ValueError("another profiler is set in some thread; counting calls would replace it")
    _state["saved_thread_hook"] = getattr(threading, "_profile_hook", None)
    n.profile_hook(True)
    threading.setprofile(n.thread_hook)     # threads started from now on
    return "profile-hook"


def _calls_off():
    n = _native
    tool = _state["tool"]
    if tool is not None:
        mon = sys.monitoring
        try:
            mon.set_events(tool, 0)
            E = mon.events
            for ev in (E.PY_START, E.PY_RESUME, E.PY_THROW, E.PY_RETURN, E.PY_YIELD, E.PY_UNWIND):
                mon.register_callback(tool, ev, None)
        finally:
            mon.free_tool_id(tool)
        _state["tool"] = None
    elif _state["calls_mode"] == "profile-hook":
        n.profile_hook(False)
        if getattr(threading, "_profile_hook", None) is n.thread_hook:
            threading.setprofile(_state["saved_thread_hook"])
    _state["calls_mode"] = None


def _int_in(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError("%s must be an integer from %d to %d" % (name, lo, hi))
    return v


def _ctypes_pointers():
    """(object, cell) of every ctypes function pointer alive, its cell a
    c_void_p over the address it calls; [] when ctypes is not imported.
    Found as the referrers of their classes (one pass of the gc in C), and
    told apart by their exact type: no Python code of theirs runs."""
    ct, ctypes = sys.modules.get("_ctypes"), sys.modules.get("ctypes")
    base = getattr(ct, "CFuncPtr", None)
    if ctypes is None or not isinstance(base, type):
        return []
    import gc
    classes, todo = [], [base]
    while todo:
        c = todo.pop()
        classes.append(c)
        todo.extend(type.__subclasses__(c))
    out = []
    for o in gc.get_referrers(*classes):
        if issubclass(type(o), base):
            out.append((o, ctypes.c_void_p.from_address(ctypes.addressof(o))))
    return out


def _ctypes_swap_in():
    """Function pointers to the malloc family made before start (a module's
    `libc = CDLL(None)`, then `libc.malloc`) call the hooks until stop, as a
    library's GOT entries do; later lookups get the hooks from dlsym.
    Returns how many were swapped."""
    swap = {}
    for hook, fn, bound in _native.native_funcs():
        for addr in (fn, bound):
            if addr:
                swap[addr] = hook
    saved = _state["ctypes_swapped"] = {}
    _state["ctypes_on"] = True
    for o, cell in _ctypes_pointers():
        hook = swap.get(cell.value)
        if hook is not None:
            saved[id(o)] = cell.value
            cell.value = hook
    return len(saved)


def _ctypes_swap_out():
    """Puts back what _ctypes_swap_in() changed. A pointer that dlsym gave a
    hook meanwhile gets the C library's function itself (where a library's
    call is bound): which address the lookup had (the executable's PLT entry
    or the function) is not known, and both run the same function."""
    if not _state.pop("ctypes_on", False):
        return
    saved, _state["ctypes_swapped"] = _state["ctypes_swapped"], {}
    back = {}
    for hook, fn, bound in _native.native_funcs():
        back[hook] = bound or fn
    for o, cell in _ctypes_pointers():
        fn = back.get(cell.value)
        if fn is not None:
            cell.value = saved.get(id(o), fn)


def start(interval=DEFAULT_INTERVAL, nframe=DEFAULT_NFRAME, calls=False,
          max_samples=DEFAULT_MAX_SAMPLES, max_stacks=DEFAULT_MAX_STACKS, native=True):
    _int_in("interval", interval, 1, 1 << 30)
    _int_in("nframe", nframe, 1, 128)
    _int_in("max_samples", max_samples, 1, 1 << 26)
    _int_in("max_stacks", max_stacks, 1, 1 << 24)
    if _native is None:
        raise Unavailable("the sampler extension cannot be loaded: %s" % _native_why)
    with _lock:
        if _state["running"]:
            raise ValueError("the profiler is already running; stop it first")
        _native.start(interval=float(interval), nframe=nframe, max_samples=max_samples,
                      max_stacks=max_stacks, calls=bool(calls), native=bool(native))
        try:
            if native and _native.status()["native"]["on"]:
                _ctypes_swap_in()
            if calls:
                _state["calls_mode"] = _calls_on()
        except BaseException:
            _ctypes_swap_out()
            _native.stop()
            raise
        _state["running"] = True
        _state["started"] = time.time()
        _state["lost_hooks"] = 0
        return _status_locked()


def stop():
    if _native is None:
        raise Unavailable("the sampler extension cannot be loaded: %s" % _native_why)
    with _lock:
        if _state["running"]:
            try:
                try:
                    _ctypes_swap_out()
                finally:
                    _calls_off()
            finally:
                _state["pass_through"] = _native.stop()
                _state["running"] = False
        return _status_locked()


def _status_locked():
    if _native is None:
        return {"available": False, "running": False, "error": _native_why}
    if _state["running"]:
        _native.native_rescan()     # objects loaded since the last look
    st = _native.status()
    st["available"] = True
    st["running"] = _state["running"]
    st["calls_mode"] = _state["calls_mode"]
    st["started"] = _state["started"] if _state["running"] else 0.0
    st["lost_hooks"] = _state["lost_hooks"]
    st["exact"] = st["interval"] <= 1
    st["interval"] = int(st["interval"])
    return st


def status():
    with _lock:
        return _status_locked()


def check_hooks():
    """Put the hook back where something (tracemalloc.stop) dropped it."""
    with _lock:
        if _state["running"]:
            _state["lost_hooks"] += _native.check_hooks()


def _stacks():
    with _lock:
        if not _state["running"]:
            raise ValueError("the profiler is not running")
        _state["lost_hooks"] += _native.check_hooks()
        return _native.stacks(), _status_locked()


def _fkey(fr):
    """Function identity of a frame (file, line, name, firstline)."""
    return (fr[0], fr[2], fr[3])


def report(key="lineno", limit=50, prev=None, now=None):
    """Groups by line, file or traceback, in the shape of the `top` reply.

    prev: a dict this call fills with each group's allocated bytes, and reads
    from the previous call, to give allocation rates since then."""
    if key not in ("lineno", "traceback", "filename"):
        raise ValueError("key must be lineno, filename or traceback")
    t0 = time.time()
    stacks, st = _stacks()
    groups = {}
    for frames, lb, lk, ab, ak, _trunc, nat in stacks:
        if not frames:
            g = (("<no Python frame>", 0),)
        elif key == "lineno":
            g = ((frames[0][0], frames[0][1]),)
        elif key == "filename":
            g = ((frames[0][0], 0),)
        else:
            g = tuple((f[0], f[1]) for f in frames)
        g = (nat, g)
        acc = groups.get(g)
        if acc is None:
            groups[g] = [lb, lk, ab, frames[0][2] if frames else ""]
        else:
            acc[0] += lb
            acc[1] += lk
            acc[2] += ab
    return _finish(groups, key, limit, st, prev, now, t0)


def _rate(prev, k, alloc, dt, since_start):
    if prev is None:
        return alloc / since_start if since_start > 0 else 0.0
    before = prev.get(k)
    if before is None or dt <= 0:
        return alloc / since_start if since_start > 0 else 0.0
    return max(0.0, (alloc - before) / dt)


def _finish(groups, key, limit, st, prev, now, t0):
    now = time.time() if now is None else now
    since = now - (st["started"] or now)
    dt = now - prev.get("__time__", st["started"]) if prev is not None else since
    out = []
    total_size = total_count = 0.0
    for g, (lb, lk, ab, fname) in groups.items():
        total_size += lb
        total_count += lk
        out.append((g, lb, lk, ab, fname))
    out.sort(key=lambda r: (-r[1], -r[3]))
    rows = []
    for g, lb, lk, ab, fname in out[:limit]:
        row = {"size": int(round(lb)), "count": int(round(lk)),
               "frames": [[f, ln] for f, ln in g[1]],
               "alloc": int(round(ab)),
               "alloc_rate": int(round(_rate(prev, g, ab, dt, since))),
               "function": fname, "line": ""}
        if g[0]:
            row["native"] = True
        rows.append(row)
    if prev is not None:
        prev.clear()
        for g, lb, lk, ab, fname in out:
            prev[g] = ab
        prev["__time__"] = now
    return {"time": now, "key": key, "cumulative": False, "source": "sampled",
            "interval": st["interval"], "nframe": st["nframe"],
            "total_size": int(round(total_size)), "total_count": int(round(total_count)),
            "ntraces": st["samples"], "took_ms": round((time.time() - t0) * 1000.0, 3),
            "profile": st, "groups": rows}


def functions(limit=50, sort="own", prev=None, now=None):
    """Per function: own (allocated in it) and total (in it or its callees,
    once per stack) live bytes and blocks, allocation rate, and with call
    counting the calls, retained bytes per call and largest call."""
    if sort not in FUNCTION_SORTS:
        raise ValueError("sort must be one of %s" % ", ".join(FUNCTION_SORTS))
    t0 = time.time()
    stacks, st = _stacks()
    with _lock:
        calls = _native.calls() if _state["calls_mode"] else []
    fn = {}
    own_lines = {}      # (function, line) -> own live bytes, to name its line
    def row(k, line):
        r = fn.get(k)
        if r is None:
            r = fn[k] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, line]
        return r

    for frames, lb, lk, ab, ak, _trunc, nat in stacks:
        seen = set()
        if frames and nat:
            # what C code called from the innermost function allocated: a row
            # of its own, own and total (the function's total counts it below)
            k = _fkey(frames[0]) + (True,)
            r = row(k, frames[0][1])
            r[0] += lb
            r[1] += lk
            r[4] += ab
            r[2] += lb
            r[3] += lk
            r[5] += ab
            own_lines[(k, frames[0][1])] = own_lines.get((k, frames[0][1]), 0.0) + lb
        for i, fr in enumerate(frames):
            k = _fkey(fr)
            r = row(k, fr[1])
            if i == 0 and not nat:
                r[0] += lb
                r[1] += lk
                r[4] += ab
                own_lines[(k, fr[1])] = own_lines.get((k, fr[1]), 0.0) + lb
            if k not in seen:
                seen.add(k)
                r[2] += lb
                r[3] += lk
                r[5] += ab
    best = {}
    for (k, line), b in own_lines.items():
        if k not in best or b > best[k][0] or (b == best[k][0] and line > best[k][1]):
            best[k] = (b, line)
    for k, (b, line) in best.items():
        fn[k][6] = line
    cmap = {}
    for filename, name, first, ncalls, largest in calls:
        cmap[(filename, name, first)] = (ncalls, largest)
    now = time.time() if now is None else now
    since = now - (st["started"] or now)
    dt = now - prev.get("__time__", st["started"]) if prev is not None else since
    rows = []
    for k, r in fn.items():
        c = cmap.get(k) if len(k) == 3 else None
        row = {"file": k[0], "function": k[1], "first_line": k[2], "line": r[6],
               "own_size": int(round(r[0])), "own_count": int(round(r[1])),
               "total_size": int(round(r[2])), "total_count": int(round(r[3])),
               "alloc": int(round(r[5])),
               "alloc_rate": int(round(_rate(prev, k, r[5], dt, since))),
               "calls": None, "retained_per_call": None, "largest_call": None}
        if c is not None and c[0] > 0:
            row["calls"] = c[0]
            row["retained_per_call"] = int(round(r[2] / c[0]))
            row["largest_call"] = int(round(c[1]))
        if len(k) == 4:
            row["native"] = True
        rows.append(row)
    if prev is not None:
        prev.clear()
        for k, r in fn.items():
            prev[k] = r[5]
        prev["__time__"] = now
    field = {"own": "own_size", "total": "total_size", "rate": "alloc_rate", "calls": "calls",
             "retained": "retained_per_call", "largest": "largest_call"}[sort]
    rows.sort(key=lambda r: (-(r[field] or 0), -r["total_size"], r["function"]))
    return {"time": now, "sort": sort, "source": "sampled", "interval": st["interval"],
            "functions": len(rows), "took_ms": round((time.time() - t0) * 1000.0, 3),
            "profile": st, "rows": rows[:limit]}


def tree(path, limit=50):
    """The callees under a call path (outermost function first, each
    [file, name, first_line]): per child function its total live bytes
    (once per stack), and the bytes allocated in the path's last function
    itself as the row {"self": true}. An empty path gives the entry points."""
    if not isinstance(path, (list, tuple)) or len(path) > 128:
        raise ValueError("path must be a list of at most 128 [file, function, first_line]")
    want = []
    for p in path:
        if (not isinstance(p, (list, tuple)) or len(p) != 3 or not isinstance(p[0], str)
                or not isinstance(p[1], str) or isinstance(p[2], bool) or not isinstance(p[2], int)):
            raise ValueError("each path entry must be [file, function, first_line]")
        want.append((p[0], p[1], p[2]))
    want = tuple(want)
    stacks, st = _stacks()
    depth = len(want)
    kids = {}
    own = [0.0, 0.0]
    total = [0.0, 0.0]
    for frames, lb, lk, ab, ak, trunc, _nat in stacks:
        outer = [_fkey(f) for f in reversed(frames)]
        if tuple(outer[:depth]) != want:
            continue
        total[0] += lb
        total[1] += lk
        if len(outer) == depth:
            own[0] += lb
            own[1] += lk
            continue
        k = outer[depth]
        r = kids.get(k)
        if r is None:
            r = kids[k] = [0.0, 0.0, 0]
        r[0] += lb
        r[1] += lk
        r[2] += 1
    rows = [{"file": k[0], "function": k[1], "first_line": k[2],
             "total_size": int(round(v[0])), "total_count": int(round(v[1])), "self": False}
            for k, v in kids.items()]
    rows.sort(key=lambda r: (-r["total_size"], r["function"]))
    rows = rows[:limit]
    if depth and (own[0] or not rows):
        rows.append({"file": want[-1][0], "function": want[-1][1], "first_line": want[-1][2],
                     "total_size": int(round(own[0])), "total_count": int(round(own[1])),
                     "self": True})
    return {"time": time.time(), "path": [list(p) for p in want], "source": "sampled",
            "interval": st["interval"], "total_size": int(round(total[0])),
            "total_count": int(round(total[1])), "profile": st, "rows": rows}
