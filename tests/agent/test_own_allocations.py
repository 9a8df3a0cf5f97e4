"""None of the agent's own allocations appear in top or snapshot.

A real target runs an application module of its own: two worker threads
keep a bounded cache of dicts, as a service's request handlers would. Only
then does a client start tracemalloc (1 frame, then 10), and three other
clients hammer the agent meanwhile: top with include and exclude patterns,
full snapshots by traceback, status, a subscription. Every row of every
snapshot must then be the application's: with one frame, allocations made by
the json module, heapq, re, fnmatch or tokenize on the agent's behalf carried
those files' names (json/decoder.py:353 was the largest), and the agent's own
files were only filtered on the latest frame.
"""
import os
import sys
import threading
import unittest

import agenttest

APP = """\
import threading
import time

CACHE = {}
LOCK = threading.Lock()


def handle(i):
    key = "user:%d" % (i % 5000)
    with LOCK:
        CACHE[key] = {"id": i, "name": "n" * (i % 40), "tags": [i, i + 1]}
        if len(CACHE) > 4000:
            CACHE.pop(next(iter(CACHE)))


def worker(first):
    i = first
    while True:
        handle(i)
        i += 1
        if i % 200 == 0:
            time.sleep(0.002)


for n in range(2):
    threading.Thread(target=worker, args=(n * 100000,), daemon=True).start()
"""

ROUNDS = 12


def hammer(client, requests, stop, errors):
    n = 0
    try:
        while not stop.is_set() or n < 4:
            cmd, args = requests[n % len(requests)]
            rep = client.request(cmd, **args)
            if not rep.get("ok") and rep["error"]["code"] not in ("busy", "not_tracing"):
                errors.append(rep["error"])
            n += 1
    except Exception as e:      # reported by the test, not lost in the thread
        errors.append(repr(e))


class OwnAllocations(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.target = agenttest.Target(self)
        self.app = os.path.join(self.target.tmp, "shop_app.py")
        with open(self.app, "w") as f:
            f.write(APP)
        self.target.call("import runpy; runpy.run_path(%r)" % self.app)

    def rows_while_hammered(self, nframe, key):
        main = self.target.client()
        main.ok("tracemalloc_start", nframe=nframe)
        self.addCleanup(lambda: main.request("tracemalloc_stop"))
        stop, errors = threading.Event(), []
        loads = [
            [("top", {"key": "lineno", "limit": 20, "include": ["*shop_*.py", "*/json/*"],
                      "exclude": ["*/re/*", "*[a-z]_compiler.py"]}),
             ("status", {})],
            [("snapshot", {"key": "traceback"}), ("top", {"key": "filename", "cumulative": True})],
            [("status", {}), ("subscribe", {"interval": 0.1}), ("status", {})],
        ]
        threads = []
        for requests in loads:
            c = self.target.client()
            t = threading.Thread(target=hammer, args=(c, requests, stop, errors))
            t.start()
            threads.append(t)
        rows = []
        try:
            for _ in range(ROUNDS):
                rows.extend(main.ok("snapshot", key=key)["groups"])
        finally:
            stop.set()
            for t in threads:
                t.join(120)
        self.assertEqual(errors, [])
        self.assertTrue(rows, "the application allocated nothing while traced")
        main.ok("tracemalloc_stop")
        return rows

    def foreign(self, rows):
        out = set((r["frames"][0][0], r["frames"][0][1], r["size"]) for r in rows
                  if r["frames"][0][0] != self.app)
        if sys.version_info < (3, 11):
            # Before 3.11 a code object keeps the frame of its last call for
            # the next: the first frame of a new thread is allocated where
            # no Python frame runs yet, so it has no traceback (the same for
            # every thread, the application's too). One per code object.
            unknown = [x for x in out if x[0] == "<unknown>"]
            self.assertLessEqual(sum(x[2] for x in unknown), 8192, unknown)
            out.difference_update(unknown)
        return sorted(out)[:20]

    def test_one_frame(self):
        rows = self.rows_while_hammered(1, "lineno")
        self.assertEqual(self.foreign(rows), [])

    def test_ten_frames(self):
        rows = self.rows_while_hammered(10, "traceback")
        self.assertEqual(self.foreign(rows), [])
        agent = os.path.join(agenttest.AGENT_DIR, "")
        for r in rows:
            self.assertFalse([f for f in r["frames"] if f[0].startswith(agent)], r)


if __name__ == "__main__":
    unittest.main()
