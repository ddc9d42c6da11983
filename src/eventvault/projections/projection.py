"""`Projection` and `Sink`: handlers of events, a name, a version, and where their effects go.

A `Projection` keeps a SQL read model: its handlers write rows through the transaction that
also moves its checkpoint, so each event's effect is applied exactly once, also across crashes.
A `Sink` hands events to anything else (a queue, a mailer, a callback): its handlers run outside
any transaction, before the checkpoint commits, so after a crash an event may be handed over
again (at least once); each carries its id and global position to de-duplicate with.

Handlers are marked with `@handles(EventClass)` (decoded through the class's `registry`) or
`@handles("EventType")` (given the `RecordedEvent` as stored) and collected into a plain dict,
`handlers`, when the class is created, as `@applies` is for aggregates: nothing else happens
behind the reader's back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeAlias, TypeVar

import msgspec

from eventvault.aggregates.registry import EventRegistry
from eventvault.errors import ProjectionDefinitionError
from eventvault.projections.sql import SQL, physical_table
from eventvault.store.seam import Dialect

__all__ = [
    "Handler",
    "Projection",
    "ProjectionBase",
    "Sink",
    "TableSQL",
    "handles",
]

F = TypeVar("F", bound=Callable[..., None])

TableSQL: TypeAlias = SQL | Sequence[SQL]
"""How a read model table is made: its `CREATE TABLE` (and any `CREATE INDEX`), with the
table's own name in braces (`CREATE TABLE {balances} (...)`), for both dialects or per dialect."""

_HANDLES: Final = "__eventvault_handles__"
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_TABLE: Final = re.compile(r"[a-z_][a-z0-9_]{0,47}")


@dataclass(frozen=True, slots=True)
class Handler:
    """A handler as stored in `handlers`, under the event type name it handles.

    Attributes:
        method: the function, called with the projection (and the read model), the event and,
            for typed handlers, the `RecordedEvent`.
        event_class: the class events are decoded into; None for a handler of recorded events.
        name: the method's name, for messages.
    """

    method: Callable[..., None]
    event_class: type[msgspec.Struct] | None
    name: str


def handles(event: type[msgspec.Struct] | str) -> Callable[[F], F]:
    """Mark a method as the handler of one event type.

    With an event class, the handler gets the event decoded into it (through the projection's
    `registry`) and the `RecordedEvent` (stream name, positions, id, time). With a type name,
    it gets the `RecordedEvent` alone, its `data` a dict.

    In a `Projection`::

        @handles(MoneyDeposited)
        def deposited(self, db: ReadModel, event: MoneyDeposited, recorded: RecordedEvent) -> None

        @handles("MoneyDeposited")
        def deposited(self, db: ReadModel, recorded: RecordedEvent) -> None

    In a `Sink` the same, without `db`.

    Args:
        event: a registered event class, or an event type name.

    Returns:
        A decorator that returns the method unchanged, marked for the class to collect.

    Raises:
        TypeError: `event` is neither a `msgspec.Struct` class nor a non-empty str.
    """
    if isinstance(event, str):
        if not event:
            raise TypeError("@handles takes an event class or a non-empty event type name")
    elif not isinstance(event, type) or not issubclass(event, msgspec.Struct):
        raise TypeError(
            f"@handles takes an event class (a msgspec.Struct) or a name, not {event!r}"
        )

    def mark(method: F) -> F:
        setattr(method, _HANDLES, event)
        return method

    return mark


def _check_tables(cls: type, tables: object) -> None:
    if not isinstance(tables, Mapping):
        raise ProjectionDefinitionError(
            cls, f"tables must be a dict of name to SQL, not {tables!r}"
        )
    for name, sql in tables.items():
        if not isinstance(name, str) or not _TABLE.fullmatch(name):
            raise ProjectionDefinitionError(
                cls,
                f"a table name is a lower-case identifier of at most 48 characters, not {name!r}",
            )
        statements = [sql] if isinstance(sql, str | Mapping) else list(sql)
        if not statements:
            raise ProjectionDefinitionError(cls, f"table {name!r} has no CREATE TABLE statement")
        for statement in statements:
            texts = [statement] if isinstance(statement, str) else list(statement.values())
            if not all(isinstance(text, str) and f"{{{name}}}" in text for text in texts):
                raise ProjectionDefinitionError(
                    cls,
                    f"every statement of table {name!r} names it as {{{name}}}, so that each "
                    "version gets tables of its own",
                )


