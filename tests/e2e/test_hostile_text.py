"""End-to-end: a target that fills every string it hands pmt-top with
terminal escapes, C1 controls and bidi overrides. pmt-top runs as root
against it; none of those bytes may reach root's terminal, in the headless
tables, on stderr, in --json, or from the TUI (its raw output is recorded
with tmux pipe-pane). The hostile names must still be there, with '?' in
place of what was taken out.

Also the files pmt-top writes: `run --log` refuses a symbolic link and a
file of another user, and `snapshot -o` over a file another user made leaves
a 0600 file of ours.
"""
import json
import os
import re
import subprocess
import tempfile
import time
import unittest

from tui import BIN, PYTHON, SOURCE, TuiTestCase

AGENT_DIR = os.path.join(SOURCE, "agent")
BUILD = os.environ.get("PMT_TOP_BUILD") or os.path.dirname(BIN)

# Each hostile string carries an OSC title change (ESC ] ... BEL), a C1 CSI
# (U+009B) and a right-to-left override (U+202E).
H = "\x1b]0;pwned\x07\u009b6n\u202e"
# ... and shows up like this once made safe.
SHOWN = "?]0;pwned??6n?"
NOBODY = 65534

TARGET = r"""
import os, sys, threading, time, tracemalloc
H = %(H)r
sys.path.insert(0, %(agent)r)
tracemalloc.start(5)

# A function from a file that does not exist (no source line), whose name
# and qualified name are hostile.
code = compile("def alloc():\n    return [bytearray(1000) for _ in range(100)]\n",
               "/tmp/" + H + "evil.py", "exec")
ns = {}
exec(code, ns)
alloc = ns["alloc"]
c = alloc.__code__
if sys.version_info >= (3, 11):
    alloc.__code__ = c.replace(co_name="N" + H, co_qualname="Q" + H)
else:
    alloc.__code__ = c.replace(co_name="N" + H)

# A real file whose source line is hostile (and so is its name).
src = os.path.join(%(tmp)r, "src" + H + ".py")
with open(src, "w") as f:
    f.write("def keep():\n    return [bytearray(2000) for _ in range(100)]  # " + H + "\n")
code = compile(open(src).read(), src, "exec")
exec(code, ns)
keep = ns["keep"]

threading.current_thread().name = "M" + H
kept = []
def burst():
    for _ in range(5):
        kept.append(alloc()); kept.append(keep())
    del kept[:-40]
def work():
    # A new thread each time: the pure-Python tracer of 3.11 sees only
    # threads started after it was switched on.
    while True:
        t = threading.Thread(target=burst, name="W" + H)
        t.start(); t.join()
        time.sleep(0.01)
threading.Thread(target=work, daemon=True).start()

# An agent whose error messages quote hostile text: an exception class with
# a hostile name, raised by the snapshot and top commands when asked for
# --key filename (`pmt-top snapshot` without -o asks for the top groups).
import pmt_agent
from pmt_agent import commands
Hostile = type("E" + H, (Exception,), {})
def hostile(orig):
    def handler(session, args):
        if args.get("key") == "filename":
            raise Hostile("message " + H)
        return orig(session, args)
    return handler
for name in ("snapshot", "top"):
    commands.HANDLERS[name] = hostile(commands.HANDLERS[name])
# Live instances of that class, for the Types view and who holds them.
failures = [Hostile("kept " + H) for _ in range(3)]
pmt_agent.start()
print("ready", flush=True)
while True:
    time.sleep(1)
"""

RAW = [b"\x1b]0;pwned", b"\x07", b"\xc2\x9b", b"\xe2\x80\xae"]


