"""What the agent's heap walk (types, why) costs a target with millions of
objects: the longest pause a busy thread sees while it runs, and its wall
time.

    python3 bench/bench_heap.py [--native-dir DIR] [--objects N] [--json]

The target is this process: N gc-tracked objects (half class instances held
by a module-level dict, half tuples held by them), and a thread that does a
little work in a loop and records the longest gap between two of its
iterations (it needs the GIL for each). The same thread runs alone first
(its gaps without the walk: the interpreter's switch interval, 5 ms), then
while `types` runs, then while `why --type` runs. Printed: the busy thread's
longest gap in each phase, the walk's own longest GIL hold ("pause_max") and
wall time. Goal (issue): no pause over 100 ms, under 5 s for 2M objects.
"""
import argparse
import gc
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "agent"))

heap = None     # pmt_agent.heap, imported once the extension's directory is known


class Item(object):
    __slots__ = ("key", "pair")

    def __init__(self, key):
        self.key = key
        self.pair = (key, [key])     # a tracked tuple and a tracked list


CACHE = {}


class Busy(object):
    def __init__(self):
        self.gap = 0.0
        self.on = True
        self.n = 0
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        last = time.perf_counter()
        while self.on:
            x = 0
            for i in range(50):
                x += i
            now = time.perf_counter()
            self.gap = max(self.gap, now - last)
            last = now
            self.n += 1

    def phase(self, fn, seconds=None):
        self.gap = 0.0
        t0 = time.perf_counter()
        if fn is None:
            time.sleep(seconds)
            out = None
        else:
            out = fn()
        return self.gap, time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=2000000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--native-dir", help="directory holding _pmt_heap (else the agent's search: "
                    "build/agent-native beside the agent)")
    a = ap.parse_args()
    if a.native_dir:
        sys.path.insert(0, a.native_dir)
    global heap
    from pmt_agent import heap
    n = a.objects // 3
    for i in range(n):
        CACHE["k%d" % i] = Item(i)
    gc.collect()
    tracked = len(gc.get_objects())
    busy = Busy()
    time.sleep(0.2)
    idle_gap, _, _ = busy.phase(None, 2.0)
    t_gap, t_wall, t = busy.phase(lambda: heap.types(limit=20))
    w_gap, w_wall, w = busy.phase(lambda: heap.why(type_name_="__main__.Item", samples=8))
    busy.on = False
    res = {
        "python": sys.version.split()[0], "tracked": tracked,
        "busy_gap_idle_ms": idle_gap * 1e3,
        "types": {"busy_gap_ms": t_gap * 1e3, "pause_max_ms": t["pause_max"] * 1e3,
                  "wall_s": t_wall, "slices": t["slices"]},
        "why": {"busy_gap_ms": w_gap * 1e3, "pause_max_ms": w["pause_max"] * 1e3,
                "wall_s": w_wall, "slices": w["slices"], "matched": w["matched"],
                "holder": w["holders"][0]["holder"]["via"] if w["holders"] else None,
                "retained_mib": (w["holders"][0].get("retained", {}).get("bytes", 0) / 2**20
                                 if w["holders"] else 0)},
    }
    if a.json:
        print(json.dumps(res))
        return
    print("python %s, %d objects tracked by the gc" % (res["python"], tracked))
    print("busy thread's longest gap: alone %.1f ms" % res["busy_gap_idle_ms"])
    for k in ("types", "why"):
        r = res[k]
        print("%-5s busy gap %6.1f ms, walk's longest GIL hold %6.1f ms, wall %5.2f s, %d slices"
              % (k, r["busy_gap_ms"], r["pause_max_ms"], r["wall_s"], r["slices"]))
    print("why: %d matched, holder %s, retains %.1f MiB (estimate)"
          % (res["why"]["matched"], res["why"]["holder"], res["why"]["retained_mib"]))


if __name__ == "__main__":
    main()
