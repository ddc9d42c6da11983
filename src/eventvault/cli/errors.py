"""How the command line reports failures: one table of exit codes, one red line, a hint.

Every command runs inside `reporting_errors`, the one place that turns an exception into an
exit code. The table is ordered from the most specific class to the most general; the first
class an error is an instance of gives its code. Nothing reaches the user as a traceback, unless
`EVENTVAULT_TRACEBACK=1` asks for one to diagnose a defect.
"""

from __future__ import annotations

import enum
import functools
import os
import traceback
from collections.abc import Callable
from typing import Final, ParamSpec

import typer
from rich.console import Console
from rich.text import Text

from eventvault import errors
from eventvault.errors import (
    BadInputError,
    ConflictError,
    CorruptEventError,
    DatabaseLockedError,
    EventVaultError,
    ExportFormatError,
    HashChainError,
    ImportFileError,
    IncompatibleSchemaError,
    IncompleteExportError,
    IntegrityError,
    InvalidURLError,
    MigrationRequiredError,
    NotAnEventVaultDatabaseError,
    NotEmptyError,
    NotFoundError,
    PayloadTooDeepError,
    PayloadTooLargeError,
    ProjectionStateError,
    ReadOnlyStoreError,
    RegistryChangeConflictError,
    SchemaSupportMissingError,
    SchemaValidationError,
    SchemaVersionError,
    StorageError,
    StorageFullError,
    StoreClosedError,
    StoreUnavailableError,
    StreamNotFoundError,
    UnknownProjectionError,
    UnregisteredSchemaError,
    UnverifiableExportError,
    UpcasterError,
    WrongExpectedVersionError,
)

__all__ = [
    "EXIT_CODES",
    "CommandLineError",
    "ExitCode",
    "StoreNotFoundError",
    "StreamNotFoundError",
    "exit_code_for",
    "hint_for",
    "report_error",
    "reporting_errors",
]

P = ParamSpec("P")

TRACEBACK_ENV: Final = "EVENTVAULT_TRACEBACK"
"""Set to 1 to see the traceback of an unexpected error (a defect) besides the red line."""


class CommandLineError(BadInputError, ValueError):
    """A command-line argument or option is malformed, such as JSON that does not parse.

    Attributes:
        argument: the argument or option at fault, as the user typed it (`DATA_JSON`,
            `--metadata`).
        reason: what is wrong with it.
        hint: what to do about it, when there is a useful suggestion.
    """

    def __init__(self, argument: str, reason: str, *, hint: str | None = None) -> None:
        self.argument = argument
        self.reason = reason
        self.hint = hint
        super().__init__(f"{argument}: {reason}")


class StoreNotFoundError(errors.StoreNotFoundError):
    """A command that only reads was pointed at a SQLite file that does not exist.

    Reading commands never create a store, so a mistyped `--url` is reported rather than
    answered with an empty, newly created file.

    Attributes:
        url: the URL given.
        path: the file that does not exist.
        argument: the argument that named it (`--url`, `SOURCE_URL`).
    """

    def __init__(self, url: str, path: str, *, argument: str = "--url") -> None:
        super().__init__(url, path)
        self.argument = argument


class ExitCode(enum.IntEnum):
    """The exit statuses of `eventvault`, one per kind of failure."""

    OK = 0
    FAILURE = 1
    BAD_INPUT = 2
    CONFLICT = 3
    NOT_FOUND = 4
    INTEGRITY = 5
    NOT_EMPTY = 6
    INCOMPATIBLE = 7
    STORAGE = 8


