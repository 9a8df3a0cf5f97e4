"""End-to-end: `pmt-top diff` and `pmt-top --load` refuse a FIFO at once.

A FIFO with no writer blocks open(2) and read(2) for ever. pmt-top, often run
as root on files in shared directories, must instead say in one line that it
reads snapshots from regular files only and exit with status 1. Every run has
a timeout, so a hang fails the test rather than the suite. The one pipe it
reads is its own: a shell's <(zcat x.json.gz), whose writer the user started.
"""
import os
import subprocess
import tempfile
import unittest

from tui import BIN, SOURCE

GOOD = os.path.join(SOURCE, "tests", "data", "snapshots", "lineno_new.json")


class LoadFifoTest(unittest.TestCase):

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="pmt-e2e-fifo-")
        self.addCleanup(subprocess.call, ["rm", "-rf", self.tmpdir])
        self.fifo = os.path.join(self.tmpdir, "old.json")
        os.mkfifo(self.fifo)

    def run_top(self, *args):
        return subprocess.run([BIN] + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=10)

    def assert_refused(self, r):
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr,
                         "pmt-top: %s: is a FIFO, not a snapshot file (snapshots are read "
                         "from regular files only: save it to one first)\n" % self.fifo)
        self.assertEqual(r.stdout, "")

    def test_diff_old_is_a_fifo(self):
        self.assert_refused(self.run_top("diff", self.fifo, GOOD))

    def test_diff_new_is_a_fifo(self):
        self.assert_refused(self.run_top("diff", GOOD, self.fifo))

    def test_load_a_fifo(self):
        self.assert_refused(self.run_top("--load", GOOD, self.fifo))

    def test_fifo_with_a_writer(self):
        # Someone holds it open with a snapshot in it: refused all the same.
        fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        with open(GOOD, "rb") as f:
            os.write(fd, f.read())
        self.assert_refused(self.run_top("diff", self.fifo, GOOD))

    def test_process_substitution_is_read(self):
        # bash gives pmt-top /dev/fd/N, an anonymous pipe of its own.
        r = subprocess.run(["bash", "-c", '"$0" diff <(cat "$1") "$1"', BIN, GOOD],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^diff by lineno: ")
        self.assertIn("0 new, 0 gone, 0 changed, 5 same", r.stdout)

    def test_proc_fd_path_of_a_named_fifo_is_refused(self):
        # The same FIFO reached through a descriptor of ours is still a named FIFO.
        fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        r = subprocess.run([BIN, "diff", "/dev/fd/%d" % fd, GOOD], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10,
                           pass_fds=(fd,))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("is a FIFO, not a snapshot file", r.stderr)


if __name__ == "__main__":
    unittest.main()
