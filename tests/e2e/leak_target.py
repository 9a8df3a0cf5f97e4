"""A target for the profiler views' end-to-end tests: it leaks in one function.

The agent is started in-process, as an application would (PMT_AGENT_DIR; the
sampler extension comes from PMT_TOP_NATIVE_DIR). It prints "ready PID", then
every 20 ms keeps 64 KiB more in keeper() (line marked LEAK), called as
<module> -> main() -> serve() -> handle() -> keeper(), up to 256 MiB, while
churn() allocates and frees. It runs until killed.
"""
import os
import sys
import time

kept = []


def keeper():
    kept.append(bytearray(64 * 1024))  # LEAK


def churn():
    tmp = [str(i) * 8 for i in range(300)]  # CHURN
    return len(tmp)


def handle():
    if len(kept) < 4096:
        keeper()
    churn()


def serve():
    while True:
        handle()
        time.sleep(0.02)


def main():
    sys.path.insert(0, os.environ["PMT_AGENT_DIR"])
    import pmt_agent
    pmt_agent.start()
    print("ready %d" % os.getpid(), flush=True)
    serve()


if __name__ == "__main__":
    main()
