"""`import`, `copy` and `export` when things go wrong around them: killed at random points, run
while another process appends, writing onto a full disk.

What a user relies on: a target is empty or whole, never part of a log, and the command run again
completes; an export taken while others write holds a whole prefix of the log; an export that
could not be written whole never looks whole.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec
import psycopg
import pytest

import eventvault
from eventvault import NewEvent, RawEvent, StreamAppend, StreamState
from eventvault.errors import MigrationRequiredError, NotAnEventVaultDatabaseError
from eventvault.serialization import verify_chain
from eventvault.store.sqlite import SQLiteEventStore
from tests.postgres import conftest as postgres
from tests.store.filesystems import tmpfs

from .cli_harness import Cli, seed

server_url = postgres.server_url
new_schema = postgres.new_schema

SOURCE_EVENTS: Final = 20_000
"""Events of the log that is imported and copied: enough to take about half a second."""
KILLS: Final = 3
"""Kills per command and target, at times spread from its start to a little past its end."""


@dataclass(frozen=True)
class Source:
    """A SQLite store, its export file and its events."""

    url: str
    export: Path
    events: list[RawEvent]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    folder = tmp_path_factory.mktemp("source")
    url = str(folder / "source.db")
    with eventvault.connect(url) as store:
        for batch in range(SOURCE_EVENTS // 1000):
            store.append_to_streams(
                [
                    StreamAppend(
                        f"account-{batch}-{n}",
                        [NewEvent("Deposited", {"amount": i, "pad": "x" * 50}) for i in range(10)],
                        StreamState.NO_STREAM,
                    )
                    for n in range(100)
                ]
            )
        events = list(store.export_events())
    export = folder / "source.jsonl"
    result = Cli()("export", str(export), "--url", url)
    assert result.exit_code == 0, result.output
    return Source(url, export, events)


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "EVENTVAULT_URL"}


def _command(source: Source, command: str, target: str) -> list[str]:
    """`eventvault import` of the source's export into `target`, or `copy` of the source."""
    if command == "import":
        arguments = ["import", str(source.export), "--url", target]
    else:
        arguments = ["copy", source.url, target]
    return [sys.executable, "-m", "eventvault.cli", *arguments]


def _run_and_kill(argv: list[str], after: float) -> int:
    """Run a command, SIGKILL it `after` seconds in (unless it ended first); its exit status."""
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_environment()
    )
    try:
        process.wait(timeout=after)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGKILL), err.decode()
    return process.returncode


@dataclass(frozen=True)
class Target:
    """Where a killed command writes: a fresh target of one kind for each kill."""

    make: Callable[[], str]
    settle: Callable[[str], None]
    """Waits until a killed command can no longer change the target (PostgreSQL: until its
    server session has ended)."""
    new_file: bool = False
    """A SQLite file that does not exist yet: it appears only whole."""


def _no_wait(url: str) -> None:
    pass


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    counter = iter(range(1000))
    if request.param == "new-sqlite-file":
        yield Target(lambda: str(tmp_path / f"new-{next(counter)}.db"), _no_wait, new_file=True)
    elif request.param == "empty-sqlite-store":

        def empty_store() -> str:
            url = str(tmp_path / f"empty-{next(counter)}.db")
            seed(url, [])
            return url

        yield Target(empty_store, _no_wait)
    else:
        server = request.getfixturevalue("server_url")
        schema = request.getfixturevalue("new_schema")

        def new_schema_url() -> str:
            return postgres.with_options(
                server, schema=schema(), application_name=f"ev_kill_{uuid.uuid4().hex[:12]}"
            )

        def sessions_ended(url: str) -> None:
            name = url.rsplit("application_name=", 1)[1]
            deadline = time.monotonic() + 30
            with psycopg.connect(server, autocommit=True) as conn:
                while conn.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = %s", (name,)
                ).fetchone():
                    assert time.monotonic() < deadline, "the killed command's session lived on"
                    time.sleep(0.05)

        yield Target(new_schema_url, sessions_ended)


