"""Application-shaped code that keeps objects alive in the ways leaks happen:
a module-level cache filled by request handlers on their own threads, a list
on a class, closures in a callback registry, reference cycles with __del__,
objects only a thread's local variable holds. test_heap.py runs these in a
target and asks the agent who holds them.

Every special method of the classes here counts its calls in CALLS: the
agent must never run them (they could block or change the application)."""
import os
import threading

CALLS = {"n": 0}


class Touchy(object):
    """Application code that must not run: each special method counts."""

    def __repr__(self):
        CALLS["n"] += 1
        raise RuntimeError("repr called")

    def __eq__(self, other):
        CALLS["n"] += 1
        import time
        time.sleep(5)
        return False

    def __hash__(self):
        CALLS["n"] += 1
        return 1

    def __sizeof__(self):
        CALLS["n"] += 1
        return 1 << 40

    def __getattribute__(self, name):
        if name not in ("__class__", "__dict__"):
            CALLS["n"] += 1
        return object.__getattribute__(self, name)


class CachedPage(Touchy):
    def __init__(self, key, body):
        self.key = key
        self.body = body


_PAGE_CACHE = {}        # never evicts


def render(page_id):
    """A request handler: the page is built, cached and returned; its locals
    die at return."""
    body = os.urandom(2048) + str(page_id).encode()
    page = CachedPage(page_id, body)
    _PAGE_CACHE["page-%d" % page_id] = page
    return len(page.body)


def serve(n, threads=4):
    """N requests, each on a thread of its own, as a threaded server does."""
    def worker(first):
        for i in range(first, n, threads):
            t = threading.Thread(target=render, args=(i,))
            t.start()
            t.join()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def clear_cache():
    _PAGE_CACHE.clear()


class Listener(Touchy):
    pass


class EventBus(object):
    subscribers = []    # class-level list


def subscribe():
    EventBus.subscribers.append(Listener())


_hooks = []


class Connection(Touchy):
    pass


def on_close():
    conn = Connection()

    def callback():
        return conn
    _hooks.append(callback)


class Parent(Touchy):
    def __del__(self):
        pass


class Child(object):
    pass


_TREES = []


def build_tree(keep):
    p = Parent()
    c = Child()
    p.child = c
    c.parent = p            # a cycle with __del__
    if keep:
        _TREES.append(p)


class Job(Touchy):
    pass


class Worker(object):
    """A thread whose batch only a local variable holds."""

    def __init__(self):
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="batch-worker", daemon=True)
        self.thread.start()
        self.ready.wait()

    def run(self):
        batch = [Job() for _ in range(20)]
        self.ready.set()
        self.stop.wait()
        return len(batch)

    def finish(self):
        self.stop.set()
        self.thread.join()
