"""What a watcher process costs, read from /proc (shared by the benchmarks)."""
import os


def cpu_seconds(pid):
    """CPU time of every thread of pid, in seconds, from schedstat (ns):
    finer than the clock ticks of /proc/PID/stat. A thread that ends
    while it is read is skipped."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total / 1e9


def peak_rss(pid):
    """VmHWM of pid, in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0
