"""Who holds it: live objects by type, and the reference chains that keep a
sample of them alive.

    heap.types(limit=50)                  # -> {"rows": [{type, count, size}], ...}
    heap.why(type_name_="app.Record", samples=8)   # -> {"chains", "holders", ...}
    heap.why(line=("app.py", 42))         # objects allocated at that line (tracemalloc)

The walks over every object (counting by type, picking samples, what a
holder retains) are C calls of _pmt_heap, each in one hold of the GIL with
the gc off: the list of every object never outlives a call, so no object the
application lets go meanwhile is kept alive by the agent (a memoryview kept
alive keeps its bytearray from being resized; a socket closes late; a __del__
would run in the agent's thread). The search for chains runs in Python, one
gc.get_referrers() pass per level, with a sleep between passes; it holds only
the samples and the objects on their chains, never a memoryview. Each reply
says the longest time the GIL was held in one go ("pause_max") and the wall
time. Without _pmt_heap the commands are unavailable.

Safety: no Python code of the application runs. Sizes come from the C
implementation of __sizeof__ (a class's own __sizeof__ is not called; its
instances are counted with object.__sizeof__), names from type's own
descriptors, keys are shown only when they are str, bytes or int (formatted
here), and every comparison is by identity (`is`, id()), never ==, hash() or
repr(). Nothing is kept after the reply.
"""

import array
import gc
import sys
import threading
import time

SLICE = 0.02            # the longest the GIL is held at once by a slice of the search
REST = 0.002            # the sleep between slices (other threads take the GIL)
MAX_DEPTH = 24          # the longest chain looked for
MAX_SAMPLES = 64
MAX_FRONTIER = 256      # objects asked about in one gc.get_referrers() pass
RETAINED_OBJECTS = 2000000
RETAINED_SECONDS = 0.05     # one GIL hold per holder: past it, a lower bound
KEY_CHARS = 40
_HAVE_GC = 1 << 14      # Py_TPFLAGS_HAVE_GC
_GC_HEADER = sys.getsizeof([]) - [].__sizeof__()
_lock = threading.Lock()     # one walk at a time


class Unavailable(Exception):
    """The heap walks need the _pmt_heap extension."""


def _load():
    from .native import load
    return load("_pmt_heap")


_native, _native_why = _load()


class _GcOff(object):
    """The gc off for a C walk: an object it allocates must not start a
    collection, whose finalizers would be Python code run with every object
    held."""

    def __enter__(self):
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.was:
            gc.enable()


def _need_native():
    if _native is None:
        raise Unavailable("the heap walks need the agent's C extension _pmt_heap: %s" % _native_why)


class Budget(object):
    """The search's time: tick() returns quickly until SLICE has passed, then
    sleeps REST so that the target's threads run (Python code between gives
    the GIL up every switch interval anyway: the sleep makes room for more).
    The GIL is held in one go only by C calls: note() records how long."""

    def __init__(self, seconds):
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + seconds
        self.slice_start = self.t0
        self.pause_max = 0.0
        self.slices = 0
        self.n = 0

    def note(self, seconds):
        """A stretch of work that could not be cut (one C call) took SECONDS."""
        self.pause_max = max(self.pause_max, seconds)

    def tick(self, every=256):
        self.n += 1
        if self.n % every:
            return
        if time.perf_counter() - self.slice_start >= SLICE:
            self.rest()

    def rest(self):
        self.slices += 1
        time.sleep(REST)
        self.slice_start = time.perf_counter()

    def over(self):
        return time.perf_counter() > self.deadline

    def figures(self):
        return {"pause_max": self.pause_max, "seconds": time.perf_counter() - self.t0,
                "slices": self.slices + 1}


# --- names and sizes, without running application code --------------------

_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__


def type_name(tp):
    """module.QualName of a class (type's own descriptors: no metaclass code)."""
    try:
        qual = _type_qualname(tp)
        mod = _type_module(tp)
    except Exception:
        return "?"
    if not isinstance(qual, str):
        qual = "?"
    if isinstance(mod, str) and mod != "builtins":
        return mod + "." + qual
    return qual


