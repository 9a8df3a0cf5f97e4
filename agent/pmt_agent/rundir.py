"""Where the agent's socket lives, and the checks that keep it private.

Rules (docs/protocol.md, "Where the socket lives"): the directory is
$PMT_TOP_RUNTIME_DIR if set, else $XDG_RUNTIME_DIR/pmt-top when XDG_RUNTIME_DIR
is a directory owned by the user, else /tmp/pmt-top-<uid>. It is created with
mode 0700 and refused when it is a symlink, not a directory, owned by another
uid or accessible by group or others. The socket is <dir>/<pid>.sock.

Every failure raises RundirError with a sentence saying what is wrong and what
to do about it.
"""

import os
import stat


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
    if st.st_uid != os.getuid():
        raise RundirError("runtime directory %s is owned by uid %d, not by uid %d; "
                          "remove it or set PMT_TOP_RUNTIME_DIR"
                          % (path, st.st_uid, os.getuid()))
    if st.st_mode & 0o077:
        raise RundirError("runtime directory %s has mode %04o; it must not be "
                          "accessible by group or others (chmod 700 it)"
                          % (path, stat.S_IMODE(st.st_mode)))


def default_dir(environ=None):
    """Return the runtime directory path the rules select (not created)."""
    env = os.environ if environ is None else environ
    override = env.get("PMT_TOP_RUNTIME_DIR")
    if override:
        return override
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg:
        try:
            st = os.stat(xdg)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
                return os.path.join(xdg, "pmt-top")
        except OSError:
            pass
    return "/tmp/pmt-top-%d" % os.getuid()


def ensure_dir(path=None):
    """Create (mode 0700) and check the runtime directory; return its path."""
    if path is None:
        path = default_dir()
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise RundirError("cannot create runtime directory %s: %s" % (path, e.strerror))
    check_dir(path)
    return path


def socket_path(pid=None, directory=None):
    """Return <runtime dir>/<pid>.sock, creating and checking the directory."""
    if pid is None:
        pid = os.getpid()
    return os.path.join(ensure_dir(directory), "%d.sock" % pid)
