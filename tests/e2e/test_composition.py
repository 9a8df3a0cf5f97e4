"""End-to-end: what the RSS of a real Python process is made of.

A target grows one kind of memory at a time (mem_target.py): native blocks
from ctypes, lxml documents (Debian's python3-lxml), a cache of small Python
objects, a fragmented heap. `pmt-top rss PID --json` must put each growth in
its part, the parts must add up to the RSS that /proc gives at the same time
(within 2 %), `pmt-top trim PID` must lower the RSS of the fragmented heap,
and the Overview must show the same in a real terminal, with R asking first.
"""
import json
import os
import re
import signal
import subprocess
import time
import unittest

from tui import BIN, PYTHON, TuiTestCase, alive, vmrss

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mem_target.py")
MIB = 1024 * 1024


class Composition(TuiTestCase):

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir)

    def start_target(self):
        p = subprocess.Popen([PYTHON, TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=self.env, text=True)
        self.addCleanup(self._kill, p)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        return p

    def ask(self, p, command):
        p.stdin.write(command + "\n")
        p.stdin.flush()
        self.assertEqual(p.stdout.readline().strip(), "done")
        return time.time()

    def pmt(self, *args):
        return subprocess.run([BIN] + [str(a) for a in args], env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=90)

    def rss(self, p, after=0.0):
        """The composition, with allocator figures taken after AFTER (the
        agent takes them again at most every 2 s: ask until they are)."""
        while True:
            r = self.pmt("rss", p.pid, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            got = json.loads(r.stdout)
            if got["allocators_time"] is not None and got["allocators_time"] > after:
                got["parts"] = {x["name"]: x["bytes"] for x in got["parts"]}
                return got
            time.sleep(0.5)

    def growth(self, before, after):
        return {k: after["parts"][k] - before["parts"].get(k, 0) for k in after["parts"]}

    def test_native_leak_is_native_heap(self):
        p = self.start_target()
        before = self.rss(p)
        done = self.ask(p, "native 64")
        after = self.rss(p, done)
        g = self.growth(before, after)
        self.assertLess(abs(g["native heap"] - 64 * MIB), 0.1 * 64 * MIB, g)
        self.assertLess(abs(g["Python objects"]), 2 * MIB, g)
        # The parts add up to the RSS of the smaps read, which /proc's VmRSS
        # read just after matches within 2 %.
        self.assertEqual(sum(after["parts"].values()), after["rss"])
        now = vmrss(p.pid)
        self.assertLess(abs(after["rss"] - now), 0.02 * now, (after["rss"], now))

    def test_lxml_documents_are_native_heap(self):
        try:
            subprocess.run([PYTHON, "-c", "import lxml.etree"], check=True)
        except subprocess.CalledProcessError:
            self.fail("python3-lxml is missing: ./pmt.sh test installs it")
        p = self.start_target()
        before = self.rss(p)
        done = self.ask(p, "lxml 300")
        after = self.rss(p, done)
        g = self.growth(before, after)
        grew = after["rss"] - before["rss"]
        self.assertGreater(grew, 20 * MIB, g)
        # lxml's first use maps its library: files, not heap.
        heap_growth = grew - g["mapped files"]
        self.assertGreater(g["native heap"], 0.8 * heap_growth, g)
        self.assertLess(g["Python objects"], 0.1 * heap_growth, g)

    def answer(self, p, command):
        p.stdin.write(command + "\n")
        p.stdin.flush()
        out = p.stdout.readline().strip()
        self.assertEqual(p.stdout.readline().strip(), "done")
        return out

    def native_row(self, warmup, command, marker):
        """Runs COMMAND in the target under `pmt-top profile --json` (after
        WARMUP, before the profiler): the native group of the line marked
        MARKER, the groups, and what malloc handed out meanwhile."""
        p = self.start_target()
        self.ask(p, warmup)                 # the application has run before we look
        pmt = subprocess.Popen([BIN, "profile", str(p.pid), "--duration", "120", "--key", "lineno",
                                "--limit", "50", "--json"], env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self._kill, pmt)
        while self.answer(p, "profiling") != "native":
            self.assertIsNone(pmt.poll(), pmt.stderr.read() if pmt.poll() is not None else "")
            time.sleep(0.2)
        used0 = int(self.answer(p, "used"))
        self.ask(p, command)
        kept = int(self.answer(p, "used")) - used0
        pmt.send_signal(signal.SIGINT)
        out, err = pmt.communicate(timeout=60)
        self.assertEqual(pmt.returncode, 0, err)
        groups = json.loads(out)["groups"]
        with open(TARGET) as f:
            line = next(n for n, text in enumerate(f, 1) if text.rstrip().endswith("# " + marker))
        mine = [g for g in groups if g.get("native") and g["frames"][0] == [TARGET, line]]
        self.assertEqual(len(mine), 1, groups[:3])
        return mine[0], groups, kept

    def test_lxml_native_rows_name_the_line(self):
        mine, groups, kept = self.native_row("lxml 1", "lxml 300", "LXML")
        # What malloc handed out for the documents, against the estimate of
        # what libxml2 asked for: malloc's own headers are the difference.
        self.assertLess(abs(mine["size"] - kept), 0.10 * kept, (mine["size"], kept))
        self.assertEqual(groups[0], mine)           # it is the top row

    def test_ctypes_malloc_rows_name_the_line(self):
        # libc.malloc through ctypes, its function pointer made at import.
        mine, groups, kept = self.native_row("native 1", "native 48", "CTYPES")
        self.assertLess(abs(mine["size"] - 48 * MIB), 0.10 * 48 * MIB, (mine["size"], kept))
        self.assertEqual(groups[0], mine)

    def test_no_native_leaves_the_libraries_alone(self):
        p = self.start_target()
        self.ask(p, "lxml 1")
        pmt = subprocess.Popen([BIN, "profile", str(p.pid), "--duration", "120", "--key", "lineno",
                                "--json", "--no-native"], env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self._kill, pmt)
        while True:             # the profiler runs, without its native hooks
            prof = self.answer(p, "profiling")
            self.assertIn(prof, ("no", "python"))
            if prof == "python":
                break
            self.assertIsNone(pmt.poll())
            time.sleep(0.2)
        self.ask(p, "lxml 50")
        pmt.send_signal(signal.SIGINT)
        out, err = pmt.communicate(timeout=60)
        self.assertEqual(pmt.returncode, 0, err)
        reply = json.loads(out)
        self.assertFalse(reply["profile"]["native"]["on"])
        self.assertEqual([g for g in reply["groups"] if g.get("native")], [])

    def test_top_and_functions_show_native_rows(self):
        p = self.start_target()
        self.ask(p, "lxml 1")
        self.open_terminal(width=200, env=self.env)     # the whole path of the target
        self.run_pmt(str(p.pid))
        self.wait_for(lambda s: "agent Python" in s, timeout=30, what="the agent connection")
        self.go_to_view("Top")
        self.wait_for(lambda s: "source sampled" in s, timeout=30, what="the sampled source")
        while self.answer(p, "profiling") != "native":
            time.sleep(0.2)
        self.ask(p, "lxml 200")
        with open(TARGET) as f:
            line = next(n for n, text in enumerate(f, 1) if text.rstrip().endswith("# LXML"))
        needle = "mem_target.py:%d [native]" % line

        def first_row(s, header):
            lines = s.splitlines()
            at = [i for i, l in enumerate(lines) if header in l]
            return lines[at[0] + 1] if at and at[0] + 1 < len(lines) else ""

        self.wait_for(lambda s: needle in first_row(s, "LOCATION"), timeout=20,
                      what="the lxml line's native row first in Top")
        self.go_to_view("Functions")
        s = self.wait_for(lambda s: re.search(r"handle_lxml \[native\]  \S*mem_target\.py:%d" % line,
                                              first_row(s, "FUNCTION (file:line)")),
                          timeout=20, what="handle_lxml's native row first in Functions")
        self.assertRegex(s, r"native rows on \(\d+ GOT entries\)")
        self.keys("q")

    def test_python_cache_is_python_objects(self):
        p = self.start_target()
        before = self.rss(p)
        done = self.ask(p, "python 40")
        after = self.rss(p, done)
        g = self.growth(before, after)
        grew = after["rss"] - before["rss"]
        self.assertGreater(grew, 30 * MIB, g)
        self.assertGreater(g["Python objects"], 0.8 * grew, g)
        # The dict's own table (over 512 B) is malloc's: without tracing it
        # counts as native, and it is small beside the objects.
        self.assertLess(g["native heap"], 0.15 * grew, g)

    def test_fragmentation_then_trim(self):
        p = self.start_target()
        before = self.rss(p)
        done = self.ask(p, "frag 80")
        after = self.rss(p, done)
        g = self.growth(before, after)
        self.assertGreater(g["malloc free"], 0.8 * 80 * MIB * 15 / 16, g)
        r = self.pmt("trim", p.pid, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        t = json.loads(r.stdout)
        self.assertTrue(t["returned"], t)
        # Most of the free heap goes back to the system.
        self.assertGreater(t["rss_before"] - t["rss_after"], 0.5 * g["malloc free"], t)
        self.assertTrue(alive(p.pid))
        r = self.pmt("trim", p.pid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^pid %d: RSS .* -> .*; malloc free .* -> .*; malloc_trim took \d+ ms\n$"
                         % p.pid)

    def test_snapshots_carry_it_and_diff_says_which_kind(self):
        p = self.start_target()
        old = os.path.join(self.tmpdir, "old.json")
        new = os.path.join(self.tmpdir, "new.json")
        # Tracing on before either snapshot: both measure the same way.
        r = self.pmt("trace", p.pid, "start")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.pmt("snapshot", p.pid, "-o", old)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.ask(p, "native 48")
        r = self.pmt("snapshot", p.pid, "-o", new)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(new) as f:
            saved = json.load(f)
        self.assertGreater(saved["rss_native"], 48 * MIB, saved.get("rss"))
        self.assertEqual(saved["rss"], sum(v for k, v in saved.items() if k.startswith("rss_")))
        r = self.pmt("diff", old, new)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The kind of growth comes before the lines: native, and how the
        # Python objects changed (next to nothing).
        m = re.search(r"^RSS \+(\S+) MiB: native heap \+(\S+) MiB, .*Python objects ([-+]\S+) (\S+)",
                      r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        self.assertLess(abs(float(m.group(2)) - 48), 4.8, m.group(0))
        self.assertIn(m.group(4), ("B", "KiB"), m.group(0))
        r = self.pmt("diff", old, new, "--json")
        d = json.loads(r.stdout)
        grew = d["new"]["rss_native"] - d["old"]["rss_native"]
        self.assertLess(abs(grew - 48 * MIB), 0.1 * 48 * MIB, d["new"])
        self.pmt("trace", p.pid, "stop")

    def test_snapshots_view_says_which_kind(self):
        p = self.start_target()
        self.open_terminal(env=self.env)
        self.run_pmt(str(p.pid))
        self.keys("c")
        native = lambda s: re.search(r"native heap +(\d[\d.]*) MiB", s)
        s = self.wait_for(lambda s: native(s) and "profiler sampled" in s, timeout=60,
                          what="the composition table and the profiler")
        before = float(native(s).group(1))
        self.keys("s")
        self.wait_for(lambda s: "snapshot 1:" in s, timeout=15, what="snapshot 1")
        self.ask(p, "native 48")
        # The snapshot takes the composition on screen: once it shows the growth.
        self.wait_for(lambda s: native(s) and float(native(s).group(1)) > before + 40, timeout=30,
                      what="the native growth in the table")
        self.keys("s")
        self.wait_for(lambda s: "snapshot 2:" in s, timeout=15, what="snapshot 2")
        self.go_to_view("Snapshots")
        self.wait_for(lambda s: "2 snapshots" in s, what="the list")
        self.keys("Home", "b", "Down", "Enter")
        # The second snapshot's record of the RSS comes with the next smaps read.
        s = self.wait_for(lambda s: "SIZE DIFF" in s and re.search(r"^RSS [-+]", s, re.M), timeout=20,
                          what="the diff with the kind of growth")
        m = re.search(r"RSS \+(\S+) MiB: native heap \+(\S+) MiB", s)
        self.assertIsNotNone(m, s)
        self.assertLess(abs(float(m.group(2)) - 48), 4.8, m.group(0))
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, timeout=30, what="pmt-top to quit")

    def test_under_jemalloc_it_says_so(self):
        lib = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
        self.assertTrue(os.path.exists(lib), "libjemalloc2 is missing: ./pmt.sh test installs it")
        p = subprocess.Popen([PYTHON, TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=dict(self.env, LD_PRELOAD=lib), text=True)
        self.addCleanup(self._kill, p)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        r = self.pmt("rss", p.pid, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout)
        names = [x["name"] for x in got["parts"]]
        # No glibc figures: nothing is shown as a native heap of 0.
        self.assertNotIn("native heap", names)
        self.assertNotIn("malloc free", names)
        self.assertIn("Python objects", names)   # pymalloc's own figures still hold
        self.assertIn("malloc is not glibc's: jemalloc (%s) replaces it" % lib, got["missing"])
        r = self.pmt("trim", p.pid)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "pmt-top: pid %d: trim failed: cannot trim: malloc is not glibc's: "
                         "jemalloc (%s) replaces it (unavailable)\n" % (p.pid, lib))
        self.assertTrue(alive(p.pid))

    def test_without_agent(self):
        p = self.start_target()
        r = self.pmt("rss", p.pid, "--no-inject")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("malloc heaps", r.stdout)
        self.assertIn("other anonymous", r.stdout)
        self.assertIn("not shown: Python and native parts: need the agent", r.stdout)
        # Nothing was loaded.
        with open("/proc/%d/maps" % p.pid) as f:
            self.assertNotIn("_pmt_", f.read())

    def test_bad_input(self):
        r = self.pmt("rss")
        self.assertEqual((r.returncode, r.stderr), (2, "pmt-top: which process? give a PID (see pmt-top --help)\n"))
        r = self.pmt("trim", 99999999)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        r = self.pmt("rss", 1, "--top", "3")
        self.assertEqual((r.returncode, r.stderr),
                         (2, "pmt-top: --top does not apply here (see pmt-top --help)\n"))

    def test_overview_shows_it_and_trim_asks_first(self):
        p = self.start_target()
        self.ask(p, "frag 40")
        self.open_terminal(env=self.env)
        self.run_pmt(str(p.pid))
        s = self.wait_for(lambda s: re.search(r"malloc free \d", s), timeout=60,
                          what="the composition's legend")
        self.assertRegex(s, r"made of [PsNft]+")
        self.assertRegex(s, r"made of .* \d+s ago")
        self.keys("c")
        s = self.wait_for(lambda s: "where the number comes from" in s)
        for part in ("Python objects", "Python slack", "native heap", "malloc free", "thread stacks",
                     "mapped files", "unexplained"):
            self.assertIn(part, s)
        self.assertIn("glibc: free, not given back", s)
        self.assertRegex(s, r"smaps read \d+s ago, the parts' sum")     # its age, always
        self.keys("R")
        self.wait_for(lambda s: "(malloc_trim)? y/n" in s)
        self.keys("n")
        self.wait_for(lambda s: "trim: not done" in s)
        rss = vmrss(p.pid)
        self.keys("R")
        self.wait_for(lambda s: "(malloc_trim)? y/n" in s)
        self.keys("y")
        s = self.wait_for(lambda s: re.search(r"trim: RSS \S+ \S+ -> \S+ \S+ \(-", s), timeout=30,
                          what="the trim's outcome")
        self.assertLess(vmrss(p.pid), rss - 20 * MIB)
        # k: the parts stacked over time in the graph's place, each cell its
        # part's letter; the fragmented heap's free memory is there.
        self.keys("k")

        def stacked(s):
            cells = [line.split("\u2502", 1)[1] for line in s.splitlines() if "\u2502" in line]
            return "where the number comes from" not in s and any("f" in c for c in cells) and \
                any("N" in c for c in cells)
        self.wait_for(stacked, timeout=15, what="the stacked parts")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, timeout=30, what="pmt-top to quit")
        self.assertTrue(alive(p.pid))


if __name__ == "__main__":
    unittest.main()
