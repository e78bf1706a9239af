"""Helpers for tests that run ``levante`` as a child process.

`Child` reads the child's merged stdout/stderr in a thread, so a test can wait
for a line with a deadline instead of blocking on ``readline()``.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time


class Child:
    """A running child process and the lines it has printed so far."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def wait_line(self, text: str, timeout: float = 15.0) -> str:
        """The first line containing `text`; fails if the child ends or time runs out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    why = "exited" if self._eof else f"printed nothing more in {timeout}s"
                    raise AssertionError(
                        f"no line with {text!r}; the child {why}:\n{''.join(self.lines)}"
                    )
                self._cond.wait(remaining)

    def port(self, timeout: float = 15.0) -> int:
        """The port from the 'Levante running on http://host:PORT' line."""
        line = self.wait_line("Levante running on", timeout)
        return int(line.rsplit(":", 1)[1].split()[0])

    def finish(self, timeout: float = 15.0) -> int:
        """Wait for the child to exit and its output to be read; return the exit code."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the child did not exit within {timeout}s:\n{self.output}"
            ) from None
        self._reader.join(timeout)
        return code

    def stop(self) -> None:
        """Terminate the child if it still runs (and kill it if it ignores that)."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._reader.join(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
