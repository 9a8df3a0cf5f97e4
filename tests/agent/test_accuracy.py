"""The agent's top-N matches the target's own tracemalloc statistics (within 1%)."""
import unittest

import agenttest
from agenttest import Target, ClassScope

STDLIB_STATS = r"""
import tracemalloc
_snap = tracemalloc.take_snapshot()
if FILTERS:
    _snap = _snap.filter_traces([tracemalloc.Filter(inc, pat) for inc, pat in FILTERS])
result = [[s.size, s.count, [[f.filename, f.lineno] for f in s.traceback][::-1]]
          for s in _snap.statistics(KEY, CUMULATIVE)]
del _snap
"""

BIG = 64 * 1024
WORKLOAD = ("*workload.py", "gen_*.py")


def as_map(groups):
    return dict((tuple(tuple(f) for f in frames), (size, count)) for size, count, frames in groups)


class Accuracy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Target(ClassScope(cls), trace=5)
        cls.t.call("import workload; workload.mixed(); workload.many_files(100, 700)")
        cls.c = cls.t.client()
        cls.lines = dict((m, cls.t.call("result = workload.line_of(%r)" % m))
                         for m in ("MARK_A", "MARK_B", "MARK_DEEP", "MARK_CALL_A1"))
        cls.workload = cls.t.call("result = workload.__file__")

    def compare(self, key, cumulative=False, include=WORKLOAD, exclude=(), need_big=True):
        # Only the workload's allocations are stable between the two
        # measurements (the agent, the driver and imports allocate meanwhile).
        args = dict(key=key, cumulative=cumulative)
        if include:
            args["include"] = list(include)
        if exclude:
            args["exclude"] = list(exclude)
        agent = self.c.ok("snapshot", **args)
        filters = [(True, p) for p in include] + [(False, p) for p in exclude]
        code = "KEY = %r; CUMULATIVE = %r; FILTERS = %r\n" % (key, cumulative, filters) + STDLIB_STATS
        stdlib = as_map(self.t.call(code))
        mine = as_map([(g["size"], g["count"], g["frames"]) for g in agent["groups"]])
        big_agent = [k for k, v in mine.items() if v[0] >= BIG]
        big_std = [k for k, v in stdlib.items() if v[0] >= BIG]
        self.assertTrue(big_agent or not need_big, "no large group for %s" % key)
        if not cumulative:
            # every group of the workload (all >= 700 bytes) on both sides; smaller
            # ones may be transient (file reads, the driver) and are compared in total
            self.assertEqual(set(k for k, v in mine.items() if v[0] >= 700),
                             set(k for k, v in stdlib.items() if v[0] >= 700))
        for k in set(big_agent) | set(big_std):
            self.assertIn(k, mine, "%s group %r missing from the agent" % (key, k))
            self.assertIn(k, stdlib, "%s group %r missing from the stdlib" % (key, k))
            (s1, c1), (s2, c2) = mine[k], stdlib[k]
            self.assertAlmostEqual(s1, s2, delta=0.01 * s2, msg="%s size of %r" % (key, k))
            self.assertAlmostEqual(c1, c2, delta=0.01 * c2, msg="%s count of %r" % (key, k))
        if not cumulative:
            total = sum(v[0] for v in stdlib.values())
            self.assertAlmostEqual(agent["total_size"], total, delta=0.01 * total)
            self.assertEqual(agent["total_size"], sum(v[0] for v in mine.values()))
        top = self.c.ok("top", limit=5, **args)["groups"]
        order = sorted(mine.items(), key=lambda kv: kv[1], reverse=True)
        self.assertEqual(len(top), min(5, len(mine)))
        self.assertEqual([(g["size"], g["count"]) for g in top],
                         sorted([(g["size"], g["count"]) for g in top], reverse=True))
        if len(order) > 1 and order[0][1][0] > 1.1 * order[1][1][0]:
            self.assertEqual(tuple(tuple(f) for f in top[0]["frames"]), order[0][0])
            self.assertAlmostEqual(top[0]["size"], order[0][1][0], delta=0.01 * order[0][1][0])
        return mine

    def test_lineno(self):
        mine = self.compare("lineno")
        a = mine[((self.workload, self.lines["MARK_A"]),)]
        self.assertGreaterEqual(a[0], 2000 * 1000 + 500 * 2000 + 300 * 5000)
        b = mine[((self.workload, self.lines["MARK_B"]),)]
        self.assertGreaterEqual(b[0], 1000 * 3000)
        self.assertGreaterEqual(b[1], 1000)

    def test_lineno_cumulative(self):
        mine = self.compare("lineno", cumulative=True)
        call = mine[((self.workload, self.lines["MARK_CALL_A1"]),)]
        self.assertGreaterEqual(call[0], 2000 * 1000)
        deep = mine[((self.workload, self.lines["MARK_DEEP"]),)]
        self.assertGreaterEqual(deep[0], 500 * 2000)

    def test_filename(self):
        mine = self.compare("filename")
        self.assertGreaterEqual(mine[((self.workload, 0),)][0], 7500000)

    def test_filename_cumulative(self):
        self.compare("filename", cumulative=True)

    def test_traceback(self):
        mine = self.compare("traceback")
        deep = [k for k in mine if len(k) == 5 and k[1] == (self.workload, self.lines["MARK_DEEP"])]
        self.assertEqual(len(deep), 1)
        self.assertEqual(deep[0][0], (self.workload, self.lines["MARK_A"]))   # most recent first

    def test_filters(self):
        mine = self.compare("lineno", include=["*workload.py"])
        self.assertFalse([k for k in mine if not k[0][0].endswith("workload.py")])
        mine = self.compare("filename", include=["gen_*", "*workload*"], exclude=["gen_0000*"])
        self.assertEqual(len(mine), 1 + 100 - 10)
        mine = self.compare("filename", include=WORKLOAD, exclude=["*workload.py"], need_big=False)
        self.assertNotIn(((self.workload, 0),), mine)
        self.assertEqual(len(mine), 100)


if __name__ == "__main__":
    agenttest.main()
