"""End-to-end: the Types view and "who holds it", in the real binary, in a real terminal.

A login service (session_target.py) keeps every UserSession in a
module-level dict, _SESSIONS, that nothing empties; the handler's other
locals die at return. pmt-top attaches (the agent is injected) and, in the
Types view:
- the class's row counts exactly the sessions made, under a header with the
  gc's totals and what the walk cost;
- / narrows the list to the class;
- Enter on its row opens the panel: the holder is module __main__'s global
  _SESSIONS, with what it retains, every chain goes through it, and the
  footer says how many objects matched; Esc closes it;
- b keeps the list as the base; after more logins, r refreshes and the
  change columns say how many more sessions there are.
Every wait polls the screen against a deadline.
"""
import os
import re
import subprocess
import unittest

from tui import PYTHON, SOURCE, TuiTestCase

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "session_target.py")
AGENT_DIR = os.path.join(SOURCE, "agent")
TYPE = "__main__.UserSession"


def type_row(screen, name):
    """The Types table's row of NAME as {count, size, dcount, dsize}, or None.
    Columns: COUNT 0-11, SIZE 13-22, the changes 24-33 and 35-44, TYPE from 47."""
    for line in screen.splitlines():
        if line[47:].rstrip() == name:
            return {"count": line[0:12].strip(), "size": line[13:23].strip(),
                    "dcount": line[24:34].strip(), "dsize": line[35:45].strip()}
    return None


def table_rows(screen):
    """The lines under the table's header."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s+COUNT\s+SIZE\s", line):
            return [l for l in lines[i + 1:] if l[47:].strip() and re.match(r"^\s*[\d,]+\s", l)]
    return []


class TypesView(TuiTestCase):

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ, PMT_TOP_RUNTIME_DIR=self.tmpdir, PMT_AGENT_DIR=AGENT_DIR)

    def start_target(self):
        p = subprocess.Popen([PYTHON, TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=self.env, text=True)
        self.addCleanup(self._kill, p)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        return p

    def login(self, p, n):
        p.stdin.write("login %d\n" % n)
        p.stdin.flush()
        self.assertEqual(p.stdout.readline().strip(), "done")

    def test_types_who_holds_them_and_the_change_since_a_base(self):
        p = self.start_target()
        self.login(p, 300)
        # Wide enough that no chain wraps in the panel.
        self.open_terminal(200, 45, env={"PMT_TOP_RUNTIME_DIR": self.tmpdir})
        self.run_pmt(str(p.pid))
        self.wait_for(lambda s: "agent Python" in s, timeout=30, what="the agent connection")
        self.go_to_view("Types")
        s = self.wait_for(lambda s: type_row(s, TYPE), timeout=30, what="the UserSession row")
        self.assertEqual(type_row(s, TYPE)["count"], "300")
        self.assertEqual(type_row(s, TYPE)["dcount"], "-")      # no base yet
        self.assertRegex(s, r"[\d,]+ objects tracked by the gc \([\d.]+ [KMG]iB\), [\d,]+ blocks allocated; "
                            r"only gc-tracked objects are listed")
        self.assertRegex(s, r"walk \d+ ms, longest pause \d+ ms, \d+s ago")

        self.keys("/")
        self.type("UserSess")
        s = self.wait_for(lambda s: "filter UserSess (/)" in s and len(table_rows(s)) == 1,
                          what="the list filtered down to the class")
        self.assertRegex(s, r"1 of \d+ types")
        self.assertIsNotNone(type_row(s, TYPE))

        self.keys("Enter")
        s = self.wait_for(lambda s: "objects matched" in s, timeout=60, what="who holds the sessions")
        self.assertIn("who holds %s" % TYPE, s)
        self.assertRegex(s, r"8 of 8 samples: module __main__ \u2192 global _SESSIONS \(dict, 300 items, "
                            r"[\d.]+ KiB\) retains \u2248 [\d.]+ (KiB|MiB) in [\d,]+ objects \(estimate\)")
        chains = [l for l in s.splitlines()
                  if re.search(r"module __main__ \u2192 global _SESSIONS \(dict, 300 items\) \u2192 "
                               r"value for key '[0-9a-f]+\.\.\.' \u2192 __main__\.UserSession \d+ B", l)]
        self.assertEqual(len(chains), 8, s)
        self.assertRegex(s, r"300 objects matched, 8 followed; walk took \d+ ms, longest pause \d+ ms")
        self.keys("Escape")
        s = self.wait_for(lambda s: "who holds" not in s and type_row(s, TYPE), what="the panel closed")

        self.keys("b")
        self.wait_for(lambda s: (type_row(s, TYPE) or {}).get("dcount") == "0", what="the base marked")
        self.login(p, 120)
        self.keys("r")
        s = self.wait_for(lambda s: (type_row(s, TYPE) or {}).get("count") == "420", timeout=30,
                          what="the grown count after r")
        row = type_row(s, TYPE)
        self.assertEqual(row["dcount"], "+120")
        self.assertRegex(row["dsize"], r"^\+[\d.]+ (B|KiB)$")
        self.assertRegex(s, r"base of \d\d:\d\d:\d\d \(B forgets it\)")

        self.keys("q")
        self.wait_for(lambda s: "EXIT=0" in s, timeout=30, what="pmt-top to quit")
        self.assertIsNone(p.poll())


if __name__ == "__main__":
    unittest.main()
