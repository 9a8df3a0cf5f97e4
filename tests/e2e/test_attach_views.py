"""End-to-end: attaching to a running process that never imported the agent,
through the real binary (TUI and headless), and the Functions view (the sampled
profiler started on attach).
"""
import os
import re
import subprocess
import time
import unittest

from tui import BIN, PYTHON, SOURCE, TuiTestCase, alive

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alloc_target.py")
AGENT_DIR = os.path.join(SOURCE, "agent")

# A busy target with a function that keeps memory (the newest 400 blocks: it
# goes on allocating, so what the profiler sees from attach on is its), and
# one that churns.
WORKER = r"""
import sys, time
kept = []
def keeper():
    kept.append(bytearray(256 * 1024))
    del kept[:-400]
def churn():
    tmp = [str(i) * 10 for i in range(2000)]
    return len(tmp)
sys.stdout.write("ready\n"); sys.stdout.flush()
end = time.time() + 120
while time.time() < end:
    keeper()
    churn()
    time.sleep(0.01)
"""


class Attach(TuiTestCase):

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir)

    def start_worker(self):
        p = subprocess.Popen([PYTHON, "-c", WORKER], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             env=self.env, text=True)
        self.addCleanup(self._kill, p)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        return p

    def test_tui_attaches_then_functions_view_shows_the_keeper(self):
        p = self.start_worker()
        self.open_terminal(160, 40, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt(str(p.pid))
        # The RSS view is live at once; the agent arrives through injection.
        self.wait_for(lambda s: "RSS " in s, what="the RSS view")
        self.wait_for(lambda s: "agent Python" in s, timeout=20, what="the injected agent")
        self.go_to_view("Functions")

        def first_row(s):
            lines = s.splitlines()
            head = [i for i, l in enumerate(lines) if "FUNCTION (file:line)" in l]
            rows = [l for l in lines[head[0] + 1:] if re.match(r"\s*\d[\d.]* (B|KiB|MiB|GiB)\s", l)] if head else []
            return rows[0] if rows else ""

        # The profiler started on attach: keeper() holds the most, by OWN.
        s = self.wait_for(lambda s: re.search(r"\bkeeper\b", first_row(s)) and
                          re.match(r"\s*\d[\d.]* MiB", first_row(s)), timeout=20,
                          what="keeper() first in the function table")
        self.assertIn("sort own (o)", s)
        # Quitting stops the profiler pmt-top started; the target keeps running.
        self.keys("q")
        s = self.wait_for(lambda s: "EXIT=0" in s, what="quit")
        self.assertIn("stopped the sampled profiler in pid %d" % p.pid, s)
        self.assertTrue(alive(p.pid))

    def test_headless_snapshot_attaches_to_a_fresh_process(self):
        env = dict(self.env, PMT_NO_AGENT="1", PMT_NFRAME="1")
        p = subprocess.Popen([PYTHON, TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        self.addCleanup(self._kill, p)
        self.assertTrue(p.stdout.readline().startswith("ready"))
        p.stdin.write("grow_b\n")
        p.stdin.flush()
        self.assertEqual(p.stdout.readline().strip(), "done")
        # The main thread is blocked reading stdin: the pending call waits for
        # it, so use the direct method on the parked thread, once it is parked
        # (read(2) is syscall 0 on x86-64).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open("/proc/%d/task/%d/syscall" % (p.pid, p.pid)) as f:
                if f.read().startswith("0 "):
                    break
            time.sleep(0.05)
        t0 = time.monotonic()
        r = subprocess.run([BIN, "snapshot", str(p.pid), "--top", "3", "--inject-method", "direct"],
                           env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("alloc_target.py", r.stdout)
        self.assertLess(took, 10)
        # The target is unharmed: it still answers its commands and exits 0.
        p.stdin.write("exit\n")
        p.stdin.flush()
        self.assertEqual(p.wait(timeout=10), 0)

    def test_headless_refuses_a_non_python_process(self):
        s = subprocess.Popen(["sleep", "30"])
        self.addCleanup(lambda: (s.kill(), s.wait()))
        r = subprocess.run([BIN, "snapshot", str(s.pid)], env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 5)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertIn("not a Python process", r.stderr)


if __name__ == "__main__":
    unittest.main()
