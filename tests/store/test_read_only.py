"""Stores opened read-only: readable in read-only folders and mounts, never created or changed,
refusing every write with `ReadOnlyStoreError`."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import eventvault
from eventvault import NewEvent, StreamAppend, StreamState
from eventvault.errors import (
    MigrationRequiredError,
    NotAnEventVaultDatabaseError,
    ReadOnlyStoreError,
    StorageError,
    StoreNotFoundError,
)
from eventvault.store.seam import Component, Migration
from tests.cli.cli_harness import SAMPLE, Cli, seed

from .filesystems import as_unprivileged, remount_read_only, shared_folder, tmpfs

READING_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("stats", "--json"),
    ("read", "account-1", "--json"),
    ("log", "--json"),
    ("streams", "--json"),
    ("export", "-"),
)
Outcome = tuple[int, str, str]


def _files(folder: Path) -> dict[str, str]:
    """Every file of a folder and a digest of its bytes."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
    }


def _store_in(folder: Path, scratch: Path, *, wal: str) -> Path:
    """A store holding `SAMPLE` in `folder`, made in `scratch`.

    wal: "absent", a store closed cleanly (no -wal or -shm file); "present", copied while open
    with its events still in the -wal file, beside its -shm file; "no-index", the same without
    the -shm file.
    """
    made = scratch / "made.db"
    target = folder / "events.db"
    with eventvault.connect(str(made)) as store:
        if wal != "absent":
            store._writer.execute("PRAGMA wal_autocheckpoint = 0")  # type: ignore[attr-defined]
        for stream, event_type, data in SAMPLE:
            store.append_to_stream(
                stream, [NewEvent(event_type, data)], expected_version=StreamState.ANY
            )
        if wal != "absent":
            suffixes = ["", "-wal"] if wal == "no-index" else ["", "-wal", "-shm"]
            for suffix in suffixes:
                shutil.copyfile(f"{made}{suffix}", f"{target}{suffix}")
    if wal == "absent":
        shutil.copyfile(made, target)
    return target


def _lock_down(folder: Path) -> None:
    """chmod 444 every file and 555 the folder."""
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)


def _run_reading_commands(url: str) -> dict[str, Outcome]:
    cli = Cli()
    outcomes: dict[str, Outcome] = {}
    for command in READING_COMMANDS:
        result = cli(*command, "--url", url)
        outcomes[command[0]] = (result.exit_code, result.stdout, result.stderr)
    result = cli("append", "account-9", "AccountOpened", "--url", url)
    outcomes["append"] = (result.exit_code, result.stdout, result.stderr)
    return outcomes


def _check_reading_commands(outcomes: dict[str, Outcome]) -> None:
    for command in ("stats", "read", "log", "streams", "export"):
        code, _, stderr = outcomes[command]
        assert code == 0, (command, stderr)
    assert '"event_count":4' in outcomes["stats"][1]
    assert len(outcomes["log"][1].splitlines()) == 4
    exported = [line for line in outcomes["export"][1].splitlines() if '"record"' not in line]
    assert len(exported) == 4  # the events, between the file's header and its end record
    assert len(outcomes["read"][1].splitlines()) == 2
    code, _, stderr = outcomes["append"]
    assert code == 8
    assert "is read-only" in stderr


@pytest.fixture
def warm_cli(tmp_path: Path) -> None:
    """Run every command once in this process, so that a forked child finds its modules loaded."""
    url = str(tmp_path / "warm.db")
    seed(url, SAMPLE)
    _run_reading_commands(url)
    with eventvault.connect(url, read_only=True) as store:
        list(store.read_all())


@pytest.fixture
def folder() -> Iterator[Path]:
    with shared_folder() as base:
        (base / "scratch").mkdir()
        (base / "store").mkdir()
        yield base


@pytest.mark.usefixtures("warm_cli")
@pytest.mark.parametrize("wal", ["absent", "present"])
def test_reading_commands_work_in_a_read_only_folder(folder: Path, wal: str) -> None:
    store_folder = folder / "store"
    path = _store_in(store_folder, folder / "scratch", wal=wal)
    _lock_down(store_folder)
    before = _files(store_folder)
    outcomes = as_unprivileged(lambda: _run_reading_commands(str(path)))
    _check_reading_commands(outcomes)
    assert _files(store_folder) == before


