"""The exit-code table and how errors are reported: one red line, a hint, no traceback."""

from __future__ import annotations

import io
import sqlite3
import uuid
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from eventvault import errors
from eventvault.cli.errors import (
    CommandLineError,
    ExitCode,
    StoreNotFoundError,
    exit_code_for,
    hint_for,
    report_error,
    reporting_errors,
)
from eventvault.errors import (
    ERROR_KINDS,
    AggregateDefinitionError,
    AggregateNotFoundError,
    AggregateQueryError,
    AuthenticationError,
    BadInputError,
    ConflictError,
    CorruptEventError,
    DatabaseLockedError,
    DuplicateEventIdError,
    EventDecodeError,
    EventRegistrationError,
    EventVaultError,
    ExportFormatError,
    HashChainError,
    ImportFileError,
    IncompatibleSchemaError,
    IncompleteExportError,
    IntegrityError,
    InvalidArgumentError,
    InvalidEventError,
    InvalidExpectedVersionError,
    InvalidSchemaError,
    InvalidStreamNameError,
    InvalidURLError,
    LeaseLostError,
    MigrationRequiredError,
    MissingHandlerError,
    NotAnEventVaultDatabaseError,
    NotEmptyError,
    NotFoundError,
    NotSupportedError,
    PayloadTooDeepError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ProjectionDefinitionError,
    ProjectionStateError,
    ReadOnlyStoreError,
    RegistryChangeConflictError,
    SchemaRegistrationError,
    SchemaRegistryError,
    SchemaSupportMissingError,
    SchemaValidationError,
    SchemaVersionError,
    StorageError,
    StorageFullError,
    StoreClosedError,
    StoreForkedError,
    StoreUnavailableError,
    StreamNotFoundError,
    TransactionUsageError,
    UnknownEventTypeError,
    UnknownProjectionError,
    UnregisteredEventError,
    UnregisteredSchemaError,
    UnverifiableExportError,
    UpcasterError,
    WrongExpectedVersionError,
    error_kind,
)
from eventvault.store.sqlite import SCHEMA_VERSION

from .cli_harness import Cli, seed

