"""A target whose memory is of a kind the test asks for, on stdin.

native N   N MiB kept by a C library: a request handler calls malloc through
           ctypes and registers the block (its Python locals die at return)
lxml N     N documents parsed by lxml (Debian's python3-lxml) kept in a list
python N   about N MiB of small Python objects kept in a module-level cache
frag N     N MiB of 1-2 KiB blocks (from malloc), then all but one in 16 freed
           again, interleaved: the heap keeps its size, mostly free
used       prints the bytes malloc has handed out (glibc's mallinfo2)
profiling  prints "native" once the agent's profiler runs with its native
           hooks, "python" when it runs without them, else "no"
Each command answers "done" on stdout once it has finished.
"""
import ctypes
import sys

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks",
                                               "keepcost")]


libc.mallinfo2.restype = MallInfo2

_native_blocks = []
_documents = []
_cache = {}
_survivors = []


def handle_native(i):
    size = 256 * 1024
    buf = libc.malloc(size)  # CTYPES
    libc.memset(buf, i & 0xFF, size)
    _native_blocks.append(buf)


def handle_lxml(i):
    from lxml import etree
    body = "".join("<item id='%d-%d'>%s</item>" % (i, k, "payload " * 64) for k in range(200))
    _documents.append(etree.fromstring("<doc>%s</doc>" % body))  # LXML


def handle_python(i):
    # A cache entry of small objects: what an application keeps per key.
    _cache["user-%d" % i] = {"id": i, "name": "name %d" % i, "tags": ("a", "b")}


def fragment(mib):
    blocks = [bytes(1024 + (k % 8) * 128) for k in range(mib * 1024 * 1024 // 1500)]
    _survivors.extend(blocks[::16])


def main():
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        n = int(arg or 0)
        if cmd == "native":
            for i in range(n * 4):
                handle_native(i)
        elif cmd == "lxml":
            for i in range(n):
                handle_lxml(i)
        elif cmd == "python":
            start = len(_cache)
            for i in range(start, start + n * 1024 * 1024 // 400):
                handle_python(i)
        elif cmd == "frag":
            fragment(n)
        elif cmd == "used":
            m = libc.mallinfo2()
            print(m.uordblks + m.hblkhd, flush=True)
        elif cmd == "profiling":
            prof = sys.modules.get("pmt_agent.profiler")
            st = prof.status() if prof is not None else {}
            print(("native" if st.get("native", {}).get("on") else "python") if st.get("running")
                  else "no", flush=True)
        print("done", flush=True)


main()
