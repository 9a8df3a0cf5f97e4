"""Slowdown and memory of the sampled allocation profiler (pmt_agent.profiler).

    python3 bench/bench_profiler.py [--native-dir DIR] [--reps N] [--memory] [--json]

Workloads (shared with bench_functions.py): recursive fib(25), an
allocation-heavy loop, a mixed program. Configurations: off; the sampler at
the default interval; at 512 KiB (Go's default rate); at the default with
call counting; the exact mode (interval 1); tracemalloc with nframe=1 for
comparison. Each timed run repeats its workload for about 0.25 s. Runs are interleaved (every configuration once per round, rounds
repeated, order shuffled per round) and each ratio is median(on) /
median(off) from the same run, with CPU time of the process (less sensitive
to other load on the machine than wall time).

--memory adds the profiler's own memory (its status "memory", and the
process's RSS growth) at 1M live sampled blocks in the exact mode and at the
default interval on a 1 GB heap.
"""

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "agent"))
sys.path.insert(0, HERE)

from bench_functions import WORKLOADS  # noqa: E402


def configs(P):
    d = P.DEFAULT_INTERVAL
    return [("off", None),
            ("sampled %d B" % d, dict(interval=d)),
            ("sampled 512 KiB", dict(interval=512 * 1024)),
            ("sampled %d B + calls" % d, dict(interval=d, calls=True)),
            ("exact (interval 1)", dict(interval=1)),
            ("tracemalloc nframe=1", "tracemalloc")]


def timed(fn, k):
    t0 = time.process_time()
    for _ in range(k):
        fn()
    return time.process_time() - t0


def run(reps):
    from pmt_agent import profiler as P
    if not P.available():
        raise SystemExit("the sampler extension is not loadable: %s" % P.why_unavailable())
    cf = configs(P)
    times = {(w, c[0]): [] for w, _ in WORKLOADS for c in cf}
    samples = {}
    # each timed run repeats its workload to last about 0.25 s, so that
    # start-up (stacks seen for the first time) weighs as in a long run
    reps_of = {}
    for wname, fn in WORKLOADS:
        reps_of[wname] = max(1, int(round(0.25 / max(timed(fn, 1), 1e-4))))
    rnd = random.Random(1)
    for _ in range(reps):
        for wname, fn in WORKLOADS:
            order = list(cf)
            rnd.shuffle(order)
            for label, how in order:
                gc.collect()
                if how == "tracemalloc":
                    tracemalloc.start(1)
                elif how:
                    P.start(**how)
                try:
                    times[(wname, label)].append(timed(fn, reps_of[wname]))
                finally:
                    if how == "tracemalloc":
                        tracemalloc.stop()
                    elif how:
                        samples[(wname, label)] = P.status()["total_samples"]
                        P.stop()
    res = {"python": "%d.%d.%d" % sys.version_info[:3], "reps": reps, "results": []}
    for wname, _ in WORKLOADS:
        base = statistics.median(times[(wname, "off")])
        for label, _ in cf:
            med = statistics.median(times[(wname, label)])
            res["results"].append({"workload": wname, "config": label, "median_s": round(med, 5),
                                   "ratio": round(med / base, 3),
                                   "samples": samples.get((wname, label))})
    return res


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory():
    from pmt_agent import profiler as P
    out = []
    # 1M live blocks, every one sampled
    gc.collect()
    r0 = rss()
    P.start(interval=1, max_samples=1 << 21)
    keep = [str(i) * 2 for i in range(1000000)]
    st = P.status()
    r1 = rss()
    out.append({"case": "exact mode, 1M live blocks", "samples": st["samples"],
                "profiler_memory": st["memory"], "rss_growth_with_heap": r1 - r0})
    P.stop()
    del keep
    # a 1 GB heap at the default interval
    gc.collect()
    P.start()
    heap = [bytearray(1000) for _ in range(1000000)]
    st = P.status()
    out.append({"case": "default interval, 1 GB heap", "samples": st["samples"],
                "profiler_memory": st["memory"], "live_estimate": int(st["live_bytes"])})
    P.stop()
    after = P.status()
    out.append({"case": "after stop", "profiler_memory": after["memory"]})
    del heap
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--native-dir", help="directory holding _pmt_sampler (else the agent's search)")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.native_dir:
        os.environ["PMT_TOP_NATIVE_DIR"] = a.native_dir
    res = run(a.reps)
    if a.memory:
        res["memory"] = memory()
    if a.json:
        print(json.dumps(res))
        return
    print("Python %s, %d interleaved rounds, CPU time" % (res["python"], res["reps"]))
    print("%-12s %-24s %10s %8s %9s" % ("workload", "config", "median s", "ratio", "samples"))
    for r in res["results"]:
        print("%-12s %-24s %10.4f %7.3fx %9s" % (r["workload"], r["config"], r["median_s"],
                                               r["ratio"], r["samples"] if r["samples"] is not None else "-"))
    for m in res.get("memory", ()):
        print("%-30s %s" % (m["case"], ", ".join("%s=%s" % (k, v) for k, v in m.items() if k != "case")))


if __name__ == "__main__":
    main()
