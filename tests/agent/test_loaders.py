"""Loaders: the sitecustomize shim (and its chain) and the PYTHONSTARTUP file."""
import json
import os
import shutil
import subprocess
import sys
import unittest

import agenttest
from agenttest import Client, LineReader

SHIM_DIR = os.path.join(agenttest.AGENT_DIR, "shim")
STARTUP = os.path.join(agenttest.AGENT_DIR, "pmt_startup.py")

HOST = r"""
import json, os, sys
import pmt_agent, tracemalloc
print(json.dumps({"running": pmt_agent.is_running(), "path": pmt_agent.socket_path(),
                  "tracing": tracemalloc.is_tracing(), "nframe": tracemalloc.get_traceback_limit(),
                  "sitecustomize": getattr(sys.modules.get("sitecustomize"), "__file__", None),
                  "shim_on_path": any(os.path.abspath(p or ".") == SHIM for p in sys.path),
                  "pythonpath": os.environ.get("PYTHONPATH", "")}))
sys.stdout.flush()
sys.stdin.readline()
print("bye")
"""


class Shim(unittest.TestCase):
    def run_host(self, other_site=None, env=None, talk=None):
        tmp = agenttest.mkdtemp(self)
        rundir = os.path.join(tmp, "run")
        paths = [SHIM_DIR, agenttest.AGENT_DIR]
        if agenttest.NATIVE_DIR:
            paths.append(agenttest.NATIVE_DIR)
        marker = os.path.join(tmp, "marker")
        if other_site is not None:
            other = os.path.join(tmp, "other")
            os.mkdir(other)
            with open(os.path.join(other, "sitecustomize.py"), "w") as f:
                f.write(other_site)
            paths.append(other)
        e = {"PYTHONPATH": os.pathsep.join(paths), "PMT_TOP_RUNTIME_DIR": rundir,
             "MARKER": marker, "PMT_AGENT_TRACE": None}
        e.update(env or {})
        p = subprocess.Popen([sys.executable, "-c", "SHIM = %r\n" % SHIM_DIR + HOST],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=agenttest.base_env(e))
        self.addCleanup(agenttest.kill_pid, p)
        line = LineReader(p.stdout.fileno()).readline(30)
        self.assertIsNotNone(line, p.stderr.read() if p.poll() is not None else "")
        info = json.loads(line.decode())
        talked = talk(info) if talk and info["path"] else None
        p.stdin.write(b"\n")
        p.stdin.flush()
        rest = p.stdout.read().decode()
        err = p.stderr.read().decode()
        self.assertEqual(p.wait(30), 0, err)
        self.assertEqual(rest.strip(), "bye")
        info["stderr"] = err
        info["marker"] = os.path.exists(marker)
        info["talked"] = talked
        if info["path"]:
            self.assertFalse(os.path.exists(info["path"]), "socket left after exit")
        return info

    def status(self, info):
        return Client(self, info["path"]).ok("status")

    def test_chain_runs_existing_sitecustomize(self):
        site = "import os\nopen(os.environ['MARKER'], 'w').close()\n"
        info = self.run_host(site, env={"PMT_AGENT_TRACE": "5"}, talk=self.status)
        self.assertTrue(info["running"])
        self.assertTrue(info["marker"], "the existing sitecustomize did not run")
        self.assertTrue(info["sitecustomize"].endswith(os.path.join("other", "sitecustomize.py")))
        self.assertFalse(info["shim_on_path"])
        self.assertNotIn(SHIM_DIR, info["pythonpath"].split(os.pathsep))
        self.assertIn(agenttest.AGENT_DIR, info["pythonpath"].split(os.pathsep))
        self.assertEqual((info["tracing"], info["nframe"]), (True, 5))
        st = info["talked"]
        self.assertEqual((st["tracing"], st["nframe"], st["started_by_agent"]), (True, 5, True))
        self.assertEqual(info["stderr"], "")

    def test_no_other_sitecustomize(self):
        info = self.run_host(None, talk=self.status)
        self.assertTrue(info["running"])
        self.assertIs(info["tracing"], False)
        self.assertIs(info["talked"]["tracing"], False)
        self.assertEqual(info["stderr"], "")

    def test_agent_failure_does_not_break_host(self):
        tmp = agenttest.mkdtemp(self)
        not_dir = os.path.join(tmp, "file")
        open(not_dir, "w").close()
        site = "import os\nopen(os.environ['MARKER'], 'w').close()\n"
        info = self.run_host(site, env={"PMT_TOP_RUNTIME_DIR": not_dir})
        self.assertFalse(info["running"])
        self.assertTrue(info["marker"])
        lines = info["stderr"].splitlines()
        self.assertEqual(len(lines), 1, info["stderr"])
        self.assertTrue(lines[0].startswith("pmt-top: agent not started:"))

    def test_broken_chained_sitecustomize(self):
        info = self.run_host("raise RuntimeError('boom')\n")
        self.assertTrue(info["running"])
        lines = info["stderr"].splitlines()
        self.assertEqual(len(lines), 1, info["stderr"])
        self.assertIn("boom", lines[0])


