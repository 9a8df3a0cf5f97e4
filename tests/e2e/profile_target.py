"""A target for `pmt-top profile`: one function keeps 4 MiB per call, another
churns temporaries and keeps nothing.

It waits for the sampled profiler that pmt-top starts in it, then calls
keeper() KEEP_CALLS times (default 6) and prints "kept N"; churn() runs all
along. Commands on stdin, one per line, each answered with one line:
  state      "profiler=<on|off> tracemalloc=<on|off>"
  exit       leave
It prints "ready PID" first. The agent is loaded by pmt-top (injected).
"""
import os
import sys
import threading
import time
import tracemalloc

kept = []
CALLS = int(os.environ.get("KEEP_CALLS", "6"))


def keeper():
    kept.append(bytearray(4 * 1024 * 1024))  # KEEP


def churn():
    tmp = [str(i) * 10 for i in range(2000)]
    return len(tmp)


def profiler_running():
    # The agent may still be importing on another thread (a main thread
    # parked in a system call is entered that way): a partly imported
    # module has no running() yet.
    mod = sys.modules.get("pmt_agent.profiler")
    running = getattr(mod, "running", None)
    return bool(running is not None and running())


def commands():
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "state":
            print("profiler=%s tracemalloc=%s" % ("on" if profiler_running() else "off",
                                                   "on" if tracemalloc.is_tracing() else "off"),
                  flush=True)
        elif cmd == "exit":
            break
    os._exit(0)


def main():
    # The main thread stays busy in Python (the agent is loaded by a pending
    # call, which runs there); commands are read by another thread.
    print("ready %d" % os.getpid(), flush=True)
    threading.Thread(target=commands, daemon=True).start()
    while True:
        if len(kept) < CALLS and profiler_running():
            for _ in range(CALLS):
                keeper()
            print("kept %d" % len(kept), flush=True)
        churn()
        time.sleep(0.005)


if __name__ == "__main__":
    main()
