"""Malformed input never hurts the target: error replies, closed connections, a live agent."""
import json
import os
import random
import socket
import time
import unittest

import agenttest
from agenttest import Target, ClassScope, Client

MAX_REQUEST = 64 * 1024


class Malformed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Target(ClassScope(cls), trace=1)

    def tearDown(self):
        # after every abuse: the target runs, a good client still gets answers
        self.assertTrue(self.t.alive(), self.t.stderr())
        self.assertEqual(self.t.call("result = 6 * 7"), 42)
        c = self.t.client()
        self.assertEqual(c.ok("status")["tracing"], True)
        c.close()
        self.assertNotIn("Traceback", self.t.stderr())

    def test_random_bytes(self):
        rng = random.Random(1234)
        for _ in range(5):
            c = self.t.client()
            lines = []
            for _ in range(20):
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
                data = data.replace(b"\n", b"")
                if data.strip():
                    lines.append(data)
            c.send_raw(b"\n".join(lines) + b"\n")
            for _ in lines:
                rep = c.reply(10)
                self.assertIsNotNone(rep)
                self.assertIs(rep["ok"], False)
                self.assertEqual(rep["error"]["code"], "bad_frame")
                self.assertIsNone(rep["id"])
            self.assertTrue(c.ok("status"))
            c.close()

    def test_not_objects_and_bad_utf8(self):
        c = self.t.client()
        for frame in (b"[1, 2]", b"42", b'"hello"', b"null", b"{", b"{\"id\": 1,", b"\xff\xfe{}",
                      b'{"id": 1, "cmd": "status", "args": {"x": "\xc3"}}', b"[" * 5000 + b"]" * 5000,
                      b'{"id": NaN, "cmd": "status"}'):
            c.send_raw(frame + b"\n")
            rep = c.reply(10)
            self.assertEqual(rep["error"]["code"], "bad_frame", frame[:40])
        c.send_raw(b"\n  \n\r\n")          # blank lines are ignored
        self.assertTrue(c.ok("status"))

    def test_wrong_types(self):
        c = self.t.client()
        cases = [({"id": 3, "cmd": "top", "args": {"limit": "50"}}, "bad_args"),
                 ({"id": 3, "cmd": "top", "args": {"key": ["lineno"]}}, "bad_args"),
                 ({"id": 3, "cmd": "top", "args": {"include": {"a": 1}}}, "bad_args"),
                 ({"id": 3, "cmd": "top", "args": "lineno"}, "bad_args"),
                 ({"id": 3, "cmd": ["top"]}, "bad_frame"),
                 ({"id": "3", "cmd": "top"}, "bad_frame"),
                 ({"id": 3, "cmd": "TOP"}, "unknown_command"),
                 ({"id": 3, "cmd": "__import__"}, "unknown_command"),
                 ({"id": 3, "cmd": "x" * 60000}, "unknown_command"),
                 ({"id": 3, "cmd": "subscribe", "args": {"interval": 1e308}}, "bad_args")]
        for msg, code in cases:
            c.send_raw((json.dumps(msg) + "\n").encode())
            rep = c.reply(10)
            self.assertEqual(rep["error"]["code"], code, msg)
            self.assertLess(len(rep["error"]["message"]), 300)

    def test_pipelined(self):
        c = self.t.client()
        n = 300
        c.send_raw(b"".join(b'{"id": %d, "cmd": "status"}\n' % i for i in range(n)))
        ids = [c.reply(10)["id"] for _ in range(n)]
        self.assertEqual(ids, list(range(n)))

    def test_split_frames(self):
        c = self.t.client()
        frame = b'{"id": 77, "cmd": "status"}\n'
        for b in frame:
            c.send_raw(bytes([b]))
            time.sleep(0.001)
        self.assertEqual(c.reply(10)["id"], 77)

    def test_truncated_then_close(self):
        for data in (b'{"id": 1, "cmd": "sta', b'{"id": 1', b"x" * 60000):
            c = self.t.client()
            c.send_raw(data)
            c.close()
        c = self.t.client(hello=False)
        c.send_raw(b'{"id": 1, "cmd": "hello", "args": {"protocol": 1}')
        c.sock.shutdown(socket.SHUT_WR)      # EOF without the newline: no reply
        self.assertTrue(c.at_eof(5))

    def test_oversized(self):
        # exactly at the limit (newline included) is accepted
        pad = MAX_REQUEST - len(b'{"id": 5, "cmd": "status", "pad": ""}\n')
        frame = b'{"id": 5, "cmd": "status", "pad": "' + b"a" * pad + b'"}\n'
        self.assertEqual(len(frame), MAX_REQUEST)
        c = self.t.client()
        c.send_raw(frame)
        self.assertEqual(c.reply(10)["id"], 5)
        # one byte more, with or without its newline: too_large, then closed
        for tail in (b'"}\n', b'a"}\n', b"a" * 200000):
            c = self.t.client()
            try:
                c.send_raw(b'{"id": 6, "cmd": "status", "pad": "' + b"a" * pad + tail)
            except (BrokenPipeError, ConnectionResetError):
                pass
            rep = c.read_frame(10)
            if tail == b'"}\n':
                self.assertEqual(rep["id"], 5 + 1)
                self.assertTrue(rep["ok"])
                continue
            self.assertEqual(rep["error"]["code"], "too_large")
            self.assertTrue(c.at_eof(10))

    def test_many_clients_at_once(self):
        clients = [Client(self, self.t.path) for _ in range(20)]
        for c in clients:
            c.send_raw(b'{"id": 1, "cmd": "top", "args": {"limit": 5}}\n')
        # Heavy requests run one at a time; 16 may wait, the rest are told busy.
        replies = [c.reply(60) for c in clients]
        for r in replies:
            self.assertEqual(r["id"], 1)
            if not r["ok"]:
                self.assertEqual(r["error"]["code"], "busy", r)
                self.assertIn("heavy requests of other clients are already waiting", r["error"]["message"])
        self.assertGreaterEqual(sum(r["ok"] for r in replies), 17, replies)
        for c in clients:
            c.close()


if __name__ == "__main__":
    agenttest.main()
