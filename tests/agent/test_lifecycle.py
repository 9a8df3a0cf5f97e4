"""Lifecycle: dying clients, connection churn, exit mid-snapshot, fork, detach, exit."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

import agenttest
from agenttest import Target, Client, wait_for

KILLED_CLIENT = r"""
import os, signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"id": 1, "cmd": "hello", "args": {"protocol": 1}}\n'
          b'{"id": 2, "cmd": "snapshot", "args": {"key": "traceback"}}\n'
          b'{"id": 3, "cmd": "subscribe", "args": {"interval": 0.05}}\n{"id": 4, "cmd": "st')
os.kill(os.getpid(), signal.SIGKILL)
"""

FORK = r"""
import os, sys, json, threading, tracemalloc, pmt_agent
from pmt_agent import profiler, functions
lfd = pmt_agent._server.sock.fileno()
listener = os.readlink("/proc/self/fd/%d" % lfd)
parent_path = pmt_agent.socket_path()
pid = os.fork()
if pid == 0:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink("/proc/self/fd/" + fd))
        except OSError:
            pass
    rep = {"running": pmt_agent.is_running(), "has_listener": listener in links,
           "parent_sock": os.path.exists(parent_path),
           "threads": [t.name for t in threading.enumerate()],
           "profiling": profiler.running(), "tracer": functions.running(),
           "tracing": tracemalloc.is_tracing()}
    own = pmt_agent.start()
    rep["own"] = own
    rep["own_exists"] = os.path.exists(own)
    pmt_agent.stop()
    rep["own_removed"] = not os.path.exists(own)
    with open(REPORT, "w") as f:
        json.dump(rep, f)
    sys.exit(0)
_, status = os.waitpid(pid, 0)
result = {"child": pid, "status": status, "profiling": profiler.running(), "tracer": functions.running(),
          "tracing": tracemalloc.is_tracing()}
"""


# Forks while four threads allocate (and take the profiler's and the tracer's
# locks) and the agent serves: every child must come out of fork with what
# the parent's clients switched on off, and exit, never hang on a lock a
# parent thread held.
FORK_UNDER_LOAD = r"""
import os, sys, threading, time
from pmt_agent import profiler, functions
stop = threading.Event()
def busy(n):
    keep = []
    while not stop.is_set():
        keep.append([str(i) * 3 for i in range(50)])
        if len(keep) > 200:
            del keep[:100]
threads = [threading.Thread(target=busy, args=(i,), daemon=True) for i in range(4)]
for th in threads:
    th.start()
bad = []
for k in range(FORKS):
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not (profiler.running() or functions.running()) else 3)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            status = -1
            break
        time.sleep(0.001)
    if status != 0:
        bad.append(status)
stop.set()
for th in threads:
    th.join()
