"""Native allocations by Python line: the profiler's GOT hooks in a real
target, on a C library loaded with ctypes (native_scenarios.py).

What each scenario keeps is known to the byte (the C code allocates exactly
what it is asked), so the rows are checked against it within the sampling
error at the default interval. Then the hooks' safety: on and off 100 times
under four threads doing malloc-heavy work in C, every GOT entry back byte
for byte; libraries loaded and unloaded while hooked; fork; a hook address
kept by the library and called after stop.
"""
import os
import shutil
import unittest

import agenttest
from agenttest import Target, ClassScope

SCEN = os.path.join(agenttest.HERE, "native_scenarios.py")
LIB = os.environ.get("PMT_NATIVECASE", "")


def line_of(marker):
    with open(SCEN) as f:
        for n, text in enumerate(f, 1):
            if text.rstrip().endswith("# " + marker):
                return n
    raise AssertionError("no line marked %r" % marker)


def native_rows(reply):
    """(file basename, line) -> size of the native rows of a lineno reply."""
    out = {}
    for g in reply["groups"]:
        if g.get("native"):
            f, ln = g["frames"][0]
            out[(os.path.basename(f), ln)] = out.get((os.path.basename(f), ln), 0) + g["size"]
    return out


def lines_of(*functions):
    """Every line of these functions of native_scenarios.py."""
    import ast
    with open(SCEN) as f:
        tree = ast.parse(f.read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in functions:
            out.update(range(node.lineno, node.end_lineno + 1))
    return out


def native_in(reply, lines):
    """Bytes of the native groups of a lineno reply charged to one of LINES
    (line numbers of native_scenarios.py)."""
    return sum(g["size"] for g in reply["groups"]
               if g.get("native") and os.path.basename(g["frames"][0][0]) == "native_scenarios.py"
               and g["frames"][0][1] in lines)


def within(actual, expected, rel):
    return abs(actual - expected) <= rel * expected


@unittest.skipUnless(agenttest.EXPECT_NATIVE, "no native build for this interpreter")
@unittest.skipUnless(LIB, "PMT_NATIVECASE is not set (run through ctest)")
class Attribution(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Target(ClassScope(cls))
        cls.c = cls.t.client()
        cls.t.call("import native_scenarios as s")     # the application runs, then we look
        st = cls.c.ok("profile_start")
        assert st["running"] and st["native"]["on"], st

    @classmethod
    def tearDownClass(cls):
        cls.c.ok("profile_stop")

    def rows(self):
        return native_rows(self.c.ok("profile", key="lineno", limit=500))

    def lineno(self):
        return self.c.ok("profile", key="lineno", limit=5000)

    def test_1_gil_released_calls_are_named_by_line(self):
        # With the GIL released the frames cannot be read: the blocks take the
        # stack the thread is on when it next allocates with the GIL, which is
        # the calling line when the call's result is a new object (a pointer
        # above 2^30 is), else a line of a caller (a small int comes from a
        # free list on 3.14).
        self.t.call("s.cache_frames(2000, 10000)")
        got = native_in(self.lineno(), lines_of("cache_frame", "cache_frames"))
        self.assertTrue(within(got, 2000 * 10000, 0.10), got)
        st = self.c.ok("status")["profile"]["native"]
        self.assertEqual(st["no_stack_bytes"], 0, st)    # every block found its stack

    def test_2_gil_held_calloc_aligned_and_pointer_variable(self):
        self.t.call("s.decode_records(1500, 8192)")
        rows = self.rows()
        for marker in ("zeroed line", "aligned line", "pointer line"):
            got = rows.get(("native_scenarios.py", line_of(marker)), 0)
            self.assertTrue(within(got, 500 * 8192, 0.10), (marker, got))

    def test_2b_reallocarray_aligned_alloc_memalign_valloc(self):
        self.t.call("s.decode_more(2000, 8192)")
        rows = self.rows()
        for marker in ("array line", "aligned_alloc line", "memalign line", "valloc line"):
            got = rows.get(("native_scenarios.py", line_of(marker)), 0)
            self.assertTrue(within(got, 500 * 8192, 0.10), (marker, got))

    def test_3_frees_are_credited(self):
        self.t.call("s.open_sessions(500, 40000)")
        lines = lines_of("__init__", "open_sessions")
        got = native_in(self.lineno(), lines)
        self.assertTrue(within(got, 500 * 40000, 0.10), got)
        self.t.call("s.close_sessions()")
        self.assertLess(native_in(self.lineno(), lines), 40000)

    def test_4_realloc_keeps_only_the_last_size(self):
        self.t.call("s.grow_buffer(200, 50000)")
        got = self.rows().get(("native_scenarios.py", line_of("grow line")), 0)
        self.assertTrue(within(got, 200 * 50000, 0.10), got)

    def test_4b_the_c_library_called_through_ctypes(self):
        # libc.malloc looked up at import (before the profiler started), and
        # calloc looked up through a handle opened after: both charged to
        # their function (CDLL releases the GIL: as in test_1, the line is
        # the call's, or on 3.14 the loop's), and their frees credited.
        self.t.call("s.keep_raw(2000, 10000)")
        self.t.call("s.keep_raw_late(1000, 10000)")
        reply = self.lineno()
        got = native_in(reply, lines_of("keep_raw"))
        self.assertTrue(within(got, 2000 * 10000, 0.10), got)
        got = native_in(reply, lines_of("keep_raw_late"))
        self.assertTrue(within(got, 1000 * 10000, 0.10), got)
        self.t.call("s.free_raw()")
        self.assertLess(native_in(self.lineno(), lines_of("keep_raw", "keep_raw_late")), 2 * 10000)

    def test_5_functions_view_has_native_rows(self):
        self.t.call("s.cache_frames(500, 10000)")
        rows = self.c.ok("profile", key="function", limit=500)["rows"]
        mine = [r for r in rows if r["function"] == "cache_frame" and r.get("native")]
        self.assertEqual(len(mine), 1, rows[:5])
        self.assertEqual(mine[0]["line"], line_of("cache line"))
        self.assertGreater(mine[0]["own_size"], 500 * 10000 * 0.9)
        # its callers' totals include it
        callers = [r for r in rows if r["function"] == "cache_frames" and not r.get("native")]
        self.assertGreaterEqual(callers[0]["total_size"], mine[0]["own_size"] * 0.2)


@unittest.skipUnless(agenttest.EXPECT_NATIVE, "no native build for this interpreter")
@unittest.skipUnless(LIB, "PMT_NATIVECASE is not set (run through ctest)")
class Safety(unittest.TestCase):
    def target(self):
        t = Target(self)
        c = t.client()
        t.call("import native_scenarios as s\nimport _pmt_sampler as sp")
        return t, c

    def test_on_off_100_times_under_malloc_load(self):
        t, c = self.target()
        before = t.call("result = sorted(sp.got_entries())")
        ours = [e for e in before if os.path.basename(e[0]) == os.path.basename(LIB)]
        self.assertGreaterEqual(len(ours), 4, before)   # malloc, calloc, realloc, free, ... and the pointer
        t.call("churn = s.Churn(4)")
        changed = 0
        hooks = set()
        for i in range(100):
            st = c.ok("profile_start")
            self.assertTrue(st["native"]["on"], st)
            if i % 25 == 0:
                during = dict(((e[0], e[2]), e[3]) for e in t.call("result = sp.got_entries()"))
                for e in ours:
                    if during[(e[0], e[2])] != e[3]:
                        changed += 1
                        hooks.add(during[(e[0], e[2])])
            c.ok("profile_stop")
        rounds = t.call("result = churn.finish()")
        after = t.call("result = sorted(sp.got_entries())")
        # Byte for byte in every object loaded before; an object the C library
        # loaded meanwhile (libgcc_s for thread exit, on old glibc paths) holds
        # none of the hooks.
        objects = set(e[0] for e in before)
        self.assertEqual(before, [e for e in after if e[0] in objects])
        self.assertEqual([e for e in after if e[3] in hooks], [])
        self.assertEqual(changed, 4 * len(ours))        # they were hooked each time looked at
        self.assertTrue(all(r > 0 for r in rounds), rounds)
        self.assertTrue(t.alive())

    def test_library_loaded_later_is_hooked(self):
        t, c = self.target()
        c.ok("profile_start")
        late = os.path.join(agenttest.mkdtemp(self), "liblate.so")
        shutil.copy(LIB, late)
        t.call("late = s.ctypes.CDLL(%r)\n"
               "late.nc_keep.restype = s.ctypes.c_void_p\n"
               "late.nc_keep.argtypes = [s.ctypes.c_size_t]\n"
               "def keep_late(n):\n"
               "    out = []\n"
               "    for _ in range(n):\n"
               "        out.append(late.nc_keep(8192))\n"
               "    return out\n" % late)
        st = c.ok("status")["profile"]["native"]       # a status looks for new objects
        t.call("kept = keep_late(1000)")
        rows = c.ok("profile", key="function", limit=500)["rows"]
        mine = [r for r in rows if r["function"] == "keep_late" and r.get("native")]
        self.assertTrue(mine and within(mine[0]["own_size"], 1000 * 8192, 0.10), (st, rows[:5]))

    def test_library_unloaded_while_hooked(self):
        t, c = self.target()
        gone = os.path.join(agenttest.mkdtemp(self), "libgone.so")
        shutil.copy(LIB, gone)
        t.call("import _ctypes\n"
               "g = s.ctypes.CDLL(%r)\n"
               "g.nc_keep.restype = s.ctypes.c_void_p\n"
               "g.nc_free.argtypes = [s.ctypes.c_void_p]\n"
               "g.nc_free(g.nc_keep(100))\n" % gone)
        st = c.ok("profile_start")["native"]
        t.call("h = g._handle\ndel g\n_ctypes.dlclose(h)\n"
               "import os\n"
               "result = any(%r in l for l in open('/proc/self/maps'))" % gone)
        self.assertFalse(t.call("result = any(%r in l for l in open('/proc/self/maps'))" % gone))
        c.ok("status")
        t.call("s.cache_frames(100, 1000)")
        c.ok("profile_stop")
        self.assertTrue(t.alive())
        self.assertGreater(st["entries"], 0)

    def test_fork_child_allocates_and_exits(self):
        t, c = self.target()
        c.ok("profile_start")
        t.call("churn = s.Churn(2)")
        status = t.call(
            "import os\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    s.cache_frames(200, 5000)\n"
            "    s.free_all()\n"
            "    os._exit(7)\n"
            "result = os.waitpid(pid, 0)[1]")
        t.call("churn.finish()")
        self.assertEqual(os.WEXITSTATUS(status), 7)
        c.ok("profile_stop")
        self.assertTrue(t.alive())

    def test_hook_address_kept_by_the_library_works_after_stop(self):
        t, c = self.target()
        real = t.call("result = s.ctypes.c_void_p.in_dll(s.clib, 'nc_mallocp').value")
        c.ok("profile_start")
        hooked = t.call("result = s.ctypes.c_void_p.in_dll(s.clib, 'nc_mallocp').value")
        self.assertNotEqual(real, hooked)
        c.ok("profile_stop")
        self.assertEqual(t.call("result = s.ctypes.c_void_p.in_dll(s.clib, 'nc_mallocp').value"), real)
        # someone kept the hook's address: it still allocates (a pass-through)
        ok = t.call("f = s.ctypes.CFUNCTYPE(s.ctypes.c_void_p, s.ctypes.c_size_t)(%d)\n"
                    "p = f(4096)\n"
                    "s.clib.nc_free(p)\n"
                    "result = bool(p)" % hooked)
        self.assertTrue(ok)

    def test_ctypes_function_pointers_put_back(self):
        # A pointer made before start holds the hook while on and its own
        # value after stop; one looked up while on (through dlsym) gets the
        # function after stop; both allocate and free throughout.
        t, c = self.target()
        ptr = "s.ctypes.cast(%s, s.ctypes.c_void_p).value"
        first = t.call("result = " + ptr % "s.libc.malloc")
        self.assertEqual(first, t.call("result = s.MALLOC_AT_IMPORT"))
        c.ok("profile_start")
        during = t.call("late = s.ctypes.CDLL('libc.so.6')\n"
                        "late.malloc.restype = s.ctypes.c_void_p\n"
                        "late.malloc.argtypes = [s.ctypes.c_size_t]\n"
                        "late.free.argtypes = [s.ctypes.c_void_p]\n"
                        "result = [%s, %s]" % (ptr % "s.libc.malloc", ptr % "late.malloc"))
        self.assertNotEqual(during[0], first)
        self.assertEqual(during[0], during[1])          # the same hook
        t.call("s.libc.free(s.libc.malloc(100))\nlate.free(late.malloc(100))")
        c.ok("profile_stop")
        after = t.call("result = [%s, %s, %s]" % (ptr % "s.libc.malloc", ptr % "late.malloc",
                                                  ptr % "s.ctypes.CDLL('libc.so.6').malloc"))
        self.assertEqual(after[0], first)
        self.assertEqual(after[1], after[2])           # what dlsym gives without the hooks
        self.assertNotIn(during[0], after)
        t.call("s.libc.free(s.libc.malloc(100))\nlate.free(late.malloc(100))")
        self.assertTrue(t.alive())

    def test_native_false_leaves_the_got_alone(self):
        t, c = self.target()
        before = t.call("result = sorted(sp.got_entries())")
        st = c.ok("profile_start", native=False)
        self.assertFalse(st["native"]["on"])
        self.assertEqual(st["native"]["entries"], 0)
        self.assertEqual(t.call("result = sorted(sp.got_entries())"), before)
        t.call("s.cache_frames(300, 10000)")
        rows = native_rows(c.ok("profile", key="lineno", limit=500))
        self.assertEqual(rows, {})
        c.ok("profile_stop")


if __name__ == "__main__":
    agenttest.main()
