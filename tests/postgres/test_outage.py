"""PostgreSQL down for 40 s: subscriptions wait and resume, other calls fail fast naming the server.

The test runs a throwaway cluster of its own (`scripts/postgres-test-cluster` on a free port,
with a data folder of its own), so stopping it disturbs no other test. It subscribes three ways
(a `Subscription` in a thread, an `AsyncSubscription` on an event loop in a thread, and
`eventvault log --follow` in a child process), appends, crashes the server the way
`pg_ctl stop -m immediate` does (SIGQUIT to the postmaster: no checkpoint, as a power cut or a
killed container would leave it), and keeps it down for 40 s. After 30 s of that, a read and an
append are timed. Then the server starts again (with crash recovery), more events are appended,
and every subscriber must have every event exactly once, in order.

The whole outage runs once (a module-scoped fixture); each test checks one thing it showed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

from eventvault import AsyncEventStore, AsyncSubscription, NewEvent, StreamState, Subscription
from eventvault.errors import EventVaultError, StoreUnavailableError
from eventvault.store.postgres import PostgresEventStore
from tests.cli.test_cli_follow import Follower
from tests.postgres.conftest import POSTGRES_URL, with_options

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT: Final = Path(__file__).resolve().parents[2]
OUTAGE: Final = 40.0
"""Seconds the server stays down."""
MEASURE_AT: Final = 30.0
"""Seconds into the outage when a read and an append are timed (the pool's own wait is 30 s)."""
CALL_BOUND: Final = 5.0 + 3.0
"""The most a call may take with the server down: `unavailable_timeout` (5 s) plus slack for
a busy machine. Before, such a call waited for the pool's 30 s."""
WAIT: Final = 60.0
"""Seconds to wait for subscribers to catch up once the server is back."""


class _Cluster:
    """A PostgreSQL cluster of this test alone, run by scripts/postgres-test-cluster in a
    folder of its own on a port nobody is using."""

    def __init__(self) -> None:
        # Directly in /tmp: as root the server runs as `postgres`, which must reach the folder.
        self.base = f"/tmp/eventvault-outage-{uuid.uuid4().hex[:12]}"
        self.url = ""
        self.port = 0

    def _script(self, *args: str) -> str:
        env = {**os.environ, "EVENTVAULT_PG_DIR": self.base}
        env.pop("EVENTVAULT_PG_PORT", None)  # the folder names the cluster and its port
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "postgres-test-cluster"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self) -> None:
        """Start the cluster: the first time on a free port, later on the same one.

        Durable: with the throwaway settings (synchronous_commit off) an immediate stop loses
        the last commits, which subscribers may already have been given.
        """
        if self.port:
            self._script("start", "--durable")
            return
        self.url = self._script("start", "--durable", "--free-port")
        self.port = int(Path(self.base, "port").read_text())

    def crash(self) -> None:
        """Stop the server at once, as `pg_ctl stop -m immediate` does (SIGQUIT), and wait
        until it no longer accepts connections."""
        pid = int(Path(self.base, "data", "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 30
        while _accepts(self.port) or _alive(pid):
            assert time.monotonic() < deadline, "the server did not stop"
            time.sleep(0.05)

    def remove(self) -> None:
        """Stop the cluster and delete its data."""
        self._script("stop")


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie nobody reaped counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@dataclass
class _Watched:
    """What was seen of one subscription while the test ran."""

    positions: list[int] = field(default_factory=list)
    errors: list[StoreUnavailableError] = field(default_factory=list)
    waiting_after: bool = True
    failure: BaseException | None = None


@dataclass
class _Timed:
    """A call made during the outage: how long it took and what it raised."""

    seconds: float
    error: BaseException | None


@dataclass
class _Outage:
    """Everything the outage showed."""

    port: int
    url: str
    expected: list[int]
    sync: _Watched
    async_: _Watched
    follower_positions: list[int]
    follower_notes: list[str]
    follower_exit: int
    log_records: list[logging.LogRecord]
    read: _Timed
    append: _Timed


def _append(store: PostgresEventStore, batches: int) -> None:
    for n in range(batches):
        store.append_to_stream(
            f"order-{n % 4}",
            [NewEvent("OrderPlaced", {"n": n, "i": i}) for i in range(3)],
            expected_version=StreamState.ANY,
        )


def _timed(call: Callable[[], object]) -> _Timed:
    started = time.monotonic()
    try:
        call()
    except EventVaultError as exc:
        return _Timed(time.monotonic() - started, exc)
    return _Timed(time.monotonic() - started, None)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _watch(
    subscriptions: dict[str, Callable[[], Subscription | AsyncSubscription | None]],
    seen: dict[str, _Watched],
    stop: threading.Event,
) -> None:
    """Note, ten times a second, whether each subscription waits and why."""
    while not stop.wait(0.1):
        for name, get in subscriptions.items():
            subscription = get()
            if subscription is None:
                continue
            error = subscription.last_error
            if error is not None and error not in seen[name].errors:
                seen[name].errors.append(error)
            seen[name].waiting_after = subscription.waiting


class _AsyncSubscriber:
    """An `AsyncSubscription` iterated on an event loop of its own thread."""

    def __init__(self, url: str, seen: _Watched) -> None:
        self.subscription: AsyncSubscription | None = None
        self._seen = seen
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(url),))
        self._thread.start()
        assert self._ready.wait(30)

    async def _run(self, url: str) -> None:
        store = AsyncEventStore(PostgresEventStore(url))
        try:
            self.subscription = store.subscribe_to_all()
            self._ready.set()
            async for event in self.subscription:
                self._seen.positions.append(event.global_position)
        except BaseException as exc:
            self._seen.failure = exc
        finally:
            self._ready.set()
            await store.close()

    def stop(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
        self._thread.join(30)


def _follower_lines(follower: Follower) -> tuple[list[int], list[str]]:
    positions = []
    while not follower.stdout.empty():
        positions.append(int(json.loads(follower.stdout.get())["global_position"]))
    notes = []
    while not follower.stderr.empty():
        notes.append(follower.stderr.get().strip())
    return positions, notes


def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture(scope="module")
def outage() -> Iterator[_Outage]:
    """Run the outage once and report what it showed."""
    if POSTGRES_URL is None and not os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
        pytest.skip("PostgreSQL tests run with EVENTVAULT_TEST_POSTGRES_URL (scripts/test)")
    cluster = _Cluster()
    try:
        cluster.start()
        yield _run_outage(cluster)
    finally:
        cluster.remove()


def _run_outage(cluster: _Cluster) -> _Outage:
    url = with_options(cluster.url, schema="ev_outage", auto_migrate="true")
    records = _Records()
    logger = logging.getLogger("eventvault.subscription")
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    seen = {"sync": _Watched(), "async": _Watched()}
    stop_watching = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.callback(logger.removeHandler, records)
        writer = stack.enter_context(PostgresEventStore(url))
        reader = stack.enter_context(PostgresEventStore(url))
        reading = stack.enter_context(PostgresEventStore(url))
        appending = stack.enter_context(PostgresEventStore(url))
        subscription = stack.enter_context(reader.subscribe_to_all())

        def consume() -> None:
            try:
                for event in subscription:
                    seen["sync"].positions.append(event.global_position)
            except BaseException as exc:
                seen["sync"].failure = exc

        consumer = threading.Thread(target=consume)
        consumer.start()
        stack.callback(consumer.join, 30)
        stack.callback(subscription.close)
        async_subscriber = _AsyncSubscriber(url, seen["async"])
        stack.callback(async_subscriber.stop)
        follower = Follower(url, "--json", "--after", "0")
        stack.callback(follower.close)
        watcher = threading.Thread(
            target=_watch,
            args=(
                {"sync": lambda: subscription, "async": lambda: async_subscriber.subscription},
                seen,
                stop_watching,
            ),
        )
        watcher.start()
        stack.callback(watcher.join, 5)
        stack.callback(stop_watching.set)

        follower_positions: list[int] = []
        follower_notes: list[str] = []

        def caught_up(last: int) -> Callable[[], bool]:
            def check() -> bool:
                positions, notes = _follower_lines(follower)
                follower_positions.extend(positions)
                follower_notes.extend(notes)
                return all(
                    positions[-1:] == [last]
                    for positions in (
                        follower_positions,
                        seen["sync"].positions,
                        seen["async"].positions,
                    )
                )

            return check

        _append(writer, 10)
        # Every pooled connection is in use once before the crash, so each dies with it.
        reading.head_position()
        appending.head_position()
        _until(caught_up(writer.head_position()), WAIT)

        cluster.crash()
        crashed = time.monotonic()
        time.sleep(MEASURE_AT)
        results: dict[str, _Timed] = {}
        calls = {
            "read": lambda: list(reading.read_all()),
            "append": lambda: appending.append_to_stream(
                "during-1", [NewEvent("Lost", {})], expected_version=StreamState.ANY
            ),
        }
        timers = [
            threading.Thread(target=lambda k=key: results.__setitem__(k, _timed(calls[k])))
            for key in calls
        ]
        for timer in timers:
            timer.start()
        for timer in timers:
            timer.join(60)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - crashed)))
        cluster.start()

        _append(writer, 10)
        expected = [event.global_position for event in writer.read_all()]
        _until(caught_up(expected[-1]), WAIT)
        time.sleep(0.5)  # for the watcher to see the subscriptions answer again
        follower_exit = follower.interrupt()
        follower_notes.extend(follower.rest_of_stderr().splitlines())
    return _Outage(
        port=cluster.port,
        url=url,
        expected=expected,
        sync=seen["sync"],
        async_=seen["async"],
        follower_positions=follower_positions,
        follower_notes=follower_notes,
        follower_exit=follower_exit,
        log_records=records.records,
        read=results["read"],
        append=results["append"],
    )


