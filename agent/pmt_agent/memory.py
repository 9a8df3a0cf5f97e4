"""What the target's allocators hold, for the composition of its RSS.

figures() returns the "memory" object of a status: glibc malloc's totals
(mallinfo2) and pymalloc's (the figures sys._debugmallocstats() prints,
written to memory, never to the target's stderr), each with the reason when
it is missing, the time they were taken and what taking them cost.

Both walk allocator structures: mallinfo2 every free chunk of every arena
under that arena's lock (with the GIL released), pymalloc every arena with
the GIL held. So they are taken again at most every TTL seconds, and less
often where taking them costs more than DUTY of one core. Between two
takings the same figures are returned, with their time.
"""

import os
import re
import threading
import time
import tracemalloc

from . import grouping
from . import profiler

TTL = 2.0
DUTY = 0.005
FRESH_DUTY = 0.01   # fresh figures, asked for in a loop, may take this share of one core

_lock = threading.Lock()
_last = None
_last_mono = 0.0
_last_tracing = False
_ttl = TTL

_PYMALLOC_FIELDS = (
    ("arenas", re.compile(r"^# arenas allocated current\s*=\s*([\d,]+)", re.M)),
    ("arena_bytes", re.compile(r"^[\d,]+ arenas \* [\d,]+ bytes/arena\s*=\s*([\d,]+)", re.M)),
    ("allocated", re.compile(r"^# bytes in allocated blocks\s*=\s*([\d,]+)", re.M)),
    ("available", re.compile(r"^# bytes in available blocks\s*=\s*([\d,]+)", re.M)),
    ("unused_pools", re.compile(r"^[\d,]+ unused pools \* [\d,]+ bytes\s*=\s*([\d,]+)", re.M)),
)


def parse_pymalloc(text):
    """The figures of a _debugmallocstats text as a dict of ints, or None
    when the text does not have them all."""
    out = {}
    for name, rx in _PYMALLOC_FIELDS:
        m = rx.search(text)
        if m is None:
            return None
        out[name] = int(m.group(1).replace(",", ""))
    return out


def _take():
    native = grouping.native
    mall = pym = None
    if os.environ.get("PMT_AGENT_NO_MEMORY"):
        mall_why = pym_why = "disabled by PMT_AGENT_NO_MEMORY"
    elif native is None or not hasattr(native, "malloc_figures"):
        mall_why = pym_why = "needs the agent's C helper _pmt_native, which is not loaded here"
    else:
        got = native.malloc_figures()
        if isinstance(got, dict):
            mall, mall_why = got, None
        else:
            mall_why = str(got)
        # The profiler's module gives them (lifting its own hook off pymalloc
        # for the call when it is on).
        sampler = getattr(profiler, "_native", None)
        text = sampler.pymalloc_text() if hasattr(sampler, "pymalloc_text") else None
        if not hasattr(sampler, "pymalloc_text"):
            pym_why = "needs the profiler's C helper _pmt_sampler, which is not loaded here"
        elif text is None and tracemalloc.is_tracing():
            pym_why = "hidden while tracemalloc hooks the allocator"
        elif text is None:
            pym_why = "this interpreter does not use pymalloc (PYTHONMALLOC=malloc, or a free-threaded build)"
        else:
            pym = parse_pymalloc(text)
            pym_why = None if pym is not None else "the interpreter's allocator statistics have another form"
    return {"malloc": mall, "malloc_why": mall_why, "pymalloc": pym, "pymalloc_why": pym_why}


def figures(fresh=False):
    """The newest figures, taken again when they are older than the TTL, or
    when FRESH (a trim wants them before and after, a headless command
    beside the smaps it reads), unless the last taking was so recent that
    another would take more than FRESH_DUTY of one core (a client asking
    in a loop)."""
    global _last, _last_mono, _ttl, _last_tracing
    now = time.monotonic()
    tracing = tracemalloc.is_tracing()
    with _lock:
        # Figures from before tracemalloc came or went were taken another
        # way (its hook hides pymalloc's): never given for the new state.
        if _last is not None and _last_tracing == tracing:
            ttl = _last["cost"] / FRESH_DUTY if fresh else _ttl
            if now - _last_mono < ttl:
                return _last
    c0 = time.thread_time()   # CPU: not the wait for the GIL after mallinfo2
    try:
        got = _take()
    except Exception as e:
        why = "failed: %s" % (str(e) or type(e).__name__)
        got = {"malloc": None, "malloc_why": why, "pymalloc": None, "pymalloc_why": why}
    cost = time.thread_time() - c0
    got["time"] = time.time()
    got["cost"] = cost
    with _lock:
        _last = got
        _last_mono = now
        _last_tracing = tracing
        _ttl = max(TTL, cost / DUTY)
    return got


def after_fork_child():
    """The parent's figures are not the child's; a thread of the parent may
    have held the lock."""
    global _lock, _last
    _lock = threading.Lock()
    _last = None
