"""The seam: tables of a feature beside the events, in the store's own transaction.

A feature that needs storage of its own (snapshots, projection checkpoints and read models, the
schema registry, the audit tree) declares a `Component`: a name and versioned migrations for
each SQL dialect. `EventStore.use(component)` brings the component's tables up to date (where the
store may migrate), and `EventStore.run_transaction(work)` runs `work(tx)` in one transaction on
the store's own database: `tx` reads and writes the component's rows and appends events, all
committed together or not at all, with every guarantee of an ordinary append (expected version,
idempotency, order, hash chain, notification).

Features never reach an engine another way; they import this module and the store protocol,
never an engine or a driver (DESIGN.md section 2, enforced by import-linter).
"""

from __future__ import annotations

import abc
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Final, Literal, TypeAlias, TypeVar

from eventvault.errors import (
    DuplicateEventIdError,
    InvalidArgumentError,
    TransactionUsageError,
    WrongExpectedVersionError,
)
from eventvault.serialization import EncodedEvent, validate_stream_name
from eventvault.store._append import PendingAppend, prepare, prepare_many
from eventvault.types import AppendResult, ExpectedVersion, NewEvent, StreamAppend

__all__ = [
    "CORE_COMPONENT",
    "AppendValidator",
    "Component",
    "Dialect",
    "Migration",
    "SQLRow",
    "Transaction",
    "check_finished",
    "known_components",
    "load_migrations",
    "read_versions",
    "register_component",
]

Dialect: TypeAlias = Literal["sqlite", "postgresql"]
"""The SQL a component's statements are written in. The in-memory engine speaks `sqlite`: it
keeps component tables in a private in-memory SQLite database."""

DIALECTS: Final[tuple[Dialect, ...]] = ("sqlite", "postgresql")
SQLRow: TypeAlias = tuple[Any, ...]
"""A row of a component table, its values as the database driver gives them."""
AppendValidator: TypeAlias = Callable[[str, Sequence[EncodedEvent]], None]
"""A check of one stream's events before they are written: called with the stream name and
the events as validated and encoded (`EncodedEvent.data` holds the payload's JSON bytes); it
raises an `InvalidEventError` naming the event's index to refuse the whole append. A feature
installs one with `EventStore.set_append_validator` (the schema registry does)."""
CORE_COMPONENT: Final = "eventvault"
"""The name under which the store's own tables (the log) are versioned."""
_T = TypeVar("_T")
_COMPONENT_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,62}")
_SCHEMA_MARK: Final = "{schema}"