@pytest.mark.usefixtures("warm_cli")
@pytest.mark.parametrize("wal", ["absent", "present"])
def test_connect_read_only_reads_a_read_only_folder_and_refuses_appends(
    folder: Path, wal: str
) -> None:
    path = _store_in(folder / "store", folder / "scratch", wal=wal)
    _lock_down(folder / "store")

    def work() -> tuple[int, list[str], str]:
        with eventvault.connect(str(path), read_only=True) as store:
            types = [event.event_type for event in store.read_all()]
            try:
                store.append_to_stream("account-9", [NewEvent("X", {})], expected_version=0)
            except ReadOnlyStoreError as exc:
                refused = str(exc)
            return store.head_position(), types, refused

    head, types, refused = as_unprivileged(work)
    assert head == 4
    assert types == [event_type for _, event_type, _ in SAMPLE]
    assert f"the store {str(path)!r} is read-only" in refused


@pytest.mark.usefixtures("warm_cli")
def test_a_log_without_its_index_in_a_read_only_folder_is_refused_naming_it(
    folder: Path,
) -> None:
    path = _store_in(folder / "store", folder / "scratch", wal="no-index")
    _lock_down(folder / "store")

    def work() -> str:
        try:
            eventvault.connect(str(path), read_only=True)
        except StorageError as exc:
            return str(exc)
        return "opened"

    message = as_unprivileged(work)
    assert "holds committed events" in message
    assert f"{path}-wal" in message
    assert "copy the store's file and its -wal file to a writable folder" in message


@pytest.mark.usefixtures("warm_cli")
def test_a_folder_without_search_permission_is_named_as_the_cause(folder: Path) -> None:
    hidden = folder / "store" / "hidden"
    hidden.mkdir()
    path = _store_in(hidden, folder / "scratch", wal="absent")
    hidden.chmod(0o600)

    def work() -> tuple[Outcome, Outcome, str]:
        cli = Cli()
        stats = cli("stats", "--url", str(path))
        append = cli("append", "account-9", "AccountOpened", "--url", str(path))
        try:
            eventvault.connect(str(path), read_only=True)
        except StorageError as exc:
            message = str(exc)
        return (
            (stats.exit_code, stats.stdout, stats.stderr),
            (append.exit_code, append.stdout, append.stderr),
            message,
        )

    stats, append, message = as_unprivileged(work)
    for code, _, stderr in (stats, append):
        assert code == 8, stderr
        assert "permission denied" in stderr
        assert f"the folder {str(hidden)!r} cannot be searched" in stderr
        assert "does not exist" not in stderr
    assert "permission denied" in message


@pytest.mark.parametrize("wal", ["absent", "present"])
def test_reading_commands_work_on_a_read_only_mount(wal: str) -> None:
    with shared_folder() as scratch, tmpfs("4m") as mount:
        path = _store_in(mount, scratch, wal=wal)
        remount_read_only(mount)
        before = _files(mount)
        _check_reading_commands(_run_reading_commands(str(path)))
        with eventvault.connect(str(path), read_only=True) as store:
            assert store.head_position() == 4
        assert _files(mount) == before


def test_a_store_cannot_be_created_on_a_read_only_mount() -> None:
    with tmpfs("1m") as mount:
        remount_read_only(mount)
        result = Cli()("append", "account-1", "AccountOpened", "--url", str(mount / "new.db"))
        assert result.exit_code == 8
        assert "read-only file system" in result.stderr


