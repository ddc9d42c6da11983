"""Damaged and foreign files where a SQLite store is expected: a store cut short, garbage or zeros
over a page of its events, its header overwritten, and an export file, a gzip file or random bytes
given as a store. Opening and reading them says what is wrong and names the file; nothing reads
damaged events as if they were sound; the file is left as it was and nothing is created beside it.

A text file and another application's database are tested in test_sqlite.py; a 0-byte file with
the opening of stores.
"""

from __future__ import annotations

import gzip
import io
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest

import eventvault
from eventvault import NewEvent, StreamAppend, StreamState
from eventvault.errors import StorageError
from eventvault.export import write_export
from eventvault.serialization import verify_chain
from eventvault.store.sqlite import SQLiteEventStore
from tests.cli.cli_harness import Cli

MARKER: Final = b"marker-150-2"
"""Bytes of one event's data in the middle of the log: the page that holds them is damaged."""
CAUSE: Final = re.compile("malformed|not a database")
"""What SQLite says of a damaged or foreign file, and eventvault passes on."""


def _sound_store(path: Path) -> bytes:
    """The bytes of a closed store of 1,500 events in 300 streams."""
    with eventvault.connect(str(path)) as store:
        for part in range(3):
            store.append_to_streams(
                [
                    StreamAppend(
                        f"account-{part * 100 + n}",
                        [
                            NewEvent("Deposited", {"note": f"marker-{part * 100 + n}-{i}"})
                            for i in range(5)
                        ],
                        StreamState.NO_STREAM,
                    )
                    for n in range(100)
                ]
            )
    data = path.read_bytes()
    path.unlink()
    return data


def _page(data: bytes) -> tuple[int, int]:
    """The start and the size of the page that holds `MARKER`."""
    size = int.from_bytes(data[16:18], "big")
    return data.index(MARKER) // size * size, size


def _noise(count: int) -> bytes:
    return random.Random(count).randbytes(count)


def _export(data: bytes, folder: Path) -> bytes:
    path = folder / "exported.db"
    path.write_bytes(data)
    out = io.BytesIO()
    with eventvault.connect(str(path)) as store:
        write_export(store, out)
    path.unlink()
    return out.getvalue()


def _cut_at_the_page(data: bytes, folder: Path) -> bytes:
    start, _ = _page(data)
    return data[:start]


def _page_zero_filled(data: bytes, folder: Path) -> bytes:
    start, size = _page(data)
    return data[:start] + bytes(size) + data[start + size :]


def _page_of_garbage(data: bytes, folder: Path) -> bytes:
    start, size = _page(data)
    return data[:start] + _noise(size) + data[start + size :]


def _garbage_in_the_middle_of_the_page(data: bytes, folder: Path) -> bytes:
    at = data.index(MARKER)
    return data[: at - 200] + _noise(400) + data[at + 200 :]


def _header_overwritten(data: bytes, folder: Path) -> bytes:
    return _noise(100) + data[100:]


def _an_export_file(data: bytes, folder: Path) -> bytes:
    return _export(data, folder)


def _a_gzip_file(data: bytes, folder: Path) -> bytes:
    return gzip.compress(_export(data, folder))


def _random_bytes(data: bytes, folder: Path) -> bytes:
    return _noise(len(data))


DAMAGES: Final[dict[str, Callable[[bytes, Path], bytes]]] = {
    "cut-short": _cut_at_the_page,
    "zero-filled-page": _page_zero_filled,
    "page-of-garbage": _page_of_garbage,
    "garbage-mid-page": _garbage_in_the_middle_of_the_page,
    "header-overwritten": _header_overwritten,
    "export-file": _an_export_file,
    "gzip-file": _a_gzip_file,
    "random-bytes": _random_bytes,
}


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a sound store, to damage."""
    return _sound_store(tmp_path_factory.mktemp("sound") / "sound.db")


@pytest.fixture(params=sorted(DAMAGES))
def damaged(request: pytest.FixtureRequest, sound: bytes, tmp_path: Path) -> tuple[Path, bytes]:
    """A file named as a store, holding a damaged store or something else, in a folder of its
    own; and its bytes."""
    folder = tmp_path / "stores"
    folder.mkdir()
    data = DAMAGES[request.param](sound, tmp_path)
    path = folder / "events.db"
    path.write_bytes(data)
    return path, data


def _read_everything(path: Path) -> None:
    with eventvault.connect(str(path)) as store:
        verify_chain(store.export_events())
        list(store.read_all())
        list(store.read_stream("account-150"))


def _assert_left_alone(path: Path, data: bytes) -> None:
    """The file holds what it held, and nothing was created beside it."""
    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_the_sound_store_reads_whole(sound: bytes, tmp_path: Path) -> None:
    # What every damage below is measured against: undamaged, the same bytes read whole.
    path = tmp_path / "events.db"
    path.write_bytes(sound)
    with eventvault.connect(str(path)) as store:
        assert verify_chain(store.export_events()) == 1500
        assert len(list(store.read_all())) == 1500
        assert isinstance(store, SQLiteEventStore)
        assert store.integrity_check() == ["ok"]


def test_reading_a_damaged_or_foreign_file_says_what_is_wrong_and_changes_nothing(
    damaged: tuple[Path, bytes],
) -> None:
    path, data = damaged
    with pytest.raises(StorageError) as caught:
        _read_everything(path)
    assert str(path) in str(caught.value)
    assert CAUSE.search(str(caught.value)), caught.value
    _assert_left_alone(path, data)


@pytest.mark.parametrize("command", ["log", "export", "stats"])
def test_reading_commands_on_a_damaged_or_foreign_file_say_what_is_wrong_and_change_nothing(
    damaged: tuple[Path, bytes], command: str, tmp_path: Path
) -> None:
    path, data = damaged
    out = tmp_path / "out.jsonl"
    arguments = {"log": ["log"], "export": ["export", str(out)], "stats": ["stats"]}[command]
    result = Cli()(*arguments, "--url", str(path))
    # `stats` counts through indexes that may lie outside the damage: it may answer; the
    # commands that read every event may not.
    if command != "stats" or result.exit_code != 0:
        assert result.exit_code == 7, result.output
        assert result.stderr.startswith(f"error: {str(path)!r}")
        assert CAUSE.search(result.stderr), result.stderr
        assert "Traceback" not in result.output
    if "malformed" in result.stderr:
        assert "another application" not in result.stderr
        assert "hint: the file is damaged" in result.stderr
    assert not out.exists()
    _assert_left_alone(path, data)


def test_import_into_a_damaged_or_foreign_file_is_refused_and_changes_nothing(
    damaged: tuple[Path, bytes], sound: bytes, tmp_path: Path
) -> None:
    path, data = damaged
    backup = tmp_path / "backup.jsonl"
    backup.write_bytes(_export(sound, tmp_path))
    result = Cli()("import", str(backup), "--url", str(path))
    # A damaged store whose head can still be read holds events: refused as not empty.
    if result.exit_code == 6:
        assert "is not empty" in result.stderr
    else:
        assert result.exit_code == 7, result.output
        assert CAUSE.search(result.stderr), result.stderr
    _assert_left_alone(path, data)


def test_copy_from_a_damaged_or_foreign_file_is_refused_and_creates_no_target(
    damaged: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, data = damaged
    target = tmp_path / "copy.db"
    result = Cli()("copy", str(path), str(target))
    assert result.exit_code == 7, result.output
    assert CAUSE.search(result.stderr), result.stderr
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy.db")] == []
    _assert_left_alone(path, data)
