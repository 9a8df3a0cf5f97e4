"""Who holds it: live objects by type, and the reference chains that keep a
sample of them alive.

    heap.types(limit=50)                  # -> {"rows": [{type, count, size}], ...}
    heap.why(type_name="bytes", samples=8)  # -> {"chains": [...], "holders": [...], ...}
    heap.why(line=("app.py", 42))         # objects allocated at that line (tracemalloc)

Both walk the heap with the GIL held, in slices of at most SLICE seconds with
a sleep between them, so that the target's other threads run; each reply
says the longest time the GIL was held in one go ("pause_max") and the wall
time. Only objects the gc tracks can be listed (gc.get_objects()); objects it
does not track (str, bytes, int, ...) are counted when a tracked container
holds them in the chains, and `allocated_blocks` beside `tracked` shows the gap.

Safety: no Python code of the application ever runs. Sizes come from the
C implementation of __sizeof__ (a class's own __sizeof__ is not called; its
instances are counted with object.__sizeof__), names from the type's own
dict, keys are shown only when they are str, bytes or int (formatted here),
and every comparison is by identity (`is`, id()), never ==, hash() or repr().
Nothing is kept after the reply: the lists of objects a walk holds are
dropped before it returns.
"""

import gc
import sys
import threading
import time

SLICE = 0.02            # the longest the GIL is held at once by a slice of work
REST = 0.002            # the sleep between slices (other threads take the GIL)
MAX_DEPTH = 24          # the longest chain looked for
MAX_SAMPLES = 64
MAX_FRONTIER = 256      # objects asked about in one gc.get_referrers() pass
RETAINED_OBJECTS = 2000000
KEY_CHARS = 40
_HAVE_GC = 1 << 14      # Py_TPFLAGS_HAVE_GC
_GC_HEADER = sys.getsizeof([]) - [].__sizeof__()
_lock = threading.Lock()     # one walk at a time


class Budget(object):
    """Slices of work: tick() returns quickly until SLICE has passed, then
    sleeps REST (the GIL is released) and records the slice's length."""

    def __init__(self, seconds):
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + seconds
        self.slice_start = self.t0
        self.pause_max = 0.0
        self.slices = 0
        self.n = 0

    def note(self, started):
        """A stretch of work that could not be cut (one C call) ended now."""
        self.pause_max = max(self.pause_max, time.perf_counter() - started)

    def tick(self, every=256):
        self.n += 1
        if self.n % every:
            return
        now = time.perf_counter()
        if now - self.slice_start >= SLICE:
            self.rest(now)

    def rest(self, now=None):
        now = time.perf_counter() if now is None else now
        self.pause_max = max(self.pause_max, now - self.slice_start)
        self.slices += 1
        time.sleep(REST)
        self.slice_start = time.perf_counter()

    def over(self):
        return time.perf_counter() > self.deadline

    def figures(self):
        now = time.perf_counter()
        self.pause_max = max(self.pause_max, now - self.slice_start)
        return {"pause_max": self.pause_max, "seconds": now - self.t0, "slices": self.slices + 1}


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


def _all_objects(budget):
    """Every object the gc tracks, generation by generation (each a single
    C call: the pause it makes is noted). The list holds itself (it is
    tracked too): the caller clears it, or it would live until the next
    collection, and everything with it."""
    out = []
    for g in range(len(gc.get_count())):
        t = time.perf_counter()
        out.extend(gc.get_objects(generation=g))
        budget.note(t)
        budget.rest()
    return out


# --- types -----------------------------------------------------------------

