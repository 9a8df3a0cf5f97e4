"""Per-function memory accounting: the agent's function tracer.

    from pmt_agent import functions
    functions.start(rss=("load_config",))   # -> status dict
    functions.table(limit=50, sort="net")   # -> table dict (docs/functions.md)
    functions.stop()                        # -> status dict; results are kept
    functions.reset()                       # -> status dict; results forgotten
    functions.running()                     # -> bool

Per Python function (code object) and per thread it counts calls and, for the
outermost active call of that code object in the thread, the inclusive bytes
allocated (gross) and allocated minus freed (net) during the call, plus the
largest single-call net. Generator and coroutine segments between resume and
yield add up; recursion is counted once; frames unwound by an exception are
closed.

Two engines:

- native (the C extension _pmt_functrace): call events from sys.monitoring
  C callbacks (3.12+, mode "monitoring-c") or the C profile hook ("profile-c");
  bytes from a PEP 445 hook that wraps the installed allocators and counts into
  thread-local counters ("accounting": "allocator-hook").
- pure Python, when the extension is not importable (slower): sys.monitoring
  ("monitoring-py", 3.12+) or sys.setprofile ("setprofile-py"); bytes from
  tracemalloc's traced size, which it starts if needed ("accounting":
  "tracemalloc").

Contract: bad arguments raise ValueError with a sentence; nothing else is
raised; failures are reported in the result's "error" field. Thread-safe.
"""

import atexit
import os
import sys
import threading
import time

__all__ = ["start", "stop", "reset", "table", "running", "MODES", "SORT_KEYS"]

SORT_KEYS = ("net", "gross", "max", "calls", "mean")
MODES = ("monitoring-c", "profile-c", "monitoring-py", "setprofile-py")
MAX_RSS_NAMES = 32
MAX_LIMIT = 100000
AGENT_THREAD_PREFIX = "pmt-agent-"
_HAS_MONITORING = sys.version_info >= (3, 12) and hasattr(sys, "monitoring")
_GEN_FLAGS = 0x20 | 0x80 | 0x200     # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR


def _load_native():
    """The _pmt_functrace extension, or (None, reason)."""
    from .native import load
    return load("_pmt_functrace")


_native, _native_why = _load_native()

_lock = threading.RLock()


def after_fork_child():
    """In a fork child: a lock a thread of the parent held stays held."""
    global _lock
    _lock = threading.RLock()
_engine = None          # the running or last engine
_names = {}             # thread ident -> name, remembered for threads that ended


def _available_modes():
    modes = []
    if _native is not None:
        if _HAS_MONITORING:
            modes.append("monitoring-c")
        modes.append("profile-c")
    if _HAS_MONITORING:
        modes.append("monitoring-py")
    modes.append("setprofile-py")
    return modes


def _check_rss(rss):
    if rss is None:
        return ()
    if isinstance(rss, (str, bytes)) or not isinstance(rss, (list, tuple, set, frozenset)):
        raise ValueError("rss must be a list of function names, not %s" % type(rss).__name__)
    names = []
    for n in rss:
        if not isinstance(n, str) or not n or len(n) > 256:
            raise ValueError("each rss entry must be a function name of 1 to 256 characters")
        names.append(n)
    if len(names) > MAX_RSS_NAMES:
        raise ValueError("rss lists %d functions; at most %d may be measured (each call "
                         "reads /proc/self/statm twice)" % (len(names), MAX_RSS_NAMES))
    return tuple(sorted(set(names)))


# ---------------------------------------------------------------------------
# Engines: each exposes begin(), end(), clear(), rows(), info()
# rows() -> [(code, ident, calls, outer, net, max, gross, rss|None, thread name|None)]


