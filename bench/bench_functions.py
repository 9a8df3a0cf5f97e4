"""Slowdown of the per-function memory tracer (pmt_agent.functions).

    python3 bench/bench_functions.py [--native-dir DIR] [--reps N] [--json]

Workloads: recursive fib(25); an allocation-heavy loop (dicts of strings); a
mixed program (JSON round-trips plus a small particle simulation). Tracers:
off; the C extension (its default mode, and profile-c where monitoring-c is
the default); the pure-Python fallback; and for comparison a tiny RSS-per-event
tracer in the style of cPyMemTrace (a profile callback that preads
/proc/self/statm on every call and return). Runs are interleaved (every tracer
once per round, rounds repeated) and each ratio is median(on) / median(off)
from the same run. On 3.12+ "C empty callbacks" is the floor: sys.monitoring
calling a C callback that does nothing.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "agent"))


# -- workloads ---------------------------------------------------------------

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def w_fib():
    fib(25)


def w_alloc():
    out = []
    for i in range(60000):
        d = {"name": "item-%d" % i, "kind": str(i % 7), "tag": "t" * (i % 13)}
        if i % 50 == 0:
            out.append(d)
    return len(out)


class Particle(object):
    __slots__ = ("x", "y", "vx", "vy")

    def __init__(self, rnd):
        self.x, self.y = rnd.random(), rnd.random()
        self.vx, self.vy = rnd.random() - 0.5, rnd.random() - 0.5

    def step(self, dt):
        self.x += self.vx * dt
        self.y += self.vy * dt
        if not 0 <= self.x <= 1:
            self.vx = -self.vx
        if not 0 <= self.y <= 1:
            self.vy = -self.vy


def simulate(rnd, n, steps):
    ps = [Particle(rnd) for _ in range(n)]
    for _ in range(steps):
        for p in ps:
            p.step(0.01)
    return sum(p.x for p in ps)


def record(i):
    return {"id": i, "name": "user%d" % i, "scores": [i, i * 2, i * 3], "active": i % 2 == 0}


def w_mixed():
    rnd = random.Random(7)
    total = 0
    for _ in range(20):
        doc = json.dumps([record(i) for i in range(150)])
        back = json.loads(doc)
        total += sum(r["scores"][1] for r in back if r["active"])
        total += simulate(rnd, 40, 10)
    return total


WORKLOADS = [("fib(25)", w_fib), ("alloc loop", w_alloc), ("mixed", w_mixed)]


# -- tracers -------------------------------------------------------------------

class RssPerEvent(object):
    """cPyMemTrace-style: read RSS at every call and return event."""

    def __init__(self):
        self.fd = None
        self.last = 0
        self.moved = 0

    def start(self):
        self.fd = os.open("/proc/self/statm", os.O_RDONLY)
        pread, fd = os.pread, self.fd

        def cb(frame, event, arg):
            if event == "call" or event == "return":
                rss = int(pread(fd, 64, 0).split()[1])
                if rss != self.last:
                    self.moved += 1
                    self.last = rss
        sys.setprofile(cb)

    def stop(self):
        sys.setprofile(None)
        os.close(self.fd)


class EmptyCallbacks(object):
    """The floor: sys.monitoring calling the extension's C callbacks while the
    tracer is off (they return at once), i.e. CPython's own dispatch cost."""

    def __init__(self, native):
        self.n = native
        self.tool = None

    def start(self):
        mon = sys.monitoring
        E = mon.events
        self.tool = next(t for t in (5, 4, 3, 1, 0) if mon.get_tool(t) is None)
        mon.use_tool_id(self.tool, "bench-floor")
        mon.register_callback(self.tool, E.PY_START, self.n.mon_start)
        mon.register_callback(self.tool, E.PY_RETURN, self.n.mon_leave)
        mon.set_events(self.tool, E.PY_START | E.PY_RETURN)

    def stop(self):
        mon = sys.monitoring
        mon.set_events(self.tool, 0)
        mon.register_callback(self.tool, mon.events.PY_START, None)
        mon.register_callback(self.tool, mon.events.PY_RETURN, None)
        mon.free_tool_id(self.tool)


def tracers(F):
    out = [("off", None, None)]
    modes = F._available_modes()
    c = [m for m in modes if m.endswith("-c")]
    py = [m for m in modes if m.endswith("-py")]
    if "monitoring-c" in c:
        out.append(("C empty callbacks", "floor", None))
    for m in c:
        out.append(("C " + m, "functions", m))
    if py:
        out.append(("Python " + py[0], "functions", py[0]))
    out.append(("RSS per event", "rss", None))
    return out


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(reps):
    from pmt_agent import functions as F
    tr = tracers(F)
    times = {(w, t[0]): [] for w, _ in WORKLOADS for t in tr}
    rss = RssPerEvent()
    floor = EmptyCallbacks(F._native)
    for wname, fn in WORKLOADS:
        fn()    # warm up
    for _ in range(reps):
        for wname, fn in WORKLOADS:
            for label, kind, mode in tr:
                if kind == "functions":
                    st = F.start(mode=mode)
                    if not st["running"]:
                        raise SystemExit("cannot start %s: %s" % (mode, st["error"]))
                elif kind == "rss":
                    rss.start()
                elif kind == "floor":
                    floor.start()
                try:
                    times[(wname, label)].append(timed(fn))
                finally:
                    if kind == "functions":
                        F.stop()
                        F.reset()
                    elif kind == "rss":
                        rss.stop()
                    elif kind == "floor":
                        floor.stop()
    res = {"python": "%d.%d.%d" % sys.version_info[:3], "native": F._native is not None,
           "reps": reps, "results": []}
    for wname, _ in WORKLOADS:
        base = statistics.median(times[(wname, "off")])
        for label, _, _ in tr:
            med = statistics.median(times[(wname, label)])
            res["results"].append({"workload": wname, "tracer": label, "median_s": round(med, 5),
                                   "ratio": round(med / base, 2)})
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--native-dir", help="directory holding _pmt_functrace (else the agent's search)")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.native_dir:
        os.environ["PMT_TOP_NATIVE_DIR"] = a.native_dir
    res = run(a.reps)
    if a.json:
        print(json.dumps(res))
        return
    print("Python %s, native extension: %s, %d interleaved rounds"
          % (res["python"], "yes" if res["native"] else "no", res["reps"]))
    print("%-12s %-22s %10s %8s" % ("workload", "tracer", "median s", "ratio"))
    for r in res["results"]:
        print("%-12s %-22s %10.4f %7.2fx" % (r["workload"], r["tracer"], r["median_s"], r["ratio"]))


if __name__ == "__main__":
    main()
