"""`EventRegistry`: typed event classes under stable names and schema versions.

A stored event carries a type name and a schema version, never a Python import path, so an event
class can be renamed or moved without touching stored data: the registry is the one place that
maps `(name, version)` to a class and back. See docs/adr/0003-event-registration-and-naming.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal, TypeVar, overload

import msgspec

from eventvault.aggregates.errors import (
    EventDecodeError,
    EventRegistrationError,
    UnknownEventTypeError,
    UnregisteredEventError,
)
from eventvault.schema.upcasting import UpcastChain
from eventvault.serialization import FORBIDDEN_NAME_CHARACTERS
from eventvault.types import JSONObject, NewEvent, RecordedEvent

__all__ = ["EventRegistry", "EventType"]

E = TypeVar("E", bound=msgspec.Struct)

_MAX_NAME_LENGTH: Final = 200
_convert = msgspec.convert
_encode = msgspec.json.encode
_decode_object = msgspec.json.Decoder(dict[str, object]).decode


@dataclass(frozen=True, slots=True)
class EventType:
    """A registered event class with its stored name and schema version.

    Attributes:
        name: the stable name stored as the event's `event_type`.
        version: the schema version stored as the event's `schema_version`.
        cls: the `msgspec.Struct` class.
        str_keys: whether the class has a mapping whose keys are not strings (JSON stores them
            as strings, so decoding must convert them back).
    """

    name: str
    version: int
    cls: type[msgspec.Struct]
    str_keys: bool = False


def _has_non_str_keys(info: object, seen: set[int]) -> bool:
    """Whether a `msgspec.inspect` type tree holds a dict whose keys are not str.

    Decoding with `str_keys=True` is needed only then, and costs about twice as much, so the
    registry works it out once per class.
    """
    if isinstance(info, msgspec.inspect.DictType) and not isinstance(
        info.key_type, (msgspec.inspect.StrType, msgspec.inspect.AnyType)
    ):
        return True
    if isinstance(info, (tuple, list)):
        return any(_has_non_str_keys(item, seen) for item in info)
    if not isinstance(info, (msgspec.inspect.Type, msgspec.inspect.Field)) or id(info) in seen:
        return False
    seen.add(id(info))
    return any(_has_non_str_keys(value, seen) for value in msgspec.structs.astuple(info))


class EventRegistry:
    """The event classes an application reads and writes, each under a name and a version.

    Register every class explicitly, by call or decorator::

        registry = EventRegistry()
        registry.register(AccountOpened, name="AccountOpened", version=1)

        @registry.event("MoneyDeposited", version=1)
        class MoneyDeposited(msgspec.Struct, frozen=True):
            amount: int

    A class has one name and version; a name and version has one class. Older versions of a
    type need no class of their own once upcasters turn them into the newest: the schema
    registry checks them and hands them over (`SchemaRegistry.sync`, `use_upcasts`).
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], EventType] = {}
        self._by_class: dict[type[msgspec.Struct], EventType] = {}
        self._upcasts: UpcastChain | None = None
        self._generation = 0

    def register(self, cls: type[E], *, name: str, version: int = 1) -> type[E]:
        """Register an event class under a name and a schema version.

        Args:
            cls: a frozen `msgspec.Struct` class that encodes to a JSON object.
            name: the stable name stored with each event; 1 to 200 characters without control
                characters. Choose it once: renaming the class later does not change it.
            version: the schema version of the class's payload, an int >= 1.

        Returns:
            `cls`, unchanged.

        Raises:
            EventRegistrationError: `cls` is not a frozen `msgspec.Struct` (or is an
                `array_like` one), the name or version is invalid, another class holds the name
                and version, or `cls` is already registered.
        """
        if not isinstance(cls, type) or not issubclass(cls, msgspec.Struct):
            raise EventRegistrationError(cls, "an event class must subclass msgspec.Struct")
        config = cls.__struct_config__
        if not config.frozen:
            raise EventRegistrationError(
                cls, "an event class must be frozen: class X(msgspec.Struct, frozen=True)"
            )
        if config.array_like:
            raise EventRegistrationError(
                cls, "an event class must encode to a JSON object, not array_like"
            )
        if (
            type(name) is not str
            or not name
            or len(name) > _MAX_NAME_LENGTH
            or FORBIDDEN_NAME_CHARACTERS.search(name)
        ):
            raise EventRegistrationError(
                cls,
                f"the name must be a non-empty str of at most {_MAX_NAME_LENGTH} characters "
                f"without control characters or lone surrogates, not {name!r}",
            )
        if type(version) is not int or version < 1:
            raise EventRegistrationError(cls, f"the version must be an int >= 1, not {version!r}")
        taken = self._by_key.get((name, version))
        if taken is not None:
            raise EventRegistrationError(
                cls, f"{name!r} version {version} is already registered to {taken.cls.__qualname__}"
            )
        known = self._by_class.get(cls)
        if known is not None:
            raise EventRegistrationError(
                cls, f"it is already registered as {known.name!r} version {known.version}"
            )
        str_keys = _has_non_str_keys(msgspec.inspect.type_info(cls), set())
        entry = EventType(name, version, cls, str_keys)
        self._by_key[(name, version)] = entry
        self._by_class[cls] = entry
        self._generation += 1
        return cls

    def use_upcasts(self, chain: UpcastChain) -> None:
        """Decode events of older versions through upcasters, into the class of the version
        each chain ends at.

        `SchemaRegistry.sync` calls this with the upcasters it checked against the store's
        registry; a chain given here is trusted to be checked.

        Args:
            chain: the checked upcasters.

        Raises:
            EventRegistrationError: a chain ends at a type and version with no class here.
        """
        for event_type, target in chain.targets.items():
            if (event_type, target) not in self._by_key:
                raise EventRegistrationError(
                    chain,
                    f"the upcasters of {event_type!r} lead to version {target}, which has no "
                    "class in this registry",
                )
        self._upcasts = chain
        self._generation += 1

    @property
    def upcasts(self) -> UpcastChain | None:
        """The upcasters this registry decodes with, or None."""
        return self._upcasts

    @property
    def generation(self) -> int:
        """A number that changes whenever a class or the upcasters change (a repository
        rebuilds its decoding table when it sees a new one)."""
        return self._generation

    def event(self, name: str, *, version: int = 1) -> Callable[[type[E]], type[E]]:
        """A class decorator that registers the class (see `register`).

        Args:
            name: the stable stored name.
            version: the schema version.

        Returns:
            The decorator; it returns the class unchanged.
        """

        def decorate(cls: type[E]) -> type[E]:
            return self.register(cls, name=name, version=version)

        return decorate

    # -- lookups ---------------------------------------------------------------------------

    def type_of(self, cls: type[msgspec.Struct]) -> EventType:
        """The registration of a class.

        Args:
            cls: an event class.

        Returns:
            Its `EventType`.

        Raises:
            UnregisteredEventError: the class is not registered.
        """
        entry = self._by_class.get(cls)
        if entry is None:
            raise UnregisteredEventError(cls)
        return entry

    def class_for(self, name: str, version: int) -> type[msgspec.Struct] | None:
        """The class registered under a name and version, or None."""
        entry = self._by_key.get((name, version))
        return None if entry is None else entry.cls

    def is_registered(self, cls: type) -> bool:
        """Whether a class is registered."""
        return cls in self._by_class

    def __contains__(self, cls: object) -> bool:
        return cls in self._by_class

    def __iter__(self) -> Iterator[EventType]:
        return iter(list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)

    # -- encoding and decoding -------------------------------------------------------------

    def to_new_event(
        self,
        event: msgspec.Struct,
        *,
        metadata: JSONObject | None = None,
        event_id: uuid.UUID | None = None,
    ) -> NewEvent:
        """The `NewEvent` that stores an event object under its registered name and version.

        The store encodes the struct itself (no dict round trip).

        Args:
            event: an instance of a registered class.
            metadata: the event's metadata, if any.
            event_id: the idempotency key; random when None.

        Returns:
            The `NewEvent`.

        Raises:
            UnregisteredEventError: the event's class is not registered.
        """
        entry = self._by_class.get(type(event))
        if entry is None:
            raise UnregisteredEventError(type(event))
        return NewEvent(
            entry.name,
            event,
            metadata=metadata,
            event_id=event_id,
            schema_version=entry.version,
        )

    @overload
    def decode(
        self, recorded: RecordedEvent, *, unknown: Literal["error"] = "error"
    ) -> msgspec.Struct: ...

    @overload
    def decode(
        self, recorded: RecordedEvent, *, unknown: Literal["raw"]
    ) -> msgspec.Struct | RecordedEvent: ...

    def decode(
        self, recorded: RecordedEvent, *, unknown: Literal["error", "raw"] = "error"
    ) -> msgspec.Struct | RecordedEvent:
        """The event object of a recorded event, as an instance of its registered class.

        An event of an older version that upcasters cover (`use_upcasts`) is upcast first and
        decoded as the class of the newest version; the stored event is not changed.

        Args:
            recorded: an event read from a store.
            unknown: what to do when its type and version are not registered: `"error"` raises,
                `"raw"` returns `recorded` itself.

        Returns:
            The event object (or the `RecordedEvent`, see `unknown`).

        Raises:
            UnknownEventTypeError: the type and version are not registered (`unknown="error"`).
            EventDecodeError: the payload does not fit the registered class.
        """
        data: object = recorded.data
        key = (recorded.event_type, recorded.schema_version)
        chain = self._upcasts
        if chain is not None and chain.covers(*key):
            # The functions may change what they get: give them a copy of the event's data.
            own = _decode_object(_encode(recorded.data))
            version, data = chain.upcast(recorded.event_type, recorded.schema_version, own)
            key = (recorded.event_type, version)
        entry = self._by_key.get(key)
        if entry is None:
            if unknown == "raw":
                return recorded
            raise UnknownEventTypeError(
                recorded.event_type,
                recorded.schema_version,
                recorded.stream_name,
                recorded.stream_position,
            )
        try:
            if entry.str_keys:
                return _convert(data, type=entry.cls, str_keys=True)
            return _convert(data, type=entry.cls)
        except msgspec.ValidationError as exc:
            raise EventDecodeError(
                recorded.stream_name,
                recorded.stream_position,
                entry.name,
                entry.version,
                entry.cls,
                str(exc)
                if key[1] == recorded.schema_version
                else f"after upcasting from version {recorded.schema_version}: {exc}",
            ) from exc

    def decode_all(self, events: Iterable[RecordedEvent]) -> Iterator[msgspec.Struct]:
        """Decode recorded events lazily, in order (see `decode`).

        Raises:
            UnknownEventTypeError: an event's type and version are not registered.
            EventDecodeError: an event's payload does not fit its registered class.
        """
        for recorded in events:
            yield self.decode(recorded)