@dataclass(frozen=True, slots=True)
class Migration:
    """One version of a component's tables in one dialect: statements run in order, in one
    transaction, exactly once per store.

    Attributes:
        version: 1, 2, ...: the version the component is at once these statements have run.
        statements: SQL statements. `{schema}` stands for the schema that holds the store's
            tables (on SQLite, `main`).
    """

    version: int
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Component:
    """A feature's tables beside the events.

    Args:
        name: a lower-case identifier, unique in a store (`snapshots`, `projections`).
        migrations: per dialect, the migrations in version order (1, 2, ... without gaps).
            A component offers every dialect (`sqlite` and `postgresql`).

    Raises:
        InvalidArgumentError: a bad name, a missing dialect, or versions that are not 1, 2, ...
    """

    name: str
    migrations: Mapping[Dialect, tuple[Migration, ...]] = field(hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _COMPONENT_NAME.fullmatch(self.name):
            raise InvalidArgumentError(
                "name",
                self.name,
                f"must be a lower-case identifier of at most 63 characters, not {self.name!r}",
            )
        if self.name == CORE_COMPONENT:
            raise InvalidArgumentError(
                "name", self.name, f"{CORE_COMPONENT!r} is the store's own tables' name"
            )
        for dialect in DIALECTS:
            versions = [m.version for m in self.migrations.get(dialect, ())]
            if not versions or versions != list(range(1, len(versions) + 1)):
                raise InvalidArgumentError(
                    "migrations",
                    versions,
                    f"of component {self.name!r} for {dialect} must be versions 1, 2, ... "
                    f"without gaps, not {versions}",
                )
        counts = {len(self.migrations[dialect]) for dialect in DIALECTS}
        if len(counts) != 1:
            raise InvalidArgumentError(
                "migrations",
                sorted(counts),
                f"of component {self.name!r}: every dialect needs the same versions",
            )

    @property
    def version(self) -> int:
        """The newest version of the component's tables."""
        return len(self.migrations["sqlite"])

    def pending(self, dialect: Dialect, current: int) -> tuple[Migration, ...]:
        """The migrations a store at version `current` still needs, in order."""
        return tuple(m for m in self.migrations[dialect] if m.version > current)


def read_versions(root: Traversable) -> tuple[Migration, ...]:
    """Read migrations laid out as `<root>/<NNNN>/<file>.sql`: one directory per version, one
    SQL object per file, run in file name order.

    Returns:
        The migrations in version order (empty when `root` is not a directory).
    """
    versions: list[Migration] = []
    if root.is_dir():
        for entry in sorted(root.iterdir(), key=lambda item: item.name):
            if entry.is_dir() and entry.name.isdigit():
                files = sorted(
                    (item for item in entry.iterdir() if item.name.endswith(".sql")),
                    key=lambda item: item.name,
                )
                statements = tuple(f.read_text(encoding="utf-8") for f in files)
                versions.append(Migration(int(entry.name), statements))
    return tuple(versions)


def load_migrations(package: str, folder: str) -> dict[Dialect, tuple[Migration, ...]]:
    """Read a component's migrations from a package's data files.

    The layout is `<folder>/<dialect>/<NNNN>/<file>.sql` (see `read_versions`): the layout of
    the store's own migrations, once per dialect.

    Args:
        package: the package that holds the files, e.g. `eventvault.aggregates`.
        folder: the folder inside it, e.g. `migrations`.

    Returns:
        The migrations per dialect, for `Component`.
    """
    root = resources.files(package).joinpath(folder)
    return {dialect: read_versions(root.joinpath(dialect)) for dialect in DIALECTS}


def with_schema(statement: str, schema: str) -> str:
    """A statement with `{schema}` replaced by the (quoted) schema name."""
    return statement.replace(_SCHEMA_MARK, schema) if _SCHEMA_MARK in statement else statement


_registry: dict[str, Component] = {}
_registry_lock = threading.Lock()


def register_component(component: Component) -> Component:
    """Make a component known to `eventvault migrate` and to `known_components`.

    Features register their components when their module is imported. Registering the same
    component again is harmless.

    Returns:
        The component, so that a module can write `SNAPSHOTS = register_component(...)`.

    Raises:
        InvalidArgumentError: another component is registered under the same name.
    """
    with _registry_lock:
        existing = _registry.get(component.name)
        if existing is not None and existing != component:
            raise InvalidArgumentError(
                "component", component.name, f"{component.name!r}: another one has that name"
            )
        _registry[component.name] = component
    return component


def known_components() -> list[Component]:
    """Every registered component, by name."""
    with _registry_lock:
        return [_registry[name] for name in sorted(_registry)]


# -- transactions ----------------------------------------------------------------------------

_active = threading.local()


def active_transaction_stores() -> set[int]:
    """The ids of the stores whose transaction work runs on this thread right now."""
    stores: set[int] | None = getattr(_active, "stores", None)
    if stores is None:
        stores = _active.stores = set()
    return stores


class Transaction(abc.ABC):
    """A transaction on a store's own database, handed to `run_transaction`'s work.

    Everything done through it commits when the work returns, or is rolled back when it
    raises: component rows and events together. Statements use the dialect's placeholders
    (`?` on SQLite and the in-memory engine, `%s` on PostgreSQL) and `{schema}` for the schema
    of the store's tables.

    A statement that fails ends the transaction on every engine (PostgreSQL cannot go on after
    one): let its error propagate. An append refused by its checks (a wrong expected version, a
    stored event id elsewhere) writes nothing and leaves the transaction usable.

    Attributes:
        dialect: the SQL dialect of the store's database.
    """

    dialect: Dialect
    append_validator: AppendValidator | None = None
    """The store's append validator, set by `EventStore.run_transaction` (None: none)."""

    def __init__(self, max_event_bytes: int) -> None:
        self._max_event_bytes = max_event_bytes
        self._failure: BaseException | None = None

    @property
    def failure(self) -> BaseException | None:
        """The error of the statement that failed, which ends the transaction; None if none."""
        return self._failure

    def _usable(self) -> None:
        if self._failure is not None:
            raise TransactionUsageError(
                f"a statement of this transaction failed ({self._failure}); it can only be "
                "rolled back: let the error propagate out of the work"
            )

    def _step(self, step: Callable[[], _T]) -> _T:
        """Run one step of the transaction; a failure ends the transaction."""
        self._usable()
        try:
            return step()
        except BaseException as exc:
            self._failure = exc
            raise

    def fetch(self, statement: str, params: Sequence[object] = ()) -> list[SQLRow]:
        """Run a query and return its rows.

        Raises:
            StorageError: the statement failed; the transaction will be rolled back.
        """
        return self._step(lambda: self._fetch(statement, params))

    def execute(self, statement: str, params: Sequence[object] = ()) -> int:
        """Run a statement that writes; returns how many rows it changed.

        Raises:
            StorageError: the statement failed; the transaction will be rolled back.
        """
        return self._step(lambda: self._execute(statement, params))

    def execute_many(self, statement: str, params: Sequence[Sequence[object]]) -> int:
        """Run a statement once per parameter row; returns how many rows it changed in all.

        Raises:
            StorageError: the statement failed; the transaction will be rolled back.
        """
        return self._step(lambda: self._execute_many(statement, params))

    def get_stream_version(self, stream_name: str) -> int | None:
        """The version of a stream as this transaction sees it (its own appends included).

        Raises:
            InvalidStreamNameError: the name breaks the naming rules.
        """
        self._usable()
        validate_stream_name(stream_name)
        return self._step(lambda: self._stream_version(stream_name))

    def append_to_stream(
        self,
        stream_name: str,
        events: Sequence[NewEvent],
        *,
        expected_version: ExpectedVersion,
    ) -> AppendResult:
        """Append events in this transaction, as `EventStore.append_to_stream` does.

        The events commit with the rest of the transaction. An append refused by its checks
        raises here and writes nothing; the work may catch the error and go on.
        """
        pending = prepare(stream_name, events, expected_version, self._max_event_bytes)
        if self.append_validator is not None:
            self.append_validator(pending.stream_name, pending.events)
        return self._checked_append([pending])[0]

    def append_to_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        """Append to several streams in this transaction, as `EventStore.append_to_streams`."""
        pending = prepare_many(appends, self._max_event_bytes)
        if self.append_validator is not None:
            validate_appends(self.append_validator, pending)
        return self._checked_append(pending)

    def _checked_append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        self._usable()
        try:
            return self._append(appends)
        except (WrongExpectedVersionError, DuplicateEventIdError):
            raise  # decided before anything was written: the transaction goes on
        except BaseException as exc:
            self._failure = exc
            raise

    # -- what an engine supplies -------------------------------------------------------------

    @abc.abstractmethod
    def _fetch(self, statement: str, params: Sequence[object]) -> list[SQLRow]:
        """Run a query on the transaction's connection."""

    @abc.abstractmethod
    def _execute(self, statement: str, params: Sequence[object]) -> int:
        """Run a writing statement on the transaction's connection; its row count."""

    @abc.abstractmethod
    def _execute_many(self, statement: str, params: Sequence[Sequence[object]]) -> int:
        """Run a statement per parameter row; the total row count."""

    @abc.abstractmethod
    def _stream_version(self, stream_name: str) -> int | None:
        """A stream's version inside the transaction."""

    @abc.abstractmethod
    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        """Store validated appends in this transaction, all or none; one result per append.
        Raises `WrongExpectedVersionError` / `DuplicateEventIdError` before writing anything."""


def validate_appends(validator: AppendValidator, appends: Sequence[PendingAppend]) -> None:
    """Run an append validator over every stream of an append, before anything is written.

    Raises:
        InvalidEventError: whatever the validator raises for the first event it refuses.
    """
    for append in appends:
        validator(append.stream_name, append.events)


def check_finished(tx: Transaction) -> None:
    """Refuse to commit a transaction whose work swallowed the error of a failed statement.

    Raises:
        TransactionUsageError: a statement failed and the work returned anyway.
    """
    if tx.failure is not None:
        raise TransactionUsageError(
            f"a statement of the transaction failed ({tx.failure}) and the work returned "
            "anyway; nothing was committed"
        ) from tx.failure


def guard_reentry(store_id: int, location: str) -> None:
    """Refuse a store call made from inside that store's own transaction work.

    On SQLite the work runs on the store's only writer: an append through the store itself
    would wait for that writer forever; on the other engines it would commit apart from the
    transaction. Either way the work meant `tx.append_to_stream`.

    Raises:
        TransactionUsageError: the call came from inside the work.
    """
    if store_id in active_transaction_stores():
        raise TransactionUsageError(
            f"store {location!r}: append through the transaction (tx.append_to_stream) inside "
            "run_transaction's work, not through the store"
        )


def run_work(store_id: int, work: Callable[[Transaction], object], tx: Transaction) -> object:
    """Run a transaction's work with the re-entry guard set for its store on this thread."""
    stores = active_transaction_stores()
    stores.add(store_id)
    try:
        return work(tx)
    finally:
        stores.discard(store_id)
