"""Soak: the heap walks (`types`, `why`) asked for again and again in a
thread-per-request server under load must not grow the target, leave
threads, fail requests or stall its control answers.

One target (soak_server.py: ThreadingHTTPServer, 4 busy threads, a GIL-heavy
loop). Two phases of load: REQUESTS with no heap walk, then REQUESTS while a
second client asks `types` and `why` (by type, the server's cached rows)
back to back. Checks, from this one run:
  - every walk answered, with its longest GIL hold reported;
  - RSS after the walks <= RSS after the phase without + 2 MiB (the walks'
    lists are freed at each answer);
  - the thread count comes back to its start after each phase;
  - every HTTP request answered 200 (load() checks), no control request
    stalls; the request latencies of both phases are in the report.
"""
import statistics
import sys
import threading
import unittest

from agenttest import Client
from soak_profiler import MiB, SoakBase, threads_of

REQUESTS = 1000


class SoakHeap(SoakBase):
    def test_walks_under_load(self):
        base_threads = threads_of(self.proc.pid)
        self.load(300)                                  # the server's steady state
        self.settle(base_threads)
        lat_off = self.load(REQUESTS)
        http_off = list(self.http_lat)
        rss_off, thr_off = self.settle(base_threads)
        walker = Client(self, self.agent_path)
        done = threading.Event()
        answers = []

        def walk():
            while not done.is_set():
                t = walker.ok("types", limit=20)
                w = walker.ok("why", type="dict", samples=4, budget=5)
                answers.append((t["pause_max"], w["pause_max"], t["tracked"], len(w["chains"])))

        th = threading.Thread(target=walk)
        th.start()
        try:
            lat_on = self.load(REQUESTS)
        finally:
            done.set()
            th.join()
            walker.close()
        http_on = list(self.http_lat)
        rss_on, thr_on = self.settle(base_threads)
        report = ("%d walk pairs; longest GIL hold types %.1f ms, why %.1f ms; %d objects tracked; "
                  "rss without walks %.1f MiB, with %.1f MiB; threads %d/%d; request median "
                  "%.1f / %.1f ms, max %.1f / %.1f ms; status latency max %.1f / %.1f ms"
                  % (len(answers), max(a[0] for a in answers) * 1e3,
                     max(a[1] for a in answers) * 1e3, answers[-1][2], rss_off / MiB, rss_on / MiB,
                     thr_off, thr_on, statistics.median(http_off) * 1e3,
                     statistics.median(http_on) * 1e3, max(http_off) * 1e3, max(http_on) * 1e3,
                     max(lat_off) * 1e3, max(lat_on) * 1e3))
        sys.stderr.write(report + "\n")
        self.assertGreaterEqual(len(answers), 3, report)
        self.assertTrue(all(a[3] > 0 for a in answers), answers)     # chains found each time
        self.assertLessEqual(rss_on, rss_off + 2 * MiB, report)
        self.assertEqual(thr_on, thr_off, report)
        # No stall: a loaded scheduler alone can pass 200 ms (see soak_profiler).
        for lat in (lat_off, lat_on):
            self.assertLess(max(lat), 2.0, report)


if __name__ == "__main__":
    unittest.main()
