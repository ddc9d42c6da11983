"""`SchemaRegistry`: event types, their schema versions and compatibility modes, kept by the
store itself, on every engine.

The registry lives in the `schemas` component of the store's own database (the seam, ADR 0005):
one table, `schema_history`, holds every change ever made, and the registry is the fold of it
(`state.py`). Every change runs in one of the store's transactions, which reads the history,
decides, and appends one row: on SQLite the store's single writer and its write lock, on
PostgreSQL a transaction-level advisory lock, serialize changes from every process, so a change
always decides on the registry as the change before it left it. ADR 0010 says why it lives
there.
"""

from __future__ import annotations

import getpass
import json
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeVar

import msgspec

from eventvault.errors import (
    IncompatibleSchemaError,
    NotEmptyError,
    RegistryChangeConflictError,
    SchemaRegistrationError,
    StorageError,
)
from eventvault.schema.compatibility import (
    BreakingChange,
    Difference,
    Mode,
    breaking_changes,
    compare,
)
from eventvault.schema.documents import canonical_json, checked_schema, class_schema, fingerprint
from eventvault.schema.state import (
    RegistryChange,
    RegistryState,
    SchemaVersion,
    Unregistered,
    check_type_name,
    check_version,
)
from eventvault.schema.upcasting import UpcastChain, Upcasters, check_chain
from eventvault.schema.validation import SchemaEnforcer
from eventvault.serialization import from_micros, to_micros
from eventvault.store.base import EventStore
from eventvault.store.seam import (
    Component,
    Dialect,
    SQLRow,
    Transaction,
    load_migrations,
    register_component,
)

__all__ = [
    "SCHEMAS",
    "CheckReport",
    "EventClass",
    "EventClasses",
    "Registration",
    "SchemaRegistry",
    "SyncReport",
    "default_actor",
    "read_history",
]

SCHEMAS: Final = register_component(
    Component("schemas", load_migrations("eventvault.schema", "migrations"))
)
"""The registry's table: `eventvault migrate` creates it, `SchemaRegistry` uses it."""

_T = TypeVar("_T")
_LOCK_KEY: Final = 0x6576736368656D61  # "evschema": the advisory lock of registry changes
_COLUMNS: Final = "change_id, changed_at, changed_by, action, event_type, version, value"


@dataclass(frozen=True, slots=True)
class _Statements:
    history: str
    insert: str
    lock: str | None


_STATEMENTS: Final[dict[Dialect, _Statements]] = {
    "sqlite": _Statements(
        history=f"SELECT {_COLUMNS} FROM schema_history WHERE change_id > ? ORDER BY change_id",
        insert=f"INSERT INTO schema_history ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        lock=None,  # the work runs on the store's one writer, under SQLite's write lock
    ),
    "postgresql": _Statements(
        history=(
            f"SELECT {_COLUMNS} FROM {{schema}}.schema_history WHERE change_id > %s "
            "ORDER BY change_id"
        ),
        insert=(
            f"INSERT INTO {{schema}}.schema_history ({_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)"
        ),
        lock=f"SELECT pg_advisory_xact_lock({_LOCK_KEY})",
    ),
}


def default_actor() -> str:
    """Who makes a registry change when no actor is named: `user@host` of this process."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class EventClass(Protocol):
    """A class registered under an event type and version (`eventvault.aggregates.EventType`
    is one)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def cls(self) -> type[msgspec.Struct]: ...


class EventClasses(Protocol):
    """An application's event classes (`eventvault.aggregates.EventRegistry` is one): they can
    be listed, and given the checked upcasters to apply when they decode."""

    def __iter__(self) -> Any: ...

    def use_upcasts(self, chain: UpcastChain) -> None: ...


