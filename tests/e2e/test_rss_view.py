"""End-to-end: the live RSS view of the real binary, in a real terminal.

A real Python process allocates known amounts; what pmt-top shows must follow
/proc/PID/status within 5 %. Resize, keys, quit, terminal restore, target exit,
and the command-line errors are exercised on the real binary.
"""
import os
import re
import subprocess
import time
import unittest

from tui import BIN, PYTHON, TuiTestCase, alive, parse_size, vmrss

ALLOCATOR = r"""
import sys, time
blocks = []
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "grow":
        b = bytearray(200 * 1024 * 1024)
        for i in range(0, len(b), 4096):
            b[i] = 1
        blocks.append(b)
    elif cmd == "free":
        blocks.clear()
    elif cmd == "exit":
        break
    sys.stdout.write("done\n"); sys.stdout.flush()
"""


def shown_rss(screen):
    m = re.search(r"RSS (\d[\d.]* (?:B|KiB|MiB|GiB))", screen)
    if not m:
        raise AssertionError("no RSS on screen:\n" + screen)
    return parse_size(m.group(1))


class RssViewTest(TuiTestCase):

    def start_allocator(self):
        p = self.start_python(ALLOCATOR, text=True)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        return p

    def command(self, p, cmd):
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
        self.assertEqual(p.stdout.readline().strip(), "done")

    def assert_follows(self, pid, timeout=5.0):
        """The RSS on screen matches /proc within 5 % (polling while it settles)."""
        deadline = time.monotonic() + timeout
        while True:
            real = vmrss(pid)
            shown = shown_rss(self.screen())
            if abs(shown - real) <= 0.05 * real:
                return shown, real
            if time.monotonic() > deadline:
                self.fail("shown RSS %.0f vs /proc %.0f (more than 5%% apart)" % (shown, real))
            time.sleep(0.2)

    def test_rss_follows_a_growing_process_then_quit_restores_terminal(self):
        p = self.start_allocator()
        self.open_terminal(120, 40)
        self.run_pmt("--no-inject", "-i", "0.1", str(p.pid))
        self.wait_for(lambda s: "RSS " in s and "PID %d" % p.pid in s, what="the overview")
        self.assertTrue(self.alternate_screen())
        shown0, real0 = self.assert_follows(p.pid)

        self.command(p, "grow")
        shown1, real1 = self.assert_follows(p.pid)
        self.assertGreater(real1 - real0, 190 * 1024 * 1024)
        self.assertGreater(shown1 - shown0, 180 * 1024 * 1024)
        s = self.screen()
        # The y axis is labelled in human units, the time axis ends at "now".
        self.assertRegex(s, r"\d+ MiB┤")
        self.assertIn("now", s)
        # Braille graph cells are drawn.
        self.assertTrue(any(0x2801 <= ord(c) <= 0x28FF for c in s))
        self.assertRegex(s, r"anon \d")
        self.assertRegex(s, r"PSS \d")  # same user: smaps_rollup readable

        self.command(p, "free")
        self.assert_follows(p.pid)
        # max stays at the peak once the memory is freed.
        m = re.search(r"max (\d[\d.]* \w+)", self.screen())
        self.assertGreater(parse_size(m.group(1)), 190 * 1024 * 1024)

        self.keys("q")
        s = self.wait_for(lambda s: "EXIT=0" in s, what="pmt-top to exit 0")
        self.assertFalse(self.alternate_screen())
        # The terminal is back in cooked mode with echo.
        self.type("stty -a | tr ' ' '\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' '; echo")
        s = self.wait_for(lambda s: re.search(r"^icanon echo\s*$", s, re.M) or "-icanon" in s
                          or "-echo " in s, what="stty output")
        self.assertRegex(s, r"(?m)^icanon echo\s*$")
        self.assertTrue(alive(p.pid), "the target must be unharmed")

    def test_resize_down_to_40x10_and_below(self):
        p = self.start_allocator()
        self.open_terminal(100, 30)
        self.run_pmt("--no-inject", "-i", "0.1", str(p.pid))
        self.wait_for(lambda s: "RSS " in s, what="the overview")
        self.resize(40, 10)
        s = self.wait_for(lambda s: len(s.splitlines()[0]) <= 40 and "RSS" in s, what="a 40x10 layout")
        self.assertIn("pmt-top", s.splitlines()[0])
        self.assertLessEqual(max(len(l) for l in s.splitlines()), 40)
        self.assert_follows(p.pid)
        self.resize(30, 8)
        self.wait_for(lambda s: "terminal too small" in s, what="the too-small message")
        self.resize(120, 40)
        s = self.wait_for(lambda s: "RSS " in s and "now" in s, what="the full layout again")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="pmt-top to exit")

    def test_keys_pause_interval_theme_help(self):
        p = self.start_allocator()
        self.open_terminal(120, 40)
        self.run_pmt("--no-inject", str(p.pid))
        self.wait_for(lambda s: "interval 0.5s" in s, what="the default interval")
        self.keys("+")
        self.wait_for(lambda s: "interval 1s" in s, what="the longer interval")
        self.keys("-", "-")
        self.wait_for(lambda s: "interval 0.2s" in s, what="the shorter interval")
        self.keys("p")
        self.wait_for(lambda s: "PAUSED" in s.splitlines()[0], what="PAUSED in the title")
        self.keys("p")
        self.wait_for(lambda s: "PAUSED" not in s.splitlines()[0], what="resume")
        self.keys("t")
        self.wait_for(lambda s: "theme: light" in s, what="the next theme")
        self.keys("?")
        s = self.wait_for(lambda s: "pmt-top keys" in s, what="the help overlay")
        for key in ("quit", "pause", "interval", "theme", "next / previous view"):
            self.assertIn(key, s)
        self.keys("x")  # any key closes help
        self.wait_for(lambda s: "pmt-top keys" not in s, what="help to close")
        self.go_to_view("Output")
        self.wait_for(lambda s: "did not start this process" in s, what="the Output view")
        self.keys("F10")
        self.wait_for(lambda s: "EXIT=0" in s, what="F10 to quit")

    def test_target_exit_keeps_history_until_quit(self):
        p = self.start_allocator()
        self.command(p, "grow")
        self.open_terminal(120, 40)
        self.run_pmt("--no-inject", "-i", "0.1", str(p.pid))
        self.wait_for(lambda s: "RSS " in s, what="the overview")
        time.sleep(1)
        p.stdin.write("exit\n")
        p.stdin.flush()
        p.wait(timeout=10)
        s = self.wait_for(lambda s: "has exited" in s, what="the exit notice")
        self.assertIn("state exited", s)
        # The process freed its memory while exiting: the last sample is small,
        # but the history keeps the peak.
        m = re.search(r"max (\d[\d.]* \w+)", s)
        self.assertGreater(parse_size(m.group(1)), 190 * 1024 * 1024)
        self.assertTrue(any(0x2801 <= ord(c) <= 0x28FF for c in s))  # history too
        time.sleep(1)
        self.assertNotIn("EXIT=", self.screen())  # still running
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit after exit")

    def test_ascii_and_no_color(self):
        p = self.start_allocator()
        self.open_terminal(100, 30, env={"NO_COLOR": "1"})
        self.run_pmt("--no-inject", "--ascii", "-i", "0.1", str(p.pid))
        s = self.wait_for(lambda s: "RSS " in s and "|" in s, what="the ASCII graph")
        time.sleep(0.5)
        s = self.screen()
        self.assertFalse(any(ord(c) > 0x7F for c in s), "non-ASCII on an --ascii screen")
        esc = self.screen_escapes()
        self.assertNotRegex(esc, r"\x1b\[[0-9;]*(3[0-7]|4[0-7]|38;5;\d+)m", "colours despite NO_COLOR")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")

    def test_eight_colour_terminal(self):
        p = self.start_allocator()
        self.open_terminal(100, 30, term="screen")  # 8 colours
        self.run_pmt("--no-inject", "-i", "0.1", str(p.pid))
        self.wait_for(lambda s: "RSS " in s, what="the overview")
        time.sleep(0.3)
        esc = self.screen_escapes()
        self.assertRegex(esc, r"\x1b\[[0-9;]*3[0-7][;m]", "no colour at all")
        # Bright and 256-colour codes do not exist there: none may be sent.
        self.assertNotRegex(esc, r"\x1b\[[0-9;]*(9[0-7]|38;5;\d+)[;m]")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")

    def test_demo_starts_and_stops_its_workload(self):
        # The demo's agent gets a private runtime directory, removed with tmpdir.
        self.open_terminal(120, 40, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt("demo")
        s = self.wait_for(lambda s: re.search(r"PID (\d+)  \S*python3?\S* \S*workload\.py", s),
                          timeout=15, what="the demo workload")
        pid = int(re.search(r"PID (\d+)", s).group(1))
        self.kill_pid_later(pid)
        self.assertTrue(alive(pid))
        self.go_to_view("Output")
        self.wait_for(lambda s: "demo workload started" in s, what="the workload's output")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(alive(pid), "the demo workload must stop with pmt-top")


class CommandLineErrors(unittest.TestCase):
    """Bad PIDs: one line on stderr, a documented exit code, nothing else."""

    def run_bin(self, *args, user=None):
        cmd = [BIN] + list(args)
        if user:
            cmd = ["setpriv", "--reuid=%s" % user, "--regid=nogroup", "--clear-groups"] + cmd
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL, timeout=20)

    def assert_one_line(self, r, code, needle):
        self.assertEqual(r.returncode, code, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertIn(needle, r.stderr)

    def test_errors(self):
        self.assert_one_line(self.run_bin("99999999"), 3, "no process with pid 99999999")
        self.assert_one_line(self.run_bin("2"), 3, "kernel thread")
        self.assert_one_line(self.run_bin("abc"), 2, "not a process id")
        self.assert_one_line(self.run_bin("-i", "0", "1"), 2, "--interval")
        self.assert_one_line(self.run_bin("--theme", "nope", str(os.getpid())), 2, "no theme named \"nope\"")

    def test_vanished_pid(self):
        p = subprocess.Popen([PYTHON, "-c", "pass"])
        p.wait()
        self.assert_one_line(self.run_bin(str(p.pid)), 3, "no process with pid %d" % p.pid)

    def test_broken_snapshot_files(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="pmt-e2e-")
        try:
            bad = os.path.join(d, "cut.json")
            with open(bad, "w") as f:
                f.write('{"format": "pmt-top-snapshot", "version": 1, "groups": [')
            foreign = os.path.join(d, "other.json")
            with open(foreign, "w") as f:
                f.write('{"hello": "world"}')
            self.assert_one_line(self.run_bin("--load", bad), 1, "cut.json")
            self.assert_one_line(self.run_bin("diff", foreign, bad), 1, "other.json")
            self.assert_one_line(self.run_bin("diff", os.path.join(d, "missing.json"), bad), 1,
                                 "missing.json")
            self.assertEqual(sorted(os.listdir(d)), ["cut.json", "other.json"])  # nothing written
        finally:
            subprocess.call(["rm", "-rf", d])

    def test_no_terminal(self):
        r = self.run_bin(str(os.getpid()))
        self.assert_one_line(r, 2, "needs a terminal")

    def test_help_and_version(self):
        r = self.run_bin("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("exit status", r.stdout)
        r = self.run_bin("--version")
        self.assertRegex(r.stdout, r"^pmt-top \d+\.\d+\.\d+\n$")


class OtherUser(TuiTestCase):
    """Watching a process of another user: RSS works, PSS says why it cannot."""

    def test_pss_explains_permission(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to switch users")
        p = self.start_python("import time; time.sleep(60)")
        self.open_terminal(120, 30)
        self.type("setpriv --reuid=nobody --regid=nogroup --clear-groups %s --no-inject %d; echo EXIT=$?"
                  % (BIN, p.pid))
        s = self.wait_for(lambda s: "RSS " in s, what="the overview as nobody")
        self.assertIn("PSS unavailable", s)
        self.assertIn("CAP_SYS_PTRACE", s)
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")


if __name__ == "__main__":
    unittest.main()
