"""Allocations at known lines for the accuracy tests (markers find the lines)."""

KEEP = []


def alloc_a(n, size):
    for _ in range(n):
        KEEP.append(bytearray(size))  # MARK_A


def alloc_b(n, size):
    for _ in range(n):
        KEEP.append(b"\x01" * size)  # MARK_B


def deep(depth, n, size):
    if depth:
        return deep(depth - 1, n, size)
    alloc_a(n, size)  # MARK_DEEP


def mixed():
    alloc_a(2000, 1000)      # MARK_CALL_A1
    alloc_b(1000, 3000)      # MARK_CALL_B
    deep(3, 500, 2000)
    alloc_a(300, 5000)       # MARK_CALL_A2


def many_files(count, size):
    """One allocation site per generated file name (many distinct groups)."""
    for i in range(count):
        code = compile("KEEP.append(bytearray(%d))" % size, "gen_%05d.py" % i, "exec")
        exec(code, {"KEEP": KEEP})


def clear():
    del KEEP[:]


def line_of(marker):
    with open(__file__) as f:
        for i, text in enumerate(f, 1):
            if ("# " + marker) in text and "def line_of" not in text:
                return i
    raise LookupError(marker)
