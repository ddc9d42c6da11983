"""The async face cannot drift from the sync one.

Every public member of `EventStore` and `Subscription` must have its counterpart on
`AsyncEventStore` and `AsyncSubscription`, with the same parameters (names, kinds, defaults,
annotations) and the same result, modulo the async wrapping: a blocking call becomes a
coroutine, an `Iterator[X]` an `AsyncIterator[X]`, a `Subscription` an `AsyncSubscription`.
A method added to one face and not the other fails these tests.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncIterator, Iterator

import pytest

from eventvault import AsyncEventStore, AsyncSubscription, EventStore, Subscription

_Shape = tuple[object, ...]

PROTOCOLS: typing.Final = {
    "__iter__": "__aiter__",
    "__next__": "__anext__",
    "__enter__": "__aenter__",
    "__exit__": "__aexit__",
}
"""Sync protocol methods and their async counterparts."""


def _members(cls: type) -> dict[str, object]:
    """Public members: methods and properties, and attributes declared by annotation."""
    members: dict[str, object] = {
        name: inspect.getattr_static(cls, name) for name in dir(cls) if not name.startswith("_")
    }
    for name, annotation in typing.get_type_hints(cls).items():
        if not name.startswith("_"):
            members.setdefault(name, annotation)
    return members


def _value_type(member: object) -> object | None:
    """The type of a property or an annotated attribute; None for a method."""
    if isinstance(member, property):
        assert member.fget is not None
        result: object = typing.get_type_hints(member.fget)["return"]
        return result
    if callable(member) and inspect.isfunction(member):
        return None
    return member


def _parameters(function: object) -> list[_Shape]:
    hints = typing.get_type_hints(function)
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [
        (p.name, p.kind, p.default, _normal(hints.get(p.name)))
        for p in signature.parameters.values()
        if p.name != "self"
    ]


def _async_result(result: object) -> object:
    """What the async face returns where the sync face returns `result`."""
    if typing.get_origin(result) is Iterator:
        (item,) = typing.get_args(result)
        return AsyncIterator[item]  # type: ignore[valid-type]
    if result is Subscription:
        return AsyncSubscription
    return result


def _normal(annotation: object) -> object:
    """An annotation as a comparable value: generics as (origin, arguments), type variables
    by name (each module declares its own), so that `Callable[[Transaction], _Result]` of
    one face matches the other's."""
    if isinstance(annotation, typing.TypeVar):
        return ("TypeVar", annotation.__name__)
    if isinstance(annotation, list | tuple):
        return tuple(_normal(argument) for argument in annotation)
    origin = typing.get_origin(annotation)
    if origin is None:
        return annotation
    return (origin, _normal(typing.get_args(annotation)))


def differences(
    sync_cls: type, async_cls: type, *, stays_sync: frozenset[str] = frozenset()
) -> list[str]:
    """How `async_cls` fails to mirror `sync_cls`: one line per difference.

    Args:
        sync_cls: the sync class.
        async_cls: its async face.
        stays_sync: methods that do not block and so stay plain methods on the async face.
    """
    found: list[str] = []
    sync_members, async_members = _members(sync_cls), _members(async_cls)
    for name in sorted(set(sync_members) - set(async_members)):
        found.append(f"{name}: only on {sync_cls.__name__}")
    for name in sorted(set(async_members) - set(sync_members)):
        found.append(f"{name}: only on {async_cls.__name__}")
    for name in sorted(set(sync_members) & set(async_members)):
        sync_member, async_member = sync_members[name], async_members[name]
        sync_type, async_type = _value_type(sync_member), _value_type(async_member)
        if sync_type is not None or async_type is not None:
            if sync_type != async_type:
                found.append(f"{name}: a value of type {sync_type} and {async_type}")
            continue
        found.extend(_method_differences(name, sync_member, async_member, name in stays_sync))
    for sync_name, async_name in PROTOCOLS.items():
        if hasattr(sync_cls, sync_name) != hasattr(async_cls, async_name):
            found.append(f"{sync_name} and {async_name}: only one is defined")
    return found


def _method_differences(
    name: str, sync_method: object, async_method: object, stays_sync: bool
) -> list[str]:
    found: list[str] = []
    sync_parameters, async_parameters = _parameters(sync_method), _parameters(async_method)
    if sync_parameters != async_parameters:
        found.append(f"{name}: parameters {sync_parameters} and {async_parameters}")
    sync_result = typing.get_type_hints(sync_method)["return"]
    async_result = typing.get_type_hints(async_method)["return"]
    expected = _async_result(sync_result)
    if _normal(async_result) != _normal(expected):
        found.append(f"{name}: returns {async_result}, expected {expected}")
    blocks = _normal(expected) == _normal(sync_result) and not stays_sync
    if inspect.iscoroutinefunction(async_method) != blocks:
        form = "a coroutine function" if blocks else "a plain method"
        found.append(f"{name}: should be {form} on the async face")
    return found


def test_async_event_store_mirrors_every_public_member_of_event_store() -> None:
    assert differences(EventStore, AsyncEventStore) == []


def test_async_subscription_mirrors_every_public_member_of_subscription() -> None:
    assert differences(Subscription, AsyncSubscription, stays_sync=frozenset({"close"})) == []


class _Grown(EventStore):
    """A store with one operation more than the async face has."""

    def compact_stream(self, stream_name: str, *, before: int = 0) -> int:
        return 0


class _Changed(AsyncEventStore):
    """An async face whose `read_all` default and `head_position` form drifted."""

    def read_all(  # type: ignore[override]
        self,
        *,
        after: int = 1,
        backwards: bool = False,
        limit: int | None = None,
        event_types: typing.Sequence[str] | None = None,
        stream_prefix: str | None = None,
    ) -> AsyncIterator[object]:
        raise NotImplementedError

    def head_position(self) -> int:  # type: ignore[override]
        return 0


@pytest.mark.parametrize(
    ("sync_cls", "async_cls", "expected"),
    [
        (_Grown, AsyncEventStore, ["compact_stream: only on _Grown"]),
        (
            EventStore,
            _Changed,
            [
                "head_position: should be a coroutine function on the async face",
                "read_all: parameters",
                "read_all: returns",
            ],
        ),
    ],
)
def test_the_comparison_names_a_method_that_drifted(
    sync_cls: type, async_cls: type, expected: list[str]
) -> None:
    found = differences(sync_cls, async_cls)
    assert [line[: len(start)] for line, start in zip(found, expected, strict=True)] == expected