class _NativeEngine(object):
    accounting = "allocator-hook"
    native = True

    def __init__(self, mode, rss):
        self.mode = mode
        self.rss = rss
        self.tool = None
        self.saved_thread_hook = None
        self.reinstalled = 0
        self.pass_through = 0

    def begin(self):
        n = _native
        if self.mode == "profile-c":
            if n.profile_conflict():
                return "another profiler is set in some thread; stop it first (profile-c replaces it)"
            self.saved_thread_hook = getattr(threading, "_profile_hook", None)
            n.start(True, self.rss)
            # New threads: PyEval_SetProfileAllThreads only covers existing ones.
            threading.setprofile(n.thread_hook)
            return None
        mon = sys.monitoring
        tool = _free_tool_id()
        if tool is None:
            return "every sys.monitoring tool id is taken; free one (sys.monitoring.free_tool_id)"
        mon.use_tool_id(tool, "pmt-top")
        self.tool = tool
        E = mon.events
        n.start(False, self.rss)
        mon.register_callback(tool, E.PY_START, n.mon_start)
        mon.register_callback(tool, E.PY_RESUME, n.mon_resume)
        mon.register_callback(tool, E.PY_THROW, n.mon_resume)
        for ev in (E.PY_RETURN, E.PY_YIELD, E.PY_UNWIND):
            mon.register_callback(tool, ev, n.mon_leave)
        mon.set_events(tool, E.PY_START | E.PY_RESUME | E.PY_THROW |
                       E.PY_RETURN | E.PY_YIELD | E.PY_UNWIND)
        return None

    def end(self):
        n = _native
        if self.tool is not None:
            _release_tool(self.tool)
            self.tool = None
        if self.mode == "profile-c":
            if getattr(threading, "_profile_hook", None) is n.thread_hook:
                threading.setprofile(self.saved_thread_hook)
        self.pass_through = n.stop()

    def clear(self):
        _native.reset()

    def rows(self):
        return _native.snapshot()

    def check(self):
        self.reinstalled += _native.check_hooks()

    def info(self):
        st = _native.state()
        return {"installed_domains": st["hooks_installed"], "on_top_domains": st["hooks_on_top"],
                "pass_through": bool(st["hooks_installed"]) and not st["running"],
                "reinstalled": self.reinstalled, "tracked_blocks": st["tracked_blocks"],
                "table_bytes": st["table_bytes"], "orphan_leaves": st["orphan_leaves"],
                "open_frames": st["open_frames"],
                "tool_id": self.tool}


def _free_tool_id():
    mon = sys.monitoring
    for tool in (mon.PROFILER_ID, 5, 4, 3, 1, 0):
        if mon.get_tool(tool) is None:
            return tool
    return None


def _release_tool(tool):
    mon = sys.monitoring
    try:
        mon.set_events(tool, 0)
        for ev in (mon.events.PY_START, mon.events.PY_RESUME, mon.events.PY_THROW,
                   mon.events.PY_RETURN, mon.events.PY_YIELD, mon.events.PY_UNWIND):
            mon.register_callback(tool, ev, None)
    finally:
        mon.free_tool_id(tool)


# Per-thread state of the pure-Python engine (a list: attribute access is
# the slow part of a Python profile callback).
_T_STACK, _T_NET, _T_GROSS, _T_STATS, _T_NAME, _T_TRIES, _T_IDENT = range(7)
# Per-(thread, code) stats: calls, outermost calls, net, max, gross, depth,
# rss net, rss max, rss calls, rss selected.
_S_CALLS, _S_OUTER, _S_NET, _S_MAX, _S_GROSS, _S_DEPTH, _S_RN, _S_RMAX, _S_RCNT, _S_SEL = range(10)


