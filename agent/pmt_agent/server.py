"""The agent's Unix socket server.

One daemon thread (pmt-agent-listen) polls the listening socket and a wake-up
pipe; each accepted client gets its own daemon thread (pmt-agent-conn-N) that
polls its socket, answers requests in order and sends status pushes. Sockets
are non-blocking and every send goes through a per-connection output buffer,
so no thread ever blocks on a slow client; a push that cannot be sent at once
is coalesced (only the newest is sent once the buffer drains). Nothing here
raises into the host: every thread body catches everything.

Peers are checked with SO_PEERCRED: only our effective uid or root may talk to us.
"""

import errno
import os
import select
import socket
import stat
import struct
import threading
import time

from . import commands
from . import profiler
from . import proto

MAX_CONNECTIONS = 32
READ_CHUNK = 65536
OUTBUF_PAUSE = 4 * 1024 * 1024     # stop reading requests while this much is unsent
DETACH_FLUSH_SECONDS = 5.0
SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)
MSG_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)


def _sweep_dead(directory):
    """Remove sockets left by agents whose process is gone.

    An agent killed by a signal cannot remove its socket; the next agent that
    starts in the same directory does it for them. Names are <pid>.sock; a
    pid that no longer exists is dead (pids are of this namespace, as is the
    directory of this user). Errors are ignored: this is housekeeping.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not name.endswith(".sock") or not name[:-5].isdigit():
            continue
        pid = int(name[:-5])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue                    # alive (or not ours to signal)
        except ProcessLookupError:
            pass
        except OSError:
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def _bind(path):
    """Create, bind and listen on a Unix socket at path (mode 0600)."""
    _sweep_dead(os.path.dirname(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise OSError(errno.EEXIST, "%s exists and is not a socket; remove it" % path)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(0.5)
            probe.connect(path)
        except OSError:
            os.unlink(path)     # stale socket of a dead process with our pid
        else:
            raise OSError(errno.EADDRINUSE, "another agent is listening on %s" % path)
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(16)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Server(object):
    """A listening agent socket and its threads."""

    def __init__(self, path):
        self.path = path
        self.owner_pid = os.getpid()
        self.stopping = False
        self.lock = threading.Lock()
        self.conns = set()
        self.threads = []
        self.seq = 0
        self.live = 0               # threads started and not finished
        self.pipe_open = True
        self.sock = _bind(path)
        try:
            st = os.stat(path)
            self.ident = (st.st_dev, st.st_ino)
            self.wake_r, self.wake_w = os.pipe()
        except BaseException:
            self.sock.close()
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def start(self):
        t = threading.Thread(target=self._accept_loop, name="pmt-agent-listen")
        t.daemon = True
        self.threads.append(t)
        with self.lock:
            self.live += 1
        try:
            t.start()
        except BaseException:
            self._thread_done()
            raise

    def _close_pipe(self):
        # Callers hold self.lock, or are the only thread left (fork child).
        if self.pipe_open:
            self.pipe_open = False
            for fd in (self.wake_r, self.wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _thread_done(self):
        """Each server thread's last act: the last one out closes the wake pipe."""
        with self.lock:
            self.live -= 1
            if self.stopping and self.live <= 0:
                self._close_pipe()

    def _unlink(self):
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self.ident:
                os.unlink(self.path)
        except OSError:
            pass

    def stop(self, join=True, timeout=2.0):
        """Stop listening, remove the socket, close every connection."""
        if os.getpid() != self.owner_pid:
            return
        with self.lock:
            if self.stopping:
                return
            self.stopping = True
            # Written under the lock: nobody closes the pipe before this write.
            try:
                os.write(self.wake_w, b"x")
            except OSError:
                pass
            if self.live <= 0:
                self._close_pipe()
        self._unlink()
        if join:
            deadline = time.monotonic() + timeout
            me = threading.current_thread()
            for t in list(self.threads):
                if t is not me:
                    t.join(max(0.0, deadline - time.monotonic()))
        try:
            self.sock.close()
        except OSError:
            pass

    def close_in_child(self):
        """After fork() in the child: drop inherited fds, leave the parent's socket."""
        self.stopping = True
        self.owner_pid = -1
        for c in list(self.conns):
            try:
                c.sock.close()
            except Exception:
                pass
        self.conns = set()
        self.threads = []
        self.live = 0
        try:
            self.sock.close()
        except Exception:
            pass
        self._close_pipe()

    def _accept_loop(self):
        profiler.ignore_current_thread()
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        while not self.stopping:
            try:
                poller.poll()
                if self.stopping:
                    break
                self._accept_ready()
            except Exception:
                time.sleep(0.05)
        try:
            self.sock.close()
        except Exception:
            pass
        self._thread_done()

    def _accept_ready(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    time.sleep(0.1)
                return
            if not self._peer_allowed(conn):
                conn.close()
                continue
            with self.lock:
                self.threads = [t for t in self.threads if t.is_alive()]
                if len(self.conns) >= MAX_CONNECTIONS or self.stopping:
                    conn.close()
                    continue
                self.seq += 1
                c = Connection(self, conn)
                self.conns.add(c)
                t = threading.Thread(target=c.run, name="pmt-agent-conn-%d" % self.seq)
                t.daemon = True
                self.threads.append(t)
                self.live += 1
            try:
                t.start()
            except Exception:
                self._forget(c)
                conn.close()
                self._thread_done()

    @staticmethod
    def _peer_allowed(conn):
        try:
            raw = conn.getsockopt(socket.SOL_SOCKET, SO_PEERCRED, struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", raw)
        except Exception:
            return False
        # The client's effective uid: ours (the socket's directory follows
        # the effective uid too) or root.
        return uid == os.geteuid() or uid == 0

    def _forget(self, c):
        with self.lock:
            self.conns.discard(c)


class Connection(object):
    """One client: input framing, replies, pushes, all on its own thread."""

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.session = commands.Session()
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.push_pending = False
        self.closing = False        # no more requests; close once flushed
        self.close_deadline = None
        self.next_push = None

    def run(self):
        profiler.ignore_current_thread()
        try:
            self.sock.setblocking(False)
            self._loop()
        except Exception:
            pass
        finally:
            try:
                self.sock.close()
            except Exception:
                pass
            self.server._forget(self)
            self.server._thread_done()
        if self.session.detach:
            try:
                from . import _detached
                _detached(self.server)
            except Exception:
                pass

    def _loop(self):
        poller = select.poll()
        poller.register(self.server.wake_r, select.POLLIN)
        fd = self.sock.fileno()
        while not self.server.stopping:
            if self.closing and not self.outbuf:
                return
            now = time.monotonic()
            if self.closing and now > self.close_deadline:
                return
            mask = 0
            if not self.closing and len(self.outbuf) < OUTBUF_PAUSE:
                mask |= select.POLLIN
            if self.outbuf:
                mask |= select.POLLOUT
            poller.register(fd, mask)
            timeout = None
            if self.session.interval > 0:
                if self.next_push is None:
                    self.next_push = now + self.session.interval
                timeout = max(0, int((self.next_push - now) * 1000) + 1)
            else:
                self.next_push = None
            if self.closing:
                timeout = 100
            events = poller.poll(timeout)
            for efd, ev in events:
                if efd != fd:
                    continue
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    if not self._read():
                        return
                if ev & select.POLLOUT:
                    if not self._flush():
                        return
            if self.session.interval > 0 and self.next_push is not None:
                now = time.monotonic()
                if now >= self.next_push:
                    self._push()
                    self.next_push += self.session.interval
                    if self.next_push < now:
                        self.next_push = now + self.session.interval

    def _read(self):
        """Read and answer what arrived; False when the connection is over."""
        try:
            data = self.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            return False
        self.inbuf += data
        while not self.closing:
            i = self.inbuf.find(b"\n")
            if i < 0:
                if len(self.inbuf) >= proto.MAX_REQUEST:
                    self._too_large()
                break
            if i + 1 > proto.MAX_REQUEST:
                self._too_large()
                break
            line = bytes(self.inbuf[:i])
            del self.inbuf[:i + 1]
            if not line.strip():
                continue
            reply = commands.handle(self.session, line)
            self._queue(commands.encode(reply))
            if self.session.detach:
                self._close_soon()
        return self._flush()

    def _too_large(self):
        self._queue(commands.encode(commands.error(
            "too_large", "request frame over %d bytes; closing the connection" % proto.MAX_REQUEST)))
        self.inbuf = bytearray()
        self._close_soon()

    def _close_soon(self):
        self.closing = True
        self.close_deadline = time.monotonic() + DETACH_FLUSH_SECONDS

    def _queue(self, data):
        self.outbuf += data

    def _push(self):
        if self.outbuf:
            self.push_pending = True      # coalesce: build the newest when drained
            return
        self._queue(commands.encode({"push": "status", "data": commands.status()}))
        self._flush()

    def _flush(self):
        """Send what the socket takes now; False when the peer is gone."""
        while self.outbuf:
            try:
                with memoryview(self.outbuf) as view:
                    n = self.sock.send(view[:1 << 20], MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            del self.outbuf[:n]
            if not self.outbuf and self.push_pending and not self.closing:
                self.push_pending = False
                self._queue(commands.encode({"push": "status", "data": commands.status()}))
        return True
