"""Scenarios for the per-function memory tracer, run one per process.

    python ft_scenarios.py SCENARIO MODE

The agent package comes from $PMT_AGENT_DIR; the native module, when the
mode ends in -c, from $PMT_TOP_NATIVE_DIR (the runner sets
PMT_AGENT_NO_NATIVE for the pure-Python modes). Each scenario checks its
own results and exits 1 with a message on the first failure, 0 after
printing "OK <scenario> <mode>".
"""

import gc
import importlib.machinery
import importlib.util
import os
import sys
import threading
import time

sys.path.insert(0, os.environ["PMT_AGENT_DIR"])
from pmt_agent import functions as F  # noqa: E402

MB = 1 << 20
TOL = 0.02          # ±2 % on byte figures
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def close_to(value, expected, what, tol=TOL):
    check(abs(value - expected) <= tol * expected,
          "%s: %d is not within %.0f%% of %d" % (what, value, tol * 100, expected))


def load_native():
    """The extension, loaded directly (only for its allocators() check)."""
    d = os.environ.get("PMT_TOP_NATIVE_DIR")
    if not d:
        return None
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(d, "_pmt_functrace" + suffix)
        if os.path.isfile(path):
            loader = importlib.machinery.ExtensionFileLoader("_pmt_functrace", path)
            spec = importlib.util.spec_from_file_location("_pmt_functrace", path, loader=loader)
            mod = importlib.util.module_from_spec(spec)
            loader.exec_module(mod)
            return sys.modules.setdefault("_pmt_functrace", mod)
    return None


def rows(table):
    return {f["name"]: f for f in table["functions"]}


def start(mode, **kw):
    st = F.start(mode=mode, **kw)
    check(st["running"] and st["mode"] == mode and not st["error"], "start failed: %r" % (st,))
    check(st["native"] == mode.endswith("-c"), "native flag %r for mode %s" % (st["native"], mode))
    return st


def filled(n):
    # Touches every page (bytearray(n) would come from calloc and stay unmapped).
    return bytearray(b"\x01") * n


# -- scenarios ---------------------------------------------------------------

kept = []


def keeper():
    kept.append(filled(10 * MB))


def keeper_caller():
    small = [str(i) for i in range(100)]
    keeper()
    return small


def sc_keep(mode):
    start(mode)
    keeper_caller()
    t = F.table(limit=100)
    F.stop()
    r = rows(t)
    close_to(r["keeper"]["net"], 10 * MB, "keeper net")
    close_to(r["keeper_caller"]["net"], 10 * MB, "keeper_caller net (includes keeper)")
    check(r["keeper_caller"]["net"] >= r["keeper"]["net"], "caller net below callee net")
    check(r["keeper"]["calls"] == 1, "keeper calls %d" % r["keeper"]["calls"])
    check(r["keeper"]["max"] == r["keeper"]["net"], "keeper max != net for one call")


def chunk():
    return filled(MB)


def churn():
    for _ in range(100):
        buf = chunk()
    del buf


def sc_churn(mode):
    start(mode)
    churn()
    t = F.table(limit=100, sort="gross")
    F.stop()
    r = rows(t)
    check(t["functions"][0]["name"] in ("churn", "chunk"), "top by gross is %s" % t["functions"][0]["name"])
    close_to(r["churn"]["gross"], 100 * MB, "churn gross")
    check(abs(r["churn"]["net"]) <= TOL * 100 * MB, "churn net %d is not about 0" % r["churn"]["net"])
    check(r["chunk"]["calls"] == 100, "chunk calls %d" % r["chunk"]["calls"])
    close_to(r["chunk"]["mean"], MB, "chunk mean")


def rec(n, acc):
    acc.append(filled(100 * 1024))
    if n:
        rec(n - 1, acc)
    return acc


def sc_recursion(mode):
    start(mode)
    rec(49, [])
    rec(49, [])
    t = F.table(limit=100)
    F.stop()
    r = rows(t)["rec"]
    check(r["calls"] == 100, "rec calls %d" % r["calls"])
    check(r["outer"] == 2, "rec outermost calls %d" % r["outer"])
    close_to(r["net"], 2 * 50 * 100 * 1024, "rec net (once per outermost call)")
    close_to(r["max"], 50 * 100 * 1024, "rec max")


def gen(n):
    for _ in range(n):
        yield filled(MB)
        time.sleep(0)


