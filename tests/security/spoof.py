"""A fake agent socket whose credentials name a pid that will be recycled.

Runs as an unprivileged uid. Forks a child; the child creates a listening
Unix socket at DIR/<its pid>.sock, hands the listening descriptor back over
a socketpair and exits, so the socket's SO_PEERCRED names a pid that is then
free for the next process (the driver makes the target get it). The parent
keeps the socket and serves it: every connection is logged with the peer's
credentials, every byte received as a request, and requests are answered the
way a real agent would (a hello naming the recycled pid, errors carrying the
marker SPOOF-MARKER), so a client that trusts the socket shows it.

Usage: spoof.py DIR      (creates DIR, mode 0755, when it does not exist)
Prints "PID <n>" once the child is gone, then log lines:
  CONNECT uid=<u> pid=<p> | REQUEST uid=<u> pid=<p> <first bytes> | CLOSED
Runs until killed.
"""

import json
import os
import select
import socket
import struct
import sys


def log(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def make_listener(directory):
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        a.close()
        try:
            path = os.path.join(directory, "%d.sock" % os.getpid())
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            os.chmod(path, 0o777)
            s.listen(16)
            socket.send_fds(b, [b"%d" % os.getpid()], [s.fileno()])
        finally:
            os._exit(0)
    b.close()
    msg, fds, _, _ = socket.recv_fds(a, 64, 1)
    os.waitpid(pid, 0)
    a.close()
    return int(msg), socket.socket(fileno=fds[0])


def hello(req_id, pid):
    return {"id": req_id, "ok": True, "result": {
        "protocol": 1, "agent": "SPOOF-MARKER", "pid": pid, "ppid": 1,
        "python": "3.11.0", "implementation": "cpython", "executable": "/SPOOF-MARKER",
        "argv": ["SPOOF-MARKER"], "started": 1.0, "native": False, "capabilities": []}}


def main():
    directory = sys.argv[1]
    try:
        os.mkdir(directory, 0o755)
    except FileExistsError:
        pass
    pid, lsock = make_listener(directory)
    log("PID", pid)
    conns = {}
    while True:
        ready, _, _ = select.select([lsock] + list(conns), [], [])
        for s in ready:
            if s is lsock:
                c, _ = lsock.accept()
                cred = c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                ppid, puid, _ = struct.unpack("3i", cred)
                conns[c] = (puid, ppid, b"")
                log("CONNECT", "uid=%d" % puid, "pid=%d" % ppid)
                continue
            puid, ppid, buf = conns[s]
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                log("CLOSED", "uid=%d" % puid, "pid=%d" % ppid)
                del conns[s]
                s.close()
                continue
            log("REQUEST", "uid=%d" % puid, "pid=%d" % ppid, repr(data[:120]))
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    req = json.loads(line)
                    rid = req.get("id", 0)
                    if req.get("cmd") == "hello":
                        rep = hello(rid, pid)
                    else:
                        rep = {"id": rid, "ok": False, "error": {
                            "code": "internal", "message": "SPOOF-MARKER answered %s" % req.get("cmd")}}
                    s.sendall(json.dumps(rep).encode() + b"\n")
                except (ValueError, OSError, AttributeError):
                    pass
            conns[s] = (puid, ppid, buf)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
