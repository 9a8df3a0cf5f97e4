"""grouping.group(): native and pure-Python paths agree with each other and with
Snapshot.statistics() on the same traces (in this process, tracing on)."""
import fnmatch
import json
import os
import random
import re
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

    def folds(self, *args, **kw):
        """The same fold by every path this run has: native (if loaded) and Python."""
        paths = [False] + ([True] if grouping.native is not None else [])
        return [grouping.fold(list(self.traces), *args, use_native=n, **kw) for n in paths]

    def test_fold_matches_group_and_top(self):
        for key, cumulative in (("lineno", False), ("lineno", True), ("filename", False),
                                ("filename", True), ("traceback", False)):
            groups, total_size, total_count = grouping.group(self.traces, key, cumulative,
                                                             use_native=False)
            for limit in (None, 7, 1):
                want = [g[:2] for g in grouping.top(groups, limit)]
                for f in self.folds(key, cumulative, limit=limit):
                    self.assertEqual(f.info, (len(groups), total_size, total_count))
                    rows = f.rows()
                    self.assertEqual([list(r[:2]) for r in rows], want, (key, cumulative, limit))
                    self.assertEqual([r[2][0] for r in rows], list(f.heads()))
                    if limit is None:
                        self.assertEqual(sorted((r[0], r[1], tuple(r[2])) for r in rows),
                                         sorted((g[0], g[1], tuple(g[2])) for g in groups))

    def test_fold_bytes_are_the_python_encoding(self):
        # Lines with quotes, controls, a lone surrogate and non-ASCII text.
        for key in ("lineno", "traceback", "filename"):
            for f in self.folds(key):
                rows = f.rows()
                lines = None if key == "filename" else [
                    'x = "\\"\t\x00\x1f\ud800 \u00e9 %d' % i for i in range(len(rows))]
                data = f.encode(lines)
                py = grouping._PyFold(rows, f.info).encode(lines)
                self.assertEqual(data, py, key)
                self.assertEqual(len(json.loads(data.decode("utf-8"))), len(rows))

    def test_fold_leaves_the_agent_out_and_empties_the_list(self):
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")
        for use_native in ([False, True] if grouping.native is not None else [False]):
            traces = list(self.traces)
            f = grouping.fold(traces, "lineno", agent=here, use_native=use_native)
            self.assertEqual(traces, [])
            mine = [t for t in self.traces if not any(fr[0].startswith(here) for fr in t[2])]
            self.assertEqual(f.info[1:], (sum(t[1] for t in mine), len(mine)))
            self.assertFalse([r for r in f.rows() if r[2][0][0].startswith(here)])

    def test_glob_is_fnmatch(self):
        rnd = random.Random(7)
        alphabet = "ab-]![\\*?^&~|c.z/"
        for _ in range(20000):
            pat = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8)))
            name = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 6)))
            try:
                want = fnmatch.fnmatchcase(name, pat)
            except re.error:        # 3.8 refuses reversed ranges; they match nothing here
                continue
            self.assertEqual(bool(grouping.compile_glob(pat)(name)), want, (pat, name))

    def test_bad_input(self):
        if grouping.native is None:
            self.skipTest("native module not loaded")
        for bad in (None, [1], [(0, 1)], [(0, -1, ())], [(0, "x", ())]):
            with self.assertRaises((TypeError, ValueError, OverflowError)):
                grouping.native.group_tracebacks(bad)
        self.assertEqual(grouping.native.group_tracebacks([]), [])
        for bad in ([1], [(0, 1)], [(0, -1, ())], [(0, 1, (("f", "x"),))], [(0, 1, ((1, 1),))],
                    [(0, 1, "tb")]):
            f = grouping.native.fold_new(bad, "lineno", False, None, None, None)
            with self.assertRaises((TypeError, ValueError, OverflowError)):
                while not grouping.native.fold_step(f):
                    pass
        with self.assertRaises(ValueError):
            grouping.native.fold_new([], "traceback", True, None, None, None)
        f = grouping.native.fold_new([], "lineno", False, None, None, 5)
        with self.assertRaises(RuntimeError):        # rows before the fold is done
            grouping.native.fold_rows(f)
        while not grouping.native.fold_step(f):
            pass
        self.assertEqual(grouping.native.fold_info(f), (0, 0, 0))
        self.assertEqual(grouping.native.fold_encode(f, None), b"[]")


if __name__ == "__main__":
    agenttest.main()
