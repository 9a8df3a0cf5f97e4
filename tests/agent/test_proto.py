"""pmt_agent/proto.py mirrors src/ipc/proto.h, and docs/protocol.md documents it."""
import os
import re
import sys
import unittest

import agenttest

sys.path.insert(0, agenttest.AGENT_DIR)
from pmt_agent import proto  # noqa: E402

HEADER = os.path.join(agenttest.SOURCE_DIR, "src", "ipc", "proto.h")
DOC = os.path.join(agenttest.SOURCE_DIR, "docs", "protocol.md")


def parse_header():
    with open(HEADER) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = text.replace("\\\n", " ")
    lists = {}
    for m in re.finditer(r"#define\s+PROTO_(\w+)_LIST\(X\)(.*)", text):
        lists[m.group(1)] = re.findall(r'X\(\s*(\w+)\s*,\s*"([^"]*)"\s*\)', m.group(2))
    defines = {}
    for m in re.finditer(r"#define\s+PROTO_(VERSION|MAX_REQUEST|MAX_REPLY)\s+(.+)", text):
        defines[m.group(1)] = eval(m.group(2).strip(), {"__builtins__": {}})
    return lists, defines


class ProtoMirror(unittest.TestCase):
    def setUp(self):
        self.lists, self.defines = parse_header()

    def test_lists_present(self):
        for name in ("CMD", "PUSH", "ERR", "KEY"):
            self.assertIn(name, self.lists)
            self.assertGreater(len(self.lists[name]), 0)

    def test_same_names_same_order(self):
        pairs = (("CMD", proto.COMMANDS), ("PUSH", proto.PUSHES), ("ERR", proto.ERRORS),
                 ("KEY", proto.KEYS))
        for name, mirror in pairs:
            wire = tuple(s for _, s in self.lists[name])
            self.assertEqual(wire, mirror, "PROTO_%s_LIST differs from proto.py" % name)
            for enum, s in self.lists[name]:
                self.assertEqual(enum.lower(), s, "enum %s does not match %r" % (enum, s))

    def test_constants(self):
        self.assertEqual(self.defines["VERSION"], proto.VERSION)
        self.assertEqual(self.defines["MAX_REQUEST"], proto.MAX_REQUEST)
        self.assertEqual(self.defines["MAX_REPLY"], proto.MAX_REPLY)

    def test_every_command_has_a_handler(self):
        from pmt_agent import commands
        self.assertEqual(set(commands.HANDLERS), set(proto.COMMANDS))

    def test_doc_describes_everything(self):
        with open(DOC) as f:
            doc = f.read()
        for cmd in proto.COMMANDS:
            self.assertTrue(re.search(r"(?m)^### .*\b%s\b" % re.escape(cmd), doc),
                            "command %s not documented in docs/protocol.md" % cmd)
        for code in proto.ERRORS:
            self.assertTrue("| `%s` |" % code in doc, "error %s not documented" % code)
        for key in proto.KEYS:
            self.assertIn("`%s`" % key, doc)


if __name__ == "__main__":
    agenttest.main()
