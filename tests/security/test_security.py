#!/usr/bin/env python3
"""Attack tests: a root pmt-top attaching to a process of a less-trusted user.

Usage:
  test_security.py --pmt-top PATH --agent DIR [--native DIR] CASE [--method M] [--signal S]

CASE is one of
  cmdswap   racers (the target's uid and a third uid) replace every file they
            can in every new entry of /tmp with gdb commands or Python that
            would create a canary in a directory only root can write;
  dirswap   the racers swap every new directory for a symlink to a directory
            of their own (or a root-owned one) holding files named status,
            status.tmp, gdb.cmd, bootstrap.py, and plant symlinks at those names;
  fifo      the racers put FIFOs at every name they can create or replace;
  spoof     a third-uid (or the target's uid) process leaves a listening
            socket <pid>.sock whose credentials name a pid that the target
            then gets; pmt-top must not talk to it;
  killgdb   gdb is killed with --signal TERM|INT|HUP at 20 points of its life;
  killpmt   pmt-top itself is killed with SIGKILL at 20 points of its life.

The racers know nothing of pmt-top's layout (see racer.py). Every attempt
starts a fresh target as nobody, runs the real `pmt-top snapshot PID` as root
and then checks that: no canary was created; the target is alive, not
stopped, not traced and still progressing; pmt-top ended within its deadline
with success or a one-line error free of terminal escapes; the victim files
are intact; root left no entry in /tmp and wrote none into a directory
another user controls.

The script runs itself in private mount and pid namespaces (fresh tmpfs on
/tmp, so parallel tests and the host's /tmp stay out of it, and every
process dies with the namespace), copying the binary and the agent into a
root-owned 0755 directory readable by nobody. Exit status: 0 passed, 1 a
check failed, 77 skipped (not root, or a tool is missing).
"""

import argparse
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

NOBODY = 65534
THIRD = 12345
TMP = "/tmp"
FIX = "/tmp/sec-fixture"
CANARY = FIX + "/canary"
WW = FIX + "/ww"
VICTIM_ROOT = FIX + "/victim-root"
OUT = FIX + "/out"
STAGE = "/mnt/sec-stage"    # a tmpfs of our own outside /tmp, so targets with a private /tmp see it
SHARE = STAGE + "/share"
BIN = STAGE + "/bin"
VICTIM_NAMES = ("status", "status.tmp", "gdb.cmd", "bootstrap.py")
PMT_DEADLINE = 45.0     # attach timeout (20 s) + call grace + connect retries, with room
FIFO_DEADLINE = 25.0
BUDGET = 300.0          # seconds a case may spend on attempts (ctest TIMEOUT is 330): room for a
                        # loaded machine; a quiet one takes 60-170 s

TARGETS = {
    # The main thread runs Python and prints a heartbeat. (One write per
    # line: print() writes its pieces separately, and threads interleave.)
    "busy": (
        "import sys, time, tracemalloc\n"
        "tracemalloc.start()\n"
        "n = 0\n"
        "sys.stdout.write('ready\\n')\n"
        "while True:\n"
        "    n += 1\n"
        "    sys.stdout.write('beat %d\\n' % n)\n"
        "    time.sleep(0.02)\n"
    ),
    # The main thread is parked in a system call; a worker is busy.
    "parked": (
        "import sys, threading, time, tracemalloc\n"
        "tracemalloc.start()\n"
        "def work():\n"
        "    n = 0\n"
        "    while True:\n"
        "        n += 1\n"
        "        s = 0\n"
        "        for i in range(20000):\n"
        "            s += i\n"
        "        sys.stdout.write('beat %d\\n' % n)\n"
        "        time.sleep(0.01)\n"
        "sys.stdout.write('ready\\n')\n"
        "threading.Thread(target=work, daemon=True).start()\n"
        "time.sleep(100000)\n"
    ),
}


class Failure(Exception):
    pass


def now():
    return time.monotonic()


def wait_for(cond, timeout, step=0.01):
    end = now() + timeout
    while True:
        v = cond()
        if v or now() >= end:
            return v
        time.sleep(step)


