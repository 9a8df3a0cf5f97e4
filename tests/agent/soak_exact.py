"""Soak: the exact path (tracemalloc top and snapshot) watched the way the Top
view watches it, in a thread-per-request server under load, must not grow
the target, add threads, or stall it.

The target is soak_server.py with tracemalloc on from its start (1 frame) and
300,000 live objects from 1,000 lines. Three phases of the same HTTP load:
a warm-up to the server's steady state, unwatched, then watched by a client
asking `top` (50 rows) every 0.5 s and a full `snapshot` every 3 s. A
control client asks `status` every 20 ms throughout. Checks, from measurements in this one run:
  - RSS after the watched phase <= RSS after the unwatched one + 32 MiB.
    One request's trace list is ~25 MiB here, and a watched phase makes some
    30 requests (the report says how many): a leak per request would pass
    the bound many times over.
    What stays is the allocators' (pymalloc arenas pinned by the server's
    objects allocated between two slices, glibc's free lists): measured +0.6
    to +22 MiB over runs, the report says how much;
  - the thread count comes back to the same value;
  - no control request and no HTTP request stalls (2 s; the latencies of
    both phases are in the report);
  - every top and snapshot answered, with the ballast's lines first.
"""
import sys
import threading
import time
import unittest

import agenttest
from soak_profiler import MiB, SoakBase, threads_of

REQUESTS = 500
BALLAST = 300000


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1e3


@unittest.skipUnless(agenttest.EXPECT_NATIVE, "no native build for this interpreter")
class SoakExact(SoakBase):
    ENV = {"SOAK_TRACE": "1", "SOAK_BALLAST": str(BALLAST)}

    def watch(self, stop, seen, errors):
        c = agenttest.Client(self, self.agent_path)
        n = 0
        try:
            while not stop.is_set():
                if n % 6 == 5:
                    r = c.ok("snapshot", key="lineno")
                else:
                    r = c.ok("top", key="lineno", limit=50)
                seen.append((r["ntraces"], r["groups"][0]["frames"][0][0], r["took_ms"],
                             r["cpu_ms"]))
                n += 1
                stop.wait(0.5)
        except Exception as e:
            errors.append(repr(e))
        finally:
            c.close()

    def test_top_view_on_a_busy_server(self):
        base_threads = threads_of(self.proc.pid)
        self.load(REQUESTS)
        rss_warm, _ = self.settle(base_threads)
        lat_off = self.load(REQUESTS)
        http_off = self.http_lat
        rss_off, thr_off = self.settle(base_threads)
        stop, seen, errors = threading.Event(), [], []
        w = threading.Thread(target=self.watch, args=(stop, seen, errors))
        w.start()
        try:
            lat_on = self.load(REQUESTS)
            for _ in range(20):         # a fast machine: watched long enough to count
                if len(seen) >= 6:
                    break
                lat_on += self.load(REQUESTS // 5)
        finally:
            stop.set()
            w.join(120)
        http_on = self.http_lat
        rss_on, thr_on = self.settle(base_threads)
        cpu = sum(x[3] for x in seen)
        report = ("rss warmed up %.1f MiB, unwatched %.1f MiB, watched %.1f MiB; threads %d/%d; %d requests watched "
                  "(%d traces, %.0f ms CPU in all, largest %.0f ms); status p50/p95/max "
                  "unwatched %.0f/%.0f/%.0f ms, watched %.0f/%.0f/%.0f ms; HTTP p50/p95/max "
                  "unwatched %.0f/%.0f/%.0f ms, watched %.0f/%.0f/%.0f ms"
                  % (rss_warm / MiB, rss_off / MiB, rss_on / MiB, thr_off, thr_on, len(seen),
                     seen[-1][0] if seen else 0, cpu, max([x[3] for x in seen] or [0]),
                     pct(lat_off, .5), pct(lat_off, .95), pct(lat_off, 1),
                     pct(lat_on, .5), pct(lat_on, .95), pct(lat_on, 1),
                     pct(http_off, .5), pct(http_off, .95), pct(http_off, 1),
                     pct(http_on, .5), pct(http_on, .95), pct(http_on, 1)))
        sys.stderr.write(report + "\n")
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(seen), 6, report)
        for ntraces, first, _, _ in seen:
            self.assertGreaterEqual(ntraces, BALLAST)
            self.assertTrue(first.endswith("soak_ballast.py"), first)
        self.assertLessEqual(rss_on, rss_off + 32 * MiB, report)
        self.assertEqual(thr_on, thr_off, report)
        for lat in (lat_off, lat_on, http_off, http_on):
            self.assertLess(max(lat), 2.0, report)


if __name__ == "__main__":
    unittest.main()