ERRORS_AND_CODES: list[tuple[BaseException, int]] = [
    # bad input: 2
    (BadInputError("bad input"), 2),
    (CommandLineError("DATA_JSON", "not valid JSON"), 2),
    (InvalidStreamNameError("", "must not be empty"), 2),
    (InvalidEventError("data must be a JSON object"), 2),
    (PayloadTooLargeError(2_000_000, 1_048_576), 2),
    (PayloadTooDeepError("data", 40, 32), 2),
    (InvalidExpectedVersionError("latest"), 2),
    (InvalidURLError("mongodb://x", "unknown scheme"), 2),
    (InvalidArgumentError("limit", -1, "must be an int >= 0 or None, not -1"), 2),
    (AggregateQueryError("version and as_of together"), 2),
    (EventRegistrationError(int, "not a msgspec.Struct"), 2),
    (UnregisteredEventError(int), 2),
    (AggregateDefinitionError(int, "no category"), 2),
    (MissingHandlerError(int, str), 2),
    (TransactionUsageError("appended through the store inside the work"), 2),
    (AuthenticationError("the bearer token is unknown or revoked"), 2),
    (PermissionDeniedError("the token 'ada' lacks the 'write' scope"), 2),
    (NotSupportedError("run_transaction", "http", "it runs beside the server's store"), 2),
    # conflict: 3, and 6 for a target that is not empty
    (ConflictError("conflict"), 3),
    (WrongExpectedVersionError("account-1", 5, 1), 3),
    (DuplicateEventIdError(uuid.uuid4(), "account-1", "account-2", 0), 3),
    (NotEmptyError("target.db", 4), 6),
    # not found: 4
    (NotFoundError("not found"), 4),
    (StoreNotFoundError("missing.db", "missing.db"), 4),
    (errors.StoreNotFoundError("missing.db", "missing.db"), 4),
    (StreamNotFoundError("account-1"), 4),
    (AggregateNotFoundError("account-42"), 4),
    (UnknownEventTypeError("Gone", 1, "account-42", 3), 4),
    (FileNotFoundError(2, "No such file or directory", "x.jsonl"), 4),
    # integrity: 5
    (IntegrityError("integrity"), 5),
    (HashChainError("account-1", 0, "a" * 64, "b" * 64), 5),
    (ImportFileError("not valid JSON", line=3), 5),
    (CorruptEventError("account-1", 3, "the stored data is not a JSON object"), 5),
    (EventDecodeError("account-42", 3, "Deposited", 1, int, "Object missing field `amount`"), 5),
    (IncompleteExportError("the closing record is missing"), 5),
    (UnverifiableExportError("the file has no header", line=1), 5),
    (ExportFormatError("export format version 3", found=3, supported=2), 5),
    # storage: 8; 7 for a database that is not a store, is newer or needs migrating; 1 for a
    # closed store
    (StorageError("disk I/O error"), 8),
    (DatabaseLockedError("x.db stayed locked"), 8),
    (StoreUnavailableError("postgresql://db/x", "cannot connect to the server at db:5432"), 8),
    (PermissionError(13, "Permission denied", "x.jsonl"), 8),
    (NotAnEventVaultDatabaseError("x.db", "a SQLite database of another application"), 7),
    (SchemaVersionError("x.db", 9, 1), 7),
    (MigrationRequiredError("postgresql://db/x", "snapshots", 0, 1), 7),
    (ReadOnlyStoreError("x.db", "its folder is not writable"), 8),
    (StorageFullError("x.db", "the disk is full"), 8),
    (StoreClosedError("x.db"), 1),
    (StoreForkedError("x.db", "the engine does not carry a store across fork()", 10, 11), 2),
    # the schema registry: bad input 2, a change that breaks the mode 7, a race 3
    (SchemaRegistryError("the registry refuses it"), 2),
    (InvalidSchemaError("AccountOpened", "#/type", 'not "object"'), 2),
    (IncompatibleSchemaError("AccountOpened", 2, "BACKWARD", ["#/properties/owner: ..."]), 7),
    (SchemaRegistrationError("AccountOpened", "version 0 is out of range"), 2),
    (RegistryChangeConflictError("AccountOpened", "version 2 was registered meanwhile"), 3),
    (SchemaValidationError("account-1", 0, "AccountOpened", 1, [("/owner", "not a string")]), 2),
    (UnregisteredSchemaError("account-1", 0, "AccountOpened", 3, [1, 2]), 2),
    (UpcasterError("AccountOpened", 1, "a gap in the chain"), 2),
    (SchemaSupportMissingError("validating events"), 2),
    # projections
    (ProjectionDefinitionError(int, "declare name"), 2),
    (ProjectionStateError("balances v1", "it has not failed: nothing to skip"), 3),
    (LeaseLostError("balances", 1, 7), 3),
    (UnknownProjectionError("balance", ["balances"]), 4),
    # the rest: 1
    (EventVaultError("something else"), 1),
    (RuntimeError("a defect"), 1),
]
"""A representative of every error class, with the exit code docs/cli.md gives it."""


