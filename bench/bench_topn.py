#!/usr/bin/env python3
"""Agent-side cost of a lineno top-N versus the stdlib, in the same process.

For 100k and 1M live traces, with tracemalloc's nframe 1 and 10 (tracing on),
a child process builds the traces and times, best of --runs:

  agent native   the agent's top command handler with _pmt_native grouping
  agent python   the same handler with the pure-Python fallback grouping
  stdlib         tracemalloc.take_snapshot().statistics('lineno')[:50]

Every end-to-end time includes tracemalloc._get_traces() (the copy of the
trace table, shown separately as "get_traces") and freeing that copy. The
"grouping only" columns time the grouping step alone on an already fetched
trace list: grouping.group() + top-N versus Snapshot(traces).statistics().
Usage:

  python3 bench/bench_topn.py [--native-dir DIR] [--sizes 100000,1000000] [--runs 3]

DIR defaults to $PMT_TOP_NATIVE_DIR, else build*/agent-native of the repo.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT_DIR = os.path.join(REPO, "agent")
SITES = 200


def build_traces(n, nframe):
    """n live blocks from SITES lines (distinct sizes) in distinct files, at varied depths."""
    funcs = []
    for i in range(SITES):
        src = ("def site(keep, k, depth):\n"
               "    if depth:\n"
               "        return site(keep, k, depth - 1)\n"
               "    for _ in range(k):\n"
               "        keep.append(bytes(%d))\n" % (16 + i))   # one block per object
        ns = {}
        exec(compile(src, "/bench/site_%03d.py" % i, "exec"), ns)
        funcs.append(ns["site"])
    keep = []
    per = n // (SITES * 10)
    for i, f in enumerate(funcs):
        for depth in range(10):
            f(keep, per, depth if nframe > 1 else 0)
    return keep


def child(n, nframe, runs):
    import tracemalloc
    sys.path.insert(0, AGENT_DIR)
    tracemalloc.start(nframe)
    keep = build_traces(n, nframe)
    from pmt_agent import commands, grouping
    native = grouping.native
    res = {"n": n, "nframe": nframe, "ntraces": len(tracemalloc._get_traces()),
           "native_loaded": native is not None}

    def best(fn):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
            del out
        return min(times)

    args = {"key": "lineno", "limit": 50}
    res["get_traces"] = best(tracemalloc._get_traces)
    if native is not None:
        res["agent_native"] = best(lambda: commands._grouped("top", args, True))
    grouping.native = None
    res["agent_python"] = best(lambda: commands._grouped("top", args, True))
    grouping.native = native
    res["stdlib"] = best(lambda: tracemalloc.take_snapshot().statistics("lineno")[:50])
    traces = tracemalloc._get_traces()
    if native is not None:
        res["group_native"] = best(lambda: grouping.top(grouping.group(traces, "lineno")[0], 50))
    res["group_python"] = best(lambda: grouping.top(grouping.group(traces, "lineno",
                                                                   use_native=False)[0], 50))
    res["group_stdlib"] = best(lambda: tracemalloc.Snapshot(traces, nframe).statistics("lineno")[:50])
    del traces
    # same answer (the live result of the agent's own call is not the workload's)
    a = json.loads(commands._grouped("top", args, True)["groups"].data.decode())[:5]
    # The agent leaves out every trace with a frame in its files.
    agent_files = tracemalloc.Filter(False, os.path.join(AGENT_DIR, "pmt_agent", "*"), all_frames=True)
    s = tracemalloc.take_snapshot().filter_traces([agent_files]).statistics("lineno")[:5]
    res["same_top5"] = ([(g["frames"][0][0], g["frames"][0][1], g["size"]) for g in a]
                        == [(x.traceback[0].filename, x.traceback[0].lineno, x.size) for x in s])
    del keep
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--native-dir", default=os.environ.get("PMT_TOP_NATIVE_DIR"))
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--nframes", default="1,10")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], a.child[1], a.runs)
        return
    native_dir = a.native_dir
    if not native_dir:
        found = sorted(glob.glob(os.path.join(REPO, "build*", "agent-native")))
        native_dir = found[0] if found else ""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PMT_AGENT_NO_NATIVE", None)
    if native_dir:
        env["PMT_TOP_NATIVE_DIR"] = native_dir
    print("Python %s, native dir %s, best of %d runs, times in seconds"
          % (sys.version.split()[0], native_dir or "(none)", a.runs))
    print("%28s %-38s | %-38s" % ("", "end to end (what a top request costs)", "grouping only"))
    hdr = "%9s %6s | %10s %7s %7s %7s %7s %7s | %7s %7s %7s %7s %7s | %s" % (
        "traces", "nframe", "get_traces", "native", "python", "stdlib", "std/nat", "std/py",
        "native", "python", "stdlib", "std/nat", "std/py", "same top5")
    print(hdr)
    print("-" * len(hdr))
    for n in [int(x) for x in a.sizes.split(",")]:
        for nframe in [int(x) for x in a.nframes.split(",")]:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(n),
                                  str(nframe), "--runs", str(a.runs)],
                                 stdout=subprocess.PIPE, env=env, check=True)
            r = json.loads(out.stdout.decode().strip().splitlines()[-1])
            nat = r.get("agent_native")
            gnat = r.get("group_native")
            print("%9d %6d | %10.3f %7s %7.3f %7.3f %7s %6.1fx | %7s %7.3f %7.3f %7s %6.1fx | %s" % (
                r["ntraces"], nframe, r["get_traces"],
                "%.3f" % nat if nat else "n/a", r["agent_python"], r["stdlib"],
                "%.1fx" % (r["stdlib"] / nat) if nat else "n/a", r["stdlib"] / r["agent_python"],
                "%.3f" % gnat if gnat else "n/a", r["group_python"], r["group_stdlib"],
                "%.1fx" % (r["group_stdlib"] / gnat) if gnat else "n/a",
                r["group_stdlib"] / r["group_python"], r["same_top5"]))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
