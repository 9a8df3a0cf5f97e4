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

import collections
import errno
import os
import select
import socket
import _socket
import stat
import struct
import threading
import _thread
import time

from . import commands
from . import grouping
from . import profiler
from . import proto

MAX_CONNECTIONS = 32
READ_CHUNK = 65536
OUTBUF_PAUSE = 4 * 1024 * 1024     # stop reading requests while this much is unsent
DETACH_FLUSH_SECONDS = 5.0
QUEUE_MAX = 8                      # heavy requests one connection may have waiting
PENDING_PAUSE = 1024               # stop reading while this many requests wait
HEAVY_WAITING = 16                 # heavy requests (all connections) waiting for the one running
IDLE_SECONDS = 60.0                # no request, no subscription: closed
REQUEST_SECONDS = 10.0             # from a request's first byte to its newline
STALL_SECONDS = 30.0               # output the client does not read
EVICT_IDLE_SECONDS = 2.0           # at the connection cap, idle this long makes room
SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)
MSG_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)


class _Thread(object):
    """A daemon thread started with _thread, for each connection.

    threading.Thread allocates its bookkeeping (its Event and Condition, the
    registry entries of a starting thread) in threading.py: with tracemalloc
    keeping one frame, the target's top would list that as its own memory
    for as long as a client stays connected. Here it is allocated from this
    file, which top and snapshot leave out. Its name is in
    profiler.AGENT_THREADS while it runs.
    """

    def __init__(self, target, name):
        self.name = name
        self.ident = None
        self._target = target
        self._done = _thread.allocate_lock()
        self._done.acquire()

    def start(self):
        _thread.start_new_thread(self._run, ())

    def _run(self):
        self.ident = _thread.get_ident()
        profiler.AGENT_THREADS[self.ident] = self.name
        try:
            self._target()
        except BaseException:
            pass
        finally:
            profiler.AGENT_THREADS.pop(self.ident, None)
            self._done.release()

    def is_alive(self):
        return self._done.locked()

    def join(self, timeout=None):
        if self._done.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            self._done.release()


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
        self.gate = HeavyGate()
        # What happened to requests and connections, for status.
        self.counts = dict.fromkeys(("answered", "dropped", "busy", "timeouts", "refused"), 0)
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

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] += n

    def clients(self):
        """The status object's "clients": connections, their buffers, what became of requests."""
        with self.lock:
            conns = list(self.conns)
            out = dict(self.counts)
        out["connections"] = len(conns)
        out["max_connections"] = MAX_CONNECTIONS
        out["buffered"] = sum(len(c.inbuf) + len(c.outbuf) for c in conns)
        return out

    def start(self):
        commands.set_clients(self.clients)
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
            me = _thread.get_ident()     # current_thread() would make a dummy Thread here
            for t in list(self.threads):
                if t.ident != me:
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

    def _accept_one(self):
        """socket.accept(), with the new socket object made here: made in
        socket.py (accept(), or socket.socket's __init__, which allocates
        on 3.14), it would be the application's by its traceback. The C
        type has every method a connection uses."""
        fd, _ = self.sock._accept()
        return _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd)

    def _accept_ready(self):
        while not self.stopping:
            try:
                conn = self._accept_one()
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
                if self.stopping:
                    conn.close()
                    continue
                if not self._make_room():
                    self._refuse(conn)
                    continue
                self.seq += 1
                c = Connection(self, conn)
                self.conns.add(c)
                t = _Thread(c.run, "pmt-agent-conn-%d" % self.seq)
                self.threads.append(t)
                self.live += 1
            try:
                t.start()
            except Exception:
                self._forget(c)
                conn.close()
                self._thread_done()

    def _make_room(self):
        """True if a new connection may be served (callers hold self.lock).

        At the cap, the connection idle the longest makes room, if it has
        been idle for EVICT_IDLE_SECONDS: idle connections cannot lock
        clients out for longer than that.
        """
        live = [c for c in self.conns if not c.evicted]
        if len(live) < MAX_CONNECTIONS:
            return True
        now = time.monotonic()
        victim, longest = None, EVICT_IDLE_SECONDS
        for c in live:
            idle = c.idle_for(now)
            if idle is not None and idle >= longest:
                victim, longest = c, idle
        if victim is None:
            return False
        victim.evict()
        return True

    def _refuse(self, conn):
        """Every slot is in use: say so in one frame (best effort) and close."""
        self.counts["refused"] += 1                 # under self.lock
        try:
            conn.setblocking(False)
            conn.send(commands.encode(commands.error(
                "busy", "all %d connections of this agent are in use by active clients"
                % MAX_CONNECTIONS)), MSG_NOSIGNAL)
        except Exception:
            pass
        conn.close()

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


