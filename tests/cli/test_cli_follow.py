"""`eventvault log --follow`: tailing the log live, and stopping cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO

import pytest

from .cli_harness import Cli, seed

WAIT = 30.0
"""Seconds a test waits for the follower before it fails (it normally takes well under one)."""


@contextlib.contextmanager
def sigint_delivered() -> Iterator[None]:
    """Let a child process receive SIGINT even when this process was started ignoring it.

    A child inherits an ignored SIGINT; a handled one is reset to the default on exec, and
    Python then turns it into KeyboardInterrupt.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)


class Follower:
    """`eventvault log --follow` in a child process, its output lines read on threads."""

    def __init__(self, url: str, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("EVENTVAULT_URL", None)
        with sigint_delivered():
            self.process = subprocess.Popen(
                [sys.executable, "-m", "eventvault.cli", "log", "--follow", "--url", url, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.process.stdout, self.stdout)),
            threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr)),
        ]
        for pump in self._pumps:
            pump.start()

    @staticmethod
    def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
        for line in stream:
            lines.put(line)

    def interrupt(self) -> int:
        """Send SIGINT (Ctrl-C) and return the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=WAIT)

    def rest_of_stderr(self) -> str:
        """What the follower wrote to stderr that was not read yet (after it ended)."""
        for pump in self._pumps:
            pump.join(timeout=WAIT)
        rest = []
        while not self.stderr.empty():
            rest.append(self.stderr.get())
        return "".join(rest)

    def close(self) -> None:
        """Kill the follower if it still runs, and release its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT)
        for pump in self._pumps:
            pump.join(timeout=WAIT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def following(url: str, *args: str) -> Iterator[Follower]:
    follower = Follower(url, *args)
    try:
        yield follower
    finally:
        follower.close()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is a POSIX signal")
def test_follow_prints_an_event_appended_by_another_process_and_stops_on_sigint(
    seeded: str,
) -> None:
    with following(seeded, "--json") as follower:
        assert "following the log after position 4" in follower.stderr.get(timeout=WAIT)
        seed(seeded, [("account-9", "AccountOpened", {"owner": "Lin"})])
        event = json.loads(follower.stdout.get(timeout=WAIT))
        assert (event["global_position"], event["stream_name"]) == (5, "account-9")
        assert follower.interrupt() == 0
        assert "Traceback" not in follower.rest_of_stderr()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is a POSIX signal")
def test_follow_prints_readable_lines_without_json(seeded: str) -> None:
    with following(seeded, "--after", "3") as follower:
        line = follower.stdout.get(timeout=WAIT)
        assert line.split() == ["#4", "order-7@0", "OrderPlaced", '{"items":3}']
        assert follower.interrupt() == 0


def append_later(url: str, delay: float) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        seed(url, [("order-8", "OrderPlaced", {"items": 1}), ("account-1", "Closed", {})])

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_follow_catches_up_then_delivers_an_event_appended_by_another_thread(
    cli: Cli, seeded: str
) -> None:
    thread = append_later(seeded, 0.2)
    result = cli("log", "--follow", "--after", "3", "--limit", "2", "--json", "--url", seeded)
    thread.join()
    assert result.exit_code == 0, result.output
    positions = [json.loads(line)["global_position"] for line in result.stdout.splitlines()]
    assert positions == [4, 5]


def test_follow_applies_the_type_filter(cli: Cli, seeded: str) -> None:
    thread = append_later(seeded, 0.2)
    result = cli(
        "log", "--follow", "--after", "0", "--type", "Closed", "--limit", "1", "--json",
        "--url", seeded,
    )  # fmt: skip
    thread.join()
    [line] = result.stdout.splitlines()
    assert json.loads(line)["event_type"] == "Closed"
