"""End-to-end: `pmt-top types` and `pmt-top why` against a real Flask app
(Debian's python3-flask, Werkzeug's thread-per-request server) whose response
cache never evicts, through the real binary: the class of the cached pages is
counted, the chain from the module's global to a page names the cache and
the key, what the cache retains is within 10 % of what it holds, the pages'
bodies are found by the line that allocated them (tracemalloc on), and bad
input fails with one line."""
import http.client
import json
import os
import re
import subprocess
import unittest

from tui import BIN, PYTHON, TuiTestCase

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flask_cache_app.py")
PAGES = 300


def body_line():
    with open(APP) as f:
        return next(n for n, text in enumerate(f, 1) if text.rstrip().endswith("# BODY"))


class HeapCli(TuiTestCase):

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir)
        try:
            subprocess.run([PYTHON, "-c", "import flask"], check=True, stderr=subprocess.DEVNULL)
        except subprocess.CalledProcessError:
            self.fail("python3-flask is missing: ./pmt.sh test installs it")
        self.app = subprocess.Popen([PYTHON, APP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    env=self.env, text=True)
        self.addCleanup(self._kill, self.app)
        self.port = int(self.app.stdout.readline().split()[1])

    def get(self, first, n):
        for i in range(first, first + n):
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            c.request("GET", "/page/%d" % i)
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            c.close()

    def pmt(self, *args):
        return subprocess.run([BIN] + [str(a) for a in args], env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=120)

    def ok_json(self, *args):
        r = self.pmt(*args, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_the_cache_is_named_with_what_it_retains(self):
        self.get(0, PAGES)
        types = self.ok_json("types", self.app.pid, "--top", "100000")
        rows = dict((r["type"], r) for r in types["rows"])
        self.assertEqual(rows["__main__.CachedPage"]["count"], PAGES)
        self.assertGreaterEqual(types["allocated_blocks"], types["tracked"])
        why = self.ok_json("why", self.app.pid, "--type", "__main__.CachedPage", "--samples", "6")
        self.assertEqual(why["matched"], PAGES)
        self.assertEqual(len(why["chains"]), 6)
        for ch in why["chains"]:
            self.assertEqual(ch["root"], {"root": "module", "name": "__main__"})
            self.assertEqual(ch["steps"][0]["via"], "global _CACHE")
            self.assertRegex(ch["steps"][1]["via"], r"^value for key \d+$")
        holder = why["holders"][0]
        self.assertEqual(holder["samples"], 6)
        # Each page keeps its object, its body (4 KiB and the markup) and its
        # etag; the cache keeps its table too.
        bodies = PAGES * (4096 + 30)
        self.assertGreater(holder["retained"]["bytes"], bodies)
        self.assertLess(holder["retained"]["bytes"], bodies * 1.10 + PAGES * 400)
        # The text form says the same in a line a person reads.
        text = self.pmt("why", self.app.pid, "--type", "__main__.CachedPage", "--samples", "2")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertRegex(text.stdout, r"2 of 2 samples: module __main__ -> global _CACHE \(dict, 300 items, "
                                      r"[0-9.]+ KiB\) retains ~[0-9.]+ (KiB|MiB) in [0-9,]+ objects \(estimate\)")
        self.assertIsNone(self.app.poll())

    def test_bodies_by_the_line_that_made_them(self):
        r = self.pmt("why", self.app.pid, "--line", "flask_cache_app.py:%d" % body_line())
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr.strip(), r"^pmt-top: pid \d+: .*tracemalloc.*$")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        t = self.pmt("trace", self.app.pid, "start")
        self.assertEqual(t.returncode, 0, t.stderr)
        self.get(1000, 100)         # traced from now on
        why = self.ok_json("why", self.app.pid, "--line", "flask_cache_app.py:%d" % body_line(),
                           "--samples", "4")
        self.assertEqual(why["matched"], 100)
        for ch in why["chains"]:
            self.assertEqual(ch["steps"][0]["via"], "global _CACHE")
            self.assertEqual(ch["steps"][-1]["type"], "bytes")
            self.assertEqual(ch["steps"][-1]["via"], "attribute body")
        self.pmt("trace", self.app.pid, "stop")

    def test_bad_input(self):
        for args in (["why", self.app.pid], ["why", self.app.pid, "--type", "x", "--line", "a.py:1"],
                     ["why", self.app.pid, "--line", "a.py"], ["why", self.app.pid, "--line", "a.py:0"],
                     ["why", self.app.pid, "--type", "x", "--samples", "65"], ["types", self.app.pid, "--top", "0"]):
            r = self.pmt(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        r = self.pmt("why", self.app.pid, "--type", "no.such.Class")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no object of type no.such.Class", r.stdout)
        r = self.pmt("types", 999999999)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIsNone(self.app.poll())


if __name__ == "__main__":
    unittest.main()