@dataclass(frozen=True, slots=True)
class Registration:
    """What a registration did.

    Attributes:
        event_type: the type.
        version: the version the schema is registered as.
        created: False when the schema was registered already (nothing was written).
    """

    event_type: str
    version: int
    created: bool


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What registering a schema would do, without doing it.

    Attributes:
        event_type: the type.
        version: the version it would be registered as (or is registered as already).
        mode: the type's compatibility mode.
        registered: whether this exact schema is registered already (as `version`).
        breaking: the changes that break the mode (empty: it can be registered).
    """

    event_type: str
    version: int
    mode: Mode
    registered: bool
    breaking: list[BreakingChange]

    @property
    def compatible(self) -> bool:
        """Whether the schema can be registered."""
        return not self.breaking


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What `SchemaRegistry.sync` did.

    Attributes:
        registered: the (type, version) pairs it registered.
        unchanged: the (type, version) pairs that were registered already with the same schema.
        upcasters: the number of upcasters checked and handed to the event classes.
    """

    registered: list[tuple[str, int]]
    unchanged: list[tuple[str, int]]
    upcasters: int


def read_history(store: EventStore) -> list[RegistryChange]:
    """Every change of a store's registry, oldest first, read from its table (which must
    exist)."""
    rows = store.query(_STATEMENTS[store.dialect].history, (0,))
    return [_change_from_row(row) for row in rows]


def _change_from_row(row: SQLRow) -> RegistryChange:
    change_id, changed_at, changed_by, action, event_type, version, value = row
    return RegistryChange(
        change_id=int(change_id),
        changed_at=from_micros(int(changed_at)),
        changed_by=str(changed_by),
        action=str(action),  # type: ignore[arg-type]
        event_type=None if event_type is None else str(event_type),
        version=None if version is None else int(version),
        value=json.loads(value),
    )


def _row_from_change(change: RegistryChange) -> tuple[object, ...]:
    value = (
        canonical_json(change.value).decode()
        if isinstance(change.value, Mapping)
        else json.dumps(change.value)
    )
    return (
        change.change_id,
        to_micros(change.changed_at),
        change.changed_by,
        change.action,
        change.event_type,
        change.version,
        value,
    )