class Sizer(object):
    """sys.getsizeof() for each type, through its C __sizeof__ only."""

    def __init__(self):
        self.cache = {}
        self.method_descriptor = type(object.__sizeof__)

    def fn(self, tp):
        f = self.cache.get(id(tp))
        if f is None:
            f = object.__sizeof__
            for k in _type_mro(tp):
                d = _type_dict(k)
                if "__sizeof__" in d:
                    got = d["__sizeof__"]
                    if type(got) is self.method_descriptor:
                        f = got
                    break
            extra = _GC_HEADER if tp.__flags__ & _HAVE_GC else 0
            f = (f, extra, tp)      # tp: the id stays this type's while cached
            self.cache[id(tp)] = f
        return f

    def size(self, o):
        f, extra, _tp = self.fn(type(o))
        try:
            return f(o) + extra
        except Exception:
            return object.__sizeof__(o) + extra


def types(limit=50):
    """Live objects by type, largest first."""
    _need_native()
    with _lock:
        budget = Budget(60.0)
        with _GcOff():
            rows = _native.tally(_GC_HEADER)
        budget.note(_native.last_hold())
        tracked = sum(r[1] for r in rows)
        total = sum(r[2] for r in rows)
        rows.sort(key=lambda r: -r[2])
        out = [{"type": type_name(r[0]), "count": r[1], "size": r[2]} for r in rows[:limit]]
        del rows
        import tracemalloc
        reply = {"rows": out, "tracked": tracked, "tracked_bytes": total,
                 "allocated_blocks": sys.getallocatedblocks(), "complete": True,
                 "traced": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None}
        reply.update(budget.figures())
        return reply


# --- why alive ---------------------------------------------------------------

_FrameType = type(sys._getframe())
_ModuleType = type(sys)
_module_dict = _ModuleType.__dict__["__dict__"].__get__
_CellType = type((lambda x: lambda: x)(0).__closure__[0])
_FunctionType = type(type_name)
_GetSetType = type(type.__dict__["__dict__"])
_AGENT_DIR = __file__.rsplit("/", 1)[0]


def _key_text(k):
    """A dict key as the chain shows it: str, bytes and int only (formatted
    here, never through their __repr__), else its type."""
    tp = type(k)
    if tp is str:
        t = k if len(k) <= KEY_CHARS else k[:KEY_CHARS] + "..."
        return "'" + t.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if tp is bytes:
        return "b'" + k[:KEY_CHARS].hex() + ("..." if len(k) > KEY_CHARS else "") + "'"
    if tp is int or tp is bool:
        return int.__repr__(k)
    return "<%s>" % type_name(tp)


def _length(o):
    """len() of the builtin containers through their own C __len__."""
    for base in (dict, list, tuple, set, frozenset):
        if issubclass(type(o), base):
            return base.__len__(o)
    return None


def _attr_dict(o):
    """An instance's __dict__ through the C descriptor of its class, or None."""
    for k in _type_mro(type(o)):
        d = _type_dict(k)
        if "__dict__" in d:
            got = d["__dict__"]
            if type(got) is _GetSetType:
                try:
                    return got.__get__(o)
                except Exception:
                    return None
            return None
    return None


def _edge(container, child, budget=None):
    """How CONTAINER refers to CHILD: 'value for key K', 'index 3', 'attribute
    NAME', ... (identity comparisons only)."""
    tp = type(container)
    if issubclass(tp, dict):
        for k, v in dict.items(container):
            if v is child:
                return "value for key " + _key_text(k)
            if k is child:
                return "key"
            if budget is not None:
                budget.tick(1024)
        return "in dict"
    if issubclass(tp, (list, tuple)):
        base = list if issubclass(tp, list) else tuple
        i = 0
        for v in base.__iter__(container):
            if v is child:
                return "index %d" % i
            i += 1
            if budget is not None:
                budget.tick(1024)
        return "item"
    if issubclass(tp, (set, frozenset)):
        return "member"
    if issubclass(tp, type):
        for k, v in _type_dict(container).items():
            if v is child:
                return "class attribute " + (k if type(k) is str else "?")
        return "class internals"
    if tp is _CellType:
        return "closure cell"
    if tp is _FunctionType:
        code = container.__code__
        cells = container.__closure__ or ()
        for i, c in enumerate(cells):
            if c is child and i < len(code.co_freevars):
                return "closure variable " + code.co_freevars[i]
        if container.__closure__ is child:
            return "closure"
        if container.__defaults__ is child:
            return "defaults"
        return "function internals"
    d = _attr_dict(container)
    if d is not None:
        if d is child:
            return "__dict__"
        for k, v in dict.items(d):
            if v is child:
                return "attribute " + (k if type(k) is str else "?")
    return "referent"


