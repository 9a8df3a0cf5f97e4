"""Helpers for end-to-end tests against real services (uWSGI, gunicorn, pools).

A service runs in its own process group (start_new_session), so that cleanup
kills the master, its workers and anything they started, whatever happens.
"""
import os
import signal
import socket
import subprocess
import time
import urllib.request


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    r = subprocess.run(["pgrep", "-P", str(pid)], stdout=subprocess.PIPE, text=True)
    return sorted(int(x) for x in r.stdout.split())


def start_group(tc, argv, **kw):
    """Popen(argv) in a process group of its own, killed whole in tc's cleanup."""
    p = subprocess.Popen(argv, start_new_session=True, **kw)

    def kill():
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)
        for stream in (p.stdin, p.stdout, p.stderr):
            if stream:
                stream.close()
    tc.addCleanup(kill)
    return p


def get_int(tc, port, path="/", timeout=10):
    """One HTTP request; the number the application answers."""
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        tc.assertEqual(r.status, 200)
        return int(r.read())


def wait_serving(tc, proc, port, name, log, timeout=20):
    """The first answer of a service starting on port; fails with its log."""
    deadline = time.monotonic() + timeout
    while True:
        tc.assertIsNone(proc.poll(), "%s exited. %s" % (name, log()))
        try:
            return get_int(tc, port, timeout=2)
        except OSError:
            if time.monotonic() > deadline:
                tc.fail("%s does not answer on port %d. %s" % (name, port, log()))
            time.sleep(0.2)
