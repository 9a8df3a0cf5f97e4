"""Where the agent's socket lives, and the checks that keep it private.

Rules (docs/protocol.md, "Where the socket lives"); uid is the effective uid
throughout: the directory is $PMT_TOP_RUNTIME_DIR if set, else
$XDG_RUNTIME_DIR/pmt-top when XDG_RUNTIME_DIR is a directory owned by the
user, else /tmp/pmt-top-<uid>. It is created with mode 0700 and refused when it
is a symlink, not a directory, owned by another uid or accessible by group or
others. The socket is <dir>/<pid>.sock.

/tmp/pmt-top-<uid> is in a directory every user can write, so another user can
take that name first. When it is taken (it fails the checks above) and no
directory was given explicitly, the agent uses a fallback nobody else can
take: the first (by name) /tmp/pmt-top-<uid>.<suffix> that is a directory owned
by the user with mode 0700, else a new /tmp/pmt-top-<uid>.<8 random hex
digits>. socket_location() says which directory was used and why.

Every failure raises RundirError with a sentence saying what is wrong and what
to do about it.
"""

import os
import stat

SHARED_PARENT = "/tmp"
FALLBACK_TRIES = 32


class RundirError(OSError):
    """The runtime directory is missing, unsafe or cannot be created."""


def check_dir(path):
    """Raise RundirError unless path is a private directory of this user."""
    try:
        st = os.lstat(path)
    except OSError as e:
        raise RundirError("cannot inspect runtime directory %s: %s" % (path, e.strerror))
    if stat.S_ISLNK(st.st_mode):
        raise RundirError("runtime directory %s is a symlink; remove it or set "
                          "PMT_TOP_RUNTIME_DIR to a private directory" % path)
    if not stat.S_ISDIR(st.st_mode):
        raise RundirError("runtime directory %s is not a directory; remove it" % path)
    if st.st_uid != os.geteuid():
        raise RundirError("runtime directory %s is owned by uid %d, not by uid %d; "
                          "remove it or set PMT_TOP_RUNTIME_DIR"
                          % (path, st.st_uid, os.geteuid()))
    if st.st_mode & 0o077:
        raise RundirError("runtime directory %s has mode %04o; it must not be "
                          "accessible by group or others (chmod 700 it)"
                          % (path, stat.S_IMODE(st.st_mode)))


def _select(environ):
    """(path the rules select, True when it is the shared /tmp default)."""
    env = os.environ if environ is None else environ
    # The same rules as pmt-top's (src/ipc/sock.c), to the byte: a test
    # (tests/inject/test_rundir.py) runs both side by side.
    override = env.get("PMT_TOP_RUNTIME_DIR")
    if override:
        if not override.startswith("/"):
            raise RundirError('PMT_TOP_RUNTIME_DIR must be an absolute path, not "%s"' % override)
        return override.rstrip("/") or "/", False
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and xdg.startswith("/"):
        try:
            st = os.stat(xdg)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
                return xdg.rstrip("/") + "/pmt-top", False
        except OSError:
            pass
    return shared_dir(), True


def default_dir(environ=None):
    """Return the runtime directory path the rules select (not created).

    This is the first choice: choose_dir() may use a fallback instead.
    """
    return _select(environ)[0]


def shared_dir():
    """/tmp/pmt-top-<euid>: the last choice of the rules, in a shared directory."""
    return os.path.join(SHARED_PARENT, "pmt-top-%d" % os.geteuid())


def _taken(path):
    """Why path cannot be this user's private directory (a phrase), or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != os.geteuid():
        return "is owned by uid %d" % st.st_uid
    if st.st_mode & 0o077:
        return "has mode %04o" % stat.S_IMODE(st.st_mode)
    return None


def _is_fallback(path):
    """True when path is a directory of this user with mode exactly 0700."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()
            and stat.S_IMODE(st.st_mode) == 0o700)


def fallback_dir():
    """An existing fallback directory of this user, else a new one; its path."""
    prefix = "pmt-top-%d." % os.geteuid()
    try:
        names = sorted(n for n in os.listdir(SHARED_PARENT)
                       if n.startswith(prefix) and len(n) > len(prefix))
    except OSError as e:
        raise RundirError("cannot list %s for a fallback runtime directory: %s"
                          % (SHARED_PARENT, e.strerror))
    for name in names:
        path = os.path.join(SHARED_PARENT, name)
        if _is_fallback(path):
            return path
    for _ in range(FALLBACK_TRIES):
        path = os.path.join(SHARED_PARENT, prefix + os.urandom(4).hex())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        except OSError as e:
            raise RundirError("cannot create runtime directory %s: %s" % (path, e.strerror))
        try:
            os.chmod(path, 0o700)         # exactly 0700 whatever the umask
        except OSError:
            pass
        return path
    raise RundirError("cannot create a fallback runtime directory in %s: every name "
                      "tried exists; set PMT_TOP_RUNTIME_DIR" % SHARED_PARENT)


def ensure_dir(path=None):
    """Create (mode 0700) and check the runtime directory; return its path.

    Without path, the directory choose_dir() selects (a fallback included).
    """
    if path is None:
        return choose_dir()[0]
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise RundirError("cannot create runtime directory %s: %s" % (path, e.strerror))
    check_dir(path)
    return path


def choose_dir(environ=None):
    """Create and check the runtime directory the rules select; (path, note).

    note is None, or when /tmp/pmt-top-<euid> was taken by someone else a
    sentence saying so and which fallback directory is used instead.
    """
    path, shared = _select(environ)
    if not shared:
        return ensure_dir(path), None
    try:
        return ensure_dir(path), None
    except RundirError:
        why = _taken(path)
        if why is None:
            raise                         # not taken: another failure
    alt = fallback_dir()
    check_dir(alt)
    return alt, "%s %s; using %s" % (path, why, alt)


def socket_location(pid=None):
    """(<runtime dir>/<pid>.sock, note) with the directory chosen by choose_dir()."""
    if pid is None:
        pid = os.getpid()
    directory, note = choose_dir()
    return os.path.join(directory, "%d.sock" % pid), note


def socket_path(pid=None, directory=None):
    """Return <runtime dir>/<pid>.sock, creating and checking the directory."""
    if directory is None:
        return socket_location(pid)[0]
    if pid is None:
        pid = os.getpid()
    return os.path.join(ensure_dir(directory), "%d.sock" % pid)
