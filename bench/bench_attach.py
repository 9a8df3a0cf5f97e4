#!/usr/bin/env python3
"""Benchmark pmt-top's attach/inject layer on fresh busy targets.

For each interpreter found (Debian's python3, pyenv 3.8-3.13, the private
3.14) and each injection method that applies, starts a CPU-bound target, runs
pmt-inject-driver and measures:

  answer_ms   inject start -> the agent's socket answers `hello`
  stopped_ms  total time the target's main thread was stopped by a tracer
              (state 't' in /proc/PID/task/PID/stat, polled every ~0.3 ms)
  longest_ms  the longest continuous such stop
  gap_ms      the longest pause the target's own busy loop saw (includes the
              bootstrap itself: importing and starting the agent)

The direct method only accepts a main thread blocked in a system call, so its
target parks the main thread in time.sleep while a worker thread is busy;
"auto-parked" is the default method on that same target (what a worker
whose main thread waits in accept/select/queue.get gets).

Targets: answer < 1000 ms (auto-parked: < 2000 ms), stopped < 500 ms.

Usage: bench/bench_attach.py [--driver PATH] [--agent DIR] [--reps N]
                             [--python PATH ...] [--methods m1,m2]
"""

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY314 = "/opt/pmt-top-py314/bin/python3.14"

# For the direct method: the main thread parked in time.sleep (the only case
# direct accepts) while a worker thread keeps the CPU busy.
PARKED = r"""
import sys, threading, time
end = time.monotonic() + float(sys.argv[1])
gap = [0.0]
def work():
    last = time.monotonic()
    while True:
        s = 0
        for i in range(2000):
            s += i * i % 7
        now = time.monotonic()
        gap[0] = max(gap[0], now - last)
        last = now
        if now > end:
            break
t = threading.Thread(target=work)
t.start()
print('ready', flush=True)
time.sleep(float(sys.argv[1]))
t.join()
print('gap %.3f' % (gap[0] * 1000), flush=True)
"""

TARGET = r"""
import sys, time
end = time.monotonic() + float(sys.argv[1])
print('ready', flush=True)
last = time.monotonic()
gap = 0.0
while True:
    s = 0
    for i in range(2000):
        s += i * i % 7
    now = time.monotonic()
    if now - last > gap:
        gap = now - last
    last = now
    if now > end:
        break
print('gap %.3f' % (gap * 1000), flush=True)
"""


def find_driver():
    for pat in ("build*/tests/inject/pmt-inject-driver",):
        hits = sorted(glob.glob(os.path.join(ROOT, pat)), key=os.path.getmtime, reverse=True)
        if hits:
            return hits[0]
    return None


def pythons():
    out = []
    if os.path.exists("/usr/bin/python3"):
        out.append(("debian", "/usr/bin/python3"))
    for d in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*"))):
        v = os.path.basename(d)
        parts = v.split(".")
        if len(parts) == 3 and 8 <= int(parts[1]) <= 13 and os.path.exists(d + "/bin/python3"):
            out.append((v, d + "/bin/python3"))
    if os.path.exists(PY314):
        out.append(("3.14", PY314))
    return out