class HostileText(TuiTestCase):

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir)

    def start_target(self, profiler=False):
        """The target; with PROFILER, its agent finds the sampler extension."""
        script = os.path.join(self.tmpdir, "target.py")
        with open(script, "w") as f:
            f.write(TARGET % {"H": H, "agent": AGENT_DIR, "tmp": self.tmpdir})
        # argv too: the TUI shows the command line.
        env = dict(self.env)
        if profiler:
            env["PMT_TOP_NATIVE_DIR"] = os.path.join(BUILD, "agent-native")
        p = subprocess.Popen([PYTHON, script, "A" + H], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=env)
        self.addCleanup(self._kill, p)
        self.assertEqual(p.stdout.readline().strip(), b"ready")
        return p

    def pmt(self, *args, timeout=60):
        r = subprocess.run([BIN] + list(args), env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        return r.returncode, r.stdout, r.stderr

    def assert_clean(self, data, what):
        for raw in RAW:
            self.assertNotIn(raw, data, "%s holds %r:\n%r" % (what, raw, data[:4000]))
        self.assertNotIn(b"\x1b", data, what)

    def test_headless_output_is_safe(self):
        p = self.start_target()
        pid = str(p.pid)

        # Allocation table: the file names (no source) and the source line.
        rc, out, err = self.pmt("snapshot", pid, "--top", "50")
        self.assertEqual(rc, 0, err)
        self.assert_clean(out + err, "snapshot")
        text = out.decode("utf-8")
        self.assertIn("/tmp/" + SHOWN + "evil.py:2", text)
        self.assertIn("src" + SHOWN + ".py:2: return [bytearray(2000) for _ in range(100)]  # " + SHOWN,
                      text)

        # The same as JSON: escaped, and still the target's very strings.
        rc, out, err = self.pmt("snapshot", pid, "--top", "50", "--json")
        self.assertEqual(rc, 0, err)
        self.assert_clean(out + err, "snapshot --json")
        files = {fr[0] for g in json.loads(out)["groups"] for fr in g["frames"]}
        self.assertIn("/tmp/" + H + "evil.py", files)

        # Function names (co_qualname) and their files.
        rc, out, err = self.pmt("functions", pid, "--duration", "1")
        self.assertEqual(rc, 0, err)
        self.assert_clean(out + err, "functions")
        text = out.decode("utf-8")
        self.assertRegex(text, r"[QN]" + re.escape(SHOWN) + r"  /tmp/" + re.escape(SHOWN) + r"evil\.py:1")
        rc, out, err = self.pmt("functions", pid, "--duration", "1", "--json")
        self.assertEqual(rc, 0, err)
        self.assert_clean(out + err, "functions --json")
        table = json.loads(out)
        names = {f["name"] for f in table["functions"]}
        self.assertTrue(any(H in n for n in names), names)
        threads = {t["name"] for f in table["functions"] for t in f.get("threads", [])}
        self.assertIn("W" + H, threads)

        # An agent error that quotes the target, on stderr.
        rc, out, err = self.pmt("snapshot", pid, "--key", "filename")
        self.assertNotEqual(rc, 0)
        self.assert_clean(out + err, "the agent's error")
        self.assertIn("E" + SHOWN + ": message " + SHOWN, err.decode("utf-8"))
        self.assertEqual(len(err.splitlines()), 1, err)

    def test_tui_output_is_safe(self):
        p = self.start_target(profiler=True)
        raw = os.path.join(self.tmpdir, "pane.raw")
        self.open_terminal(160, 40, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        # Everything the pane's programs write, byte for byte.
        self.tmux("pipe-pane", "-t", "main", "-o", "cat >> " + raw)
        self.run_pmt(str(p.pid))
        # Overview: the command line.
        self.wait_for(lambda s: "A" + SHOWN in s, timeout=20, what="the command line")
        # Top allocations: file names and the source line.
        self.go_to_view("Top")
        self.wait_for(lambda s: "src" + SHOWN in s and "evil.py" in s, timeout=20,
                      what="the hostile file names")
        # Functions (the sampled profiler): the hostile qualified name.
        self.go_to_view("Functions")
        self.wait_for(lambda s: re.search(r"[QN]" + re.escape(SHOWN), s), timeout=20,
                      what="the hostile function name")
        # Types: the hostile class's name, and the chains to its instances.
        self.go_to_view("Types")
        self.wait_for(lambda s: re.search(r"\d+ of \d+ types", s), timeout=20, what="the types")
        self.keys("/")
        self.type("pwned")
        self.wait_for(lambda s: "1 of " in s and "__main__.E" + SHOWN in s, what="the hostile class name")
        self.keys("Enter")
        self.wait_for(lambda s: "3 objects matched" in s and "global failures" in s and
                      "__main__.E" + SHOWN + " " in s, timeout=60, what="who holds the hostile instances")
        self.keys("Escape")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=" in s, what="quit")
        self.tmux("pipe-pane", "-t", "main")
        with open(raw, "rb") as f:
            data = f.read()
        self.assertIn(b"pwned", data)  # the names were drawn...
        for r in RAW[:1] + RAW[2:]:     # ...but none of their controls
            self.assertNotIn(r, data, "the pane received %r" % r)
        self.assertNotIn(b"\x07evil", data)
        self.assertNotIn("pwned", self.tmux("display-message", "-p", "-t", "main", "#{pane_title}"))


class WrittenFiles(TuiTestCase):
    """Files pmt-top writes as root where another user may have been first."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root")
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir, PMT_AGENT_DIR=AGENT_DIR)
        # A sticky, world-writable directory, like /tmp.
        self.shared = tempfile.mkdtemp(prefix="pmt-e2e-shared-")
        self.addCleanup(subprocess.call, ["rm", "-rf", self.shared])
        os.chmod(self.shared, 0o1777)
        self.private = os.path.join(self.tmpdir, "private")
        os.mkdir(self.private)

    def as_nobody(self, *cmd):
        subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
                       + list(cmd), check=True)

    def run_with_log(self, log):
        # No terminal: the log is opened before the screen, so a refusal
        # comes first; the command would write into the log at once.
        return subprocess.run([BIN, "run", "--log", log, "--", "sh", "-c", "echo INJECTED"],
                              env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=30)

    def test_log_refuses_a_symlink(self):
        precious = os.path.join(self.private, "root-file")
        with open(precious, "w") as f:
            f.write("precious\n")
        os.chmod(precious, 0o600)
        link = os.path.join(self.shared, "x.log")
        self.as_nobody("ln", "-s", precious, link)
        r = self.run_with_log(link)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stderr.strip(),
                         "pmt-top: refusing the log file %s: it is a symbolic link (give the file itself)" % link)
        time.sleep(0.2)  # a child started anyway would have written by now
        with open(precious) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertTrue(os.path.islink(link))

    def test_log_refuses_a_file_of_another_user(self):
        log = os.path.join(self.shared, "y.log")
        self.as_nobody("sh", "-c", "touch %s && chmod 666 %s" % (log, log))
        r = self.run_with_log(log)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("refusing the log file %s: it is owned by uid %d" % (log, NOBODY), r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        time.sleep(0.2)
        self.assertEqual(os.path.getsize(log), 0)

    def test_log_refuses_a_fifo_without_hanging(self):
        fifo = os.path.join(self.shared, "z.log")
        os.mkfifo(fifo)
        r = self.run_with_log(fifo)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("refusing the log file %s: it is not a regular file" % fifo, r.stderr)

    def test_snapshot_over_a_file_of_another_user(self):
        p = subprocess.Popen([PYTHON, os.path.join(os.path.dirname(os.path.abspath(__file__)), "alloc_target.py")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env, text=True)
        self.addCleanup(self._kill, p)
        self.assertTrue(p.stdout.readline().startswith("ready"))
        out = os.path.join(self.shared, "x.json")
        self.as_nobody("sh", "-c", "echo planted > %s && chmod 666 %s" % (out, out))
        before = os.stat(out)
        r = subprocess.run([BIN, "snapshot", str(p.pid), "-o", out], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = os.stat(out, follow_symlinks=False)
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (0, 0o600))
        self.assertNotEqual(st.st_ino, before.st_ino)  # a new file, not theirs rewritten
        with open(out) as f:
            self.assertEqual(json.load(f)["pid"], p.pid)
        self.assertEqual([n for n in os.listdir(self.shared) if n.startswith(".")], [])
        p.stdin.write("exit\n")
        p.stdin.flush()
        self.assertEqual(p.wait(timeout=10), 0)


if __name__ == "__main__":
    unittest.main()
