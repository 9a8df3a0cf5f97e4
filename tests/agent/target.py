"""Test target: start the agent, then run {"exec": code} lines from stdin.

Prints {"ready": socket path} (or {"ready": null, "error": ...}) first, then
one {"ok": ..., "result": ...} line per request; "result" is the value the
code assigned to the name result. SystemExit from the code exits normally.
"""
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.environ["PMT_AGENT_DIR"])
if os.environ.get("PMT_NATIVE_DIR"):
    sys.path.insert(1, os.environ["PMT_NATIVE_DIR"])


def main():
    trace = int(os.environ.get("TARGET_TRACE") or 0)
    if trace:
        import tracemalloc
        tracemalloc.start(trace)
    msg = {"ready": None}
    if os.environ.get("TARGET_START", "1") == "1":
        try:
            import pmt_agent
            msg["ready"] = pmt_agent.start()
        except Exception as e:
            msg["error"] = "%s: %s" % (type(e).__name__, e)
    out = sys.stdout
    out.write(json.dumps(msg) + "\n")
    out.flush()
    ns = {"__name__": "target_ns"}
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        req = json.loads(line)
        ns["result"] = None
        try:
            exec(req["exec"], ns)
            rep = {"ok": True, "result": ns.get("result")}
        except Exception:
            rep = {"ok": False, "error": traceback.format_exc()}
        out.write(json.dumps(rep) + "\n")
        out.flush()


main()