EXIT_CODES: Final[tuple[tuple[type[BaseException], ExitCode], ...]] = (
    # Errors whose code differs from their tier's.
    (IncompatibleSchemaError, ExitCode.INCOMPATIBLE),
    (NotEmptyError, ExitCode.NOT_EMPTY),
    (NotAnEventVaultDatabaseError, ExitCode.INCOMPATIBLE),
    (SchemaVersionError, ExitCode.INCOMPATIBLE),
    (MigrationRequiredError, ExitCode.INCOMPATIBLE),
    (StoreClosedError, ExitCode.FAILURE),
    # The tiers of eventvault.errors.
    (BadInputError, ExitCode.BAD_INPUT),
    (ConflictError, ExitCode.CONFLICT),
    (NotFoundError, ExitCode.NOT_FOUND),
    (IntegrityError, ExitCode.INTEGRITY),
    (StorageError, ExitCode.STORAGE),
    # The operating system's.
    (FileNotFoundError, ExitCode.NOT_FOUND),
    (OSError, ExitCode.STORAGE),
    (EventVaultError, ExitCode.FAILURE),
)
"""Exception class to exit code, most specific first: the first match wins."""


def _url_hint(exc: BaseException) -> str | None:
    # Only a URL that names no engine needs the list of forms; otherwise the reason says it.
    reason = getattr(exc, "reason", "")
    if "scheme" in reason or "'://'" in reason or "non-empty str" in reason:
        return "use a file path, sqlite:///path/to.db, memory:// or postgresql://..."
    return None


def _foreign_store_hint(exc: BaseException) -> str | None:
    # The reason for a folder or an empty file already says what to do, and PostgreSQL's how
    # to create the store in the schema.
    if str(getattr(exc, "reason", "")).startswith(("it is a folder", "it is an empty file")):
        return None
    if str(getattr(exc, "location", "")).startswith(("postgresql:", "postgres:")):
        return None
    # SQLite's SQLITE_CORRUPT: a database whose pages were damaged, most likely a store.
    if "malformed" in str(getattr(exc, "reason", "")):
        return (
            "the file is damaged: restore the store from a backup (`eventvault import`); "
            "keep the damaged file until then"
        )
    return "check --url: the file belongs to another application"


def _store_not_found_hint(exc: BaseException) -> str:
    if getattr(exc, "argument", "--url") == "--url":
        return "check --url (or EVENTVAULT_URL); `eventvault append` creates a store"
    return (
        f"check {getattr(exc, 'argument', 'the URL')}: it names the store to read, which must exist"
    )


def _export_format_hint(exc: BaseException) -> str:
    if getattr(exc, "found", None) is None:
        return "an import file is written by `eventvault export`"
    return "upgrade eventvault to read this file"


