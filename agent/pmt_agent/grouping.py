"""Group tracemalloc traces into top-N statistics (the agent's hot path).

group() takes the list returned by tracemalloc._get_traces() and returns the
groups for one key (lineno, filename, traceback; optionally cumulative),
filtered like tracemalloc.Filter on the most recent frame's filename.

It works in two steps. First, size and count are summed per traceback object:
tracemalloc interns tracebacks, so a trace list of a million entries usually
holds a few thousand distinct traceback tuples. The optional C extension
_pmt_native does this step without creating Python objects per trace; the
pure-Python fallback appends each size to a per-traceback list and sums the
lists with sum(), so no int objects are created per trace either (each one
would be traced, which is what makes Snapshot.statistics() slow while tracing).
Second, the distinct tracebacks are filtered and folded by key in Python.

The native module is used when importable (from sys.path, from
$PMT_TOP_NATIVE_DIR, or from the installed agent-native directory next to the
agent directory) unless $PMT_AGENT_NO_NATIVE is set to a non-empty value.
"""

import fnmatch
import heapq
import os
import re
import sys

NATIVE_API = 1


def _load_native():
    from .native import load
    mod, _ = load("_pmt_native", lambda m: getattr(m, "API_VERSION", None) == NATIVE_API)
    return mod


native = _load_native()


def _py_group_tracebacks(traces):
    """Pure-Python equivalent of _pmt_native.group_tracebacks()."""
    lists = {}
    get = lists.get
    for trace in traces:
        tb = trace[2]
        sizes = get(tb)
        if sizes is None:
            lists[tb] = [trace[1]]
        else:
            sizes.append(trace[1])
    return [(tb, sum(sizes), len(sizes)) for tb, sizes in lists.items()]


GIVE_BACK_TRACES = 50000      # a request over this many traces returns freed memory


def give_back():
    """Hand the C heap's freed pages back to the system.

    Building the trace list of a large heap, and the reply, allocates and
    frees tens of MB; glibc keeps freed pages for reuse, so without this the
    target's RSS stays that much higher after the first snapshot (+100 MB
    at a million traces). It costs 5-50 ms with the GIL released, against
    the request's own 50 ms or more at GIVE_BACK_TRACES traces and up. A
    no-op without the native module or outside glibc. Returns True if it ran.
    """
    fn = getattr(native, "give_back", None)
    return fn is not None and fn() is not None


def group_tracebacks(traces, use_native=True):
    """Return [(traceback, size, count)] with one entry per traceback object."""
    if use_native and native is not None:
        return native.group_tracebacks(traces)
    return _py_group_tracebacks(traces)


def _normalize(filename):
    filename = os.path.normcase(filename)
    if filename.endswith(".pyc"):
        filename = filename[:-1]
    return filename


try:
    from re import _compiler as _sre_compiler      # 3.11+
except ImportError:
    import sre_compile as _sre_compiler            # 3.8-3.10


def compile_glob(pattern):
    """A fnmatch pattern as a match function, compiled for this request only.

    fnmatch.fnmatchcase() and re.compile() keep every pattern they compile
    in module caches of up to 32,768 and 512 entries: patterns sent by
    clients would stay in the target for good. Raises ValueError for a
    pattern that does not compile.
    """
    try:
        return _sre_compiler.compile(fnmatch.translate(_normalize(pattern)), 0).match
    except (re.error, RecursionError, OverflowError) as e:
        raise ValueError("bad pattern %r: %s" % (pattern[:100], e))


def _make_filter(include, exclude):
    """Return a function filename -> keep (cached for this call), or None for no filter."""
    if not include and not exclude:
        return None
    inc = [compile_glob(p) for p in include or ()]
    exc = [compile_glob(p) for p in exclude or ()]
    cache = {}

    def keep(filename):
        ok = cache.get(filename)
        if ok is None:
            name = _normalize(filename)
            ok = ((not inc or any(m(name) for m in inc))
                  and not any(m(name) for m in exc))
            cache[filename] = ok
        return ok
    return keep


def group(traces, key="lineno", cumulative=False, include=(), exclude=(), use_native=True):
    """Group traces by key.

    Returns (groups, total_size, total_count) where groups is a list of
    [size, count, frames] sorted by size then count, largest first, and frames
    is a tuple of (filename, lineno) pairs, most recent call first. The totals
    cover every trace that passed the filters.
    """
    if key not in ("lineno", "filename", "traceback"):
        raise ValueError("unknown key %r" % (key,))
    if cumulative and key == "traceback":
        raise ValueError("cumulative is not allowed with key traceback")
    keep = _make_filter(include, exclude)
    stats = {}
    total_size = 0
    total_count = 0
    for tb, size, count in group_tracebacks(traces, use_native):
        if not tb:
            tb = (("<unknown>", 0),)
        if keep is not None and not keep(tb[0][0]):
            continue
        total_size += size
        total_count += count
        if key == "traceback":
            keys = (tb,)
        elif key == "lineno":
            keys = tb if cumulative else (tb[0],)
        elif cumulative:
            keys = [frame[0] for frame in tb]   # every frame, as the stdlib counts
        else:
            keys = (tb[0][0],)
        for k in keys:
            stat = stats.get(k)
            if stat is None:
                stats[k] = [size, count]
            else:
                stat[0] += size
                stat[1] += count
    groups = []
    for k, (size, count) in stats.items():
        if key == "traceback":
            frames = k
        elif key == "lineno":
            frames = (k,)
        else:
            frames = ((k, 0),)
        groups.append([size, count, frames])
    return groups, total_size, total_count


def top(groups, limit=None):
    """Return the largest groups (by size, then count), at most limit of them."""
    order = lambda g: (g[0], g[1])
    if limit is not None and limit < len(groups):
        return heapq.nlargest(limit, groups, key=order)
    return sorted(groups, key=order, reverse=True)