def proc_stat(pid):
    """(state, ppid, comm) of pid, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), comm


def tracer_pid(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def gdb_pids(ppid=None):
    out = []
    for p in all_pids():
        st = proc_stat(p)
        if st and st[2] == "gdb" and st[0] != "Z" and (ppid is None or st[1] == ppid):
            out.append(p)
    return out


def read_text(path, limit=1 << 20):
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode(errors="replace")
    except OSError:
        return ""


class Target:
    """A Python process running as nobody; counts its heartbeats."""

    def __init__(self, ctx, python, kind, mntns=False, ready_timeout=30.0):
        self.kind = kind
        self.errpath = os.path.join(OUT, "target-%d.err" % ctx.seq())
        err = open(self.errpath, "wb")
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/nonexistent"}
        cmd = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--",
               python, "-u", "-c", TARGETS[kind]]
        if mntns:
            # Its own mount namespace with a private /tmp (same pid: unshare
            # and sh exec): pmt-top works in /proc/PID/root/tmp then.
            opts = "mode=1777" if mntns == "shared" else "mode=0755,uid=%d,gid=%d" % (NOBODY, NOBODY)
            cmd = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                   'mount -t tmpfs -o %s,size=64m sec-target-tmp /tmp && exec "$@"' % opts, "sh"] + cmd
        self.mntns = mntns
        self.p = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env, cwd="/")
        err.close()
        ctx.procs.append(self.p)
        self.pid = self.p.pid
        self.beats = 0
        self.ready = threading.Event()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        if not self.ready.wait(ready_timeout):
            raise Failure("target %d on %s did not start (stat %s, TracerPid %s, wchan %s): %s" % (
                self.pid, python, proc_stat(self.pid), tracer_pid(self.pid),
                read_text("/proc/%d/wchan" % self.pid), read_text(self.errpath)[-500:]))
        if kind == "parked" and not wait_for(self.main_parked, 10):
            raise Failure("the main thread of target %d never parked in a system call" % self.pid)

    def _read(self):
        for line in self.p.stdout:
            m = re.match(rb"beat (\d+)$", line.strip())
            if m:
                self.beats = max(self.beats, int(m.group(1)))
            elif line.strip() == b"ready":
                self.ready.set()

    def main_parked(self):
        for _ in range(5):
            try:
                with open("/proc/%d/task/%d/syscall" % (self.pid, self.pid)) as f:
                    if f.read().startswith("running"):
                        return False
            except OSError:
                return False
            time.sleep(0.005)
        return True

    def alive(self):
        return self.p.poll() is None

    def state(self):
        st = proc_stat(self.pid)
        return st[0] if st else None

    def kill(self):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.wait()
        self.t.join(5)
        self.p.stdout.close()


class Ctx:
    def __init__(self, args):
        self.args = args
        self.procs = []
        self.racers = []
        self.checks = 0
        self.failures = []
        self.notes = []
        self._seq = 0
        self.t0 = now()
        self.baseline = set()
        self.ttmp = None   # the current target's private /tmp, seen from here

    def seq(self):
        self._seq += 1
        return self._seq

    def check(self, cond, what):
        self.checks += 1
        if not cond:
            self.failures.append(what)
            print("  FAIL %s" % what, flush=True)
        return cond

    def note(self, what):
        self.notes.append(what)
        print("  note %s" % what, flush=True)

    def over_budget(self):
        return now() - self.t0 > BUDGET

    # -- processes ------------------------------------------------------------

    def python_for(self, method):
        return self.args.python314 if method == "pep768" else self.args.python

    def target(self, method):
        t = Target(self, self.python_for(method), "parked" if method == "direct" else "busy",
                   mntns=self.args.target_mntns)
        self.ttmp = "/proc/%d/root/tmp" % t.pid if t.mntns else None
        return t

    def start_racer(self, mode, uid):
        log = open(os.path.join(OUT, "racer-%s-%d.log" % (mode, uid)), "wb")
        p = subprocess.Popen(
            ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups", "--",
             self.args.python, "-I", "-u", FIX + "/racer.py", mode, FIX],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/",
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
        log.close()
        self.procs.append(p)
        self.racers.append((p, uid, log.name))
        if not wait_for(lambda: "READY" in read_text(log.name) or p.poll() is not None, 20):
            raise Failure("racer %d did not start" % uid)
        if p.poll() is not None:
            raise Failure("racer %d died: %s" % (uid, read_text(log.name)[-500:]))
        return p

    def racer_stats(self):
        for p, uid, path in self.racers:
            text = read_text(path, 1 << 26)
            saw = len(re.findall(r"^SAW ", text, re.M))
            ok = re.findall(r"^ACT (\S+) (\S+) ok$", text, re.M)
            kinds = {}
            for a, _ in ok:
                kinds[a] = kinds.get(a, 0) + 1
            print("  racer uid %d: saw %d new entries; succeeded: %s" % (
                uid, saw, ", ".join("%s x%d" % kv for kv in sorted(kinds.items())) or "nothing"))
            shapes = sorted({"%s %s" % (a, re.sub(r"-[A-Za-z0-9]{6}\b|\d{6,}", "-*", path)) for a, path in ok})
            for sh in shapes[:12]:
                print("    e.g. %s" % sh)
            if p.poll() is not None:
                self.check(False, "racer uid %d died early: %s" % (uid, text[-300:]))

    def pmt_cmd(self, pid, method=None, extra=()):
        cmd = [BIN + "/pmt-top", "snapshot", str(pid)]
        if method:
            cmd += ["--inject-method", method]
        return cmd + list(extra)

    def pmt_env(self):
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PMT_TOP_DATA_DIR": SHARE,
                "HOME": "/root", "LC_ALL": "C.UTF-8"}

    def start_pmt(self, cmd):
        n = self.seq()
        out = open(os.path.join(OUT, "pmt-%d.out" % n), "wb")
        err = open(os.path.join(OUT, "pmt-%d.err" % n), "wb")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=self.pmt_env(), cwd="/")
        out.close()
        err.close()
        p.outpath, p.errpath, p.t_start = out.name, err.name, now()
        self.procs.append(p)
        return p

    def finish_pmt(self, p, deadline, killed=False):
        """Waits for pmt-top; checks it ended in time with success or one line."""
        try:
            p.wait(timeout=max(0.1, p.t_start + deadline - now()))
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            self.check(False, "pmt-top did not end within %.0f s (killed it); stderr: %r" % (
                deadline, read_text(p.errpath)[-300:]))
            return None, read_text(p.errpath)
        rc = p.returncode
        err = read_text(p.errpath)
        out = read_text(p.outpath)
        if killed:
            return rc, err
        lines = [l for l in err.splitlines() if l.strip()]
        if rc != 0:
            self.check(lines and all(l.startswith("pmt-top: ") for l in lines) and len(lines) <= 2,
                       "pmt-top failed (exit %d) with a one-line error, got: %r" % (rc, err[-600:]))
        bad = [c for c in err + out if ord(c) < 32 and c not in "\n\t"]
        self.check(not bad, "pmt-top's output has no control characters (terminal escapes), got %r in %r" % (
            "".join(sorted(set(bad))), (err + out)[-300:]))
        # (Text from the target's user, such as its status line, may show,
        # sanitised; replies of a socket pmt-top should not trust may not.)
        self.check("SPOOF-MARKER" not in err + out,
                   "pmt-top's output shows nothing the spoofed socket answered: %r" % err[-300:])
        return rc, err

    # -- the file system, seen from the outside -------------------------------

    def scan(self):
        """{path: (uid, mode, parent uid, parent mode)} for everything below
        /tmp (ours and the target's private one) except the fixture."""
        out = {}
        for top in [TMP] + ([self.ttmp] if self.ttmp else []):
            out.update(self.scan_one(top))
        return out

    def scan_one(self, top):
        out = {}
        for root, dirs, files in os.walk(top):
            if root == TMP:
                dirs[:] = [d for d in dirs if os.path.join(root, d) != FIX]
            try:
                pst = os.lstat(root)
            except OSError:
                continue
            for n in dirs + files:
                p = os.path.join(root, n)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                out[p] = (st.st_uid, st.st_mode, pst.st_uid, pst.st_mode)
        return out

    def check_tree(self, after_exit=True):
        """Root wrote nothing into another user's directory; after pmt-top
        exited, it left nothing behind."""
        snap = self.scan()
        for p, (uid, mode, puid, pmode) in sorted(snap.items()):
            if uid == 0 and puid != 0 and not stat.S_ISLNK(mode):
                if stat.S_ISDIR(mode) and not any(q.startswith(p + "/") for q in snap):
                    # pmt-top's own directory, emptied, that the other user
                    # renamed in a /tmp it owns: nothing root wrote remains.
                    print("    note: empty root-owned directory %s (renamed by uid %d)" % (p, puid))
                    continue
                self.check(False, "root created %s inside a directory owned by uid %d" % (p, puid))
        if after_exit:
            for p, (uid, mode, puid, pmode) in sorted(snap.items()):
                base = self.ttmp if self.ttmp and p.startswith(self.ttmp + "/") else TMP
                top = p[len(base) + 1:].split("/")[0]
                if top.startswith("sec-"):
                    continue
                if uid == 0 and p not in self.baseline:
                    self.check(False, "pmt-top left %s behind (root-owned, mode %o)" % (p, mode))
                elif os.path.dirname(p) == base and top.startswith("pmt-top-inject") and stat.S_ISDIR(mode):
                    self.check(False, "pmt-top left %s behind (uid %d)" % (p, uid))
        return snap

    def canaries(self):
        found = []
        for n in sorted(os.listdir(CANARY)):
            st = os.lstat(os.path.join(CANARY, n))
            found.append("%s (uid %d)" % (n, st.st_uid))
        return found

    def victims(self):
        """The racers' victim directories and the root-owned one."""
        out = [(VICTIM_ROOT, 0)]
        for _, uid, _ in self.racers:
            out.append(("/tmp/sec-racer-%d/victim" % uid, uid))
        return out

    def check_victims(self):
        for d, uid in self.victims():
            for n in VICTIM_NAMES:
                p = os.path.join(d, n)
                want = "victim %s of uid %d\n" % (n, uid)
                try:
                    st = os.lstat(p)
                    ok = stat.S_ISREG(st.st_mode) and read_text(p) == want and st.st_uid == uid
                except OSError:
                    ok = False
                if not self.check(ok, "victim file %s survived unchanged" % p):
                    restore(p, want, uid)
            for n in os.listdir(d) if os.path.isdir(d) else []:
                if n not in VICTIM_NAMES:
                    st = os.lstat(os.path.join(d, n))
                    self.check(st.st_uid != 0 or uid == 0,
                               "root created %s in the racer's victim directory" % os.path.join(d, n))

    def tidy(self):
        """Removes what a failed or attacked attempt left, so the next one
        starts clean (after the checks above reported it)."""
        for n in os.listdir(TMP):
            p = os.path.join(TMP, n)
            if n.startswith("sec-junk-") or (n.startswith("pmt-top-inject")) or \
                    (p not in self.baseline and os.lstat(p).st_uid == 0 and not n.startswith("sec-")):
                if os.path.islink(p) or not os.path.isdir(p):
                    os.unlink(p)
                else:
                    shutil.rmtree(p, ignore_errors=True)
        for n in os.listdir(CANARY):
            os.unlink(os.path.join(CANARY, n))

    # -- one attempt ----------------------------------------------------------

    def check_target(self, t, what, progress=True):
        if not self.check(t.alive(), "%s: the target is alive" % what):
            print("    target stderr: %r" % read_text(t.errpath)[-400:])
            return
        self.check(wait_for(lambda: tracer_pid(t.pid) == 0, 10),
                   "%s: the target is not traced any more (TracerPid %s)" % (what, tracer_pid(t.pid)))
        self.check(wait_for(lambda: t.state() not in ("t", "T"), 5),
                   "%s: the target is not stopped (state %s)" % (what, t.state()))
        if progress:
            b0 = t.beats
            self.check(wait_for(lambda: t.beats >= b0 + 3, 15),
                       "%s: the target is still progressing (heartbeat %d -> %d)" % (what, b0, t.beats))

    def wait_gdb_gone(self, what, timeout=30):
        if not wait_for(lambda: not gdb_pids(), timeout, 0.05):
            self.check(False, "%s: gdb still runs %d s after pmt-top ended" % (what, timeout))
            for g in gdb_pids():
                os.kill(g, signal.SIGKILL)

    def after_attempt(self, t, what, progress=True, leftovers=True):
        self.wait_gdb_gone(what)
        if not leftovers:
            left = sorted(n for n in os.listdir(TMP)
                          if not n.startswith("sec-") and os.path.join(TMP, n) not in self.baseline)
            if left:
                print("    left in /tmp: %s" % ", ".join(left))
        c = self.canaries()
        self.check(not c, "%s: the attacker's commands never ran as root (canaries: %s)" % (what, c))
        self.check_target(t, what, progress)
        self.check_tree(after_exit=leftovers)
        self.check_victims()
        t.kill()
        self.ttmp = None
        self.tidy()


def restore(path, text, uid):
    try:
        if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
            os.unlink(path)
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, uid, uid)
    except OSError:
        pass


