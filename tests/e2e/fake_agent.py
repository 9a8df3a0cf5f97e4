"""A real Python process that plays a misbehaving pmt-top agent.

It listens where the agent of this very process would (RUNDIR/<its pid>.sock,
RUNDIR being what the test passes as PMT_TOP_RUNTIME_DIR), so pmt-top finds
it, trusts it (the socket's maker is the target pid) and never loads an agent
of its own into it -- unless pmt-top gets it wrong, which the test checks:
a thread samples TracerPid in /proc/self/status all along and says so if a
debugger (gdb loading an agent) ever attaches.

Usage: fake_agent.py MODE RUNDIR
  silent   accepts connections and reads them, never answers anything
  busy     answers every new connection at once with the agent's refusal at
           its connection cap ({"id": null, ... "busy"}) and closes it
  serve    a minimal agent (hello, status, subscribe; every other command
           is "unavailable"); a line "timeout" on stdin makes it close every
           open connection the way the agent closes an idle one ({"id":
           null, ... "timeout"}), and it goes on accepting new ones

Writes to stdout, one line each, flushed: "READY <socket>", then
"CONNECT <n>", "REQUEST <n> <cmd>", "CLOSED <n>", "SENT-TIMEOUT <n>" and
"TRACED <tracer pid>". Nothing ever goes to stderr unless something is wrong.
Runs until killed or stdin ends.
"""

import json
import os
import socket
import sys
import threading
import time

MODE, RUNDIR = sys.argv[1], sys.argv[2]
lock = threading.Lock()
conns = {}          # n -> socket, for "serve"
count = [0]


def say(*words):
    with lock:
        sys.stdout.write(" ".join(str(w) for w in words) + "\n")
        sys.stdout.flush()


def watch_tracer():
    seen = 0
    while True:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    pid = int(line.split()[1])
                    if pid and pid != seen:
                        say("TRACED", pid)
                    seen = pid
        time.sleep(0.005)


def send(c, obj):
    try:
        c.sendall(json.dumps(obj).encode() + b"\n")
    except OSError:
        pass


# Tracing "on", as the program's own, so that a snapshot --wait gets to its wait.
STATUS = {"time": 0.0, "tracing": True, "nframe": 1, "started_by_agent": False,
          "traced_current": 0, "traced_peak": 0, "tracemalloc_memory": 0,
          "gc_counts": [1, 0, 0], "gc_thresholds": [700, 10, 10], "gc_objects": None,
          "gc_collections": [0, 0, 0], "threads": 2}


def answer(req):
    rid, cmd = req.get("id"), req.get("cmd")
    if cmd == "hello":
        return {"id": rid, "ok": True, "result": {
            "protocol": 1, "agent": "0.1.0-fake", "pid": os.getpid(), "ppid": os.getppid(),
            "python": "%d.%d.%d" % sys.version_info[:3], "implementation": "cpython",
            "executable": sys.executable, "argv": sys.argv, "started": time.time(),
            "native": False, "capabilities": ["status", "subscribe"]}}
    if cmd == "status":
        return {"id": rid, "ok": True, "result": dict(STATUS, time=time.time())}
    if cmd == "subscribe":
        return {"id": rid, "ok": True, "result": {"interval": (req.get("args") or {}).get("interval", 0)}}
    return {"id": rid, "ok": False, "error": {"code": "unavailable",
                                              "message": "this fake agent does not do %s" % cmd}}


def serve(n, c):
    buf = b""
    while True:
        try:
            data = c.recv(65536)
        except OSError:
            data = b""
        if not data:
            break
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                req = json.loads(line)
            except ValueError:
                continue
            say("REQUEST", n, req.get("cmd"))
            if MODE == "serve":
                send(c, answer(req))
    with lock:
        conns.pop(n, None)
    say("CLOSED", n)
    c.close()


def read_stdin():
    for line in sys.stdin:
        if line.strip() == "timeout":
            with lock:
                victims = list(conns.items())
                conns.clear()
            for n, c in victims:
                send(c, {"id": None, "ok": False, "error": {
                    "code": "timeout", "message": "no request for 60 s; closing the idle connection"}})
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                say("SENT-TIMEOUT", n)
    os._exit(0)


def main():
    path = os.path.join(RUNDIR, "%d.sock" % os.getpid())
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    os.chmod(path, 0o600)
    lsock.listen(64)
    threading.Thread(target=watch_tracer, daemon=True).start()
    threading.Thread(target=read_stdin, daemon=True).start()
    say("READY", path)
    while True:
        c, _ = lsock.accept()
        count[0] += 1
        n = count[0]
        say("CONNECT", n)
        if MODE == "busy":
            send(c, {"id": None, "ok": False, "error": {
                "code": "busy", "message": "all 32 connections of this agent are in use by active clients"}})
            c.close()
            say("CLOSED", n)
            continue
        with lock:
            conns[n] = c
        threading.Thread(target=serve, args=(n, c), daemon=True).start()


if __name__ == "__main__":
    main()