def consume():
    out = []
    g = gen(6)
    for item in g:
        out.append(item)
        kept.append(filled(MB // 4))    # between resumes: the consumer's bytes
    return out


async def coro_alloc(held):
    import asyncio
    held.append(filled(MB))
    await asyncio.sleep(0)
    held.append(filled(MB))
    await asyncio.sleep(0)
    held.append(filled(MB))


def sc_generator(mode):
    import asyncio
    start(mode)
    got = consume()
    held = []
    asyncio.run(coro_alloc(held))
    t = F.table(limit=500)
    F.stop()
    r = rows(t)
    close_to(r["coro_alloc"]["net"], 3 * MB, "coroutine net over its resumes")
    check(r["coro_alloc"]["calls"] == 1, "coroutine starts %d" % r["coro_alloc"]["calls"])
    check(r["coro_alloc"]["outer"] >= 3, "coroutine segments %d" % r["coro_alloc"]["outer"])
    check(len(got) == 6, "generator yielded %d" % len(got))
    close_to(r["gen"]["net"], 6 * MB, "generator net over its resumes")
    check(r["gen"]["calls"] == 1, "generator starts %d" % r["gen"]["calls"])
    check(r["gen"]["outer"] == 7, "generator segments %d" % r["gen"]["outer"])
    close_to(r["consume"]["net"], 6 * MB + 6 * (MB // 4), "consumer net includes the generator")


def alloc_a(stop):
    mine = []
    while not stop.is_set() and len(mine) < 80:
        mine.append(filled(100 * 1024))
        time.sleep(0.0005)
    kept.append(mine)


def alloc_b(stop):
    mine = []
    while not stop.is_set() and len(mine) < 30:
        mine.append(filled(100 * 1024))
        time.sleep(0.0005)
    kept.append(mine)


def runner(fn, go, stop):
    go.wait()
    fn(stop)


def sc_threads(mode):
    go, stop = threading.Event(), threading.Event()
    # One thread exists before the tracer starts, one is started after.
    ta = threading.Thread(target=runner, args=(alloc_a, go, stop), name="worker-a", daemon=True)
    early = not mode == "setprofile-py" or sys.version_info >= (3, 12)
    if early:
        ta.start()
    start(mode)
    if not early:
        ta.start()
    tb = threading.Thread(target=runner, args=(alloc_b, go, stop), name="worker-b", daemon=True)
    tb.start()
    go.set()
    ta.join(30)
    tb.join(30)
    t = F.table(limit=100)
    F.stop()
    r = rows(t)
    # Python-level tracing attributes a global counter: allow more slack.
    tol = TOL if mode.endswith("-c") else 0.10
    close_to(r["alloc_a"]["net"], 80 * 100 * 1024, "thread A function net", tol)
    close_to(r["alloc_b"]["net"], 30 * 100 * 1024, "thread B function net", tol)
    check([x["name"] for x in r["alloc_a"]["threads"]] == ["worker-a"],
          "alloc_a threads %r" % r["alloc_a"]["threads"])
    check([x["name"] for x in r["alloc_b"]["threads"]] == ["worker-b"],
          "alloc_b threads %r" % r["alloc_b"]["threads"])


def inner_raise(held):
    held.append(filled(MB))
    raise KeyError("boom")


def middle(held):
    inner_raise(held)


def outer_catch(held):
    try:
        middle(held)
    except KeyError:
        pass



def sc_exception(mode):
    start(mode)
    held = []
    for _ in range(3):
        outer_catch(held)
    base = F._engine.info()["open_frames"]   # only info()'s callers may be open
    try:
        middle(held)
    except KeyError:
        pass
    after = F._engine.info()["open_frames"]
    t = F.table(limit=100)
    F.stop()
    r = rows(t)
    check(after == base, "open frames %d after unwinding, %d before" % (after, base))
    for name in ("inner_raise", "middle", "outer_catch"):
        exp = 3 if name == "outer_catch" else 4
        check(r[name]["calls"] == exp and r[name]["outer"] == exp,
              "%s calls %d outer %d (frames left open?)" % (name, r[name]["calls"], r[name]["outer"]))
    close_to(r["inner_raise"]["net"], 4 * MB, "net of the unwound function")
    close_to(r["outer_catch"]["net"], 3 * MB, "net of the catching caller")


def worker_load(stop):
    n = 0
    while not stop.is_set():
        d = {str(i): [str(i)] * 3 for i in range(200)}
        n += len(d)
        time.sleep(0)
    return n


def statm_rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def sc_onoff(mode):
    import tracemalloc
    native = load_native()
    before = native.allocators() if native else None
    stop = threading.Event()
    workers = [threading.Thread(target=worker_load, args=(stop,), name="load-%d" % i, daemon=True)
               for i in range(3)]
    for w in workers:
        w.start()
    rss0 = None
    try:
        for i in range(100):
            step = i % 5
            if step == 1:
                tracemalloc.start()             # hooked before the tracer
            F.start(mode=mode)
            if step == 2:
                tracemalloc.start()             # hooks after the tracer
            worker_load_once()
            t = F.table(limit=5)
            check(t["running"] and not t["error"], "iteration %d: %r" % (i, t.get("error")))
            if step == 1:
                tracemalloc.stop()              # drops a hook installed after it
                F.table(limit=5)                # notices, re-installs
            st = F.stop()
            check(not st["running"] and not st["error"], "stop %d: %r" % (i, st.get("error")))
            if step == 2:
                if native and mode.endswith("-c"):
                    check(st["hook"]["pass_through"], "not pass-through under tracemalloc")
                tracemalloc.stop()
            if i == 10:
                gc.collect()
                rss0 = statm_rss()
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    gc.collect()
    F.start(mode=mode)      # a last clean cycle removes a pass-through hook
    F.stop()
    check(not tracemalloc.is_tracing(), "tracemalloc left on")
    if native:
        after = native.allocators()
        check(after == before, "allocators not restored: %r != %r" % (after, before))
        st = native.state()
        check(st["hooks_installed"] == 0 and st["tracked_blocks"] == 0 and st["table_bytes"] == 0,
              "native state after off: %r" % (st,))
    grown = statm_rss() - rss0
    check(grown < 16 * MB, "RSS grew by %d bytes over 90 on/off cycles" % grown)


def worker_load_once():
    for _ in range(3):
        chunk()
        worker_load_step()


def worker_load_step():
    return [{str(i): str(i) * 3} for i in range(500)]


def sc_tm_drop(mode):
    """tracemalloc started before the tracer and stopped while it runs drops
    the allocator hook installed after it: table() notices and recovers."""
    import tracemalloc
    tracemalloc.start()
    start(mode)
    tracemalloc.stop()
    t = F.table()
    hook = t["hook"]
    if mode.endswith("-c"):
        check(hook["reinstalled"] >= 1, "dropped hook not reinstalled: %r" % (hook,))
        check(hook["on_top_domains"] == 3, "hook not on top again: %r" % (hook,))
    else:
        check(hook["tracemalloc_restarted"] >= 1, "tracemalloc not restarted: %r" % (hook,))
    F.reset()
    keeper_caller()
    t = F.table(limit=100)
    F.stop()
    r = rows(t)
    close_to(r["keeper"]["net"], 10 * MB, "keeper net after the hook came back")
    check(not tracemalloc.is_tracing(), "tracemalloc left on")


def rss_fn():
    kept.append(filled(24 * MB))


def sc_rss(mode):
    start(mode, rss=["rss_fn"])
    rss_fn()
    keeper_caller()
    t = F.table(limit=100)
    F.stop()
    r = rows(t)
    check(t["rss_selected"] == ["rss_fn"], "rss_selected %r" % t["rss_selected"])
    rs = r["rss_fn"]["rss"]
    check(rs is not None and rs["calls"] == 1, "rss_fn rss %r" % (rs,))
    if rs:
        check(rs["net"] >= 20 * MB, "rss_fn RSS delta %d below 20 MB" % rs["net"])
    check(r["keeper_caller"]["rss"] is None, "RSS measured for an unselected function")


def sc_args(mode):
    bad = [lambda: F.table(limit=0), lambda: F.table(limit=True), lambda: F.table(sort="size"),
           lambda: F.start(rss="abc"), lambda: F.start(rss=[""]), lambda: F.start(rss=[1]),
           lambda: F.start(rss=["f%d" % i for i in range(40)]), lambda: F.start(mode="nope")]
    for i, fn in enumerate(bad):
        try:
            fn()
            check(False, "bad argument %d accepted" % i)
        except ValueError as e:
            check(len(str(e)) > 10, "bad argument %d: empty message" % i)
    check(not F.running(), "running after bad arguments")
    t = F.table()
    check(t["functions"] == [] and not t["running"], "table before start: %r" % (t,))
    st = start(mode)
    again = F.start(mode=mode)
    check(again["running"] and again["since"] == st["since"], "start is not idempotent")
    keeper_caller()
    for key in F.SORT_KEYS:
        t = F.table(sort=key, limit=3)
        vals = [f[key] for f in t["functions"]]
        check(vals == sorted(vals, reverse=True), "sort %s: %r" % (key, vals))
        check(len(t["functions"]) <= 3, "limit ignored")
    F.reset()
    check(rows(F.table()).get("keeper") is None, "reset kept results")
    F.stop()
    check(not F.running(), "running after stop")


SCENARIOS = {
    "keep": sc_keep, "churn": sc_churn, "recursion": sc_recursion, "generator": sc_generator,
    "threads": sc_threads, "exception": sc_exception, "onoff": sc_onoff, "rss": sc_rss,
    "args": sc_args, "tm_drop": sc_tm_drop,
}


def main():
    name, mode = sys.argv[1], sys.argv[2]
    try:
        SCENARIOS[name](mode)
    finally:
        if F.running():
            F.stop()
    if failures:
        for f in failures:
            print("FAIL %s %s: %s" % (name, mode, f))
        return 1
    print("OK %s %s" % (name, mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
