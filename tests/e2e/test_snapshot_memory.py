"""End-to-end: what a big snapshot costs pmt-top itself.

A real Python target keeps one small object from each of 300,000 distinct
lines (a synthetic file, compiled in chunks whose line numbers are moved
apart), traced by tracemalloc. `pmt-top snapshot PID -o F` must take and
save it with a peak RSS of at most twice the size of F (the reply is read
from its text, not built into a cJSON tree); `pmt-top snapshot PID --top 20`
must ask the agent for its top groups only and stay small; `pmt-top diff F F`
must stay within twice the two files. Peaks are ru_maxrss of the pmt-top
process itself (time -f %M). No timing is asserted: the agent's side of a
300k-group snapshot takes seconds on a busy machine.
"""
import json
import os
import re
import subprocess
import unittest

from tui import BIN, PYTHON, SOURCE, TuiTestCase

AGENT_DIR = os.path.join(SOURCE, "agent")
TIME = "/usr/bin/time"
LINES = 300000

TARGET_CODE = r'''
import os
import sys
import tracemalloc

LINES = int(sys.argv[1])
CHUNK = 1000
tracemalloc.start(1)
sys.path.insert(0, os.environ["PMT_AGENT_DIR"])
import pmt_agent
pmt_agent.start()
keep = []
# One code object of CHUNK lines, run again with its lines moved: LINES
# distinct (file, line) pairs without compiling a 300k-line module.
chunk = compile("\n".join("keep.append([%d])" % i for i in range(CHUNK)), "<pmt-generated>", "exec")
scope = {"keep": keep}
for first in range(1, LINES + 1, CHUNK):
    exec(chunk.replace(co_firstlineno=first), scope)
print("ready %d" % os.getpid(), flush=True)
sys.stdin.read()
'''

MiB = 1024 * 1024


class SnapshotMemory(TuiTestCase):

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir, PMT_AGENT_DIR=AGENT_DIR)
        p = subprocess.Popen([PYTHON, "-c", TARGET_CODE, str(LINES)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=self.env, text=True)
        self.addCleanup(self._kill, p)
        line = p.stdout.readline()
        self.assertTrue(line.startswith("ready"), line)
        self.pid = p.pid

    def measured(self, *args):
        """Runs pmt-top under time(1); (exit code, stdout, stderr, peak RSS in bytes).

        Not os.wait4() of our own child: a child's ru_maxrss counts the
        memory of this test process it was forked (or vforked) from, which
        holds a 300k-group snapshot of its own.
        """
        if not os.access(TIME, os.X_OK):
            self.skipTest("%s is missing (apt-get install time)" % TIME)
        r = subprocess.run([TIME, "-f", "%M", BIN] + [str(a) for a in args], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
        err = r.stderr.splitlines()
        peak_kib = int(err.pop())
        return r.returncode, r.stdout, "".join(l + "\n" for l in err), peak_kib * 1024

    def test_big_snapshot_costs_pmt_top_little(self):
        path = os.path.join(self.tmpdir, "big.json")
        rc, _, err, peak = self.measured("snapshot", self.pid, "-o", path)
        self.assertEqual(rc, 0, err)
        size = os.path.getsize(path)
        with open(path) as f:
            snap = json.load(f)
        generated = [g for g in snap["groups"] if g["frames"][0][0] == "<pmt-generated>"]
        self.assertGreaterEqual(len(generated), LINES - 100)
        self.assertGreater(size, 15 * MiB)
        print("snapshot -o: peak %.1f MiB, file %.1f MiB, %d groups"
              % (peak / MiB, size / MiB, len(snap["groups"])))
        self.assertLessEqual(peak, 2 * size, "peak %.1f MiB for a file of %.1f MiB" % (peak / MiB, size / MiB))

        rc, out, err, peak = self.measured("snapshot", self.pid, "--top", 20)
        self.assertEqual(rc, 0, err)
        print("snapshot --top 20: peak %.1f MiB" % (peak / MiB))
        self.assertLess(peak, 40 * MiB)
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^snapshot of pid %d at " % self.pid)
        # The agent says how many groups it had before the cut.
        m = re.search(r"; (\d+) groups, 20 shown$", lines[1])
        self.assertIsNotNone(m, lines[1])
        self.assertGreaterEqual(int(m.group(1)), 299900)
        self.assertEqual(lines[2].split(), ["SIZE", "COUNT", "AVERAGE", "LOCATION"])
        self.assertEqual(len(lines), 3 + 20, out)

        rc, out, err, peak = self.measured("diff", path, path, "--top", 3)
        self.assertEqual(rc, 0, err)
        print("diff F F: peak %.1f MiB" % (peak / MiB))
        self.assertIn("%d same" % len(snap["groups"]), out)
        self.assertLessEqual(peak, 2 * (size + size))


if __name__ == "__main__":
    unittest.main()
