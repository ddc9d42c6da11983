"""`Aggregate`: a domain object whose state is rebuilt by applying its events in order.

A subclass declares its stream category, a mutable `msgspec.Struct` holding its state, and one
handler per event type, marked with `@applies(EventClass)`; commands check invariants and
`record` new events. The handlers are collected into a plain dict when the class is created:
nothing else happens behind the reader's back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Final, Generic, TypeVar

import msgspec

from eventvault.aggregates.errors import AggregateDefinitionError, MissingHandlerError
from eventvault.serialization import (
    FORBIDDEN_NAME_CHARACTERS,
    MAX_STREAM_NAME_LENGTH,
    new_event_id,
)

__all__ = ["Aggregate", "Handler", "applies"]

StateT = TypeVar("StateT", bound=msgspec.Struct)
A = TypeVar("A", bound="Aggregate[Any]")
E = TypeVar("E", bound=msgspec.Struct)

Handler = Callable[[Any, Any], None]
"""A handler as stored in `Aggregate.handlers`: called with the aggregate and the event."""

_APPLIES_ATTRIBUTE: Final = "__eventvault_applies__"
NEVER_RECORDED: Final = -(2**63)
"""Earlier than any `recorded_at` in microseconds: the latest time among no events."""
_MAX_CATEGORY_LENGTH: Final = MAX_STREAM_NAME_LENGTH - 2
"""A stream name is `<category>-<id>` with an id of at least one character."""


def _check_state_type(cls: type[Aggregate[Any]]) -> None:
    """Refuse, when the class is created, a state type that would fail later: not a struct, a
    first state `state_type()` cannot build, or a shape that a snapshot cannot hold."""
    state_type = getattr(cls, "state_type", None)
    if state_type is None:
        return
    if not isinstance(state_type, type) or not issubclass(state_type, msgspec.Struct):
        raise AggregateDefinitionError(
            cls, f"state_type must be a msgspec.Struct class, not {state_type!r}"
        )
    required = [field.name for field in msgspec.structs.fields(state_type) if field.required]
    if required and cls.initial_state is Aggregate.initial_state:
        raise AggregateDefinitionError(
            cls,
            f"state_type {state_type.__qualname__} has fields without a default "
            f"({', '.join(required)}), so the first state state_type() cannot be made: give "
            "them defaults, or override initial_state() to build it",
        )
    try:
        msgspec.msgpack.Decoder(state_type)
    except TypeError as exc:
        raise AggregateDefinitionError(
            cls, f"state_type {state_type.__qualname__} cannot be read back from a snapshot: {exc}"
        ) from exc


def applies(event_class: type[E]) -> Callable[[Callable[[A, E], None]], Callable[[A, E], None]]:
    """Mark an aggregate method as the handler of one event class.

    The handler changes the aggregate's state to reflect the event; it must not check
    invariants or fail (the event already happened), nor record events.

    Args:
        event_class: the event class the method handles.

    Returns:
        A decorator that returns the method unchanged, marked for `Aggregate` to collect.

    Raises:
        AggregateDefinitionError: (when the class is created) two methods of one class handle
            the same event class.
    """
    if not isinstance(event_class, type) or not issubclass(event_class, msgspec.Struct):
        raise TypeError(f"@applies takes an event class (a msgspec.Struct), not {event_class!r}")

    def mark(method: Callable[[A, E], None]) -> Callable[[A, E], None]:
        setattr(method, _APPLIES_ATTRIBUTE, event_class)
        return method

    return mark


def _check_snapshot_upcasters(cls: type, snapshot_version: int) -> None:
    """Each snapshot upcaster reads an older version and the chain from it reaches the
    current `snapshot_version` without a gap: checked when the class is defined, never when a
    snapshot is loaded."""
    upcasters = getattr(cls, "snapshot_upcasters", {})
    if not isinstance(upcasters, Mapping):
        raise AggregateDefinitionError(
            cls, f"snapshot_upcasters must be a dict of version to function, not {upcasters!r}"
        )
    for version, function in upcasters.items():
        if type(version) is not int or not 1 <= version < snapshot_version:
            raise AggregateDefinitionError(
                cls,
                f"snapshot_upcasters: {version!r} is not an older snapshot_version (1 to "
                f"{snapshot_version - 1})",
            )
        if not callable(function):
            raise AggregateDefinitionError(
                cls, f"snapshot_upcasters: the upcaster of version {version} is not callable"
            )
        for following in range(version + 1, snapshot_version):
            if following not in upcasters:
                raise AggregateDefinitionError(
                    cls,
                    f"snapshot_upcasters: a gap in the chain: nothing upcasts version "
                    f"{following}, so snapshots of version {version} cannot reach version "
                    f"{snapshot_version}",
                )


class Aggregate(Generic[StateT]):
    """The base class of event-sourced domain objects.

    Declare in a subclass:

    - `category`: the stream category; the aggregate's stream is `<category>-<id>`. No `-`,
      no control characters, at most 198 characters.
    - `state_type`: a mutable `msgspec.Struct` whose fields all have defaults (unless
      `initial_state` is overridden); `state` starts as `state_type()` and is what snapshots
      store.
    - `snapshot_version`: bump it when `state_type` changes shape; older snapshots are then
      ignored and the state is rebuilt from the events, unless
    - `snapshot_upcasters` maps an older `snapshot_version` to a function that turns a state of
      that version (as a dict) into the next version's: snapshots of that version are then
      upcast on load instead of ignored. Each chain must reach `snapshot_version` without a
      gap.
    - one method per event class, decorated with `@applies(EventClass)`.

    Example::

        class Account(Aggregate[AccountState]):
            category = "account"
            state_type = AccountState

            def deposit(self, amount: int) -> None:
                if amount <= 0:
                    raise ValueError("amount must be positive")
                self.record(MoneyDeposited(amount=amount))

            @applies(MoneyDeposited)
            def _deposited(self, event: MoneyDeposited) -> None:
                self.state.balance += event.amount

    Args:
        id: the aggregate's id: a non-empty str.

    Attributes:
        id: the aggregate's id.
        version: the stream position of the last event loaded or saved; -1 for an aggregate
            that has no stored events yet.
        state: the current state, including the effect of pending events.
        pending_events: events recorded but not yet saved, in order.
        pending_event_ids: the ids the pending events will be stored with, chosen when they
            are recorded, so that saving again after a failure of unknown outcome is an
            idempotent retry.

    Raises:
        TypeError: `id` is not a non-empty str.
    """

    category: ClassVar[str]
    state_type: type[StateT]
    snapshot_version: ClassVar[int] = 1
    snapshot_upcasters: ClassVar[Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {}
    handlers: ClassVar[Mapping[type[msgspec.Struct], Handler]] = {}

    id: str
    version: int
    state: StateT
    pending_events: list[msgspec.Struct]
    pending_event_ids: list[uuid.UUID]
    # The repository's note of (a stream position, the latest `recorded_at` among the stored
    # events up to it), so that a snapshot reads only the events since: in microseconds, or the
    # datetime of the snapshot a load started from (converted only if a snapshot is taken).
    _recorded_through: tuple[int, int | datetime]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        category = cls.__dict__.get("category")
        if category is not None and (
            type(category) is not str
            or not category
            or "-" in category
            or len(category) > _MAX_CATEGORY_LENGTH
            or FORBIDDEN_NAME_CHARACTERS.search(category)
        ):
            raise AggregateDefinitionError(
                cls,
                f"category must be a non-empty str of at most {_MAX_CATEGORY_LENGTH} characters "
                f"without '-', control characters or lone surrogates, not {category!r}",
            )
        snapshot_version = cls.__dict__.get("snapshot_version", 1)
        if type(snapshot_version) is not int or snapshot_version < 1:
            raise AggregateDefinitionError(
                cls, f"snapshot_version must be an int >= 1, not {snapshot_version!r}"
            )
        _check_snapshot_upcasters(cls, cls.__dict__.get("snapshot_version", cls.snapshot_version))
        if "state_type" in cls.__dict__ or "initial_state" in cls.__dict__:
            _check_state_type(cls)
        handlers: dict[type[msgspec.Struct], Handler] = dict(cls.handlers)
        own: dict[type[msgspec.Struct], str] = {}
        for name, member in cls.__dict__.items():
            event_class = getattr(member, _APPLIES_ATTRIBUTE, None)
            if event_class is None:
                continue
            if event_class in own:
                raise AggregateDefinitionError(
                    cls,
                    f"{own[event_class]} and {name} both handle {event_class.__qualname__}",
                )
            own[event_class] = name
            handlers[event_class] = member
        cls.handlers = handlers

    def __init__(self, id: str) -> None:
        if type(id) is not str or not id:
            raise TypeError(f"an aggregate id must be a non-empty str, not {id!r}")
        cls = type(self)
        if getattr(cls, "state_type", None) is None:
            raise AggregateDefinitionError(cls, "declare state_type, a msgspec.Struct class")
        self.id = id
        self.version = -1
        self.state = self.initial_state()
        self.pending_events = []
        self.pending_event_ids = []
        self._recorded_through = (-1, NEVER_RECORDED)

    def initial_state(self) -> StateT:
        """The state before the first event: `state_type()`. Override when it needs arguments.

        Returns:
            A new state object.
        """
        return self.state_type()

    @classmethod
    def stream_name_for(cls, id: str) -> str:
        """The stream name of the aggregate of this class with a given id: `<category>-<id>`.

        Raises:
            AggregateDefinitionError: the class declares no `category`.
        """
        category = getattr(cls, "category", None)
        if category is None:
            raise AggregateDefinitionError(cls, "declare category, the stream category")
        return f"{category}-{id}"

    @property
    def stream_name(self) -> str:
        """The aggregate's stream: `<category>-<id>`."""
        return self.stream_name_for(self.id)

    @property
    def is_new(self) -> bool:
        """Whether the aggregate has no stored events (it was never saved nor loaded)."""
        return self.version < 0

    def record(self, event: msgspec.Struct) -> None:
        """Record a new event: apply it to the state and add it to `pending_events`.

        Commands call this once their invariants hold. If the handler raises, nothing is
        recorded.

        Args:
            event: an event object of a class this aggregate handles.

        Raises:
            MissingHandlerError: the aggregate has no handler for the event's class.
        """
        handler = self.handlers.get(type(event))
        if handler is None:
            raise MissingHandlerError(type(self), type(event))
        handler(self, event)
        self.pending_events.append(event)
        self.pending_event_ids.append(new_event_id())

    def replay(self, events: Iterable[msgspec.Struct]) -> None:
        """Apply stored events: each advances `version` by one and is not pending.

        The repository loads aggregates with this; tests use it to set up a history.

        Args:
            events: past events of this aggregate, in stream order, following `version`.

        Raises:
            MissingHandlerError: an event's class has no handler.
        """
        handlers = self.handlers
        version = self.version
        try:
            for event in events:
                handler = handlers.get(type(event))
                if handler is None:
                    raise MissingHandlerError(type(self), type(event))
                handler(self, event)
                version += 1
        finally:
            self.version = version

    def mark_saved(self) -> list[msgspec.Struct]:
        """Clear `pending_events` and advance `version` past them, after a successful save.

        Returns:
            The events that were pending.
        """
        saved = self.pending_events
        self.version += len(saved)
        self.pending_events = []
        self.pending_event_ids = []
        return saved

    def __repr__(self) -> str:
        pending = f", {len(self.pending_events)} pending" if self.pending_events else ""
        return (
            f"<{type(self).__name__} {self.id!r} version {self.version}{pending}: {self.state!r}>"
        )