_HINTS: Final[
    tuple[tuple[type[BaseException], str | Callable[[BaseException], str | None]], ...]
] = (
    (InvalidURLError, _url_hint),
    (PayloadTooLargeError, "`eventvault append --max-event-bytes N` raises the limit"),
    (PayloadTooDeepError, "flatten the payload, or store its deepest part as a JSON string"),
    (
        SchemaValidationError,
        "`eventvault schema show TYPE VERSION` prints the schema the data must match",
    ),
    (
        UnregisteredSchemaError,
        "`eventvault schema list` shows what is registered; `eventvault schema register TYPE "
        "FILE` adds a schema",
    ),
    (
        IncompatibleSchemaError,
        "register it under a new event type, make the change compatible, or set the type's "
        "mode with `eventvault schema mode TYPE MODE` (an upcaster then bridges the versions)",
    ),
    (
        RegistryChangeConflictError,
        "another process changed the registry at the same moment: `eventvault schema list`, "
        "then retry",
    ),
    (UpcasterError, "fix the upcaster or its examples; nothing was registered"),
    (SchemaSupportMissingError, "pip install 'eventvault[schema]'"),
    (
        WrongExpectedVersionError,
        "see the stream's version with `eventvault read STREAM --backwards --limit 1`, "
        "or pass --expected-version any",
    ),
    (errors.StoreNotFoundError, _store_not_found_hint),
    (StreamNotFoundError, "`eventvault streams` lists the streams that have events"),
    (
        HashChainError,
        "the events were changed after they were recorded; export them again from the source",
    ),
    (
        CorruptEventError,
        "the store's bytes were changed outside eventvault; restore it from a backup or export",
    ),
    (
        UnverifiableExportError,
        "a file written by eventvault 0.1 has no closing record: pass --expect-head POS (the "
        "source's head position, as `eventvault stats` showed it) or --expect-count N, and it "
        "is imported only if it matches exactly",
    ),
    (
        IncompleteExportError,
        "nothing was written to the target; export (or copy) the source again and let it finish",
    ),
    (ExportFormatError, _export_format_hint),
    (
        ImportFileError,
        "an import file holds a whole log, one event per line, as `eventvault export` writes it "
        "without --after",
    ),
    (NotEmptyError, "choose a new file or URL for the target"),
    (
        UnknownProjectionError,
        "`eventvault projections list --module MODULE` lists the projections by name",
    ),
    (
        ProjectionStateError,
        "`eventvault projections status --module MODULE` shows its state and the event it "
        "stopped at",
    ),
    (NotAnEventVaultDatabaseError, _foreign_store_hint),
    (
        ReadOnlyStoreError,
        "the reading commands (read, log, streams, stats, export) work on a read-only store; "
        "to write, make the file and its folder writable",
    ),
    (
        StorageFullError,
        "nothing of the failed write was stored; make room and run the command again",
    ),
    (SchemaVersionError, "upgrade eventvault to open this store"),
    (MigrationRequiredError, "run `eventvault migrate URL` as the role that owns the schema"),
    (
        StoreUnavailableError,
        "check that the database server runs and that the URL's host and port are right, or "
        "retry later (PostgreSQL: ?unavailable_timeout=SECONDS sets how long a call waits)",
    ),
    (
        DatabaseLockedError,
        "another process holds the write lock; retry, or raise ?busy_timeout=SECONDS in the URL",
    ),
)


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code of an error, from `EXIT_CODES`.

    Args:
        exc: the error.

    Returns:
        The code of the first class in the table that `exc` is an instance of; `FAILURE` when
        none is.
    """
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return ExitCode.FAILURE


def hint_for(exc: BaseException) -> str | None:
    """A suggestion of what to do about an error, when there is a useful one.

    Args:
        exc: the error.

    Returns:
        One line of advice, or None.
    """
    if isinstance(exc, CommandLineError):
        return exc.hint
    if isinstance(exc.__cause__, HashChainError):
        # An import names the line of a changed event by wrapping the HashChainError.
        exc = exc.__cause__
    for cls, hint in _HINTS:
        if isinstance(exc, cls):
            return hint if isinstance(hint, str) else hint(exc)
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, EventVaultError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename is not None else ""
        return f"{exc.strerror}{where}"
    return f"unexpected {type(exc).__name__}: {exc}"


def report_error(exc: BaseException, console: Console | None = None) -> ExitCode:
    """Print an error as one red line on stderr, with a hint line where one helps.

    Args:
        exc: the error.
        console: where to print; a console on stderr when None.

    Returns:
        The exit code the process should end with.
    """
    console = console or Console(stderr=True, highlight=False, soft_wrap=True)
    code = exit_code_for(exc)
    console.print(Text(f"error: {_describe(exc)}", style="bold red"), soft_wrap=True)
    hint = hint_for(exc)
    if hint is None and not isinstance(exc, (EventVaultError, OSError)):
        hint = f"this is a defect in eventvault; set {TRACEBACK_ENV}=1 to see the traceback"
    if hint is not None:
        console.print(Text(f"hint: {hint}", style="yellow"), soft_wrap=True)
    if os.environ.get(TRACEBACK_ENV) == "1":
        console.print(Text("".join(traceback.format_exception(exc)), style="dim"))
    return code


def reporting_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Wrap a command so that an error becomes a red line on stderr and its exit code.

    Usage errors of the parser (a missing argument, an option of the wrong type) are raised
    before the command runs and keep Typer's own report and exit code 2; a broken pipe
    (`eventvault log --json | head`) is left to Typer, which ends quietly.

    Args:
        command: the command's function.

    Returns:
        The function, with the same signature, reporting its errors by `EXIT_CODES`.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except (typer.TyperException, typer.Exit, typer.Abort, BrokenPipeError):
            raise
        except Exception as exc:
            raise typer.Exit(report_error(exc)) from exc

    return run