class Startup(unittest.TestCase):
    def run_interactive(self, env, code):
        p = subprocess.run([sys.executable, "-i", "-q"], input=code.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                           env=agenttest.base_env(env))
        return p.stdout.decode(), p.stderr.decode()

    def test_pythonstartup(self):
        tmp = agenttest.mkdtemp(self)
        code = ("import json, sys, pmt_agent\n"
                "print('RESULT ' + json.dumps([pmt_agent.is_running(), pmt_agent.socket_path(), "
                "sorted(k for k in dir() if k.startswith('_pmt'))]))\n")
        out, err = self.run_interactive({"PYTHONSTARTUP": STARTUP, "PYTHONPATH": None,
                                         "PMT_TOP_RUNTIME_DIR": os.path.join(tmp, "run")}, code)
        line = [x for x in out.splitlines() if x.startswith("RESULT ")][0]
        running, path, leftovers = json.loads(line[len("RESULT "):])
        self.assertTrue(running)
        self.assertTrue(path.startswith(os.path.join(tmp, "run")))
        self.assertEqual(leftovers, [])
        self.assertFalse(os.path.exists(path))
        self.assertNotIn("pmt-top:", err)

    def test_pythonstartup_failure(self):
        tmp = agenttest.mkdtemp(self)
        f = os.path.join(tmp, "file")
        open(f, "w").close()
        out, err = self.run_interactive({"PYTHONSTARTUP": STARTUP, "PYTHONPATH": None,
                                         "PMT_TOP_RUNTIME_DIR": f}, "print('STILL', 6 * 7)\n")
        self.assertIn("STILL 42", out)
        self.assertEqual([x for x in err.splitlines() if x.startswith("pmt-top:")].__len__(), 1)
        self.assertNotIn("Traceback", err)


@unittest.skipUnless(agenttest.EXPECT_NATIVE, "no native module built for this interpreter")
class InstalledLayout(unittest.TestCase):
    def test_native_found_next_to_agent(self):
        share = agenttest.mkdtemp(self)
        os.mkdir(os.path.join(share, "agent"))
        shutil.copytree(os.path.join(agenttest.AGENT_DIR, "pmt_agent"),
                        os.path.join(share, "agent", "pmt_agent"))
        shutil.copytree(agenttest.NATIVE_DIR, os.path.join(share, "agent-native"))
        code = ("import sys; sys.path.insert(0, %r)\n"
                "from pmt_agent import grouping\n"
                "print(grouping.native is not None, grouping.native.__file__)\n"
                % os.path.join(share, "agent"))
        p = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=agenttest.base_env({"PYTHONPATH": None, "PMT_NATIVE_DIR": None}), timeout=60)
        ok, path = p.stdout.decode().split()
        self.assertEqual(ok, "True", p.stderr)
        self.assertTrue(path.startswith(os.path.join(share, "agent-native")))


if __name__ == "__main__":
    agenttest.main()
