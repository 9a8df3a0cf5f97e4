"""End-to-end: pmt-top against a real uWSGI worker.

uWSGI (Debian's, with its python3 plugin) runs a small WSGI application
with a master and one worker; the application keeps a growing cache of
distinct objects, all allocated on one line. Real HTTP requests make it
grow. pmt-top attaches to the worker with the default method (the worker's
main thread waits in epoll/accept, outside Python, between requests),
within a few seconds, and names that line among the top entries; the
worker goes on serving requests afterwards, and it is the same worker.

Everything uWSGI starts is in its own process group, killed in cleanup
whatever happens.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from service import children, free_port, get_int, wait_serving
from tui import BIN

UWSGI = shutil.which("uwsgi")
PLUGIN = "/usr/lib/uwsgi/plugins/python3_plugin.so"

MARK = "# the uWSGI cache line"
APP = """\
_cache = {}
_seq = 0


def application(environ, start_response):
    global _seq
    for _ in range(400):
        _seq += 1
        _cache[_seq] = bytearray(1024)  %s
    body = b"%%d\\n" %% len(_cache)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
""" % MARK
PER_REQUEST = 400  # objects the cache gains per request

ATTACH_LIMIT_S = 5.0


@unittest.skipUnless(UWSGI and os.path.exists(PLUGIN),
                     "uWSGI with its python3 plugin is not installed "
                     "(apt-get install uwsgi-core uwsgi-plugin-python3)")
class UwsgiWorker(unittest.TestCase):

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="pmt-uwsgi-")
        self.addCleanup(shutil.rmtree, self.tmpdir, True)
        runtime = os.path.join(self.tmpdir, "run")
        os.mkdir(runtime, 0o700)
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=runtime)
        self.app = os.path.join(self.tmpdir, "cacheapp.py")
        with open(self.app, "w") as f:
            f.write(APP)
        self.line = APP.splitlines().index(next(l for l in APP.splitlines() if MARK in l)) + 1
        self.port = free_port()
        self.log = os.path.join(self.tmpdir, "uwsgi.log")
        with open(self.log, "w") as log:
            self.uwsgi = subprocess.Popen(
                [UWSGI, "--plugin", "python3", "--master", "--processes", "1", "--enable-threads",
                 "--http-socket", "127.0.0.1:%d" % self.port, "--wsgi-file", self.app, "--chdir", self.tmpdir],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True)
        self.addCleanup(self.kill_uwsgi)
        self.served = self.wait_serving()
        self.worker = self.wait_worker()

    def kill_uwsgi(self):
        """The master, its workers, anything they started: one process group."""
        try:
            os.killpg(self.uwsgi.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.uwsgi.wait(timeout=10)

    def uwsgi_log(self):
        with open(self.log, errors="replace") as f:
            return "uWSGI's log ends:\n" + "".join(f.readlines()[-20:])

    def get(self, timeout=10):
        """One request; the cache size the worker answers."""
        return get_int(self, self.port, timeout=timeout)

    def wait_serving(self):
        return wait_serving(self, self.uwsgi, self.port, "uWSGI", self.uwsgi_log)

    def wait_worker(self):
        for _ in range(100):
            kids = children(self.uwsgi.pid)
            if len(kids) == 1:
                return kids[0]
            time.sleep(0.1)
        self.fail("expected one worker under the master %d, found %s" % (self.uwsgi.pid, kids))

    def pmt(self, *args, timeout=120):
        return subprocess.run([BIN] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=self.env, timeout=timeout)

    def top_rows(self, out):
        """(row, LOCATION cell) of each row of a snapshot's or profile's table."""
        lines = out.splitlines()
        head = [i for i, l in enumerate(lines) if l.split()[-1:] == ["LOCATION"]]
        self.assertTrue(head, out)
        col = lines[head[0]].index("LOCATION")
        return [(l, l[col:]) for l in lines[head[0] + 1:] if re.match(r"\s*\d[\d.]* (B|KiB|MiB|GiB) ", l)]

    def assert_names_the_cache_line(self, out):
        rows = self.top_rows(out)
        self.assertTrue(rows, out)
        where = "%s:%d:" % (os.path.basename(self.app), self.line)
        hits = [l for l, loc in rows[:5] if where in loc]
        self.assertTrue(hits, "%s is not among the top entries:\n%s" % (where, out))
        self.assertIn(MARK, hits[0])
        return hits[0]

    def test_default_attach_to_a_waiting_worker_finds_the_cache_line(self):
        for _ in range(5):
            self.get()
        # The worker now waits for the next request, in epoll/accept.
        self.snapshot_with_tracing()
        # The same worker (not a respawned one) goes on serving, and its
        # cache went on growing by the requests made meanwhile.
        self.assertEqual(children(self.uwsgi.pid), [self.worker], self.uwsgi_log())
        before = self.get()
        after = self.get()
        self.assertEqual(after, before + PER_REQUEST)
        self.assertEqual(children(self.uwsgi.pid), [self.worker], self.uwsgi_log())

    def snapshot_with_tracing(self):
        """tracemalloc on from the attach; the requests after it show."""
        t0 = time.monotonic()
        r = self.pmt("snapshot", self.worker, "--top", 5, "--start-tracing")
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr + self.uwsgi_log())
        self.assertLess(took, ATTACH_LIMIT_S, "attaching to the worker took %.1f s" % took)
        for _ in range(20):
            self.get()
        r = self.pmt("snapshot", self.worker, "--top", 5)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.splitlines()[0], r"^snapshot of pid %d " % self.worker)
        hit = self.assert_names_the_cache_line(r.stdout)
        # 20 requests of 400 KiB objects: megabytes, and the largest line.
        self.assertRegex(hit, r"^\s*\d[\d.]* MiB ")
        self.assertIn(MARK, self.top_rows(r.stdout)[0][1])
        self.pmt("trace", self.worker, "stop", timeout=30)

    def test_sampled_profile_of_a_waiting_worker_finds_the_cache_line(self):
        for _ in range(5):
            self.get()
        self.profile_by_line()
        self.assertEqual(children(self.uwsgi.pid), [self.worker], self.uwsgi_log())

    def profile_by_line(self):
        """The sampled profiler for a few seconds while requests come."""
        stop = threading.Event()

        def load():
            while not stop.is_set():
                try:
                    self.get()
                except OSError:
                    pass
                time.sleep(0.02)
        t = threading.Thread(target=load, daemon=True)
        t.start()
        try:
            t0 = time.monotonic()
            r = self.pmt("profile", self.worker, "--key", "lineno", "--duration", 3)
            took = time.monotonic() - t0 - 3
        finally:
            stop.set()
            t.join(timeout=15)
        self.assertEqual(r.returncode, 0, r.stderr + self.uwsgi_log())
        self.assertLess(took, ATTACH_LIMIT_S, "attaching to the worker took %.1f s" % took)
        self.assert_names_the_cache_line(r.stdout)


if __name__ == "__main__":
    unittest.main()
