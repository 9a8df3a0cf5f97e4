#!/usr/bin/env python3
"""The exact (tracemalloc) path at scale, against the standard library.

Cases: N distinct allocating lines (one small live block per line; the lines
are generated source compiled under synthetic file names, so each one is a
real (filename, lineno) site) and N traces over 200 lines; each with
tracemalloc's nframe 1 and 10 (the allocating code runs about 10 calls deep).
For every case a child process builds the traces with tracemalloc on, imports
the agent from the repo's agent/ directory and measures in one run, agent and
stdlib alternating within each of --runs repetitions:

  top 20     the agent's request handler for top (key lineno, limit 20) plus
             encoding the reply, against tracemalloc.take_snapshot()
             .statistics("lineno")[:20] turned into the same JSON rows
             (with the source line, as the agent gives it)
  snapshot   the agent's snapshot request plus encoding, against take_snapshot
             + statistics("lineno") + json.dumps of every row
  stall      the longest gap of a 1 ms heartbeat on the main thread while top 20
             or snapshot runs on another thread (as in the agent's server); the
             floor is tracemalloc._get_traces() alone, which both have to call
  memory     peak RSS above the RSS before the request (VmHWM, reset through
             /proc/self/clear_refs), and the RSS left once the reply is dropped
             (after the agent's give-back of freed heap, which its server does
             after a big reply). Free heap is trimmed before each request.

Times are the best of --runs, stalls and memory medians. A time is the CPU
time of the thread that does the work (the aims are judged on it: on a loaded
machine the wall time, shown beside it, also counts other processes), and a
stall is the CPU time the worker used within the heartbeat's longest gap
(the gap itself is shown beside it). Then, against separate target processes
that hold the allocations and sleep:

  pmt-top RSS  peak RSS of the real binary (GNU time's %M, else ru_maxrss) for
               `snapshot PID --top 20` and `snapshot PID -o FILE`, and its ratio
               to FILE's size (distinct-line cases; the agent is loaded by a
               `trace PID status` first, so gdb's memory is not counted)
  Top view     the target's CPU (utime+stime) while the TUI's Top view (in a
               private tmux server, --no-profile so that it measures with
               tracemalloc) watches it for --tui-seconds, against the same
               window unwatched just before, in % of one core

The aims printed beside the tables: top 20 and snapshot in at most 1/3 of the
stdlib's time, stall at most 1.5x the _get_traces floor, the Top view at most
2 % of a core, pmt-top's peak RSS at most 2x the file.

  python3 bench/bench_exact.py [--sizes lines:10k,lines:100k,lines:300k,traces:1M,traces:3M]
      [--frames 1,10] [--runs 3] [--tui-seconds 60] [--tui-cases lines:300k,traces:1M]
      [--tui-frames 1] [--native-dir DIR] [--pmt-top PATH] [--json] [--quick]

--quick: lines:2k,lines:10k,traces:100k, 2 runs, 10 s of Top view on lines:10k.
--json prints the raw figures (every repetition) instead of the tables. DIR
defaults to $PMT_TOP_NATIVE_DIR, else build*/agent-native of the repo, and the
binary to build*/pmt-top. The full default run takes tens of minutes and a few
GB of memory (3M traces with 10 frames).
"""
import argparse
import gc
import glob
import json
import linecache
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT_DIR = os.path.join(REPO, "agent")
SYNTH = "/bench-exact/"      # prefix of the generated files' names (none exists on disk)
SITES = 200                  # lines of the traces cases
LINES_PER_FILE = 1000        # lines of one generated file (distinct-line cases)
DEPTH = 9                    # calls above the allocating line: ~10 frames in all
TOP = 20

AIM_TIME = 1.0 / 3           # agent / stdlib
AIM_STALL = 1.5              # agent / _get_traces floor
AIM_TOP_VIEW = 2.0           # % of one core
AIM_RSS = 2.0                # pmt-top peak RSS / file size

DEFAULT_SIZES = "lines:10k,lines:100k,lines:300k,traces:1M,traces:3M"
QUICK_SIZES = "lines:2k,lines:10k,traces:100k"


# --- cases ------------------------------------------------------------------