class HeavyGate(object):
    """Heavy requests (top, snapshot, profile...) run one at a time, whoever asks.

    A few may wait their turn; more are answered busy at once. A waiter
    whose client has gone gives up its place (gone() says so).
    """

    def __init__(self):
        # _thread locks, not a threading.Condition: its wait() allocates a
        # lock in threading.py for every waiter, which tracemalloc would
        # count as the application's while a request waits here.
        self.turn_lock = _thread.allocate_lock()    # held by the heavy request running
        self.lock = _thread.allocate_lock()
        self.waiting = 0

    def enter(self, gone):
        if self.turn_lock.acquire(False):
            return
        with self.lock:
            if self.waiting >= HEAVY_WAITING:
                raise commands.CommandError(
                    "busy", "%d heavy requests of other clients are already waiting; "
                    "try again" % self.waiting)
            self.waiting += 1
        try:
            while not self.turn_lock.acquire(True, 0.1):
                if gone():
                    raise commands.Abandoned()
        finally:
            with self.lock:
                self.waiting -= 1

    def leave(self):
        self.turn_lock.release()

    def turn(self, gone):
        return _Turn(self, gone)


class Connection(object):
    """One client: input framing, a bounded queue of requests, replies, pushes.

    Requests are answered one at a time, in order. Before each one the
    connection checks that the client is still there: requests a client
    sent and then hung up on are dropped, not answered. The client may
    have at most QUEUE_MAX heavy requests waiting; more are answered busy
    (in their turn, so replies stay in order). Reading stops while
    PENDING_PAUSE requests wait, as it does while OUTBUF_PAUSE bytes are
    unsent: the client's writes then block, and nothing here grows.
    A connection that is idle (no request for IDLE_SECONDS and not
    subscribed), that sends a request too slowly (REQUEST_SECONDS from its
    first byte to its newline) or that does not read what it is sent
    (STALL_SECONDS without progress) is closed.
    """

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.session = commands.Session()
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.pending = collections.deque()   # (line, heavy) or (None, id) for a busy reply
        self.heavy_pending = 0
        self.push_pending = False
        self.closing = False        # no more requests; close once flushed
        self.close_deadline = None
        self.next_push = None
        self.eof = False            # the client will send no more (it may still read)
        self.evicted = False        # set by the accept thread when it needs the slot
        self.working = False        # a request is being answered
        now = time.monotonic()
        self.last_request = now
        self.partial_since = None   # when the unfinished request began to arrive
        self.stalled_since = None   # when the output last stopped making progress

    def idle_for(self, now):
        """Seconds since the last request, or None if this connection is in use."""
        if self.session.interval > 0 or self.working or self.pending or self.closing or self.evicted:
            return None
        return now - self.last_request

    def evict(self):
        """From the accept thread: make room. The connection's thread says why and closes."""
        self.evicted = True
        try:
            self.sock.shutdown(socket.SHUT_RD)   # wakes its poll with an end of file
        except OSError:
            pass

    def run(self):
        profiler.ignore_current_thread()
        try:
            self.sock.setblocking(False)
            self._loop()
        except Exception:
            pass
        finally:
            if self.pending:
                self.server.count("dropped", len(self.pending))
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
            now = time.monotonic()
            if self.closing and (not self.outbuf or now > self.close_deadline):
                return
            if self.outbuf and self.stalled_since is not None and now - self.stalled_since > STALL_SECONDS:
                return                              # not reading: nothing more can reach it
            if not self.closing:
                self._check_timeouts(now)
            if self.eof and not self.pending and not self.outbuf:
                return
            workable = bool(self.pending) and not self.closing and len(self.outbuf) < OUTBUF_PAUSE
            mask = 0
            if (not self.closing and not self.eof and len(self.outbuf) < OUTBUF_PAUSE
                    and len(self.pending) < PENDING_PAUSE):
                mask |= select.POLLIN
            if self.outbuf:
                mask |= select.POLLOUT
            poller.register(fd, mask)
            timeout = 0 if workable else self._poll_timeout(now)
            events = poller.poll(timeout)
            for efd, ev in events:
                if efd != fd:
                    continue
                if ev & select.POLLHUP and not ev & select.POLLIN:
                    return                          # gone, and nothing left to read
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR) and not self.eof:
                    if not self._read():
                        return
                if ev & select.POLLOUT:
                    if not self._flush():
                        return
            if workable:
                if self._client_gone():
                    return                          # drop what it asked for
                line, arg = self.pending.popleft()
                if line is None:
                    self.server.count("busy")
                    self._queue(commands.encode(commands.error(
                        "busy", "%d heavy requests of this connection were already waiting; "
                        "wait for their replies" % QUEUE_MAX, arg)))
                else:
                    if arg:
                        self.heavy_pending -= 1
                    self._answer(line)
                if not self._flush():
                    return
            if self.session.interval > 0 and self.next_push is not None:
                now = time.monotonic()
                if now >= self.next_push:
                    self._push()
                    self.next_push += self.session.interval
                    if self.next_push < now:
                        self.next_push = now + self.session.interval

    def _poll_timeout(self, now):
        """Milliseconds until the next thing this connection must do (None: none)."""
        due = []
        if self.session.interval > 0:
            if self.next_push is None:
                self.next_push = now + self.session.interval
            due.append(self.next_push)
        else:
            self.next_push = None
        if self.closing:
            due.append(now + 0.1)
        else:
            if self.session.interval <= 0:
                due.append(self.last_request + IDLE_SECONDS)
            if self.partial_since is not None:
                due.append(self.partial_since + REQUEST_SECONDS)
        if self.outbuf and self.stalled_since is not None:
            due.append(self.stalled_since + STALL_SECONDS)
        if not due:
            return None
        return max(0, int((min(due) - now) * 1000) + 1)

    def _check_timeouts(self, now):
        if self.evicted:
            self._fail("timeout", "this idle connection was closed to make room for another client "
                       "(all %d connections were in use)" % MAX_CONNECTIONS)
        elif self.partial_since is not None and now - self.partial_since > REQUEST_SECONDS:
            self._fail("timeout", "a request took over %g s to arrive; closing the connection"
                       % REQUEST_SECONDS)
        elif (self.session.interval <= 0 and not self.pending and not self.working
              and now - self.last_request > IDLE_SECONDS):
            self._fail("timeout", "no request for %g s; closing the idle connection" % IDLE_SECONDS)

    def _client_gone(self):
        """True if the client hung up (both ways): its requests need no answer."""
        try:
            p = select.poll()
            p.register(self.sock.fileno(), select.POLLIN)
            for _, ev in p.poll(0):
                if ev & (select.POLLHUP | select.POLLERR):
                    return True
        except Exception:
            return True
        return False

    def _answer(self, line):
        self.working = True
        try:
            reply = commands.handle(self.session, line, self._heavy)
        finally:
            self.working = False
            self.last_request = time.monotonic()
        if reply is None:                           # the client went away while it waited
            self.server.count("dropped", 1 + len(self.pending))
            self.pending.clear()
            self.heavy_pending = 0
            self._close_soon()
            return
        self.server.count("busy" if _is_busy(reply) else "answered")
        self._queue(commands.encode(reply))
        if self.session.detach:
            self.pending.clear()
            self.heavy_pending = 0
            self._close_soon()

    def _give_back(self):
        try:
            with self.server.gate.turn(self._client_gone):
                grouping.give_back()
        except Exception:
            pass

    def _heavy(self):
        return self.server.gate.turn(self._client_gone)

    def _read(self):
        """Take what arrived and queue its requests; False when the connection is over."""
        try:
            data = self.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            if self.evicted:
                return True                         # the timeout is said on the next turn
            self.eof = True                         # answer what it sent, then close
            self.inbuf = bytearray()
            self.partial_since = None
            return True
        self.inbuf += data
        now = time.monotonic()
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
            self.partial_since = None
            if not line.strip():
                continue
            self.last_request = now
            req_id, cmd = commands.peek(line)
            if cmd in commands.HEAVY:
                if self.heavy_pending >= QUEUE_MAX:
                    # Answered in its turn, so replies stay in order.
                    self.pending.append((None, req_id))
                    continue
                self.heavy_pending += 1
            self.pending.append((line, cmd in commands.HEAVY))
        if self.inbuf and self.partial_since is None:
            self.partial_since = now
        elif not self.inbuf:
            self.partial_since = None
        return self._flush()

    def _fail(self, code, message):
        """Say why, then close (a frame with id null: the connection's own error)."""
        if code == "timeout":
            self.server.count("timeouts")
        self.server.count("dropped", len(self.pending))
        self.pending.clear()
        self.heavy_pending = 0
        self._queue(commands.encode(commands.error(code, message)))
        self._close_soon()

    def _too_large(self):
        self._fail("too_large", "request frame over %d bytes; closing the connection" % proto.MAX_REQUEST)
        self.inbuf = bytearray()
        self.partial_since = None

    def _close_soon(self):
        self.closing = True
        self.close_deadline = time.monotonic() + DETACH_FLUSH_SECONDS

    def _queue(self, data):
        if not self.outbuf:
            self.stalled_since = time.monotonic()
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
            self.stalled_since = time.monotonic()
            if not self.outbuf and self.session.give_back:
                self.session.give_back = False      # the big reply is gone: so is its memory
                self._give_back()
            if not self.outbuf and self.push_pending and not self.closing:
                self.push_pending = False
                self._queue(commands.encode({"push": "status", "data": commands.status()}))
        return True


def _is_busy(reply):
    err = reply.get("error") if not reply.get("ok") else None
    return isinstance(err, dict) and err.get("code") == "busy"


class _Turn(object):
    """with-block around one heavy request: wait for the gate, release it after."""

    def __init__(self, gate, gone):
        self.gate = gate
        self.gone = gone

    def __enter__(self):
        self.gate.enter(self.gone)
        return self

    def __exit__(self, *exc):
        self.gate.leave()
        return False
