"""Application-shaped code that keeps memory through C: a library loaded with
ctypes (CDLL releases the GIL around each call, PyDLL keeps it), as a wrapper
module or a C extension would. test_native.py runs these in a target."""
import ctypes
import os
import threading

LIB_PATH = os.environ.get("PMT_NATIVECASE", "")


def _load(kind):
    lib = kind(LIB_PATH)
    for name in ("nc_keep", "nc_keep_via_pointer", "nc_grow"):
        getattr(lib, name).restype = ctypes.c_void_p
    lib.nc_keep.argtypes = [ctypes.c_size_t]
    lib.nc_keep_via_pointer.argtypes = [ctypes.c_size_t]
    lib.nc_keep_zeroed.restype = ctypes.c_void_p
    lib.nc_keep_zeroed.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    lib.nc_keep_aligned.restype = ctypes.c_void_p
    lib.nc_keep_aligned.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    lib.nc_grow.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.nc_free.argtypes = [ctypes.c_void_p]
    lib.nc_churn.argtypes = [ctypes.c_long]
    for name in ("nc_keep_array", "nc_keep_aligned_alloc", "nc_keep_memalign"):
        getattr(lib, name).restype = ctypes.c_void_p
        getattr(lib, name).argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    lib.nc_keep_valloc.restype = ctypes.c_void_p
    lib.nc_keep_valloc.argtypes = [ctypes.c_size_t]
    return lib


clib = _load(ctypes.CDLL)      # the GIL is released during each call
plib = _load(ctypes.PyDLL)     # the GIL is held

# The C library itself through ctypes, as thin wrappers do: its functions
# looked up here, at import, long before anyone profiles.
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
MALLOC_AT_IMPORT = ctypes.cast(libc.malloc, ctypes.c_void_p).value

BUFFERS = []    # module-level cache that never evicts
RAW = []
SESSIONS = {}


class Session(object):
    def __init__(self, key, size):
        self.key = key
        self.handle = clib.nc_keep(size)          # session line

    def close(self):
        clib.nc_free(self.handle)
        self.handle = None


def cache_frame(size):
    """Keeps a buffer made by C code with the GIL released."""
    BUFFERS.append(clib.nc_keep(size))            # cache line


def cache_frames(n, size):
    for _ in range(n):
        cache_frame(size)


def decode_records(n, size):
    """Keeps buffers made with the GIL held: calloc, aligned and through a
    pointer variable (as libxml2's xmlMalloc)."""
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(plib.nc_keep_zeroed(size // 8, 8))      # zeroed line
        elif i % 3 == 1:
            out.append(plib.nc_keep_aligned(64, size))         # aligned line
        else:
            out.append(plib.nc_keep_via_pointer(size))         # pointer line
    BUFFERS.extend(out)


def decode_more(n, size):
    """The rest of the family, with the GIL held."""
    out = []
    for i in range(n):
        if i % 4 == 0:
            out.append(plib.nc_keep_array(size // 16, 16))     # array line
        elif i % 4 == 1:
            out.append(plib.nc_keep_aligned_alloc(64, size))   # aligned_alloc line
        elif i % 4 == 2:
            out.append(plib.nc_keep_memalign(256, size))       # memalign line
        else:
            out.append(plib.nc_keep_valloc(size))              # valloc line
    BUFFERS.extend(out)


def keep_raw(n, size):
    """Buffers from the C library's malloc, called through ctypes."""
    for _ in range(n):
        RAW.append(libc.malloc(size))                       # libc line


def keep_raw_late(n, size):
    """The same through a handle opened (and its function looked up) now."""
    late = ctypes.CDLL("libc.so.6")
    late.calloc.restype = ctypes.c_void_p
    late.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    for _ in range(n):
        RAW.append(late.calloc(1, size))                    # late libc line


def free_raw():
    while RAW:
        libc.free(RAW.pop())


def open_sessions(n, size):
    for i in range(n):
        SESSIONS[i] = Session(i, size)


def close_sessions():
    for s in list(SESSIONS.values()):
        s.close()
    SESSIONS.clear()


def grow_buffer(steps, step):
    """One buffer grown by realloc: only its last size is alive."""
    p = clib.nc_keep(step)
    for i in range(2, steps + 1):
        p = clib.nc_grow(p, step * i)             # grow line
    BUFFERS.append(p)


def free_all():
    while BUFFERS:
        clib.nc_free(BUFFERS.pop())


class Churn(object):
    """Threads doing malloc-heavy work in C (the GIL released)."""

    def __init__(self, nthreads):
        self.stop = threading.Event()
        self.rounds = [0] * nthreads
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(nthreads)]
        for t in self.threads:
            t.start()

    def _run(self, i):
        while not self.stop.is_set():
            clib.nc_churn(200)
            self.rounds[i] += 1

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()
        return self.rounds
