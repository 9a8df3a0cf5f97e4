"""End-to-end: `cmake --install` into a prefix, then the installed binary finds
its themes, agent, shim and demo there, also after the prefix is moved.
"""
import os
import re
import shutil
import subprocess
import unittest

from tui import TuiTestCase

BUILD = os.environ.get("PMT_TOP_BUILD")


class Install(TuiTestCase):

    def test_installed_and_moved_prefix_work(self):
        self.assertTrue(BUILD and os.path.isdir(BUILD), "PMT_TOP_BUILD must name the build tree")
        prefix = os.path.join(self.tmpdir, "prefix")
        r = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout)
        share = os.path.join(prefix, "share", "pmt-top")
        for rel in ("themes/dark.json", "themes/light.json", "themes/mono.json",
                    "agent/pmt_agent/__init__.py", "agent/shim/sitecustomize.py",
                    "agent/pmt_startup.py", "demo/workload.py"):
            self.assertTrue(os.path.exists(os.path.join(share, rel)), rel)

        # Move the prefix: the binary must look relative to itself.
        moved = os.path.join(self.tmpdir, "moved")
        shutil.move(prefix, moved)
        binary = os.path.join(moved, "bin", "pmt-top")
        r = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, text=True)
        self.assertRegex(r.stdout, r"^pmt-top \d")

        # `run` preloads the installed agent through the installed shim.
        self.open_terminal(120, 30, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        log = os.path.join(self.tmpdir, "out.log")
        self.type("%s run --theme light --log %s -- /usr/bin/python3 -c "
                  "'import time; [time.sleep(0.1) for _ in range(600)]'; echo EXIT=$?" % (binary, log))
        s = self.wait_for(lambda s: "agent Python" in s, timeout=20, what="the installed agent")
        self.assertIn("interval 0.5s", s)
        self.keys("t")
        self.wait_for(lambda s: "theme: mono" in s, what="the installed themes")
        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, what="quit")


if __name__ == "__main__":
    unittest.main()