class _PyEngine(object):
    """Pure-Python tracer over tracemalloc's traced size (slower).

    tracemalloc's counter is global: each event attributes the change since
    the previous event (in any thread) to the thread that sees it, so with
    several threads allocating at once, bytes near a thread switch can land
    in the other thread. Gross is the sum of the increases seen between
    events: a lower bound when a function allocates and frees without calling
    anything in between.
    """
    accounting = "tracemalloc"
    native = False

    def __init__(self, mode, rss):
        self.mode = mode
        self.rss = frozenset(rss)
        self.tool = None
        self.on = False
        self.started_tracemalloc = False
        self.threads = []       # every per-thread state list
        self.local = threading.local()
        self.statm = None
        self.saved_thread_hook = None
        self.enter = self.leave = self.profile = None
        self.restarted = 0

    def begin(self):
        import tracemalloc
        self.tm = tracemalloc
        if self.mode == "setprofile-py":
            if sys.getprofile() is not None:
                return "a profiler is already set (sys.getprofile()); stop it first"
        else:
            tool = _free_tool_id()
            if tool is None:
                return "every sys.monitoring tool id is taken; free one (sys.monitoring.free_tool_id)"
        if self.rss:
            try:
                self.statm = os.open("/proc/self/statm", os.O_RDONLY)
                self.page = os.sysconf("SC_PAGE_SIZE")
            except OSError:
                self.statm = None
        if not tracemalloc.is_tracing():
            tracemalloc.start(1)
            self.started_tracemalloc = True
        self.on = True
        self._make_callbacks()
        if self.mode == "setprofile-py":
            self.saved_thread_hook = getattr(threading, "_profile_hook", None)
            if hasattr(threading, "setprofile_all_threads"):
                threading.setprofile_all_threads(self.profile)
            else:
                threading.setprofile(self.profile)
                sys.setprofile(self.profile)
            return None
        mon = sys.monitoring
        mon.use_tool_id(tool, "pmt-top")
        self.tool = tool
        E = mon.events
        enter, leave = self.enter, self.leave

        # An exception in a callback would surface in the host's code: swallow it.
        def m_start(code, offset):
            try:
                enter(code, 1)
            except Exception:
                pass

        def m_resume(code, offset, *arg):
            try:
                enter(code, 0)
            except Exception:
                pass

        def m_leave(code, offset, arg):
            try:
                leave(code)
            except Exception:
                pass

        mon.register_callback(tool, E.PY_START, m_start)
        mon.register_callback(tool, E.PY_RESUME, m_resume)
        mon.register_callback(tool, E.PY_THROW, m_resume)
        for ev in (E.PY_RETURN, E.PY_YIELD, E.PY_UNWIND):
            mon.register_callback(tool, ev, m_leave)
        mon.set_events(tool, E.PY_START | E.PY_RESUME | E.PY_THROW |
                       E.PY_RETURN | E.PY_YIELD | E.PY_UNWIND)
        return None

    def end(self):
        self.on = False
        if self.tool is not None:
            _release_tool(self.tool)
            self.tool = None
        if self.mode == "setprofile-py":
            if hasattr(threading, "setprofile_all_threads"):
                threading.setprofile_all_threads(None)
            else:
                # Other threads drop the hook themselves at their next event.
                sys.setprofile(None)
            if getattr(threading, "_profile_hook", None) is self.profile:
                threading.setprofile(self.saved_thread_hook)
        for th in self.threads:
            del th[_T_STACK][:]
            for st in th[_T_STATS].values():
                st[_S_DEPTH] = 0
        if self.statm is not None:
            os.close(self.statm)
            self.statm = None
        if self.started_tracemalloc:
            self.tm.stop()
            self.started_tracemalloc = False

    def clear(self):
        # Threads keep their state lists: empty them (open frames included).
        for th in self.threads:
            del th[_T_STACK][:]
            th[_T_STATS].clear()

    def rows(self):
        out = []
        for th in list(self.threads):
            for code, s in list(th[_T_STATS].items()):
                rss = (s[_S_RN], s[_S_RMAX], s[_S_RCNT]) if s[_S_SEL] else None
                out.append((code, th[_T_IDENT], s[_S_CALLS], s[_S_OUTER], s[_S_NET], s[_S_MAX],
                            s[_S_GROSS], rss, th[_T_NAME]))
        return out

    def check(self):
        # Someone stopped tracemalloc under us: figures jumped; trace again.
        if self.on and not self.tm.is_tracing():
            self.tm.start(1)
            self.started_tracemalloc = True
            self.restarted += 1

    def info(self):
        return {"tool_id": self.tool, "started_tracemalloc": self.started_tracemalloc,
                "tracemalloc_restarted": self.restarted, "open_frames": self.open_frames()}

    def open_frames(self):
        th = getattr(self.local, "th", None)
        return len(th[_T_STACK]) if th is not None else 0

    def _make_callbacks(self):
        """Build enter(code, start) and leave(code) as closures over locals."""
        eng = self
        local = self.local
        threads = self.threads
        get = self.tm.get_traced_memory
        get_ident = threading.get_ident
        active = threading._active
        rss_names = self.rss
        statm = self.statm
        page = getattr(self, "page", 4096)
        pread = os.pread
        last = [get()[0]]

        def rss_now():
            try:
                return int(pread(statm, 128, 0).split()[1]) * page
            except Exception:
                return -1

        def new_thread():
            th = [[], 0, 0, {}, None, 64, get_ident()]
            local.th = th
            threads.append(th)
            return th

        def enter(code, start):
            if not eng.on:
                return
            try:
                th = local.th
            except AttributeError:
                th = new_thread()
            if th[_T_NAME] is None and th[_T_TRIES]:
                # A new thread enters threading._active a few calls into its bootstrap.
                th[_T_TRIES] -= 1
                th[_T_NAME] = getattr(active.get(th[_T_IDENT]), "_name", None)
            cur = get()[0]
            d = cur - last[0]
            last[0] = cur
            net = th[_T_NET] = th[_T_NET] + d
            if d > 0:
                th[_T_GROSS] += d
            s = th[_T_STATS].get(code)
            if s is None:
                sel = 1 if rss_names and statm is not None and (
                    getattr(code, "co_qualname", None) in rss_names
                    or code.co_name in rss_names) else 0
                s = th[_T_STATS][code] = [0, 0, 0, 0, 0, 0, 0, 0, 0, sel]
            s[_S_CALLS] += start
            s[_S_DEPTH] += 1
            if s[_S_DEPTH] == 1:
                th[_T_STACK].append((code, s, net, th[_T_GROSS], rss_now() if s[_S_SEL] else -1))
            else:
                th[_T_STACK].append((code, s, 0, 0, -1))

        def close(th, frame):
            s = frame[1]
            s[_S_DEPTH] -= 1
            if s[_S_DEPTH]:
                return
            net = th[_T_NET] - frame[2]
            if s[_S_OUTER] == 0 or net > s[_S_MAX]:
                s[_S_MAX] = net
            s[_S_OUTER] += 1
            s[_S_NET] += net
            s[_S_GROSS] += th[_T_GROSS] - frame[3]
            if frame[4] >= 0:
                r = rss_now()
                if r >= 0:
                    d = r - frame[4]
                    if s[_S_RCNT] == 0 or d > s[_S_RMAX]:
                        s[_S_RMAX] = d
                    s[_S_RN] += d
                    s[_S_RCNT] += 1

        def leave(code):
            if not eng.on:
                return
            try:
                th = local.th
            except AttributeError:
                return
            stack = th[_T_STACK]
            if not stack:
                return
            cur = get()[0]
            d = cur - last[0]
            last[0] = cur
            th[_T_NET] += d
            if d > 0:
                th[_T_GROSS] += d
            if stack[-1][0] is not code:
                i = len(stack) - 1
                while i > 0 and stack[i - 1][0] is not code:
                    i -= 1
                if i == 0:
                    return
                while len(stack) > i:
                    close(th, stack.pop())
            close(th, stack.pop())

        def profile(frame, event, arg):
            # An exception here would unset the profiler and surface in the
            # host's code: swallow it.
            try:
                if event == "call":
                    if not eng.on:
                        sys.setprofile(None)
                        return
                    code = frame.f_code
                    enter(code, _frame_is_start(frame, code))
                elif event == "return":
                    if not eng.on:
                        sys.setprofile(None)
                        return
                    leave(frame.f_code)
            except Exception:
                pass

        self.enter, self.leave, self.profile = enter, leave, profile


