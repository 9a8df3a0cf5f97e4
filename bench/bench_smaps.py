"""What reading the whole smaps (the RSS composition) costs, to the target
and to pmt-top, on a big process.

The target holds 1.5 GiB in 2,000 anonymous regions of 768 KiB, each with a
PROT_NONE guard page at its end, so that the kernel keeps some 4,000
mappings (adjacent regions of the same protection would merge into one). A
thread of the target maps and unmaps 64 KiB in a loop: mmap and munmap take
the mmap lock for writing, so their latency is what a smaps reader makes the
target wait. Phases of 2 s alternate, five times each, in one run: nobody
reads smaps; smaps is read back to back (the worst case: pmt-top reads it at
most every 2 s, and never more than 0.5 % of the time); smaps_rollup is read
back to back (what pmt-top read before, for comparison).

Prints, per phase kind, the target's mmap+munmap latency (median, 99th
percentile, max), and per read the wall time and CPU time of one smaps and
one smaps_rollup read, and pmt-top's own figure for one read and parse
(`pmt-top rss PID --no-inject --json`: smaps_seconds).

    python3 bench/bench_smaps.py [build/pmt-top]
"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "pmt-top")
PHASE = 2.0
ROUNDS = 5

TARGET = r'''
import ctypes, mmap, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
PROT_RW = mmap.PROT_READ | mmap.PROT_WRITE
FLAGS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
SIZE = 768 * 1024
for i in range(2000):
    p = libc.mmap(None, SIZE, PROT_RW, FLAGS, -1, 0)
    libc.memset(p, 1, SIZE - 4096)
    libc.mprotect(p + SIZE - 4096, 4096, 0)
lat = []
lock = threading.Lock()
def churn():
    while True:
        t0 = time.perf_counter()
        p = libc.mmap(None, 65536, PROT_RW, FLAGS, -1, 0)
        libc.munmap(p, 65536)
        dt = time.perf_counter() - t0
        with lock:
            lat.append(dt)
        time.sleep(0.0005)
threading.Thread(target=churn, daemon=True).start()
print("ready", flush=True)
for line in sys.stdin:
    with lock:
        got, lat[:] = list(lat), []
    print(" ".join("%.7f" % x for x in got), flush=True)
'''


def read_all(path):
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


def main():
    p = subprocess.Popen([sys.executable, "-c", TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        with open("/proc/%d/smaps" % p.pid) as f:
            mappings = sum(1 for line in f if "-" in line.split(" ", 1)[0])
        lat = {"idle": [], "smaps": [], "rollup": []}
        cost = {"smaps": [], "rollup": []}

        def drain():
            p.stdin.write("\n")
            p.stdin.flush()
            return [float(x) for x in p.stdout.readline().split()]

        for _ in range(ROUNDS):
            for kind in ("idle", "smaps", "rollup"):
                drain()
                end = time.monotonic() + PHASE
                path = "/proc/%d/%s" % (p.pid, "smaps" if kind == "smaps" else "smaps_rollup")
                while time.monotonic() < end:
                    if kind == "idle":
                        time.sleep(0.01)
                        continue
                    w0, c0 = time.perf_counter(), time.process_time()
                    read_all(path)
                    cost[kind].append((time.perf_counter() - w0, time.process_time() - c0))
                lat[kind] += drain()
        ours = []
        for _ in range(5):
            r = subprocess.run([BIN, "rss", str(p.pid), "--no-inject", "--json"], capture_output=True, text=True)
            ours.append(json.loads(r.stdout)["smaps_seconds"])
        with open("/proc/%d/status" % p.pid) as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) * 1024
    finally:
        p.kill()
        p.wait()

    def q(xs, f):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(f * len(xs)))] * 1e3

    print("target: RSS %.2f GiB in %d mappings" % (rss / 2 ** 30, mappings))
    print("target's mmap+munmap latency while (ms): median / p99 / max")
    for kind, label in (("idle", "nobody reads smaps"), ("smaps", "smaps read back to back"),
                        ("rollup", "smaps_rollup read back to back")):
        xs = lat[kind]
        print("  %-32s %7.3f / %7.3f / %7.3f  (%d ops)" % (label, q(xs, 0.5), q(xs, 0.99), max(xs) * 1e3, len(xs)))
    for kind in ("smaps", "rollup"):
        w = statistics.median(c[0] for c in cost[kind]) * 1e3
        c = statistics.median(c[1] for c in cost[kind]) * 1e3
        print("one %-13s read: %.2f ms wall, %.2f ms CPU (median of %d)" % (kind, w, c, len(cost[kind])))
    print("pmt-top's read and parse of smaps: %.2f ms (median of %d)" % (statistics.median(ours) * 1e3, len(ours)))
    r = statistics.median(c[0] for c in cost["smaps"]) / statistics.median(c[0] for c in cost["rollup"])
    print("ratio smaps / smaps_rollup read time: %.2f" % r)
    print("p99 latency ratio smaps-reading / idle: %.2f" % (q(lat["smaps"], 0.99) / q(lat["idle"], 0.99)))
    w = statistics.median(c[0] for c in cost["smaps"]) * 1e3
    print("at pmt-top's cadence (a read every max(2 s, 200 x its cost)), smaps is being read "
          "%.3f%% of the time" % (100.0 * w / max(2000.0, 200.0 * w)))

if __name__ == "__main__":
    main()
