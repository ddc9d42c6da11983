"""Upcasters: functions that turn a payload of one schema version into the next, chained.

An application declares its upcasters once, next to its event classes::

    upcasters = Upcasters()

    @upcasters.upcaster("AccountOpened", from_version=1, examples=[{"owner": "Ada"}])
    def add_currency(data):
        return {**data, "currency": "EUR"}

and registers them with the store's registry at start-up (`SchemaRegistry.sync(events,
upcasters=upcasters)`, or `SchemaRegistry.upcast_chain(upcasters)`), which checks the whole
chain before any event is read: every upcaster leads to a registered version, the chain of each
type runs without a gap up to the version the application reads, and each upcaster's examples
(valid under its version) come out valid under the next. The result is an `UpcastChain`, which
the domain layer applies when it decodes (`EventRegistry.use_upcasts`). Stored events are never
rewritten: upcasting happens on read, so every hash still verifies.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from eventvault.errors import UpcasterError
from eventvault.schema.state import RegistryState, check_type_name, check_version
from eventvault.schema.validation import compile_schema

__all__ = ["UpcastChain", "UpcastFunction", "Upcaster", "Upcasters"]

UpcastFunction: TypeAlias = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the data of one version into the data of the next. It gets a dict of its own (it may
change it) and returns the new data."""


@dataclass(frozen=True, slots=True)
class Upcaster:
    """One declared upcaster.

    Attributes:
        event_type: the type.
        from_version: the version it reads; it gives version `from_version + 1`.
        function: the function.
        examples: payloads of `from_version` it is checked with (at least one).
    """

    event_type: str
    from_version: int
    function: UpcastFunction
    examples: tuple[dict[str, Any], ...]


class Upcasters:
    """The upcasters an application declares, per (type, from version). Nothing is checked
    against the registry until they are registered (`SchemaRegistry.sync` or
    `SchemaRegistry.upcast_chain`)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], Upcaster] = {}

    def add(
        self,
        event_type: str,
        from_version: int,
        function: UpcastFunction,
        *,
        examples: Sequence[Mapping[str, Any]],
    ) -> None:
        """Declare an upcaster.

        Args:
            event_type: the type.
            from_version: the version it reads.
            function: turns that version's data into the next version's.
            examples: at least one payload of `from_version`: registration runs the function on
                each and checks the output against the next version's schema.

        Raises:
            UpcasterError: a bad type name or version, a function that is not callable, no
                examples or one that is not a JSON object, or an upcaster already declared for
                the type and version.
        """
        try:
            check_type_name(event_type)
            check_version(event_type, from_version)
        except ValueError as exc:
            raise UpcasterError(str(event_type), int(from_version or 0), str(exc)) from None
        if not callable(function):
            raise UpcasterError(event_type, from_version, f"{function!r} is not callable")
        if isinstance(examples, (str, bytes, Mapping)) or not isinstance(examples, Sequence):
            raise UpcasterError(
                event_type, from_version, "examples must be a list of payloads (dicts)"
            )
        if not examples:
            raise UpcasterError(
                event_type,
                from_version,
                "give at least one example payload of the version it reads: registration runs "
                "the upcaster on it and checks the output against the next version's schema",
            )
        for index, example in enumerate(examples):
            if not isinstance(example, Mapping):
                raise UpcasterError(
                    event_type,
                    from_version,
                    f"example {index} is a {type(example).__name__}, not a JSON object (dict)",
                )
        if (event_type, from_version) in self._by_key:
            raise UpcasterError(event_type, from_version, "an upcaster is already declared")
        self._by_key[(event_type, from_version)] = Upcaster(
            event_type, from_version, function, tuple(dict(example) for example in examples)
        )

    def upcaster(
        self, event_type: str, *, from_version: int, examples: Sequence[Mapping[str, Any]]
    ) -> Callable[[UpcastFunction], UpcastFunction]:
        """A decorator that declares the function it decorates (see `add`)."""

        def declare(function: UpcastFunction) -> UpcastFunction:
            self.add(event_type, from_version, function, examples=examples)
            return function

        return declare

    def __iter__(self) -> Iterator[Upcaster]:
        return iter(sorted(self._by_key.values(), key=lambda u: (u.event_type, u.from_version)))

    def __len__(self) -> int:
        return len(self._by_key)


class UpcastChain:
    """Checked upcasters: for each type, the chain from every version it covers to the version
    the application reads. Made by the registry (`SchemaRegistry.upcast_chain`, `sync`).

    Attributes:
        targets: per type with upcasters, the version its chain ends at.
    """

    def __init__(self, upcasters: Mapping[tuple[str, int], Upcaster], targets: Mapping[str, int]):
        self._functions = {key: upcaster.function for key, upcaster in upcasters.items()}
        self.targets = dict(targets)

    def covers(self, event_type: str, version: int) -> bool:
        """Whether events of this type and version are upcast."""
        return (event_type, version) in self._functions

    def upcast(
        self, event_type: str, version: int, data: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Upcast a payload to the newest version its chain reaches.

        Args:
            event_type: the type.
            version: the payload's version.
            data: the payload, which the functions may change: pass one of your own (a payload
                just decoded, or a copy).

        Returns:
            (the version reached, its data); the payload unchanged when nothing upcasts it.
        """
        functions = self._functions
        function = functions.get((event_type, version))
        while function is not None:
            data = function(data)
            version += 1
            function = functions.get((event_type, version))
        return version, data

    def __len__(self) -> int:
        return len(self._functions)

    def __repr__(self) -> str:
        return f"<UpcastChain of {len(self)} upcasters, targets {self.targets}>"


