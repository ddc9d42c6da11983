"""`eventvault read`, `log`, `streams` and `stats`: looking at a store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from eventvault import RecordedEvent
from eventvault.cli import reading

from .cli_harness import Cli, seed


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def decoded(text: str) -> list[RecordedEvent]:
    decoder = msgspec.json.Decoder(RecordedEvent)
    return [decoder.decode(line) for line in text.splitlines()]


# -- read ------------------------------------------------------------------------------------


def test_read_shows_a_table_of_the_streams_events(cli: Cli, seeded: str) -> None:
    result = cli("read", "account-1", "--url", seeded)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "recorded at" in line)
    assert header.split()[:3] == ["pos", "global", "type"]
    rows = [line.split() for line in lines if "{" in line]
    assert [row[:3] for row in rows] == [["0", "1", "AccountOpened"], ["1", "2", "MoneyDeposited"]]
    assert rows[0][-1] == '{"owner":"Ada"}'


def test_read_abbreviates_long_data_in_the_table(cli: Cli, db: str) -> None:
    seed(db, [("notes-1", "Written", {"text": "x" * 500})])
    result = cli("read", "notes-1", "--url", db)
    assert "x" * 100 not in result.stdout
    assert "…" in result.stdout


def test_read_json_prints_every_event_in_full_as_json_lines(cli: Cli, seeded: str) -> None:
    result = cli("read", "account-1", "--json", "--url", seeded)
    events = decoded(result.stdout)
    assert [(e.stream_position, e.global_position, e.data) for e in events] == [
        (0, 1, {"owner": "Ada"}),
        (1, 2, {"amount": 10}),
    ]
    assert all(len(e.hash) == 64 for e in events)


def test_read_backwards_with_a_limit_gives_the_last_event(cli: Cli, seeded: str) -> None:
    result = cli("read", "account-1", "--backwards", "--limit", "1", "--json", "--url", seeded)
    assert [e.stream_position for e in decoded(result.stdout)] == [1]


def test_read_from_a_position_starts_there(cli: Cli, seeded: str) -> None:
    result = cli("read", "account-1", "--from", "1", "--json", "--url", seeded)
    assert [e.event_type for e in decoded(result.stdout)] == ["MoneyDeposited"]


def test_read_from_past_the_end_prints_a_note_and_exits_0(cli: Cli, seeded: str) -> None:
    result = cli("read", "account-1", "--from", "9", "--url", seeded)
    assert result.exit_code == 0
    assert "has no events at position 9 or after it" in result.stderr


def test_read_of_a_stream_without_events_exits_4(cli: Cli, seeded: str) -> None:
    result = cli("read", "account-99", "--url", seeded)
    assert result.exit_code == 4
    assert "error: stream 'account-99' has no events" in result.stderr


def test_read_of_a_missing_store_file_exits_4_and_creates_no_file(cli: Cli, db: str) -> None:
    result = cli("read", "account-1", "--url", db)
    assert result.exit_code == 4
    assert f"the file {db!r} does not exist" in result.stderr
    assert not Path(db).exists()


def test_read_with_a_negative_limit_is_a_usage_error(cli: Cli, seeded: str) -> None:
    assert cli("read", "account-1", "--limit", "-1", "--url", seeded).exit_code == 2


def test_read_table_without_limit_is_capped_with_a_note(
    cli: Cli, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "TABLE_ROWS", 2)
    seed(db, [("account-1", "Touched", {"n": n}) for n in range(3)])
    result = cli("read", "account-1", "--url", db)
    assert '{"n":1}' in result.stdout
    assert '{"n":2}' not in result.stdout
    assert "showing the first 2 events" in result.stdout


def test_read_json_is_not_capped(cli: Cli, db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "TABLE_ROWS", 2)
    seed(db, [("account-1", "Touched", {"n": n}) for n in range(3)])
    assert len(decoded(cli("read", "account-1", "--json", "--url", db).stdout)) == 3


# -- log -------------------------------------------------------------------------------------


def test_log_shows_every_stream_in_global_order(cli: Cli, seeded: str) -> None:
    result = cli("log", "--url", seeded)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if "{" in line]
    assert [row[:3] for row in rows] == [
        ["1", "account-1@0", "AccountOpened"],
        ["2", "account-1@1", "MoneyDeposited"],
        ["3", "account-2@0", "AccountOpened"],
        ["4", "order-7@0", "OrderPlaced"],
    ]


def test_log_filters_by_repeated_type_options(cli: Cli, seeded: str) -> None:
    result = cli(
        "log", "--type", "OrderPlaced", "--type", "MoneyDeposited", "--json", "--url", seeded
    )
    assert [e.global_position for e in decoded(result.stdout)] == [2, 4]


def test_log_filters_by_stream_prefix(cli: Cli, seeded: str) -> None:
    result = cli("log", "--prefix", "account-", "--json", "--url", seeded)
    assert {e.stream_name for e in decoded(result.stdout)} == {"account-1", "account-2"}


def test_log_after_a_position_starts_after_it(cli: Cli, seeded: str) -> None:
    result = cli("log", "--after", "2", "--json", "--url", seeded)
    assert [e.global_position for e in decoded(result.stdout)] == [3, 4]


def test_log_backwards_with_a_limit_gives_the_newest_first(cli: Cli, seeded: str) -> None:
    result = cli("log", "--backwards", "--limit", "2", "--json", "--url", seeded)
    assert [e.global_position for e in decoded(result.stdout)] == [4, 3]


def test_log_of_an_empty_store_notes_it_and_exits_0(cli: Cli) -> None:
    result = cli("log", "--url", "memory://")
    assert result.exit_code == 0
    assert "no events match" in result.stderr


def test_log_follow_backwards_is_refused_with_exit_2(cli: Cli, seeded: str) -> None:
    result = cli("log", "--follow", "--backwards", "--url", seeded)
    assert result.exit_code == 2
    assert "error: --follow: cannot follow the log --backwards" in result.stderr


def test_log_with_an_empty_prefix_exits_2(cli: Cli, seeded: str) -> None:
    assert cli("log", "--prefix", "", "--url", seeded).exit_code == 2


# -- streams ---------------------------------------------------------------------------------


def test_streams_shows_names_counts_versions_and_last_positions(cli: Cli, seeded: str) -> None:
    result = cli("streams", "--url", seeded)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if "-" in line and "─" not in line]
    assert rows == [
        ["account-1", "2", "1", "2"],
        ["account-2", "1", "0", "3"],
        ["order-7", "1", "0", "4"],
    ]


def test_streams_json_prints_one_object_per_stream(cli: Cli, seeded: str) -> None:
    result = cli("streams", "--json", "--url", seeded)
    assert json_lines(result.stdout)[0] == {
        "stream_name": "account-1",
        "event_count": 2,
        "version": 1,
        "last_global_position": 2,
    }
    assert len(json_lines(result.stdout)) == 3


def test_streams_of_an_empty_store_notes_it(cli: Cli) -> None:
    result = cli("streams", "--url", "memory://")
    assert result.exit_code == 0
    assert "the store has no streams" in result.stderr


# -- stats -----------------------------------------------------------------------------------


def test_stats_shows_counts_head_times_and_file_size(cli: Cli, seeded: str) -> None:
    result = cli("stats", "--url", seeded)
    assert result.exit_code == 0, result.output
    cells = [re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines()]
    figures = {row[0]: row[-1] for row in cells if len(row) == 2}
    assert figures["events"] == "4"
    assert figures["streams"] == "3"
    assert figures["head position"] == "4"
    assert figures["engine"] == "sqlite"
    assert figures["file size"].endswith("bytes)")


def test_stats_json_reports_the_figures_and_the_file_size(cli: Cli, seeded: str) -> None:
    stats = json.loads(cli("stats", "--json", "--url", seeded).stdout)
    assert (stats["event_count"], stats["stream_count"], stats["head_position"]) == (4, 3, 4)
    assert stats["first_recorded_at"] <= stats["last_recorded_at"]
    assert isinstance(stats["file_size_bytes"], int)
    assert stats["file_size_bytes"] >= Path(seeded).stat().st_size


def test_stats_of_a_memory_store_has_no_file_size(cli: Cli) -> None:
    stats = json.loads(cli("stats", "--json", "--url", "memory://").stdout)
    assert stats["file_size_bytes"] is None
    assert stats["event_count"] == 0
    assert stats["first_recorded_at"] is None


def test_stats_of_a_missing_store_file_exits_4(cli: Cli, db: str) -> None:
    assert cli("stats", "--url", db).exit_code == 4


@pytest.mark.parametrize("position", [str(2**63 - 1), str(2**63), str(2**64)])
@pytest.mark.parametrize("output", ["--json", "--table"])
def test_read_and_log_from_beyond_any_position_print_nothing_and_exit_0(
    cli: Cli, seeded: str, position: str, output: str
) -> None:
    options = ["--json"] if output == "--json" else []
    for args in (["read", "account-1", "--from", position], ["log", "--after", position]):
        result = cli(*args, *options, "--url", seeded)
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        assert "error" not in result.stderr


def test_log_backwards_from_beyond_any_position_starts_at_the_end(cli: Cli, seeded: str) -> None:
    result = cli("log", "--after", str(2**64), "--backwards", "--json", "--url", seeded)
    assert result.exit_code == 0, result.output
    assert [e.global_position for e in decoded(result.stdout)] == [4, 3, 2, 1]