def _frame_is_start(frame, code):
    if not code.co_flags & _GEN_FLAGS:
        return True
    if sys.version_info >= (3, 11):
        return frame.f_lasti <= 4
    return frame.f_lasti < 0


# ---------------------------------------------------------------------------
# Public API


class _State(object):
    def __init__(self):
        self.running = False
        self.since = None
        self.stopped = None
        self.error = None


_state = _State()


def running():
    """True while the tracer is on."""
    return _state.running


def _status():
    eng = _engine
    now = time.time()
    end = now if _state.running else (_state.stopped or now)
    out = {
        "running": _state.running,
        "native": _native is not None if eng is None else eng.native,
        "native_error": _native_why if _native is None else None,
        "modes": _available_modes(),
        "mode": eng.mode if eng else None,
        "accounting": eng.accounting if eng else None,
        "since": _state.since,
        "elapsed": round(end - _state.since, 3) if _state.since else 0.0,
        "rss_selected": list(eng.rss) if eng else [],
        "error": _state.error,
    }
    if eng is not None:
        try:
            out["hook"] = eng.info()
        except Exception as e:
            out["hook"] = {"error": str(e)}
    else:
        out["hook"] = None
    if eng is not None and not eng.native:
        out["slower"] = True
    return out


def start(rss=(), mode=None):
    """Start tracing (idempotent for the same arguments); returns the status.

    rss: names (qualified or plain) of at most 32 functions whose calls also
    measure the resident set size (two reads of /proc/self/statm per call).
    mode: None picks the fastest available (see MODES); a mode that is not
    available here raises ValueError.
    """
    global _engine
    names = _check_rss(rss)
    avail = _available_modes()
    if mode is not None:
        if mode not in MODES:
            raise ValueError("mode must be one of %s" % ", ".join(MODES))
        if mode not in avail:
            raise ValueError("mode %s is not available in this interpreter (available: %s)"
                             % (mode, ", ".join(avail)))
    else:
        mode = avail[0]
    with _lock:
        eng = None
        try:
            if _state.running:
                if _engine.mode == mode and tuple(sorted(_engine.rss)) == names:
                    return _status()
                _stop_locked()
            eng = (_NativeEngine if mode.endswith("-c") else _PyEngine)(mode, names)
            _state.error = None
            err = eng.begin()
            if err:
                _state.error = err
                try:
                    eng.end()
                except Exception:
                    pass
                return _status()
            _engine = eng
            _state.running = True
            _state.since = time.time()
            _state.stopped = None
        except Exception as e:
            _state.error = "could not start the function tracer: %s: %s" % (type(e).__name__, e)
            if eng is not None:
                try:
                    eng.end()
                except Exception:
                    pass
            _state.running = False
        return _status()


