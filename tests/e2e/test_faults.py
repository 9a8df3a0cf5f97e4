"""End-to-end faults that once went well and must stay so: pmt-top killed in the
middle of a large snapshot, and a target stopped with SIGSTOP.

Whatever moment a kill lands on, the same things must hold, so the kill
points are spread over the run and nothing depends on where one falls: the
target runs and answers, the file asked for is absent or a whole snapshot,
and a later pmt-top gets a full snapshot from the same agent.
"""
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from tui import BIN, PYTHON, TuiTestCase, alive

TARGET = r'''
import os, sys, threading, time, tracemalloc
tracemalloc.start(1)
exec("\n".join("def f%d(n): return [str(i) * 2 for i in range(n)]" % i for i in range(200)))
kept = [globals()["f%d" % i](2500) for i in range(200)]


def answer():
    for line in sys.stdin:
        print("pong %d" % len(kept), flush=True)


threading.Thread(target=answer, daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(0.01)
'''


class Faults(TuiTestCase):
    def setUp(self):
        super().setUp()
        self.rundir = os.path.join(self.tmpdir, "run")
        os.mkdir(self.rundir, 0o700)
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.rundir)
        self.outdir = os.path.join(self.tmpdir, "out")
        os.mkdir(self.outdir)

    def start_target(self):
        p = subprocess.Popen([PYTHON, "-c", TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env, text=True)
        self.addCleanup(self._kill, p)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        return p

    def pong(self, p):
        """The target answers on its own stdin within a generous bound."""
        p.stdin.write("ping\n")
        p.stdin.flush()
        got = []
        t = threading.Thread(target=lambda: got.append(p.stdout.readline().strip()), daemon=True)
        t.start()
        t.join(60)
        self.assertEqual(got, ["pong 200"])

    def pmt(self, *args, timeout=120):
        return subprocess.run([BIN] + [str(a) for a in args], env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)

    def loads(self, path):
        r = self.pmt("diff", path, path)
        return r.returncode == 0

    def test_kill_9_during_a_snapshot_to_a_file(self):
        p = self.start_target()
        out = os.path.join(self.outdir, "s.json")
        # The first run injects the agent and writes a whole file.
        r = self.pmt("snapshot", p.pid, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        t0 = time.monotonic()
        self.assertEqual(self.pmt("snapshot", p.pid, "-o", out).returncode, 0)
        took = time.monotonic() - t0
        for i in range(6):
            q = subprocess.Popen([BIN, "snapshot", str(p.pid), "-o", out], env=self.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(took * i / 5)
            q.kill()
            q.wait()
            self.assertTrue(alive(p.pid))
            self.pong(p)
            if os.path.exists(out):
                self.assertTrue(self.loads(out), "a kill left a broken %s" % out)
        # Nothing but the file (a killed save's temporary goes at the next save).
        r = self.pmt("snapshot", p.pid, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(self.loads(out))
        left = [n for n in os.listdir(self.outdir) if n != "s.json"]
        for n in left:      # only a temporary whose writer may still be recent
            self.assertRegex(n, r"^\.s\.json\.pmt\d+-[0-9a-f]+$")
        self.assertEqual(p.poll(), None)
        self.assertNotIn("Traceback", self._stderr_so_far(p))

    def test_kill_9_of_the_tui_during_a_snapshot(self):
        p = self.start_target()
        self.assertEqual(self.pmt("snapshot", p.pid, "-o", os.path.join(self.outdir, "a.json")).returncode, 0)
        self.open_terminal(120, 30, env={"PMT_TOP_RUNTIME_DIR": self.rundir})
        self.run_pmt(str(p.pid))
        self.wait_for(lambda s: "agent Python" in s, timeout=60, what="the TUI connected")
        # Another client of the same agent: the agent line says so.
        other = socket.socket(socket.AF_UNIX)
        self.addCleanup(other.close)
        other.connect(os.path.join(self.rundir, "%d.sock" % p.pid))
        other.sendall(b'{"id": 1, "cmd": "hello", "args": {"protocol": 1}}\n'
                      b'{"id": 2, "cmd": "subscribe", "args": {"interval": 1}}\n')
        self.wait_for(lambda s: "| 2 clients of 32" in s, timeout=30, what="the second client")
        self.keys("s")
        pid = self.pmt_pid()
        os.kill(pid, signal.SIGKILL)
        self.wait_for(lambda s: "EXIT=" in s, timeout=30, what="the shell prompt")
        self.assertTrue(alive(p.pid))
        self.pong(p)
        out = os.path.join(self.outdir, "b.json")
        r = self.pmt("snapshot", p.pid, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(self.loads(out))

    def test_stopped_target_is_a_clear_error(self):
        p = self.start_target()
        self.assertEqual(self.pmt("snapshot", p.pid, "-o", os.path.join(self.outdir, "a.json")).returncode, 0)
        os.kill(p.pid, signal.SIGSTOP)
        try:
            r = self.pmt("snapshot", p.pid, "--top", "5", timeout=120)
        finally:
            os.kill(p.pid, signal.SIGCONT)
        self.assertNotEqual(r.returncode, 0)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(str(p.pid), lines[0])
        self.assertTrue(alive(p.pid))
        self.pong(p)
        self.assertEqual(self.pmt("snapshot", p.pid, "--top", "5").returncode, 0)

    def test_log_swapped_for_a_fifo_does_not_hang_the_view(self):
        log = os.path.join(self.outdir, "run.log")
        self.open_terminal(120, 30, env={"PMT_TOP_RUNTIME_DIR": self.rundir})
        self.run_pmt("run", "--log", log, "--", PYTHON, "-c",
                     "import time; print('hello from the child', flush=True); time.sleep(600)")
        self.wait_for(lambda s: "pmt-top" in s.splitlines()[0], timeout=30, what="the TUI")
        self.go_to_view("Output")
        self.wait_for(lambda s: "hello from the child" in s, timeout=30, what="the child's output")
        # The view opens the log again at every redraw: what is there now is a FIFO.
        os.unlink(log)
        os.mkfifo(log)
        self.wait_for(lambda s: "the log file cannot be read" in s, timeout=30, what="the refusal")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=" in s, timeout=60, what="quit")

    def _stderr_so_far(self, p):
        os.set_blocking(p.stderr.fileno(), False)
        try:
            return p.stderr.read() or ""
        except (BlockingIOError, TypeError):
            return ""

    @staticmethod
    def _kill(p):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            p.kill()
        p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            try:
                f.close()
            except Exception:
                pass


if __name__ == "__main__":
    unittest.main()
