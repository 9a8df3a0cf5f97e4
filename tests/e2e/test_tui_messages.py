"""End-to-end: no message is cut in the TUI.

A status message longer than the terminal is wide wraps over the bottom rows
(up to a third of the screen), so its last words (often the remedy) are on
screen at 80 columns, and stay whole across resizes; one longer than that
shows its start and a marker, and M shows it whole, as does the Output view.
The agent's line in the Overview wraps too. What pmt-top prints after it
leaves the screen are whole lines.
"""
import os
import re
import subprocess
import time
import unittest

from tui import BIN, PYTHON, TuiTestCase, alive

SLEEPER = "import time\nwhile True:\n    time.sleep(0.05)\n"


def squash(text):
    """TEXT without any whitespace: wrapped rows joined compare equal to the
    sentence they came from, wherever the rows were broken."""
    return "".join(text.split())


def holding(lines, text):
    """The index of the last line from which LINES, joined, hold TEXT whole
    (None when they do not)."""
    want = squash(text)
    for i in range(len(lines) - 1, -1, -1):
        if want in squash("".join(lines[i:])):
            return i
    return None


class Messages(TuiTestCase):

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir)

    def start_sleeper(self):
        p = subprocess.Popen([PYTHON, "-c", SLEEPER], stdin=subprocess.DEVNULL, env=self.env)
        self.addCleanup(self._kill, p)
        return p

    def refusal(self, pid):
        """Why --inject-method pep768 cannot load the agent into this
        (pre-3.14) Python, as the headless command says it."""
        r = subprocess.run([BIN, "snapshot", str(pid), "--inject-method", "pep768"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=self.env, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr.strip()
        self.assertEqual(len(err.splitlines()), 1, err)
        # The reason itself, after what the command adds around it.
        reason = err.split("loaded: ", 1)[-1] if "loaded: " in err else err.split(": ", 1)[-1]
        self.assertIn("3.14", reason)
        self.assertGreater(len(reason), 80, "the reason should be longer than a row: %r" % reason)
        return reason

    def status_holds(self, text, height):
        """A predicate: the bottom third of the screen holds TEXT whole."""
        def check(s):
            lines = s.splitlines()[:height]
            i = holding(lines, text)
            return i is not None and i >= height - height // 3
        return check

    def test_a_long_refusal_is_whole_at_80_columns_and_after_resizes(self):
        p = self.start_sleeper()
        reason = self.refusal(p.pid)
        self.open_terminal(80, 24, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt("--inject-method", "pep768", str(p.pid))
        s = self.wait_for(self.status_holds(reason, 24), timeout=20, what="the whole refusal in the status rows")
        lines = s.splitlines()
        # More than one row: the message wrapped rather than ran off the edge,
        # and its last words (the remedy) are there.
        self.assertLess(holding(lines, reason), 23, s)
        self.assertIn(squash(reason.split()[-1]), squash("".join(lines[-4:])))
        # The Overview's agent line says it whole too, above the graph.
        head = [i for i, l in enumerate(lines) if l.startswith("agent")]
        legend = [i for i, l in enumerate(lines) if " RSS " in l]
        self.assertTrue(head and legend, s)
        self.assertIn(squash(reason), squash("".join(lines[head[0]:legend[0]])), s)

        # Wider: fewer rows, still whole; narrower: more rows, still whole.
        self.resize(120, 40)
        self.wait_for(self.status_holds(reason, 40), what="the refusal whole at 120x40")
        self.resize(60, 16)
        self.wait_for(self.status_holds(reason, 16), what="the refusal whole at 60x16")
        self.resize(80, 24)
        self.wait_for(self.status_holds(reason, 24), what="the refusal whole at 80x24 again")

        # M: every message whole, with its time.
        self.keys("M")
        s = self.wait_for(lambda s: "messages, newest last" in s, what="the message panel")
        lines = s.splitlines()
        top = [i for i, l in enumerate(lines) if "messages, newest last" in l][0]
        self.assertIsNotNone(holding(lines[top:-1], reason), s)
        self.assertRegex(lines[top + 1], r"^\s*\d\d:\d\d:\d\d\s")
        self.keys("Escape")
        self.wait_for(lambda s: "messages, newest last" not in s, what="the panel to close")

        # The Output view keeps them too.
        self.go_to_view("Output")
        s = self.wait_for(lambda s: "pmt-top's messages" in s, what="the Output view")
        lines = s.splitlines()
        top = [i for i, l in enumerate(lines) if "pmt-top's messages" in l][0]
        self.assertIsNotNone(holding(lines[top:top + 8], reason), s)
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")
        self.assertTrue(alive(p.pid))

    def test_a_message_taller_than_a_third_of_the_screen_says_so_and_M_shows_it(self):
        p = self.start_sleeper()
        # A socket path too long for a Unix socket: the agent's line and the
        # messages quote it, and a path has no space to wrap at.
        sock = "/tmp/" + "a-rather-long-directory-name/" * 4 + "agent.sock"
        self.open_terminal(40, 10, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt("--socket", sock, str(p.pid))
        self.wait_for(lambda s: "RSS" in s, what="the Overview")
        # T asks the agent: the answer quotes why there is none.
        time.sleep(1)
        self.keys("T")
        s = self.wait_for(lambda s: "(M: all of it)" in s, what="the marker of a message cut for room")
        lines = s.splitlines()
        self.assertTrue(lines[-1].rstrip().endswith("(M: all of it)"), s)
        # Three rows (a third of 10) hold its start, no more.
        self.assertIn("no agent", "".join(lines[-3:]))
        self.assertNotIn("no agent", "".join(lines[:-3]))

        # Room enough: the same message whole, in the status rows.
        self.resize(100, 30)
        s = self.wait_for(lambda s: re.search(r"too long for a Unix socket \(limit \d+ bytes\)",
                                              " ".join(l.strip() for l in s.splitlines()[-10:])),
                          what="the whole message at 100x30")
        self.assertIsNotNone(holding(s.splitlines()[-10:], sock), s)
        self.assertNotIn("(M: all of it)", s)

        # Small again, and M: the panel shows the agent's line and the
        # message, whole, scrolling back through them.
        self.resize(40, 10)
        self.wait_for(lambda s: "(M: all of it)" in s, what="the marker again")
        self.resize(60, 30)
        self.wait_for(lambda s: len(s.splitlines()[0].rstrip()) > 50, what="the redraw at 60x30")
        self.keys("M")
        s = self.wait_for(lambda s: "messages, newest last" in s, what="the message panel")
        lines = s.splitlines()
        top = [i for i, l in enumerate(lines) if "messages, newest last" in l][0]
        self.assertIsNotNone(holding(lines[:top], sock), s)          # the agent's line
        self.assertIsNotNone(holding(lines[top:-1], sock), s)        # the message
        self.assertRegex(squash("".join(lines[top:-1])), r"toolongforaUnixsocket\(limit\d+bytes\)")
        self.keys("Escape")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")

    def test_what_it_prints_after_leaving_the_screen_is_whole_lines(self):
        # Under run, the program's output file is named on the way out: a
        # long path in a narrow terminal, a line of its own.
        logdir = os.path.join(self.tmpdir, "a-directory-with-a-long-name-for-the-output-of-the-program")
        os.mkdir(logdir)
        log = os.path.join(logdir, "output.log")
        self.open_terminal(60, 20, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt("run", "--log", log, "--", PYTHON, "-c", SLEEPER)
        self.wait_for(lambda s: "RSS" in s, what="the Overview")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")
        joined = self.tmux("capture-pane", "-p", "-J", "-t", "main").splitlines()
        self.assertIn("pmt-top: the program's output is in %s" % log, joined)

    def test_the_clean_up_lines_after_quitting_an_attach_are_whole(self):
        p = self.start_sleeper()
        self.open_terminal(60, 20, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt(str(p.pid))
        self.wait_for(lambda s: "agent Python" in squash(s) or "agentPython" in squash(s), timeout=40,
                      what="the agent")
        self.wait_for(lambda s: "sampled" in s or "profiler" in s, timeout=10, what="the profiler's state")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=" in s, timeout=20, what="quit")
        joined = self.tmux("capture-pane", "-p", "-J", "-t", "main").splitlines()
        left = [l for l in joined if l.startswith("pmt-top: ")]
        # Each starts a line of its own and is a whole sentence.
        for l in left:
            self.assertRegex(l, r"^pmt-top: .*\S$")
        self.assertIn("pmt-top: stopped the sampled profiler in pid %d (it was started from pmt-top)" % p.pid,
                      joined)
        self.assertTrue(alive(p.pid))


if __name__ == "__main__":
    unittest.main()