def _stop_locked():
    if not _state.running:
        return
    _state.running = False
    _state.stopped = time.time()
    try:
        _remember_names()
        _engine.end()
    except Exception as e:
        _state.error = "could not stop the function tracer cleanly: %s: %s" % (type(e).__name__, e)


def stop():
    """Stop tracing and remove every hook; results stay for table()."""
    with _lock:
        try:
            _stop_locked()
        except Exception as e:
            _state.error = "%s: %s" % (type(e).__name__, e)
        return _status()


def reset():
    """Forget the results (tracing, if on, continues from now)."""
    with _lock:
        try:
            if _engine is not None:
                _engine.clear()
            if _state.running:
                _state.since = time.time()
        except Exception as e:
            _state.error = "%s: %s" % (type(e).__name__, e)
        return _status()


@atexit.register
def _at_exit():
    # Leave nothing hooked while the interpreter finalizes.
    try:
        if _state.running:
            stop()
    except Exception:
        pass


def _remember_names():
    from .profiler import AGENT_THREADS
    for t in threading.enumerate():
        if t.ident is not None:
            _names[t.ident] = t.name
    _names.update(AGENT_THREADS)


def _code_name(code):
    return getattr(code, "co_qualname", None) or code.co_name


def table(limit=50, sort="net", include_agent=False):
    """The per-function table, sorted by sort (descending), at most limit rows.

    Rows from the agent's own threads (pmt-agent-*) are left out unless
    include_agent is true. See docs/functions.md for the shape.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError("limit must be an integer from 1 to %d" % MAX_LIMIT)
    if sort not in SORT_KEYS:
        raise ValueError("sort must be one of %s" % ", ".join(SORT_KEYS))
    with _lock:
        out = _status()
        out["sort"] = sort
        out["limit"] = limit
        out["functions"] = []
        out["total_functions"] = 0
        if _engine is None:
            return out
        try:
            if _state.running:
                _engine.check()
                _remember_names()
            rows = _engine.rows()
            out["functions"], out["total_functions"] = _fold(rows, limit, sort, include_agent)
            out["hook"] = _engine.info()
        except Exception as e:
            out["error"] = "could not build the function table: %s: %s" % (type(e).__name__, e)
        return out


def _fold(rows, limit, sort, include_agent):
    by_code = {}
    for code, ident, calls, outer, net, mx, gross, rss, tname in rows:
        name = tname or _names.get(ident) or "thread-%d" % ident
        if not include_agent and name.startswith(AGENT_THREAD_PREFIX):
            continue
        e = by_code.get(code)
        if e is None:
            e = by_code[code] = {"calls": 0, "outer": 0, "net": 0, "max": None, "gross": 0,
                                 "threads": [], "rss": None}
        e["calls"] += calls
        e["outer"] += outer
        e["net"] += net
        e["gross"] += gross
        if outer and (e["max"] is None or mx > e["max"]):
            e["max"] = mx
        e["threads"].append({"id": ident, "name": name, "calls": calls, "net": net,
                             "gross": gross})
        if rss is not None:
            r = e["rss"] or {"net": 0, "max": None, "calls": 0}
            r["net"] += rss[0]
            if rss[2] and (r["max"] is None or rss[1] > r["max"]):
                r["max"] = rss[1]
            r["calls"] += rss[2]
            e["rss"] = r
    funcs = []
    for code, e in by_code.items():
        e["max"] = e["max"] or 0
        e["mean"] = int(round(e["net"] / e["outer"])) if e["outer"] else 0
        e["threads"].sort(key=lambda t: -t["net"])
        if e["rss"] is not None:
            e["rss"]["max"] = e["rss"]["max"] or 0
        f = {"name": _code_name(code), "file": code.co_filename, "line": code.co_firstlineno}
        f.update(e)
        funcs.append(f)
    total = len(funcs)
    funcs.sort(key=lambda f: (-f[sort], f["name"]))
    return funcs[:limit], total
