"""End-to-end: `pmt-top profile PID` against a real Python process that never
imported the agent: the sampled profiler finds the function that keeps memory
(and how much), sees that the churning one keeps nothing, prints a table or the
agent's JSON, and leaves the target as it found it; bad options fail at once
with exit status 2; without the profiler it says so and uses tracemalloc.
"""
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import unittest

from tui import BIN, PYTHON, TuiTestCase, alive, parse_size

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profile_target.py")
MIB = 1024 * 1024
KEEP_CALLS = 6


class ProfileHeadless(TuiTestCase):

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir)

    def start_target(self, **env):
        p = subprocess.Popen([PYTHON, TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=dict(self.env, KEEP_CALLS=str(KEEP_CALLS), **env), text=True)
        self.addCleanup(self._kill, p)
        self.lines = queue.Queue()
        self.assertTrue(p.stdout.readline().startswith("ready"))
        threading.Thread(target=lambda: [self.lines.put(l.strip()) for l in p.stdout],
                         daemon=True).start()
        return p

    def line(self, prefix, timeout=30):
        while True:
            got = self.lines.get(timeout=timeout)
            if got.startswith(prefix):
                return got

    def state(self, p):
        p.stdin.write("state\n")
        p.stdin.flush()
        return self.line("profiler=")

    def pmt(self, *args, timeout=90):
        return subprocess.run([BIN] + [str(a) for a in args], env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)

    def test_json_by_function(self):
        p = self.start_target()
        r = self.pmt("profile", p.pid, "--duration", "2", "--key", "function", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.line("kept"), "kept %d" % KEEP_CALLS)
        res = json.loads(r.stdout)
        self.assertEqual(res["source"], "sampled")
        self.assertEqual(res["sort"], "own")
        rows = res["rows"]
        self.assertGreater(len(rows), 0)
        top = rows[0]
        self.assertEqual(top["function"], "keeper", rows[:3])
        self.assertEqual(top["file"], TARGET)
        want = KEEP_CALLS * 4 * MIB
        self.assertLessEqual(abs(top["own_size"] - want), 0.25 * want, top)
        self.assertEqual(top, max(rows, key=lambda r: r["own_size"]))
        churn = [r for r in rows if r["function"].startswith("churn")]
        self.assertTrue(churn, rows)
        for row in churn:
            self.assertLess(row["own_size"], 512 * 1024, row)
            self.assertGreater(row["alloc_rate"], 0, row)
        # Nothing left running in the target, which lives on.
        self.assertEqual(self.state(p), "profiler=off tracemalloc=off")
        self.assertTrue(alive(p.pid))
        self.assertEqual(r.stderr, "")

    def test_text_table(self):
        p = self.start_target()
        r = self.pmt("profile", p.pid, "--duration", "2", "--limit", "5", "--calls")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.splitlines()
        self.assertRegex(out[0], r"^sampled profiler in pid %d: 1 sample per 4 KiB, for \d" % p.pid)
        self.assertEqual(out[1].split(), ["OWN", "TOTAL", "RATE/s", "CALLS", "RET/CALL", "LARGEST",
                                          "FUNCTION"])
        rows = out[2:]
        self.assertLessEqual(len(rows), 5)
        m = re.match(r"\s*(\S+ \S+)\s+(\S+ \S+)\s+(\S+ \S+)\s+(\d+)\s+(\S+ \S+)\s+(\S+ \S+)\s+keeper  (\S+):(\d+)$",
                     rows[0])
        self.assertTrue(m, "\n".join(out))
        want = KEEP_CALLS * 4 * MIB
        self.assertLessEqual(abs(parse_size(m.group(1)) - want), 0.25 * want, rows[0])
        self.assertEqual(int(m.group(4)), KEEP_CALLS)  # calls counted while it ran
        self.assertLessEqual(abs(parse_size(m.group(5)) - 4 * MIB), MIB, rows[0])
        self.assertEqual(m.group(7), TARGET)
        with open(TARGET) as f:
            self.assertIn("# KEEP", f.read().splitlines()[int(m.group(8)) - 1])
        self.assertEqual(self.state(p), "profiler=off tracemalloc=off")

    def test_by_line(self):
        p = self.start_target()
        r = self.pmt("profile", p.pid, "--duration", "2", "--key", "lineno", "--limit", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.splitlines()
        self.assertRegex(out[0], r"^sampled profiler in pid %d: 1 sample per 4 KiB, key lineno" % p.pid)
        self.assertEqual(out[1].split(), ["SIZE", "COUNT", "RATE/s", "LOCATION"])
        self.assertRegex(out[2], r"%s:\d+: kept\.append\(bytearray\(4 \* 1024 \* 1024\)\)  # KEEP$"
                         % re.escape(TARGET))

    def test_interrupt_ends_the_wait_and_still_prints(self):
        p = self.start_target()
        pmt = subprocess.Popen([BIN, "profile", str(p.pid), "--duration", "120", "--json"], env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self._kill, pmt)
        self.assertEqual(self.line("kept"), "kept %d" % KEEP_CALLS)  # the profiler runs
        t0 = time.monotonic()
        pmt.send_signal(signal.SIGINT)
        out, err = pmt.communicate(timeout=30)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(pmt.returncode, 0, err)
        self.assertEqual(json.loads(out)["rows"][0]["function"], "keeper")
        self.assertEqual(self.state(p), "profiler=off tracemalloc=off")

    def test_bad_key(self):
        p = self.start_target()
        r = self.pmt("profile", p.pid, "--key", "size", timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertIn("--key", r.stderr)
        self.assertIn('"size"', r.stderr)
        self.assertTrue(alive(p.pid))
        self.assertEqual(self.state(p), "profiler=off tracemalloc=off")
        # Nothing was loaded into it either.
        with open("/proc/%d/maps" % p.pid) as f:
            self.assertNotIn("_pmt_", f.read())

    def test_bad_interval_and_limit(self):
        for args, needle in ((["--interval", "0"], "--interval"), (["--limit", "x"], "--limit"),
                             (["--duration", "-1"], "--duration"), (["--top", "3"], "--top")):
            r = self.pmt("profile", "1", *args, timeout=10)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn(needle, r.stderr)

    def test_without_profiler_falls_back_to_tracemalloc(self):
        # The agent without its C extensions: no sampled profiler.
        p = self.start_target(PMT_AGENT_NO_NATIVE="1")
        r = self.pmt("profile", p.pid, "--duration", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        err = r.stderr.splitlines()
        self.assertEqual(len(err), 1, r.stderr)
        self.assertIn("no sampled profiler in pid %d" % p.pid, err[0])
        self.assertIn("tracemalloc is used instead", err[0])
        self.assertRegex(r.stdout.splitlines()[0], r"^tracemalloc in pid %d, key lineno" % p.pid)
        # tracemalloc was off: it is off again.
        self.assertEqual(self.state(p), "profiler=off tracemalloc=off")


if __name__ == "__main__":
    unittest.main()
