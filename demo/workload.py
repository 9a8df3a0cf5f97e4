"""The pmt-top demo workload: a small "service" whose memory moves in steps.

It behaves like a leaking worker, so each pattern is recognisable on the graph:

* requests leak a little into a session cache: RSS climbs slowly (a ramp);
* every 20 s a report job builds an 80 MB buffer, holds it 6 s, frees it
  (a plateau that comes back down);
* every 60 s the cache is trimmed to half (a step down, then the ramp resumes).

Standard library only. Runs until killed; prints one line per event.
"""
import sys
import time

REPORT_EVERY = 20.0
REPORT_HOLD = 6.0
REPORT_BYTES = 80 * 1024 * 1024
TRIM_EVERY = 60.0
LEAK_PER_REQUEST = 48 * 1024
REQUESTS_PER_SECOND = 20

_sessions = {}


def handle_request(n):
    """Serve one fake request; keep a little of it forever (the leak)."""
    payload = {"id": n, "user": "user%d" % (n % 997), "items": list(range(50))}
    _sessions[n] = bytearray(LEAK_PER_REQUEST)  # the leak: never evicted by requests
    return len(payload["items"])


def build_report():
    """A batch job holding a big buffer for a while."""
    # b"r" * n writes every byte, so the pages are really resident (bytes(n)
    # would get untouched zero pages that RSS does not count).
    return [b"r" * (1024 * 1024) for _ in range(REPORT_BYTES // (1024 * 1024))]


def trim_cache():
    keys = sorted(_sessions)[: len(_sessions) // 2]
    for k in keys:
        del _sessions[k]
    return len(keys)


def main():
    start = time.monotonic()
    next_report = start + REPORT_EVERY / 2
    next_trim = start + TRIM_EVERY
    report = None
    report_until = 0.0
    n = 0
    print("demo workload started: leaking %d KiB per request, report of %d MiB every %gs"
          % (LEAK_PER_REQUEST // 1024, REPORT_BYTES >> 20, REPORT_EVERY), flush=True)
    while True:
        now = time.monotonic()
        for _ in range(REQUESTS_PER_SECOND // 10):
            n += 1
            handle_request(n)
        if report is None and now >= next_report:
            report = build_report()
            report_until = now + REPORT_HOLD
            next_report = now + REPORT_EVERY
            print("t=%5.0fs report job: holding %d MiB" % (now - start, REPORT_BYTES >> 20), flush=True)
        elif report is not None and now >= report_until:
            report = None
            print("t=%5.0fs report job done: buffer freed" % (now - start), flush=True)
        if now >= next_trim:
            dropped = trim_cache()
            next_trim = now + TRIM_EVERY
            print("t=%5.0fs cache trimmed: %d sessions dropped" % (now - start, dropped), flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
