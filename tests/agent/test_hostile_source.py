"""Source lines of files another local user replaced: FIFOs, devices, huge files.

The target imports a module from a directory every user can write (a fresh
01777 directory under /tmp) and keeps its allocations alive. The module file
is then deleted and a third user (uid 12345, via setpriv) puts something in
its place. top and snapshot report source lines: the agent must answer within
a bound, never open the FIFO or device, not grow the target, and go on
answering. The lines it can read are cut to 400 characters, and lines past
the first 4 MiB of a file get no text.
"""
import ctypes
import errno
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
import unittest

import agenttest
from agenttest import Target

THIRD = 12345
SETPRIV = shutil.which("setpriv")
ANSWER_BOUND = 5.0              # seconds; the agent's own deadline is 0.25 s
GROWTH_BOUND = 8 * 1024         # kB of VmRSS / VmHWM growth allowed per request
AS_LIMIT = 2 << 30              # the target's address space: a regression fails, not the host
MODULE = '''\
KEEP = []


def alloc(n, size):
    for _ in range(n):
        KEEP.append(bytearray(size))  # HOSTILE_LINE
'''
LINE = "KEEP.append(bytearray(size))  # HOSTILE_LINE"
IN_OPEN = 0x20


class Inotify(object):
    """IN_OPEN events of one path (O_PATH opens make none)."""

    def __init__(self, tc, path):
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        tc.addCleanup(os.close, self.fd)
        if libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch %s" % path)

    def opened(self):
        r, _, _ = select.select([self.fd], [], [], 0.2)
        if not r:
            return False
        try:
            return len(os.read(self.fd, 4096)) > 0
        except BlockingIOError:
            return False


def vm_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def reset_hwm(pid):
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")            # VmHWM := VmRSS
    except OSError:
        pass


