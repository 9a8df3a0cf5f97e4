"""A target for the end-to-end tests: allocates known amounts at known lines.

Commands on stdin, one per line; each answers one line on stdout:
  grow_a     keep 20,000 bytearrays of 1000 bytes (line marked ALLOC_A)
  grow_b     keep one 30 MiB bytes object (line marked ALLOC_B)
  free       drop everything kept
  stats F    write tracemalloc's own statistics to file F (JSON)
  exit       leave
The agent is started in-process (as an application would) unless
PMT_NO_AGENT=1; tracemalloc is started with PMT_NFRAME frames (default 5).
"""
import json
import os
import sys
import tracemalloc

kept = []


def grow_a():
    kept.append([bytearray(1000) for _ in range(20000)])  # ALLOC_A


def grow_b():
    kept.append(b"x" * (30 * 1024 * 1024))  # ALLOC_B


def stats(path):
    snap = tracemalloc.take_snapshot()
    out = {}
    for key in ("lineno", "filename", "traceback"):
        out[key] = [{"size": s.size, "count": s.count,
                     "frames": [[f.filename, f.lineno] for f in reversed(s.traceback)]}
                    for s in snap.statistics(key)[:50]]
    out["traced"] = tracemalloc.get_traced_memory()[0]
    with open(path, "w") as f:
        json.dump(out, f)


def main():
    tracemalloc.start(int(os.environ.get("PMT_NFRAME", "5")))
    if os.environ.get("PMT_NO_AGENT") != "1":
        sys.path.insert(0, os.environ["PMT_AGENT_DIR"])
        import pmt_agent
        pmt_agent.start()
    print("ready %d" % os.getpid(), flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "grow_a":
            grow_a()
        elif cmd == "grow_b":
            grow_b()
        elif cmd == "free":
            kept.clear()
        elif cmd == "stats":
            stats(arg)
        elif cmd == "exit":
            break
        print("done", flush=True)


if __name__ == "__main__":
    main()
