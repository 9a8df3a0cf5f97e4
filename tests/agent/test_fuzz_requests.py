"""A structure-aware fuzzer for the agent's request handling, against a real agent.

Requests are built from the protocol's command list and each command's real
arguments, then mutated: values of the wrong type, out of range, huge, deep,
NaN-like, non-ASCII, duplicated keys, unknown keys, ids at and past the
bounds. They go over a real socket in pipelined batches, as a client would
send them. Every reply must be well formed (its request's id, or null where
the frame had none; ok with a result, or an error code of the protocol), no
request may end in "internal" (an exception the agent did not expect), and
after each batch the target must run and answer a good client.

The seed is fixed so that a failure repeats; PMT_FUZZ_SEED and
PMT_FUZZ_REQUESTS change it and the count for longer runs.
"""
import json
import os
import random
import unittest

import agenttest
from agenttest import Target, ClassScope, Client

ERRORS = None
COMMANDS = None
DEEP = "\u2063deep\u2063"

# Each command's arguments with values that make sense (the fuzzer mutates them).
ARGS = {
    "hello": {"protocol": 1, "client": "fuzz"},
    "status": {},
    "subscribe": {"interval": 0.5},
    "tracemalloc_start": {"nframe": 3},
    "tracemalloc_stop": {},
    "reset_peak": {},
    "top": {"key": "lineno", "limit": 10, "cumulative": False, "include": ["*.py"],
            "exclude": ["*/x/*"], "source": "tracemalloc"},
    "snapshot": {"key": "filename", "cumulative": True, "include": ["*"], "exclude": [],
                 "source": "sampled"},
    "functions_start": {"rss": ["main"]},
    "functions_stop": {},
    "functions": {"limit": 5, "sort": "net"},
    "functions_reset": {},
    "profile_start": {"interval": 4096, "nframe": 16, "calls": False, "max_samples": 1000,
                      "max_stacks": 1000},
    "profile_stop": {},
    "profile": {"key": "function", "limit": 5, "sort": "own"},
    "profile_tree": {"path": [], "limit": 5},
}

# detach stops the server: it has its own tests.
SKIP = {"detach"}


def odd_value(rng):
    """A value a client should not send."""
    choice = rng.randrange(16)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 1, 2 ** 31, 2 ** 53, 2 ** 53 + 1, 2 ** 63, -2 ** 63, 10 ** 30])
    if choice == 3:
        return rng.choice([0.0, -0.0, 1e-300, 1e300, 0.5, 59.99, 60.01, 0.049])
    if choice == 4:
        return ""
    if choice == 5:
        return "x" * rng.choice([1, 100, 1024, 1025, 20000])
    if choice == 6:
        return rng.choice(["\u0000", "\udc80", "\u202e", "é" * 300, "[", "[!", "[]", "**/" * 50, "\\"])
    if choice == 7:
        return []
    if choice == 8:
        return [odd_value(rng) for _ in range(rng.randrange(1, 5))]
    if choice == 9:
        return ["*.py"] * rng.choice([1, 64, 65, 500])
    if choice == 10:
        return {}
    if choice == 11:
        return {"a": odd_value(rng)}
    if choice == 12:
        return DEEP          # nesting deeper than an encoder goes: spliced into the text
    if choice == 13:
        return rng.choice(["lineno", "filename", "traceback", "function", "own", "net", "cumulative"])
    if choice == 14:
        return rng.randrange(-5, 200)
    return rng.choice(["tracemalloc", "sampled", "nope"])


def mutate(rng, cmd):
    args = dict(ARGS.get(cmd, {}))
    for _ in range(rng.randrange(0, 4)):
        op = rng.randrange(5)
        if op == 0 and args:
            args[rng.choice(sorted(args))] = odd_value(rng)
        elif op == 1 and args:
            del args[rng.choice(sorted(args))]
        elif op == 2:
            args[rng.choice(["bogus", "limit", "key", "interval", "path", "\u00e9"])] = odd_value(rng)
        elif op == 3 and args:
            name = rng.choice(sorted(args))
            args[name] = [args[name]]
        # op 4: keep the good value
    req = {"id": rng.randrange(1, 1 << 40), "cmd": cmd, "args": args}
    shape = rng.randrange(24)
    if shape == 0:
        req["args"] = odd_value(rng)
    elif shape == 1:
        req["id"] = odd_value(rng)
    elif shape == 2:
        req["cmd"] = odd_value(rng)
    elif shape == 3:
        del req["args"]
    elif shape == 4:
        req["extra"] = odd_value(rng)
    text = json.dumps(req, ensure_ascii=rng.random() < 0.5)
    depth = rng.choice([10, 100, 5000])
    for marker in ('"%s"' % DEEP, json.dumps(DEEP)):
        text = text.replace(marker, "[" * depth + "1" + "]" * depth)
    if shape == 5:         # a duplicated key: JSON parsers keep the last one
        text = text[:-1] + ', "cmd": "status"}'
    return req, text.encode("utf-8", "surrogatepass")


class FuzzRequests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        global ERRORS, COMMANDS
        import sys
        sys.path.insert(0, os.environ["PMT_AGENT_DIR"])
        from pmt_agent import proto
        ERRORS, COMMANDS = set(proto.ERRORS), [c for c in proto.COMMANDS if c not in SKIP]
        cls.t = Target(ClassScope(cls), trace=2)
        cls.t.call("import workload; workload.alloc_a(20000, 10)")

    def test_mutated_requests(self):
        seed = int(os.environ.get("PMT_FUZZ_SEED") or 20261128)
        total = int(os.environ.get("PMT_FUZZ_REQUESTS") or 2000)
        rng = random.Random(seed)
        sent = internal = 0
        codes = {}
        while sent < total:
            c = Client(self, self.t.path)
            batch = []
            for _ in range(rng.randrange(1, 40)):
                req, data = mutate(rng, rng.choice(COMMANDS))
                batch.append((req, data))
            c.send_raw(b"".join(d + b"\n" for _, d in batch))
            for req, data in batch:
                rep = c.reply(120)
                self.assertIsNotNone(rep, "connection closed after %r" % data[:300])
                want = req.get("id")
                if isinstance(want, int) and not isinstance(want, bool) and 0 <= want < 2 ** 53:
                    if rep.get("id") is not None:
                        self.assertEqual(rep["id"], want, data[:300])
                else:
                    self.assertIsNone(rep.get("id"), data[:300])
                if rep["ok"]:
                    self.assertIn("result", rep)
                    continue
                code = rep["error"]["code"]
                self.assertIn(code, ERRORS, rep)
                self.assertIsInstance(rep["error"]["message"], str)
                codes[code] = codes.get(code, 0) + 1
                if code == "internal":
                    internal += 1
                    self.fail("internal error for %r: %s" % (data[:300], rep["error"]["message"]))
            sent += len(batch)
            c.close()
            # Between batches: the target runs, a good client is served.
            self.assertTrue(self.t.alive(), self.t.stderr())
            good = self.t.client()
            self.assertIn("tracing", good.ok("status"))
            good.close()
        print("\n%d requests (seed %d): %s" % (sent, seed, json.dumps(codes, sort_keys=True)))
        self.assertEqual(internal, 0)
        self.assertNotIn("Traceback", self.t.stderr())
        # The fuzzer's requests started the profiler and tracer: stop them.
        c = self.t.client()
        c.request("profile_stop")
        c.request("functions_stop")


if __name__ == "__main__":
    agenttest.main()
