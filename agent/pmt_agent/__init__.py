"""pmt_agent: the in-process agent of pmt-top (standard library only).

    import pmt_agent
    path = pmt_agent.start()     # socket path; idempotent and thread-safe
    pmt_agent.is_running()
    pmt_agent.stop()

start() opens <runtime dir>/<pid>.sock (see docs/protocol.md) and serves the
pmt-top protocol from daemon threads named pmt-agent-*. It raises OSError
(with a sentence saying what to do) when the socket cannot be created; once
running, nothing the agent does raises into the host program. The socket is
removed by stop(), by a client's detach and at interpreter exit. After fork()
the child closes its copy of the listener and does not answer; it may call
start() to get its own socket. What the parent's clients switched on (the
sampled profiler, the function tracer, tracemalloc when the agent started it)
is switched off in the child: no client of the child asked for it, and none
would ever stop it (a prefork server's workers, forked while the master was
watched).
"""

import atexit
import os
import threading

from . import commands
from . import proto
from . import rundir

__all__ = ["start", "stop", "is_running", "__version__"]
__version__ = commands.AGENT_VERSION
PROTOCOL_VERSION = proto.VERSION

_lock = threading.Lock()
_server = None


def start(path=None, nframe=None):
    """Start the agent if it is not running; return its socket path.

    path overrides the socket path (its directory must pass the same checks
    as the runtime directory). nframe, when given, starts tracemalloc with
    that many frames if it is not tracing yet (the agent then counts as
    having started it, so detach stops it).
    """
    global _server
    from . import server as _srv
    with _lock:
        if _server is not None and not _server.stopping and _server.owner_pid == os.getpid():
            return _server.path
        note = None
        if path is None:
            path, note = rundir.socket_location()
        else:
            path = os.path.abspath(path)
            rundir.check_dir(os.path.dirname(path))
        if nframe:
            try:
                commands.start_tracing(int(nframe))
            except commands.CommandError:
                pass        # already tracing with another nframe: keep it
        commands.set_location(path, note)    # before any client can say hello
        srv = _srv.Server(path)
        try:
            srv.start()
        except BaseException:
            srv.stop(join=False)
            raise
        _server = srv
        return path


def stop():
    """Stop the agent (socket removed) and undo what it changed; never raises."""
    global _server
    try:
        with _lock:
            srv, _server = _server, None
        if srv is not None:
            srv.stop(join=True)
        commands.restore()
    except Exception:
        pass


def is_running():
    """True when this process's agent is listening."""
    srv = _server
    return srv is not None and not srv.stopping and srv.owner_pid == os.getpid()


def socket_path():
    """The socket path of the running agent, or None."""
    srv = _server
    return srv.path if is_running() else None


def _detached(srv):
    """Called by a connection thread after answering detach."""
    global _server
    with _lock:
        if _server is srv:
            _server = None
    srv.stop(join=False)


def _at_exit():
    try:
        srv = _server
        if srv is not None and srv.owner_pid == os.getpid():
            srv.stop(join=False)
    except Exception:
        pass


def _after_fork_child():
    global _lock, _server
    try:
        _lock = threading.Lock()
        commands.after_fork_child()
        srv, _server = _server, None
        if srv is not None:
            srv.close_in_child()
            commands.restore()
    except Exception:
        pass


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)
