"""bench_core's raw baseline finds eventvault's events table in either layout of the package.

Storage schema 1's SQL moved from `store/sqlite/schema/` to `store/sqlite/migrations/0001/` when
SQLite stores gained migrations; `compare_versions.py` runs today's script against an
eventvault from before, so the script reads whichever the imported package has.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_core
from _common import BenchmarkSetupError

CURRENT = (
    "migrations/0001",
    ("01_events.sql", "02_events_stream_uq.sql", "03_events_event_id_uq.sql"),
)


def _package(root: Path, folder: str, names: tuple[str, ...]) -> None:
    (root / folder).mkdir(parents=True)
    for name in names:
        (root / folder / name).write_text(f"-- {folder}/{name}", encoding="utf-8")


def test_the_installed_package_has_the_table_and_its_two_indexes() -> None:
    statements = bench_core._events_schema()
    assert len(statements) == 3
    assert "CREATE TABLE" in statements[0]
    assert all("CREATE UNIQUE INDEX" in statement for statement in statements[1:])


def test_a_package_from_before_migrations_is_read_from_its_schema_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(tmp_path, "schema", ("events.sql", "events_stream_uq.sql", "events_event_id_uq.sql"))
    monkeypatch.setattr(resources, "files", lambda package: tmp_path)
    assert bench_core._events_schema() == [
        "-- schema/events.sql",
        "-- schema/events_stream_uq.sql",
        "-- schema/events_event_id_uq.sql",
    ]


def test_the_migrations_folder_wins_when_both_are_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(tmp_path, "schema", ("events.sql", "events_stream_uq.sql", "events_event_id_uq.sql"))
    _package(tmp_path, *CURRENT)
    monkeypatch.setattr(resources, "files", lambda package: tmp_path)
    assert bench_core._events_schema()[0] == "-- migrations/0001/01_events.sql"


def test_a_package_with_neither_layout_is_refused_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(tmp_path, "schema", ("events.sql",))
    monkeypatch.setattr(resources, "files", lambda package: tmp_path)
    with pytest.raises(BenchmarkSetupError, match="looked in migrations/0001, schema"):
        bench_core._events_schema()
