"""End-to-end check: pmt-top's snapshot diff against tracemalloc's compare_to().

Usage: run_e2e.py --driver PATH/snapdiff_check --python PY [--python PY ...]

For each Python interpreter: run make_snapshots.py in a fresh process (two
real tracemalloc snapshots of a workload), then run the C driver on every
scenario, directly and through regrouping, and require the same top entries
and numbers as Snapshot.compare_to(). Temporary files are removed whatever
happens.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# (old/new files, expected file, regroup key or None)
CHECKS = [
    ("lineno", "lineno", None),
    ("filename", "filename", None),
    ("traceback", "traceback", None),
    ("lineno_cumulative", "lineno_cumulative", None),
    ("filename_cumulative", "filename_cumulative", None),
    ("traceback", "lineno", "lineno"),
    ("traceback", "filename", "filename"),
    ("lineno", "filename", "filename"),
    ("lineno_cumulative", "filename_cumulative", "filename"),
]


def run(cmd, timeout=60):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout)


def check_python(driver, python):
    failures = 0
    tmp = tempfile.mkdtemp(prefix="pmt-e2e-snapshot-")
    try:
        p = run([python, os.path.join(HERE, "make_snapshots.py"), tmp])
        if p.returncode != 0:
            print("%s: make_snapshots.py failed:\n%s" % (python, p.stdout))
            return 1
        for data, exp, key in CHECKS:
            cmd = [driver, os.path.join(tmp, data + ".old.json"),
                   os.path.join(tmp, data + ".new.json"),
                   os.path.join(tmp, exp + ".expected.json")]
            if key:
                cmd.append(key)
            p = run(cmd)
            label = "%s: %s%s" % (python, data, " --key " + key if key else "")
            if p.returncode != 0:
                failures += 1
                print("FAIL %s\n%s" % (label, p.stdout))
            else:
                print("ok   %s: %s" % (label, p.stdout.strip().splitlines()[-1]))
        left = sorted(f for f in os.listdir(tmp) if f.endswith(".resaved"))
        if left:
            failures += 1
            print("FAIL %s: driver left files behind: %s" % (python, left))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--python", action="append", required=True)
    args = ap.parse_args()
    failures = 0
    for python in args.python:
        failures += check_python(args.driver, python)
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