class SchemaRegistry:
    """The schema registry of one store: event types, their versions (JSON Schema draft
    2020-12), a compatibility mode per type, and the history of every change.

    Creating it makes the registry's table ready (see `EventStore.use`). Reads use the state
    folded from the history, refreshed from the store when asked for; every change is one
    transaction of the store.

    Args:
        store: the open store that keeps the registry.
        actor: who this object's changes are recorded as, unless a call names someone else;
            default `user@host`.

    Raises:
        MigrationRequiredError: the registry's table is missing and the store may not create it
            (PostgreSQL without `?auto_migrate=true`: run `eventvault migrate URL`).
    """

    def __init__(self, store: EventStore, *, actor: str | None = None) -> None:
        store.use(SCHEMAS)
        self.store = store
        self.actor = actor or default_actor()
        self._sql = _STATEMENTS[store.dialect]
        self._state = RegistryState()
        self._state_lock = threading.Lock()
        self._enforcer = SchemaEnforcer(self.state)

    # -- reading -----------------------------------------------------------------------------

    def state(self) -> RegistryState:
        """The registry as the store holds it now (the changes since the last read are read
        and folded in).

        Returns:
            The state; treat it as read-only.
        """
        with self._state_lock:
            rows = self.store.query(self._sql.history, (self._state.last_change,))
            for row in rows:
                self._state.apply(_change_from_row(row), verify=False)
            return self._state

    def types(self) -> list[str]:
        """Every type the registry knows (with versions or only a mode), by name."""
        return sorted(self.state().types)

    def versions(self, event_type: str) -> list[SchemaVersion]:
        """Every registered version of a type, oldest first (empty for an unknown type)."""
        entry = self.state().types.get(event_type)
        return [entry.versions[v] for v in sorted(entry.versions)] if entry else []

    def get(self, event_type: str, version: int | None = None) -> SchemaVersion:
        """One registered version of a type; the newest when `version` is None.

        Raises:
            SchemaRegistrationError: the type or version is not registered.
        """
        check_type_name(event_type)
        versions = self.state().versions_of(event_type)
        if not versions:
            raise SchemaRegistrationError(event_type, "no schema is registered for this type")
        wanted = versions[-1] if version is None else check_version(event_type, version)
        found = self._state.schema(event_type, wanted)
        if found is None:
            raise SchemaRegistrationError(
                event_type,
                f"version {wanted} is not registered (registered: "
                f"{', '.join(str(v) for v in versions)})",
            )
        return found

    def mode(self, event_type: str) -> Mode:
        """A type's compatibility mode (BACKWARD unless set)."""
        return self.state().mode(check_type_name(event_type))

    def unregistered(self) -> Unregistered:
        """What an enforcing store does with events of types without a schema."""
        return self.state().unregistered

    def history(self, event_type: str | None = None) -> list[RegistryChange]:
        """Every change of the registry, oldest first; only those of one type if named."""
        changes = read_history(self.store)
        if event_type is not None:
            changes = [change for change in changes if change.event_type == event_type]
        return changes

    def diff(
        self, event_type: str, old: int, new: int
    ) -> tuple[list[Difference], list[Difference]]:
        """The differences between two versions of a type, both ways.

        Args:
            event_type: the type.
            old: one version.
            new: another.

        Returns:
            (what a reader of `new` meets in data of `old`: the backward view, what a reader of
            `old` meets in data of `new`: the forward view).

        Raises:
            SchemaRegistrationError: the type or a version is not registered.
        """
        before = self.get(event_type, old).schema
        after = self.get(event_type, new).schema
        return compare(before, after), compare(after, before)

    # -- changing ----------------------------------------------------------------------------

    def check(
        self, event_type: str, schema: Mapping[str, Any], *, version: int | None = None
    ) -> CheckReport:
        """What registering a schema would do, without registering it.

        Args:
            event_type: the type.
            schema: the JSON Schema.
            version: the version it would be registered as; None: the next one (or the version
                that holds the same schema).

        Returns:
            The report: the version, and every change that breaks the type's mode.

        Raises:
            InvalidSchemaError: the schema is not usable.
            SchemaRegistrationError: the type name or version is out of range, or the version
                is registered with another schema or does not follow the latest.
        """
        name = check_type_name(event_type)
        if version is not None:
            check_version(name, version)
        document = checked_schema(schema, name)
        state = self.state()
        number, existing = _plan_version(state, name, document, version, state.last_change)
        if existing:
            return CheckReport(name, number, state.mode(name), True, [])
        return CheckReport(name, number, state.mode(name), False, _breaking(state, name, document))

    def register(
        self,
        event_type: str,
        schema: Mapping[str, Any],
        *,
        version: int | None = None,
        actor: str | None = None,
    ) -> Registration:
        """Register a schema as a version of a type, if it keeps the type's compatibility mode.

        Registering a schema that is registered already is a no-op (the version that holds
        it is returned). Nothing is written when the schema is refused.

        Args:
            event_type: the type.
            schema: the JSON Schema (draft 2020-12, an object schema, complete in itself).
            version: the version to register it as; None: the one after the newest. A type's
                first version may be any number (the versions before it predate the registry);
                later ones follow without gaps.
            actor: who is recorded as making the change; default this registry's actor.

        Returns:
            The `Registration`.

        Raises:
            InvalidSchemaError: the schema is not usable (malformed, not an object schema, a
                `$ref` outside the document); the error names the JSON Pointer.
            IncompatibleSchemaError: it breaks the type's mode; the error lists every breaking
                change with its JSON Pointer.
            SchemaRegistrationError: the type name or version is out of range, or the version is
                registered with another schema, or does not follow the newest.
            RegistryChangeConflictError: another process registered that version meanwhile.
        """
        name = check_type_name(event_type)
        if version is not None:
            check_version(name, version)
        document = checked_schema(schema, name)
        seen = self.state().last_change
        who = actor or self.actor

        def work(tx: Transaction) -> Registration:
            state = self._locked_state(tx)
            number, existing = _plan_version(state, name, document, version, seen)
            if existing:
                return Registration(name, number, False)
            breaking = _breaking(state, name, document)
            if breaking:
                raise IncompatibleSchemaError(name, number, state.mode(name).value, breaking)
            self._write(tx, state, who, "register", name, number, document)
            return Registration(name, number, True)

        result = self._change(work, name)
        self._enforcer.forget(name)
        return result

    def set_mode(self, event_type: str, mode: Mode | str, *, actor: str | None = None) -> bool:
        """Set a type's compatibility mode (it may be set before the type's first version).

        Versions already registered are not checked again; the mode governs the next ones.

        Args:
            event_type: the type.
            mode: a `Mode`, or its name (`BACKWARD`, `FULL_TRANSITIVE`, ...).
            actor: who is recorded as making the change.

        Returns:
            False when the type had that mode already (nothing was written).

        Raises:
            SchemaRegistrationError: the type name is out of range, or the mode is not one of
                the seven.
        """
        name = check_type_name(event_type)
        chosen = _mode(name, mode)
        who = actor or self.actor

        def work(tx: Transaction) -> bool:
            state = self._locked_state(tx)
            if name in state.types and state.mode(name) is chosen:
                return False
            self._write(tx, state, who, "mode", name, None, chosen.value)
            return True

        return self._change(work, name)

    def set_unregistered(self, policy: Unregistered, *, actor: str | None = None) -> bool:
        """Set what an enforcing store does with events of types that have no schema.

        Args:
            policy: `allow` (the default: they are stored unchecked) or `refuse`.
            actor: who is recorded as making the change.

        Returns:
            False when the policy was that already.

        Raises:
            SchemaRegistrationError: the policy is neither `allow` nor `refuse`.
        """
        if policy not in ("allow", "refuse"):
            raise SchemaRegistrationError(
                None, f"the policy for unregistered types is allow or refuse, not {policy!r}"
            )
        who = actor or self.actor

        def work(tx: Transaction) -> bool:
            state = self._locked_state(tx)
            if state.unregistered == policy:
                return False
            self._write(tx, state, who, "unregistered", None, None, policy)
            return True

        changed = self._change(work, None)
        self._enforcer.forget()
        return changed

    def sync(
        self,
        events: EventClasses,
        *,
        upcasters: Upcasters | None = None,
        actor: str | None = None,
    ) -> SyncReport:
        """Register the schema of every event class of an application, check its upcasters,
        and hand them to the classes: the one call an application makes at start-up.

        Each class's schema comes from `msgspec.json.schema` (see `class_schema`). Every class
        is checked, and every upcaster (against the registry as the new versions leave it),
        before anything is written: the whole sync is registered in one transaction, or
        nothing is. Classes registered already with the same schema change nothing.

        Args:
            events: the application's event classes (an `EventRegistry`).
            upcasters: the application's upcasters, if any: checked, then given to `events`
                (`use_upcasts`) so that it decodes older versions into the newest classes.
            actor: who is recorded as making the changes.

        Returns:
            What was registered, and what was registered already.

        Raises:
            InvalidSchemaError: msgspec cannot describe a class.
            IncompatibleSchemaError: a class breaks its type's mode.
            SchemaRegistrationError: a class's version is registered with another schema, or
                does not follow the newest.
            UpcasterError: an upcaster is refused (a gap, an unregistered version, an example
                whose output fails the next version's schema).
            RegistryChangeConflictError: another process registered a version meanwhile.
        """
        planned: list[tuple[str, int, dict[str, Any]]] = []
        for entry in events:
            event_class: EventClass = entry
            document = class_schema(event_class.cls)
            name = check_type_name(event_class.name)
            planned.append(
                (name, check_version(name, event_class.version), checked_schema(document, name))
            )
        planned.sort(key=lambda item: (item[0], item[1]))
        targets: dict[str, int] = {}
        for name, version, _ in planned:
            targets[name] = max(targets.get(name, 0), version)
        classes = {(name, version) for name, version, _ in planned}
        seen = self.state().last_change
        who = actor or self.actor

        def work(tx: Transaction) -> tuple[SyncReport, UpcastChain]:
            state = self._locked_state(tx)
            registered: list[tuple[str, int]] = []
            unchanged: list[tuple[str, int]] = []
            changes: list[RegistryChange] = []
            for name, version, document in planned:
                number, existing = _plan_version(state, name, document, version, seen)
                if existing:
                    unchanged.append((name, number))
                    continue
                breaking = _breaking(state, name, document)
                if breaking:
                    raise IncompatibleSchemaError(name, number, state.mode(name).value, breaking)
                change = _change_record(state, who, "register", name, number, document)
                state.apply(change, verify=False)
                changes.append(change)
                registered.append((name, number))
            chain = check_chain(upcasters or Upcasters(), state, targets, classes)
            for change in changes:
                tx.execute(self._sql.insert, _row_from_change(change))
            return SyncReport(registered, unchanged, len(chain)), chain

        report, chain = self._change(work, None)
        self._enforcer.forget()
        events.use_upcasts(chain)
        return report

    def upcast_chain(self, upcasters: Upcasters) -> UpcastChain:
        """Check upcasters against the registry and chain them, each type's chain ending at its
        newest registered version (for readers that register no classes; `sync` does this for
        an application's classes).

        Raises:
            UpcasterError: an upcaster is refused (see `sync`).
        """
        return check_chain(upcasters, self.state())

    # -- enforcing ---------------------------------------------------------------------------

    def enforce(self, *, refresh_seconds: float = 1.0) -> None:
        """Validate every append of the store object against the registry from now on.

        An event of a registered type must name a registered version and match its schema;
        an event of a type without schema is stored or refused as the registry's policy says
        (`set_unregistered`). A refused event fails its whole append; nothing is written. It
        holds for this store object (every producer that opens the store enforces for itself:
        the CLI does so whenever the store has a registry).

        Args:
            refresh_seconds: how long a type found without a schema (and allowed) is taken to
                have none before the registry is read again for it: a type registered by
                another process is enforced here at most this long after. Versions and types
                this process registers are enforced at once.

        Raises:
            SchemaRegistrationError: `refresh_seconds` is negative.
        """
        if not isinstance(refresh_seconds, (int, float)) or refresh_seconds < 0:
            raise SchemaRegistrationError(
                None, f"refresh_seconds must be a number >= 0, not {refresh_seconds!r}"
            )
        self._enforcer = SchemaEnforcer(self.state, float(refresh_seconds))
        self.store.set_append_validator(self._enforcer)

    # -- inside a change ---------------------------------------------------------------------

    def import_history(self, changes: Sequence[RegistryChange]) -> int:
        """Replay another store's registry history into this one, whose registry is empty, in
        one transaction (`eventvault import` and `copy` do this).

        Every change is checked first, as the registry would have made it (numbers 1, 2, ...
        without gaps, versions in order, every schema usable): an edited history is refused
        and nothing is written.

        Args:
            changes: the history, oldest first.

        Returns:
            The number of changes imported.

        Raises:
            ImportFileError: a change is out of order or not one the registry could have made.
            NotEmptyError: this registry holds changes.
        """
        state = RegistryState()
        for change in changes:
            state.apply(change)
        rows = [_row_from_change(change) for change in changes]
        url = self.store.url

        def work(tx: Transaction) -> None:
            found = self._locked_state(tx)
            if found.last_change:
                raise NotEmptyError(url, 0, registry_changes=found.last_change)
            if rows:
                tx.execute_many(self._sql.insert, rows)

        self._change(work, None)
        self._enforcer.forget()
        return len(rows)

    def _locked_state(self, tx: Transaction) -> RegistryState:
        """The registry inside a change's transaction, read after taking the lock that
        serializes changes."""
        if self._sql.lock is not None:
            tx.fetch(self._sql.lock)
        state = RegistryState()
        for row in tx.fetch(self._sql.history, (0,)):
            state.apply(_change_from_row(row), verify=False)
        return state

    def _write(
        self,
        tx: Transaction,
        state: RegistryState,
        actor: str,
        action: str,
        event_type: str | None,
        version: int | None,
        value: object,
    ) -> None:
        change = _change_record(state, actor, action, event_type, version, value)
        tx.execute(self._sql.insert, _row_from_change(change))

    def _change(self, work: Callable[[Transaction], _T], event_type: str | None) -> _T:
        try:
            return self.store.run_transaction(work)
        except StorageError as exc:
            # The unique index caught a change that raced this one past the lock.
            raise RegistryChangeConflictError(
                event_type,
                f"another process changed the registry at the same moment ({exc}); nothing of "
                "this change was written: look at the registry again and retry",
            ) from exc


