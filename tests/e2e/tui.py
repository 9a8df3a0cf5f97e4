"""Helpers for end-to-end tests: a private tmux server, real processes, cleanup.

Every process a test starts is registered and killed by PID in cleanup, and
every tmux server is a private one (-L) that is killed too, even when the test
fails.
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get("PMT_TOP_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "pmt-top")
SOURCE = os.environ.get("PMT_TOP_SOURCE") or os.path.join(os.path.dirname(__file__), "..", "..")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4}


def parse_size(text):
    """'212 MiB' -> bytes."""
    m = re.fullmatch(r"(-?[0-9.]+) (B|KiB|MiB|GiB|TiB)", text.strip())
    if not m:
        raise ValueError("not a size: %r" % text)
    return float(m.group(1)) * UNITS[m.group(2)]


def vmrss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class TuiTestCase(unittest.TestCase):
    """A test with a private tmux server and process bookkeeping."""

    def setUp(self):
        self.tmux_socket = "pmt-e2e-%d-%d" % (os.getpid(), id(self) % 100000)
        self.addCleanup(self._kill_tmux)
        self.tmpdir = tempfile.mkdtemp(prefix="pmt-e2e-")
        self.addCleanup(subprocess.call, ["rm", "-rf", self.tmpdir])

    # -- processes ------------------------------------------------------
    def start_python(self, code, *args, **kw):
        """Start a real Python process running code; killed in cleanup."""
        p = subprocess.Popen([PYTHON, "-c", code] + list(args), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
        self.addCleanup(self._kill, p)
        return p

    def _kill(self, p):
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        for stream in (p.stdin, p.stdout, p.stderr):
            if stream:
                stream.close()

    def kill_pid_later(self, pid):
        def kill():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.addCleanup(kill)

    # -- tmux -------------------------------------------------------------
    def tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-L", self.tmux_socket, "-f", "/dev/null"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if check and r.returncode != 0:
            raise AssertionError("tmux %s: %s" % (args, r.stderr))
        return r.stdout

    def _kill_tmux(self):
        # The pane's processes get SIGHUP; pmt-top restores and exits on it.
        pids = self.tmux("list-panes", "-a", "-F", "#{pane_pid}", check=False).split()
        self.tmux("kill-server", check=False)
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    def open_terminal(self, width=120, height=40, env=None, term="screen-256color"):
        """A shell in a fresh tmux window; returns nothing, use type/screen."""
        envs = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in (env or {}).items())
        self.tmux("new-session", "-d", "-s", "main", "-x", str(width), "-y", str(height),
                  "env %s LANG=C.UTF-8 TERM=%s PS1='$ ' bash --norc --noprofile" % (envs, term))
        self.tmux("set-option", "-t", "main", "remain-on-exit", "on")
        self.wait_for(lambda s: "$" in s, what="the shell prompt")

    def type(self, text, enter=True):
        self.tmux("send-keys", "-t", "main", "-l", text)
        if enter:
            self.tmux("send-keys", "-t", "main", "Enter")

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "main", *keys)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "main")

    def screen_escapes(self):
        return self.tmux("capture-pane", "-p", "-e", "-t", "main")

    def resize(self, width, height):
        self.tmux("resize-window", "-t", "main", "-x", str(width), "-y", str(height))

    def alternate_screen(self):
        return self.tmux("display-message", "-p", "-t", "main", "#{alternate_on}").strip() == "1"

    def wait_for(self, predicate, timeout=10.0, what="the screen"):
        deadline = time.monotonic() + timeout
        s = ""
        while time.monotonic() < deadline:
            s = self.screen()
            if predicate(s):
                # A capture can fall inside a redraw (the new header above
                # the old rows): take the screen once more after the write
                # has landed, and keep that one if it still matches.
                time.sleep(0.15)
                s = self.screen()
                if predicate(s):
                    return s
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s; screen was:\n%s" % (what, s))

    def run_pmt(self, *args):
        self.type(" ".join([shlex.quote(BIN)] + [shlex.quote(a) for a in args]) + "; echo EXIT=$?")

    def go_to_view(self, name):
        """Press the number key of the view called name (read from the tabs)."""
        m = re.search(r" (\d) %s " % re.escape(name), self.screen().splitlines()[0])
        if not m:
            raise AssertionError("no view %r in the title bar" % name)
        self.keys(m.group(1))

    def pmt_pid(self):
        """The pid of the pmt-top running in the pane (child of the shell)."""
        shell = int(self.tmux("list-panes", "-t", "main", "-F", "#{pane_pid}").split()[0])
        for _ in range(50):
            out = subprocess.run(["pgrep", "-P", str(shell)], stdout=subprocess.PIPE, text=True).stdout
            if out.split():
                return int(out.split()[0])
            time.sleep(0.1)
        raise AssertionError("pmt-top did not start")
