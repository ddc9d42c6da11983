"""`eventvault export`, `import` and `copy`: moving whole logs with every hash intact."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

import eventvault
from eventvault import RawEvent
from eventvault.serialization import MAX_NESTING_DEPTH, raw_event_hash

from .cli_harness import SAMPLE, Cli, head, seed


def export_text(cli: Cli, url: str) -> str:
    result = cli("export", "-", "--url", url)
    assert result.exit_code == 0, result.output
    return result.stdout


def raw_events(url: str) -> list[RawEvent]:
    with eventvault.connect(url) as store:
        return list(store.export_events())


@pytest.fixture
def exported(cli: Cli, seeded: str, tmp_path: Path) -> Path:
    """An export file of the `SAMPLE` store."""
    path = tmp_path / "export.jsonl"
    result = cli("export", str(path), "--url", seeded)
    assert result.exit_code == 0, result.output
    return path


def rewrite_line(path: Path, number: int, old: str, new: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    assert old in lines[number - 1]
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    path.write_text("".join(lines))


# -- export ----------------------------------------------------------------------------------


def test_export_writes_one_raw_event_per_line_with_the_stored_bytes(
    exported: Path, seeded: str
) -> None:
    decoder = msgspec.json.Decoder(RawEvent)
    lines = exported.read_bytes().splitlines()
    assert [decoder.decode(line) for line in lines] == raw_events(seeded)
    assert b'"data":{"owner":"Ada"}' in lines[0]


def test_export_reports_the_count_on_stderr(cli: Cli, seeded: str, tmp_path: Path) -> None:
    result = cli("export", str(tmp_path / "out.jsonl"), "--url", seeded)
    assert f"exported {len(SAMPLE)} events to" in result.stderr
    assert result.stdout == ""


def test_export_to_stdout_writes_the_same_lines_as_to_a_file(
    cli: Cli, exported: Path, seeded: str
) -> None:
    assert export_text(cli, seeded) == exported.read_text()


def test_export_after_a_position_writes_only_later_events(cli: Cli, seeded: str) -> None:
    result = cli("export", "-", "--after", "3", "--url", seeded)
    [line] = result.stdout.splitlines()
    assert msgspec.json.decode(line, type=RawEvent).global_position == 4


def test_export_refuses_to_replace_a_file_without_force(
    cli: Cli, exported: Path, seeded: str
) -> None:
    before = exported.read_bytes()
    result = cli("export", str(exported), "--after", "3", "--url", seeded)
    assert result.exit_code == 2
    assert "exists; pass --force" in result.stderr
    assert exported.read_bytes() == before


def test_export_with_force_replaces_the_file(cli: Cli, exported: Path, seeded: str) -> None:
    result = cli("export", str(exported), "--after", "3", "--force", "--url", seeded)
    assert result.exit_code == 0, result.output
    assert len(exported.read_text().splitlines()) == 1


def test_export_leaves_no_partial_file_behind(cli: Cli, exported: Path) -> None:
    assert [p.name for p in exported.parent.iterdir() if p.name.endswith(".partial")] == []


def test_export_of_a_missing_store_exits_4_and_writes_no_file(
    cli: Cli, db: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    assert cli("export", str(out), "--url", db).exit_code == 4
    assert not out.exists()


def test_export_shows_a_progress_bar_on_a_terminal(cli: Cli, seeded: str, tmp_path: Path) -> None:
    result = cli(
        "export", str(tmp_path / "out.jsonl"), "--url", seeded, env={"TTY_COMPATIBLE": "1"}
    )
    assert "exporting" in result.stderr
    assert f"{len(SAMPLE)} events" in result.stderr


# -- import ----------------------------------------------------------------------------------


def test_export_then_import_round_trips_every_byte_and_hash(
    cli: Cli, exported: Path, seeded: str, tmp_path: Path
) -> None:
    target = str(tmp_path / "restored.db")
    result = cli("import", str(exported), "--url", target)
    assert result.exit_code == 0, result.output
    assert f"imported {len(SAMPLE)} events" in result.stderr
    assert export_text(cli, target) == export_text(cli, seeded)


def test_imported_store_keeps_accepting_appends_with_the_right_versions(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    target = str(tmp_path / "restored.db")
    cli("import", str(exported), "--url", target)
    result = cli("append", "account-1", "MoneyDeposited", "-e", "1", "--url", target)
    assert result.exit_code == 0, result.output
    assert "at position 2 (global position 5)" in result.stdout


def test_import_reads_stdin_when_given_dash(cli: Cli, exported: Path, tmp_path: Path) -> None:
    target = str(tmp_path / "restored.db")
    result = cli("import", "-", "--url", target, input=exported.read_bytes())
    assert result.exit_code == 0, result.output
    assert head(target) == len(SAMPLE)


def test_import_skips_blank_lines(cli: Cli, exported: Path, tmp_path: Path) -> None:
    exported.write_text(exported.read_text().replace("\n", "\n\n"))
    target = str(tmp_path / "restored.db")
    assert cli("import", str(exported), "--url", target).exit_code == 0
    assert head(target) == len(SAMPLE)


def test_import_of_a_tampered_event_exits_5_naming_it_and_leaves_the_target_empty(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    rewrite_line(exported, 3, '"Grace"', '"Gracf"')
    target = str(tmp_path / "restored.db")
    result = cli("import", str(exported), "--url", target)
    assert result.exit_code == 5
    assert "error: line 3: hash mismatch at 'account-2'@0" in result.stderr
    assert "Traceback" not in result.output
    assert head(target) == 0


def test_import_of_an_export_from_a_later_position_says_it_is_part_of_a_log(
    cli: Cli, seeded: str, tmp_path: Path
) -> None:
    part = tmp_path / "part.jsonl"
    assert cli("export", str(part), "--after", "1", "--url", seeded).exit_code == 0
    target = str(tmp_path / "restored.db")
    result = cli("import", str(part), "--url", target)
    assert result.exit_code == 5
    assert "starts at position 1, not 0: this is part of a log" in result.stderr
    assert "without --after" in result.stderr
    assert head(target) == 0


def test_import_of_a_non_json_line_names_the_line(cli: Cli, exported: Path, tmp_path: Path) -> None:
    lines = exported.read_text().splitlines(keepends=True)
    exported.write_text(lines[0] + "this is not json\n" + "".join(lines[1:]))
    target = str(tmp_path / "restored.db")
    result = cli("import", str(exported), "--url", target)
    assert result.exit_code == 5
    assert "error: line 2: not valid JSON" in result.stderr
    assert head(target) == 0


def test_import_of_a_line_missing_a_field_names_the_line_and_the_field(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"global_position": 1, "stream_name": "a-1"}\n')
    result = cli("import", str(path), "--url", "memory://")
    assert result.exit_code == 5
    assert "error: line 1: not an exported event: Object missing required field" in result.stderr


def test_import_of_a_field_of_the_wrong_type_names_the_line_and_the_field(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    rewrite_line(exported, 2, '"stream_position":1', '"stream_position":"1"')
    result = cli("import", str(exported), "--url", str(tmp_path / "restored.db"))
    assert result.exit_code == 5
    assert "error: line 2: not an exported event: Expected `int`, got `str`" in result.stderr
    assert "$.stream_position" in result.stderr


def test_import_of_data_that_is_not_an_object_names_the_line(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    rewrite_line(exported, 1, '"data":{"owner":"Ada"}', '"data":["Ada"]')
    result = cli("import", str(exported), "--url", str(tmp_path / "restored.db"))
    assert result.exit_code == 5
    assert "error: line 1: data is not a JSON object" in result.stderr


def test_import_of_a_time_without_zone_names_the_line(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    text = exported.read_text()
    exported.write_text(re.sub(r'("recorded_at":"[^"]+)Z"', r'\1"', text, count=1))
    result = cli("import", str(exported), "--url", str(tmp_path / "restored.db"))
    assert result.exit_code == 5
    assert "error: line 1: recorded_at has no time zone" in result.stderr


def test_import_of_a_file_missing_a_streams_first_event_names_the_line(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    lines = exported.read_text().splitlines(keepends=True)
    exported.write_text("".join(lines[1:]))
    result = cli("import", str(exported), "--url", str(tmp_path / "restored.db"))
    assert result.exit_code == 5
    assert re.search(
        r"^error: line 1: event \S+ at 'account-1'@1 \(global position 2\): the stream starts "
        r"at position 1, not 0",
        result.stderr,
    )


def test_import_into_a_store_with_events_exits_6_and_changes_nothing(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    target = str(tmp_path / "busy.db")
    seed(target, [("other-1", "Happened", {})])
    result = cli("import", str(exported), "--url", target)
    assert result.exit_code == 6
    assert "is not empty" in result.stderr
    assert head(target) == 1


def test_import_of_a_missing_file_exits_4(cli: Cli, tmp_path: Path) -> None:
    result = cli("import", str(tmp_path / "nothing.jsonl"), "--url", "memory://")
    assert result.exit_code == 4
    assert "No such file or directory" in result.stderr


def test_import_of_an_empty_file_imports_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    result = cli("import", str(path), "--url", "memory://")
    assert result.exit_code == 0
    assert "imported 0 events" in result.stderr


# -- copy ------------------------------------------------------------------------------------


def test_copy_between_two_sqlite_files_keeps_every_byte_and_hash(
    cli: Cli, seeded: str, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    result = cli("copy", seeded, target)
    assert result.exit_code == 0, result.output
    assert f"copied {len(SAMPLE)} events" in result.stderr
    assert export_text(cli, target) == export_text(cli, seeded)


def test_copy_into_memory_verifies_every_event(cli: Cli, seeded: str) -> None:
    result = cli("copy", seeded, "memory://")
    assert result.exit_code == 0, result.output
    assert f"copied {len(SAMPLE)} events from" in result.stderr


def test_copy_from_an_empty_memory_store_copies_nothing(cli: Cli, db: str) -> None:
    result = cli("copy", "memory://", db)
    assert result.exit_code == 0, result.output
    assert "copied 0 events" in result.stderr
    assert head(db) == 0


def test_copy_into_a_store_with_events_exits_6(cli: Cli, seeded: str, tmp_path: Path) -> None:
    target = str(tmp_path / "busy.db")
    seed(target, [("other-1", "Happened", {})])
    result = cli("copy", seeded, target)
    assert result.exit_code == 6
    assert head(target) == 1


def test_copy_from_a_missing_store_exits_4_and_creates_neither_file(
    cli: Cli, db: str, tmp_path: Path
) -> None:
    target = tmp_path / "copy.db"
    result = cli("copy", db, str(target))
    assert result.exit_code == 4
    assert not Path(db).exists()
    assert not target.exists()


def _deepen(path: Path, depth: int) -> None:
    """Give the second event (account-1@1) data nested `depth` levels deep, with its hash
    recomputed to match, as a release that stored such data would have exported it."""
    lines = path.read_bytes().splitlines(keepends=True)
    first, second = (msgspec.json.decode(line, type=RawEvent) for line in lines[:2])
    data = b'{"a":' + b"[" * (depth - 1) + b"1" + b"]" * (depth - 1) + b"}"
    deep = msgspec.structs.replace(second, data=msgspec.Raw(data))
    digest = raw_event_hash(deep, bytes.fromhex(first.hash))
    deep = msgspec.structs.replace(deep, hash=digest.hex())
    lines[1] = msgspec.json.encode(deep) + b"\n"
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 996, 10_000])
def test_import_of_an_event_nested_beyond_the_limit_exits_5_naming_the_line(
    cli: Cli, exported: Path, tmp_path: Path, depth: int
) -> None:
    _deepen(exported, depth)
    target = str(tmp_path / "restored.db")
    result = cli("import", str(exported), "--url", target)
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith("error: line 2: ")
    assert f"nests objects and arrays {depth} levels deep, over the limit of" in result.stderr
    assert "Traceback" not in result.output
    assert head(target) == 0