def _holds(url: str, source: Source) -> int:
    """How many events the target holds: none or all of the source's, never another number.

    A SQLite file that does not exist, or a PostgreSQL schema without a store, holds none.
    """
    path = None if url.startswith("postgresql") else Path(url)
    if path is not None and not path.exists():
        # A kill leaves at most the temporary files of the new store, never a file at its name.
        left = [p.name for p in path.parent.iterdir() if path.name in p.name]
        assert all(name.startswith(f".{path.name}.") and ".partial" in name for name in left)
        return 0
    try:
        store = eventvault.connect(url)
    except (MigrationRequiredError, NotAnEventVaultDatabaseError):
        assert path is None, "a SQLite target that exists opens"
        return 0  # the killed command never created the store in the schema
    with store:
        held = list(store.export_events())
        if held:
            assert held == source.events
            assert verify_chain(held) == len(source.events)
        if isinstance(store, SQLiteEventStore):
            assert store.integrity_check() == ["ok"]
        return len(held)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "target"),
    [
        ("import", "new-sqlite-file"),
        ("import", "empty-sqlite-store"),
        ("import", "postgres"),
        # A copy writes into an existing store as an import does.
        ("copy", "new-sqlite-file"),
        ("copy", "postgres"),
    ],
    indirect=["target"],
)
def test_an_import_or_copy_killed_at_any_point_leaves_its_target_empty_or_whole(
    source: Source, target: Target, command: str
) -> None:
    rng = random.Random()
    started = time.monotonic()
    url = target.make()
    assert _run_and_kill(_command(source, command, url), after=120) == 0
    whole = time.monotonic() - started
    assert _holds(url, source) == len(source.events)
    outcomes = []
    for kill in range(KILLS):
        # From start-up to a little past the end, spread over the rounds; the first kill lands
        # in the first half, even if the run that measured `whole` was slowed down.
        after = whole * (0.1 + (kill + rng.random()) / KILLS)
        url = target.make()
        status = _run_and_kill(_command(source, command, url), after)
        target.settle(url)
        held = _holds(url, source)
        outcomes.append((url, round(after, 3), status, held))
        if target.new_file:
            assert held == len(source.events) or not Path(url).exists(), outcomes
    left_empty = [url for url, _, status, held in outcomes if status != 0 and held == 0]
    assert left_empty, f"no kill landed before the commit: {outcomes}"
    # Run again over what a kill left: it completes.
    assert _run_and_kill(_command(source, command, left_empty[-1]), after=120) == 0
    assert _holds(left_empty[-1], source) == len(source.events)


# -- an export while another process appends -------------------------------------------------


@pytest.fixture(params=["sqlite-file", "postgres"])
def busy_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store with a log that another process will append to."""
    if request.param == "postgres":
        url = postgres.with_options(
            request.getfixturevalue("server_url"),
            schema=request.getfixturevalue("new_schema")(),
            auto_migrate="true",
        )
    else:
        url = str(tmp_path / "busy.db")
    with eventvault.connect(url) as store:
        store.append_to_streams(
            [
                StreamAppend(f"old-{n}", [NewEvent("Old", {"n": n})], StreamState.NO_STREAM)
                for n in range(3000)
            ]
        )
    return url


def test_an_export_taken_while_another_process_appends_imports_as_a_prefix_of_the_log(
    cli: Cli, busy_url: str, tmp_path: Path
) -> None:
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventvault.testing._workers",
            "append-forever",
            busy_url,
            "live",
            "w",
            "2",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        for _ in range(20):
            assert writer.stdout.readline(), "the writer appends"
        export = tmp_path / "online.jsonl"
        result = cli("export", str(export), "--url", busy_url)
        assert result.exit_code == 0, result.output
        for _ in range(20):
            assert writer.stdout.readline(), "the writer appended after the export"
    finally:
        writer.kill()
        writer.communicate(timeout=30)
    head = msgspec.json.decode(export.read_bytes().split(b"\n", 1)[0])["head"]
    restored = tmp_path / "restored.db"
    result = cli("import", str(export), "--url", str(restored))
    assert result.exit_code == 0, result.output
    with eventvault.connect(busy_url) as store:
        log = list(store.export_events())
    assert log[-1].global_position > head, "the log grew after the export began"
    with eventvault.connect(str(restored)) as store:
        assert list(store.export_events()) == [e for e in log if e.global_position <= head]


# -- an export onto a full disk --------------------------------------------------------------


def test_an_export_onto_a_full_disk_fails_saying_so_and_leaves_no_file(
    cli: Cli, source: Source
) -> None:
    with tmpfs("1m") as disk:
        result = cli("export", str(disk / "backup.jsonl"), "--url", source.url)
        assert result.exit_code == 8, result.output
        assert "No space left on device" in result.stderr
        assert list(disk.iterdir()) == []


def test_an_export_to_stdout_onto_a_full_disk_fails_and_what_it_wrote_is_refused(
    cli: Cli, source: Source, tmp_path: Path
) -> None:
    with tmpfs("1m") as disk:
        partial = disk / "backup.jsonl"
        with partial.open("wb") as out:
            exported = subprocess.run(
                [sys.executable, "-m", "eventvault.cli", "export", "-", "--url", source.url],
                stdout=out,
                stderr=subprocess.PIPE,
                env=_environment(),
                timeout=120,
                check=False,
            )
        assert exported.returncode == 8
        assert b"No space left on device" in exported.stderr
        target = tmp_path / "restored.db"
        result = cli("import", str(partial), "--url", str(target))
        assert result.exit_code == 5, result.output
        assert "the closing record is missing" in result.stderr
        assert not target.exists()
