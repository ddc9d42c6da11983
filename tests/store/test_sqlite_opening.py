"""Opening SQLite stores where things go wrong: missing folders, folders named as files, full
disks, a creation that fails half-way. Each error names its cause and leaves nothing behind."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import eventvault
from eventvault import NewEvent, StreamState
from eventvault.errors import NotAnEventVaultDatabaseError, StorageError, StorageFullError
from eventvault.store.sqlite import SQLiteEventStore
from tests.cli.cli_harness import Cli

from .filesystems import tmpfs

PADDED = {"pad": "x" * 2000}


@pytest.fixture
def page_limit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Give every new connection `PRAGMA max_page_count` = the list's first item (when set):
    SQLite then answers SQLITE_FULL, as on a full disk, past that many pages."""
    limit: list[int] = []
    connect = SQLiteEventStore._new_connection

    def limited(self: SQLiteEventStore) -> sqlite3.Connection:
        conn = connect(self)
        if limit:
            conn.execute(f"PRAGMA max_page_count = {limit[0]}")
        return conn

    monkeypatch.setattr(SQLiteEventStore, "_new_connection", limited)
    return limit


def test_a_store_whose_creation_fails_removes_the_file_it_created(
    tmp_path: Path, page_limit: list[int]
) -> None:
    page_limit.append(1)
    path = tmp_path / "new.db"
    with pytest.raises(StorageFullError) as caught:
        eventvault.connect(str(path))
    assert "PRAGMA max_page_count" in str(caught.value)
    assert "nothing of the write that failed was stored" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_was_there_before_is_never_removed(
    tmp_path: Path, page_limit: list[int]
) -> None:
    page_limit.append(1)
    path = tmp_path / "touched.db"
    path.touch()
    with pytest.raises(StorageFullError):
        eventvault.connect(str(path))
    assert path.exists()
    assert path.stat().st_size == 0


def test_a_file_put_in_place_of_the_created_one_is_not_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new.db"
    other = tmp_path / "other.db"
    other.touch()

    def swap_and_fail(self: SQLiteEventStore, conn: sqlite3.Connection) -> None:
        os.replace(other, path)  # another process put its own (empty) file there
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SQLiteEventStore, "_migrate_core", swap_and_fail)
    with pytest.raises(StorageError, match="disk I/O error"):
        eventvault.connect(str(path))
    assert path.exists()


def test_an_import_that_fills_the_database_names_it_full_not_a_failed_rollback(
    tmp_path: Path, page_limit: list[int]
) -> None:
    with eventvault.connect("memory://") as source:
        for n in range(200):
            source.append_to_stream(
                f"s-{n % 7}", [NewEvent("E", PADDED)], expected_version=StreamState.ANY
            )
        page_limit.append(40)
        with eventvault.connect(str(tmp_path / "target.db")) as target:
            with pytest.raises(StorageFullError) as caught:
                target.import_events(source.export_events())
            assert "rollback" not in str(caught.value)
            assert target.head_position() == 0
            assert target.integrity_check() == ["ok"]  # type: ignore[attr-defined]


def test_an_append_that_fills_the_database_names_it_full(
    tmp_path: Path, page_limit: list[int]
) -> None:
    page_limit.append(30)
    with eventvault.connect(str(tmp_path / "events.db")) as store:
        store.append_to_stream("s-1", [NewEvent("E", {})], expected_version=StreamState.NO_STREAM)
        with pytest.raises(StorageFullError, match="nothing of the write that failed"):
            store.append_to_stream(
                "s-1", [NewEvent("E", PADDED) for _ in range(100)], expected_version=0
            )
        assert store.get_stream_version("s-1") == 0


def _fill(folder: Path, leave: int) -> None:
    """Fill the disk of `folder` up to `leave` bytes."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave))


def test_on_a_full_disk_an_import_names_the_full_disk_and_an_append_leaves_no_file() -> None:
    with tmpfs("512k") as disk:
        with eventvault.connect("memory://") as source:
            for n in range(400):
                source.append_to_stream(
                    f"s-{n % 7}", [NewEvent("E", PADDED)], expected_version=StreamState.ANY
                )
            with eventvault.connect(str(disk / "target.db")) as target:
                with pytest.raises(StorageFullError) as caught:
                    target.import_events(source.export_events())
                message = str(caught.value)
                assert f"the disk that holds {str(disk)!r} is full" in message
                assert "rollback" not in message
                assert target.head_position() == 0
        (disk / "target.db").unlink()
        _fill(disk, leave=0)
        result = Cli()("append", "account-1", "AccountOpened", "--url", str(disk / "new.db"))
        assert result.exit_code == 8, result.output
        assert "is full" in result.stderr
        assert not (disk / "new.db").exists()
        # A reading command on the same path creates nothing either.
        assert Cli()("stats", "--url", str(disk / "new.db")).exit_code == 4
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_a_store_in_a_missing_folder_names_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = Cli()("append", "account-1", "AccountOpened", "--url", "nodir/sub/x.db")
    assert result.exit_code == 8
    assert "the folder 'nodir/sub' does not exist ('nodir' is missing)" in result.stderr
    assert "mkdir -p nodir/sub" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_store_below_a_file_says_the_file_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "afile").touch()
    result = Cli()("append", "a-1", "Happened", "--url", str(tmp_path / "afile" / "x.db"))
    assert result.exit_code == 8
    assert f"{str(tmp_path / 'afile')!r} is a file, not a folder" in result.stderr


@pytest.mark.parametrize("command", [("stats",), ("append", "a-1", "Happened")])
def test_a_folder_given_as_the_store_is_called_a_folder(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    result = Cli()(*command, "--url", str(folder))
    assert result.exit_code == 7
    assert "it is a folder" in result.stderr
    assert "another application" not in result.stderr
    assert list(folder.iterdir()) == []
    with pytest.raises(NotAnEventVaultDatabaseError, match="it is a folder"):
        eventvault.connect(f"sqlite:///{folder}")
