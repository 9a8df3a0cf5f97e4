#!/usr/bin/env python3
"""pmt-top (C, ipc/sock.c) and its agent (agent/pmt_agent/rundir.py) pick the
same runtime directory from the same environment and effective uid.

Usage: test_rundir.py --driver PATH --agent DIR

Each case sets PMT_TOP_RUNTIME_DIR / XDG_RUNTIME_DIR (unset, an absolute
directory owned by the user, one owned by someone else) and runs the C rules
(pmt-inject-driver rundir) and the agent's (rundir.default_dir()) side by
side, as root and, when root, as nobody. Exit 0 all agree, 1 otherwise.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

NOBODY = 65534


def run(cmd, env, as_nobody):
    if as_nobody:
        cmd = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"] + cmd
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit("%s failed (%d): %s%s" % (cmd, r.returncode, r.stdout, r.stderr))
    return r.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--agent", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pmt-rundir-")
    os.chmod(tmp, 0o755)
    try:
        mine = os.path.join(tmp, "mine")
        nobodys = os.path.join(tmp, "nobodys")
        others = os.path.join(tmp, "others")
        for d in (mine, nobodys, others):
            os.mkdir(d, 0o700)
        if os.geteuid() == 0:
            os.chown(nobodys, NOBODY, NOBODY)
            os.chown(others, 12345, 12345)
        cases = [
            ("neither variable", {}),
            ("PMT_TOP_RUNTIME_DIR", {"PMT_TOP_RUNTIME_DIR": "/srv/somewhere/pmt"}),
            ("PMT_TOP_RUNTIME_DIR with a trailing slash", {"PMT_TOP_RUNTIME_DIR": "/srv/pmt/"}),
            ("both set", {"PMT_TOP_RUNTIME_DIR": "/srv/pmt", "XDG_RUNTIME_DIR": mine}),
            ("XDG_RUNTIME_DIR of root", {"XDG_RUNTIME_DIR": mine}),
            ("XDG_RUNTIME_DIR with trailing slashes", {"XDG_RUNTIME_DIR": mine + "//"}),
            ("XDG_RUNTIME_DIR of nobody", {"XDG_RUNTIME_DIR": nobodys}),
            ("XDG_RUNTIME_DIR of a third user", {"XDG_RUNTIME_DIR": others}),
            ("XDG_RUNTIME_DIR missing", {"XDG_RUNTIME_DIR": os.path.join(tmp, "gone")}),
            ("XDG_RUNTIME_DIR relative", {"XDG_RUNTIME_DIR": "run/user"}),
            ("empty values", {"PMT_TOP_RUNTIME_DIR": "", "XDG_RUNTIME_DIR": ""}),
        ]
        users = [False] + ([True] if os.geteuid() == 0 and shutil.which("setpriv") else [])
        py = ("import sys; sys.path.insert(0, %r); from pmt_agent import rundir; "
              "print(rundir.default_dir())" % a.agent)
        failed = 0
        checked = 0
        # Both refuse a relative PMT_TOP_RUNTIME_DIR.
        env = dict(os.environ, PMT_TOP_RUNTIME_DIR="relative/dir")
        c = subprocess.run([a.driver, "rundir"], env=env, stdout=subprocess.PIPE, text=True)
        p = subprocess.run(["/usr/bin/python3", "-S", "-c", py], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        checked += 1
        if c.returncode == 0 or p.returncode == 0 or "absolute" not in c.stdout or "absolute" not in p.stderr:
            failed += 1
            print("DIFFER  a relative PMT_TOP_RUNTIME_DIR: C %r, agent %r" % (c.stdout, p.stderr[-200:]))
        else:
            print("agree   a relative PMT_TOP_RUNTIME_DIR is refused by both")
        for as_nobody in users:
            for name, extra in cases:
                env = {k: v for k, v in os.environ.items()
                       if k not in ("PMT_TOP_RUNTIME_DIR", "XDG_RUNTIME_DIR")}
                env.update(extra)
                env["PYTHONDONTWRITEBYTECODE"] = "1"
                c = run([a.driver, "rundir"], env, as_nobody)
                p = run(["/usr/bin/python3", "-S", "-c", py], env, as_nobody)
                who = "nobody" if as_nobody else "root" if os.geteuid() == 0 else "uid %d" % os.geteuid()
                checked += 1
                if c != p:
                    failed += 1
                    print("DIFFER  %-45s as %-6s C: %s  agent: %s" % (name, who, c, p))
                else:
                    print("agree   %-45s as %-6s %s" % (name, who, c))
        print("%d passed, %d failed" % (checked - failed, failed))
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
