"""`eventvault schema ...`: tables that read well, exit codes a CI pipeline can use."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import eventvault
from eventvault.schema import SchemaRegistry

from .cli_harness import Cli, head

V1: dict[str, Any] = {
    "type": "object",
    "properties": {"owner": {"type": "string"}},
    "required": ["owner"],
    "additionalProperties": False,
}
V2: dict[str, Any] = {**V1, "properties": {"owner": {"type": "string"}, "note": {"type": "string"}}}
BROKEN: dict[str, Any] = {
    **V1,
    "properties": {"owner": {"type": "integer"}, "branch": {"type": "string"}},
    "required": ["owner", "branch"],
}


def schema_file(tmp_path: Path, name: str, schema: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(schema), encoding="utf-8")
    return str(path)


@pytest.fixture
def registered(cli: Cli, db: str, tmp_path: Path) -> str:
    result = cli(
        "schema", "register", "AccountOpened", schema_file(tmp_path, "v1.json", V1), "--url", db
    )
    assert result.exit_code == 0, result.output
    assert "registered AccountOpened version 1" in result.stdout
    return db


def test_register_twice_writes_nothing_the_second_time(
    cli: Cli, registered: str, tmp_path: Path
) -> None:
    result = cli(
        "schema",
        "register",
        "AccountOpened",
        schema_file(tmp_path, "v1.json", V1),
        "--url",
        registered,
    )
    assert result.exit_code == 0
    assert "holds this schema already; nothing written" in result.stdout


def test_register_reads_a_schema_from_stdin(cli: Cli, registered: str) -> None:
    result = cli(
        "schema", "register", "AccountOpened", "-", "--url", registered, input=json.dumps(V2)
    )
    assert result.exit_code == 0, result.output
    assert "version 2" in result.stdout


def test_check_exits_0_for_a_compatible_schema_and_writes_nothing(
    cli: Cli, registered: str, tmp_path: Path
) -> None:
    result = cli(
        "schema",
        "check",
        "AccountOpened",
        schema_file(tmp_path, "v2.json", V2),
        "--url",
        registered,
    )
    assert result.exit_code == 0, result.output
    assert "compatible: it would be AccountOpened version 2 (BACKWARD)" in result.stdout
    with eventvault.connect(registered) as store:
        assert len(SchemaRegistry(store).history()) == 1


def test_check_exits_7_and_prints_every_breaking_change(
    cli: Cli, registered: str, tmp_path: Path
) -> None:
    result = cli(
        "schema",
        "check",
        "AccountOpened",
        schema_file(tmp_path, "b.json", BROKEN),
        "--url",
        registered,
    )
    assert result.exit_code == 7, result.output
    assert "breaks BACKWARD: 2 change(s)" in result.stdout
    assert "#/properties/owner" in result.stdout and "type_changed" in result.stdout
    assert "#/properties/branch" in result.stdout
    assert "required_property_added_to_unopen_content_model" in result.stdout


def test_register_of_an_incompatible_schema_exits_7_listing_the_changes(
    cli: Cli, registered: str, tmp_path: Path
) -> None:
    result = cli(
        "schema",
        "register",
        "AccountOpened",
        schema_file(tmp_path, "b.json", BROKEN),
        "--url",
        registered,
    )
    assert result.exit_code == 7
    assert (
        "error: version 2 of 'AccountOpened' breaks its compatibility mode BACKWARD"
        in result.stderr
    )
    assert "#/properties/owner" in result.stderr
    assert "hint:" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('"a string"', "a schema is a JSON object, not str"),
        ('{"type": "string"}', 'must say "type": "object"'),
        ('{"type": "object", "$ref": "https://example.com/x.json"}', "points outside the document"),
    ],
    ids=["malformed", "not-object", "not-object-schema", "remote-ref"],
)
def test_a_bad_schema_file_exits_2_and_changes_nothing(
    cli: Cli, registered: str, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    result = cli("schema", "register", "AccountOpened", str(path), "--url", registered)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    with eventvault.connect(registered) as store:
        assert len(SchemaRegistry(store).history()) == 1


def test_list_show_and_history_read_well(cli: Cli, registered: str) -> None:
    listing = cli("schema", "list", "--url", registered)
    assert listing.exit_code == 0
    row = next(line for line in listing.stdout.splitlines() if "AccountOpened" in line)
    assert row.split()[:4] == ["AccountOpened", "1", "1", "BACKWARD"]
    assert "types without a schema: allow" in listing.stdout
    shown = cli("schema", "show", "AccountOpened", "--url", registered)
    assert "version" in shown.stdout and '"owner"' in shown.stdout
    as_json = cli("schema", "show", "AccountOpened", "1", "--json", "--url", registered)
    assert json.loads(as_json.stdout)["properties"] == V1["properties"]
    history = cli("schema", "history", "--url", registered)
    assert "registered AccountOpened version 1" in history.stdout
    lines = cli("schema", "list", "--json", "--url", registered).stdout.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"event_type": "AccountOpened", "versions": [1], "mode": "BACKWARD"}
    ]


def test_reading_commands_do_not_create_the_registry(cli: Cli, db: str) -> None:
    with eventvault.connect(db):
        pass
    assert "no schema is registered" in cli("schema", "list", "--url", db).stdout
    with eventvault.connect(db) as store:
        assert "schemas" not in store.component_versions()


def test_show_of_an_unknown_version_exits_2(cli: Cli, registered: str) -> None:
    result = cli("schema", "show", "AccountOpened", "9", "--url", registered)
    assert result.exit_code == 2
    assert "version 9 is not registered (registered: 1)" in result.stderr


def test_diff_shows_both_directions(cli: Cli, registered: str, tmp_path: Path) -> None:
    cli(
        "schema",
        "register",
        "AccountOpened",
        schema_file(tmp_path, "v2.json", V2),
        "--url",
        registered,
    )
    result = cli("schema", "diff", "AccountOpened", "1", "2", "--url", registered)
    assert result.exit_code == 0, result.output
    backward, forward = result.stdout.split("version 1 reading data of version 2")
    assert "#/properties/note" in backward and "closed content model" in backward
    assert "yes" in backward
    assert "#/properties/note" in forward and "no" in forward


def test_mode_shows_and_sets_and_refuses_an_unknown_mode(cli: Cli, registered: str) -> None:
    assert cli("schema", "mode", "AccountOpened", "--url", registered).stdout.strip() == "BACKWARD"
    result = cli("schema", "mode", "AccountOpened", "full", "--url", registered)
    assert "AccountOpened is now FULL" in result.stdout
    assert cli("schema", "mode", "AccountOpened", "--url", registered).stdout.strip() == "FULL"
    bad = cli("schema", "mode", "AccountOpened", "SIDEWAYS", "--url", registered)
    assert bad.exit_code == 2
    assert "the compatibility mode is one of BACKWARD" in bad.stderr


def test_append_through_the_cli_is_held_to_the_registry(cli: Cli, registered: str) -> None:
    refused = cli("append", "account-1", "AccountOpened", '{"owner": 5}', "--url", registered)
    assert refused.exit_code == 2
    assert "/owner: 5 is not of type" in refused.stderr
    assert head(registered) == 0
    ok = cli("append", "account-1", "AccountOpened", '{"owner": "Ada"}', "--url", registered)
    assert ok.exit_code == 0, ok.output
    cli("schema", "unregistered", "refuse", "--url", registered)
    other = cli("append", "notes-1", "NoteTaken", "{}", "--url", registered)
    assert other.exit_code == 2
    assert "refuses unregistered types" in other.stderr


def test_sync_registers_the_classes_of_a_module(
    cli: Cli, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "bankapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "events.py").write_text(
        textwrap.dedent(
            """
            import msgspec
            from eventvault.aggregates import EventRegistry
            from eventvault.schema import Upcasters

            registry = EventRegistry()
            upcasters = Upcasters()

            @registry.event("AccountOpened", version=1)
            class AccountOpened(msgspec.Struct, frozen=True):
                owner: str

            @registry.event("MoneyDeposited", version=1)
            class MoneyDeposited(msgspec.Struct, frozen=True):
                amount: int
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    result = cli("schema", "sync", "--module", "bankapp.events", "--url", db)
    assert result.exit_code == 0, result.output
    assert "2 registered, 0 unchanged, 0 upcaster(s) checked" in result.stdout
    again = cli("schema", "sync", "--module", "bankapp.events:registry", "--url", db)
    assert "0 registered, 2 unchanged" in again.stdout
    missing = cli("schema", "sync", "--module", "bankapp.nothing", "--url", db)
    assert missing.exit_code == 2
    assert "cannot import 'bankapp.nothing'" in missing.stderr
    wrong = cli("schema", "sync", "--module", "bankapp.events:upcasters", "--url", db)
    assert wrong.exit_code == 2
    assert "is not an EventRegistry" in wrong.stderr


def test_export_and_import_carry_the_registry(cli: Cli, registered: str, tmp_path: Path) -> None:
    exported = tmp_path / "backup.jsonl"
    result = cli("export", str(exported), "--url", registered)
    assert result.exit_code == 0, result.output
    assert "exported 0 events and 1 schema registry changes" in result.stderr
    restored = str(tmp_path / "restored.db")
    assert cli("import", str(exported), "--url", restored).exit_code == 0
    listing = cli("schema", "history", "--url", restored)
    assert "registered AccountOpened version 1" in listing.stdout


def test_check_against_a_store_without_a_registry_creates_nothing(
    cli: Cli, db: str, tmp_path: Path
) -> None:
    with eventvault.connect(db):
        pass
    result = cli(
        "schema", "check", "AccountOpened", schema_file(tmp_path, "v1.json", V1), "--url", db
    )
    assert result.exit_code == 0, result.output
    assert "it would be AccountOpened version 1" in result.stdout
    with eventvault.connect(db) as store:
        assert "schemas" not in store.component_versions()