def test_a_missing_file_opened_read_only_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        eventvault.connect(str(path), read_only=True)
    with pytest.raises(StoreNotFoundError):
        eventvault.connect(f"sqlite:///{path}", read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_file_is_reported_by_reading_commands_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    cli = Cli()
    for command in (("stats",), ("export", str(tmp_path / "out.jsonl")), ("log",)):
        result = cli(*command, "--url", str(path))
        assert result.exit_code == 7, result.output
        assert "empty file (0 bytes), not an eventvault store" in result.stderr
        assert "another application" not in result.stderr
    with pytest.raises(NotAnEventVaultDatabaseError, match="empty file"):
        eventvault.connect(str(path), read_only=True)
    assert [p.name for p in tmp_path.iterdir()] == ["empty.db"]
    assert path.stat().st_size == 0


def test_a_database_without_a_store_is_refused_read_only_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "blank.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NotAnEventVaultDatabaseError, match="holds no eventvault store"):
        eventvault.connect(str(path), read_only=True)
    assert path.read_bytes() == before


def test_reading_a_store_read_only_does_not_change_its_file(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    seed(str(path), SAMPLE)
    before = path.read_bytes()
    with eventvault.connect(str(path), read_only=True) as store:
        assert len(list(store.read_all())) == 4
        assert store.read_only
    assert path.read_bytes() == before


def test_a_read_only_store_sees_what_another_connection_appends(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    seed(path, SAMPLE)
    with (
        eventvault.connect(path, read_only=True) as reader,
        eventvault.connect(path) as writer,
        reader.subscribe_to_all(after=4) as subscription,
    ):
        writer.append_to_stream(
            "order-8", [NewEvent("OrderPlaced", {})], expected_version=StreamState.ANY
        )
        assert reader.head_position() == 5
        assert [e.stream_name for e in subscription.next_batch(timeout=5)] == ["order-8"]


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:", "file"])
def test_a_read_only_store_refuses_every_write_and_changes_nothing(
    url: str, tmp_path: Path
) -> None:
    if url == "file":
        url = str(tmp_path / "events.db")
        seed(url, SAMPLE)
    with eventvault.connect(url, read_only=True) as store:
        head = store.head_position()
        attempts: list[Callable[[], object]] = [
            lambda: store.append_to_stream(
                "s-1", [NewEvent("A", {})], expected_version=StreamState.ANY
            ),
            lambda: store.append_to_streams(
                [StreamAppend("s-1", [NewEvent("A", {})], StreamState.ANY)]
            ),
            lambda: store.import_events([]),
        ]
        for attempt in attempts:
            with pytest.raises(ReadOnlyStoreError) as caught:
                attempt()
            assert caught.value.location == store.url
            assert "opened with read_only=True" in str(caught.value)
        assert store.head_position() == head


def test_connect_async_opens_read_only_stores(tmp_path: Path) -> None:
    url = str(tmp_path / "events.db")
    seed(url, SAMPLE)

    async def main() -> tuple[bool, int, str]:
        async with eventvault.connect_async(url, read_only=True) as store:
            try:
                await store.append_to_stream(
                    "s-1", [NewEvent("A", {})], expected_version=StreamState.ANY
                )
            except ReadOnlyStoreError as exc:
                refused = str(exc)
            return store.read_only, await store.head_position(), refused

    read_only, head, refused = asyncio.run(main())
    assert (read_only, head) == (True, 4)
    assert "is read-only" in refused


PROBE = Component(
    "probe",
    {
        "sqlite": (Migration(1, ("CREATE TABLE {schema}.probe (n INTEGER)",)),),
        "postgresql": (Migration(1, ("CREATE TABLE {schema}.probe (n integer)",)),),
    },
)


def test_a_read_only_store_migrates_no_component_and_runs_no_transaction(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    seed(path, SAMPLE)
    with eventvault.connect(path, read_only=True) as reader:
        with pytest.raises(MigrationRequiredError) as caught:
            reader.use(PROBE)
        assert (caught.value.component, caught.value.found, caught.value.needed) == ("probe", 0, 1)
        with pytest.raises(ReadOnlyStoreError, match="opened with read_only=True"):
            reader.run_transaction(lambda tx: tx.execute("CREATE TABLE t (x)"))
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "probe" not in tables and "t" not in tables
    with eventvault.connect(path) as writer:
        writer.use(PROBE)
        writer.run_transaction(lambda tx: tx.execute("INSERT INTO {schema}.probe VALUES (7)"))
    with eventvault.connect(path, read_only=True) as reader:
        reader.use(PROBE)  # up to date: nothing to do, nothing refused
        assert reader.query("SELECT n FROM {schema}.probe") == [(7,)]
