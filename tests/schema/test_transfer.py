"""Export, import and copy carry the registry and its history, on every engine."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import msgspec
import pytest

import eventvault
from eventvault import EventStore, NewEvent, StreamState
from eventvault.errors import ImportFileError, IncompleteExportError, NotEmptyError
from eventvault.export import copy_events, load_export, read_export, write_export
from eventvault.schema import SchemaRegistry

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"owner": {"type": "string"}}}
WIDER: dict[str, Any] = {**SCHEMA, "description": "an account was opened"}


def fill(store: EventStore) -> list[tuple[int, str, str, str | None, int | None, object]]:
    registry = SchemaRegistry(store, actor="ada@bank")
    registry.register("AccountOpened", SCHEMA)
    registry.set_mode("AccountOpened", "FULL")
    registry.register("AccountOpened", WIDER, actor="bo@bank")
    registry.set_unregistered("refuse")
    registry.enforce()
    store.append_to_stream(
        "account-1", [NewEvent("AccountOpened", {"owner": "Ada"})], expected_version=StreamState.ANY
    )
    return history(store)


def history(store: EventStore) -> list[tuple[int, str, str, str | None, int | None, object]]:
    return [
        (c.change_id, c.changed_at.isoformat(), c.changed_by, c.event_type, c.version, c.value)
        for c in SchemaRegistry(store).history()
    ]


def exported(store: EventStore) -> bytes:
    out = io.BytesIO()
    write_export(store, out)
    return out.getvalue()


def test_an_export_holds_the_registrys_history_and_an_import_reproduces_it(
    store: EventStore, tmp_path: Path
) -> None:
    before = fill(store)
    data = exported(store)
    reader = read_export(io.BytesIO(data))
    assert [e.stream_name for e in reader] == ["account-1"]
    assert len(reader.registry_changes) == 4
    with eventvault.connect(str(tmp_path / "restored.db")) as target:
        assert load_export(target, io.BytesIO(data)) == 1
        assert history(target) == before
        restored = SchemaRegistry(target)
        assert restored.mode("AccountOpened").value == "FULL"
        assert restored.unregistered() == "refuse"
        assert [v.registered_by for v in restored.versions("AccountOpened")] == [
            "ada@bank",
            "bo@bank",
        ]


def test_a_copy_reproduces_the_registry(store: EventStore, tmp_path: Path) -> None:
    before = fill(store)
    with eventvault.connect(str(tmp_path / "copy.db")) as target:
        assert copy_events(store, target) == 1
        assert history(target) == before


def test_a_store_without_a_registry_exports_none_and_is_not_given_one(tmp_path: Path) -> None:
    path = str(tmp_path / "plain.db")
    with eventvault.connect(path) as store:
        store.append_to_stream("a-1", [NewEvent("T", {})], expected_version=StreamState.ANY)
        data = exported(store)
        assert "schemas" not in store.component_versions()
    assert b'"record":"registry_change"' not in data
    assert msgspec.json.decode(data.splitlines()[-1])["registry_changes"] == 0


def test_an_import_into_a_store_whose_registry_is_not_empty_writes_nothing(
    store: EventStore, tmp_path: Path
) -> None:
    fill(store)
    data = exported(store)
    with eventvault.connect(str(tmp_path / "target.db")) as target:
        SchemaRegistry(target).register("Other", SCHEMA)
        with pytest.raises(NotEmptyError, match="schema registry holds 1 changes"):
            load_export(target, io.BytesIO(data))
        assert target.head_position() == 0
        assert len(SchemaRegistry(target).history()) == 1


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def test_a_registry_line_removed_fails_the_completeness_proof(store: EventStore) -> None:
    fill(store)
    lines = _lines(exported(store))
    with pytest.raises(IncompleteExportError, match="registry change 3 where change 2 belongs"):
        list(read_export(io.BytesIO(b"".join([lines[0], lines[1], *lines[3:]]))))


def test_a_registry_line_changed_fails_the_digest(store: EventStore) -> None:
    fill(store)
    lines = _lines(exported(store))
    changed = lines[2].replace(b'"FULL"', b'"NONE"')
    assert changed != lines[2]
    with pytest.raises(IncompleteExportError, match="SHA-256"):
        list(read_export(io.BytesIO(b"".join([lines[0], lines[1], changed, *lines[3:]]))))


def test_a_registry_line_after_the_events_is_refused(store: EventStore) -> None:
    fill(store)
    lines = _lines(exported(store))
    reordered = [lines[0], lines[1], lines[2], lines[3], lines[5], lines[4], *lines[6:]]
    with pytest.raises(ImportFileError, match="after the events"):
        list(read_export(io.BytesIO(b"".join(reordered))))


def test_an_edited_history_is_refused_on_import_and_nothing_is_written(
    store: EventStore, tmp_path: Path
) -> None:
    """A history whose digest was recomputed after an edit still reads whole; the replay
    refuses what the registry could never have made."""
    import hashlib

    fill(store)
    lines = _lines(exported(store))
    edited = lines[1].replace(b'"version":1', b'"version":7')
    body = [lines[0], edited, *lines[2:-1]]
    end = msgspec.json.decode(lines[-1])
    end["sha256"] = hashlib.sha256(b"".join(body)).hexdigest()
    data = b"".join([*body, msgspec.json.encode(end) + b"\n"])
    with eventvault.connect(str(tmp_path / "target.db")) as target:
        with pytest.raises(
            ImportFileError, match="version 2 of 'AccountOpened' does not follow version 7"
        ):
            load_export(target, io.BytesIO(data))
        assert target.head_position() == 0
        assert SchemaRegistry(target).history() == []


def test_a_file_of_format_2_is_still_imported_leaving_the_registry_empty(
    tmp_path: Path,
) -> None:
    """Format 2 (eventvault 0.2): the same file without registry lines, and a closing record
    without `registry_changes`."""
    import hashlib

    with eventvault.connect("memory://") as source:
        source.append_to_stream("a-1", [NewEvent("T", {"n": 1})], expected_version=StreamState.ANY)
        lines = _lines(exported(source))
    header = lines[0].replace(b'"format_version":3', b'"format_version":2')
    end = msgspec.json.decode(lines[-1])
    del end["registry_changes"]
    end["sha256"] = hashlib.sha256(header + b"".join(lines[1:-1])).hexdigest()
    data = b"".join([header, *lines[1:-1], msgspec.json.encode(end) + b"\n"])
    with eventvault.connect(str(tmp_path / "restored.db")) as target:
        assert load_export(target, io.BytesIO(data)) == 1
        assert "schemas" not in target.component_versions()
    change = (
        b'{"record":"registry_change","change_id":1,"changed_at":"2026-05-01T09:29:58Z",'
        b'"changed_by":"ada","action":"unregistered","value":"refuse"}\n'
    )
    with_a_change = b"".join([header, change, *lines[1:]])
    with pytest.raises(ImportFileError, match="a registry change in a file without registry"):
        list(read_export(io.BytesIO(with_a_change)))
