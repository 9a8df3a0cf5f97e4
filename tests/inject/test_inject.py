#!/usr/bin/env python3
"""End-to-end tests of pmt-top's attach/inject layer against real processes.

Usage:
  test_inject.py --driver PATH --agent DIR [--native DIR] --python PATH
  test_inject.py --driver PATH --agent DIR --refusals
  test_inject.py --driver PATH --agent DIR --namespaces   (root only)

With --python: starts real targets on that interpreter (an idle loop of short
sleeps, a CPU-bound loop, several allocating threads, a main thread asleep),
injects the agent with pmt-inject-driver and checks that the agent's socket
answers `hello` with the target's pid, that a second injection reuses the
running agent, that a sleeping main thread is reported as waiting and that
the direct method gets through, that a main thread blocked in sleep,
queue.get, select or accept (with a busy worker thread, or with every thread
parked) is entered by the default method and its call still returns, that
one blocked while holding the GIL is refused at once with the reason, and
that every target finishes its own job and exits 0. With --namespaces (root): targets in a private mount namespace
(own /tmp), in a pid namespace, and running as another user. With --refusals: the clear refusals (non-Python process, Python
3.7, no such pid, 3.14 with remote debugging disabled, gdb missing).

Every process started is killed by pid and every file removed, even on
failure. Exit status: 0 all passed, 1 a check failed, 77 the interpreter
is not installed (reported as skipped, with the reason).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PY314 = "/opt/pmt-top-py314/bin/python3.14"

# How long a job may last at most: the test ends it with SIGUSR1 once it is
# done with the target (env.finish), so that however long an inject takes on
# a loaded machine, the target is still there to answer.
JOB_MAX = 300

STOP_ON_USR1 = (
    "import signal\n"
    "stop = []\n"
    "signal.signal(signal.SIGUSR1, lambda *a: stop.append(1))\n"
)

TARGETS = {
    # Each prints "ready" once running, does its own job until SIGUSR1 (or
    # argv[1] seconds), then exits 0.
    "idle": (
        "import sys, time\n" + STOP_ON_USR1 +
        "print('ready', flush=True)\n"
        "end = time.time() + float(sys.argv[1])\n"
        "while time.time() < end and not stop:\n"
        "    time.sleep(0.01)\n"
        "print('finished', flush=True)\n"
    ),
    "busy": (
        "import sys, time\n" + STOP_ON_USR1 +
        "def work(n):\n"
        "    s = 0\n"
        "    for i in range(n):\n"
        "        s += i * i % 7\n"
        "    return s\n"
        "print('ready', flush=True)\n"
        "end = time.time() + float(sys.argv[1])\n"
        "while time.time() < end and not stop:\n"
        "    work(20000)\n"
        "print('finished', flush=True)\n"
    ),
    "threads": (
        "import sys, threading, time\n" + STOP_ON_USR1 +
        "end = time.time() + float(sys.argv[1])\n"
        "def alloc(k):\n"
        "    keep = []\n"
        "    while time.time() < end and not stop:\n"
        "        keep.append([dict(a=i, b=str(i) * k) for i in range(200)])\n"
        "        if len(keep) > 50:\n"
        "            del keep[:25]\n"
        "ts = [threading.Thread(target=alloc, args=(k,)) for k in range(1, 5)]\n"
        "for t in ts:\n"
        "    t.start()\n"
        "print('ready', flush=True)\n"
        "while any(t.is_alive() for t in ts):\n"
        "    for t in ts:\n"
        "        t.join(0.05)\n"
        "print('finished', flush=True)\n"
    ),
    "sleeper": (
        "import sys, time\n"
        "print('ready', flush=True)\n"
        "time.sleep(float(sys.argv[1]))\n"
        "print('finished', flush=True)\n"
    ),
}

# A worker whose main thread waits (argv[2]: sleep, queue, select, accept,
# held, all) while another thread does the work, as in real services. The
# wait ends after argv[1] seconds (a timer thread feeds it); the target then
# prints what its blocked call returned and exits 0.
BLOCKED = (
    "import ctypes, os, queue, select, socket, sys, threading, time\n"
    "secs, mode = float(sys.argv[1]), sys.argv[2]\n"
    "done = threading.Event()\n"
    "def worker():\n"
    "    n = 0\n"
    "    while not done.is_set():\n"
    "        n += sum(i * i for i in range(2000))\n"
    "if mode != 'all':\n"
    "    threading.Thread(target=worker, daemon=True).start()\n"
    "else:\n"
    "    threading.Thread(target=done.wait, daemon=True).start()\n"
    "# Everything is set up before 'ready': after it, the main thread's only wait is the blocking call.\n"
    "if mode == 'queue':\n"
    "    q = queue.Queue()\n"
    "    threading.Timer(secs, q.put, ('item',)).start()\n"
    "elif mode == 'select':\n"
    "    r, w = os.pipe()\n"
    "    threading.Timer(secs, os.write, (w, b'x')).start()\n"
    "elif mode == 'accept':\n"
    "    srv = socket.socket()\n"
    "    srv.bind(('127.0.0.1', 0))\n"
    "    srv.listen()\n"
    "    port = srv.getsockname()[1]\n"
    "    threading.Timer(secs, lambda: socket.create_connection(('127.0.0.1', port)).close()).start()\n"
    "print('ready', flush=True)\n"
    "if mode in ('sleep', 'all'):\n"
    "    time.sleep(secs)\n"
    "    got = 'slept'\n"
    "elif mode == 'queue':\n"
    "    got = q.get()\n"
    "elif mode == 'select':\n"
    "    got = 'readable %d' % len(select.select([r], [], [])[0])\n"
    "elif mode == 'accept':\n"
    "    conn, _ = srv.accept()\n"
    "    conn.close()\n"
    "    srv.close()\n"
    "    got = 'accepted'\n"
    "elif mode == 'held':\n"
    "    ctypes.PyDLL(None).sleep(int(secs))  # a C call that keeps the GIL while it waits\n"
    "    got = 'slept holding the GIL'\n"
    "done.set()\n"
    "print('returned: %s' % got, flush=True)\n"
)


class Failure(Exception):
    pass


class Env:
    """Owns every process and file a test creates; cleans up on exit."""

    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="pmt-inject-test-")
        self.rundir = os.path.join(self.tmp, "run")
        os.mkdir(self.rundir, 0o700)
        self.procs = []
        self.pids = []  # processes that are not our children (inside a pid namespace)
        self.failures = 0
        self.checks = 0
        self.passed = 0

    def cleanup(self):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def check(self, cond, what):
        self.checks += 1
        if cond:
            self.passed += 1
            print("  ok   %s" % what)
        else:
            self.failures += 1
            print("  FAIL %s" % what)
        return cond

    def target(self, python, kind, seconds, extra_env=None, argv_prefix=()):
        path = os.path.join(self.tmp, "target_%s.py" % kind)
        with open(path, "w") as f:
            f.write(TARGETS[kind])
        env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.rundir)
        env.pop("PYTHONPATH", None)
        env.update(extra_env or {})
        cmd = [python] + list(argv_prefix) + [path, str(seconds)] if python else list(argv_prefix)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.procs.append(p)
        if python:
            line = p.stdout.readline().decode(errors="replace").strip()
            if line != "ready":
                raise Failure("%s target on %s did not start: %r %s" % (
                    kind, python, line, p.stderr.read(2000).decode(errors="replace")))
        return p

    def inject(self, pid, method="auto", timeout_ms=10000, env=None, gdb=None):
        cmd = [self.args.driver, "inject", "--method", method, "--timeout", str(timeout_ms),
               "--agent", self.args.agent]
        if gdb:
            cmd += ["--gdb", gdb]
        if self.args.native:
            cmd += ["--native", self.args.native]
        cmd.append(str(pid))
        t0 = time.monotonic()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout_ms / 1000 + 20, env=env)
        out = r.stdout.decode(errors="replace")
        return r.returncode, out, time.monotonic() - t0

    def hello(self, pid, timeout=5.0):
        """Connects to the agent of pid; returns its hello result or None."""
        path = os.path.join(self.rundir, "%d.sock" % pid)
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(max(0.1, end - time.monotonic()))
                try:
                    s.connect(path)
                    s.sendall(json.dumps({"id": 1, "cmd": "hello",
                                          "args": {"protocol": 1, "client": "inject-test"}}).encode() + b"\n")
                    buf = b""
                    while b"\n" not in buf:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                finally:
                    s.close()
                for line in buf.split(b"\n"):
                    if not line:
                        continue
                    msg = json.loads(line)
                    if msg.get("id") == 1 and msg.get("ok"):
                        return msg["result"]
                    last = msg
            except (OSError, ValueError) as e:
                last = e
            time.sleep(0.05)
        print("  (no hello from %d: %r)" % (pid, last))
        return None

    def finish(self, p, what, timeout=30, pid=None, stop=False):
        """Waits for target P to exit 0 with a clean stderr; STOP: first ends
        its job with SIGUSR1 (sent to PID when P is a wrapper such as unshare)."""
        if stop:
            try:
                os.kill(pid or p.pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        err = b""
        if p.returncode is not None:
            err = p.stderr.read()
        ok = self.check(p.returncode == 0, "%s finished its job and exited 0 (rc=%s)" % (what, p.returncode))
        # Nothing of ours may reach the target's stderr (a debug build shows
        # every ResourceWarning, for one).
        ok = self.check(b"Warning" not in err and b"Traceback" not in err and b"pmt-top" not in err,
                        "%s: nothing on its stderr" % what) and ok
        if not ok and err:
            print("    stderr: %s" % err.decode(errors="replace")[-1500:])


def run_interpreter(env, python):
    ver = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    print("interpreter %s (%s)" % (python, ver))
    job = JOB_MAX
    targets = {}
    for kind in ("idle", "busy", "threads"):
        # Started one at a time so each still runs its job while it is injected.
        p = targets[kind] = env.target(python, kind, job)
        rc, out, took = env.inject(p.pid)
        env.check(rc == 0 and "result DONE" in out,
                  "%s %s: inject (auto) reports DONE in %.2f s" % (ver, kind, took))
        if rc != 0:
            print("    " + out.replace("\n", "\n    "))
        h = env.hello(p.pid)
        env.check(h is not None and h.get("pid") == p.pid,
                  "%s %s: the agent answers hello with pid %d" % (ver, kind, p.pid))
        if kind == "idle" and h is not None:
            rc2, out2, _ = env.inject(p.pid)
            h2 = env.hello(p.pid)
            env.check(rc2 == 0 and h2 is not None and h2.get("started") == h.get("started"),
                      "%s idle: a second inject reuses the running agent (same start time)" % ver)
            socks = [f for f in os.listdir(env.rundir) if f == "%d.sock" % p.pid]
            env.check(len(socks) == 1, "%s idle: one socket for the target" % ver)
    for kind, p in targets.items():
        env.finish(p, "%s %s target" % (ver, kind), stop=True)

    run_blocked(env, python, ver)


def blocked_target(env, python, mode, secs):
    path = os.path.join(env.tmp, "target_blocked.py")
    with open(path, "w") as f:
        f.write(BLOCKED)
    envv = dict(os.environ, PMT_TOP_RUNTIME_DIR=env.rundir)
    envv.pop("PYTHONPATH", None)
    p = subprocess.Popen([python, path, str(secs), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=envv)
    env.procs.append(p)
    if p.stdout.readline().strip() != b"ready":
        raise Failure("blocked target (%s) on %s did not start: %s" % (mode, python, p.stderr.read(2000)))
    # Until the main thread sits in its blocking call: the same system call,
    # arguments and pc over 100 ms (set-up ended before 'ready', so no other
    # wait of the main thread lasts that long).
    last, same = None, 0
    for _ in range(1000):
        try:
            with open("/proc/%d/syscall" % p.pid) as f:
                cur = f.read()
        except OSError:
            break
        same = same + 1 if cur == last and not cur.startswith("running") else 0
        last = cur
        if same >= 10:
            break
        time.sleep(0.01)
    return p


def stat_of(out, key):
    for word in out.split():
        if word.startswith(key + "="):
            return word[len(key) + 1:]
    return None


def run_blocked(env, python, ver):
    """Main thread parked in a blocking call: the default method gets in, and the call still returns."""
    minor = int(ver.split(".")[1])
    expect_way = "other-thread" if minor >= 14 else "parked"
    # Each target is injected while its main thread blocks (8 s), then left
    # to return while the next one is tried; they are all waited for at the
    # end (one after the other, each 8 s, was most of this test's time).
    started = []
    for mode in ("sleep", "queue", "select", "accept", "all", "held"):
        p = blocked_target(env, python, mode, 8)
        started.append((mode, p))
        rc, out, took = env.inject(p.pid)
        way = stat_of(out, "way")
        if mode == "held":
            env.check(rc == 1 and "while holding the GIL" in out and p.poll() is None,
                      "%s main thread held the GIL in sleep(): refused with why while it still waits (%.2f s)" % (
                          ver, took))
            env.check(env.hello(p.pid, timeout=0.5) is None, "%s held: no agent was started" % ver)
        else:
            want = "parked" if mode == "all" else expect_way
            env.check(rc == 0 and "result DONE" in out and way == want,
                      "%s main thread blocked in %s: default inject reports DONE, way %s, in %.2f s (%s)" % (
                          ver, mode, way, took, stat_of(out, "elapsed_ms")))
            if rc != 0:
                print("    " + out.replace("\n", "\n    "))
            h = env.hello(p.pid)
            env.check(h is not None and h.get("pid") == p.pid, "%s %s: the agent answers" % (ver, mode))
    for mode, p in started:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        tail = p.stdout.read().decode(errors="replace")
        err = p.stderr.read().decode(errors="replace") if p.returncode is not None else ""
        env.check("Warning" not in err and "Traceback" not in err,
                  "%s %s: nothing on the target's stderr %s" % (ver, mode, err[-300:]))
        env.check(p.returncode == 0 and "returned: " in tail,
                  "%s %s: the blocked call returned normally and the target exited 0 (%s)" % (
                      ver, mode, tail.strip() or p.stderr.read()[-500:]))

    # An expert's explicit method waits, and says so, instead of choosing another way.
    # (The sleep outlasts the forced method's timeout, however slow gdb is.)
    p = env.target(python, "sleeper", 15)
    time.sleep(0.2)
    method = "pep768" if minor >= 14 else "gdb"
    rc, out, took = env.inject(p.pid, method=method, timeout_ms=6000)
    env.check("state WAITING: the main thread of process" in out and rc == 1 and "leave out --inject-method" in out,
              "%s sleeper with --inject-method %s: waits, then times out naming the default" % (ver, method))
    rc, out, took = env.inject(p.pid, method="direct")
    env.check(rc == 0 and "result DONE" in out,
              "%s sleeper: --inject-method direct reports DONE in %.2f s" % (ver, took))
    h = env.hello(p.pid)
    env.check(h is not None and h.get("pid") == p.pid, "%s sleeper: the agent answers after direct" % ver)
    env.finish(p, "%s sleeper target" % ver)


def run_refusals(env):
    print("refusals")
    p = env.target(None, "idle", 0, argv_prefix=("sleep", "30"))
    rc, out, _ = env.inject(p.pid)
    env.check(rc == 2 and "is not a Python process" in out, "sleep(1) is refused as not a Python process")
    py37 = os.path.expanduser("~/.pyenv/versions/3.7.16/bin/python3")
    if os.path.exists(py37):
        p = env.target(py37, "idle", 30)
        rc, out, _ = env.inject(p.pid)
        env.check(rc == 2 and "Python 3.7" in out and "does not support" in out,
                  "Python 3.7 is refused as unsupported")
    else:
        print("  (no Python 3.7 on this machine; unsupported-version check not run)")
    # A pid that does not exist: take a finished child's pid.
    q = subprocess.Popen(["true"])
    q.wait()
    rc, out, _ = env.inject(q.pid)
    env.check(rc == 2 and "no such process" in out, "a dead pid is refused with 'no such process'")
    # gdb missing: a PATH without gdb.
    nogdb = os.path.join(env.tmp, "nogdb")
    os.mkdir(nogdb)
    p = env.target(sys.executable, "idle", 30)
    rc, out, _ = env.inject(p.pid, method="gdb", env=dict(os.environ, PATH=nogdb))
    env.check(rc == 2 and "apt-get install gdb" in out, "gdb missing is refused with the install hint")
    # A bootstrap that fails inside the target is reported, and the target lives on.
    p = env.target(sys.executable, "idle", 30)
    saved = env.args.agent
    env.args.agent = os.path.join(env.tmp, "no-agent-here")
    try:
        rc, out, _ = env.inject(p.pid)
    finally:
        env.args.agent = saved
    env.check(rc == 1 and "the agent failed to start" in out and "pmt_agent" in out,
              "a failing bootstrap is reported with the target's error")
    time.sleep(0.2)
    env.check(p.poll() is None, "the target survives a failing bootstrap")
    # A stopped process, and one a debugger holds, are refused without touching them.
    os.kill(p.pid, signal.SIGSTOP)
    try:
        # The signal is delivered asynchronously: wait for the stopped state.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open("/proc/%d/stat" % p.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    break
            time.sleep(0.01)
        rc, out, _ = env.inject(p.pid)
    finally:
        os.kill(p.pid, signal.SIGCONT)
    env.check(rc == 2 and "is stopped" in out and "kill -CONT %d" % p.pid in out,
              "a stopped process is refused with the remedy")
    gdb = shutil.which("gdb")
    if gdb:
        holder = subprocess.Popen([gdb, "-batch", "-nx", "-p", str(p.pid), "-ex", "shell sleep 3"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        env.procs.append(holder)
        tracer = 0
        for _ in range(200):
            with open("/proc/%d/status" % p.pid) as f:
                tracer = int([l for l in f if l.startswith("TracerPid:")][0].split()[1])
            if tracer:
                break
            time.sleep(0.02)
        rc, out, _ = env.inject(p.pid)
        env.check(rc == 2 and "is being traced by process" in out, "a process held by a debugger is refused")
        holder.wait(timeout=20)
    # gdb's own failures become a sentence with the cause; a gdb that hangs
    # before attaching is stopped at the deadline.
    fake = os.path.join(env.tmp, "fake-gdb")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\necho 'ptrace: Operation not permitted.' >&2\nexit 1\n")
    os.chmod(fake, 0o755)
    rc, out, _ = env.inject(p.pid, method="gdb", gdb=fake)
    env.check(rc == 1 and "ptrace is not permitted" in out and "CAP_SYS_PTRACE" in out,
              "a gdb attach failure is reported with the cause and remedy")
    slow = os.path.join(env.tmp, "slow-gdb")
    with open(slow, "w") as f:
        f.write("#!/bin/sh\nexec sleep 30\n")
    os.chmod(slow, 0o755)
    rc, out, took = env.inject(p.pid, method="gdb", gdb=slow, timeout_ms=1000)
    env.check(rc == 1 and "timed out" in out and "did not finish attaching" in out and took < 5,
              "a gdb that never attaches times out with the reason (%.1f s)" % took)
    # The direct method is refused while the main thread runs Python.
    b = env.target(sys.executable, "busy", 30)
    rc, out, _ = env.inject(b.pid, method="direct")
    env.check(rc == 2 and "direct method runs only while the main thread" in out,
              "direct is refused while the main thread is running")
    # Methods that need 3.14 are refused on older versions.
    rc, out, _ = env.inject(p.pid, method="pep768")
    env.check(rc == 2 and "needs 3.14" in out, "pep768 on Python 3.11 is refused with a remedy")
    # Permission: an unprivileged user may not inject into this (root's) target.
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and setpriv:
        os.chmod(env.tmp, 0o755)
        r = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", env.args.driver,
                            "inject", "--agent", env.args.agent, str(p.pid)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = r.stdout.decode(errors="replace")
        env.check(r.returncode == 2 and "permission denied" in out and "CAP_SYS_PTRACE" in out,
                  "another user's process is refused with 'permission denied' and the remedy")
        if r.returncode != 2:
            print("    " + out)
    else:
        print("  (not root or no setpriv: permission check not run)")
    if os.path.exists(PY314):
        for how, extra, prefix in (("PYTHON_DISABLE_REMOTE_DEBUG=1", {"PYTHON_DISABLE_REMOTE_DEBUG": "1"}, ()),
                                   ("-X disable-remote-debug", {}, ("-X", "disable-remote-debug"))):
            p = env.target(PY314, "idle", 30, extra_env=extra, argv_prefix=prefix)
            for m in ("auto", "pep768", "remote-exec", "gdb", "direct"):
                rc, out, _ = env.inject(p.pid, method=m)
                env.check(rc == 2 and "remote debugging is disabled in the target" in out
                          and "pmt_agent.start()" in out,
                          "3.14 with %s: method %s refuses clearly" % (how, m))
            env.check(env.hello(p.pid, timeout=0.3) is None, "3.14 with %s: no agent was started" % how)
    else:
        print("  FAIL python3.14 is not installed at %s: run tests/tools/python314.sh" % PY314)
        env.failures += 1


def nspid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    return pid


def run_namespaces(env):
    """Targets in another mount namespace (private /tmp), a pid namespace, another uid."""
    print("namespaces")
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or not unshare:
        print("SKIP: needs root and unshare(1) to create namespaces")
        return 77
    script = os.path.join(env.tmp, "target_busy.py")
    with open(script, "w") as f:
        f.write(TARGETS["busy"])
    pythons = [("3.11", "/usr/bin/python3", "gdb")]
    if os.path.exists(PY314):
        pythons.append(("3.14", PY314, "pep768"))
    else:
        print("  FAIL python3.14 is not installed at %s: run tests/tools/python314.sh" % PY314)
        env.failures += 1
    for ver, py, method in pythons:
        if not os.path.exists(py):
            continue
        # Mount namespace with its own /tmp: the bootstrap must be placed through /proc/PID/root.
        # (the script is passed with -c: the private /tmp hides our files)
        inner = 'mount -t tmpfs tmpfs /tmp && mkdir -m 700 /tmp/rt && PMT_TOP_RUNTIME_DIR=/tmp/rt exec "$@"'
        p = subprocess.Popen([unshare, "-m", "sh", "-c", inner, "sh", py, "-c", TARGETS["busy"], str(JOB_MAX)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        env.procs.append(p)
        if p.stdout.readline().strip() != b"ready":
            raise Failure("mount-namespace target did not start: %s" % p.stderr.read(2000))
        rc, out, took = env.inject(p.pid)
        env.check(rc == 0 and "result DONE" in out and "method=%s" % method in out,
                  "%s in a private mount namespace: inject (%s) reports DONE in %.2f s" % (ver, method, took))
        saved, env.rundir = env.rundir, "/proc/%d/root/tmp/rt" % p.pid
        try:
            h = env.hello(p.pid)
        finally:
            env.rundir = saved
        env.check(h is not None and h.get("pid") == p.pid,
                  "%s in a private mount namespace: the agent answers" % ver)
        env.finish(p, "%s mount-namespace target" % ver, stop=True)
        # Pid namespace: the agent names its socket with the pid it sees.
        envv = dict(os.environ, PMT_TOP_RUNTIME_DIR=env.rundir)
        p = subprocess.Popen([unshare, "-p", "-f", "--mount-proc", py, script, str(JOB_MAX)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=envv)
        env.procs.append(p)
        if p.stdout.readline().strip() != b"ready":
            raise Failure("pid-namespace target did not start: %s" % p.stderr.read(2000))
        kids = open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()
        pid = int(kids[0])
        env.pids.append(pid)
        nspid = nspid_of(pid)
        env.check(nspid != pid, "%s in a pid namespace: NSpid %d differs from pid %d" % (ver, nspid, pid))
        probe = subprocess.run([env.args.driver, "probe", str(pid)], stdout=subprocess.PIPE).stdout.decode()
        env.check("nspid=%d\n" % nspid in probe, "%s in a pid namespace: probe reports nspid=%d" % (ver, nspid))
        rc, out, took = env.inject(pid)
        env.check(rc == 0 and "result DONE" in out,
                  "%s in a pid namespace: inject (%s) reports DONE in %.2f s" % (ver, method, took))
        h = env.hello(nspid)
        env.check(h is not None and h.get("pid") == nspid,
                  "%s in a pid namespace: the agent answers on %d.sock" % (ver, nspid))
        env.finish(p, "%s pid-namespace target" % ver, pid=pid, stop=True)
        # Another user's process, injected by root: the bootstrap files must be theirs.
        setpriv = shutil.which("setpriv")
        if setpriv:
            os.chmod(env.tmp, 0o711)
            rd = os.path.join(env.tmp, "run-nobody-%s" % ver)
            os.mkdir(rd, 0o700)
            os.chown(rd, 65534, 65534)
            p = subprocess.Popen([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", py, "-c",
                                  TARGETS["busy"], str(JOB_MAX)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=dict(os.environ, PMT_TOP_RUNTIME_DIR=rd))
            env.procs.append(p)
            if p.stdout.readline().strip() != b"ready":
                raise Failure("target as nobody did not start: %s" % p.stderr.read(2000))
            rc, out, took = env.inject(p.pid)
            env.check(rc == 0 and "result DONE" in out,
                      "%s running as nobody: root's inject reports DONE in %.2f s" % (ver, took))
            saved, env.rundir = env.rundir, rd
            try:
                h = env.hello(p.pid)
            finally:
                env.rundir = saved
            env.check(h is not None and h.get("pid") == p.pid, "%s running as nobody: the agent answers" % ver)
            env.finish(p, "%s target running as nobody" % ver, stop=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--native")
    ap.add_argument("--python")
    ap.add_argument("--refusals", action="store_true")
    ap.add_argument("--namespaces", action="store_true")
    args = ap.parse_args()
    if args.python and not os.path.exists(args.python):
        if args.python == PY314:
            print("SKIP: python3.14 is not installed at %s; run tests/tools/python314.sh first" % PY314)
        else:
            print("SKIP: %s does not exist" % args.python)
        return 77
    env = Env(args)
    t0 = time.monotonic()
    try:
        if args.refusals:
            run_refusals(env)
        if args.namespaces and run_namespaces(env) == 77:
            return 77
        if args.python:
            run_interpreter(env, args.python)
    except Failure as e:
        env.failures += 1
        print("  FAIL %s" % e)
    finally:
        env.cleanup()
    print("%d passed, %d failed  (%.1f s)" % (env.passed, env.failures, time.monotonic() - t0))
    return 1 if env.failures or not env.checks else 0


if __name__ == "__main__":
    sys.exit(main())
