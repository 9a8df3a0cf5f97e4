"""Runs every tracer scenario (ft_scenarios.py) for one interpreter, in every
mode it offers: the C extension's modes with the native module, the
pure-Python modes with the extension disabled.

    python3 test_functions.py --python PY --agent-dir DIR [--native-dir DIR]
                              [--require-native] [-j N]

Each scenario runs in its own process (killed by PID on timeout); exits 1
if any scenario fails, or if --require-native is given and the extension
cannot be loaded.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = ["args", "keep", "churn", "recursion", "generator", "threads", "exception",
             "rss", "tm_drop", "onoff"]
TIMEOUT = 120


def modes_of(py, env):
    code = ("import sys; sys.path.insert(0, %r); from pmt_agent import functions as F; "
            "print(' '.join(F._available_modes()))" % env["PMT_AGENT_DIR"])
    out = subprocess.run([py, "-c", code], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=60)
    return out.stdout.decode().split() if out.returncode == 0 else None


def run_one(py, env, scenario, mode, tmp):
    with tempfile.TemporaryFile(dir=tmp) as log:
        t0 = time.time()
        p = subprocess.Popen([py, os.path.join(HERE, "ft_scenarios.py"), scenario, mode],
                             env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        try:
            rc = p.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = "timeout"
        log.seek(0)
        text = log.read().decode(errors="replace").strip()
    return scenario, mode, rc, text, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", required=True)
    ap.add_argument("--agent-dir", required=True)
    ap.add_argument("--native-dir")
    ap.add_argument("--require-native", action="store_true")
    ap.add_argument("-j", type=int, default=2)
    a = ap.parse_args()

    base = dict(os.environ)
    for k in ("PMT_AGENT_NO_NATIVE", "PMT_TOP_NATIVE_DIR", "PYTHONPATH"):
        base.pop(k, None)
    base["PMT_AGENT_DIR"] = a.agent_dir
    base["PYTHONDONTWRITEBYTECODE"] = "1"
    nat = dict(base)
    if a.native_dir:
        nat["PMT_TOP_NATIVE_DIR"] = a.native_dir
    py_env = dict(base, PMT_AGENT_NO_NATIVE="1")
    if a.native_dir:
        py_env["PMT_TOP_NATIVE_DIR"] = a.native_dir    # only for the allocators() check

    jobs = []
    native_modes = [m for m in (modes_of(a.python, nat) or []) if m.endswith("-c")]
    if a.require_native and not native_modes:
        print("FAIL: the C extension _pmt_functrace cannot be loaded from %s" % a.native_dir)
        return 1
    for m in native_modes:
        jobs += [(nat, s, m) for s in SCENARIOS]
    py_modes = modes_of(a.python, py_env) or []
    if not py_modes:
        print("FAIL: pmt_agent.functions does not import with %s" % a.python)
        return 1
    for m in py_modes:
        jobs += [(py_env, s, m) for s in SCENARIOS]

    failed = 0
    with tempfile.TemporaryDirectory(prefix="pmt-functions-") as tmp:
        with ThreadPoolExecutor(max_workers=max(1, a.j)) as ex:
            futs = [ex.submit(run_one, a.python, env, s, m, tmp) for env, s, m in jobs]
            for f in futs:
                scenario, mode, rc, text, took = f.result()
                status = "ok" if rc == 0 else "FAILED (%s)" % rc
                print("%-10s %-14s %-8s %5.1fs" % (scenario, mode, status, took))
                if rc != 0:
                    failed += 1
                    print("    " + text.replace("\n", "\n    "))
    print("%d of %d scenario runs failed (%s)" % (failed, len(jobs), a.python))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