result = {"bad": bad, "profiling": profiler.running(), "tracer": functions.running()}
"""


def agent_threads(t):
    return t.call("import threading; result = sorted(x.name for x in threading.enumerate() "
                  "if x.name.startswith('pmt-agent-'))")


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Lifecycle(unittest.TestCase):
    def test_client_killed_mid_request(self):
        t = Target(self, trace=3)
        t.call("import workload; workload.alloc_a(50000, 10)")
        base = agent_threads(t)
        for _ in range(3):
            p = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, t.path])
            self.addCleanup(agenttest.kill_pid, p)
            self.assertEqual(p.wait(30), -signal.SIGKILL)
        self.assertTrue(wait_for(lambda: agent_threads(t) == base, 20), agent_threads(t))
        self.assertTrue(t.client().ok("top", limit=3)["groups"])
        self.assertTrue(t.alive())

    def test_connect_cycles(self):
        t = Target(self, trace=1)
        c0 = t.client()
        base_threads = c0.ok("status")["threads"]
        base_fds = nfds(t.pid)
        for i in range(200):
            c = Client(self, t.path, hello=(i % 2 == 0))
            if i % 3 == 0:
                c.send_raw(b'{"id": 1, "cmd": "status"}\n')
            c.close()
        self.assertTrue(wait_for(lambda: c0.ok("status")["threads"] == base_threads, 20))
        self.assertTrue(wait_for(lambda: nfds(t.pid) == base_fds, 10), (nfds(t.pid), base_fds))
        self.assertTrue(c0.ok("top", limit=1))

    def test_exit_during_snapshot(self):
        t = Target(self, trace=5)
        t.call("import workload; workload.deep(3, 150000, 16)")
        c = t.client()
        c.send_raw(b'{"id": 9, "cmd": "snapshot", "args": {"key": "traceback"}}\n')
        time.sleep(0.02)
        t.send("raise SystemExit(3)")
        self.assertEqual(t.wait_exit(30), 3)
        rep = c.read_frame(30)           # the reply or EOF, never a hang
        self.assertTrue(rep is None or rep["id"] == 9)
        self.assertFalse(os.path.exists(t.path))
        self.assertNotIn("Fatal", t.stderr())
        self.assertNotIn("Segmentation", t.stderr())

    def test_forks_under_load(self):
        t = Target(self)
        c = t.client()
        c.ok("functions_start")
        if "profile" in c.hello["capabilities"]:
            c.ok("profile_start", interval=64)
        threads = len(os.listdir("/proc/%d/task" % t.pid))
        res = t.call("FORKS = 100\n" + FORK_UNDER_LOAD, timeout=300)
        self.assertEqual(res["bad"], [], "children that hung (-1) or kept what the parent's client started (3)")
        self.assertTrue(res["tracer"])
        self.assertEqual(res["profiling"], "profile" in c.hello["capabilities"])
        # The parent goes on: its threads back to what they were (a joined
        # thread's task can linger a moment), and it answers.
        self.assertTrue(wait_for(lambda: len(os.listdir("/proc/%d/task" % t.pid)) == threads, 10),
                        "the target's threads did not come back to %d" % threads)
        self.assertIn("tracing", c.ok("status"))

    def test_fork(self):
        t = Target(self, trace=1)
        # What a client switched on in the parent (a watched master) ...
        c = t.client()
        c.ok("tracemalloc_start", nframe=1)
        c.ok("functions_start")
        profiling = "profile" in c.hello["capabilities"]
        if profiling:
            c.ok("profile_start")
        report = os.path.join(t.tmp, "child.json")
        res = t.call("REPORT = %r\n" % report + FORK)
        self.assertEqual(res["status"], 0)
        with open(report) as f:
            rep = json.load(f)
        # ... is off in a child forked meanwhile (nobody there asked for it,
        # nobody would stop it), and still on in the parent.
        self.assertEqual((rep["profiling"], rep["tracer"]), (False, False), rep)
        self.assertTrue(rep["tracing"], "the application's own tracemalloc stays on")
        self.assertEqual((res["profiling"], res["tracer"], res["tracing"]), (profiling, True, True), res)
        self.assertIs(rep["running"], False)
        self.assertIs(rep["has_listener"], False)
        self.assertIs(rep["parent_sock"], True)
        self.assertEqual([n for n in rep["threads"] if n.startswith("pmt-agent")], [])
        self.assertEqual(rep["own"], os.path.join(t.runtime_dir, "%d.sock" % res["child"]))
        self.assertTrue(rep["own_exists"])
        self.assertTrue(rep["own_removed"])
        # the child exited normally (atexit ran) and left the parent's socket alone
        self.assertTrue(os.path.exists(t.path))
        c = t.client()
        self.assertEqual(c.hello["pid"], t.pid)
        self.assertEqual(c.peer()[0], t.pid)
        self.assertTrue(c.ok("status"))

    def test_detach_restores_agent_started_tracing(self):
        t = Target(self)
        c = t.client()
        c.ok("tracemalloc_start", nframe=2)
        c.ok("subscribe", interval=0.1)
        other = t.client()
        self.assertEqual(c.ok("detach"), {"detached": True})
        self.assertTrue(c.at_eof(10))
        self.assertTrue(other.at_eof(10))
        self.assertTrue(wait_for(lambda: not os.path.exists(t.path)))
        self.assertEqual(t.call("import tracemalloc, pmt_agent; "
                                "result = [tracemalloc.is_tracing(), pmt_agent.is_running()]"),
                         [False, False])
        self.assertTrue(wait_for(lambda: agent_threads(t) == []))
        # the agent can be started again
        self.assertEqual(t.call("result = pmt_agent.start()"), t.path)
        self.assertIs(t.client().ok("status")["tracing"], False)

    def test_detach_keeps_target_tracing(self):
        t = Target(self, trace=3)
        c = t.client()
        c.ok("tracemalloc_start", nframe=3)         # already on: not started by the agent
        c.ok("detach")
        self.assertTrue(wait_for(lambda: not os.path.exists(t.path)))
        self.assertEqual(t.call("import tracemalloc; result = [tracemalloc.is_tracing(), "
                                "tracemalloc.get_traceback_limit()]"), [True, 3])

    def test_stop_and_exit_remove_socket(self):
        t = Target(self, trace=1)
        self.assertTrue(os.path.exists(t.path))
        t.call("import pmt_agent; pmt_agent.stop()")
        self.assertFalse(os.path.exists(t.path))
        self.assertEqual(agent_threads(t), [])
        self.assertEqual(t.call("result = pmt_agent.start()"), t.path)
        self.assertTrue(t.client().ok("status"))
        # no descriptor leaks over stop/start and detach/start cycles
        n0 = None
        for i in range(6):
            if i == 1:
                # after one full cycle, once the old server's threads are gone
                self.assertTrue(wait_for(lambda: agent_threads(t) == ["pmt-agent-listen"], 10))
                n0 = nfds(t.pid)
            t.call("pmt_agent.stop(); pmt_agent.start()")
            c = t.client()
            c.ok("detach")
            self.assertTrue(c.at_eof(10))
            c.close()
            self.assertTrue(wait_for(lambda: not os.path.exists(t.path)))
            t.call("pmt_agent.start()")
        self.assertTrue(wait_for(lambda: agent_threads(t) == ["pmt-agent-listen"], 10))
        self.assertEqual(nfds(t.pid), n0)
        t.proc.stdin.close()                       # the driver returns: normal exit
        self.assertEqual(t.wait_exit(20), 0)
        self.assertFalse(os.path.exists(t.path))
        self.assertEqual(os.listdir(t.runtime_dir), [])

    def test_stale_socket_replaced(self):
        t = Target(self, start=False)
        os.mkdir(t.runtime_dir, 0o700)
        stale = os.path.join(t.runtime_dir, "%d.sock" % t.pid)
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.bind(stale)
        s.close()                                  # nobody listens: stale
        self.assertEqual(t.call("import pmt_agent; result = pmt_agent.start()"), stale)
        t.path = stale
        self.assertTrue(t.client().ok("status"))

    def test_slow_client_does_not_block(self):
        t = Target(self, trace=1)
        c = t.client()
        c.ok("subscribe", interval=0.05)
        n = 3000
        t_send = time.time()
        c.send_raw(b"".join(b'{"id": %d, "cmd": "status"}\n' % (100 + i) for i in range(n)))
        time.sleep(0.3)
        t0 = time.monotonic()
        self.assertEqual(t.call("result = sum(range(1000))"), 499500)   # host not blocked
        self.assertLess(time.monotonic() - t0, 5.0)
        time.sleep(1.0)                            # ~20 pushes fall due while stalled
        self.assertTrue(t.client().ok("status"))   # other clients are served meanwhile
        t_read = time.time()
        seen = 0
        pushed = []                                # when each push was made (its status time)
        while seen < n:
            f = c.read_frame(20)
            if "push" in f:
                pushed.append(f["data"]["time"])
            else:
                self.assertEqual(f["id"], 100 + seen)
                seen += 1
        f = c.read_frame(10)                       # the coalesced push, if not read yet
        self.assertIn("push", f)
        pushed.append(f["data"]["time"])
        # From just after the requests until this client read again, the
        # agent's output held unread replies: the pushes due then (~20) were
        # coalesced into the newest, not queued. Told apart by when they were
        # made, not by how fast they arrive (which depends on the machine).
        stalled = [x for x in pushed if t_send + 0.2 < x < t_read - 0.2]
        self.assertLessEqual(len(stalled), 1, "pushes were queued, not coalesced: %r" % stalled)


if __name__ == "__main__":
    agenttest.main()
