"""Read a few source lines of a file named by the target's code, safely.

read_lines(path, linenos, deadline) returns {lineno: stripped text} for the
lines of path it could read. The path comes from the target's frames, and
the file behind it may have been replaced by another local user (deleted
source, a directory others can write): it may be a FIFO, a device, a
symlink to one, or a huge sparse file without a newline. So:

- the path is resolved with O_PATH (opens nothing: no device open(), no
  FIFO wait) and fstat'ed: only a regular file of at most MAX_FILE_SIZE
  bytes is read, and only after reopening that very inode through
  /proc/self/fd/N (O_RDONLY|O_NONBLOCK; device and inode must match).
  Without O_PATH or /proc nothing is read;
- at most MAX_SCAN bytes of a file are scanned, in READ_CHUNK reads, and
  only up to the last line wanted; lines past that get no text;
- at most MAX_LINE_CHARS characters of a line are kept (the rest is cut);
- nothing is read once time.monotonic() passes deadline (one deadline for
  a whole request: the lines not read by then are left out);
- a line is decoded with the file's PEP 263 encoding (detected from the
  first two lines, each cut to a bounded length), errors replaced;
- nothing is cached: linecache would keep whole files in the target.

Lines are counted as Python counts them: "\\n", "\\r\\n" and a lone "\\r"
each end a line. read_lines never raises: a file it cannot or must not
read gives {}.
"""

import codecs
import os
import re
import stat
import time

MAX_FILE_SIZE = 64 * 1024 * 1024
MAX_SCAN = 4 * 1024 * 1024
MAX_LINE_CHARS = 400
READ_CHUNK = 64 * 1024
MAX_LINE_BYTES = 4 * MAX_LINE_CHARS     # enough bytes for MAX_LINE_CHARS characters
ENCODING_LINES = 2                       # PEP 263: the cookie is on line 1 or 2

# PEP 263, as tokenize.detect_encoding() reads it.
_COOKIE = re.compile(br"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)
_BLANK = re.compile(br"^[ \t\f]*(?:[#\r\n]|$)", re.ASCII)

_O_PATH = getattr(os, "O_PATH", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)


def _open_regular(path):
    """An O_RDONLY fd of path if it is a small regular file, else None."""
    if not _O_PATH or not isinstance(path, str) or not path or "\0" in path:
        return None
    try:
        pfd = os.open(path, _O_PATH | _O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        st = os.fstat(pfd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_SIZE:
            return None
        try:
            fd = os.open("/proc/self/fd/%d" % pfd,
                         os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC | _O_NOCTTY)
        except OSError:
            return None
        try:
            st2 = os.fstat(fd)
            if (st2.st_dev, st2.st_ino) == (st.st_dev, st.st_ino) and stat.S_ISREG(st2.st_mode):
                fd, keep = -1, fd
                return keep
            return None
        finally:
            if fd >= 0:
                os.close(fd)
    except OSError:
        return None
    finally:
        os.close(pfd)


def _scan(fd, wanted, last, deadline):
    """{lineno: raw bytes (cut to MAX_LINE_BYTES, no line end)} for the lines
    wanted and the first ENCODING_LINES lines (for the encoding detection)."""
    raw = {}
    lineno = 1
    cur = bytearray()
    keep = True
    skip_lf = False             # the previous chunk ended with "\r"
    scanned = 0
    while scanned < MAX_SCAN:
        if time.monotonic() >= deadline:
            return raw
        try:
            chunk = os.read(fd, min(READ_CHUNK, MAX_SCAN - scanned))
        except InterruptedError:
            continue
        if not chunk:
            if cur and keep:                # a last line without a line end
                raw[lineno] = bytes(cur)
            break
        scanned += len(chunk)
        n = len(chunk)
        pos = 1 if skip_lf and chunk[0:1] == b"\n" else 0
        skip_lf = False
        while pos < n:
            lf = chunk.find(b"\n", pos)
            end = chunk.find(b"\r", pos, n if lf < 0 else lf)
            if end < 0:
                end = n if lf < 0 else lf
            if keep and len(cur) < MAX_LINE_BYTES:
                cur += chunk[pos:min(end, pos + MAX_LINE_BYTES - len(cur))]
            if end == n:
                break                       # the line goes on in the next chunk
            if keep:
                raw[lineno] = bytes(cur)
            lineno += 1
            if lineno > last:
                return raw
            cur = bytearray()
            keep = lineno in wanted or lineno <= ENCODING_LINES
            pos = end + 1
            if chunk[end:end + 1] == b"\r":
                if pos == n:
                    skip_lf = True          # maybe "\r\n" across two chunks
                elif chunk[pos:pos + 1] == b"\n":
                    pos += 1
    return raw


def _encoding(raw):
    """The PEP 263 encoding of a file from its first lines; utf-8 if unknown.

    What tokenize.detect_encoding() finds, read here: the tuples and lists
    that function makes end up in CPython's free lists, where tracemalloc
    still counts them as allocated by tokenize.py, as if the application
    had.
    """
    first = raw.get(1, b"")
    bom = first.startswith(codecs.BOM_UTF8)
    if bom:
        first = first[len(codecs.BOM_UTF8):]
    for line in (first, raw.get(2, b"")):
        m = _COOKIE.match(line)
        if m is not None:
            try:
                enc = codecs.lookup(m.group(1).decode("ascii")).name
            except (LookupError, UnicodeDecodeError):
                return "utf-8"
            if bom and enc != "utf-8":
                return "utf-8"
            return "utf-8-sig" if bom else enc
        if not _BLANK.match(line):
            break
    return "utf-8-sig" if bom else "utf-8"


def read_lines(path, linenos, deadline):
    """{lineno: stripped text} for the lines of path that could be read.

    linenos is a collection of positive ints; deadline a time.monotonic()
    value after which nothing more is read. Never raises.
    """
    try:
        wanted = set(n for n in linenos if isinstance(n, int) and n > 0)
        if not wanted or time.monotonic() >= deadline:
            return {}
        fd = _open_regular(path)
        if fd is None:
            return {}
        try:
            raw = _scan(fd, wanted, max(max(wanted), ENCODING_LINES), deadline)
        finally:
            os.close(fd)
        enc = _encoding(raw)
        out = {}
        for n in wanted:
            b = raw.get(n)
            if b is None:
                continue
            try:
                text = b.decode(enc, "replace")
            except Exception:
                text = b.decode("utf-8", "replace")
            if n == 1 and text.startswith("\ufeff"):
                text = text[1:]
            out[n] = text.strip()[:MAX_LINE_CHARS]
        return out
    except Exception:
        return {}