def _describe(o, sizer):
    row = {"type": type_name(type(o)), "size": sizer.size(o)}
    n = _length(o)
    if n is not None:
        row["len"] = n
    return row


class _Roots(object):
    """Where a chain ends: a module's globals, a local variable of a thread's
    frame (the agent's threads left out), a class. Local variables are kept
    as the ids of their values, frames as ids: holding them would keep a
    finished function's locals alive."""

    def __init__(self, agent_threads):
        self.modules = {}           # id(module dict) -> module name
        self.held = []              # the modules' dicts (they live as long as their modules)
        mods = sys.modules
        for name, m in list(dict.items(mods) if issubclass(type(mods), dict) else ()):
            if issubclass(type(m), _ModuleType) and type(name) is str:
                try:
                    d = _module_dict(m)
                except Exception:
                    continue
                self.modules[id(d)] = name
                self.held.append(d)
        self.locals = {}            # id(value) -> (thread name, function, variable)
        self.frames = set()         # ids of frame objects and their locals dicts
        names = {}
        for t in threading.enumerate():
            d = _attr_dict(t)
            if d is not None and type(d.get("_name")) is str:
                names[t.ident] = d["_name"]
        for ident, f in sys._current_frames().items():
            if ident in agent_threads or ident == threading.get_ident():
                continue
            while f is not None:
                self.frames.add(id(f))
                try:
                    loc = f.f_locals
                except Exception:
                    loc = {}
                if id(loc) in self.modules or loc is f.f_globals:
                    items = ()                  # a module's code: its globals are rooted there
                elif issubclass(type(loc), dict):
                    self.frames.add(id(loc))
                    items = list(dict.items(loc))
                else:
                    items = list(loc.items())   # 3.13+: the frame's proxy (C)
                for var, v in items:
                    if id(v) not in self.locals and id(v) not in self.modules:
                        self.locals[id(v)] = (names.get(ident, str(ident)), f.f_code.co_name,
                                              var if type(var) is str else "?")
                items = loc = v = None
                f = f.f_back

    def root_of(self, o):
        """The root O is, as a chain's first step, or None."""
        if id(o) in self.modules:
            return {"root": "module", "name": self.modules[id(o)]}
        if id(o) in self.locals:
            thread, func, var = self.locals[id(o)]
            return {"root": "local", "thread": thread, "function": func, "name": var}
        if issubclass(type(o), type):
            return {"root": "class", "name": type_name(o)}
        return None


def _ours(r):
    """A frame of the agent's own code (its locals hold what it walks)."""
    return type(r) is _FrameType and r.f_code.co_filename.startswith(_AGENT_DIR)


def _dead_end(s, origins, nodes, nsamples, sample_refs):
    """Why the search from sample S found no root: the objects it met hold
    each other and nothing else holds them (garbage in a cycle, until the
    gc's next collection), or something the gc cannot see holds one."""
    mine = [i for i in range(len(nodes)) if s in origins[i]]
    ids = dict((id(nodes[i]), i) for i in mine)
    inside = dict.fromkeys(mine, 0)
    for i in mine:
        for c in gc.get_referents(nodes[i]):
            j = ids.get(id(c))
            if j is not None:
                inside[j] += 1
    c = None
    cal = [object()]
    extra = sys.getrefcount(cal[0]) - 1
    # references: `nodes`, and the caller's SAMPLE_REFS for the samples
    held = [sys.getrefcount(nodes[i]) - 1 - extra - (sample_refs if i < nsamples else 0) - inside[i]
            for i in mine]
    if len(mine) > 1 and not any(held):
        return ("garbage: an unreachable reference cycle of %d objects, freed at the gc's "
                "next collection (unless the gc is disabled)" % len(mine))
    return "no referrer the gc can see (held by C code or an untracked object)"