@pytest.mark.parametrize(
    ("error", "code"), ERRORS_AND_CODES, ids=[type(e).__name__ for e, _ in ERRORS_AND_CODES]
)
def test_each_error_class_maps_to_its_exit_code(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_every_error_class_of_eventvault_is_in_the_table() -> None:
    import eventvault.errors as errors

    covered = {type(error) for error, _ in ERRORS_AND_CODES}
    declared = {
        value
        for value in (getattr(errors, name) for name in errors.__all__)
        if isinstance(value, type)
    }
    assert declared <= covered


def test_the_cli_gives_every_error_of_a_tier_the_tiers_code_unless_listed_apart() -> None:
    apart = {
        IncompatibleSchemaError,
        NotEmptyError,
        NotAnEventVaultDatabaseError,
        SchemaVersionError,
        MigrationRequiredError,
        StoreClosedError,
    }
    codes = {"bad-input": 2, "conflict": 3, "not-found": 4, "integrity": 5, "storage": 8}
    for error, code in ERRORS_AND_CODES:
        kind = error_kind(error)
        if kind is not None and type(error) not in apart:
            assert code == codes[kind], error
    assert set(codes) == set(ERROR_KINDS.values())


def report(error: BaseException) -> tuple[ExitCode, str]:
    console = Console(record=True, width=60, file=io.StringIO())
    code = report_error(error, console)
    return code, console.export_text()


def test_report_prints_one_error_line_and_one_hint_line() -> None:
    code, text = report(WrongExpectedVersionError("account-1", 5, 1))
    lines = text.splitlines()
    assert code == 3
    assert lines[0] == "error: stream 'account-1': expected version 5, actual version 1"
    assert lines[1].startswith("hint: ")
    assert len(lines) == 2


def test_report_keeps_a_long_message_on_one_line() -> None:
    _, text = report(InvalidURLError("x" * 200, "unknown scheme"))
    assert len(text.splitlines()) == 2


def test_report_of_a_changed_event_in_an_import_gives_the_hash_hint() -> None:
    error = ImportFileError("hash mismatch", line=2)
    error.__cause__ = HashChainError("account-1", 0, "a" * 64, "b" * 64)
    assert "changed after they were recorded" in (hint_for(error) or "")


def test_a_url_that_names_no_engine_gets_the_list_of_forms_and_a_bad_option_does_not() -> None:
    assert "postgresql://" in (hint_for(InvalidURLError("x", "unknown scheme 'ftp'")) or "")
    bad_schema = InvalidURLError("postgresql://h/db?schema=BAD", "schema must be lower-case")
    assert hint_for(bad_schema) is None


def test_a_foreign_file_and_an_empty_postgres_schema_get_different_hints() -> None:
    file_hint = hint_for(NotAnEventVaultDatabaseError("notes.db", "no eventvault tables"))
    assert file_hint == "check --url: the file belongs to another application"
    schema = NotAnEventVaultDatabaseError("postgresql://h/db", "schema 'x' holds no store")
    assert hint_for(schema) is None


def test_report_of_a_command_line_error_gives_its_own_hint() -> None:
    assert hint_for(CommandLineError("FILE", "exists", hint="pass --force")) == "pass --force"


def failing_app(error: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @reporting_errors
    def fail() -> None:
        raise error

    return app


def test_an_unexpected_error_exits_1_without_a_traceback() -> None:
    result = CliRunner().invoke(failing_app(RuntimeError("boom")), [])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "error: unexpected RuntimeError: boom"
    assert "EVENTVAULT_TRACEBACK=1" in result.stderr
    assert "Traceback" not in result.output


def test_an_unexpected_error_shows_its_traceback_when_asked() -> None:
    result = CliRunner().invoke(
        failing_app(RuntimeError("boom")), [], env={"EVENTVAULT_TRACEBACK": "1"}
    )
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr


def test_a_file_that_is_not_a_database_exits_7(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    result = cli("stats", "--url", str(path))
    assert result.exit_code == 7
    assert "is not an eventvault database" in result.stderr


def test_a_sqlite_database_of_another_application_exits_7(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.close()
    result = cli("append", "account-1", "AccountOpened", "--url", str(path))
    assert result.exit_code == 7
    assert "another application" in result.stderr


def test_a_store_written_by_a_newer_eventvault_exits_7(cli: Cli, db: str) -> None:
    seed(db, [("account-1", "AccountOpened", {})])
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    result = cli("stats", "--url", db)
    assert result.exit_code == 7
    assert "upgrade eventvault" in result.stderr


def test_a_store_in_a_directory_that_cannot_be_created_exits_8(cli: Cli, tmp_path: Path) -> None:
    result = cli("append", "a-1", "Happened", "--url", str(tmp_path / "no" / "such" / "dir.db"))
    assert result.exit_code == 8
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_a_log_over_damaged_stored_bytes_exits_5_naming_the_event(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    seed(str(path), [("account-1", "Opened", {}), ("account-1", "Deposited", {"amount": 5})])
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE events SET data = CAST('{\"amount\":' AS BLOB) WHERE global_position = 2"
        )
    conn.close()
    result = cli("log", "--url", str(path))
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith("error: 'account-1'@1 (global position 2): the stored data")
    assert "restore it from a backup or export" in result.stderr