# --- the cases ----------------------------------------------------------------

def race_case(ctx, mode, method, attempts, deadline):
    ctx.start_racer(mode, NOBODY)
    ctx.start_racer(mode, THIRD)
    ctx.baseline = set(ctx.scan())
    hung = 0
    done = 0
    for i in range(attempts):
        if ctx.over_budget():
            break
        what = "%s/%s attempt %d" % (mode, method, i + 1)
        t = ctx.target(method)
        p = ctx.start_pmt(ctx.pmt_cmd(t.pid, method))
        rc, err = ctx.finish_pmt(p, deadline)
        print("  %s: pmt-top exit %s in %.1f s: %s" % (what, rc, now() - p.t_start,
                                                       err.strip().splitlines()[-1:] or ""), flush=True)
        # A FIFO may block the target's own bootstrap: that is its user's doing.
        ctx.after_attempt(t, what, progress=(mode != "fifo"))
        done += 1
        if rc is None:
            hung += 1
            if hung >= 2:
                ctx.note("stopped after %d attempts: pmt-top hung twice" % done)
                break
    ctx.racer_stats()
    if hung < 2:
        ctx.check(done >= attempts, "ran all %d attempts within the time budget (ran %d)" % (attempts, done))


def find_gdb_child(ppid, deadline):
    """Polls for pmt-top's gdb child; returns its pid or None if pmt-top ended first."""
    while now() < deadline:
        g = gdb_pids(ppid)
        if g:
            return g[0]
        st = proc_stat(ppid)
        if st is None or st[0] == "Z":
            return None
        time.sleep(0.001)
    return None


