"""Shared helpers for the agent tests: real target processes, real sockets.

Target starts tests/agent/target.py with the interpreter running the tests,
a fresh PMT_TOP_RUNTIME_DIR and the agent on its path; Client speaks the
protocol to it. Every process and temporary file is registered for cleanup
with the TestCase, so it goes away even when the test fails.

Environment (set by tests/agent/CMakeLists.txt, with defaults for running by
hand): PMT_AGENT_DIR (the agent package's directory), PMT_NATIVE_DIR (native
modules, may be empty), PMT_EXPECT_NATIVE (1 when the agent must load the
native module), PMT_AGENT_NO_NATIVE (1 for the pure-Python fallback run).
"""

import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
AGENT_DIR = os.environ.get("PMT_AGENT_DIR") or os.path.join(SOURCE_DIR, "agent")
NATIVE_DIR = os.environ.get("PMT_NATIVE_DIR", "")
NO_NATIVE = bool(os.environ.get("PMT_AGENT_NO_NATIVE"))
EXPECT_NATIVE = os.environ.get("PMT_EXPECT_NATIVE") == "1" and not NO_NATIVE
TARGET = os.path.join(HERE, "target.py")
IS_ROOT = os.getuid() == 0


def mkdtemp(tc, prefix="pmt-agent-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    tc.addCleanup(shutil.rmtree, d, True)
    return d


def base_env(extra=None):
    env = dict(os.environ)
    env["PMT_AGENT_DIR"] = AGENT_DIR
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONSTARTUP", None)
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def kill_pid(proc):
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass
    try:
        proc.wait(10)
    except Exception:
        pass
    for f in (proc.stdin, proc.stdout, proc.stderr):
        try:
            if f is not None:
                f.close()
        except Exception:
            pass


class LineReader(object):
    """Read lines from a file descriptor with a timeout."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line within %.1f s" % timeout)
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line


class Target(object):
    """A real Python process (this interpreter) running target.py with the agent.

    prefix is a command put before the interpreter (e.g. setpriv to run the
    target as another user); python replaces this interpreter.
    """

    def __init__(self, tc, trace=0, env=None, start=True, runtime_dir=None, args=(),
                 prefix=(), python=None):
        self.tc = tc
        self.tmp = mkdtemp(tc)
        self.runtime_dir = runtime_dir or os.path.join(self.tmp, "run")
        extra = {"PMT_TOP_RUNTIME_DIR": self.runtime_dir, "TARGET_TRACE": str(trace),
                 "TARGET_START": "1" if start else "0"}
        if env:
            extra.update(env)
        self.stderr_path = os.path.join(self.tmp, "stderr")
        with open(self.stderr_path, "wb") as err:
            cmd = list(prefix) + [python or sys.executable, TARGET] + list(args)
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, env=base_env(extra))
        tc.addCleanup(kill_pid, self.proc)
        self.pid = self.proc.pid
        self.reader = LineReader(self.proc.stdout.fileno())
        line = self.reader.readline(30)
        if line is None:
            raise AssertionError("target died at start: %s" % self.stderr())
        self.ready = json.loads(line.decode())
        self.path = self.ready.get("ready")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def call(self, code, timeout=60):
        """Run code in the target (result = ... sets the value returned)."""
        self.proc.stdin.write((json.dumps({"exec": code}) + "\n").encode())
        self.proc.stdin.flush()
        line = self.reader.readline(timeout)
        if line is None:
            raise AssertionError("target exited: rc=%s stderr=%s" % (self.proc.poll(), self.stderr()))
        rep = json.loads(line.decode())
        if not rep["ok"]:
            raise AssertionError("target failed: %s" % rep["error"])
        return rep["result"]

    def send(self, code):
        """Send code without waiting for its answer."""
        self.proc.stdin.write((json.dumps({"exec": code}) + "\n").encode())
        self.proc.stdin.flush()

    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout=20):
        return self.proc.wait(timeout)

    def client(self, hello=True):
        return Client(self.tc, self.path, hello=hello)


class ProtocolError(AssertionError):
    pass


class Client(object):
    """A protocol client on a real Unix socket."""

    def __init__(self, tc, path, hello=True, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        tc.addCleanup(self.close)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.pushes = []
        self.next_id = 1
        if hello:
            rep = self.request("hello", protocol=1, client="agent-tests")
            if not rep.get("ok"):
                raise ProtocolError("hello failed: %r" % rep)
            self.hello = rep["result"]

    def close(self):
        try:
            self.sock.close()
        except Exception:
            pass

    def peer(self):
        raw = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", raw)

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_frame(self, timeout=30):
        """Next frame as an object; None at EOF."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line.decode("utf-8"))

    def reply(self, timeout=30):
        """Next reply (pushes are stored in self.pushes)."""
        while True:
            f = self.read_frame(timeout)
            if f is None or "push" not in f:
                return f
            self.pushes.append(f)

    def request(self, cmd, _args=None, **args):
        rid = self.next_id
        self.next_id += 1
        msg = {"id": rid, "cmd": cmd}
        a = dict(_args or {})
        a.update(args)
        if a:
            msg["args"] = a
        self.send_raw((json.dumps(msg) + "\n").encode())
        rep = self.reply()
        if rep is None:
            raise ProtocolError("connection closed while waiting for %s" % cmd)
        if rep.get("id") != rid:
            raise ProtocolError("reply id %r for request %d" % (rep.get("id"), rid))
        return rep

    def ok(self, cmd, **args):
        rep = self.request(cmd, **args)
        if not rep.get("ok"):
            raise ProtocolError("%s failed: %r" % (cmd, rep))
        return rep["result"]

    def error(self, cmd, **args):
        rep = self.request(cmd, **args)
        if rep.get("ok") is not False:
            raise ProtocolError("%s did not fail: %r" % (cmd, rep))
        return rep["error"]["code"]

    def at_eof(self, timeout=10):
        """True when the server closed the connection (after any frames)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                f = self.read_frame(max(0.01, end - time.monotonic()))
            except socket.timeout:
                return False
            if f is None:
                return True
        return False


def wait_for(pred, timeout=10, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def main():
    unittest.main(verbosity=2)


class ClassScope(object):
    """Lets setUpClass use Target/Client: cleanups run at class teardown."""

    def __init__(self, cls):
        self.addCleanup = cls.addClassCleanup
