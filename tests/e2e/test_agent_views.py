"""End-to-end: the agent-backed views of the real binary, in a real terminal.

A real Python process allocates known amounts at known lines; what pmt-top
shows (Top view, headless snapshot, snapshot diff) must match what tracemalloc
reports inside that same process within 1 %.
"""
import json
import os
import re
import subprocess
import sys
import time
import unittest

from tui import BIN, PYTHON, SOURCE, TuiTestCase, parse_size

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alloc_target.py")
AGENT_DIR = os.path.join(SOURCE, "agent")


def line_of(marker):
    with open(TARGET) as f:
        for n, line in enumerate(f, 1):
            if marker in line:
                return n
    raise AssertionError(marker)


LINE_A, LINE_B = line_of("# ALLOC_A"), line_of("# ALLOC_B")


class AgentViews(TuiTestCase):

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir, PMT_AGENT_DIR=AGENT_DIR)

    def start_target(self, nframe=5):
        env = dict(self.env, PMT_NFRAME=str(nframe))
        p = subprocess.Popen([PYTHON, TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=env, text=True)
        self.addCleanup(self._kill, p)
        self.assertTrue(p.stdout.readline().startswith("ready"))
        return p

    def command(self, p, cmd):
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
        self.assertEqual(p.stdout.readline().strip(), "done")

    def own_stats(self, p):
        path = os.path.join(self.tmpdir, "stats.json")
        self.command(p, "stats " + path)
        with open(path) as f:
            return json.load(f)

    def open_pmt(self, pid):
        self.open_terminal(160, 45, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt(str(pid))
        self.wait_for(lambda s: "agent Python" in s, timeout=15, what="the agent connection")

    def assert_close(self, shown, real, what):
        self.assertLessEqual(abs(shown - real), 0.01 * real,
                             "%s: pmt-top shows %.0f, tracemalloc says %.0f" % (what, shown, real))

    def test_overview_traced_heap_follows_pushes(self):
        """The traced-heap series comes from the agent's status pushes: the
        legend shows tracemalloc's current size, and it goes away when
        tracing stops (a gap), not after a staleness guess."""
        p = self.start_target()
        self.command(p, "grow_a")
        self.command(p, "grow_b")
        traced = self.own_stats(p)["traced"]
        self.open_pmt(p.pid)

        def legend(screen):
            m = re.search(r"traced heap\s+(\d[\d.]* (?:B|KiB|MiB|GiB))", screen)
            return parse_size(m.group(1)) if m else None

        shown = self.wait_for(legend, timeout=15, what="the traced heap in the legend")
        self.assertLessEqual(abs(legend(self.screen()) - traced), 0.02 * traced,
                             "legend %s vs tracemalloc %d" % (legend(self.screen()), traced))
        self.assertTrue(shown)
        self.keys("T")  # tracing off
        self.wait_for(lambda s: "tracemalloc off" in s and legend(s) is None, timeout=15,
                      what="the heap series to end when tracing stops")

    def test_top_view_matches_tracemalloc_for_each_key(self):
        p = self.start_target()
        self.command(p, "grow_a")
        self.command(p, "grow_b")
        own = self.own_stats(p)
        self.open_pmt(p.pid)
        self.go_to_view("Top")

        def row_for(screen, needle):
            for line in screen.splitlines():
                if needle in line:
                    m = re.match(r"\s*(\d[\d.]* (?:B|KiB|MiB|GiB))\s+(\d+k?)\s", line)
                    if m:
                        return parse_size(m.group(1)), line
            return None, None

        def own_size(key, pred):
            return sum(s["size"] for s in own[key] if pred(s))

        # lineno: the two lines, each within 1 %.
        for line_no in (LINE_A, LINE_B):
            needle = "alloc_target.py:%d" % line_no
            s = self.wait_for(lambda s: row_for(s, needle)[0], timeout=15, what=needle)
            shown, _ = row_for(s, needle)
            real = own_size("lineno", lambda st: st["frames"][0] == [TARGET, line_no])
            self.assert_close(shown, real, needle)

        # filename: the whole file.
        self.keys("g")
        s = self.wait_for(lambda s: "group by filename" in s and row_for(s, "alloc_target.py")[0],
                          timeout=15, what="the filename grouping")
        shown, _ = row_for(s, "alloc_target.py")
        real = own_size("filename", lambda st: st["frames"][0][0] == TARGET)
        self.assert_close(shown, real, "filename")

        # traceback: the 30 MiB block's traceback (most recent frame ALLOC_B).
        self.keys("g")
        needle = "alloc_target.py:%d +" % LINE_B
        s = self.wait_for(lambda s: "group by traceback" in s and row_for(s, needle)[0],
                          timeout=15, what="the traceback grouping")
        shown, _ = row_for(s, needle)
        real = own_size("traceback", lambda st: st["frames"][0] == [TARGET, LINE_B])
        self.assert_close(shown, real, "traceback")

        # Enter shows the traceback: grow_b called from main.
        self.keys("Enter")
        s = self.wait_for(lambda s: "tracebacks of" in s, what="the traceback panel")
        self.assertIn('kept.append(b"x" * (30 * 1024 * 1024))', s)
        self.keys("Escape", "q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")

    def test_filter_with_bad_and_good_regex(self):
        p = self.start_target()
        self.command(p, "grow_a")
        self.open_pmt(p.pid)
        self.go_to_view("Top")
        self.wait_for(lambda s: "alloc_target.py:%d" % LINE_A in s, timeout=15, what="the Top rows")
        self.keys("/")
        self.type("alloc_target.py:(%d" % LINE_A)
        self.wait_for(lambda s: "bad filter: missing closing parenthesis" in s, what="the PCRE2 error")
        self.keys("/")
        self.tmux("send-keys", "-t", "main", "C-u")
        self.type(r"target\.py:%d$" % LINE_A)
        def top_rows(s):
            return [l for l in s.splitlines() if re.match(r"\s*\d[\d.]* (B|KiB|MiB)\s+\d", l)]
        # Only the filtered row once the filter shows: the other rows go.
        s = self.wait_for(lambda s: re.search(r"filter target\\.py:%d\$" % LINE_A, s) and len(top_rows(s)) == 1,
                          what="the filter with one row")
        rows = top_rows(s)
        self.assertIn("alloc_target.py:%d" % LINE_A, rows[0])
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")

    def test_snapshot_diff_shows_the_allocating_line_first(self):
        p = self.start_target()
        self.open_pmt(p.pid)
        self.keys("s")
        self.wait_for(lambda s: "snapshot 1:" in s, timeout=15, what="snapshot 1")
        self.command(p, "grow_b")
        self.keys("s")
        self.wait_for(lambda s: "snapshot 2:" in s, timeout=15, what="snapshot 2")
        # Markers on the overview's time axis, numbered.
        self.wait_for(lambda s: re.search(r"▲\d|\d▲", s), what="snapshot markers")
        self.go_to_view("Snapshots")
        self.wait_for(lambda s: "2 snapshots" in s, what="the list")
        self.keys("Home", "b", "Down", "Enter")
        s = self.wait_for(lambda s: "SIZE DIFF" in s and diff_rows(s), what="the diff")
        rows = diff_rows(s)
        self.assertTrue(rows, s)
        self.assertIn("alloc_target.py:%d" % LINE_B, rows[0])
        m = re.match(r"\s*\+(\d[\d.]* \w+)", rows[0])
        self.assert_close(parse_size(m.group(1)), 30 * 1024 * 1024 + 33, "size diff")
        # Save it, then the headless diff of two saved files agrees.
        path = os.path.join(self.tmpdir, "two.json")
        self.keys("Escape")
        self.wait_for(lambda s: "2 snapshots" in s, what="the list again")
        self.keys("w")  # the selection is still snapshot 2
        self.wait_for(lambda s: "write to file:" in s, what="the file prompt")
        self.tmux("send-keys", "-t", "main", "C-u")
        self.type(path)
        self.wait_for(lambda s: "written to" in s, what="the save")
        self.assertTrue(os.path.exists(path))
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")


def diff_rows(screen):
    """The rows of a diff table on screen (a capture can fall between the header and the rows)."""
    return [l for l in screen.splitlines() if re.match(r"\s*[+-]\d", l)]


class StaleSockets(unittest.TestCase):
    """An agent killed by a signal leaves its socket; the next one sweeps it."""

    def test_dead_agents_sockets_are_removed(self):
        import socket
        import tempfile
        tmp = tempfile.mkdtemp(prefix="pmt-e2e-")
        os.chmod(tmp, 0o700)
        self.addCleanup(subprocess.call, ["rm", "-rf", tmp])
        env = dict(os.environ, PMT_TOP_RUNTIME_DIR=tmp, PMT_AGENT_DIR=AGENT_DIR)
        # A real agent, killed with SIGKILL: its socket stays behind.
        p = subprocess.Popen([PYTHON, TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        self.assertTrue(p.stdout.readline().startswith("ready"))
        dead = os.path.join(tmp, "%d.sock" % p.pid)
        self.assertTrue(os.path.exists(dead))
        p.kill()
        p.wait()
        p.stdin.close()
        p.stdout.close()
        self.assertTrue(os.path.exists(dead))
        # A socket of a live process that is not an agent of ours is kept.
        live = os.path.join(tmp, "%d.sock" % os.getpid())
        s = socket.socket(socket.AF_UNIX)
        s.bind(live)
        self.addCleanup(s.close)
        q = subprocess.Popen([PYTHON, TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        self.addCleanup(lambda: (q.kill(), q.wait(), q.stdin.close(), q.stdout.close()))
        self.assertTrue(q.stdout.readline().startswith("ready"))
        self.assertFalse(os.path.exists(dead), "the dead agent's socket was not swept")
        self.assertTrue(os.path.exists(live))
        self.assertTrue(os.path.exists(os.path.join(tmp, "%d.sock" % q.pid)))


class LoadedSnapshots(TuiTestCase):
    """`pmt-top --load A B` without a process: list, diff, overview note."""

    def test_load_and_diff_saved_files(self):
        data = os.path.join(SOURCE, "tests", "data", "snapshots")
        old, new = os.path.join(data, "lineno_old.json"), os.path.join(data, "lineno_new.json")
        self.open_terminal(140, 30)
        self.run_pmt("--load", old, new)
        self.wait_for(lambda s: "2 snapshots" in s and "before deploy" in s, what="the loaded list")
        self.keys("Home", "b", "Down", "Enter")
        s = self.wait_for(lambda s: "SIZE DIFF" in s and diff_rows(s), what="the diff")
        rows = diff_rows(s)
        self.assertIn("/srv/app/cache.py:41", rows[0])
        self.assertTrue(rows[0].lstrip().startswith("+10.0 MiB"), rows[0])
        self.go_to_view("Overview")
        self.wait_for(lambda s: "saved snapshots only" in s, what="the overview note")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")


class HeadlessSnapshot(unittest.TestCase):
    """`pmt-top snapshot PID --json` against tracemalloc in the same process."""

    def test_json_matches_tracemalloc(self):
        import tempfile
        tmp = tempfile.mkdtemp(prefix="pmt-e2e-")
        self.addCleanup(subprocess.call, ["rm", "-rf", tmp])
        env = dict(os.environ, PMT_TOP_RUNTIME_DIR=tmp, PMT_AGENT_DIR=AGENT_DIR, PMT_NFRAME="1")
        p = subprocess.Popen([PYTHON, TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=env, text=True)
        self.addCleanup(lambda: (p.kill(), p.wait(), p.stdin.close(), p.stdout.close()))
        self.assertTrue(p.stdout.readline().startswith("ready"))
        for cmd in ("grow_a", "grow_b"):
            p.stdin.write(cmd + "\n")
            p.stdin.flush()
            self.assertEqual(p.stdout.readline().strip(), "done")
        stats = os.path.join(tmp, "own.json")
        p.stdin.write("stats %s\n" % stats)
        p.stdin.flush()
        p.stdout.readline()
        with open(stats) as f:
            own = json.load(f)
        out = os.path.join(tmp, "snap.json")
        r = subprocess.run([BIN, "snapshot", str(p.pid), "--json", "--top", "10", "-o", out],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        shown = json.loads(r.stdout)
        for line_no in (LINE_A, LINE_B):
            real = [s["size"] for s in own["lineno"] if s["frames"][0] == [TARGET, line_no]][0]
            mine = [g["size"] for g in shown["groups"] if g["frames"][0] == [TARGET, line_no]][0]
            self.assertLessEqual(abs(mine - real), 0.01 * real)
        # A second full snapshot: nothing the agent allocated for the first one
        # (source lines, grouping) is reported as the application's memory.
        r = subprocess.run([BIN, "snapshot", str(p.pid), "--key", "traceback", "-o", out + "2"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out + "2") as f:
            full = json.load(f)
        self.assertGreater(len(full["groups"]), 10)
        for g in full["groups"]:
            top = g["frames"][0][0]
            self.assertNotIn("pmt_agent", top)
            self.assertFalse(top.endswith("linecache.py"), g)
        # The saved file loads back and diffs against itself to nothing.
        r = subprocess.run([BIN, "diff", out, out, "--json"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = json.loads(r.stdout)
        self.assertEqual(d["total_size_diff"], 0)
        self.assertEqual(d["nchanged"] + d["nnew"] + d["ngone"], 0)
        with open(out) as f:
            self.assertEqual(d["nsame"], len(json.load(f)["groups"]))

    def test_no_agent_and_no_inject_is_a_clear_error(self):
        p = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(30)"])
        self.addCleanup(lambda: (p.kill(), p.wait()))
        r = subprocess.run([BIN, "snapshot", str(p.pid), "--no-inject"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30,
                           env=dict(os.environ, PMT_TOP_RUNTIME_DIR="/tmp/pmt-none-%d" % os.getpid()))
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)


if __name__ == "__main__":
    unittest.main()
