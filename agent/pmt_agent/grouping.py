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

fold() is what the agent's top and snapshot use: with the native module
(API 2) the whole request -- per-traceback sums, filters, the fold by key,
freeing the trace list, choosing and ordering the rows, and their JSON --
runs in C, in slices of a few milliseconds with a return to the interpreter
between them, so that the target's threads get the GIL while it works. The
pure-Python path gives the same rows and bytes.

The native module is used when importable (from sys.path, from
$PMT_TOP_NATIVE_DIR, or from the installed agent-native directory next to the
agent directory) unless $PMT_AGENT_NO_NATIVE is set to a non-empty value.
"""

import heapq
import os
import sys

from . import proto

NATIVE_API = 2


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


# A glob is matched here, without the re module: re.compile() and fnmatch
# keep what they compile in module caches, and re's parser leaves reference
# cycles behind; either would be the agent's memory in the target's tables.
# Tokens: a str is one literal character, STAR any run of characters, ANY
# one character, and a tuple (negated, characters, ranges) a class.
STAR, ANY = object(), object()


def _class_items(stuff):
    """The items of a class as the regex [stuff] reads them: (chars, ranges)."""
    toks = []
    i = 0
    while i < len(stuff):
        if stuff[i] == "\\" and i + 1 < len(stuff):
            toks.append((stuff[i + 1], True))
            i += 2
        else:
            toks.append((stuff[i], False))
            i += 1
    chars, ranges = set(), []
    i = 0
    while i < len(toks):
        lo = toks[i][0]
        if i + 2 < len(toks) and toks[i + 1] == ("-", False):
            hi = toks[i + 2][0]
            if hi < lo:
                raise ValueError("bad character range %s-%s" % (lo, hi))
            ranges.append((lo, hi))
            i += 3
        else:
            chars.add(lo)
            i += 1
    return frozenset(chars), tuple(ranges)


def _bracket(pat, i, j):
    """The token of the class pat[i:j] ('[' before i, ']' at j), read the
    way fnmatch.translate() reads it: None for a class that matches nothing."""
    stuff = pat[i:j]
    if "-" in stuff:
        # Split at the hyphens that make ranges (not the first character),
        # drop reversed ranges, and keep every other hyphen literal.
        chunks = []
        k = i + 2 if pat[i] == "!" else i + 1
        while True:
            k = pat.find("-", k, j)
            if k < 0:
                break
            chunks.append(pat[i:k])
            i = k + 1
            k += 3
        if pat[i:j]:
            chunks.append(pat[i:j])
        else:
            chunks[-1] += "-"
        for k in range(len(chunks) - 1, 0, -1):
            if chunks[k - 1][-1] > chunks[k][0]:
                chunks[k - 1] = chunks[k - 1][:-1] + chunks[k][1:]
                del chunks[k]
        stuff = "-".join(c.replace("\\", "\\\\").replace("-", "\\-") for c in chunks)
    else:
        stuff = stuff.replace("\\", "\\\\")
    if not stuff:
        return None
    if stuff == "!":
        return ANY
    negated = stuff[0] == "!"
    chars, ranges = _class_items(stuff[1:] if negated else stuff)
    return (negated, chars, ranges)


def _glob_tokens(pat):
    out = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        i += 1
        if c == "*":
            out.append(STAR)
            while i < n and pat[i] == "*":
                i += 1
        elif c == "?":
            out.append(ANY)
        elif c == "[":
            j = i
            if j < n and pat[j] == "!":
                j += 1
            if j < n and pat[j] == "]":
                j += 1
            while j < n and pat[j] != "]":
                j += 1
            if j >= n:
                out.append("[")
            else:
                out.append(_bracket(pat, i, j))
                i = j + 1
        else:
            out.append(c)
    return out


def _one(tok, c):
    if tok is ANY:
        return True
    if tok is None:
        return False
    if isinstance(tok, str):
        return tok == c
    negated, chars, ranges = tok
    inside = c in chars or any(lo <= c <= hi for lo, hi in ranges)
    return inside != negated


def compile_glob(pattern):
    """A fnmatch pattern as a match function (name -> bool), for this request only.

    Matches as fnmatch.fnmatchcase() does after os.path.normcase(); raises
    ValueError for a pattern whose regex fnmatch could not compile.
    """
    try:
        toks = _glob_tokens(_normalize(pattern))
    except (ValueError, IndexError) as e:
        raise ValueError("bad pattern %r: %s" % (pattern[:100], e))
    m = len(toks)

    def match(name):
        p = s = 0
        star = -1
        mark = 0
        n = len(name)
        while s < n:
            if p < m and toks[p] is not STAR and _one(toks[p], name[s]):
                p += 1
                s += 1
            elif p < m and toks[p] is STAR:
                star, mark = p, s
                p += 1
            elif star >= 0:
                p = star + 1
                mark += 1
                s = mark
            else:
                return False
        while p < m and toks[p] is STAR:
            p += 1
        return p == m
    return match


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


def group(traces, key="lineno", cumulative=False, include=(), exclude=(), use_native=True,
          agent=None):
    """Group traces by key.

    Returns (groups, total_size, total_count) where groups is a list of
    [size, count, frames] (in no particular order) and frames is a tuple of
    (filename, lineno) pairs, most recent call first. The totals cover every
    trace that passed the filters. Traces with any frame in a file whose name
    starts with agent (a str) are left out.
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
        if agent is not None and any(frame[0].startswith(agent) for frame in tb):
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


class Raw(object):
    """JSON text (bytes) the reply encoder writes as it is."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


class _PyFold(object):
    def __init__(self, rows, info):
        self._rows = rows
        self.info = info

    def rows(self):
        return self._rows

    def heads(self):
        return [r[2][0] for r in self._rows]

    def encode(self, lines):
        out = [{"size": s, "count": c, "frames": f, "line": lines[i] if lines else ""}
               for i, (s, c, f) in enumerate(self._rows)]
        return proto.dumps(out).encode("utf-8", "replace")


class _NativeFold(object):
    def __init__(self, f):
        self._f = f
        self.info = native.fold_info(f)

    def rows(self):
        return native.fold_rows(self._f)

    def heads(self):
        return native.fold_heads(self._f)

    def encode(self, lines):
        step, f = native.fold_encode, self._f
        data = step(f, lines)
        while data is None:         # a slice at a time: other threads may run between
            data = step(f, lines)
        return data


def fold(traces, key="lineno", cumulative=False, include=(), exclude=(), agent=None, limit=None,
         use_native=True):
    """Group the list traces and choose the largest limit rows (None: all).

    Empties traces. Returns an object with .info = (groups, total_size,
    total_count), .rows() ([size, count, frames], largest first, as top()
    orders them), .heads() (each row's latest frame) and .encode(lines) (the
    rows as the protocol's JSON array, bytes; lines: one str per row, or
    None). Raises ValueError for a bad key or pattern.
    """
    if key not in ("lineno", "filename", "traceback"):
        raise ValueError("unknown key %r" % (key,))
    if cumulative and key == "traceback":
        raise ValueError("cumulative is not allowed with key traceback")
    if use_native and native is not None:
        f = native.fold_new(traces, key, cumulative, _make_filter(include, exclude), agent, limit)
        step = native.fold_step
        while not step(f):          # a slice at a time: other threads may run between
            pass
        return _NativeFold(f)
    groups, total_size, total_count = group(traces, key, cumulative, include, exclude, False, agent)
    del traces[:]
    ngroups = len(groups)
    return _PyFold(top(groups, limit), (ngroups, total_size, total_count))