def _chains(samples, roots, budget, ours=(), sample_refs=1, max_nodes=200000):
    """Shortest chains of references from a root to each sample: a search
    backwards, one gc.get_referrers() pass per level for every sample at
    once. OURS: ids of the caller's containers (never part of a chain);
    SAMPLE_REFS: the references the caller holds to each sample. Returns {sample index: [node indices root..sample]} and the nodes."""
    nodes = list(samples)
    index = dict((id(o), i) for i, o in enumerate(nodes))
    origins = [set([i]) for i in range(len(nodes))]
    down = {}                       # (node, sample) -> the next node toward the sample
    found = {}
    ends = {}                       # sample -> why its search ended without a root

    def settle(i):
        if roots.root_of(nodes[i]) is None:
            return
        for s in origins[i]:
            if s in found:
                continue
            path, j = [i], i
            while j != s:
                j = down[(j, s)]
                path.append(j)
            found[s] = path

    for i in range(len(nodes)):
        settle(i)
    frontier = [i for i in range(len(nodes)) if i not in found]
    for _depth in range(MAX_DEPTH):
        if not frontier or budget.over() or len(nodes) > max_nodes:
            break
        nxt = []
        live_sources = set()
        for start in range(0, len(frontier), MAX_FRONTIER):
            chunk = [i for i in frontier[start:start + MAX_FRONTIER]
                     if origins[i] - set(found)]
            if not chunk:
                continue
            live_sources.update(s for i in chunk for s in origins[i])
            want = dict((id(nodes[i]), i) for i in chunk)
            args = tuple(nodes[i] for i in chunk)
            t = time.thread_time()
            refs = gc.get_referrers(*args)
            budget.note(time.thread_time() - t)
            for r in refs:
                rid = id(r)
                if (r is nodes or r is samples or r is args or r is refs or r is frontier or r is nxt
                        or rid in roots.frames or r is roots.held or rid in ours or _ours(r)
                        or type(r) is memoryview):
                    continue
                for c in gc.get_referents(r):
                    budget.tick(1024)
                    ci = want.get(id(c))
                    if ci is None:
                        continue
                    ri = index.get(rid)
                    if ri is None:
                        ri = index[rid] = len(nodes)
                        nodes.append(r)
                        origins.append(set())
                    new = False
                    for s in origins[ci]:
                        if s not in found and (ri, s) not in down and ri != ci:
                            down[(ri, s)] = ci
                            origins[ri].add(s)
                            new = True
                    if new:
                        nxt.append(ri)
                budget.tick(16)
            del refs, args
            r = c = None        # the loops' last objects: no reference may outlive its use
            budget.rest()
        reached = set(s for i in nxt for s in origins[i])
        for s in live_sources - reached - set(found):
            ends.setdefault(s, _dead_end(s, origins, nodes, len(samples), sample_refs))
        nxt = list(dict.fromkeys(nxt))
        for i in nxt:
            settle(i)
        frontier = [i for i in nxt if origins[i] - set(found)]
    for s in range(len(samples)):
        if s not in found and s not in ends:
            ends[s] = "search stopped (depth %d, budget or node limit)" % MAX_DEPTH
    return found, ends, nodes


def _retained(holder, budget, skip):
    """What only HOLDER keeps alive, itself included (_pmt_heap.retained:
    one GIL hold of at most RETAINED_SECONDS)."""
    with _GcOff():
        size, count, truncated = _native.retained(holder, skip, RETAINED_OBJECTS,
                                                  RETAINED_SECONDS, _GC_HEADER)
    budget.note(_native.last_hold())
    return {"bytes": size, "objects": count, "truncated": truncated}


def _classes_named(name):
    """Every class whose type_name() is NAME (object's subclasses, walked
    through type.__subclasses__: C, no metaclass code)."""
    out, todo, seen = [], [object], set()
    while todo:
        c = todo.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        if type_name(c) == name:
            out.append(c)
        try:
            todo.extend(type.__subclasses__(c))
        except TypeError:
            pass
    return tuple(out)


def _pick_by_type(name, n, budget):
    """Up to N objects whose type is named NAME (paths of one), spread over
    the heap, and how many there are."""
    classes = _classes_named(name)
    if not classes or memoryview in classes:
        return [], 0
    with _GcOff():
        picked, total = _native.pick_type(classes, n)
    budget.note(_native.last_hold())
    return [[o] for o in picked], total


def _pick_by_line(filename, lineno, n, budget):
    """Up to N objects allocated at FILENAME:LINENO (tracemalloc's traceback
    of each object), each with the path from a tracked object that holds it."""
    import tracemalloc
    if not tracemalloc.is_tracing():
        return None, 0
    with _GcOff():
        picked, total = _native.pick_line(filename, lineno, n)
    budget.note(_native.last_hold())
    return [list(p) for p in picked if type(p[-1]) is not memoryview], total


