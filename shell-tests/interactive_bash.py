"""An interactive bash on a pty, for the tests that type at one
(t-ctrl-c.sh, t-helper.sh): what it prints is read up to a token, and
answers are tagged so that the terminal's echo of the typed line cannot
be mistaken for them."""
import os
import pty
import re
import select
import sys
import time


class Bash:
    def __init__(self):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
        self.pending = b""

    def read_until(self, token, timeout=20):
        """The terminal's output up to and including `token`; what came
        after it in the same read is kept for the next call."""
        buf, end = self.pending, time.time() + timeout
        while token.encode() not in buf:
            left = end - time.time()
            if left <= 0:
                sys.exit("timed out waiting for %r; got %r" % (token, buf[-400:]))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    buf += os.read(self.fd, 4096)
                except OSError:
                    break
        cut = buf.find(token.encode()) + len(token.encode()) if token.encode() in buf else len(buf)
        self.pending = buf[cut:]
        return buf[:cut].decode(errors="replace")

    def send(self, line):
        os.write(self.fd, line.encode() + b"\n")

    def interrupt(self):
        """Types ^C."""
        os.write(self.fd, b"\x03")

    def answer(self, command):
        """Runs command; returns its output."""
        self.send("echo \"<<$(%s)>>\" | tr '<>' '[]'" % command)
        return re.search(r"\[\[(.*?)\]\]", self.read_until("]]")).group(1)

    def load(self, lib, builtins):
        """Sets a plain prompt and enables the builtins."""
        self.send("PS1='PROMPT> '; enable -f %s %s && echo LOADED" % (lib, builtins))
        self.read_until("LOADED")
        self.read_until("PROMPT> ")

    def exit(self):
        """Exits the shell; returns its exit status."""
        self.send("exit")
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)