def calibrate(ctx, method, runs=2):
    """Lifetimes of gdb and of the whole pmt-top run without interference:
    the shortest of RUNS, so that the kill points fall inside them."""
    lives, totals = [], []
    for i in range(runs):
        t = ctx.target(method)
        p = ctx.start_pmt(ctx.pmt_cmd(t.pid, method))
        g = find_gdb_child(p.pid, now() + 30)
        t_g = now()
        if g:
            # One read per look: gdb may exit between two.
            wait_for(lambda: (lambda st: st is None or st[0] == "Z")(proc_stat(g)), 30, 0.002)
            lives.append(now() - t_g)
        rc, err = ctx.finish_pmt(p, PMT_DEADLINE)
        totals.append(now() - p.t_start)
        ctx.check(rc == 0, "calibration: pmt-top attaches to an undisturbed target (exit %s: %r)" % (
            rc, err[-300:]))
        ctx.after_attempt(t, "calibration %d" % (i + 1))
    life, total = min(lives or [0]), min(totals)
    print("  calibration: gdb lived %.2f s, pmt-top %.2f s" % (life, total), flush=True)
    return max(life, 0.2), max(total, 0.5)


def kill_gdb_case(ctx, method, signame, points=20):
    sig = getattr(signal, "SIG" + signame)
    ctx.baseline = set(ctx.scan())
    life, _ = calibrate(ctx, method)
    hits = 0
    i = attempts = 0
    # A point whose gdb ended before the kill (a faster run than the
    # calibration's) is run again, with the kill points scaled to the
    # lifetime just seen: the case kills gdb all along its life on a
    # machine whose speed changes under it.
    while i < points and attempts < 2 * points:
        if ctx.over_budget():
            break
        attempts += 1
        delay = life * i / (points - 1)
        what = "SIG%s to gdb at %.0f ms (%s)" % (signame, delay * 1000, method)
        t = ctx.target(method)
        p = ctx.start_pmt(ctx.pmt_cmd(t.pid, method))
        g = find_gdb_child(p.pid, now() + 30)
        outcome = "no gdb seen"
        if g:
            t_g = now()
            while now() < t_g + delay and proc_stat(g) and proc_stat(g)[0] != "Z":
                time.sleep(0.001)
            st = proc_stat(g)
            if st and st[0] != "Z":
                os.kill(g, sig)
                hits += 1
                i += 1
                outcome = "killed"
            else:
                life = max(0.2, min(life, now() - t_g) * 0.9)
                outcome = "gdb had ended (lifetime now %.2f s; again)" % life
        else:
            i += 1
        rc, err = ctx.finish_pmt(p, PMT_DEADLINE)
        print("  %s: %s; pmt-top exit %s: %s" % (what, outcome, rc,
                                                 err.strip().splitlines()[-1:] or ""), flush=True)
        ctx.after_attempt(t, what)
    ctx.check(hits >= points // 2, "gdb was alive at the kill point in at least half the attempts (%d)" % hits)


def kill_pmt_case(ctx, method, points=20):
    ctx.baseline = set(ctx.scan())
    _, total = calibrate(ctx, method)
    for i in range(points):
        if ctx.over_budget():
            break
        delay = total * i / (points - 1)
        what = "SIGKILL to pmt-top at %.0f ms (%s)" % (delay * 1000, method)
        t = ctx.target(method)
        p = ctx.start_pmt(ctx.pmt_cmd(t.pid, method))
        while now() < p.t_start + delay and p.poll() is None:
            time.sleep(0.001)
        gdb = gdb_pids(p.pid)
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        ctx.finish_pmt(p, PMT_DEADLINE, killed=True)
        print("  %s: %s" % (what, "gdb was running" if gdb else "no gdb running"), flush=True)
        # Whatever pmt-top left may stay (it got no chance to clean up); the
        # target must not pay for it.
        ctx.after_attempt(t, what, leftovers=False)


def spoof_case(ctx):
    target_dir = "/tmp/pmt-top-%d" % NOBODY
    variants = [
        ("third uid owns the directory", target_dir, THIRD, None),
        ("third uid's socket in the target user's world-writable directory", target_dir, THIRD,
         (NOBODY, 0o1777)),
        ("the target user's own socket with a recycled pid", target_dir, NOBODY, (NOBODY, 0o700)),
        ("third uid squats root's own runtime directory", "/tmp/pmt-top-0", THIRD, None),
    ]
    ctx.baseline = set(ctx.scan())
    for name, rundir, uid, mkdir in variants:
        print("  variant: %s" % name, flush=True)
        if mkdir:
            os.mkdir(rundir)
            os.chown(rundir, mkdir[0], mkdir[0])
            os.chmod(rundir, mkdir[1])
        log = os.path.join(OUT, "spoof-%d.log" % ctx.seq())
        with open(log, "wb") as lf:
            sp = subprocess.Popen(
                ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups", "--",
                 ctx.args.python, "-I", "-u", FIX + "/spoof.py", rundir],
                stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT, cwd="/",
                env={"PATH": "/usr/bin:/bin"})
        ctx.procs.append(sp)
        if not wait_for(lambda: re.search(r"^PID \d+", read_text(log), re.M), 20):
            raise Failure("the spoof server did not start: %s" % read_text(log))
        pid = int(re.search(r"^PID (\d+)", read_text(log), re.M).group(1))
        t = None
        for _ in range(20):
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(pid - 1))
            t = ctx.target("gdb")
            if t.pid == pid:
                break
            t.kill()
            t = None
        if t is None:
            raise Failure("could not start the target with the recycled pid %d" % pid)
        sock = "%s/%d.sock" % (rundir, pid)
        print("  target pid %d = the pid in %s's credentials" % (pid, sock), flush=True)

        p = ctx.start_pmt(ctx.pmt_cmd(pid, extra=["--no-inject"]))
        rc, err = ctx.finish_pmt(p, FIFO_DEADLINE)
        line = err.strip().splitlines()[-1:] or [""]
        print("  --no-inject: exit %s: %s" % (rc, line[0]), flush=True)
        ctx.check(rc not in (0, None), "--no-inject: pmt-top refuses the spoofed socket (exit %s)" % rc)
        ctx.check(rundir in err or "socket" in err,
                  "--no-inject: the error names the refused socket or its directory: %r" % line[0])
        reqs = [l for l in read_text(log).splitlines() if l.startswith("REQUEST uid=0 ")]
        ctx.check(not reqs, "--no-inject: pmt-top sent nothing to the spoof (got %s)" % reqs[:2])

        p = ctx.start_pmt(ctx.pmt_cmd(pid, "gdb"))
        rc, err = ctx.finish_pmt(p, PMT_DEADLINE)
        line = err.strip().splitlines()[-1:] or [""]
        print("  with injection: exit %s: %s" % (rc, line[0]), flush=True)
        reqs = [l for l in read_text(log).splitlines() if l.startswith("REQUEST uid=0 ")]
        ctx.check(not reqs, "with injection: pmt-top sent nothing to the spoof (got %s)" % reqs[:2])
        print("  spoof log: %s" % " | ".join(read_text(log).splitlines()[:6]), flush=True)
        ctx.after_attempt(t, "spoof (%s)" % name, leftovers=True)
        sp.kill()
        sp.wait()
        shutil.rmtree(rundir, ignore_errors=True)

    # The same flow against a real agent works: the refusals above are not
    # a broken setup.
    t = ctx.target("gdb")
    p = ctx.start_pmt(ctx.pmt_cmd(t.pid, "gdb"))
    rc, err = ctx.finish_pmt(p, PMT_DEADLINE)
    ctx.check(rc == 0, "no spoof: pmt-top loads the agent and takes a snapshot (exit %s: %r)" % (rc, err[-300:]))
    p = ctx.start_pmt(ctx.pmt_cmd(t.pid, extra=["--no-inject"]))
    rc, err = ctx.finish_pmt(p, FIFO_DEADLINE)
    ctx.check(rc == 0, "no spoof: --no-inject talks to the real agent (exit %s: %r)" % (rc, err[-300:]))
    ctx.after_attempt(t, "spoof (control)")


