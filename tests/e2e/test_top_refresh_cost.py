"""End-to-end: the Top view refreshes no more often than --max-cost allows.

A real Python process keeps about 500,000 tracemalloc traces over 2,500
lines, so that one `top` costs it a good part of a second. The real binary,
run with the smallest cap (0.1 % of a core), must say in the Top view's
header how often it refreshes and what one refresh costs, the interval
being cost / cap within the rounding of the figures shown; and the agent,
whose counters say how many requests it answered, must see no automatic
`top` while the interval has not elapsed, and one at once when r is pressed.

Nothing here depends on how fast the machine is: a slower machine only
makes a refresh dearer and the interval longer, and the assertions compare
figures that pmt-top and the agent report.
"""
import json
import os
import re
import socket
import subprocess
import time
import unittest

from tui import PYTHON, SOURCE, TuiTestCase

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dear_target.py")
AGENT_DIR = os.path.join(SOURCE, "agent")
CAP = 0.1           # --max-cost, percent of one core
MIN_INTERVAL = 2.0  # the Top view's own shortest interval (-i 0.5: 4 x 0.5 s)
WATCH = 8.0         # seconds watched for automatic refreshes

HEADER = re.compile(r"refresh every ([0-9.]+) s \(one (?:costs|takes) ([0-9.]+) ms of the target's "
                    r"(?:CPU|time); cap ([0-9.]+) % of a core\)")


def header(screen):
    """(interval s, cost ms, cap %) from the Top view's header, wrapped
    over as many rows as it needs, or None."""
    m = HEADER.search(" ".join(" ".join(screen.split("\n")).split()))
    return tuple(float(g) for g in m.groups()) if m else None


class Agent:
    """A second client of the target's agent, for its counters."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(60)
        self.sock.connect(path)
        self.f = self.sock.makefile("rwb")
        self.id = 0
        self.call("hello", {"protocol": 1})

    def call(self, cmd, args=None):
        self.id += 1
        self.f.write(json.dumps({"id": self.id, "cmd": cmd, "args": args or {}}).encode() + b"\n")
        self.f.flush()
        reply = json.loads(self.f.readline())
        assert reply.get("ok"), reply
        return reply["result"]

    def answered(self):
        """Requests the agent answered before this one (its own reply is
        counted once it is sent)."""
        return self.call("status")["clients"]["answered"]

    def close(self):
        self.f.close()
        self.sock.close()


class TopRefreshCost(TuiTestCase):

    def test_dear_refreshes_come_at_cost_over_cap(self):
        env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir, PMT_AGENT_DIR=AGENT_DIR)
        p = subprocess.Popen([PYTHON, TARGET, self.tmpdir], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=env, text=True)
        self.addCleanup(self._kill, p)
        ready = p.stdout.readline().split()
        self.assertEqual(ready[:1], ["ready"])
        self.assertGreater(int(ready[2]), 400000, "the target keeps fewer traces than planned")

        # 80 columns: the header's refresh line wraps.
        self.open_terminal(80, 30, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt("--no-profile", "--max-cost", str(CAP), str(p.pid))
        self.wait_for(lambda s: "agent Python" in s, timeout=60, what="the agent connection")
        self.go_to_view("Top")
        screen = self.wait_for(header, timeout=60, what="the refresh line after the first refresh")
        every, cost, cap = header(screen)
        self.assertEqual(cap, CAP)
        self.assertGreater(every, MIN_INTERVAL, screen)
        # every = cost / cap: the interval is shown to the second, the cost
        # to the millisecond (each rounded to the nearest).
        want = cost / 1000.0 / (cap / 100.0)
        self.assertLessEqual(abs(every - want), 0.5 + 0.0005 / (cap / 100.0) + 1e-6,
                             "interval %g s, cost %g ms, cap %g %%:\n%s" % (every, cost, cap, screen))

        agent = Agent(os.path.join(self.tmpdir, "%d.sock" % p.pid))
        self.addCleanup(agent.close)
        before, t0 = agent.answered(), time.monotonic()
        least = every
        while time.monotonic() - t0 < WATCH:
            time.sleep(0.5)
            seen = header(self.screen())
            if seen:
                least = min(least, seen[0])
        after, t1 = agent.answered(), time.monotonic()
        tops = after - before - 1  # less the first status itself
        # pmt-top asks nothing else on its own in the Top view without the
        # profiler, so these are its automatic refreshes: at most one per
        # interval shown (a slower machine makes fewer).
        self.assertLessEqual(tops, int((t1 - t0) / least) + 1,
                             "%d top requests in %.1f s at one per %g s" % (tops, t1 - t0, least))
        self.assertGreater(least, 2 * WATCH, "the cap should put refreshes minutes apart")

        # r refreshes at once: the agent answers a top long before the
        # interval shown (minutes) is over.
        self.keys("r")
        count = after
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = agent.answered()
            if now - count - 1 >= 1:
                break
            count = now
            time.sleep(0.5)
        else:
            self.fail("no top request within 60 s of r (the interval is %g s)" % least)
        self.assertLess(time.monotonic() - t1, least)


if __name__ == "__main__":
    unittest.main()