def _change_record(
    state: RegistryState,
    actor: str,
    action: str,
    event_type: str | None,
    version: int | None,
    value: object,
) -> RegistryChange:
    return RegistryChange(
        change_id=state.last_change + 1,
        changed_at=datetime.now(UTC),
        changed_by=actor,
        action=action,  # type: ignore[arg-type]
        event_type=event_type,
        version=version,
        value=value,
    )


def _mode(event_type: str, mode: Mode | str) -> Mode:
    if isinstance(mode, Mode):
        return mode
    try:
        return Mode(str(mode).upper())
    except ValueError:
        names = ", ".join(m.value for m in Mode)
        raise SchemaRegistrationError(
            event_type, f"the compatibility mode is one of {names}, not {mode!r}"
        ) from None


def _plan_version(
    state: RegistryState,
    event_type: str,
    document: Mapping[str, Any],
    version: int | None,
    seen: int,
) -> tuple[int, bool]:
    """The version a schema gets, and whether it is registered already.

    Raises:
        SchemaRegistrationError: the version is registered with another schema, or does not
            follow the newest.
        RegistryChangeConflictError: the version was registered by a change made after `seen`
            (another process, meanwhile).
    """
    entry = state.types.get(event_type)
    versions = sorted(entry.versions) if entry is not None else []
    digest = fingerprint(document)
    if version is None:
        same = [
            v for v in versions if entry is not None and entry.versions[v].fingerprint == digest
        ]
        if same:
            return same[-1], True
        return (versions[-1] + 1 if versions else 1), False
    if entry is not None and version in entry.versions:
        existing = entry.versions[version]
        if existing.fingerprint == digest:
            return version, True
        changes = [str(d) for d in compare(existing.schema, document)][:5]
        reason = (
            f"version {version} is registered with another schema (by {existing.registered_by} "
            f"at {existing.registered_at:%Y-%m-%d %H:%M:%S}Z); a registered version never "
            f"changes: give the new schema version {versions[-1] + 1}. It differs at: "
            + "; ".join(changes or ["annotations only"])
        )
        if existing.change_id > seen:
            raise RegistryChangeConflictError(event_type, "meanwhile, " + reason)
        raise SchemaRegistrationError(event_type, reason)
    if versions and version != versions[-1] + 1:
        raise SchemaRegistrationError(
            event_type,
            f"version {version} does not follow the newest registered version {versions[-1]}: "
            f"versions are registered in order, the next is {versions[-1] + 1}",
        )
    return version, False


def _breaking(
    state: RegistryState, event_type: str, document: Mapping[str, Any]
) -> list[BreakingChange]:
    entry = state.types.get(event_type)
    if entry is None or not entry.versions:
        return []
    previous: Sequence[tuple[int, Mapping[str, Any]]] = [
        (v, entry.versions[v].schema) for v in sorted(entry.versions)
    ]
    return breaking_changes(entry.mode, document, list(previous))
