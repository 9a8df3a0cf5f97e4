"""A squatted /tmp/pmt-top-<uid>: the agent falls back to a directory nobody else can take.

As root, /tmp/pmt-top-65534 is pre-created by a third uid (12345), or is a
symlink or a file; a target running as nobody (no PMT_TOP_RUNTIME_DIR, no
XDG_RUNTIME_DIR) must still listen, in /tmp/pmt-top-65534.<suffix> owned by
nobody with mode 0700; hello says where and why, and a second target reuses
that directory. The directory is chosen by the effective uid.

The test instances of every interpreter share these fixed /tmp paths, so they
take turns (flock on this file). Every directory they create is removed; ones
left by a killed run carry MARKER and are removed by the next run.
"""
import fcntl
import os
import re
import shutil
import stat
import subprocess
import sys
import unittest

import agenttest
from agenttest import Target

NOBODY = 65534
THIRD = 12345
SETPRIV = shutil.which("setpriv")
SHARED = "/tmp/pmt-top-%d" % NOBODY
MARKER = ".pmt-agent-test"
FALLBACK_RE = re.compile(r"pmt-top-%d\.[0-9a-f]{8}$" % NOBODY)


def nobody_python():
    """An interpreter nobody can run: this one if it can, else a system one."""
    for py in (sys.executable, "/usr/bin/python3", "/opt/pmt-top-py314/bin/python3.14"):
        if not os.path.exists(py):
            continue
        r = subprocess.run([SETPRIV, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                            "--clear-groups", py, "-c", "pass"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        if r.returncode == 0:
            return py
    return None


def fallbacks():
    return sorted(os.path.join("/tmp", n) for n in os.listdir("/tmp")
                  if n.startswith("pmt-top-%d." % NOBODY))


def remove(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def mark(directory):
    """Tag a directory this test made (or made the agent make) as a test leftover."""
    with open(os.path.join(directory, MARKER), "w"):
        pass


def is_marked(path):
    return os.path.isdir(path) and not os.path.islink(path) and \
        os.path.exists(os.path.join(path, MARKER))


@unittest.skipUnless(agenttest.IS_ROOT and SETPRIV,
                     "needs root and setpriv: creates /tmp/pmt-top-%d as uid %d and runs "
                     "targets as uid %d" % (NOBODY, THIRD, NOBODY))
class Squatted(unittest.TestCase):
    def setUp(self):
        self.py = nobody_python()
        if self.py is None:
            self.fail("no Python that uid %d can run" % NOBODY)
        lock = open(os.path.abspath(__file__), "rb")
        self.addCleanup(lock.close)
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        # left by a killed run of this test: marked; anything else is not ours
        for path in [SHARED] + fallbacks():
            if is_marked(path):
                remove(path)
        if os.path.lexists(SHARED):
            self.fail("%s exists and was not made by this test; remove it" % SHARED)
        self.before = set(fallbacks())
        self.addCleanup(self.cleanup)

    def cleanup(self):
        for path in fallbacks():
            if path not in self.before:
                remove(path)
        if os.path.lexists(SHARED):
            remove(SHARED)

    def target(self, prefix_uids=None):
        uids = prefix_uids or ["--reuid=%d" % NOBODY]
        return Target(self, python=self.py,
                      prefix=[SETPRIV] + uids + ["--regid=%d" % NOBODY, "--clear-groups"],
                      env={"PMT_TOP_RUNTIME_DIR": None, "XDG_RUNTIME_DIR": None,
                           "PMT_AGENT_NO_NATIVE": "1", "PMT_NATIVE_DIR": ""})

    def expected_fallback(self):
        """The fallback the agent must pick: the first valid old one, else a new one."""
        for path in sorted(self.before):
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == NOBODY and \
                    stat.S_IMODE(st.st_mode) == 0o700:
                return path
        return None

    def check_fallback(self, why):
        t = self.target()
        self.assertIsNotNone(t.path, t.ready.get("error"))
        self.assertEqual(t.call("import os; result = [os.getuid(), os.geteuid()]"),
                         [NOBODY, NOBODY])
        d = os.path.dirname(t.path)
        self.assertEqual(os.path.basename(t.path), "%d.sock" % t.pid)
        expected = self.expected_fallback()
        if expected is None:
            self.assertRegex(os.path.basename(d), FALLBACK_RE)
            self.assertNotIn(d, self.before)
            mark(d)
        else:
            self.assertEqual(d, expected)
        st = os.lstat(d)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (NOBODY, 0o700))
        st = os.lstat(t.path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (NOBODY, 0o600))
        c = t.client()
        self.assertEqual(c.peer()[0], t.pid)
        self.assertEqual(c.hello["socket"], t.path)
        self.assertEqual(c.hello["socket_note"], "%s %s; using %s" % (SHARED, why, d))
        # a second target reuses the same directory
        t2 = self.target()
        self.assertEqual(os.path.dirname(t2.path or ""), d, t2.ready.get("error"))
        self.assertEqual(t2.client().hello["socket_note"], "%s %s; using %s" % (SHARED, why, d))
        self.assertTrue(c.ok("status"))
        return d

    def test_owned_by_other_uid(self):
        os.mkdir(SHARED, 0o700)
        mark(SHARED)
        os.chown(SHARED, THIRD, THIRD)
        self.check_fallback("is owned by uid %d" % THIRD)
        self.assertEqual(os.listdir(SHARED), [MARKER])

    def test_symlink(self):
        real = agenttest.mkdtemp(self)
        os.chown(real, THIRD, THIRD)
        os.symlink(real, SHARED)
        self.check_fallback("is a symlink")
        self.assertEqual(os.listdir(real), [])

    def test_regular_file(self):
        with open(SHARED, "w"):
            pass
        os.chown(SHARED, THIRD, THIRD)
        self.check_fallback("is not a directory")

    def test_effective_uid(self):
        # real uid THIRD, effective uid nobody: the directory is nobody's
        by_ruid = "/tmp/pmt-top-%d" % THIRD         # where the real uid would lead
        if not os.path.lexists(by_ruid):
            self.addCleanup(lambda: os.path.lexists(by_ruid) and remove(by_ruid))
        t = self.target(["--ruid=%d" % THIRD, "--euid=%d" % NOBODY])
        self.assertEqual(t.call("import os; result = [os.getuid(), os.geteuid()]"),
                         [THIRD, NOBODY])
        self.assertEqual(t.path, os.path.join(SHARED, "%d.sock" % t.pid), t.ready.get("error"))
        mark(SHARED)
        st = os.lstat(SHARED)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (NOBODY, 0o700))
        c = t.client()
        self.assertEqual((c.hello["socket"], c.hello["socket_note"]), (t.path, None))


class Choice(unittest.TestCase):
    """rundir.choose_dir with the shared parent moved to a private directory."""

    def setUp(self):
        sys.path.insert(0, agenttest.AGENT_DIR)
        try:
            from pmt_agent import rundir
        finally:
            sys.path.pop(0)
        self.rundir = rundir
        self.parent = agenttest.mkdtemp(self)
        self.addCleanup(setattr, rundir, "SHARED_PARENT", rundir.SHARED_PARENT)
        rundir.SHARED_PARENT = self.parent
        self.shared = os.path.join(self.parent, "pmt-top-%d" % os.geteuid())

    def choose(self):
        return self.rundir.choose_dir({})

    def test_free_default(self):
        self.assertEqual(self.choose(), (self.shared, None))
        st = os.lstat(self.shared)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (os.geteuid(), 0o700))
        self.assertEqual(self.choose(), (self.shared, None))

    def test_loose_default_and_candidates(self):
        os.mkdir(self.shared)
        os.chmod(self.shared, 0o755)
        p = os.path.join(self.parent, "pmt-top-%d." % os.geteuid())
        os.mkdir(p + "a")
        os.chmod(p + "a", 0o750)                   # not 0700: skipped
        real = os.path.join(self.parent, "real")
        os.mkdir(real, 0o700)
        os.symlink(real, p + "b")                  # a symlink: skipped
        open(p + "c", "w").close()                 # not a directory: skipped
        os.mkdir(p + "e", 0o700)
        os.mkdir(p + "d", 0o700)                   # the first valid one by name
        self.assertEqual(self.choose(), (p + "d", "%s has mode 0755; using %s"
                                         % (self.shared, p + "d")))
        os.rmdir(p + "d")
        os.rmdir(p + "e")
        path, note = self.choose()                 # none left: a new one
        self.assertRegex(os.path.basename(path), r"pmt-top-%d\.[0-9a-f]{8}$" % os.geteuid())
        self.assertEqual(note, "%s has mode 0755; using %s" % (self.shared, path))
        st = os.lstat(path)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (os.geteuid(), 0o700))
        self.assertEqual(self.choose(), (path, note))

    def test_no_fallback_for_explicit_dirs(self):
        os.mkdir(self.shared)
        os.chmod(self.shared, 0o755)
        with self.assertRaises(self.rundir.RundirError):
            self.rundir.choose_dir({"PMT_TOP_RUNTIME_DIR": self.shared})
        self.assertEqual(sorted(os.listdir(self.parent)), [os.path.basename(self.shared)])


if __name__ == "__main__":
    agenttest.main()
