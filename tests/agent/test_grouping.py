"""grouping.group(): native and pure-Python paths agree with each other and with
Snapshot.statistics() on the same traces (in this process, tracing on)."""
import os
import sys
import tracemalloc
import unittest

import agenttest

sys.path.insert(0, agenttest.AGENT_DIR)
if agenttest.NATIVE_DIR:
    sys.path.insert(1, agenttest.NATIVE_DIR)
from pmt_agent import grouping  # noqa: E402


def recurse(keep, depth, size):
    if depth:
        return recurse(keep, depth - 1, size)
    keep.append(bytes(size))


class Grouping(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tracemalloc.start(4)
        cls.keep = []
        for i in range(30000):
            recurse(cls.keep, i % 7, 1 + i % 300)     # depths 4..6 truncate to equal frames
        cls.traces = tracemalloc._get_traces()
        cls.snapshot = tracemalloc.Snapshot(cls.traces, 4)
        tracemalloc.stop()

    @classmethod
    def tearDownClass(cls):
        del cls.keep, cls.traces, cls.snapshot

    def test_native_loaded_as_expected(self):
        self.assertEqual(grouping.native is not None, agenttest.EXPECT_NATIVE)

    def test_matches_stdlib(self):
        for key, cumulative in (("lineno", False), ("lineno", True), ("filename", False),
                                ("filename", True), ("traceback", False)):
            for use_native in (True, False):
                groups, total_size, total_count = grouping.group(self.traces, key, cumulative,
                                                                 use_native=use_native)
                mine = dict((tuple(f), (s, c)) for s, c, f in groups)
                std = dict((tuple((fr.filename, fr.lineno) for fr in reversed(st.traceback)),
                            (st.size, st.count))
                           for st in self.snapshot.statistics(key, cumulative))
                self.assertEqual(mine, std, (key, cumulative, use_native))
                if not cumulative:
                    self.assertEqual(total_count, len(self.traces))
                    self.assertEqual(total_size, sum(t[1] for t in self.traces))

    def test_filters_match_stdlib(self):
        here = os.path.abspath(__file__)
        cases = [([here], []), ([], [here]), (["*.py"], ["*/unittest/*"]), (["*test_grouping.pyc"], [])]
        for include, exclude in cases:
            filters = ([tracemalloc.Filter(True, p) for p in include]
                       + [tracemalloc.Filter(False, p) for p in exclude])
            std = self.snapshot.filter_traces(filters).statistics("lineno")
            groups, total_size, _ = grouping.group(self.traces, "lineno", False, include, exclude)
            self.assertEqual(sorted((s, c) for s, c, _ in groups), sorted((x.size, x.count) for x in std))
            self.assertEqual(total_size, sum(x.size for x in std))

    def test_top_order_and_limit(self):
        groups, _, _ = grouping.group(self.traces, "traceback")
        top = grouping.top(groups, 3)
        self.assertEqual(top, sorted(groups, key=lambda g: (g[0], g[1]), reverse=True)[:3])
        self.assertEqual(len(grouping.top(groups, None)), len(groups))

    def test_bad_input(self):
        if grouping.native is None:
            self.skipTest("native module not loaded")
        for bad in (None, [1], [(0, 1)], [(0, -1, ())], [(0, "x", ())]):
            with self.assertRaises((TypeError, ValueError, OverflowError)):
                grouping.native.group_tracebacks(bad)
        self.assertEqual(grouping.native.group_tracebacks([]), [])


if __name__ == "__main__":
    agenttest.main()
