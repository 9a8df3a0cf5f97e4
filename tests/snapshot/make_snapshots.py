"""Take two tracemalloc snapshots of a real workload and write them out.

Usage: python3 make_snapshots.py OUTDIR

Writes, for each scenario, the old and new snapshot in the shape of the
protocol's `snapshot` result (docs/protocol.md) and what
tracemalloc's own Snapshot.compare_to() says about them (its top 10 and its
number of entries), so that pmt-top's C diff can be checked against it:

  OUTDIR/<scenario>.old.json       the result object (as sent by the agent)
  OUTDIR/<scenario>.new.json       a snapshot file (format, version, label)
  OUTDIR/<scenario>.expected.json  {"key", "cumulative", "nentries", "top": [...]}

Scenarios: lineno, filename, traceback, lineno_cumulative,
filename_cumulative. Standard library only; works on CPython 3.8+.
"""

import json
import linecache
import os
import sys
import time
import tracemalloc

NFRAME = 4
TOP = 10

keep = []
cache = {}
doomed = []


def leaf(n, tag):
    # one line, reached from several callers: distinct tracebacks
    return bytearray(n) + tag


def from_api(k):
    return [leaf(700 + k, b"a") for _ in range(3)]


def from_job(k):
    return [leaf(700 + k, b"j") for _ in range(2)]


def phase_one():
    for i in range(200):
        keep.append(bytearray(512))
    for i in range(50):
        cache[i] = "v" * 300 + str(i)
    for k in range(20):
        keep.extend(from_api(k))
    tie_a = [bytearray(1000) for _ in range(8)]  # the same numbers ...
    tie_b = [bytearray(1000) for _ in range(8)]  # ... on two lines: a tie
    keep.append(tie_a)
    keep.append(tie_b)
    doomed.extend([bytes(4096) for _ in range(30)])  # gone in phase two


def phase_two():
    for i in range(300):
        keep.append(bytearray(512))
    for i in range(50, 120):
        cache[i] = "v" * 300 + str(i)
    for k in range(20):
        keep.extend(from_job(k))
    doomed.clear()
    fresh = [bytearray(2048) for _ in range(12)]
    keep.append(fresh)
    tie_c = [bytearray(1000) for _ in range(8)]  # two new groups with
    tie_d = [bytearray(1000) for _ in range(8)]  # equal numbers: a tie
    keep.append(tie_c)
    keep.append(tie_d)


def wire_frames(traceback):
    # Traceback iterates oldest call first (3.7+); the protocol wants most recent first
    return [[f.filename, f.lineno] for f in reversed(list(traceback))]


def result_object(snap, key, cumulative, traced):
    groups = []
    for stat in snap.statistics(key, cumulative):
        frames = wire_frames(stat.traceback)
        if key == "filename":
            line = ""
        else:
            line = linecache.getline(frames[0][0], frames[0][1]).strip()
        groups.append({"size": stat.size, "count": stat.count, "frames": frames, "line": line})
    traces = snap.traces
    return {
        "time": snap.pmt_time,
        "pid": os.getpid(),
        "key": key,
        "cumulative": cumulative,
        "nframe": snap.traceback_limit,
        "traced_current": traced[0],
        "traced_peak": traced[1],
        "total_size": sum(t.size for t in traces),
        "total_count": len(traces),
        "ntraces": len(traces),
        "took_ms": 1.0,
        "groups": groups,
    }


def expected(old, new, key, cumulative):
    diffs = new.compare_to(old, key, cumulative)
    return {
        "key": key,
        "cumulative": cumulative,
        "nentries": len(diffs),
        "top": [
            {
                "size_diff": d.size_diff,
                "size": d.size,
                "count_diff": d.count_diff,
                "count": d.count,
                "frames": wire_frames(d.traceback),
            }
            for d in diffs[:TOP]
        ],
    }


def take():
    snap = tracemalloc.take_snapshot()
    snap.pmt_time = time.time()
    return snap, tracemalloc.get_traced_memory()


HELPER = """
def alloc(n, times):
    return [bytearray(n) for _ in range(times)]
"""


def main():
    outdir = sys.argv[1]
    # a second source file, so the filename key has more than one group
    with open(os.path.join(outdir, "pmt_e2e_helper.py"), "w") as f:
        f.write(HELPER)
    sys.path.insert(0, outdir)
    import pmt_e2e_helper
    tracemalloc.start(NFRAME)
    keep.append(pmt_e2e_helper.alloc(3000, 5))
    phase_one()
    old, old_traced = take()
    phase_two()
    keep.append(pmt_e2e_helper.alloc(3000, 9))
    new, new_traced = take()
    tracemalloc.stop()

    scenarios = [
        ("lineno", "lineno", False),
        ("filename", "filename", False),
        ("traceback", "traceback", False),
        ("lineno_cumulative", "lineno", True),
        ("filename_cumulative", "filename", True),
    ]
    for name, key, cumulative in scenarios:
        o = result_object(old, key, cumulative, old_traced)
        n = result_object(new, key, cumulative, new_traced)
        n = dict({"format": "pmt-top-snapshot", "version": 1, "label": "after " + name}, **n)
        with open(os.path.join(outdir, name + ".old.json"), "w") as f:
            json.dump(o, f)
        with open(os.path.join(outdir, name + ".new.json"), "w") as f:
            json.dump(n, f)
        with open(os.path.join(outdir, name + ".expected.json"), "w") as f:
            json.dump(expected(old, new, key, cumulative), f)


if __name__ == "__main__":
    main()
