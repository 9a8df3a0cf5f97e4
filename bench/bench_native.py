"""Cost of the profiler's native hooks (GOT interposition of the malloc
family) on workloads that spend their time in C code that allocates.

    python3 bench/bench_native.py [--native-dir DIR] [--reps N] [--json]

Workloads: lxml parse + serialise + XPath (libxml2 allocates through
malloc: the hooks see every call), json dumps/loads of nested data, zlib
compress/decompress (CPython's modules: they allocate through PyMem, which
the PEP 445 hooks see either way), and all three in one loop. Configurations:
the profiler off; on at the default interval with native=False; on with
native=True (the default). Runs are interleaved (every configuration once per
round, order shuffled) and each ratio is median / median from the same run,
with the process's CPU time. Needs lxml (Debian: python3-lxml) for its
workloads; they are left out without it, and the output says so.
"""

import argparse
import gc
import json
import os
import random
import statistics
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "agent"))
sys.path.insert(0, HERE)

from bench_profiler import timed  # noqa: E402

try:
    from lxml import etree
except ImportError:
    etree = None

DOC = ("<orders>" + "".join(
    "<order id='%d'><customer>c%d</customer><items>%s</items><note>%s</note></order>"
    % (i, i % 97, "".join("<item sku='s%d' qty='%d'/>" % (k, k % 5) for k in range(8)),
       "delivered " * (i % 7)) for i in range(300)) + "</orders>").encode()
DATA = [{"id": i, "name": "user %d" % i, "tags": ["a", "b", str(i)], "score": i * 0.5,
         "nested": {"k": list(range(i % 10))}} for i in range(300)]
BLOB = json.dumps(DATA).encode() * 4


def work_lxml():
    root = etree.fromstring(DOC)
    n = len(root.xpath("//item[@qty='3']"))
    etree.tostring(root)
    return n


def work_json():
    return len(json.loads(json.dumps(DATA)))


def work_zlib():
    return len(zlib.decompress(zlib.compress(BLOB, 6)))


def work_mixed():
    return work_lxml() + work_json() + work_zlib()


def workloads():
    out = [("json", work_json), ("zlib", work_zlib)]
    if etree is not None:
        out = [("lxml", work_lxml)] + out + [("lxml+json+zlib", work_mixed)]
    return out


CONFIGS = [("off", None), ("profiler, native=False", dict(native=False)),
           ("profiler, native=True", dict(native=True))]


def run(reps):
    from pmt_agent import profiler as P
    if not P.available():
        raise SystemExit("the sampler extension is not loadable: %s" % P.why_unavailable())
    wl = workloads()
    times = {(w, c): [] for w, _ in wl for c, _ in CONFIGS}
    native = {}
    reps_of = {w: max(1, int(round(0.25 / max(timed(fn, 1), 1e-4)))) for w, fn in wl}
    rnd = random.Random(1)
    for _ in range(reps):
        for w, fn in wl:
            order = list(CONFIGS)
            rnd.shuffle(order)
            for label, how in order:
                gc.collect()
                if how is not None:
                    P.start(**how)
                try:
                    times[(w, label)].append(timed(fn, reps_of[w]))
                finally:
                    if how is not None:
                        st = P.status()
                        if how["native"]:
                            native[w] = st["native"]["entries"]
                        P.stop()
    res = {"python": "%d.%d.%d" % sys.version_info[:3], "reps": reps,
           "lxml": etree is not None, "results": []}
    for w, _ in wl:
        off = statistics.median(times[(w, "off")])
        plain = statistics.median(times[(w, "profiler, native=False")])
        hooked = statistics.median(times[(w, "profiler, native=True")])
        res["results"].append({"workload": w, "off_s": round(off, 5),
                               "profiler_vs_off": round(plain / off, 3),
                               "native_vs_off": round(hooked / off, 3),
                               "native_vs_profiler": round(hooked / plain, 3),
                               "got_entries": native.get(w)})
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--native-dir", help="directory holding _pmt_sampler (else the agent's search)")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.native_dir:
        sys.path.insert(0, a.native_dir)
    res = run(a.reps)
    if a.json:
        print(json.dumps(res, indent=1))
        return
    print("python %s, %d interleaved rounds, CPU time, median ratios%s" % (
        res["python"], res["reps"], "" if res["lxml"] else " (no lxml here: its workloads left out)"))
    print("%-16s %10s %16s %14s %18s %8s" % ("workload", "off (s)", "profiler/off", "native/off",
                                             "native/profiler", "entries"))
    for r in res["results"]:
        print("%-16s %10.4f %16.3f %14.3f %18.3f %8s" % (
            r["workload"], r["off_s"], r["profiler_vs_off"], r["native_vs_off"],
            r["native_vs_profiler"], r["got_entries"]))


if __name__ == "__main__":
    main()
