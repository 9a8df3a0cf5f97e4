"""Every command of docs/protocol.md, its errors and argument checks, on a real agent."""
import os
import sys
import time
import unittest

import agenttest
from agenttest import Target, ClassScope


class Handshake(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Target(ClassScope(cls))

    def test_socket_path(self):
        self.assertEqual(self.t.path, os.path.join(self.t.runtime_dir, "%d.sock" % self.t.pid))

    def test_hello(self):
        c = self.t.client()
        h = c.hello
        self.assertEqual(h["protocol"], 1)
        self.assertEqual(h["pid"], self.t.pid)
        self.assertEqual(h["ppid"], os.getpid())
        self.assertEqual(h["python"], "%d.%d.%d" % sys.version_info[:3])
        self.assertEqual(h["implementation"], "cpython")
        self.assertEqual(os.path.realpath(h["executable"]), os.path.realpath(sys.executable))
        self.assertEqual(h["argv"], [agenttest.TARGET])
        self.assertIsInstance(h["started"], float)
        self.assertLessEqual(h["started"], time.time())
        self.assertIs(h["native"], agenttest.EXPECT_NATIVE)
        for cap in ("status", "tracemalloc", "top", "snapshot", "subscribe", "detach"):
            self.assertIn(cap, h["capabilities"])
        self.assertEqual("reset_peak" in h["capabilities"], sys.version_info >= (3, 9))
        self.assertEqual(c.peer()[0], self.t.pid)
        self.assertEqual((h["socket"], h["socket_note"]), (self.t.path, None))

    def test_handshake_required(self):
        c = self.t.client(hello=False)
        for cmd in ("status", "top", "detach", "subscribe", "functions"):
            self.assertEqual(c.error(cmd), "handshake")
        self.assertEqual(c.error("hello", protocol=2), "version")
        self.assertEqual(c.error("status"), "handshake")
        self.assertEqual(c.error("hello"), "bad_args")
        self.assertEqual(c.error("hello", protocol="1"), "bad_args")
        self.assertEqual(c.error("hello", protocol=1, client=5), "bad_args")
        self.assertEqual(c.error("hello", protocol=1, extra=1), "bad_args")
        self.assertTrue(c.ok("hello", protocol=1))
        self.assertTrue(c.ok("status"))

    def test_unknown_command_and_ids(self):
        c = self.t.client()
        rep = c.request("frobnicate")
        self.assertEqual(rep["error"]["code"], "unknown_command")
        c.send_raw(b'{"id": 9007199254740991, "cmd": "status"}\n')
        self.assertEqual(c.reply()["id"], 9007199254740991)
        for bad in (b'{"id": -1, "cmd": "status"}', b'{"id": 9007199254740992, "cmd": "status"}',
                    b'{"id": true, "cmd": "status"}', b'{"id": 1.5, "cmd": "status"}',
                    b'{"cmd": "status"}'):
            c.send_raw(bad + b"\n")
            rep = c.reply()
            self.assertEqual((rep["id"], rep["error"]["code"]), (None, "bad_frame"), bad)
        c.send_raw(b'{"id": 4, "cmd": 7}\n')
        self.assertEqual(c.reply()["error"]["code"], "bad_frame")
        c.send_raw(b'{"id": 5, "cmd": "status", "args": [1]}\n')
        rep = c.reply()
        self.assertEqual((rep["id"], rep["error"]["code"]), (5, "bad_args"))
        c.send_raw(b'{"id": 6, "cmd": "status", "args": null}\n')
        self.assertTrue(c.reply()["ok"])

    def test_status(self):
        c = self.t.client()
        s = c.ok("status")
        self.assertIs(s["tracing"], False)
        self.assertEqual((s["traced_current"], s["traced_peak"], s["tracemalloc_memory"]), (0, 0, 0))
        for k in ("gc_counts", "gc_thresholds", "gc_collections"):
            self.assertIsInstance(s[k], list)
            self.assertEqual(len(s[k]), 3)
        self.assertTrue(s["gc_objects"] is None or len(s["gc_objects"]) == 3)
        self.assertGreaterEqual(s["threads"], 3)   # main, listener, this connection
        self.assertAlmostEqual(s["time"], time.time(), delta=5)
        self.assertEqual(c.error("status", x=1), "bad_args")

    def test_not_tracing(self):
        c = self.t.client()
        self.assertEqual(c.error("top"), "not_tracing")
        self.assertEqual(c.error("snapshot", key="filename"), "not_tracing")

    def test_subscribe(self):
        c = self.t.client()
        for bad in (0.01, 61, -1, "1", True, None):
            self.assertEqual(c.error("subscribe", interval=bad), "bad_args", bad)
        self.assertEqual(c.ok("subscribe", interval=0.05)["interval"], 0.05)
        t0 = time.monotonic()
        first = c.read_frame(5)
        self.assertEqual(first["push"], "status")
        self.assertIn("traced_current", first["data"])
        n = 1
        while time.monotonic() - t0 < 0.5:
            f = c.read_frame(5)
            self.assertEqual(f["push"], "status")
            n += 1
        self.assertGreaterEqual(n, 4)
        self.assertLessEqual(n, 15)
        c.ok("subscribe", interval=0)
        time.sleep(0.2)
        c.pushes = []
        c.ok("status")
        time.sleep(0.3)
        c.ok("status")
        self.assertLessEqual(len(c.pushes), 1)   # at most one sent before the stop


class Tracing(unittest.TestCase):
    def test_start_stop(self):
        t = Target(self)
        c = t.client()
        for bad in (0, 101, "5", 2.0, True):
            self.assertEqual(c.error("tracemalloc_start", nframe=bad), "bad_args", bad)
        s = c.ok("tracemalloc_start", nframe=7)
        self.assertEqual((s["tracing"], s["nframe"], s["started_by_agent"]), (True, 7, True))
        self.assertTrue(t.call("import tracemalloc; result = tracemalloc.is_tracing()"))
        self.assertEqual(c.ok("tracemalloc_start", nframe=7)["nframe"], 7)
        rep = c.request("tracemalloc_start", nframe=3)
        self.assertEqual(rep["error"]["code"], "bad_args")
        self.assertIn("7", rep["error"]["message"])
        t.call("import workload; workload.alloc_a(100, 10000)")
        s = c.ok("status")
        self.assertGreater(s["traced_current"], 1000000)
        self.assertGreater(s["tracemalloc_memory"], 0)
        if sys.version_info >= (3, 9):
            t.call("workload.clear()")
            s = c.ok("reset_peak")
            self.assertLess(s["traced_peak"], 1000000)
        else:
            self.assertEqual(c.error("reset_peak"), "unavailable")
        s = c.ok("tracemalloc_stop")
        self.assertEqual((s["tracing"], s["started_by_agent"], s["traced_current"]), (False, False, 0))
        self.assertFalse(t.call("result = tracemalloc.is_tracing()"))

    def test_started_by_target(self):
        t = Target(self, trace=4)
        c = t.client()
        s = c.ok("status")
        self.assertEqual((s["tracing"], s["nframe"], s["started_by_agent"]), (True, 4, False))
        self.assertEqual(c.error("tracemalloc_start"), "bad_args")   # default nframe 1 != 4
        self.assertIs(c.ok("tracemalloc_start", nframe=4)["started_by_agent"], False)


class Top(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Target(ClassScope(cls), trace=5)
        cls.t.call("import workload; workload.mixed()")
        cls.c = cls.t.client()

    def test_args(self):
        c = self.c
        bad = [dict(key="line"), dict(key=1), dict(cumulative=1), dict(limit=0), dict(limit=100001),
               dict(limit=True), dict(limit="5"), dict(key="traceback", cumulative=True),
               dict(include="*.py"), dict(include=[1]), dict(exclude=["x"] * 65),
               dict(exclude=["x" * 1025]), dict(nframe=3)]
        for args in bad:
            self.assertEqual(c.error("top", **args), "bad_args", args)
        self.assertEqual(c.error("snapshot", limit=5), "bad_args")
        self.assertEqual(c.ok("top", include=["x" * 1024] * 60)["groups"], [])

    def test_top_fields(self):
        r = self.c.ok("top", limit=3)
        self.assertEqual((r["key"], r["cumulative"], r["nframe"], r["pid"]), ("lineno", False, 5, self.t.pid))
        self.assertEqual(len(r["groups"]), 3)
        sizes = [(g["size"], g["count"]) for g in r["groups"]]
        self.assertEqual(sizes, sorted(sizes, reverse=True))
        self.assertGreaterEqual(r["ntraces"], r["total_count"])
        self.assertGreater(r["total_size"], sum(g["size"] for g in r["groups"]) - 1)
        self.assertGreater(r["traced_peak"], 0)
        self.assertGreaterEqual(r["took_ms"], 0)
        g = r["groups"][0]
        self.assertEqual(g["line"], "KEEP.append(bytearray(size))  # MARK_A")
        self.assertEqual(len(g["frames"]), 1)
        self.assertTrue(g["frames"][0][0].endswith("workload.py"))

    def test_filename_and_filters(self):
        r = self.c.ok("top", key="filename", include=["*workload.py"])
        self.assertEqual(len(r["groups"]), 1)
        g = r["groups"][0]
        self.assertEqual((g["frames"][0][1], g["line"]), (0, ""))
        self.assertEqual(r["total_size"], g["size"])
        r2 = self.c.ok("top", key="filename", exclude=["*workload.py"], limit=100000)
        self.assertFalse(any(x["frames"][0][0].endswith("workload.py") for x in r2["groups"]))
        r3 = self.c.ok("top", include=["*workload.py"], exclude=["*workload.py"])
        self.assertEqual((r3["groups"], r3["total_size"], r3["total_count"]), ([], 0, 0))

    def test_snapshot_returns_all_groups(self):
        snap = self.c.ok("snapshot", key="traceback", include=["*workload.py"])
        top = self.c.ok("top", key="traceback", include=["*workload.py"], limit=1)
        self.assertEqual(len(top["groups"]), 1)
        self.assertGreaterEqual(len(snap["groups"]), 5)
        self.assertEqual(sum(g["size"] for g in snap["groups"]), snap["total_size"])
        deep = [g for g in snap["groups"] if len(g["frames"]) == 5 and g["frames"][1][1] ==
                self.t.call("import workload; result = workload.line_of('MARK_DEEP')")]
        self.assertEqual(len(deep), 1)
        self.assertGreaterEqual(deep[0]["count"], 500)          # object + buffer each
        self.assertGreaterEqual(deep[0]["size"], 500 * 2000)


class Functions(unittest.TestCase):
    """functions_* dispatch to pmt_agent.functions when present, else unavailable."""

    def test_functions(self):
        t = Target(self)
        c = t.client()
        present = os.path.exists(os.path.join(agenttest.AGENT_DIR, "pmt_agent", "functions.py"))
        self.assertEqual("functions" in c.hello["capabilities"], present)
        self.assertEqual(c.error("functions", sort=5), "bad_args")
        self.assertEqual(c.error("functions", limit=0), "bad_args")
        self.assertEqual(c.error("functions_start", rss="x"), "bad_args")
        self.assertEqual(c.error("functions_stop", x=1), "bad_args")
        if not present:
            for cmd in ("functions_start", "functions_stop", "functions", "functions_reset"):
                self.assertEqual(c.error(cmd), "unavailable")
            return
        self.assertIsInstance(c.ok("functions_start"), dict)
        self.assertTrue(t.call("import pmt_agent.functions as f; result = f.running()"))
        self.assertIsInstance(c.ok("functions", limit=5), dict)
        self.assertEqual(c.error("functions", sort="no-such-column"), "bad_args")
        self.assertIsInstance(c.ok("functions_reset"), dict)
        self.assertIsInstance(c.ok("functions_stop"), dict)
        self.assertFalse(t.call("result = f.running()"))
        c.ok("functions_start")
        c.ok("detach")
        self.assertTrue(agenttest.wait_for(lambda: not os.path.exists(t.path)))
        self.assertFalse(t.call("result = f.running()"))


if __name__ == "__main__":
    agenttest.main()