def types(limit=50, budget_seconds=30.0):
    """Live objects by type, largest first."""
    with _lock:
        budget = Budget(budget_seconds)
        objs = _all_objects(budget)
        tracked = len(objs) - 1      # itself
        sizer = Sizer()
        counts = {}
        for i in range(len(objs)):
            o = objs[i]
            if o is objs:
                continue
            tp = type(o)
            row = counts.get(id(tp))
            if row is None:
                row = counts[id(tp)] = [tp, 0, 0]
            row[1] += 1
            row[2] += sizer.size(o)
            budget.tick()
            if budget.over():
                break
        complete = i + 1 == len(objs)
        objs.clear()
        del objs, o
        rows = sorted(counts.values(), key=lambda r: -r[2])
        total = sum(r[2] for r in rows)
        out = [{"type": type_name(r[0]), "count": r[1], "size": r[2]} for r in rows[:limit]]
        del rows, counts, sizer
        import tracemalloc
        reply = {"rows": out, "tracked": tracked, "tracked_bytes": total,
                 "allocated_blocks": sys.getallocatedblocks(), "complete": complete,
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


def _edge(container, child):
    """How CONTAINER refers to CHILD: 'value for key K', 'index 3', 'attribute
    NAME', ... (identity comparisons only)."""
    tp = type(container)
    if issubclass(tp, dict):
        for k, v in dict.items(container):
            if v is child:
                return "value for key " + _key_text(k)
            if k is child:
                return "key"
        return "in dict"
    if issubclass(tp, (list, tuple)):
        base = list if issubclass(tp, list) else tuple
        i = 0
        for v in base.__iter__(container):
            if v is child:
                return "index %d" % i
            i += 1
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
    frame (the agent's threads left out), a class."""

    def __init__(self, agent_threads):
        self.modules = {}           # id(module dict) -> module name
        self.held = []              # strong references for the query's life
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
                if issubclass(type(loc), dict):
                    self.frames.add(id(loc))
                    self.held.append(loc)
                    items = dict.items(loc)
                else:
                    items = list(loc.items())   # 3.13+: the frame's proxy (C)
                for var, v in items:
                    if id(v) not in self.locals and id(v) not in self.modules:
                        self.locals[id(v)] = (names.get(ident, str(ident)), f.f_code.co_name,
                                              var if type(var) is str else "?")
                        self.held.append(v)
                self.held.append(f)
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
            t = time.perf_counter()
            refs = gc.get_referrers(*args)
            budget.note(t)
            for r in refs:
                rid = id(r)
                if (r is nodes or r is samples or r is args or r is refs or r is frontier or r is nxt
                        or rid in roots.frames or r is roots.held or rid in ours or _ours(r)):
                    continue
                for c in gc.get_referents(r):
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


def _retained(holder, sizer, budget, skip=(), limit=RETAINED_OBJECTS):
    """Bytes that only HOLDER keeps alive (itself included): the objects
    reachable from it whose every reference comes from inside that set, less
    everything reachable from one that is also held from outside. Classes,
    modules and modules' globals (SKIP: their ids) are never entered. An
    estimate: references the gc does not traverse count as from outside."""
    objs = [holder]
    index = {id(holder): 0}
    inside = [0]
    edges = []
    truncated = False
    i = 0
    while i < len(objs):
        o = objs[i]
        kids = []
        for c in gc.get_referents(o):
            if issubclass(type(c), (type, _ModuleType)) or id(c) in skip:
                continue
            j = index.get(id(c))
            if j is None:
                if len(objs) >= limit or budget.over():
                    truncated = True
                    continue
                j = index[id(c)] = len(objs)
                objs.append(c)
                inside.append(0)
            inside[j] += 1
            kids.append(j)
        edges.append(kids)
        i += 1
        budget.tick(64)
    o = c = None        # the loops' last objects would count as held from outside
    outside = [False] * len(objs)
    todo = []
    cal = [object()]
    extra = sys.getrefcount(cal[0]) - 1     # the call's own references
    for j in range(1, len(objs)):
        # references beyond those from inside and from `objs`: held outside
        if sys.getrefcount(objs[j]) - 1 - extra > inside[j]:
            outside[j] = True
            todo.append(j)
        budget.tick(256)
    while todo:
        j = todo.pop()
        for k in edges[j] if j < len(edges) else ():
            if k and not outside[k]:
                outside[k] = True
                todo.append(k)
    size = count = 0
    for j in range(len(objs)):
        if not outside[j]:
            size += sizer.size(objs[j])
            count += 1
        budget.tick(256)
    del objs, index, edges
    return {"bytes": size, "objects": count, "truncated": truncated}


def _pick_by_type(name, n, budget):
    """Up to N objects whose type is named NAME, spread over the heap, and
    how many there are."""
    objs = _all_objects(budget)
    hits = []
    names = {}
    for o in objs:
        if o is objs:
            continue
        tp = type(o)
        ok = names.get(id(tp))
        if ok is None:
            ok = names[id(tp)] = (type_name(tp) == name, tp)
        if ok[0]:
            hits.append(o)
        budget.tick()
    objs.clear()
    del objs
    step = max(1, len(hits) // n)
    return [[o] for o in hits[::step][:n]], len(hits)


def _pick_by_line(filename, lineno, n, budget):
    """Up to N objects allocated at FILENAME:LINENO (tracemalloc's
    traceback of each object), tracked ones and what they hold directly."""
    import tracemalloc
    if not tracemalloc.is_tracing():
        return None, 0
    objs = _all_objects(budget)
    hits = []
    seen = set()
    total = 0
    get_tb = tracemalloc.get_object_traceback

    def at_line(o):
        tb = get_tb(o)
        if tb is None:
            return False
        f = tb[0]
        return f.lineno == lineno and (f.filename == filename or f.filename.endswith("/" + filename))

    for o in objs:
        if o is objs:
            continue
        # o itself, what it holds that the gc does not track, and what such
        # an untracked dict or tuple holds (a dict of atomic values, such as
        # an instance's __dict__ before 3.11, is not tracked).
        paths = [[o]]
        for c in gc.get_referents(o):
            if not gc.is_tracked(c):
                paths.append([o, c])
                if type(c) is dict or type(c) is tuple:
                    paths.extend([o, c, cc] for cc in gc.get_referents(c))
        for path in paths:
            last = path[-1]
            if id(last) in seen:
                continue
            seen.add(id(last))
            if at_line(last):
                total += 1
                if len(hits) < 4 * n:
                    hits.append(path)
        paths = path = last = c = None
        budget.tick(64)
        if budget.over():
            break
    objs.clear()
    del objs, seen
    step = max(1, len(hits) // n)
    return hits[::step][:n], total


def _key_name(edge, prefix="value for key '"):
    """NAME of an edge "value for key 'NAME'" (a str key), else None."""
    if edge.startswith(prefix) and edge.endswith("'"):
        return edge[len(prefix):-1]
    return None


def _steps(path, roots, sizer):
    """A path of objects (root first) as the chain shows it: (root, steps,
    holder). Each step is an object (type, size, len) and "via", how the one
    before it refers to it; a module's or class's dict, an instance's
    __dict__ and a closure's tuple and cell are folded into the step after
    them ("global _CACHE", "class attribute entries", "attribute payload",
    "closure variable blob")."""
    root = roots.root_of(path[0])
    edges = [_edge(path[i], path[i + 1]) for i in range(len(path) - 1)]
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
            root, steps, h = _steps([nodes[i] for i in found[s]] + picked[s][1:], roots, sizer)
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
        skip = set(roots.modules)
        h = None
        del nodes, picked, found, roots, holders, h
        for e, h in zip(rows, held):
            if retained and not budget.over():
                e["retained"] = _retained(h, sizer, budget, skip)
                e["retained"]["estimate"] = True
        held.clear()
        reply = {"chains": chains, "holders": rows, "matched": total}
        reply.update(budget.figures())
        return reply