def parse_count(text):
    """'10k' -> 10000, '3M' -> 3000000, '500' -> 500."""
    text = text.strip()
    mult = {"k": 1000, "K": 1000, "m": 1000000, "M": 1000000}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def parse_cases(spec):
    """'lines:10k,traces:1M' -> [('lines', 10000), ('traces', 1000000)]."""
    out = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        kind, sep, count = item.partition(":")
        if not sep or kind not in ("lines", "traces"):
            raise ValueError("%r: a case is lines:N or traces:N (N such as 10k or 1M)" % item)
        out.append((kind, parse_count(count)))
    return out


def short(n):
    for div, suffix in ((1000000, "M"), (1000, "k")):
        if n >= div and n % (div // 10) == 0:
            return ("%g" % (n / div)) + suffix
    return str(n)


def label(kind, n, nframe):
    return "%s %s, %d fr" % (short(n), kind, nframe)


def deep(fn, arg, depth):
    """Call fn(arg) depth calls further down (the frames of an allocating stack)."""
    if depth:
        return deep(fn, arg, depth - 1)
    return fn(arg)


def compile_sites(kind, n):
    """The allocating functions of a case, compiled (before tracing starts)."""
    funcs = []
    if kind == "lines":
        # one bytes object per line, 16..79 bytes, LINES_PER_FILE lines a file
        for first in range(0, n, LINES_PER_FILE):
            lines = ["def site(a):"]
            for i in range(first, min(n, first + LINES_PER_FILE)):
                lines.append("    a(bytes(%d))" % (16 + i % 64))
            ns = {}
            exec(compile("\n".join(lines) + "\n", "%slines_%05d.py" % (SYNTH, first // LINES_PER_FILE),
                         "exec"), ns)
            funcs.append(ns["site"])
    else:
        # one line per file, each its own size, so the top is unambiguous
        for i in range(SITES):
            src = ("def site(a, k):\n"
                   "    for _ in range(k):\n"
                   "        a(bytes(%d))\n" % (16 + i))
            ns = {}
            exec(compile(src, "%ssite_%03d.py" % (SYNTH, i), "exec"), ns)
            funcs.append(ns["site"])
    return funcs


def build_traces(kind, n, funcs):
    """Run the sites (tracemalloc on): returns the list that keeps the blocks alive."""
    keep = []
    if kind == "lines":
        for f in funcs:
            deep(f, keep.append, DEPTH)
    else:
        # each site at 10 depths around DEPTH: 10 tracebacks a line with 10 frames
        per = n // (SITES * 10)
        for f in funcs:
            for d in range(10):
                deep(lambda a, f=f: f(a, per), keep.append, DEPTH - 5 + d)
    return keep


# --- measuring inside the child --------------------------------------------

def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_hwm():
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def malloc_trim():
    """A function that returns free C heap to the system, or None (not glibc)."""
    try:
        import ctypes
        fn = ctypes.CDLL(None).malloc_trim
        fn.argtypes = [ctypes.c_size_t]
        return lambda: fn(0)
    except Exception:
        return None


def as_bytes(data):
    return b"".join(data) if isinstance(data, (list, tuple)) else bytes(data)


def nbytes(data):
    if isinstance(data, (list, tuple)):
        return sum(len(x) for x in data)
    return len(data)


class Agent(object):
    """The agent's request interface, called as its server calls it (no socket)."""

    def __init__(self, commands):
        self.commands = commands
        self.session = commands.Session()
        self.n = 0
        self.call("hello", {"protocol": self._version(), "client": "bench-exact"})

    @staticmethod
    def _version():
        try:
            from pmt_agent import proto
            return proto.VERSION
        except Exception:
            return 1

    def call(self, cmd, args):
        """One request, answered and encoded: the bytes the server would send."""
        self.n += 1
        line = json.dumps({"id": self.n, "cmd": cmd, "args": args}).encode()
        reply = self.commands.handle(self.session, line)
        data = reply if isinstance(reply, (bytes, bytearray, list, tuple)) else self.commands.encode(reply)
        if nbytes(data) < 4096:      # only an error is this small: look
            msg = json.loads(as_bytes(data).decode("utf-8"))
            if not msg.get("ok"):
                err = msg.get("error") or {}
                raise RuntimeError("%s: %s" % (err.get("code"), err.get("message")))
        return data

    def after_reply(self):
        """What the server does once a big reply is sent: give freed heap back."""
        if getattr(self.session, "give_back", False):
            self.session.give_back = False
            try:
                from pmt_agent import grouping
                fn = getattr(grouping, "give_back", None)
                if fn is not None:
                    fn()
            except Exception:
                pass


def std_rows(stats, with_line):
    rows = []
    for s in stats:
        fr = s.traceback[0]
        row = {"size": s.size, "count": s.count, "frames": [[f.filename, f.lineno] for f in s.traceback]}
        if with_line:
            row["line"] = linecache.getline(fr.filename, fr.lineno).strip()
        rows.append(row)
    return rows


def std_top():
    import tracemalloc
    stats = tracemalloc.take_snapshot().statistics("lineno")[:TOP]
    return json.dumps(std_rows(stats, True), ensure_ascii=False, separators=(",", ":")).encode()


def std_snapshot():
    import tracemalloc
    stats = tracemalloc.take_snapshot().statistics("lineno")
    return json.dumps(std_rows(stats, False), ensure_ascii=False, separators=(",", ":")).encode()


def get_traces():
    import tracemalloc
    tracemalloc._get_traces()
    return b""


def heartbeat_stall(fn):
    """The longest stall of this thread while fn() runs on another thread.

    This thread sleeps 1 ms at a time; returns (wall, cpu): the longest gap
    between its wake-ups, and the largest CPU time the worker used within one
    gap (what it ran holding the GIL; unlike the gap, not stretched by other
    processes taking the CPU; None without per-thread CPU clocks).
    """
    ready = threading.Event()
    done = threading.Event()
    release = threading.Event()
    box = {}

    def work():
        try:
            box["clock"] = time.pthread_getcpuclockid(threading.get_ident())
        except (AttributeError, OSError):
            box["clock"] = None
        ready.set()
        try:
            fn()            # the result is dropped here, on the worker, as the server does
        except Exception as e:
            box["error"] = e
        finally:
            done.set()
            release.wait()  # keep the thread (and its CPU clock) until the last reading
    t = threading.Thread(target=work, name="bench-exact-work", daemon=True)
    t.start()
    ready.wait()
    clock = box["clock"]

    def worker_cpu():
        return time.clock_gettime(clock) if clock is not None else 0.0
    worst_wall = worst_cpu = 0.0
    last_wall, last_cpu = time.perf_counter(), worker_cpu()
    try:
        while True:
            finished = done.is_set()
            if not finished:
                time.sleep(0.001)
            now_wall, now_cpu = time.perf_counter(), worker_cpu()
            worst_wall = max(worst_wall, now_wall - last_wall)
            worst_cpu = max(worst_cpu, now_cpu - last_cpu)
            last_wall, last_cpu = now_wall, now_cpu
            if finished:
                break
    finally:
        release.set()
        t.join()
    if "error" in box:
        raise box["error"]
    return {"wall": worst_wall, "cpu": worst_cpu if clock is not None else None}


class Meter(object):
    """Wall and CPU time, peak extra RSS and kept RSS of one call."""

    def __init__(self):
        self.trim = malloc_trim()
        self.hwm = reset_hwm()

    def __call__(self, fn, after=None):
        gc.collect()
        if self.trim:
            self.trim()
        rss0 = status_kb("VmRSS")
        if self.hwm:
            reset_hwm()
        t0, c0 = time.perf_counter(), time.thread_time()
        out = fn()
        took, cpu = time.perf_counter() - t0, time.thread_time() - c0
        hwm = status_kb("VmHWM") if self.hwm else None
        size = nbytes(out)
        del out
        if after is not None:
            after()
        rss1 = status_kb("VmRSS")
        return {"time": took, "cpu": cpu, "bytes": size,
                "peak": (hwm - rss0) * 1024 if hwm is not None else None,
                "kept": (rss1 - rss0) * 1024}


def synthetic_sizes(rows):
    """Sizes of the generated lines among rows, largest first."""
    return sorted((r["size"] for r in rows if r["frames"] and str(r["frames"][0][0]).startswith(SYNTH)),
                  reverse=True)


def same_top(agent_rows, std_rows_):
    """Both tops agree on the generated lines (the stdlib's also holds the agent's own rows,
    which the agent leaves out, so only the shorter list is compared)."""
    a, s = synthetic_sizes(agent_rows), synthetic_sizes(std_rows_)
    k = min(len(a), len(s))
    return k > 0 and a[:k] == s[:k]


def child(kind, n, nframe, runs):
    import tracemalloc
    sys.path.insert(0, AGENT_DIR)
    res = {"kind": kind, "n": n, "nframe": nframe, "runs": runs, "notes": []}
    funcs = compile_sites(kind, n)
    t0 = time.perf_counter()
    tracemalloc.start(nframe)
    keep = build_traces(kind, n, funcs)
    del funcs
    res["build_s"] = time.perf_counter() - t0
    res["ntraces"] = len(tracemalloc._get_traces())
    meter = Meter()
    if not meter.hwm:
        res["notes"].append("peak memory unavailable: /proc/self/clear_refs cannot be written")
    if not meter.trim:
        res["notes"].append("free heap not trimmed between requests (no glibc malloc_trim)")

    agent = None
    try:
        from pmt_agent import commands
        agent = Agent(commands)
        hello = json.loads(as_bytes(agent.call("hello", {"protocol": agent._version()})).decode())
        res["native"] = hello["result"].get("native")
        top = json.loads(as_bytes(agent.call("top", {"key": "lineno", "limit": TOP})).decode())
        agent.after_reply()
        res["same_top20"] = same_top(top["result"]["groups"], json.loads(std_top().decode()))
        del top
    except Exception as e:
        res["agent_error"] = "%s: %s" % (type(e).__name__, e)
        agent = None

    work = {"top": (lambda: agent.call("top", {"key": "lineno", "limit": TOP}), std_top),
            "snapshot": (lambda: agent.call("snapshot", {"key": "lineno"}), std_snapshot)}
    for name in work:
        res[name] = {"agent": [], "stdlib": []}
        res["stall_" + name] = {"agent": [], "stdlib": []}
    res["stall_floor"] = []
    for r in range(runs):
        sides = ["agent", "stdlib"] if r % 2 == 0 else ["stdlib", "agent"]
        for name, (afn, sfn) in work.items():
            for side in sides:
                if side == "agent" and agent is None:
                    continue
                if side == "agent":
                    res[name]["agent"].append(meter(afn, agent.after_reply))
                else:
                    res[name]["stdlib"].append(meter(sfn))
        res["stall_floor"].append(heartbeat_stall(get_traces))
        for name, (afn, sfn) in work.items():
            for side in sides:
                if side == "agent" and agent is not None:
                    res["stall_" + name]["agent"].append(heartbeat_stall(afn))
                    agent.after_reply()
                elif side == "stdlib":
                    res["stall_" + name]["stdlib"].append(heartbeat_stall(sfn))
        sys.stderr.write("  run %d/%d done\n" % (r + 1, runs))
        sys.stderr.flush()
    del keep
    print(json.dumps(res))


# --- targets for the real binary ----------------------------------------------

def target(kind, n, nframe):
    """A target process: the case's allocations held, the main thread asleep."""
    import tracemalloc
    funcs = compile_sites(kind, n)
    tracemalloc.start(nframe)
    keep = build_traces(kind, n, funcs)
    del funcs
    print("ready %d" % len(keep), flush=True)
    while True:
        time.sleep(3600)


def start_target(kind, n, nframe, env):
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--target", kind, str(n), str(nframe)],
                         stdout=subprocess.PIPE, env=env)
    line = p.stdout.readline().decode()
    if not line.startswith("ready"):
        p.kill()
        p.wait()
        raise RuntimeError("the target process exited before its allocations were made")
    time.sleep(0.5)
    return p


def stop_target(p):
    if p is not None and p.poll() is None:
        p.kill()
    if p is not None:
        p.wait()


def run_rusage(argv, env, timeout):
    """(exit code, wall seconds, peak RSS in bytes, stderr text) of argv.

    The peak is GNU time's %M where it is installed: a child forked from this
    process carries this process's peak in its ru_maxrss across exec."""
    err = tempfile.TemporaryFile()
    peak_file = None
    if os.path.exists("/usr/bin/time"):
        fd, peak_file = tempfile.mkstemp(prefix="bench-exact-peak-")
        os.close(fd)
        argv = ["/usr/bin/time", "-f", "%M", "-o", peak_file] + list(argv)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
    timer = threading.Timer(timeout, lambda: os.kill(p.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
    p.returncode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    took = time.monotonic() - t0
    err.seek(0)
    text = err.read().decode("utf-8", "replace").strip()
    err.close()
    peak = ru.ru_maxrss * 1024
    if peak_file is not None:
        try:
            with open(peak_file) as f:
                peak = int(f.read().split()[-1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        os.unlink(peak_file)
    return p.returncode, took, peak, text


def pmt_top_rss(binary, kind, n, nframe, env):
    """Peak RSS of `snapshot --top 20` and `snapshot -o FILE` against a real target."""
    res = {}
    tmp = tempfile.mkdtemp(prefix="pmt-bench-exact-")
    p = None
    try:
        p = start_target(kind, n, nframe, env)
        code, took, _, text = run_rusage([binary, "trace", str(p.pid), "status"], env, 300)
        res["attach_s"] = took
        if code != 0:
            res["error"] = "pmt-top trace %d status failed (exit %d): %s" % (p.pid, code, text[-300:])
            return res
        out = os.path.join(tmp, "snap.json")
        for name, argv in (("top20", [binary, "snapshot", str(p.pid), "--top", str(TOP)]),
                           ("file", [binary, "snapshot", str(p.pid), "-o", out])):
            code, took, rss, text = run_rusage(argv, env, 600)
            if code != 0:
                res["error"] = "pmt-top %s failed (exit %d): %s" % (" ".join(argv[1:]), code, text[-300:])
                return res
            res[name] = {"rss": rss, "time": took}
        res["file_bytes"] = os.path.getsize(out)
    except Exception as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        stop_target(p)
        subprocess.call(["rm", "-rf", tmp])
    return res


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def tui_cpu(binary, kind, n, nframe, seconds, env):
    """Target CPU in % of a core, unwatched and then watched by the Top view."""
    hz = os.sysconf("SC_CLK_TCK")
    sock = "pmt-bench-exact-%d" % os.getpid()
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    res = {"seconds": seconds}
    p = None
    try:
        p = start_target(kind, n, nframe, env)
        c0 = cpu_ticks(p.pid)
        time.sleep(seconds)
        res["unwatched"] = 100.0 * (cpu_ticks(p.pid) - c0) / hz / seconds
        cmd = "env LANG=C.UTF-8 TERM=xterm-256color PMT_TOP_RUNTIME_DIR=%s %s --no-profile %d" % (
            shlex.quote(env["PMT_TOP_RUNTIME_DIR"]), shlex.quote(binary), p.pid)
        subprocess.check_call(tmux + ["new-session", "-d", "-x", "120", "-y", "40", cmd])
        pane = int(subprocess.check_output(tmux + ["list-panes", "-F", "#{pane_pid}"]).split()[0])
        # The Top view is the second (key 2); the window starts once it shows exact figures.
        t0 = time.monotonic()
        shown = False
        screen = ""
        while time.monotonic() - t0 < 180:
            subprocess.call(tmux + ["send-keys", "2"])
            time.sleep(1)
            screen = subprocess.check_output(tmux + ["capture-pane", "-p"]).decode("utf-8", "replace")
            if "exact: tracemalloc" in screen:
                shown = True
                break
        res["first_screen_s"] = time.monotonic() - t0
        if not shown:
            res["error"] = "the Top view showed no exact figures within 180 s; its screen ended with: %s" % (
                " | ".join(l.strip() for l in screen.splitlines() if l.strip())[-300:])
            return res
        time.sleep(2)
        c0, s0 = cpu_ticks(p.pid), cpu_ticks(pane)
        time.sleep(seconds)
        res["watched"] = 100.0 * (cpu_ticks(p.pid) - c0) / hz / seconds
        res["pmt_top"] = 100.0 * (cpu_ticks(pane) - s0) / hz / seconds
        if subprocess.call(tmux + ["has-session"], stderr=subprocess.DEVNULL) != 0:
            res["error"] = "pmt-top exited during the window"
    except Exception as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        subprocess.call(tmux + ["kill-server"], stderr=subprocess.DEVNULL)
        stop_target(p)
    return res


# --- printing ----------------------------------------------------------------

def med(xs):
    return statistics.median(xs) if xs else None


def fmt_s(x):
    if x is None:
        return "n/a"
    return "%.1f ms" % (x * 1e3) if x < 10 else "%.2f s" % x


def fmt_b(x):
    return "n/a" if x is None else "%.1f MiB" % (x / 1048576.0)


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_r(x):
    return "n/a" if x is None else "%.2f" % x


def verdict(x, aim):
    if x is None:
        return ""
    return "met" if x <= aim else "NOT met"


def table(title, head, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    print()
    print(title)
    line = "  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(head, widths)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def field(results, name, side, key, agg):
    xs = [m[key] for m in results.get(name, {}).get(side, []) if m.get(key) is not None]
    return agg(xs) if xs else None


def print_tables(meta, cases, tui):
    sys.stderr.flush()
    print("Python %s, native dir %s, pmt-top %s" % (meta["python"], meta["native_dir"] or "(none)",
                                                   meta["pmt_top"] or "(not found)"))
    print("%d runs, agent and stdlib alternating; times best of runs, stalls and memory medians"
          % meta["runs"])
    print("CPU times are the aims' measure: wall times on a loaded machine also count other processes")
    ok = [c for c in cases if "error" not in c]
    for c in cases:
        if "error" in c:
            print("%s: not measured: %s" % (label(c["kind"], c["n"], c["nframe"]), c["error"]))
        else:
            print("%s: %d traces (built in %.1f s), agent native %s, same top 20 %s%s" % (
                label(c["kind"], c["n"], c["nframe"]), c["ntraces"], c["build_s"],
                {True: "yes", False: "no"}.get(c.get("native"), "n/a"),
                {True: "yes", False: "NO"}.get(c.get("same_top20"), "n/a"),
                "; agent unavailable: " + c["agent_error"] if "agent_error" in c else ""))
            for note in c["notes"]:
                print("  " + note)

    for name, what in (("top", "top 20 (key lineno)"), ("snapshot", "full snapshot (key lineno)")):
        rows = []
        for c in ok:
            a, s = field(c, name, "agent", "cpu", min), field(c, name, "stdlib", "cpu", min)
            aw, sw = field(c, name, "agent", "time", min), field(c, name, "stdlib", "time", min)
            rows.append([label(c["kind"], c["n"], c["nframe"]), fmt_s(a), fmt_s(s), fmt_r(ratio(a, s)),
                         verdict(ratio(a, s), AIM_TIME), fmt_s(aw), fmt_s(sw), fmt_r(ratio(aw, sw)),
                         fmt_b(field(c, name, "agent", "bytes", max)), fmt_b(field(c, name, "stdlib", "bytes", max))])
        table("%s: request + encoded reply, CPU time of the thread (best of runs) and wall time; "
              "aim: agent <= 1/3 of the stdlib" % what,
              ["case", "agent", "stdlib", "ratio", "aim", "wall agent", "wall stdlib", "wall ratio",
               "agent reply", "stdlib json"], rows)

    for name in ("top", "snapshot"):
        rows = []
        for c in ok:
            st = c["stall_" + name]
            sides = (st["agent"], st["stdlib"], c["stall_floor"])
            a, s, fl = [med([x["cpu"] for x in xs if x["cpu"] is not None]) for xs in sides]
            aw, sw, flw = [med([x["wall"] for x in xs]) for xs in sides]
            rows.append([label(c["kind"], c["n"], c["nframe"]), fmt_s(a), fmt_s(s), fmt_r(ratio(a, s)),
                         fmt_s(fl), fmt_r(ratio(a, fl)), fmt_r(ratio(s, fl)), verdict(ratio(a, fl), AIM_STALL),
                         fmt_s(aw), fmt_s(sw), fmt_s(flw)])
        table("largest main-thread stall, %s on a worker thread, 1 ms heartbeat (median of runs): the "
              "worker's CPU time within the longest gap, and the longest gap (wall); floor: "
              "_get_traces() alone; aim: agent <= 1.5x the floor" % ("top 20" if name == "top" else "full snapshot"),
              ["case", "agent", "stdlib", "ratio", "floor", "agent/floor", "stdlib/floor", "aim",
               "wall agent", "wall stdlib", "wall floor"], rows)

    for key, what in (("peak", "peak extra memory during the request (VmHWM - RSS before)"),
                      ("kept", "memory kept after the request (RSS after - RSS before)")):
        for name in ("top", "snapshot"):
            rows = []
            for c in ok:
                a = field(c, name, "agent", key, med)
                s = field(c, name, "stdlib", key, med)
                rows.append([label(c["kind"], c["n"], c["nframe"]), fmt_b(a), fmt_b(s),
                             fmt_r(ratio(a, s)) if a is not None and s and s > 0 else "n/a"])
            table("%s, %s" % (what, "top 20" if name == "top" else "full snapshot"),
                  ["case", "agent", "stdlib", "ratio"], rows)

    rows = []
    notes = []
    for c in cases:
        pt = c.get("pmt_top")
        if pt is None:
            continue
        name = label(c["kind"], c["n"], c["nframe"])
        if "error" in pt:
            notes.append("%s: %s" % (name, pt["error"]))
            continue
        r = ratio(pt["file"]["rss"], pt["file_bytes"])
        rows.append([name, fmt_b(pt["top20"]["rss"]), fmt_s(pt["top20"]["time"]), fmt_b(pt["file"]["rss"]),
                     fmt_s(pt["file"]["time"]), fmt_b(pt["file_bytes"]), fmt_r(r), verdict(r, AIM_RSS)])
    if rows or notes:
        table("pmt-top peak RSS, snapshot PID --top 20 and -o FILE; aim: -o RSS <= 2x the file",
              ["case", "--top 20", "time", "-o FILE", "time", "file", "RSS/file", "aim"], rows)
        for n in notes:
            print("unavailable: " + n)
    elif meta.get("pmt_top_note"):
        print()
        print("pmt-top peak RSS: " + meta["pmt_top_note"])

    if tui:
        rows = []
        notes = []
        for t in tui:
            name = label(t["kind"], t["n"], t["nframe"])
            if "watched" not in t:
                notes.append("%s: %s" % (name, t.get("error", "not measured")))
                continue
            cost = t["watched"] - t["unwatched"]
            rows.append([name, "%.2f %%" % t["watched"], "%.2f %%" % t["unwatched"], "%.2f %%" % cost,
                         "%.2f %%" % t["pmt_top"], "%.1f s" % t["first_screen_s"], verdict(cost, AIM_TOP_VIEW)])
            if "error" in t:
                notes.append("%s: %s" % (name, t["error"]))
        table("Top view (TUI in tmux, --no-profile): target CPU over %g s, %% of one core; aim: cost <= 2 %%"
              % tui[0]["seconds"],
              ["case", "watched", "unwatched", "cost", "pmt-top itself", "first screen", "aim"], rows)
        for n in notes:
            print("unavailable: " + n)
    elif meta.get("tui_note"):
        print()
        print("Top view CPU: " + meta["tui_note"])


# --- main ----------------------------------------------------------------------

def find_native(arg):
    if arg:
        return arg
    found = sorted(glob.glob(os.path.join(REPO, "build*", "agent-native")))
    return found[0] if found else ""


def find_pmt_top(arg):
    if arg:
        return arg if os.access(arg, os.X_OK) else None
    for path in sorted(glob.glob(os.path.join(REPO, "build*", "pmt-top"))):
        if os.access(path, os.X_OK):
            return path
    return None


def progress(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", help="cases, lines:N or traces:N, comma-separated (default %s)" % DEFAULT_SIZES)
    ap.add_argument("--frames", default="1,10", help="tracemalloc nframe values (default 1,10)")
    ap.add_argument("--runs", type=int, help="repetitions per case (default 3)")
    ap.add_argument("--tui-seconds", type=float, help="Top view window per case, 0 skips (default 60)")
    ap.add_argument("--tui-cases", help="targets for the Top view (default lines:300k,traces:1M)")
    ap.add_argument("--tui-frames", help="nframe values for the Top view targets (default 1)")
    ap.add_argument("--native-dir", default=os.environ.get("PMT_TOP_NATIVE_DIR"))
    ap.add_argument("--pmt-top", help="the pmt-top binary (default build*/pmt-top of the repo)")
    ap.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 runs, 10 s of Top view")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--target", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), int(a.child[2]), a.runs or 3)
        return 0
    if a.target:
        target(a.target[0], int(a.target[1]), int(a.target[2]))
        return 0
    quick = a.quick
    sizes = a.sizes or (QUICK_SIZES if quick else DEFAULT_SIZES)
    runs = a.runs or (2 if quick else 3)
    tui_seconds = a.tui_seconds if a.tui_seconds is not None else (10 if quick else 60)
    tui_cases = a.tui_cases or ("lines:10k" if quick else "lines:300k,traces:1M")
    try:
        cases = parse_cases(sizes)
        frames = [int(x) for x in a.frames.split(",") if x.strip()]
        tui_targets = parse_cases(tui_cases)
        tui_frames = [int(x) for x in (a.tui_frames or "1").split(",") if x.strip()]
    except ValueError as e:
        ap.error(str(e))

    native_dir = find_native(a.native_dir)
    binary = find_pmt_top(a.pmt_top)
    meta = {"python": sys.version.split()[0], "native_dir": native_dir, "pmt_top": binary,
            "runs": runs, "sizes": sizes, "frames": frames}
    if binary is None:
        meta["pmt_top_note"] = ("unavailable: %s is not an executable; build it with ./pmt.sh build "
                                "or pass --pmt-top PATH" % (a.pmt_top or os.path.join(REPO, "build*", "pmt-top")))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PMT_AGENT_NO_NATIVE", None)
    if native_dir:
        env["PMT_TOP_NATIVE_DIR"] = native_dir
    rundir = tempfile.mkdtemp(prefix="pmt-bench-exact-run-")
    target_env = dict(env, PMT_TOP_RUNTIME_DIR=rundir)

    results = []
    tui = []
    try:
        for kind, n in cases:
            for nframe in frames:
                name = label(kind, n, nframe)
                progress("%s: measuring in a child process" % name)
                out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", kind, str(n),
                                      str(nframe), "--runs", str(runs)], stdout=subprocess.PIPE, env=env)
                try:
                    res = json.loads(out.stdout.decode().strip().splitlines()[-1])
                except (ValueError, IndexError):
                    res = {"kind": kind, "n": n, "nframe": nframe,
                           "error": "the child process failed (exit %d)" % out.returncode}
                if kind == "lines" and binary is not None:
                    progress("%s: pmt-top snapshot against a target process" % name)
                    res["pmt_top"] = pmt_top_rss(binary, kind, n, nframe, target_env)
                results.append(res)
        if tui_seconds > 0 and binary is None:
            meta["tui_note"] = "unavailable: no pmt-top binary"
        elif tui_seconds > 0 and subprocess.call(["sh", "-c", "command -v tmux"],
                                                 stdout=subprocess.DEVNULL) != 0:
            meta["tui_note"] = "unavailable: tmux is not installed"
        elif tui_seconds > 0:
            for kind, n in tui_targets:
                for nframe in tui_frames:
                    progress("%s: Top view CPU, %g s unwatched then %g s watched" % (
                        label(kind, n, nframe), tui_seconds, tui_seconds))
                    t = tui_cpu(binary, kind, n, nframe, tui_seconds, target_env)
                    t.update(kind=kind, n=n, nframe=nframe)
                    tui.append(t)
        else:
            meta["tui_note"] = "skipped (--tui-seconds 0)"
    finally:
        subprocess.call(["rm", "-rf", rundir])

    if a.json:
        print(json.dumps({"meta": meta, "cases": results, "tui": tui}, indent=1))
    else:
        print_tables(meta, results, tui)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
