"""Application-shaped code for the profiler's ownership tests.

Written the way application code is: locals die at return, objects are handed
from one function to another, threads and generators and exceptions. Each
scenario keeps what it keeps in module globals so a test can free it later.
"""
import asyncio
import collections
import threading
import time

KEEP = []          # what keeper() retains
HELD = {}          # made by make_blob(), dropped by drop_blob()
REC = []
GEN_KEPT = []
CORO_KEPT = []
THREAD_KEPT = {"a": [], "b": []}
RAISED_KEPT = []
LOOP = {"stop": False, "n": 0, "buf": collections.deque(maxlen=20000),
        "started": threading.Event()}
HEAP = {}


def keeper():
    KEEP.append([bytes(1000) for _ in range(2048)])


def churn():
    tmp = [bytes(1000) for _ in range(2048)]
    return len(tmp)


def churn_caller(n):
    total = 0
    for _ in range(n):
        total += churn()
    return total


def make_blob():
    HELD["blob"] = bytearray(3000000)


def drop_blob():
    HELD.pop("blob")


def recurse(n):
    if n == 0:
        REC.append(bytearray(1000000))
        return 0
    return recurse(n - 1) + 1


def chunks():
    for _ in range(4):
        yield bytearray(500000)


def consume_chunks():
    for c in chunks():
        GEN_KEPT.append(c)


async def fetch_part(i):
    part = bytearray(250000)
    await asyncio.sleep(0)
    part += bytearray(250000)
    return part


async def gather_parts():
    parts = await asyncio.gather(*(fetch_part(i) for i in range(4)))
    CORO_KEPT.extend(parts)


def run_coroutines():
    asyncio.run(gather_parts())


def thread_a():
    THREAD_KEPT["a"].append([bytes(1000) for _ in range(3000)])


def thread_b():
    THREAD_KEPT["b"].append(bytearray(1000000))


def run_threads():
    ts = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def fails_keeping():
    RAISED_KEPT.append(bytearray(1000000))
    scratch = bytearray(2000000)
    raise ValueError(len(scratch))


def handles_failure():
    try:
        fails_keeping()
    except ValueError:
        return False
    return True


def forever():
    """A loop that never returns while the test looks: a rotating buffer."""
    buf = LOOP["buf"]
    LOOP["started"].set()
    while not LOOP["stop"]:
        buf.append(b"x" * 100 + str(LOOP["n"]).encode())
        LOOP["n"] += 1
        if LOOP["n"] % 1000 == 0:
            time.sleep(0.001)


def start_forever():
    t = threading.Thread(target=forever, name="forever")
    t.daemon = True
    t.start()
    LOOP["started"].wait(10)
    return t


# A heap of about 80 MB built by a handful of lines of different weight, the
# way a service fills caches: records as dicts, strings, byte buffers, lists.
def load_users(n):
    return [{"id": i, "name": "user-%d" % i, "email": "u%d@example.org" % i} for i in range(n)]


def load_blobs(n):
    return [bytes(2000 + (i % 7) * 100) for i in range(n)]


def load_names(n):
    return ["name-%08d-%s" % (i, "x" * (i % 40)) for i in range(n)]


def load_rows(n):
    return [(i, i * 2.5, str(i)) for i in range(n)]


def load_buffers(n):
    return [bytearray(64 * 1024) for _ in range(n)]


def load_small(n):
    return [[i] for i in range(n)]


def build_heap():
    HEAP["users"] = load_users(80000)       # ~24 MB
    HEAP["blobs"] = load_blobs(8000)        # ~18 MB
    HEAP["names"] = load_names(160000)      # ~13 MB
    HEAP["rows"] = load_rows(90000)         # ~10 MB
    HEAP["buffers"] = load_buffers(110)     # ~7 MB
    HEAP["small"] = load_small(60000)       # ~5 MB