def as_third(*cmd):
    subprocess.run([SETPRIV, "--reuid=%d" % THIRD, "--regid=%d" % THIRD, "--clear-groups"]
                   + list(cmd), check=True, timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Base(unittest.TestCase):
    def setUp(self):
        self.pub = tempfile.mkdtemp(prefix="pmt-agent-hostile-")
        self.addCleanup(shutil.rmtree, self.pub, True)
        os.chmod(self.pub, 0o1777)
        self.t = Target(self, trace=1)
        self.t.call("import resource; resource.setrlimit(resource.RLIMIT_AS, (%d, %d))"
                    % (AS_LIMIT, AS_LIMIT))

    def load(self, name, source):
        """Import name from self.pub (source: bytes or str) and allocate at its lines."""
        path = os.path.join(self.pub, name + ".py")
        with open(path, "wb") as f:
            f.write(source if isinstance(source, bytes) else source.encode())
        self.t.call("import sys, importlib\n"
                    "sys.path.insert(0, %r)\n"
                    "importlib.invalidate_caches()\n"
                    "import %s\n"
                    "%s.alloc(2000, 1000)" % (self.pub, name, name))
        return path

    def group(self, result, path):
        for g in result["groups"]:
            if g["frames"][0][0] == path:
                return g
        self.fail("no group for %s in %r" % (path, [g["frames"] for g in result["groups"]]))

    def timed(self, c, cmd, **args):
        """(result, seconds) of one request; fails when not answered in ANSWER_BOUND."""
        c.send_raw(('{"id": %d, "cmd": "%s", "args": %s}\n'
                    % (c.next_id, cmd, json.dumps(args))).encode())
        c.next_id += 1
        t0 = time.monotonic()
        try:
            rep = c.reply(timeout=ANSWER_BOUND)
        except OSError:
            self.fail("%s was not answered within %.0f s" % (cmd, ANSWER_BOUND))
        took = time.monotonic() - t0
        self.assertIsNotNone(rep, "connection closed")
        self.assertTrue(rep.get("ok"), rep)
        self.assertLess(took, ANSWER_BOUND)
        return rep["result"], took


@unittest.skipUnless(agenttest.IS_ROOT and SETPRIV,
                     "needs root and setpriv: a third uid plants files in a shared directory")
class Planted(Base):
    def setUp(self):
        Base.setUp(self)
        self.path = self.load("hostile_mod", MODULE)
        c = self.t.client()
        self.assertEqual(self.group(c.ok("top", limit=100), self.path)["line"], LINE)
        os.unlink(self.path)

    def check_answers(self, watch=None):
        """top and snapshot answer in time without growing the target; it goes on."""
        pid = self.t.pid
        c = self.t.client()
        for cmd, args in (("top", {"limit": 100}), ("snapshot", {}),
                          ("top", {"limit": 100, "key": "traceback"})):
            rss0 = vm_kb(pid, "VmRSS")
            reset_hwm(pid)
            hwm0 = vm_kb(pid, "VmHWM")
            result, took = self.timed(c, cmd, **args)
            self.assertEqual(self.group(result, self.path)["line"], "")
            self.assertLess(vm_kb(pid, "VmRSS") - rss0, GROWTH_BOUND, cmd)
            self.assertLess(vm_kb(pid, "VmHWM") - hwm0, GROWTH_BOUND, cmd)
        if watch is not None:
            self.assertFalse(watch.opened(), "the agent opened %s" % self.path)
        # the same connection and a new one go on answering
        self.assertTrue(c.ok("status")["tracing"])
        self.timed(self.t.client(), "top", limit=5)
        self.assertTrue(self.t.alive())

    def test_fifo(self):
        as_third("mkfifo", self.path)
        st = os.lstat(self.path)
        self.assertEqual(st.st_uid, THIRD)
        self.check_answers(Inotify(self, self.path))
        # nobody holds it open for reading: a writer cannot open it
        with self.assertRaises(OSError) as cm:
            os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        self.assertEqual(cm.exception.errno, errno.ENXIO)

    def test_sparse_8g(self):
        as_third("truncate", "-s", "8G", self.path)
        self.assertEqual(os.lstat(self.path).st_size, 8 << 30)
        self.check_answers()

    def test_symlink_to_dev_zero(self):
        as_third("ln", "-s", "/dev/zero", self.path)
        self.check_answers()

    def test_symlink_to_tty(self):
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty = os.ttyname(slave)
        as_third("ln", "-s", tty, self.path)
        watch = Inotify(self, tty)
        self.check_answers(watch)


class Bounded(Base):
    """Regular files: lines are cut, and only the first 4 MiB are scanned."""

    def test_long_line_cut(self):
        # latin-1 source (PEP 263) with a 2000-character allocation line
        comment = "\xe9" * 2000
        src = ("# -*- coding: latin-1 -*-\nKEEP = []\n\n\ndef alloc(n, size):\n"
               "    for _ in range(n):\n"
               "        KEEP.append(bytearray(size))  # %s\n" % comment).encode("latin-1")
        path = self.load("long_mod", src)
        c = self.t.client()
        for cmd, args in (("top", {"limit": 100}), ("snapshot", {})):
            line = self.group(c.ok(cmd, **args), path)["line"]
            self.assertEqual(line, ("KEEP.append(bytearray(size))  # " + comment)[:400])

    def test_lines_past_scan_limit(self):
        # alloc_near's line is within the first 4 MiB, alloc_far's is past it
        filler = ("# " + "x" * 1000 + "\n") * 4500
        src = ("KEEP = []\n\n\ndef alloc_near(n, size):\n"
               "    for _ in range(n):\n"
               "        KEEP.append(bytearray(size))  # NEAR\n\n\n" + filler +
               "def alloc_far(n, size):\n"
               "    for _ in range(n):\n"
               "        KEEP.append(bytearray(size))  # FAR\n\n\n"
               "def alloc(n, size):\n"
               "    alloc_near(n, size)\n"
               "    alloc_far(n, size)\n")
        self.assertGreater(len(src), 4 << 20)
        path = self.load("far_mod", src)
        c = self.t.client()
        lines = {}
        for g in c.ok("top", limit=100)["groups"]:
            if g["frames"][0][0] == path:
                lines[g["frames"][0][1]] = g["line"]
        far = src.splitlines().index("        KEEP.append(bytearray(size))  # FAR") + 1
        self.assertEqual(lines[6], "KEEP.append(bytearray(size))  # NEAR")
        self.assertEqual(lines[far], "")


if __name__ == "__main__":
    agenttest.main()
