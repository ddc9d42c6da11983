"""`eventvault append`: writing one event, and the errors of bad input."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import eventvault
from eventvault.serialization import MAX_NESTING_DEPTH

from .cli_harness import Cli, head


def only_events(url: str, stream: str) -> list[eventvault.RecordedEvent]:
    with eventvault.connect(url) as store:
        return list(store.read_stream(stream))


def test_append_prints_the_stream_position_and_global_position(cli: Cli, db: str) -> None:
    cli("append", "account-1", "AccountOpened", '{"owner": "Ada"}', "--url", db)
    result = cli("append", "account-1", "MoneyDeposited", '{"amount": 10}', "--url", db)
    assert result.exit_code == 0, result.output
    assert "appended to account-1 at position 1 (global position 2)" in result.stdout


def test_append_creates_the_store_file_and_stores_the_event(cli: Cli, db: str) -> None:
    result = cli("append", "account-1", "AccountOpened", '{"owner": "Ada"}', "--url", db)
    assert result.exit_code == 0, result.output
    [event] = only_events(db, "account-1")
    assert (event.event_type, event.data) == ("AccountOpened", {"owner": "Ada"})


def test_append_reads_data_from_stdin_when_given_dash(cli: Cli, db: str) -> None:
    result = cli("append", "account-1", "MoneyDeposited", "-", "--url", db, input='{"amount": 5}\n')
    assert result.exit_code == 0, result.output
    assert only_events(db, "account-1")[0].data == {"amount": 5}


def test_append_without_data_stores_an_empty_object(cli: Cli, db: str) -> None:
    assert cli("append", "account-1", "Touched", "--url", db).exit_code == 0
    assert only_events(db, "account-1")[0].data == {}


def test_append_stores_metadata_event_id_and_schema_version(cli: Cli, db: str) -> None:
    event_id = uuid.uuid4()
    result = cli(
        "append",
        "account-1",
        "AccountOpened",
        "{}",
        "--metadata",
        '{"actor": "ada"}',
        "--event-id",
        str(event_id),
        "--schema-version",
        "3",
        "--url",
        db,
    )
    assert result.exit_code == 0, result.output
    [event] = only_events(db, "account-1")
    assert (event.metadata, event.event_id, event.schema_version) == ({"actor": "ada"}, event_id, 3)


def test_append_with_a_stored_event_id_is_an_idempotent_retry(cli: Cli, db: str) -> None:
    args = ("append", "account-1", "AccountOpened", "{}", "--event-id", str(uuid.uuid4()))
    first = cli(*args, "--url", db)
    second = cli(*args, "--url", db)
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert head(db) == 1


def test_append_json_prints_the_positions_as_json(cli: Cli, db: str) -> None:
    result = cli("append", "account-1", "AccountOpened", "{}", "--json", "--url", db)
    assert json.loads(result.stdout) == {
        "stream_name": "account-1",
        "stream_position": 0,
        "global_position": 1,
    }


def test_append_opens_the_store_named_by_eventvault_url(cli: Cli, db: str) -> None:
    result = cli("append", "account-1", "AccountOpened", env={"EVENTVAULT_URL": db})
    assert result.exit_code == 0, result.output
    assert head(db) == 1


def test_append_without_url_uses_eventvault_db_in_the_working_directory(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("append", "account-1", "AccountOpened").exit_code == 0
    assert head(str(tmp_path / "eventvault.db")) == 1


@pytest.mark.parametrize(
    ("expected_version", "exit_code"),
    [("no-stream", 3), ("exists", 0), ("any", 0), ("0", 0), ("1", 3)],
)
def test_append_checks_the_expected_version(
    cli: Cli, db: str, expected_version: str, exit_code: int
) -> None:
    cli("append", "account-1", "AccountOpened", "--url", db)
    result = cli("append", "account-1", "Touched", "-e", expected_version, "--url", db)
    assert result.exit_code == exit_code, result.output


def test_append_with_malformed_json_exits_2_naming_the_argument(cli: Cli, db: str) -> None:
    result = cli("append", "account-1", "AccountOpened", '{"owner": ', "--url", db)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: DATA_JSON: not valid JSON")
    assert "Traceback" not in result.output


def test_append_with_data_that_is_not_an_object_exits_2(cli: Cli, db: str) -> None:
    result = cli("append", "account-1", "AccountOpened", "[1, 2]", "--url", db)
    assert result.exit_code == 2
    assert "error: DATA_JSON: must be a JSON object" in result.stderr


def test_append_with_malformed_metadata_names_the_option(cli: Cli, db: str) -> None:
    result = cli("append", "account-1", "AccountOpened", "{}", "-m", "actor=ada", "--url", db)
    assert result.exit_code == 2
    assert "error: --metadata: not valid JSON" in result.stderr


def test_append_with_bad_json_writes_nothing(cli: Cli, db: str) -> None:
    cli("append", "account-1", "AccountOpened", "--url", db)
    cli("append", "account-1", "AccountOpened", "{", "--url", db)
    assert head(db) == 1


def test_append_with_an_empty_stream_name_exits_2(cli: Cli, db: str) -> None:
    result = cli("append", "", "AccountOpened", "{}", "--url", db)
    assert result.exit_code == 2
    assert "error: invalid stream name ''" in result.stderr
    assert "Traceback" not in result.output


def test_append_with_a_control_character_in_the_stream_name_exits_2(cli: Cli, db: str) -> None:
    result = cli("append", "account\n1", "AccountOpened", "{}", "--url", db)
    assert result.exit_code == 2
    assert "control characters" in result.stderr


def test_append_over_the_size_limit_exits_2_and_says_how_to_raise_it(cli: Cli, db: str) -> None:
    big = '{"blob": "' + "x" * (1024 * 1024) + '"}'
    result = cli("append", "files-1", "Uploaded", big, "--url", db)
    assert result.exit_code == 2
    assert "over the limit of 1048576 bytes" in result.stderr
    assert "--max-event-bytes" in result.stderr
    assert head(db) == 0
    result = cli("append", "files-1", "Uploaded", big, "--max-event-bytes", "2000000", "--url", db)
    assert result.exit_code == 0, result.output
    assert head(db) == 1


def test_append_with_options_on_a_bare_path_exits_2_naming_the_url_form(
    cli: Cli, tmp_path: Path
) -> None:
    url = str(tmp_path / "app.db") + "?synchronous=NORMAL"
    result = cli("append", "a-1", "Opened", "--url", url)
    assert result.exit_code == 2
    assert "options go with a sqlite: URL" in result.stderr
    assert cli("stats", "--url", url).exit_code == 2


def test_append_with_wrong_expected_version_exits_3_and_writes_nothing(cli: Cli, db: str) -> None:
    cli("append", "account-1", "AccountOpened", "--url", db)
    result = cli("append", "account-1", "Touched", "--expected-version", "5", "--url", db)
    assert result.exit_code == 3
    assert "error: stream 'account-1': expected version 5, actual version 0" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.output
    assert head(db) == 1


def test_append_with_an_unknown_expected_version_exits_2(cli: Cli, db: str) -> None:
    result = cli("append", "account-1", "Touched", "--expected-version", "latest", "--url", db)
    assert result.exit_code == 2
    assert "error: --expected-version: must be any, no-stream, exists" in result.stderr


def test_append_with_a_negative_expected_version_exits_2(cli: Cli, db: str) -> None:
    result = cli("append", "account-1", "Touched", "--expected-version", "-1", "--url", db)
    assert result.exit_code == 2


def test_append_with_a_malformed_event_id_exits_2_without_creating_the_store(
    cli: Cli, db: str
) -> None:
    result = cli("append", "account-1", "Touched", "--event-id", "not-a-uuid", "--url", db)
    assert result.exit_code == 2
    assert not Path(db).exists()


def test_append_with_an_unknown_url_scheme_exits_2(cli: Cli) -> None:
    result = cli("append", "account-1", "Touched", "--url", "mongodb://localhost")
    assert result.exit_code == 2
    assert "unknown scheme 'mongodb'" in result.stderr


def _nested_json(depth: int) -> str:
    return '{"a":' + "[" * (depth - 1) + "1" + "]" * (depth - 1) + "}"


def test_append_of_data_nested_to_the_limit_is_stored(cli: Cli, db: str) -> None:
    result = cli("append", "deep-1", "Nested", _nested_json(MAX_NESTING_DEPTH), "--url", db)
    assert result.exit_code == 0, result.output
    assert only_events(db, "deep-1")[0].data == json.loads(_nested_json(MAX_NESTING_DEPTH))
    logged = cli("log", "--json", "--url", db)
    assert logged.exit_code == 0, logged.output
    assert json.loads(logged.stdout)["data"] == json.loads(_nested_json(MAX_NESTING_DEPTH))


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 996, 10_000])
@pytest.mark.parametrize("option", ["DATA_JSON", "--metadata"])
def test_append_of_json_nested_beyond_the_limit_exits_2_naming_limit_and_depth(
    cli: Cli, db: str, depth: int, option: str
) -> None:
    text = _nested_json(depth)
    args = [text] if option == "DATA_JSON" else ["{}", "--metadata", text]
    result = cli("append", "deep-1", "Nested", *args, "--url", db)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        f"error: {option}: nests objects and arrays {depth} levels deep, over the limit of "
        f"{MAX_NESTING_DEPTH} levels"
    )
    assert "Traceback" not in result.output
    assert not Path(db).exists() or head(db) == 0
