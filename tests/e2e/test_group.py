"""End-to-end: a whole service watched at once (the Processes view, `ps`).

A real gunicorn (Debian's) runs a small WSGI application with 3 sync
workers. One request makes the worker that serves it start a background
thread that keeps memory on one line of the application (a cache warmer
gone wrong): that worker grows, the others do not. pmt-top, started on the
master, opens the Processes view and must put that worker first within
10 s; Enter watches it, and its Top view names the line. Killing the worker
makes gunicorn start another: the view follows.

A multiprocessing.Pool(4) program, killed worker and all, is followed the
same way by `pmt-top ps --json`.

Everything started here is in its own process group, killed in cleanup.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from service import children, free_port, get_int, start_group, wait_serving
from tui import BIN, PYTHON, TuiTestCase, vmrss

GUNICORN = shutil.which("gunicorn")
UWSGI = shutil.which("uwsgi")
UWSGI_PLUGIN = "/usr/lib/uwsgi/plugins/python3_plugin.so"

MARK = "# the warmer's line"
APP = """\
import os
import threading
import time

_warm = []


def _warmer():
    while True:
        _warm.append(b"w" * (64 << 10))  %s
        time.sleep(0.05)


def application(environ, start_response):
    if environ["PATH_INFO"] == "/warm":
        threading.Thread(target=_warmer, daemon=True).start()
    body = b"%%d\\n" %% os.getpid()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
""" % MARK

POOL = """\
import multiprocessing, sys, time

def work(x):
    return x * x

