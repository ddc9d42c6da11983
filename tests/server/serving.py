"""`eventvault serve` in a real process, for tests: start it, find where it listens, stop it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_LISTENING = re.compile(r"eventvault serves (.+) \((\w+) engine.*\) on (http://\S+)")


class Served:
    """An `eventvault serve` process.

    Attributes:
        url: where it listens (`http://127.0.0.1:PORT`).
        store: the store it serves, as it logged it (password masked).
        log: every line it wrote to stderr so far.
    """

    def __init__(self, *args: str, cwd: Path | None = None, timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eventvault.cli", "serve", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.log: list[str] = []
        self.url = ""
        self.store = ""
        found = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    self.store, self.url = match.group(1), match.group(3)
                    found.set()
            found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        found.wait(timeout)
        if not self.url:
            self.kill()
            raise RuntimeError("the server did not start:\n" + "".join(self.log))

    @property
    def pid(self) -> int:
        return self.process.pid

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, and wait for the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._release()

    def kill(self) -> None:
        """SIGKILL, at once."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        self._release()

    def _release(self) -> None:
        if self.process.poll() is not None:
            self._reader.join(10)
            assert self.process.stderr is not None
            self.process.stderr.close()

    def open_sockets(self) -> int:
        """How many sockets the server holds (listening and connected)."""
        folder = f"/proc/{self.pid}/fd"
        count = 0
        for name in os.listdir(folder):
            try:
                count += os.readlink(f"{folder}/{name}").startswith("socket:")
            except FileNotFoundError:
                continue
        return count

    def wait_for_log(self, text: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.log):
                return True
            time.sleep(0.05)
        return False
