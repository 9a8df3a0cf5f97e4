"""End-to-end: the sampled profiler in the views of the real binary, in a real terminal.

A real Python process keeps 64 KiB more every 20 ms in one function
(leak_target.py: <module> -> main -> serve -> handle -> keeper). pmt-top
attaches and starts the profiler, and then:
- the Top view measures with it by default (the header says "sampled, 1 per
  4 KiB") and its first row is the leaking line;
- the Functions view's first row by OWN is keeper();
- the call tree starts at the entry points, Enter on <module> shows main(),
  Backspace goes back up;
- with --no-profile the Functions view says so in one line with how to get it
  (P), the Top view measures with tracemalloc, and P starts the profiler.
Every wait polls the screen against a deadline.
"""
import os
import re
import subprocess
import unittest

from tui import BIN, PYTHON, SOURCE, TuiTestCase, parse_size

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "leak_target.py")
AGENT_DIR = os.path.join(SOURCE, "agent")
BUILD = os.environ.get("PMT_TOP_BUILD") or os.path.join(os.path.dirname(BIN))
NATIVE_DIR = os.path.join(BUILD, "agent-native")
ROW = re.compile(r"^\s*(\d[\d.]* (?:B|KiB|MiB|GiB))\s")


def line_of(marker):
    with open(TARGET) as f:
        for n, line in enumerate(f, 1):
            if marker in line:
                return n
    raise AssertionError(marker)


LEAK_LINE = line_of("# LEAK")


def sampler_missing():
    """Why this Python cannot load the sampler extension, or None."""
    r = subprocess.run([PYTHON, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import _pmt_sampler",
                        NATIVE_DIR], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return None if r.returncode == 0 else (r.stdout.strip().splitlines() or ["?"])[-1]


WHY_NO_SAMPLER = sampler_missing()


def rows_after(screen, header):
    """The table rows (lines starting with a size) below the line containing header."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if header in line:
            return [l for l in lines[i + 1:] if ROW.match(l)]
    return []


@unittest.skipIf(WHY_NO_SAMPLER, "no sampler extension for %s: %s" % (PYTHON, WHY_NO_SAMPLER))
class ProfileViews(TuiTestCase):

    def setUp(self):
        super().setUp()
        os.chmod(self.tmpdir, 0o700)

    def start_target(self):
        env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir, PMT_AGENT_DIR=AGENT_DIR,
                   PMT_TOP_NATIVE_DIR=NATIVE_DIR)
        p = subprocess.Popen([PYTHON, TARGET], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             env=env, text=True)
        self.addCleanup(self._kill, p)
        self.assertTrue(p.stdout.readline().startswith("ready"))
        return p

    def open_pmt(self, *args):
        self.open_terminal(120, 40, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt(*args)
        self.wait_for(lambda s: "agent Python" in s, timeout=15, what="the agent connection")

    def quit(self):
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, timeout=15, what="quit")

    def test_top_measures_sampled_and_shows_the_leak_first(self):
        p = self.start_target()
        self.open_pmt(str(p.pid))
        self.go_to_view("Top")
        needle = "leak_target.py:%d" % LEAK_LINE

        def leak_first(s):
            rows = rows_after(s, "LOCATION")
            return "source sampled, 1 per 4 KiB (m)" in s and rows and needle in rows[0]

        s = self.wait_for(leak_first, timeout=20, what="the leaking line first, from the sampled source")
        size = parse_size(ROW.match(rows_after(s, "LOCATION")[0]).group(1))
        self.assertGreater(size, 256 * 1024, s)
        self.assertIn("kept.append(bytearray(64 * 1024))", rows_after(s, "LOCATION")[0])
        # m switches to tracemalloc, which is off here: the view says how to start it.
        self.keys("m")
        self.wait_for(lambda s: "source exact: tracemalloc (m)" in s and "tracemalloc is off" in s,
                      what="the exact source")
        self.keys("m")
        self.wait_for(leak_first, timeout=20, what="the sampled source again")
        self.quit()

    def test_functions_by_own_and_the_call_tree(self):
        p = self.start_target()
        self.open_pmt(str(p.pid))
        self.go_to_view("Functions")

        def keeper_first(s):
            rows = rows_after(s, "FUNCTION (file:line)")
            return "sort own (o)" in s and rows and re.search(r"\bkeeper  \S*leak_target\.py:%d" % LEAK_LINE,
                                                                rows[0])

        s = self.wait_for(keeper_first, timeout=20, what="keeper() first by OWN")
        self.assertGreater(parse_size(ROW.match(rows_after(s, "FUNCTION (file:line)")[0]).group(1)), 0)
        # Call counting is off: its columns say "-".
        self.assertRegex(rows_after(s, "FUNCTION (file:line)")[0], r"\s-\s+-\s+-\s+keeper")

        # The call tree: the entry points, then down into <module>.
        self.keys("v")
        s = self.wait_for(lambda s: "call tree: entry points" in s and
                          any("<module>" in r for r in rows_after(s, "ENTRY POINT")),
                          timeout=15, what="the entry points")
        index = next(i for i, r in enumerate(rows_after(s, "ENTRY POINT")) if "<module>" in r)
        self.keys("Home", *(["Down"] * index), "Enter")
        s = self.wait_for(lambda s: "call tree: <module> " in s and
                          any(re.search(r"\bmain  \S*leak_target\.py", r) for r in rows_after(s, "CALLEE")),
                          timeout=15, what="main() under <module>")
        self.keys("BSpace")
        self.wait_for(lambda s: "call tree: entry points" in s and rows_after(s, "ENTRY POINT"),
                      timeout=15, what="back at the entry points")
        self.quit()

    def test_without_the_profiler_the_views_say_how_to_get_it(self):
        p = self.start_target()
        self.open_pmt("--no-profile", str(p.pid))
        self.go_to_view("Functions")
        s = self.wait_for(lambda s: "sampled profiler off (--no-profile)" in s and "P starts" in s,
                          what="the one-line reason")
        self.assertNotIn("FUNCTION (file:line)", s)
        self.go_to_view("Top")
        self.wait_for(lambda s: "source exact: tracemalloc (m)" in s, what="tracemalloc as the default")
        # P starts it: the Top view follows, and the Functions view fills.
        self.keys("P")
        self.wait_for(lambda s: "source sampled, 1 per 4 KiB (m)" in s, timeout=15, what="the profiler on")
        self.go_to_view("Functions")
        self.wait_for(lambda s: any("keeper" in r for r in rows_after(s, "FUNCTION (file:line)")),
                      timeout=20, what="the function table")
        self.quit()


if __name__ == "__main__":
    unittest.main()