def version_of(py):
    return subprocess.run([py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          stdout=subprocess.PIPE, check=True).stdout.decode().strip()


class StopWatcher(threading.Thread):
    """Polls the main thread's state; sums the time it spends tracer-stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.path = "/proc/%d/task/%d/stat" % (pid, pid)
        self.total = 0.0
        self.longest = 0.0
        self.halt = False

    def run(self):
        since = None
        while not self.halt:
            try:
                with open(self.path, "rb") as f:
                    data = f.read()
                state = data[data.rindex(b")") + 2:data.rindex(b")") + 3]
            except (OSError, ValueError):
                break
            now = time.monotonic()
            if state in (b"t", b"T"):
                if since is None:
                    since = now
            elif since is not None:
                self.total += now - since
                self.longest = max(self.longest, now - since)
                since = None
            time.sleep(0.0003)
        if since is not None:
            d = time.monotonic() - since
            self.total += d
            self.longest = max(self.longest, d)


def hello(path, deadline):
    req = json.dumps({"id": 1, "cmd": "hello", "args": {"protocol": 1, "client": "bench"}}).encode() + b"\n"
    while time.monotonic() < deadline:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1.0)
            try:
                s.connect(path)
                s.sendall(req)
                buf = b""
                while b"\n" not in buf:
                    c = s.recv(65536)
                    if not c:
                        break
                    buf += c
            finally:
                s.close()
            msg = json.loads(buf.split(b"\n")[0])
            if msg.get("ok"):
                return time.monotonic()
        except (OSError, ValueError):
            pass
        time.sleep(0.002)
    return None


def one_run(args, py, method, rundir, tmp):
    script = os.path.join(tmp, "busy.py")
    with open(script, "w") as f:
        f.write(PARKED if method in ("direct", "auto-parked") else TARGET)
    env = dict(os.environ, PMT_TOP_RUNTIME_DIR=rundir)
    p = subprocess.Popen([py, script, "3.0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        if p.stdout.readline().strip() != b"ready":
            return None
        time.sleep(0.3)
        w = StopWatcher(p.pid)
        w.start()
        t0 = time.monotonic()
        how = "auto" if method == "auto-parked" else method
        d = subprocess.Popen([args.driver, "inject", "--method", how, "--agent", args.agent, str(p.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        t_ans = hello(os.path.join(rundir, "%d.sock" % p.pid), t0 + 10)
        out = d.communicate(timeout=30)[0].decode(errors="replace")
        rest = p.communicate(timeout=30)[0].decode()
        w.halt = True
        w.join()
        stats = {}
        for line in out.splitlines():
            if line.startswith("stats "):
                for kv in line.split()[1:]:
                    k, v = kv.split("=")
                    stats[k] = v
        gap = float(rest.split()[1]) if rest.startswith("gap") else float("nan")
        if t_ans is None or d.returncode != 0:
            print("    failed: %s" % out.strip().splitlines()[-1:], file=sys.stderr)
            return None
        return {
            "answer_ms": (t_ans - t0) * 1000,
            "stopped_ms": w.total * 1000,
            "longest_ms": w.longest * 1000,
            "gap_ms": gap,
            "gdb_ms": float(stats.get("child_ms", "-1")),
        }
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        p.stdout.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", default=find_driver())
    ap.add_argument("--agent", default=os.path.join(ROOT, "agent"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--python", action="append")
    ap.add_argument("--methods")
    args = ap.parse_args()
    if not args.driver or not os.path.exists(args.driver):
        print("bench_attach: pmt-inject-driver not found; build it (cmake --build BUILD --target "
              "pmt-inject-driver) or pass --driver", file=sys.stderr)
        return 2
    pys = [(os.path.basename(p), p) for p in args.python] if args.python else pythons()
    tmp = tempfile.mkdtemp(prefix="pmt-bench-attach-")
    rundir = os.path.join(tmp, "run")
    os.mkdir(rundir, 0o700)
    rows = []
    try:
        for label, py in pys:
            ver = version_of(py)
            methods = ["gdb", "direct", "auto-parked"]
            if ver == "3.14":
                methods = ["pep768", "remote-exec", "gdb", "direct", "auto-parked"]
            if args.methods:
                methods = [m for m in args.methods.split(",") if m in methods]
            for m in methods:
                res = [r for r in (one_run(args, py, m, rundir, tmp) for _ in range(args.reps)) if r]
                if not res:
                    rows.append((label, ver, m, None))
                    continue
                med = {k: statistics.median(r[k] for r in res) for k in res[0]}
                mx = {k: max(r[k] for r in res) for k in res[0]}
                rows.append((label, ver, m, (med, mx, len(res))))
                print("%-8s %-5s %-11s answer %6.0f ms (max %4.0f)  stopped %5.0f ms (max %4.0f)  "
                      "longest stop %4.0f ms  loop gap %4.0f ms  helper %5.0f ms  [%d runs]"
                      % (label, ver, m, med["answer_ms"], mx["answer_ms"], med["stopped_ms"],
                         mx["stopped_ms"], med["longest_ms"], med["gap_ms"], med["gdb_ms"], len(res)),
                      flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bad = [r for r in rows if r[3] is None or r[3][0]["stopped_ms"] >= 500 or
           r[3][0]["answer_ms"] >= (2000 if r[2] == "auto-parked" else 1000)]
    print("targets: answer < 1000 ms (auto-parked < 2000 ms), stopped < 500 ms (medians): "
          "%d of %d configurations meet both"
          % (len(rows) - len(bad), len(rows)))
    for r in bad:
        print("  over target: %s %s %s" % (r[0], r[1], r[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