def _server(outage: _Outage) -> str:
    return f"127.0.0.1:{outage.port}"


@pytest.mark.parametrize("face", ["sync", "async_"])
def test_a_subscription_delivers_every_event_exactly_once_in_order_across_a_40_s_outage(
    outage: _Outage, face: str
) -> None:
    seen: _Watched = getattr(outage, face)
    assert seen.failure is None
    assert len(outage.expected) == 60
    assert seen.positions == outage.expected


@pytest.mark.parametrize("face", ["sync", "async_"])
def test_a_subscription_shows_that_it_waits_and_why_then_that_it_answers_again(
    outage: _Outage, face: str
) -> None:
    seen: _Watched = getattr(outage, face)
    assert seen.errors, "waiting and last_error were never seen set during the outage"
    assert all(isinstance(error, StoreUnavailableError) for error in seen.errors)
    assert _server(outage) in str(seen.errors[0])
    assert not seen.waiting_after


def test_one_warning_per_subscription_and_outage_names_the_store_and_the_error(
    outage: _Outage,
) -> None:
    waiting = [r for r in outage.log_records if "is waiting for the store" in r.getMessage()]
    assert len(waiting) == 2, [r.getMessage() for r in waiting]
    for record in waiting:
        assert record.levelno == logging.WARNING
        assert f"127.0.0.1:{outage.port}" in record.getMessage()
        assert "ev_outage" in record.getMessage()
    resumed = [r for r in outage.log_records if "resumed" in r.getMessage()]
    assert len(resumed) == 2


def test_log_follow_prints_every_event_once_and_a_notice_while_it_waits(outage: _Outage) -> None:
    assert outage.follower_positions == outage.expected
    waiting = [line for line in outage.follower_notes if line.startswith("waiting for the store")]
    assert len(waiting) == 1, outage.follower_notes
    assert _server(outage) in waiting[0]
    assert any(line.startswith("the store answers again") for line in outage.follower_notes)
    assert not any("Traceback" in line for line in outage.follower_notes)
    assert outage.follower_exit == 0


@pytest.mark.parametrize("call", ["read", "append"])
def test_a_call_with_the_server_down_fails_within_the_bound_naming_the_server_not_the_pool(
    outage: _Outage, call: str
) -> None:
    timed: _Timed = getattr(outage, call)
    assert isinstance(timed.error, StoreUnavailableError), timed.error
    message = str(timed.error)
    assert _server(outage) in message
    assert "pool" not in message
    assert timed.seconds < CALL_BOUND
