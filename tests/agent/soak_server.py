"""Soak target: a thread-per-request HTTP server under load, with the agent.

Runs the stdlib ThreadingHTTPServer (one new thread per request) whose handler
builds a response from temporaries and keeps a bounded per-path cache, plus 4
busy threads that churn dicts and strings and one GIL-heavy arithmetic loop.
With PMT_NATIVECASE (a C library, tests/agent/native/nativecase.c) the
handler and the busy threads also do malloc-heavy work in C, and the cache
keeps a C buffer per path (freed on eviction): the profiler's native hooks
see all of it.
Prints one JSON line {"port": N, "agent": socket} when ready, then serves
until stdin closes.
"""
import ctypes
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.environ["PMT_AGENT_DIR"])
if os.environ.get("PMT_NATIVE_DIR"):
    sys.path.insert(1, os.environ["PMT_NATIVE_DIR"])

CACHE = {}
NATIVE = {}
CACHE_MAX = 256
LIB = None
if os.environ.get("PMT_NATIVECASE"):
    LIB = ctypes.CDLL(os.environ["PMT_NATIVECASE"])
    LIB.nc_keep.restype = ctypes.c_void_p
    LIB.nc_keep.argtypes = [ctypes.c_size_t]
    LIB.nc_free.argtypes = [ctypes.c_void_p]
    LIB.nc_churn.argtypes = [ctypes.c_long]
CACHE_LOCK = threading.Lock()
STOP = threading.Event()


def render(path):
    rows = [{"path": path, "n": i, "label": "row-%d" % i} for i in range(200)]
    body = json.dumps(rows).encode()
    return body


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = render(self.path)
        if LIB is not None:
            LIB.nc_churn(3)
        with CACHE_LOCK:                # handlers run on threads of their own
            if len(CACHE) >= CACHE_MAX:
                old = next(iter(CACHE))
                CACHE.pop(old)
                if old in NATIVE:
                    LIB.nc_free(NATIVE.pop(old))
            CACHE[self.path] = body[:1000]
            if LIB is not None and self.path not in NATIVE:
                NATIVE[self.path] = LIB.nc_keep(4096)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def busy(k):
    """A worker: bursts of allocation work between short waits."""
    n = 0
    while not STOP.is_set():
        for _ in range(500):
            d = {"k": k, "n": n, "s": str(n) * 3}
            tmp = [d, dict(d), str(d)]
            n += len(tmp)
        if LIB is not None:
            LIB.nc_churn(20)
        time.sleep(0.001)


def gil_heavy():
    """Pure-Python arithmetic that holds the GIL for ~2 ms at a time."""
    x = 0
    while not STOP.is_set():
        for i in range(20000):
            x = (x * 31 + i) % 1000003
        time.sleep(0)


def ballast(n):
    """With SOAK_BALLAST=N: N live objects from 1,000 distinct lines, as a
    large service keeps (traced when SOAK_TRACE asks tracemalloc to start)."""
    src = "def fill(keep, k):\n" + "".join(
        "    keep.append(bytes(%d + k %% 7))\n" % (16 + i % 200) for i in range(1000))
    ns = {}
    exec(compile(src, os.path.join(os.path.dirname(os.path.abspath(__file__)), "soak_ballast.py"),
                 "exec"), ns)
    keep = []
    for k in range(n // 1000):
        ns["fill"](keep, k)
    return keep


def main():
    if os.environ.get("SOAK_TRACE"):
        import tracemalloc
        tracemalloc.start(int(os.environ["SOAK_TRACE"]))
    keep = ballast(int(os.environ.get("SOAK_BALLAST") or 0))    # noqa: F841 (kept alive)
    import pmt_agent
    sock = pmt_agent.start()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    for k in range(4):
        threading.Thread(target=busy, args=(k,), daemon=True).start()
    threading.Thread(target=gil_heavy, daemon=True).start()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdout.write(json.dumps({"port": srv.server_address[1], "agent": sock}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    STOP.set()
    srv.shutdown()


main()
