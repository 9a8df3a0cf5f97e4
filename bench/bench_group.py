#!/usr/bin/env python3
"""pmt-top's own cost while it watches a service of 32 processes, beside top.

A master forks 31 workers (a few of them growing slowly, the rest asleep):
32 Python processes. Both watchers run at the same time, on the same 32, for
the same window, at the same 0.5 s interval: pmt-top on the master (the real
binary in a tmux terminal: the Processes view, no agent loaded) and top in
batch mode. top takes at most 20 pids after -p, so it runs twice (20 + 12)
and the two are summed: that is what watching 32 with top costs. CPU seconds
are summed over threads from /proc/PID/task/*/schedstat (ns), read before
each watcher is stopped; the first 2 s (start-up) are left out.

usage: bench/bench_group.py [--seconds 60] [--bin build/pmt-top]
"""
import argparse
import os
import signal
import subprocess
import sys
import time

from proccost import cpu_seconds, peak_rss

HERE = os.path.dirname(os.path.abspath(__file__))
NPROC = 32

SERVICE = """
import os, sys, time
kids = []
for i in range(%d):
    pid = os.fork()
    if pid == 0:
        keep = []
        while True:
            if i %% 8 == 0:
                keep.append(bytearray(64 << 10))
            time.sleep(0.5)
    kids.append(pid)
sys.stdout.write(" ".join(map(str, kids)) + "\\n")
sys.stdout.flush()
time.sleep(3600)
""" % (NPROC - 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "pmt-top"))
    args = ap.parse_args()

    service = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    pids = [service.pid] + [int(x) for x in service.stdout.readline().split()]
    assert len(pids) == NPROC, pids
    sock = "pmt-bench-group-%d" % os.getpid()
    tops = []
    try:
        subprocess.check_call(["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "140", "-y", "45",
                               "env LANG=C.UTF-8 TERM=xterm-256color %s --no-inject %d" % (args.bin, service.pid)])
        pane = int(subprocess.check_output(["tmux", "-L", sock, "list-panes", "-F", "#{pane_pid}"],
                                           text=True).split()[0])
        for part in (pids[:20], pids[20:]):
            tops.append(subprocess.Popen(["top", "-b", "-d", "0.5", "-p", ",".join(map(str, part))],
                                         stdout=subprocess.DEVNULL))
        time.sleep(2)
        screen = subprocess.check_output(["tmux", "-L", sock, "capture-pane", "-p"], text=True)
        if "GROWTH/MIN" not in screen:
            sys.exit("pmt-top did not open the Processes view:\n" + screen)
        pmt0 = cpu_seconds(pane)
        top0 = sum(cpu_seconds(t.pid) for t in tops)
        time.sleep(args.seconds)
        pmt = cpu_seconds(pane) - pmt0
        tp = sum(cpu_seconds(t.pid) for t in tops) - top0
        pmt_rss = peak_rss(pane)
        top_rss = sum(peak_rss(t.pid) for t in tops)
        screen = subprocess.check_output(["tmux", "-L", sock, "capture-pane", "-p"], text=True)
    finally:
        subprocess.call(["tmux", "-L", sock, "kill-server"], stderr=subprocess.DEVNULL)
        for t in tops:
            t.kill()
            t.wait()
        os.killpg(service.pid, signal.SIGKILL)
        service.wait()
        service.stdout.close()

    rows = sum(1 for line in screen.splitlines() if line[:1] in " *" and line[1:2].isdigit())
    mib = 1024 * 1024
    print("watching %d processes (%d rows on pmt-top's screen) for %.0f s at a 0.5 s interval"
          % (NPROC, rows, args.seconds))
    print("%-16s %14s %14s" % ("watcher", "CPU s (window)", "peak RSS"))
    print("%-16s %14.4f %10.2f MiB" % ("pmt-top", pmt, pmt_rss / mib))
    print("%-16s %14.4f %10.2f MiB" % ("top (20 + 12)", tp, top_rss / mib))
    ratio = pmt / tp if tp > 0 else float("inf")
    print("CPU ratio pmt-top/top: %.2f (target <= 2.00)" % ratio)


if __name__ == "__main__":
    main()