class ProjectionBase:
    """What `Projection` and `Sink` share: a name, a version, a filter and handlers.

    Declare in a subclass:

    - `name`: stable, unique among the projections of a store (letters, digits, `_`, `.`, `-`).
    - `version`: bump it when the handlers or tables change meaning; the new version is built
      beside the old one, which keeps serving, and takes over once caught up.
    - `registry`: the `EventRegistry` that typed handlers decode through.
    - `categories`: only events of streams `<category>-...` of these categories; empty: all.
    - `batch_size`: the most events applied in one transaction.
    - one method per event type, decorated with `@handles`.

    Attributes:
        handlers: event type name to its `Handler`, collected when the class is created.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    registry: ClassVar[EventRegistry | None] = None
    categories: ClassVar[tuple[str, ...]] = ()
    batch_size: ClassVar[int] = 500
    handlers: ClassVar[Mapping[str, Handler]] = {}
    _takes_read_model: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name)):
            raise ProjectionDefinitionError(
                cls,
                "name must be 1 to 100 letters, digits, '_', '.' or '-', starting with a letter "
                f"or digit, not {name!r}",
            )
        version = cls.__dict__.get("version", 1)
        if type(version) is not int or version < 1:
            raise ProjectionDefinitionError(cls, f"version must be an int >= 1, not {version!r}")
        batch_size = cls.__dict__.get("batch_size", 1)
        if type(batch_size) is not int or not 1 <= batch_size <= 10_000:
            raise ProjectionDefinitionError(
                cls, f"batch_size must be an int from 1 to 10000, not {batch_size!r}"
            )
        categories = cls.__dict__.get("categories", ())
        if isinstance(categories, str) or not all(
            isinstance(c, str) and c and "-" not in c for c in categories
        ):
            raise ProjectionDefinitionError(
                cls, f"categories must be a tuple of names without '-', not {categories!r}"
            )
        if "tables" in cls.__dict__:
            _check_tables(cls, cls.__dict__["tables"])
        handlers: dict[str, Handler] = dict(cls.handlers)
        own: dict[str, str] = {}
        for attribute, member in cls.__dict__.items():
            event = getattr(member, _HANDLES, None)
            if event is None:
                continue
            if isinstance(event, str):
                type_name, event_class = event, None
            else:
                registry = cls.registry
                if registry is None or not registry.is_registered(event):
                    raise ProjectionDefinitionError(
                        cls,
                        f"{attribute} handles {event.__qualname__}, which is not registered in "
                        "the class's registry: set registry = <your EventRegistry>",
                    )
                type_name, event_class = registry.type_of(event).name, event
            if type_name in own:
                raise ProjectionDefinitionError(
                    cls, f"{own[type_name]} and {attribute} both handle {type_name!r}"
                )
            own[type_name] = attribute
            handlers[type_name] = Handler(member, event_class, attribute)
        cls.handlers = handlers

    @property
    def event_types(self) -> tuple[str, ...]:
        """The event type names the projection handles, in name order: its filter."""
        return tuple(sorted(self.handlers))

    @property
    def stream_prefix(self) -> str | None:
        """The stream name prefix the store can filter by: `<category>-` of the one category,
        or None (several categories are filtered as events arrive)."""
        return f"{self.categories[0]}-" if len(self.categories) == 1 else None

    def wants(self, stream_name: str) -> bool:
        """Whether an event of a stream is for this projection (its categories)."""
        if not self.categories:
            return True
        category, dash, _ = stream_name.partition("-")
        return bool(dash) and category in self.categories

    def describe(self) -> str:
        """`name v<version>`, for messages."""
        return f"{self.name} v{self.version}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class Projection(ProjectionBase):
    """A read model in SQL tables, kept current from the log with exactly-once effects.

    Declare, besides what `ProjectionBase` lists:

    - `tables`: each table's name to its `CREATE TABLE` statement (and indexes), naming itself
      in braces; each version of the projection gets tables of its own (`balances_v2`), and
      queries read the active version through a view named after the table (`balances`).
    - `database`: the URL of a database other than the store's to keep the tables in (a SQLite
      file, a PostgreSQL database); the checkpoint then lives there, beside the rows. None:
      the store's own database.

    Handlers write through the `ReadModel` they are given, with `?` placeholders and `{table}`
    names::

        class Balances(Projection):
            name = "balances"
            registry = registry
            tables = {"balances": "CREATE TABLE {balances} "
                      "(account TEXT PRIMARY KEY, balance BIGINT NOT NULL)"}

            @handles(MoneyDeposited)
            def deposited(self, db: ReadModel, event: MoneyDeposited, recorded: RecordedEvent):
                db.execute(
                    "INSERT INTO {balances} VALUES (?, ?) ON CONFLICT (account) "
                    "DO UPDATE SET balance = {balances}.balance + excluded.balance",
                    (recorded.stream_name, event.amount),
                )
    """

    tables: ClassVar[Mapping[str, TableSQL]] = {}
    database: ClassVar[str | None] = None

    def table_names(self) -> dict[str, str]:
        """Each declared table to its physical name in this version (`balances_v2`)."""
        return {table: physical_table(table, self.version) for table in self.tables}

    def create_statements(self, dialect: Dialect) -> list[SQL]:
        """The statements that create this version's tables, in declaration order."""
        statements: list[SQL] = []
        for sql in self.tables.values():
            if isinstance(sql, str | Mapping):
                statements.append(sql)
            else:
                statements.extend(sql)
        return statements


class Sink(ProjectionBase):
    """Events handed to something that is not SQL (a queue, an e-mail, a callback), at least
    once.

    Handlers run outside any transaction; the checkpoint commits after them. A crash between
    the two hands the events of that batch over again, so a handler de-duplicates with
    `recorded.event_id` or `recorded.global_position` where doing a thing twice matters.
    """

    _takes_read_model: ClassVar[bool] = False
    batch_size: ClassVar[int] = 100