# --- setup: namespaces, fixture ----------------------------------------------

def slurp_tree(src):
    """[(relpath, mode, bytes or None for a directory)] of a tree."""
    out = []
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = os.path.relpath(root, src)
        out.append((rel, 0o755, None))
        for n in files:
            with open(os.path.join(root, n), "rb") as f:
                out.append((os.path.join(rel, n), os.stat(os.path.join(root, n)).st_mode, f.read()))
    return out


def spill(tree, dst):
    for rel, mode, data in tree:
        p = os.path.normpath(os.path.join(dst, rel))
        if data is None:
            os.makedirs(p, exist_ok=True)
            os.chmod(p, 0o755)
        else:
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, 0o755 if mode & 0o111 else 0o644)


def setup_fixture(args):
    """Reads what is needed, puts a fresh tmpfs on /tmp, lays the fixture out."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(args.pmt_top, "rb") as f:
        binary = f.read()
    agent = slurp_tree(args.agent)
    native = slurp_tree(args.native) if args.native and os.path.isdir(args.native) else []
    scripts = {}
    for n in ("racer.py", "spoof.py"):
        with open(os.path.join(here, n), "rb") as f:
            scripts[n] = f.read()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=512m", "pmt-sec-tmp", TMP], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=256m", "pmt-sec-stage", "/mnt"], check=True)
    os.umask(0o022)
    for d, mode in ((FIX, 0o755), (CANARY, 0o755), (WW, 0o1777), (VICTIM_ROOT, 0o755), (OUT, 0o700),
                    (STAGE, 0o755), (SHARE, 0o755), (BIN, 0o755)):
        os.mkdir(d)
        os.chmod(d, mode)
    with open(BIN + "/pmt-top", "wb") as f:
        f.write(binary)
    os.chmod(BIN + "/pmt-top", 0o755)
    spill(agent, SHARE + "/agent")
    spill(native, SHARE + "/agent-native")
    for n, data in scripts.items():
        with open(os.path.join(FIX, n), "wb") as f:
            f.write(data)
    for n in VICTIM_NAMES:
        restore(os.path.join(VICTIM_ROOT, n), "victim %s of uid 0\n" % n, 0)


def run_case(args):
    setup_fixture(args)
    ctx = Ctx(args)
    try:
        print("case %s %s %s (pmt-top: %s)" % (args.case, args.method or "", args.signal or "",
                                               args.pmt_top), flush=True)
        if args.case in ("cmdswap", "dirswap"):
            race_case(ctx, "swap" if args.case == "cmdswap" else "dirswap", args.method, args.attempts,
                      PMT_DEADLINE)
        elif args.case == "fifo":
            race_case(ctx, "fifo", args.method, args.attempts, FIFO_DEADLINE)
        elif args.case == "killgdb":
            kill_gdb_case(ctx, args.method, args.signal, args.attempts)
        elif args.case == "killpmt":
            kill_pmt_case(ctx, args.method, args.attempts)
        elif args.case == "spoof":
            spoof_case(ctx)
    except Failure as e:
        ctx.check(False, str(e))
    finally:
        for p in ctx.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
    if args.logs:
        shutil.copytree(OUT, os.path.join(args.logs, "%s-%s-%d" % (args.case, args.method, os.getpid())),
                        dirs_exist_ok=True)
    n = len(ctx.failures)
    print("%d checks, %d failed" % (ctx.checks, n))
    for f in ctx.failures[:40]:
        print("FAILED: %s" % f)
    return 1 if n else 0


def init_main(args, argv):
    """PID 1 of the private pid namespace: runs the case in a child, reaps
    every orphan (gdb outliving a killed pmt-top), exits with its status."""
    child = os.fork()
    if child == 0:
        try:
            code = run_case(args)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        os._exit(code)
    while True:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            return 1
        if pid == child:
            return os.waitstatus_to_exitcode(st) if not os.WIFSIGNALED(st) else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["cmdswap", "dirswap", "fifo", "spoof", "killgdb", "killpmt"])
    ap.add_argument("--pmt-top", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--native")
    ap.add_argument("--method", default="gdb", choices=["gdb", "direct", "pep768"])
    ap.add_argument("--signal", default="TERM", choices=["TERM", "INT", "HUP"])
    ap.add_argument("--attempts", type=int, default=14)   # each attempt meets the racers many times
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--python314", default="/opt/pmt-top-py314/bin/python3.14")
    ap.add_argument("--target-mntns", nargs="?", const="shared", choices=["shared", "owned"],
                    help="start each target in its own mount namespace with a private /tmp "
                    "(sticky and world-writable, or owned by the target's user)")
    ap.add_argument("--logs", help="copy the racers' logs and pmt-top's output to this directory")
    ap.add_argument("--in-ns", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.in_ns:
        sys.exit(init_main(args, sys.argv))
    if os.geteuid() != 0:
        print("skipped: the attack tests run as root (they start processes as other users)")
        sys.exit(77)
    for tool in ("setpriv", "unshare", "gdb", "mount"):
        if not shutil.which(tool):
            print("skipped: %s is not installed" % tool)
            sys.exit(77)
    py = args.python314 if args.method == "pep768" else args.python
    if not os.access(py, os.X_OK):
        print("skipped: %s is not installed" % py)
        sys.exit(77)
    for a in ("pmt_top", "agent", "native"):
        if getattr(args, a):
            setattr(args, a, os.path.abspath(getattr(args, a)))
    argv = [sys.executable, os.path.abspath(__file__), "--in-ns"] + [
        a for a in sys.argv[1:]]
    for i, a in enumerate(argv):
        for opt in ("--pmt-top", "--agent", "--native", "--logs"):
            if a == opt and i + 1 < len(argv):
                argv[i + 1] = os.path.abspath(argv[i + 1])
    os.execvp("unshare", ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "private",
                          "--mount-proc", "--"] + argv)


if __name__ == "__main__":
    main()
