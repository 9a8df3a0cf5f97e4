#!/usr/bin/env python3
"""Cost of an idle agent on a CPU-bound workload (with vs without the agent).

Runs the same pure-Python CPU-bound workload in fresh child processes, in
interleaved order: no agent / agent started and idle / agent with a client
subscribed to status pushes every 0.5 s (the parent reads them). Only the
workload is timed, after start-up. Prints median times and ratios.

  python3 bench/bench_idle.py [--reps 8] [--work 15000000]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import shutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT_DIR = os.path.join(REPO, "agent")

CHILD = r"""
import json, os, sys, time
mode, work = sys.argv[1], int(sys.argv[2])
if mode != "none":
    sys.path.insert(0, AGENT_DIR)
    import pmt_agent
    print(json.dumps({"path": pmt_agent.start()}), flush=True)
else:
    print(json.dumps({"path": None}), flush=True)
sys.stdin.readline()                  # the parent is ready (client connected)

def workload(n):
    acc = 0
    d = {}
    for i in range(n):
        acc = (acc * 31 + i) % 1000003
        if i % 7 == 0:
            d[i % 1024] = acc
    return acc + len(d)

t0 = time.perf_counter()
workload(work)
print(json.dumps({"t": time.perf_counter() - t0}), flush=True)
"""


def reader(sock, stop, counter):
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        if not data:
            return
        counter[0] += data.count(b'"push"')


def run(mode, work, rundir):
    env = dict(os.environ, PMT_TOP_RUNTIME_DIR=rundir, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.Popen([sys.executable, "-c", "AGENT_DIR = %r\n" % AGENT_DIR + CHILD, mode, str(work)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        path = json.loads(p.stdout.readline())["path"]
        stop = threading.Event()
        counter = [0]
        sock = None
        th = None
        if mode == "subscribed":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            sock.sendall(b'{"id":1,"cmd":"hello","args":{"protocol":1}}\n'
                         b'{"id":2,"cmd":"subscribe","args":{"interval":0.5}}\n')
            th = threading.Thread(target=reader, args=(sock, stop, counter))
            th.start()
        p.stdin.write(b"go\n")
        p.stdin.flush()
        t = json.loads(p.stdout.readline())["t"]
        stop.set()
        if th:
            th.join()
            sock.close()
        p.wait(30)
        return t, counter[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--work", type=int, default=15000000)
    a = ap.parse_args()
    rundir = tempfile.mkdtemp(prefix="pmt-bench-idle-")
    modes = ("none", "idle", "subscribed")
    times = dict((m, []) for m in modes)
    pushes = 0
    try:
        for _ in range(a.reps):
            for m in modes:
                t, n = run(m, a.work, rundir)
                times[m].append(t)
                pushes += n
    finally:
        shutil.rmtree(rundir, True)
    base = statistics.median(times["none"])
    print("Python %s, %d interleaved repetitions, workload %d iterations"
          % (sys.version.split()[0], a.reps, a.work))
    for m in modes:
        med = statistics.median(times[m])
        print("%-11s median %.4f s  min %.4f s  ratio vs none %.4f"
              % (m, med, min(times[m]), med / base))
    print("status pushes received while subscribed: %d" % pushes)


if __name__ == "__main__":
    main()