def check_chain(
    upcasters: Upcasters, state: RegistryState, targets: Mapping[str, int] | None = None
) -> UpcastChain:
    """Check declared upcasters against a registry's state and chain them.

    Args:
        upcasters: the declarations.
        state: the registry.
        targets: per type, the version the application reads (the newest class); a type not
            named reads its newest registered version.

    Returns:
        The chain.

    Raises:
        UpcasterError: an upcaster whose type or next version is not registered, a gap in a
            chain (a version between an upcaster and the target that nothing upcasts), an
            upcaster past the target, or an example that is invalid under its version or
            whose output is invalid under the next one (or that the function fails on).
    """
    by_key = {(u.event_type, u.from_version): u for u in upcasters}
    ends: dict[str, int] = {}
    for (event_type, from_version), upcaster in sorted(by_key.items()):
        versions = state.versions_of(event_type)
        if not versions:
            raise UpcasterError(
                event_type, from_version, f"{event_type!r} has no registered schema"
            )
        target = (targets or {}).get(event_type, versions[-1])
        ends[event_type] = target
        if from_version >= target:
            raise UpcasterError(
                event_type,
                from_version,
                f"it reads version {from_version}, but the application reads version {target}: "
                "an upcaster leads to the version the application reads, not past it",
            )
        for version in range(from_version + 1, target):
            if (event_type, version) not in by_key:
                raise UpcasterError(
                    event_type,
                    from_version,
                    f"a gap in the chain: nothing upcasts version {version}, so events of "
                    f"version {from_version} would stop there instead of reaching version "
                    f"{target}; declare an upcaster from version {version}",
                )
        _check_examples(upcaster, state)
    return UpcastChain(by_key, ends)


def _check_examples(upcaster: Upcaster, state: RegistryState) -> None:
    event_type, from_version = upcaster.event_type, upcaster.from_version
    following = state.schema(event_type, from_version + 1)
    if following is None:
        raise UpcasterError(
            event_type,
            from_version,
            f"version {from_version + 1} of {event_type!r} is not registered: an upcaster turns "
            f"version {from_version} into version {from_version + 1}; register that schema first",
        )
    source = state.schema(event_type, from_version)
    reads = None if source is None else compile_schema(event_type, from_version, source.schema)
    gives = compile_schema(event_type, from_version + 1, following.schema)
    for index, example in enumerate(upcaster.examples):
        if reads is not None and not reads.is_valid(example):
            path, reason = reads.errors(example)[0]
            raise UpcasterError(
                event_type,
                from_version,
                f"example {index} is not valid under version {from_version}: "
                f"{path or '/'}: {reason}",
            )
        try:
            output = upcaster.function(copy.deepcopy(example))
        except Exception as exc:
            raise UpcasterError(
                event_type,
                from_version,
                f"it raised on example {index}: {type(exc).__name__}: {exc}",
            ) from exc
        if not isinstance(output, dict):
            raise UpcasterError(
                event_type,
                from_version,
                f"it returned a {type(output).__name__} for example {index}, not a dict",
            )
        if not gives.is_valid(output):
            problems = "; ".join(f"{p or '/'}: {r}" for p, r in gives.errors(output)[:5])
            raise UpcasterError(
                event_type,
                from_version,
                f"its output for example {index} fails the schema of version "
                f"{from_version + 1}: {problems}",
            )
