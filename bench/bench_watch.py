#!/usr/bin/env python3
"""pmt-top's own cost while it watches a process, side by side with top.

Both watchers run at the same time, on the same target, for the same window:
pmt-top (the real binary in a tmux terminal, default 0.5 s interval) and
`top -b -d 0.5 -p PID`. At the end each one's CPU seconds (summed over threads from
/proc/PID/task/*/schedstat, in ns) and peak RSS (VmHWM) are read before it is stopped.

usage: bench/bench_watch.py [--seconds 60] [--bin build/pmt-top]
"""
import argparse
import os
import signal
import subprocess
import sys
import time

from proccost import cpu_seconds, peak_rss

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "pmt-top"))
    args = ap.parse_args()

    target = subprocess.Popen([sys.executable, "-c",
                               "import time\nx = [bytes(1000) for _ in range(100000)]\n"
                               "while True:\n    time.sleep(0.05)\n"])
    sock = "pmt-bench-%d" % os.getpid()
    top = None
    try:
        time.sleep(0.5)
        subprocess.check_call(["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d",
                               "-x", "120", "-y", "40",
                               "env LANG=C.UTF-8 TERM=xterm-256color %s --no-inject %d"
                               % (args.bin, target.pid)])
        pane = int(subprocess.check_output(["tmux", "-L", sock, "list-panes", "-F",
                                            "#{pane_pid}"], text=True).split()[0])
        top = subprocess.Popen(["top", "-b", "-d", "0.5", "-p", str(target.pid)],
                               stdout=subprocess.DEVNULL)
        # Start-up (terminfo, locale, first screen) is measured apart from the
        # steady state, which is what a long watch costs.
        time.sleep(2)
        pmt0, top0 = cpu_seconds(pane), cpu_seconds(top.pid)
        time.sleep(args.seconds)
        pmt = (cpu_seconds(pane) - pmt0, peak_rss(pane), pmt0)
        tp = (cpu_seconds(top.pid) - top0, peak_rss(top.pid), top0)
    finally:
        subprocess.call(["tmux", "-L", sock, "kill-server"], stderr=subprocess.DEVNULL)
        if top:
            top.kill()
            top.wait()
        target.kill()
        target.wait()

    mib = 1024 * 1024
    print("watching pid %d for %.0f s at a 0.5 s interval" % (target.pid, args.seconds))
    print("%-10s %14s %14s %18s" % ("watcher", "CPU s (window)", "peak RSS", "CPU s (first 2 s)"))
    print("%-10s %14.4f %10.2f MiB %18.4f" % ("pmt-top", pmt[0], pmt[1] / mib, pmt[2]))
    print("%-10s %14.4f %10.2f MiB %18.4f" % ("top", tp[0], tp[1] / mib, tp[2]))
    ratio = pmt[0] / tp[0] if tp[0] > 0 else float("inf")
    print("CPU ratio pmt-top/top: %.2f (target <= 1.00)   pmt-top peak RSS %.2f MiB (target < 10)"
          % (ratio, pmt[1] / mib))


if __name__ == "__main__":
    main()