def _key_name(edge, prefix="value for key '"):
    """NAME of an edge "value for key 'NAME'" (a str key), else None."""
    if edge.startswith(prefix) and edge.endswith("'"):
        return edge[len(prefix):-1]
    return None


def _steps(path, roots, sizer, budget=None):
    """A path of objects (root first) as the chain shows it: (root, steps,
    holder). Each step is an object (type, size, len) and "via", how the one
    before it refers to it; a module's or class's dict, an instance's
    __dict__ and a closure's tuple and cell are folded into the step after
    them ("global _CACHE", "class attribute entries", "attribute payload",
    "closure variable blob")."""
    root = roots.root_of(path[0])
    edges = [_edge(path[i], path[i + 1], budget) for i in range(len(path) - 1)]
    steps = []
    i = 0
    via = None
    if root["root"] == "local":
        via = "local variable " + root["name"]
    elif root["root"] == "module":
        i = 1
        name = _key_name(edges[0]) if edges else None
        via = "global " + name if name is not None else edges[0] if edges else None
    elif root["root"] == "class" and len(path) > 2 and edges[0] == "class internals":
        name = _key_name(edges[1])
        if name is not None:
            i = 2
            via = "class attribute " + name
    if i >= len(path):
        i = len(path) - 1
    first = i
    while i < len(path):
        o = path[i]
        step = _describe(o, sizer)
        step["via"] = via
        steps.append(step)
        if i + 1 >= len(path):
            break
        e = edges[i]
        if e == "__dict__" and i + 2 < len(path) and _key_name(edges[i + 1]) is not None:
            via = "attribute " + _key_name(edges[i + 1])
            i += 2
        elif (e == "closure" and i + 3 < len(path) and edges[i + 1].startswith("index ")
              and edges[i + 2] == "closure cell"):
            k = int(edges[i + 1][6:])
            names = o.__code__.co_freevars
            via = "closure variable " + (names[k] if k < len(names) else "?")
            i += 3
        else:
            via = e
            i += 1
    return root, steps, path[first]


def why(type_name_=None, line=None, samples=8, budget_seconds=10.0, retained=True):
    """The shortest reference chains from a root to a few objects of a type
    (TYPE_NAME_, as types() names it) or allocated at LINE ((file, lineno),
    tracemalloc on), grouped by holder with what each holder retains."""
    from . import profiler
    _need_native()
    with _lock:
        budget = Budget(budget_seconds)
        sizer = Sizer()
        if line is not None:
            picked, total = _pick_by_line(line[0], line[1], samples, budget)
            if picked is None:
                return None
        else:
            picked, total = _pick_by_type(type_name_, samples, budget)
        roots = _Roots(profiler.AGENT_THREADS)
        heads = [p[0] for p in picked]
        ours = set(id(p) for p in picked)
        ours.add(id(picked))
        found, ends, nodes = _chains(heads, roots, budget, ours, sample_refs=2)
        del heads
        chains = []
        holders = {}
        for s in range(len(picked)):
            if s not in found:
                step = _describe(picked[s][-1], sizer)
                step["via"] = None
                chains.append({"root": None, "end": ends.get(s, ""), "steps": [step]})
                continue
            root, steps, h = _steps([nodes[i] for i in found[s]] + picked[s][1:], roots, sizer, budget)
            chains.append({"root": root, "steps": steps})
            # The holder: the first object under the root (a module's
            # global, a class attribute, a local variable's value).
            e = holders.get(id(h))
            if e is None:
                e = holders[id(h)] = {"root": root, "samples": 0, "holder": steps[0], "obj": h}
            e["samples"] += 1
        rows = sorted(holders.values(), key=lambda e: -e["samples"])
        held = [e.pop("obj") for e in rows]
        # Nothing of the search may count as a reference from outside.
        skip = list(roots.held)
        h = None
        del nodes, picked, found, roots, holders, h
        for e, h in zip(rows, held):
            if retained and not budget.over():
                e["retained"] = _retained(h, budget, skip)
                e["retained"]["estimate"] = True
        held.clear()
        reply = {"chains": chains, "holders": rows, "matched": total}
        reply.update(budget.figures())
        return reply
