"""`eventvault export`, `import` and `copy`: moving whole logs with every hash intact, and
refusing any backup that cannot be proven whole."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from typer.testing import Result

import eventvault
from eventvault import NewEvent, RawEvent, StreamAppend, StreamState
from eventvault.serialization import MAX_NESTING_DEPTH, raw_event_hash
from eventvault.store.sqlite import SQLiteEventStore

from .cli_harness import SAMPLE, Cli, head, seed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stores"
FORMAT_1_EXPORT = FIXTURES / "sqlite-schema-1.export.jsonl"
"""An export written by eventvault 0.1.0 (format 1: event lines only) of 7 events."""


def export_text(cli: Cli, url: str) -> str:
    result = cli("export", "-", "--url", url)
    assert result.exit_code == 0, result.output
    return result.stdout


def event_lines(text: str) -> list[str]:
    """The event lines of an export: every line but the header and the closing record."""
    lines = text.splitlines(keepends=True)
    assert lines[0].startswith('{"record":"header"') and lines[-1].startswith('{"record":"end"')
    return lines[1:-1]


def format_1(text: str) -> str:
    """An export as eventvault 0.1 wrote it: the event lines only."""
    return "".join(event_lines(text))


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def import_refused(cli: Cli, path: Path, tmp_path: Path) -> Result:
    """Import `path` into a new store file, which must be refused (exit 5) and not created."""
    target = tmp_path / "restored.db"
    result = cli("import", str(path), "--url", str(target))
    assert result.exit_code == 5, result.output
    assert not target.exists()
    return result


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
    lines = [line.encode() for line in event_lines(exported.read_text())]
    assert [decoder.decode(line) for line in lines] == raw_events(seeded)
    assert b'"data":{"owner":"Ada"}' in lines[0]


def test_export_begins_with_a_header_and_ends_with_a_closing_record(exported: Path) -> None:
    data = exported.read_bytes()
    lines = data.splitlines(keepends=True)
    header = msgspec.json.decode(lines[0])
    assert header == {
        "record": "header",
        "format": "eventvault-export",
        "format_version": 3,
        "eventvault_version": eventvault.__version__,
        "after": 0,
        "head": len(SAMPLE),
        "created_at": header["created_at"],
    }
    assert str(header["created_at"]).endswith("Z")
    end = msgspec.json.decode(lines[-1])
    assert end == {
        "record": "end",
        "event_count": len(SAMPLE),
        "first_position": 1,
        "last_position": len(SAMPLE),
        "sha256": hashlib.sha256(b"".join(lines[:-1])).hexdigest(),
        "registry_changes": 0,
    }


def test_export_reports_the_count_on_stderr(cli: Cli, seeded: str, tmp_path: Path) -> None:
    result = cli("export", str(tmp_path / "out.jsonl"), "--url", seeded)
    assert f"exported {len(SAMPLE)} events to" in result.stderr
    assert result.stdout == ""


def test_export_to_stdout_writes_the_same_lines_as_to_a_file(
    cli: Cli, exported: Path, seeded: str
) -> None:
    assert event_lines(export_text(cli, seeded)) == event_lines(exported.read_text())


def test_export_after_a_position_writes_only_later_events(cli: Cli, seeded: str) -> None:
    result = cli("export", "-", "--after", "3", "--url", seeded)
    [line] = event_lines(result.stdout)
    assert msgspec.json.decode(line, type=RawEvent).global_position == 4
    assert '"after":3,"head":4,' in result.stdout.splitlines()[0]


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
    assert len(event_lines(exported.read_text())) == 1


def test_export_leaves_no_partial_file_behind(cli: Cli, exported: Path) -> None:
    assert [p.name for p in exported.parent.iterdir() if p.name.endswith(".partial")] == []


def test_export_does_not_follow_a_symlink_planted_at_the_old_partial_name(
    cli: Cli, seeded: str, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.partial").symlink_to(victim)
    result = cli("export", str(out), "--url", seeded)
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "out.jsonl.partial").is_symlink()
    assert not out.is_symlink()
    assert len(event_lines(out.read_text())) == len(SAMPLE)


def test_export_does_not_follow_symlinks_at_guessable_or_taken_temporary_names(
    cli: Cli, seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    guesses = ["out.jsonl.tmp", ".out.jsonl.partial", ".out.jsonl.tmp", "out.jsonl~"]
    for name in guesses:
        (tmp_path / name).symlink_to(victim)
    # The first random name drawn is taken by a symlink too: creation must move on, not open it.
    draws = iter(["0123456789abcdef", "fedcba9876543210"])
    monkeypatch.setattr("eventvault.cli.io.secrets.token_hex", lambda _: next(draws))
    taken = tmp_path / ".out.jsonl.0123456789abcdef.partial"
    taken.symlink_to(victim)
    result = cli("export", str(tmp_path / "out.jsonl"), "--url", seeded)
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    assert all((tmp_path / name).is_symlink() for name in [*guesses, taken.name])
    assert len(event_lines((tmp_path / "out.jsonl").read_text())) == len(SAMPLE)


def test_export_with_force_replaces_a_symlink_at_file_not_its_target(
    cli: Cli, seeded: str, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out.jsonl"
    out.symlink_to(victim)
    refused = cli("export", str(out), "--url", seeded)
    assert refused.exit_code == 2
    assert "exists; pass --force" in refused.stderr
    result = cli("export", str(out), "--force", "--url", seeded)
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    assert not out.is_symlink()


def test_export_does_not_replace_a_dangling_symlink_without_force(
    cli: Cli, seeded: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    out.symlink_to(tmp_path / "nowhere.txt")
    result = cli("export", str(out), "--url", seeded)
    assert result.exit_code == 2
    assert "exists; pass --force" in result.stderr
    assert out.is_symlink()
    assert not (tmp_path / "nowhere.txt").exists()


def test_export_into_a_missing_folder_names_the_folder_not_a_temporary_file(
    cli: Cli, seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("export", "nodir/x.jsonl", "--url", seeded)
    assert result.exit_code == 2
    assert "error: FILE: folder 'nodir' does not exist" in result.stderr
    assert "partial" not in result.output
    assert not (tmp_path / "nodir").exists()


def test_export_to_a_folder_says_it_is_a_folder(
    cli: Cli, seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    result = cli("export", "adir", "--url", seeded)
    assert result.exit_code == 2
    assert "error: FILE: 'adir' is a folder" in result.stderr
    assert "partial" not in result.output
    assert files_in(tmp_path / "adir") == []


def test_export_that_fails_mid_way_keeps_no_file_and_names_no_temporary_file(
    cli: Cli, seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()

    def write_then_fail(*args: object, **kwargs: object) -> None:
        out = args[1]
        assert hasattr(out, "write")
        out.write(b'{"record":"header"}\n')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("eventvault.cli.transfer.write_export", write_then_fail)
    result = cli("export", str(folder / "x.jsonl"), "--url", seeded)
    assert result.exit_code == 8
    assert "No space left on device" in result.stderr
    assert "partial" not in result.output
    assert files_in(folder) == []


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
    assert event_lines(export_text(cli, target)) == event_lines(export_text(cli, seeded))
    assert files_in(tmp_path) == ["events.db", "export.jsonl", "restored.db"]


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


def test_import_of_a_format_1_file_skips_blank_lines(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    exported.write_text(format_1(exported.read_text()).replace("\n", "\n\n"))
    target = str(tmp_path / "restored.db")
    result = cli("import", str(exported), "--expect-head", "4", "--url", target)
    assert result.exit_code == 0, result.output
    assert head(target) == len(SAMPLE)


def test_import_of_an_export_with_a_blank_line_added_fails_its_digest(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    exported.write_text(exported.read_text().replace("\n", "\n\n", 1))
    target = tmp_path / "restored.db"
    result = cli("import", str(exported), "--url", str(target))
    assert result.exit_code == 5
    assert "error: line 7: the SHA-256 of the file before the closing record" in result.stderr
    assert not target.exists()


def test_import_of_a_tampered_event_exits_5_naming_it_and_leaves_the_target_empty(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    rewrite_line(exported, 4, '"Grace"', '"Gracf"')
    target = str(tmp_path / "restored.db")
    seed(target, [])
    result = cli("import", str(exported), "--url", target)
    assert result.exit_code == 5
    assert "error: line 4: hash mismatch at 'account-2'@0" in result.stderr
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
    assert (
        "error: line 1: the file holds the events after global position 1, not a whole log: "
        "this is part of a log"
    ) in result.stderr
    assert "without --after" in result.stderr
    assert not Path(target).exists()


def test_import_of_a_tail_whose_streams_all_began_after_its_start_is_refused(
    cli: Cli, seeded: str, tmp_path: Path
) -> None:
    # After position 3 only order-7 remains, at stream position 0: every position check passes.
    part = tmp_path / "part.jsonl"
    assert cli("export", str(part), "--after", "3", "--url", seeded).exit_code == 0
    target = str(tmp_path / "restored.db")
    seed(target, [])
    result = cli("import", str(part), "--url", target)
    assert result.exit_code == 5
    assert "the file holds the events after global position 3, not a whole log" in result.stderr
    assert head(target) == 0


def test_import_of_a_non_json_line_names_the_line(cli: Cli, exported: Path, tmp_path: Path) -> None:
    lines = exported.read_text().splitlines(keepends=True)
    exported.write_text("".join(lines[:2]) + "this is not json\n" + "".join(lines[2:]))
    target = tmp_path / "restored.db"
    result = cli("import", str(exported), "--url", str(target))
    assert result.exit_code == 5
    assert "error: line 3: not valid JSON" in result.stderr
    assert not target.exists()


def test_import_of_a_line_missing_a_field_names_the_line_and_the_field(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"global_position": 1, "stream_name": "a-1"}\n')
    result = cli("import", str(path), "--url", str(tmp_path / "restored.db"))
    assert result.exit_code == 5
    assert "error: line 1: not an exported event: Object missing required field" in result.stderr


def test_import_of_a_field_of_the_wrong_type_names_the_line_and_the_field(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    rewrite_line(exported, 3, '"stream_position":1', '"stream_position":"1"')
    result = import_refused(cli, exported, tmp_path)
    assert "error: line 3: not an exported event: Expected `int`, got `str`" in result.stderr
    assert "$.stream_position" in result.stderr


def test_import_of_data_that_is_not_an_object_names_the_line(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    rewrite_line(exported, 2, '"data":{"owner":"Ada"}', '"data":["Ada"]')
    result = import_refused(cli, exported, tmp_path)
    assert "error: line 2: data is not a JSON object" in result.stderr


def test_import_of_a_time_without_zone_names_the_line(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    text = exported.read_text()
    exported.write_text(re.sub(r'("recorded_at":"[^"]+)Z"', r'\1"', text, count=1))
    result = import_refused(cli, exported, tmp_path)
    assert "error: line 2: recorded_at has no time zone" in result.stderr


def test_import_of_a_file_missing_a_streams_first_event_names_the_line(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    lines = exported.read_text().splitlines(keepends=True)
    exported.write_text(lines[0] + "".join(lines[2:]))
    result = import_refused(cli, exported, tmp_path)
    assert re.search(
        r"^error: line 2: event \S+ at 'account-1'@1 \(global position 2\): the stream starts "
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


def test_import_of_an_empty_file_is_refused_as_it_cannot_show_it_is_whole(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    target = tmp_path / "restored.db"
    result = cli("import", str(path), "--url", str(target))
    assert result.exit_code == 5
    assert "error: the file is empty: no header, no events, no closing record" in result.stderr
    assert "--expect-head" in result.stderr
    assert not target.exists()


def test_import_of_an_empty_file_stated_empty_imports_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    target = str(tmp_path / "restored.db")
    result = cli("import", str(path), "--expect-head", "0", "--url", target)
    assert result.exit_code == 0, result.output
    assert "imported 0 events" in result.stderr
    assert head(target) == 0


def test_export_and_import_of_an_empty_store_round_trip(cli: Cli, tmp_path: Path) -> None:
    source = str(tmp_path / "empty.db")
    seed(source, [])
    path = tmp_path / "empty.jsonl"
    assert cli("export", str(path), "--url", source).exit_code == 0
    assert event_lines(path.read_text()) == []
    target = str(tmp_path / "restored.db")
    result = cli("import", str(path), "--url", target)
    assert result.exit_code == 0, result.output
    assert "imported 0 events" in result.stderr
    assert head(target) == 0


def test_import_of_an_export_without_its_closing_record_names_what_is_missing(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    lines = exported.read_text().splitlines(keepends=True)
    exported.write_text("".join(lines[:-1]))
    target = tmp_path / "restored.db"
    result = cli("import", str(exported), "--url", str(target))
    assert result.exit_code == 5
    assert (
        "error: the file ends after line 5, event at global position 4; the closing record is "
        "missing: the export was interrupted; the source's head was 4"
    ) in result.stderr
    assert "nothing was written to the target" in result.stderr
    assert not target.exists()


def test_import_of_an_export_cut_in_the_middle_of_a_line_names_what_is_missing(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    data = exported.read_bytes()
    cut = data.index(b'{"global_position":3') + 40
    exported.write_bytes(data[:cut])
    result = import_refused(cli, exported, tmp_path)
    assert (
        "error: the file ends in the middle of line 4, event at global position 2; the closing "
        "record is missing"
    ) in result.stderr


def test_import_of_an_export_whose_last_event_was_removed_is_refused(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    lines = exported.read_text().splitlines(keepends=True)
    exported.write_text("".join(lines[:-2] + lines[-1:]))
    target = tmp_path / "restored.db"
    result = cli("import", str(exported), "--url", str(target))
    assert result.exit_code == 5
    assert (
        "error: line 5: the closing record counts 4 events, the file holds 3: lines were "
        "removed or added"
    ) in result.stderr
    assert not target.exists()


def test_import_of_an_export_with_a_whole_stream_removed_is_refused(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    lines = exported.read_text().splitlines(keepends=True)
    exported.write_text("".join(line for line in lines if '"account-1"' not in line))
    result = import_refused(cli, exported, tmp_path)
    assert "the closing record counts 4 events, the file holds 2" in result.stderr


def test_import_of_an_export_with_every_event_removed_is_refused(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    lines = exported.read_text().splitlines(keepends=True)
    exported.write_text(lines[0] + lines[-1])
    result = import_refused(cli, exported, tmp_path)
    assert "error: line 2: the closing record counts 4 events, the file holds 0" in result.stderr


def test_import_of_an_export_with_a_line_changed_but_every_hash_intact_fails_its_digest(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    # Same event, other JSON spacing: every hash and position still verifies, the count too.
    rewrite_line(exported, 5, '"global_position":4', '"global_position": 4')
    target = str(tmp_path / "restored.db")
    seed(target, [])
    result = cli("import", str(exported), "--url", target)
    assert result.exit_code == 5
    assert "error: line 6: the SHA-256 of the file before the closing record is" in result.stderr
    assert "lines were removed, reordered or changed" in result.stderr
    assert head(target) == 0


def test_import_of_an_export_with_a_line_replaced_by_another_valid_event_is_refused(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    other = str(tmp_path / "other.db")
    seed(other, [*SAMPLE[:3], ("order-7", "OrderPlaced", {"items": 30})])
    replacement = event_lines(export_text(cli, other))[3]
    lines = exported.read_text().splitlines(keepends=True)
    exported.write_text("".join([*lines[:4], replacement, lines[5]]))
    result = import_refused(cli, exported, tmp_path)
    assert "error: line 6: the SHA-256 of the file before the closing record" in result.stderr


def test_import_of_an_export_with_lines_after_its_closing_record_is_refused(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    text = exported.read_text()
    exported.write_text(text + text)
    result = import_refused(cli, exported, tmp_path)
    assert "error: line 7: something follows the closing record of line 6" in result.stderr


def test_import_of_an_interrupted_export_joined_with_another_is_refused(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    text = exported.read_text()
    lines = text.splitlines(keepends=True)
    exported.write_text("".join(lines[:3]) + text)
    result = import_refused(cli, exported, tmp_path)
    assert "error: line 4: a second header (the first is on line 1)" in result.stderr


def test_import_of_an_export_of_a_newer_format_asks_for_an_upgrade(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    rewrite_line(exported, 1, '"format_version":3', '"format_version":4')
    result = import_refused(cli, exported, tmp_path)
    assert "error: line 1: export format version 4" in result.stderr
    assert "hint: upgrade eventvault" in result.stderr


def test_import_of_a_format_1_export_is_refused_by_default_saying_how_to_import_it(
    cli: Cli, tmp_path: Path
) -> None:
    target = tmp_path / "restored.db"
    result = cli("import", str(FORMAT_1_EXPORT), "--url", str(target))
    assert result.exit_code == 5
    assert "error: line 1: the file has no header: it is an export of format 1" in result.stderr
    assert "pass --expect-head POS" in result.stderr
    assert not target.exists()


@pytest.mark.parametrize("option", [["--expect-head", "7"], ["--expect-count", "7"]])
def test_import_of_a_format_1_export_matching_what_is_stated_succeeds(
    cli: Cli, tmp_path: Path, option: list[str]
) -> None:
    target = str(tmp_path / "restored.db")
    result = cli("import", str(FORMAT_1_EXPORT), *option, "--url", target)
    assert result.exit_code == 0, result.output
    assert "imported 7 events" in result.stderr
    with eventvault.connect(target) as store:
        events = list(store.export_events())
    lines = FORMAT_1_EXPORT.read_bytes().splitlines()
    assert [msgspec.json.encode(event) for event in events] == lines


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--expect-head", "8"], "the file ends at global position 7, the source's head was"),
        (["--expect-count", "6"], "the file holds 7 events, 6 were expected"),
    ],
)
def test_import_of_a_format_1_export_not_matching_what_is_stated_is_refused(
    cli: Cli, tmp_path: Path, option: list[str], message: str
) -> None:
    target = tmp_path / "restored.db"
    result = cli("import", str(FORMAT_1_EXPORT), *option, "--url", str(target))
    assert result.exit_code == 5
    assert message in result.stderr
    assert not target.exists()


def test_import_of_a_format_1_export_missing_its_last_line_is_refused(
    cli: Cli, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(FORMAT_1_EXPORT.read_bytes().splitlines(keepends=True)[:-1]))
    result = cli("import", str(cut), "--expect-head", "7", "--url", str(tmp_path / "r.db"))
    assert result.exit_code == 5
    assert "error: the file ends at global position 6, the source's head was expected at 7" in (
        result.stderr
    )


def test_import_checks_expect_head_against_an_export_of_format_2(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    wrong = cli("import", str(exported), "--expect-head", "5", "--url", str(tmp_path / "a.db"))
    assert wrong.exit_code == 5
    assert "was written up to the source's head 4, the source's head was expected at 5" in (
        wrong.stderr
    )
    right = cli("import", str(exported), "--expect-head", "4", "--url", str(tmp_path / "b.db"))
    assert right.exit_code == 0, right.output


@pytest.mark.parametrize("target", ["memory://", "sqlite:///:memory:"])
def test_import_into_a_store_in_memory_is_refused_saying_why(
    cli: Cli, exported: Path, target: str
) -> None:
    result = cli("import", str(exported), "--url", target)
    assert result.exit_code == 2
    assert f"error: --url: {target!r} is a store in the memory of this process" in result.stderr
    assert "imported" not in result.stderr


def test_a_failed_import_removes_the_store_file_it_created_and_nothing_else(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    rewrite_line(exported, 4, '"Grace"', '"Gracf"')
    before = files_in(tmp_path)
    import_refused(cli, exported, tmp_path)
    assert files_in(tmp_path) == before


def test_a_failed_import_keeps_an_empty_store_that_existed_before(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    rewrite_line(exported, 4, '"Grace"', '"Gracf"')
    target = str(tmp_path / "restored.db")
    seed(target, [])
    result = cli("import", str(exported), "--url", target)
    assert result.exit_code == 5
    assert Path(target).exists()
    assert head(target) == 0


def test_a_sqlite_url_with_options_gets_its_new_store_under_the_name_given(
    cli: Cli, exported: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'restored.db'}?synchronous=NORMAL"
    result = cli("import", str(exported), "--url", url)
    assert result.exit_code == 0, result.output
    assert head(str(tmp_path / "restored.db")) == len(SAMPLE)
    assert [name for name in files_in(tmp_path) if "partial" in name] == []


def test_import_into_a_missing_folder_names_the_folder(
    cli: Cli, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("import", str(exported), "--url", "nodir/restored.db")
    assert result.exit_code == 2
    assert "error: --url: folder 'nodir' does not exist" in result.stderr
    assert "partial" not in result.output


def test_export_to_stdout_gzipped_round_trips_through_import_from_stdin(
    cli: Cli, seeded: str, tmp_path: Path
) -> None:
    packed = gzip.compress(export_text(cli, seeded).encode())
    target = str(tmp_path / "restored.db")
    result = cli("import", "-", "--url", target, input=gzip.decompress(packed))
    assert result.exit_code == 0, result.output
    assert event_lines(export_text(cli, target)) == event_lines(export_text(cli, seeded))


# -- an export killed mid-way ----------------------------------------------------------------

KILLED_EVENTS = 40_000
"""Events of the store whose export is killed: enough that the export is far from done after the
first pipe-fulls, few enough to seed in about a second."""


@pytest.fixture(scope="module")
def large_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("large") / "large.db")
    with eventvault.connect(url) as store:
        for batch in range(KILLED_EVENTS // 1000):
            store.append_to_streams(
                [
                    StreamAppend(
                        f"account-{batch}-{n}",
                        [NewEvent("Deposited", {"amount": i}) for i in range(10)],
                        StreamState.NO_STREAM,
                    )
                    for n in range(100)
                ]
            )
    return url


def _killed_export(url: str, signum: signal.Signals, keep: int) -> bytes:
    """What `eventvault export -` wrote to its pipe before it was killed, `keep` bytes in."""
    env = {key: value for key, value in os.environ.items() if key != "EVENTVAULT_URL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "eventvault.cli", "export", "-", "--url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        bufsize=0,
    )
    assert process.stdout is not None
    received = b""
    try:
        # Stop reading once `keep` bytes came: the writer then blocks on the full pipe, so the
        # signal always lands mid-way through the export.
        while len(received) < keep:
            chunk = process.stdout.read(65536)
            assert chunk, "the export ended before it could be killed"
            received += chunk
        process.send_signal(signum)
        while chunk := process.stdout.read(65536):
            received += chunk
        assert process.wait(timeout=30) == -signum
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    return received


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_import_refuses_what_an_export_killed_mid_way_wrote(
    cli: Cli, large_store: str, tmp_path: Path, signum: signal.Signals
) -> None:
    started = time.monotonic()
    partial = _killed_export(large_store, signum, keep=1_000_000)
    lines = partial.splitlines(keepends=True)
    assert 1000 < len(lines) < KILLED_EVENTS
    dump = tmp_path / "partial.jsonl"
    # As the pipe left it, and cut at its last line boundary (what `gzip` in a killed pipeline
    # keeps): both are refused.
    for data in (partial, b"".join(line for line in lines if line.endswith(b"\n"))):
        dump.write_bytes(data)
        target = str(tmp_path / "restored.db")
        seed(target, [])
        result = cli("import", str(dump), "--url", target)
        assert result.exit_code == 5, result.output
        assert (
            "the closing record is missing: the export was interrupted; the source's head "
            f"was {KILLED_EVENTS}" in result.stderr
        )
        assert head(target) == 0
        os.remove(target)
    assert time.monotonic() - started < 60


# -- copy ------------------------------------------------------------------------------------


def test_copy_between_two_sqlite_files_keeps_every_byte_and_hash(
    cli: Cli, seeded: str, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    result = cli("copy", seeded, target)
    assert result.exit_code == 0, result.output
    assert f"copied {len(SAMPLE)} events" in result.stderr
    assert event_lines(export_text(cli, target)) == event_lines(export_text(cli, seeded))


@pytest.mark.parametrize("target", ["memory://", "sqlite:///:memory:"])
def test_copy_into_a_store_in_memory_is_refused_saying_why(
    cli: Cli, seeded: str, target: str
) -> None:
    result = cli("copy", seeded, target)
    assert result.exit_code == 2
    assert f"error: TARGET_URL: {target!r} is a store in the memory of this process" in (
        result.stderr
    )
    assert "would be gone when the command ends" in result.stderr
    assert "copied" not in result.stderr


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


def test_copy_from_a_missing_store_hints_at_source_url_not_at_url(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("copy", "nope.db", "x.db")
    assert result.exit_code == 4
    assert "hint: check SOURCE_URL" in result.stderr
    assert "--url" not in result.stderr
    assert files_in(tmp_path) == []


def test_copy_refuses_a_source_whose_events_do_not_reach_its_head(
    cli: Cli, seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_events = SQLiteEventStore.export_events

    def losing_the_last(
        self: SQLiteEventStore, *, after: int = 0, until: int | None = None
    ) -> Iterator[RawEvent]:
        events = list(export_events(self, after=after, until=until))
        return iter(events[:-1])

    monkeypatch.setattr(SQLiteEventStore, "export_events", losing_the_last)
    target = tmp_path / "copy.db"
    result = cli("copy", seeded, str(target))
    assert result.exit_code == 5
    assert (
        "error: the source's events end at global position 3, short of its head 4 when the "
        "copy began"
    ) in result.stderr
    assert not target.exists()


def test_export_refuses_a_store_whose_events_do_not_reach_its_head_and_keeps_no_file(
    cli: Cli, seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_events = SQLiteEventStore.export_events

    def losing_the_last(
        self: SQLiteEventStore, *, after: int = 0, until: int | None = None
    ) -> Iterator[RawEvent]:
        return iter(list(export_events(self, after=after, until=until))[:-1])

    monkeypatch.setattr(SQLiteEventStore, "export_events", losing_the_last)
    out = tmp_path / "out" / "x.jsonl"
    out.parent.mkdir()
    result = cli("export", str(out), "--url", seeded)
    assert result.exit_code == 5
    assert "short of its head 4 when the export began" in result.stderr
    assert files_in(out.parent) == []
    piped = cli("export", "-", "--url", seeded)
    assert piped.exit_code == 5
    assert '{"record":"end"' not in piped.stdout


def _deepen(path: Path, depth: int) -> int:
    """Give the second event (account-1@1) data nested `depth` levels deep, with its hash
    recomputed to match, as a release that stored such data would have exported it.

    Returns:
        The 1-based number of the line changed.
    """
    lines = path.read_bytes().splitlines(keepends=True)
    events = {
        number: msgspec.json.decode(line, type=RawEvent)
        for number, line in enumerate(lines)
        if b'"stream_position"' in line
    }
    (_, first), (second_at, second) = list(events.items())[:2]
    data = b'{"a":' + b"[" * (depth - 1) + b"1" + b"]" * (depth - 1) + b"}"
    deep = msgspec.structs.replace(second, data=msgspec.Raw(data))
    digest = raw_event_hash(deep, bytes.fromhex(first.hash))
    deep = msgspec.structs.replace(deep, hash=digest.hex())
    lines[second_at] = msgspec.json.encode(deep) + b"\n"
    path.write_bytes(b"".join(lines))
    return second_at + 1


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 996, 10_000])
def test_import_of_an_event_nested_beyond_the_limit_exits_5_naming_the_line(
    cli: Cli, exported: Path, tmp_path: Path, depth: int
) -> None:
    line = _deepen(exported, depth)
    target = str(tmp_path / "restored.db")
    result = cli("import", str(exported), "--url", target)
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith(f"error: line {line}: ")
    assert f"nests objects and arrays {depth} levels deep, over the limit of" in result.stderr
    assert "Traceback" not in result.output
    assert head(target) == 0
