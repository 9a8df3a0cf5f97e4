"""Soak: the allocator figures that every status carries (glibc's mallinfo2
and pymalloc's statistics, with the profiler's hook lifted off pymalloc for
the call), asked for fresh by every status (the most a client can make the
agent take them), must not grow the target, add threads, or slow it, in a
thread-per-request server under load.

Two soak targets (soak_server.py: ThreadingHTTPServer, 4 busy threads, a
GIL-heavy loop), each with the sampled profiler on: one with the figures off
(PMT_AGENT_NO_MEMORY=1), one with them on. Loaded in turn, twice each, while
a control client asks `status` every 20 ms. Checks, from this one run:
  - in the target with figures, the figures were taken again and again, and
    in the other one never;
  - RSS growth over the phases with figures <= growth without + 2 MiB;
  - the thread count comes back to its start after every phase;
  - no control request stalls (the latencies are in the report).
"""
import statistics
import sys
import unittest

import agenttest
from soak_profiler import MiB, SoakBase, threads_of

REQUESTS = 2000


@unittest.skipUnless(agenttest.EXPECT_NATIVE, "no native build for this interpreter")
class SoakMemory(SoakBase):
    ENV = {"PMT_AGENT_NO_MEMORY": "1"}
    # Every status asks for fresh figures: the most a client can make the
    # agent take (held to 1% of one core).
    STATUS_ARGS = {"fresh": True}

    def phase(self, t):
        self.proc, self.port, self.ctl = t["proc"], t["port"], t["ctl"]
        lat = self.load(REQUESTS)
        t["lat"] += lat
        t["http"] += self.http_lat
        t["times"].add(self.ctl.ok("status")["memory"]["time"])
        t["rss"], threads = self.settle(t["threads"])
        self.assertEqual(threads, t["threads"])

    def test_figures_under_load(self):
        targets = []
        for extra in (self.ENV, {}):
            if extra is not self.ENV:
                self.start_target(extra)
            self.ctl.ok("profile_start")
            t = {"proc": self.proc, "port": self.port, "ctl": self.ctl, "lat": [], "http": [],
                 "times": set(), "threads": threads_of(self.proc.pid)}
            self.load(200)      # to the server's steady state
            t["rss0"], _ = self.settle(t["threads"])
            targets.append(t)
        off, on = targets
        for _ in range(2):
            for t in (off, on):
                self.phase(t)
        mem_on = on["ctl"].ok("status")["memory"]
        mem_off = off["ctl"].ok("status")["memory"]
        report = ("rss growth without figures %.1f MiB, with %.1f MiB; %d takings seen "
                  "(last cost %.2f ms); status latency max %.1f / %.1f ms; request median "
                  "%.1f / %.1f ms"
                  % ((off["rss"] - off["rss0"]) / MiB, (on["rss"] - on["rss0"]) / MiB,
                     len(on["times"]), mem_on["cost"] * 1e3, max(off["lat"]) * 1e3,
                     max(on["lat"]) * 1e3, statistics.median(off["http"]) * 1e3,
                     statistics.median(on["http"]) * 1e3))
        sys.stderr.write(report + "\n")
        self.assertIsNotNone(mem_on["malloc"], mem_on)
        self.assertIsNotNone(mem_on["pymalloc"], mem_on)
        # Taken again in each phase: the two phases' ends saw two takings.
        self.assertEqual(len(on["times"]), 2, report)
        self.assertIsNone(mem_off["malloc"])
        self.assertEqual(mem_off["malloc_why"], "disabled by PMT_AGENT_NO_MEMORY")
        self.assertLessEqual(on["rss"] - on["rss0"], off["rss"] - off["rss0"] + 2 * MiB, report)
        for t in targets:
            self.assertLess(max(t["lat"]), 2.0, report)


if __name__ == "__main__":
    unittest.main()
