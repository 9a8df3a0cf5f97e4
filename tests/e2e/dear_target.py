"""A target for the end-to-end tests whose Top refresh is dear.

It keeps about 500,000 live tracemalloc traces (two per bytearray: the
object and its buffer) made at 2,500 distinct lines of a module it writes
into the directory given as its argument, so that grouping them for one
`top` costs the target a good part of a second. The agent is started
in-process; "ready PID" is printed once everything is allocated, and the
process then waits for stdin to close.
"""
import os
import sys
import tracemalloc

LINES = 2500
ROUNDS = 100


def write_module(directory):
    """Small functions of ten lines each: tracemalloc finds an allocation's
    line by scanning its function's line table, slow in one huge function."""
    path = os.path.join(directory, "many_lines.py")
    with open(path, "w") as f:
        for i in range(0, LINES, 10):
            f.write("def f%d(kept):\n" % i)
            for j in range(i, i + 10):
                f.write("    kept.append(bytearray(%d))\n" % (40 + j % 50))
        f.write("FILLERS = [%s]\n" % ", ".join("f%d" % i for i in range(0, LINES, 10)))
        f.write("def fill(kept, rounds):\n    for _ in range(rounds):\n"
                "        for f in FILLERS:\n            f(kept)\n")
    sys.path.insert(0, directory)


def main():
    write_module(sys.argv[1])
    tracemalloc.start(1)
    import many_lines
    kept = []
    many_lines.fill(kept, ROUNDS)
    sys.path.insert(0, os.environ["PMT_AGENT_DIR"])
    import pmt_agent
    pmt_agent.start()
    print("ready %d %d" % (os.getpid(), len(tracemalloc._get_traces())), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