if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(work, range(100))
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        time.sleep(600)
"""


def ps_json(pid, env, duration=1):
    r = subprocess.run([BIN, "ps", str(pid), "--json", "--duration", str(duration)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    if r.returncode != 0:
        raise AssertionError("pmt-top ps failed: %s" % r.stderr)
    return json.loads(r.stdout)


@unittest.skipUnless(GUNICORN, "gunicorn is not installed (apt-get install gunicorn)")
class Gunicorn(TuiTestCase):

    def setUp(self):
        super().setUp()
        runtime = os.path.join(self.tmpdir, "run")
        os.mkdir(runtime, 0o700)
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=runtime)
        with open(os.path.join(self.tmpdir, "warmapp.py"), "w") as f:
            f.write(APP)
        self.line = next(i for i, l in enumerate(APP.splitlines(), 1) if MARK in l)
        self.port = free_port()
        self.log = os.path.join(self.tmpdir, "gunicorn.log")
        with open(self.log, "w") as log:
            self.master = start_group(
                self, [GUNICORN, "--workers", "3", "--bind", "127.0.0.1:%d" % self.port, "--chdir", self.tmpdir,
                       "warmapp:application"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_serving(self, self.master, self.port, "gunicorn", self.gunicorn_log, timeout=30)
        self.workers = self.wait_workers(3)
        self.wait_settled(self.workers)

    def gunicorn_log(self):
        with open(self.log, errors="replace") as f:
            return "gunicorn's log ends:\n" + "".join(f.readlines()[-20:])

    def get(self, path="/", timeout=10):
        return get_int(self, self.port, path, timeout)

    def wait_settled(self, pids, timeout=60):
        """Until no worker's RSS moves by more than 256 KiB in 0.5 s: a worker
        still booting (slowly, on a loaded machine) grows as fast as a leak."""
        deadline = time.monotonic() + timeout
        before = {p: vmrss(p) for p in pids}
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = {p: vmrss(p) for p in pids}
            if all(abs(now[p] - before[p]) <= 256 * 1024 for p in pids):
                return
            before = now
        self.fail("the workers' RSS did not settle in %d s: %s" % (timeout, before))

    def wait_workers(self, n, timeout=30, without=()):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kids = [k for k in children(self.master.pid) if k not in without]
            if len(kids) == n:
                return kids
            time.sleep(0.1)
        self.fail("expected %d workers under the master %d, found %s. %s"
                  % (n, self.master.pid, children(self.master.pid), self.gunicorn_log()))

    def rows(self, screen):
        """{pid: row text} of the Processes view's table, in screen order."""
        lines = screen.splitlines()
        head = [i for i, l in enumerate(lines) if "GROWTH/MIN" in l and "PID" in l]
        self.assertTrue(head, screen)
        out = []
        for l in lines[head[0] + 1:]:
            m = re.match(r"^[ *](\d+) ", l)
            if not m:
                break
            out.append((int(m.group(1)), l))
        return out

    def first_row(self, screen):
        rows = self.rows(screen)
        return rows[0][0] if rows else None

    def test_the_growing_worker_first_then_its_line_then_its_successor(self):
        self.open_terminal(width=140, height=40, env={"PMT_TOP_RUNTIME_DIR": self.env["PMT_TOP_RUNTIME_DIR"]})
        self.run_pmt(str(self.master.pid))
        s = self.wait_for(lambda s: "GROWTH/MIN" in s and len(self.rows(s)) == 4, what="the group's four rows")
        self.assertIn("pid %d and its descendants" % self.master.pid, s)
        roles = {pid: row.split()[1] for pid, row in self.rows(s)}
        self.assertEqual(roles[self.master.pid], "master", s)
        for w in self.workers:
            self.assertEqual(roles[w], "worker", s)
        # Nothing was loaded anywhere by looking.
        self.assertEqual(os.listdir(self.env["PMT_TOP_RUNTIME_DIR"]), [])

        grower = self.get("/warm")
        self.assertIn(grower, self.workers)
        t0 = time.monotonic()
        s = self.wait_for(lambda s: self.first_row(s) == grower, timeout=10,
                          what="worker %d first within 10 s" % grower)
        took = time.monotonic() - t0
        row = dict(self.rows(s))[grower]
        self.assertRegex(row, r"\+\d[\d.]* (KiB|MiB) ", "its growth shows: " + row)
        print("the growing worker was ranked first %.1f s after the request" % took)

        # Enter watches it (the selection is on the first row); the Top
        # view names the warmer's line.
        self.keys("Enter")
        self.wait_for(lambda s: re.search(r"^PID %d " % grower, s, re.M), what="the Overview of %d" % grower)
        self.go_to_view("Top")
        where = "warmapp.py:%d" % self.line
        self.wait_for(lambda s: where in s, timeout=30, what="%s in the Top view" % where)

        # G goes back; the worker killed, gunicorn starts another: it comes in,
        # and the dead one is shown as exited until it drops out.
        self.keys("G")
        self.wait_for(lambda s: "GROWTH/MIN" in s, what="the Processes view again")
        os.kill(grower, signal.SIGKILL)
        successor = [w for w in self.wait_workers(3, without=(grower,)) if w not in self.workers]
        self.assertEqual(len(successor), 1)
        s = self.wait_for(lambda s: successor[0] in dict(self.rows(s)), timeout=10,
                          what="the new worker %d in the view" % successor[0])
        self.wait_for(lambda s: grower not in dict(self.rows(s)), timeout=20,
                      what="the killed worker %d gone from the view" % grower)
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, timeout=20, what="pmt-top to quit")
        # The service goes on serving.
        self.assertIn(self.get(), children(self.master.pid))

    def test_group_snapshots_in_the_tui(self):
        runtime = self.env["PMT_TOP_RUNTIME_DIR"]
        self.open_terminal(width=150, height=40, env={"PMT_TOP_RUNTIME_DIR": runtime})
        self.run_pmt(str(self.master.pid))
        self.wait_for(lambda s: "GROWTH/MIN" in s and len(self.rows(s)) == 4, what="the group's four rows")
        self.keys("S")
        self.wait_for(lambda s: "group snapshot 1: 4 processes" in s, timeout=60, what="the first group snapshot")
        grower = self.get("/warm")
        time.sleep(3)
        self.keys("S")
        self.wait_for(lambda s: "group snapshot 2: 4 processes" in s, timeout=60, what="the second one")
        self.go_to_view("Snapshots")
        self.wait_for(lambda s: "group: 4 processes" in s, what="the group snapshots in the list")
        self.keys("Home", "b", "Down", "Enter")
        s = self.wait_for(lambda s: "GREW IN" in s and "LOCATION" in s, what="the diff of the two")
        self.assertIn("4 processes in both", s)
        lines = s.splitlines()
        head = next(i for i, l in enumerate(lines) if "GREW IN" in l and "LOCATION" in l)
        first = lines[head + 1]
        self.assertIn("warmapp.py:%d" % self.line, first)
        self.assertIn("1 of 3 workers", first)
        self.assertRegex(first, r"^ +\+\d[\d.]* MiB ")
        self.keys("q")
        s = self.wait_for(lambda s: "EXIT=0" in s, timeout=30, what="pmt-top to quit")
        # What the group snapshots switched on, they switched off.
        for w in self.workers:
            self.assertIn("stopped tracemalloc in pid %d" % w, s)
            r = subprocess.run([BIN, "trace", str(w), "status", "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=self.env, timeout=60)
            self.assertFalse(json.loads(r.stdout)["tracing"], r.stdout)
        self.assertIn(grower, self.workers)

    def test_one_key_loads_every_agent_and_switches_nothing_on(self):
        runtime = self.env["PMT_TOP_RUNTIME_DIR"]
        self.open_terminal(width=140, height=40, env={"PMT_TOP_RUNTIME_DIR": runtime})
        self.run_pmt(str(self.master.pid))
        self.wait_for(lambda s: "GROWTH/MIN" in s and len(self.rows(s)) == 4, what="the group's four rows")
        self.keys("A")
        every = sorted([self.master.pid] + self.workers)

        def loaded(s):
            return all(re.search(r" (there|watched) ", row) for _, row in self.rows(s))
        self.wait_for(loaded, timeout=60, what="an agent in every process")
        self.assertEqual(sorted(os.listdir(runtime)), sorted("%d.sock" % p for p in every))
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, timeout=20, what="pmt-top to quit")
        # The workers' agents stay, idle: no profiler, no tracing was started.
        for w in self.workers:
            r = subprocess.run([BIN, "trace", str(w), "status", "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=self.env, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            st = json.loads(r.stdout)
            self.assertFalse(st["tracing"], st)
            self.assertFalse(st.get("profile", {}).get("running"), st)
        self.assertIn(self.get(), self.workers)

    def test_ps_ranks_the_growing_worker(self):
        grower = self.get("/warm")
        data = ps_json(self.master.pid, self.env, duration=3)
        procs = data["processes"]
        self.assertEqual(data["mode"], "tree")
        self.assertEqual(data["root"], self.master.pid)
        self.assertEqual(sorted(p["pid"] for p in procs), sorted([self.master.pid] + self.workers))
        self.assertEqual(procs[0]["pid"], grower, procs)
        # 64 KiB every 50 ms: about 75 MiB a minute. The others are far
        # below, though a worker a few seconds old may still be settling in
        # (a few MiB a minute).
        self.assertGreater(procs[0]["growth_per_min"], 20 << 20, procs[0])
        for p in procs[1:]:
            self.assertLess(p["growth_per_min"], procs[0]["growth_per_min"] / 4, p)
        self.assertEqual(sum(p["rss"] for p in procs), data["total_rss"])
        by_pid = {p["pid"]: p for p in procs}
        self.assertEqual(by_pid[self.master.pid]["role"], "master")
        self.assertTrue(all(by_pid[w]["role"] == "worker" and by_pid[w]["ppid"] == self.master.pid
                            for w in self.workers))
        self.assertTrue(all(isinstance(p["python"], str) and p["python"].startswith("3.") for p in procs))
        self.assertFalse(any(p["agent"] for p in procs))
        # The table says the same, first row first.
        r = subprocess.run([BIN, "ps", str(self.master.pid), "--duration", "2"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=self.env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^PID +ROLE +AGE +RSS +GROWTH/MIN +PY +AGENT +COMMAND$")
        self.assertRegex(lines[1], r"^%d +worker " % grower)
        self.assertRegex(lines[-1], r"^4 processes running, RSS \d[\d.]* MiB in all")


    def pmt(self, *args, timeout=120):
        return subprocess.run([BIN] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=self.env, timeout=timeout)

    def test_group_snapshots_and_their_diff_say_which_workers_grew(self):
        old, new = os.path.join(self.tmpdir, "old"), os.path.join(self.tmpdir, "new")
        r = self.pmt("snapshot", "--tree", self.master.pid, "--start-tracing", "-o", old)
        self.assertEqual(r.returncode, 0, r.stderr)
        every = sorted([self.master.pid] + self.workers)
        self.assertEqual(sorted(os.listdir(old)), sorted(["%d.json" % p for p in every] + ["merged.json"]))
        grower = self.get("/warm")
        # The warmer keeps 64 KiB every 50 ms: a few MiB by the next one.
        time.sleep(3)
        r = self.pmt("snapshot", "--tree", self.master.pid, "-o", new, "--json", "--top", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        top = json.loads(r.stdout)
        self.assertEqual(sorted(top["processes"]), every)
        where = ["%s/warmapp.py" % self.tmpdir, self.line]
        self.assertEqual(top["groups"][0]["frames"][0], where, top)
        self.assertEqual(top["groups"][0]["in"], 1)

        r = self.pmt("diff", old, new, "--top", "5")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn("4 processes in both", lines[0])
        head = next(i for i, l in enumerate(lines) if l.split()[:2] == ["SIZE", "DIFF"])
        first = lines[head + 1]
        self.assertIn("warmapp.py:%d:" % self.line, first)
        self.assertIn(MARK, first)
        self.assertRegex(first, r"^ +\+\d[\d.]* MiB .* 1 of 3 workers  ")
        r = self.pmt("diff", old, new, "--json")
        d = json.loads(r.stdout)
        e = d["entries"][0]
        self.assertEqual((e["grew_in"], e["grew_in_root"], d["root"]), (1, False, self.master.pid))
        # The grower's own file says the same as the sum.
        r = self.pmt("diff", os.path.join(old, "%d.json" % grower), os.path.join(new, "%d.json" % grower),
                     "--json", "--top", "1")
        self.assertEqual(json.loads(r.stdout)["entries"][0]["size_diff"], e["size_diff"])
        for w in self.workers:
            self.pmt("trace", w, "stop", timeout=30)

    def test_group_snapshot_bad_input(self):
        afile = os.path.join(self.tmpdir, "afile")
        open(afile, "w").close()
        r = self.pmt("snapshot", "--tree", self.master.pid, "-o", afile)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertIn("a group snapshot is a directory", r.stderr)
        r = self.pmt("snapshot", "--tree", self.master.pid, "--socket", "/tmp/x.sock")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--socket names one agent", r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        empty = os.path.join(self.tmpdir, "empty")
        os.mkdir(empty)
        r = self.pmt("diff", empty, empty)
        self.assertEqual(r.returncode, 1)
        self.assertIn("holds no snapshot", r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        # Nothing was loaded: no tracing was asked for, and the directory
        # error came first.
        self.assertEqual(os.listdir(self.env["PMT_TOP_RUNTIME_DIR"]), [])


@unittest.skipUnless(UWSGI and os.path.exists(UWSGI_PLUGIN),
                     "uWSGI with its python3 plugin is not installed (apt-get install uwsgi-core uwsgi-plugin-python3)")
class Uwsgi(TuiTestCase):

    def test_ps_knows_an_embedded_python(self):
        app = os.path.join(self.tmpdir, "app.py")
        with open(app, "w") as f:
            f.write("def application(environ, start_response):\n"
                    "    start_response('200 OK', [])\n"
                    "    return [b'ok']\n")
        with open(os.path.join(self.tmpdir, "uwsgi.log"), "w") as log:
            p = start_group(self, [UWSGI, "--plugin", "python3", "--master", "--processes", "2",
                                   "--http-socket", "127.0.0.1:%d" % free_port(), "--wsgi-file", app],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while len(children(p.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(len(children(p.pid)), 2)
        data = ps_json(p.pid, dict(os.environ), duration=0.5)
        procs = data["processes"]
        self.assertEqual(len(procs), 3, procs)
        # The executable is uwsgi; Python is known by the libpython it maps.
        for q in procs:
            self.assertIn("uwsgi", q["command"])
            self.assertRegex(q["python"], r"^3\.\d+$", q)
        self.assertEqual(sorted(q["role"] for q in procs), ["master", "worker", "worker"])


class Pool(TuiTestCase):

    def start_pool(self):
        script = os.path.join(self.tmpdir, "pool.py")
        with open(script, "w") as f:
            f.write(POOL)
        p = start_group(self, [PYTHON, script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline(), "ready\n")
        return p

    def kill_and_wait_replaced(self, p, victim):
        """SIGKILL a worker; the pool's handler thread starts another."""
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = children(p.pid)
            if len(now) == 4 and victim not in now:
                return
            time.sleep(0.1)

    def test_ps_follows_a_respawned_pool_worker(self):
        p = self.start_pool()
        env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir)
        data = ps_json(p.pid, env, duration=0.5)
        workers = sorted(q["pid"] for q in data["processes"] if q["ppid"] == p.pid)
        self.assertEqual(len(workers), 4, data)
        self.assertEqual(workers, children(p.pid))
        # The pool's handler thread replaces a dead worker; ps sees the
        # new one, not the old one.
        self.kill_and_wait_replaced(p, workers[0])
        data = ps_json(p.pid, env, duration=0.5)
        running = sorted(q["pid"] for q in data["processes"] if q["ppid"] == p.pid and not q["exited"])
        self.assertEqual(running, children(p.pid))
        self.assertNotIn(workers[0], running)
        self.assertEqual(len(set(running) - set(workers)), 1)

    def test_the_view_follows_a_respawned_pool_worker(self):
        p = self.start_pool()
        workers = children(p.pid)
        self.assertEqual(len(workers), 4)
        self.open_terminal(env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt(str(p.pid))

        def pids(s):
            return [int(l.split()[0].lstrip("*")) for l in s.splitlines() if l[:1] in " *" and l[1:2].isdigit()]
        self.wait_for(lambda s: "GROWTH/MIN" in s and sorted(pids(s)) == sorted([p.pid] + workers),
                      what="the pool's five rows")
        self.kill_and_wait_replaced(p, workers[0])
        new = [w for w in children(p.pid) if w not in workers]
        self.assertEqual(len(new), 1)
        self.wait_for(lambda s: new[0] in pids(s), what="the new worker %d" % new[0])
        self.wait_for(lambda s: workers[0] not in pids(s), timeout=20, what="the dead worker gone")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, timeout=20, what="pmt-top to quit")

    def test_watch_a_list_of_pids(self):
        p = self.start_pool()
        two = children(p.pid)[:2]
        self.open_terminal(env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt(str(two[0]), str(two[1]))
        s = self.wait_for(lambda s: "GROWTH/MIN" in s and "2 processes:" in s, what="the list of two")
        rows = [l for l in s.splitlines() if l[:1] in " *" and l[1:2].isdigit()]
        self.assertEqual(sorted(int(l.split()[0].lstrip("*")) for l in rows), two, s)
        # Nothing else of the tree: not the parent.
        self.assertNotIn(" %d " % p.pid, "\n".join(rows))
        self.keys("Enter")
        self.wait_for(lambda s: re.search(r"^PID (%d|%d) " % tuple(two), s, re.M), what="the Overview of one")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, timeout=20, what="pmt-top to quit")

    def test_ps_of_a_list_says_which_pids_are_not_there(self):
        p = self.start_pool()
        r = subprocess.run([BIN, "ps", "-p", "%d,4194303" % p.pid, "--json", "--duration", "0.2"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "pmt-top: no process with pid 4194303: left out\n")
        data = json.loads(r.stdout)
        self.assertEqual(data["mode"], "list")
        self.assertEqual([q["pid"] for q in data["processes"]], [p.pid])

    def test_bad_input(self):
        for args, code, text in ((["ps", "99999999999"], 2, "not a process id"),
                                 (["ps", "4194303"], 3, "no process with pid 4194303"),
                                 (["ps"], 2, "which process?"),
                                 (["ps", "-p", "1,x"], 2, "\"x\" is not a process id"),
                                 (["4194303", "4194302"], 3, "no process with pid 4194303")):
            r = subprocess.run([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, code, (args, r.stderr))
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn(text, r.stderr)


if __name__ == "__main__":
    unittest.main()
