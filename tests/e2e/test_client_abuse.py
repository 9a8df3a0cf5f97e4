"""End-to-end: pmt-top against agents that do not serve it, and against itself.

- a silent agent (its socket accepts, hello is never answered): the TUI says
  so in one sentence, retries visibly with a growing delay, quits cleanly;
- a stopped process with an agent: the TUI says it is stopped, and connects
  once it runs again;
- an agent with no free connection ("busy"): the headless command exits
  with one line, the TUI says it and retries, and neither loads a second
  agent (no debugger ever attaches: the target watches its own TracerPid);
- an agent that closes the idle connection ("timeout"): the TUI says so and
  reconnects; a headless wait says so and fails;
- a headless wait longer than the real agent's idle timeout survives (the
  client's keepalive);
- two pmt-tops attaching to one real Python at once: both get in, or the one
  that cannot says who holds ptrace;
- what a pmt-top killed with SIGKILL left in /tmp goes at the next start
  (inject directories; the demo's log at the next demo), and nothing that is
  not its own (another uid's, a symlink) is touched.

The fake agents are real Python processes (fake_agent.py) listening where
their own agent would. No test measures how fast anything is: each waits for
what it expects with a generous deadline (times are printed for the record).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

from tui import BIN, PYTHON, SOURCE, TuiTestCase, alive

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_agent.py")
SLEEPER = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.05)\n"


def squash(text):
    """TEXT without whitespace: a sentence wrapped over rows still matches."""
    return "".join(text.split())


def tracer_pid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def pidns():
    return os.stat("/proc/self/ns/pid").st_ino


def dead_pid():
    """A pid no process has now (a child that exited and was reaped)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def inject_dirs(pmt_pid=None):
    prefix = "pmt-top-inject-" + ("%d-" % pmt_pid if pmt_pid else "")
    return sorted(n for n in os.listdir("/tmp") if n.startswith(prefix))


class FakeAgent:
    """fake_agent.py in MODE; its log lines are collected as they come."""

    def __init__(self, case, mode, rundir):
        self.p = subprocess.Popen([PYTHON, FAKE, mode, rundir], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        case.addCleanup(case._kill, self.p)
        self.pid = self.p.pid
        self.lines = []
        first = self.p.stdout.readline()
        if not first.startswith("READY "):
            raise AssertionError("the fake agent did not start: %r %r" % (first, self.p.stderr.read()))
        self.sock = first.split(None, 1)[1].strip()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.strip())

    def count(self, word):
        return sum(1 for l in list(self.lines) if l.split()[:1] == [word])

    def has(self, line):
        return line in list(self.lines)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def assert_untouched(self, case):
        """No debugger ever attached, nothing on its stderr."""
        case.assertEqual([l for l in self.lines if l.startswith("TRACED")], [])
        case.assertEqual(tracer_pid(self.pid), 0)
        self.p.kill()
        self.p.wait(timeout=10)
        case.assertEqual(self.p.stderr.read(), "")


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


