"""Socket and directory modes, refused runtime directories, SO_PEERCRED checks."""
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

import agenttest
from agenttest import Target

NOBODY = 65534
SETPRIV = shutil.which("setpriv")

PEER_PROBE = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect-failed %s" % e.errno)
    raise SystemExit(0)
try:
    s.sendall(b'{"id": 1, "cmd": "hello", "args": {"protocol": 1}}\n')
    data = s.recv(65536)
except OSError as e:
    data = b""
print("reply %r" % data)
"""


class Modes(unittest.TestCase):
    def test_created_dir_and_socket_modes(self):
        t = Target(self)
        st = os.lstat(t.runtime_dir)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        self.assertEqual(st.st_uid, os.getuid())
        st = os.lstat(t.path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(t.client().peer()[0], t.pid)

    def test_default_dirs(self):
        sys.path.insert(0, agenttest.AGENT_DIR)
        try:
            from pmt_agent import rundir
        finally:
            sys.path.pop(0)
        xdg = agenttest.mkdtemp(self)
        self.assertEqual(rundir.default_dir({"PMT_TOP_RUNTIME_DIR": "/x/y", "XDG_RUNTIME_DIR": xdg}), "/x/y")
        self.assertEqual(rundir.default_dir({"XDG_RUNTIME_DIR": xdg}), os.path.join(xdg, "pmt-top"))
        self.assertEqual(rundir.default_dir({"XDG_RUNTIME_DIR": xdg + "/missing"}),
                         "/tmp/pmt-top-%d" % os.getuid())
        self.assertEqual(rundir.default_dir({}), "/tmp/pmt-top-%d" % os.getuid())
        t = Target(self, env={"PMT_TOP_RUNTIME_DIR": None, "XDG_RUNTIME_DIR": xdg})
        self.assertEqual(t.path, os.path.join(xdg, "pmt-top", "%d.sock" % t.pid))

    def refused(self, runtime_dir, words):
        t = Target(self, runtime_dir=runtime_dir)
        self.assertIsNone(t.path)
        self.assertIn("RundirError", t.ready["error"])
        self.assertIn(words, t.ready["error"])
        self.assertTrue(t.alive())
        self.assertEqual(t.call("result = 1"), 1)
        return t

    def test_symlink_refused(self):
        tmp = agenttest.mkdtemp(self)
        real = os.path.join(tmp, "real")
        os.mkdir(real, 0o700)
        link = os.path.join(tmp, "link")
        os.symlink(real, link)
        self.refused(link, "symlink")
        self.assertEqual(os.listdir(real), [])

    def test_loose_mode_refused(self):
        tmp = agenttest.mkdtemp(self)
        d = os.path.join(tmp, "loose")
        os.mkdir(d)
        os.chmod(d, 0o755)
        self.refused(d, "mode 0755")
        self.assertEqual(os.listdir(d), [])

    def test_not_a_directory_refused(self):
        tmp = agenttest.mkdtemp(self)
        f = os.path.join(tmp, "file")
        open(f, "w").close()
        self.refused(f, "not a directory")

    @unittest.skipUnless(agenttest.IS_ROOT, "chown to another uid needs root")
    def test_foreign_owner_refused(self):
        tmp = agenttest.mkdtemp(self)
        d = os.path.join(tmp, "foreign")
        os.mkdir(d, 0o700)
        os.chown(d, NOBODY, NOBODY)
        self.refused(d, "owned by uid %d" % NOBODY)
        self.assertEqual(os.listdir(d), [])


@unittest.skipUnless(agenttest.IS_ROOT and SETPRIV, "needs root and setpriv to connect as another uid")
class PeerCred(unittest.TestCase):
    def probe_python(self):
        # an interpreter uid nobody can run (pyenv builds under /root may not be)
        for py in (sys.executable, "/usr/bin/python3"):
            r = subprocess.run([SETPRIV, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                                "--clear-groups", py, "-c", "pass"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            if r.returncode == 0:
                return py
        self.fail("no Python that uid %d can run for the peer probe" % NOBODY)

    def probe(self, path, as_nobody):
        cmd = [self.probe_python(), "-c", PEER_PROBE, path]
        if as_nobody:
            cmd = [SETPRIV, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"] + cmd
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.decode().strip()

    def test_other_uid_refused(self):
        t = Target(self)
        pub = tempfile.mkdtemp(prefix="pmt-agent-peer-")
        self.addCleanup(shutil.rmtree, pub, True)
        os.chmod(pub, 0o755)
        link = os.path.join(pub, "agent.sock")
        os.link(t.path, link)                 # same inode, reachable by nobody
        self.addCleanup(os.chmod, t.path, 0o600)
        os.chmod(link, 0o666)
        # the file permissions let nobody connect; SO_PEERCRED must refuse it
        self.assertEqual(self.probe(link, as_nobody=True), "reply b''")
        # the same path is answered for our own uid
        self.assertIn('"ok":true', self.probe(link, as_nobody=False))
        os.chmod(t.path, 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(t.path).st_mode), 0o600)
        self.assertTrue(t.alive())
        self.assertTrue(t.client().ok("status"))
        os.unlink(link)


if __name__ == "__main__":
    agenttest.main()