class ClientAbuse(TuiTestCase):

    def setUp(self):
        super().setUp()
        self.rundir = os.path.join(self.tmpdir, "run")
        os.mkdir(self.rundir, 0o700)
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.rundir)

    def fake(self, mode):
        return FakeAgent(self, mode, self.rundir)

    def pmt(self, *args, timeout=120):
        return subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=self.env, timeout=timeout)

    def screen_has(self, text):
        want = squash(text)
        return lambda s: want in squash(s)

    def quit_cleanly(self):
        self.keys("q")
        s = self.wait_for(lambda s: "EXIT=0" in s, timeout=30, what="pmt-top to quit")
        self.assertFalse(self.alternate_screen(), "the terminal was left in the alternate screen")
        return s

    # -- a silent agent -------------------------------------------------------
    def test_silent_agent_tui_says_so_retries_and_quits(self):
        fake = self.fake("silent")
        self.open_terminal(120, 40, env={"PMT_TOP_RUNTIME_DIR": self.rundir})
        t0 = time.monotonic()
        self.run_pmt(str(fake.pid))
        sentence = "the agent in pid %d accepted the connection but did not answer within 5 s" % fake.pid
        self.wait_for(self.screen_has(sentence), timeout=60, what="the silent-agent sentence")
        print("silent agent: the sentence after %.1f s" % (time.monotonic() - t0), file=sys.stderr)
        # It says that it retries, and when; and it does retry, by connecting again.
        s = self.wait_for(lambda s: re.search(r"retry 2 (at \d\d:\d\d:\d\d )?\(?in \d+ s", s),
                          timeout=30, what="the retry notice")
        wait_until(lambda: fake.count("CONNECT") >= 2, 60, "a second connection")
        self.wait_for(lambda s: re.search(r"retry 3 (at \d\d:\d\d:\d\d )?\(?in \d+ s", s), timeout=60,
                      what="the second retry notice")
        self.quit_cleanly()
        fake.assert_untouched(self)

    def test_stopped_target_is_named_and_connected_once_resumed(self):
        fake = self.fake("serve")
        os.kill(fake.pid, signal.SIGSTOP)
        self.addCleanup(lambda: alive(fake.pid) and os.kill(fake.pid, signal.SIGCONT))
        self.open_terminal(120, 40, env={"PMT_TOP_RUNTIME_DIR": self.rundir})
        self.run_pmt(str(fake.pid))
        stopped = "process %d is stopped (state T in /proc/%d/stat)" % (fake.pid, fake.pid)
        self.wait_for(self.screen_has(stopped), timeout=60, what="the stopped process named")
        self.wait_for(self.screen_has("resume it with kill -CONT %d" % fake.pid), timeout=30,
                      what="the remedy")
        os.kill(fake.pid, signal.SIGCONT)
        self.wait_for(lambda s: "agent Python" in s, timeout=60, what="the connection once it runs")
        self.quit_cleanly()
        fake.assert_untouched(self)

    # -- busy --------------------------------------------------------------------
    def test_busy_headless_one_line_and_no_injection(self):
        fake = self.fake("busy")
        before = set(inject_dirs())
        seen = set()
        stop = threading.Event()

        def watch():  # any inject directory made meanwhile
            while not stop.is_set():
                seen.update(set(inject_dirs()) - before)
                time.sleep(0.002)
        w = threading.Thread(target=watch, daemon=True)
        w.start()
        r = self.pmt("snapshot", str(fake.pid))
        stop.set()
        w.join()
        self.assertEqual(r.returncode, 5, r.stderr)
        want = ("pmt-top: the agent in pid %d has no free connection (all 32 connections of this agent "
                "are in use by active clients); close other pmt-top sessions or try again" % fake.pid)
        self.assertEqual(r.stderr.strip(), want)
        self.assertEqual(r.stdout, "")
        self.assertGreaterEqual(fake.count("CONNECT"), 1)
        self.assertEqual(seen, set())
        # The other commands say the same.
        r = self.pmt("trace", str(fake.pid), "status")
        self.assertEqual((r.returncode, r.stderr.strip()), (5, want))
        fake.assert_untouched(self)

    def test_busy_tui_says_so_and_retries_without_injecting(self):
        fake = self.fake("busy")
        self.open_terminal(120, 40, env={"PMT_TOP_RUNTIME_DIR": self.rundir})
        self.run_pmt(str(fake.pid))
        self.wait_for(self.screen_has("the agent in pid %d has no free connection" % fake.pid), timeout=60,
                      what="the busy sentence")
        self.wait_for(self.screen_has("close other pmt-top sessions or try again"), timeout=30,
                      what="the remedy")
        wait_until(lambda: fake.count("CONNECT") >= 2, 60, "a retry")
        self.quit_cleanly()
        fake.assert_untouched(self)

    # -- timeout ----------------------------------------------------------------
    def test_timeout_mid_session_tui_reconnects(self):
        fake = self.fake("serve")
        self.open_terminal(140, 40, env={"PMT_TOP_RUNTIME_DIR": self.rundir})
        self.run_pmt(str(fake.pid))
        self.wait_for(lambda s: "agent Python" in s, timeout=60, what="the first connection")
        wait_until(lambda: fake.count("CONNECT") == 1 and fake.has("REQUEST 1 subscribe"), 30,
                   "the first connection's subscription")
        fake.send("timeout")
        wait_until(lambda: fake.has("SENT-TIMEOUT 1"), 30, "the timeout frame")
        wait_until(lambda: fake.has("REQUEST 2 hello") and fake.has("REQUEST 2 subscribe"), 60,
                   "a new connection")
        # Both lines, whole, in the message log.
        self.keys("M")
        s = self.wait_for(lambda s: "messages, newest last" in s, what="the message panel")
        closed = ("the agent in pid %d closed the idle connection (no request for 60 s; closing the idle "
                  "connection); reconnecting" % fake.pid)
        self.wait_for(self.screen_has(closed), timeout=10, what="the timeout said in the log")
        self.assertGreaterEqual(squash(s).count(squash("connected to the agent in pid %d" % fake.pid)), 2, s)
        self.keys("Escape")
        self.wait_for(lambda s: "messages, newest last" not in s, what="the panel to close")
        self.quit_cleanly()
        fake.assert_untouched(self)

    def test_timeout_headless_wait_says_so(self):
        fake = self.fake("serve")
        p = subprocess.Popen([BIN, "snapshot", str(fake.pid), "--wait", "600"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=self.env)
        self.addCleanup(self._kill, p)
        wait_until(lambda: fake.has("REQUEST 1 status"), 60, "the snapshot's status request")
        fake.send("timeout")
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 1, err)
        self.assertEqual(err.strip(), "pmt-top: lost the agent in pid %d while waiting: the agent in pid %d "
                         "closed the idle connection (no request for 60 s; closing the idle connection)"
                         % (fake.pid, fake.pid))
        fake.assert_untouched(self)

    # -- keepalive against the real agent ----------------------------------------
    def test_keepalive_outlives_the_agents_idle_timeout(self):
        target = subprocess.Popen([PYTHON, "-c", SLEEPER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=self.env)
        self.addCleanup(self._kill, target)
        self.assertEqual(target.stdout.readline().strip(), b"ready")
        # Longer than the agent's 60 s idle limit (docs/protocol.md, "timeout").
        r = self.pmt("snapshot", str(target.pid), "--start-tracing", "--wait", "70", "--top", "3",
                     timeout=240)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("idle", r.stderr)
        self.assertIn("SIZE", r.stdout)
        self.assertEqual(self.pmt("trace", str(target.pid), "stop").returncode, 0)
        self.assertTrue(alive(target.pid))

    # -- two pmt-tops at once ---------------------------------------------------
    def start_sleeper(self):
        target = subprocess.Popen([PYTHON, "-c", SLEEPER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=self.env)
        self.addCleanup(self._kill, target)
        self.assertEqual(target.stdout.readline().strip(), b"ready")
        return target

    def test_two_headless_attaches_at_once(self):
        for round_ in range(2):
            target = self.start_sleeper()
            ps = [subprocess.Popen([BIN, "trace", str(target.pid), "status"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=self.env) for _ in range(2)]
            for p in ps:
                self.addCleanup(self._kill, p)
            results = [p.communicate(timeout=120) + (p.returncode,) for p in ps]
            for out, err, rc in results:
                if rc == 0:
                    self.assertIn("tracemalloc in pid %d: off" % target.pid, out)
                else:
                    # The one that lost says who holds ptrace, never a bare refusal.
                    self.assertRegex(err, r"(is tracing it already|is being traced by) process \d+ \(gdb")
                    self.assertNotIn("ptrace is not permitted", err)
            print("two attaches, round %d: exit codes %s" % (round_ + 1, [r[2] for r in results]),
                  file=sys.stderr)
            self.assertIn(0, [r[2] for r in results])
            target.kill()
            target.wait()
            self.assertEqual(target.stderr.read(), b"")

    def test_two_tui_attaches_at_once(self):
        target = self.start_sleeper()
        self.open_terminal(140, 40, env={"PMT_TOP_RUNTIME_DIR": self.rundir})
        self.tmux("new-window", "-t", "main", "-n", "second",
                  "env PMT_TOP_RUNTIME_DIR=%s LANG=C.UTF-8 TERM=screen-256color PS1='$ ' bash --norc "
                  "--noprofile" % self.rundir)
        cmd = "%s %d; echo EXIT=$?" % (BIN, target.pid)
        for win in ("main:0", "main:second"):
            self.tmux("send-keys", "-t", win, "-l", cmd)
        for win in ("main:0", "main:second"):
            self.tmux("send-keys", "-t", win, "Enter")
        for win in ("main:0", "main:second"):
            deadline = time.monotonic() + 90
            s = ""
            while time.monotonic() < deadline:
                s = self.tmux("capture-pane", "-p", "-t", win)
                if "agent Python" in s or re.search(r"(is tracing it already|is being traced by)", s):
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("window %s: neither connected nor said who holds ptrace:\n%s" % (win, s))
            self.assertNotIn("ptrace is not permitted", s)
        # For the record: which way each went (the message log).
        for win in ("main:0", "main:second"):
            self.tmux("send-keys", "-t", win, "M")
        for win in ("main:0", "main:second"):
            deadline = time.monotonic() + 30
            while "messages, newest last" not in self.tmux("capture-pane", "-p", "-t", win):
                if time.monotonic() > deadline:
                    raise AssertionError("window %s: no message panel" % win)
                time.sleep(0.1)
            log = squash(self.tmux("capture-pane", "-p", "-t", win))
            print("two TUIs, %s: %s" % (win, "waited for the other's agent" if squash("is loading the agent")
                                         in log else "loaded or found the agent itself"), file=sys.stderr)
            self.assertNotIn(squash("ptrace is not permitted"), log)
            self.tmux("send-keys", "-t", win, "Escape")
        for win in ("main:0", "main:second"):
            self.tmux("send-keys", "-t", win, "q")
        for win in ("main:0", "main:second"):
            deadline = time.monotonic() + 60
            while "EXIT=0" not in self.tmux("capture-pane", "-p", "-t", win):
                if time.monotonic() > deadline:
                    raise AssertionError("window %s did not quit" % win)
                time.sleep(0.1)
        self.assertTrue(alive(target.pid))
        target.kill()
        target.wait()
        self.assertEqual(target.stderr.read(), b"")

    # -- leftovers --------------------------------------------------------------
    def make_tmp(self, name, kind, mode=0o700, uid=None, target=None):
        path = os.path.join("/tmp", name)
        if kind == "dir":
            os.mkdir(path, mode)
            os.chmod(path, mode)
            os.makedirs(os.path.join(path, "agent", "pmt_agent"))
            with open(os.path.join(path, "agent", "pmt_agent", "__init__.py"), "w") as f:
                f.write("# copy\n")
            with open(os.path.join(path, "bootstrap.py"), "w") as f:
                f.write("# bootstrap\n")
            if target:
                os.symlink(target, os.path.join(path, "agent", "link"))
            if uid is not None:
                os.chown(path, uid, -1)
        else:
            os.symlink(target, path)
        self.addCleanup(lambda: os.path.islink(path) and os.unlink(path))
        self.addCleanup(lambda: os.path.isdir(path) and not os.path.islink(path) and shutil.rmtree(path))
        return path

    @unittest.skipUnless(os.geteuid() == 0, "needs root (a directory of another uid)")
    def test_leftovers_of_a_killed_pmt_top_are_swept_and_nothing_else(self):
        # A real leftover: pmt-top killed with SIGKILL while it waits for the
        # bootstrap it queued (the target's main thread holds the GIL in a
        # long regular expression, so the bootstrap waits with it).
        target = subprocess.Popen([PYTHON, "-c", "import re\nprint('ready', flush=True)\n"
                                   "re.match(r'(a+)+$', 'a' * 64 + 'b')\n"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        self.addCleanup(self._kill, target)
        self.assertEqual(target.stdout.readline().strip(), b"ready")
        pmt = subprocess.Popen([BIN, "trace", str(target.pid), "status"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=self.env)
        self.addCleanup(self._kill, pmt)
        wait_until(lambda: inject_dirs(pmt.pid), 60, "pmt-top's inject directory")
        real = inject_dirs(pmt.pid)[0]
        pmt.kill()
        pmt.wait()
        # gdb runs on without it until it has queued the call and let go.
        wait_until(lambda: tracer_pid(target.pid) == 0, 60, "gdb to let go of the target")
        self.addCleanup(lambda: os.path.isdir("/tmp/" + real) and shutil.rmtree("/tmp/" + real))
        self.assertTrue(os.path.isdir("/tmp/" + real))

        ns, gone = pidns(), dead_pid()
        canary_dir = os.path.join(self.tmpdir, "canary")
        os.mkdir(canary_dir)
        with open(os.path.join(canary_dir, "keep"), "w") as f:
            f.write("keep\n")
        made = "pmt-top-inject-%d-%d-1-%016x" % (gone, ns, 1)
        stale = self.make_tmp(made, "dir", target=canary_dir)            # ours, creator dead: goes
        other_uid = self.make_tmp("pmt-top-inject-%d-%d-1-%016x" % (gone, ns, 2), "dir", uid=65534)
        link = self.make_tmp("pmt-top-inject-%d-%d-1-%016x" % (gone, ns, 3), "link", target=canary_dir)
        wrong_mode = self.make_tmp("pmt-top-inject-%d-%d-1-%016x" % (gone, ns, 4), "dir", mode=0o755)
        live = self.make_tmp("pmt-top-inject-%d-%d-1-%016x" % (os.getpid(), ns, 5), "dir")
        other_ns = self.make_tmp("pmt-top-inject-%d-%d-1-%016x" % (gone, ns + 1, 6), "dir")

        # The next start sweeps (any command that may attach; this one finds no process).
        r = self.pmt("trace", str(dead_pid()), "status")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertFalse(os.path.lexists("/tmp/" + real), "the killed pmt-top's directory is still there")
        self.assertFalse(os.path.lexists(stale))
        for kept in (other_uid, wrong_mode, live, other_ns):
            self.assertTrue(os.path.isdir(kept) and not os.path.islink(kept), kept)
            self.assertTrue(os.path.exists(os.path.join(kept, "bootstrap.py")), kept)
        self.assertTrue(os.path.islink(link))
        self.assertEqual(os.readlink(link), canary_dir)
        self.assertEqual(sorted(os.listdir(canary_dir)), ["keep"])
        self.assertTrue(alive(target.pid))

    def test_a_demo_log_left_by_a_killed_pmt_top_goes_at_the_next_demo(self):
        tmp = os.path.join(self.tmpdir, "tmp")
        os.mkdir(tmp, 0o700)
        ns = pidns()
        stale = os.path.join(tmp, "pmt-top-demo-%d-%d-abc123.log" % (dead_pid(), ns))
        live = os.path.join(tmp, "pmt-top-demo-%d-%d-abc124.log" % (os.getpid(), ns))
        for path in (stale, live):
            with open(path, "w") as f:
                f.write("output\n")
            os.chmod(path, 0o600)
        self.open_terminal(120, 40, env={"PMT_TOP_RUNTIME_DIR": self.rundir, "TMPDIR": tmp})
        self.run_pmt("demo")
        s = self.wait_for(lambda s: re.search(r"PID (\d+)  \S*python3?\S* \S*workload\.py", s),
                          timeout=30, what="the demo workload")
        self.kill_pid_later(int(re.search(r"PID (\d+)", s).group(1)))
        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.exists(live))
        self.quit_cleanly()
        # Its own log went with it.
        self.assertEqual(sorted(os.listdir(tmp)), [os.path.basename(live)])


if __name__ == "__main__":
    unittest.main()
