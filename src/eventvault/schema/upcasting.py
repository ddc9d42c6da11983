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
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, TypeAlias

from eventvault.errors import UpcasterError
from eventvault.schema.compatibility import compare
from eventvault.schema.state import RegistryState, SchemaVersion, check_type_name, check_version
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


def _unchanged(data: dict[str, Any]) -> dict[str, Any]:
    return data


class UpcastChain:
    """Checked upcasters: for each type, the chain from every version it covers to the version
    the application reads. Made by the registry (`SchemaRegistry.upcast_chain`, `sync`).

    A step is a declared upcaster, or, where none is declared and the next version reads the
    data of a version unchanged (the two are BACKWARD-compatible), a step that keeps the data
    as it is.

    Attributes:
        targets: per type with steps, the version its chain ends at.
    """

    def __init__(
        self,
        steps: Mapping[tuple[str, int], UpcastFunction],
        targets: Mapping[str, int],
    ) -> None:
        self._functions = dict(steps)
        self.targets = dict(targets)

    def covers(self, event_type: str, version: int) -> bool:
        """Whether events of this type and version are upcast."""
        return (event_type, version) in self._functions

    def unchanged(self, event_type: str, version: int) -> bool:
        """Whether every step from this version to the end of its chain keeps the data as it
        is (the payload decodes directly as the newest class)."""
        functions = self._functions
        function = functions.get((event_type, version))
        while function is not None:
            if function is not _unchanged:
                return False
            version += 1
            function = functions.get((event_type, version))
        return True

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
        return f"<UpcastChain of {len(self)} steps, targets {self.targets}>"


def check_chain(
    upcasters: Upcasters,
    state: RegistryState,
    targets: Mapping[str, int] | None = None,
    classes: Set[tuple[str, int]] | None = None,
) -> UpcastChain:
    """Check declared upcasters against a registry's state and chain them.

    Args:
        upcasters: the declarations.
        state: the registry.
        targets: per type, the version the application reads (the newest class); a type not
            named reads its newest registered version.
        classes: the (type, version) pairs the application has classes for; when given, every
            registered version older than its type's target must be read through the chain
            or have a class of its own.

    Returns:
        The chain.

    Raises:
        UpcasterError: an upcaster whose type or next version is not registered, a gap in a
            chain (a version between an upcaster and the target that nothing upcasts and whose
            next version does not read it unchanged), an upcaster past the target, an example
            that is invalid under its version or whose output is invalid under the next one
            (or that the function fails on), or (with `classes`) a registered version the
            application could not read.
    """
    declared = {(u.event_type, u.from_version): u for u in upcasters}
    chosen = dict(targets or {})
    steps: dict[tuple[str, int], UpcastFunction] = {
        key: upcaster.function for key, upcaster in declared.items()
    }
    ends: dict[str, int] = {}
    for event_type in sorted({key[0] for key in declared} | set(chosen)):
        versions = state.versions_of(event_type)
        first = min((v for t, v in declared if t == event_type), default=None)
        if not versions:
            if first is not None:
                raise UpcasterError(event_type, first, f"{event_type!r} has no registered schema")
            continue
        target = chosen.get(event_type, versions[-1])
        for version in versions:
            if version < target and (event_type, version) not in steps:
                following = state.schema(event_type, version + 1)
                current = state.schema(event_type, version)
                if following is not None and current is not None and _reads(current, following):
                    steps[(event_type, version)] = _unchanged
        if any(key[0] == event_type for key in steps):
            ends[event_type] = target
        for (name, _), upcaster in sorted(declared.items()):
            if name == event_type:
                _check_link(upcaster, state, target, steps)
        if classes is not None:
            _check_readable(event_type, versions, target, steps, classes)
    for upcaster in declared.values():
        _check_examples(upcaster, state)
    return UpcastChain(steps, ends)


def _reads(current: SchemaVersion, following: SchemaVersion) -> bool:
    """Whether the next version reads this version's data unchanged (BACKWARD between them)."""
    return all(d.compatible for d in compare(current.schema, following.schema))


def _check_link(
    upcaster: Upcaster,
    state: RegistryState,
    target: int,
    steps: Mapping[tuple[str, int], UpcastFunction],
) -> None:
    event_type, from_version = upcaster.event_type, upcaster.from_version
    if from_version >= target:
        raise UpcasterError(
            event_type,
            from_version,
            f"it reads version {from_version}, but the application reads version {target}: "
            "an upcaster leads to the version the application reads, not past it",
        )
    for version in range(from_version + 1, target):
        if (event_type, version) not in steps:
            raise UpcasterError(
                event_type,
                from_version,
                f"a gap in the chain: nothing upcasts version {version} (and version "
                f"{version + 1} does not read it unchanged), so events of version "
                f"{from_version} would stop there instead of reaching version {target}; declare "
                f"an upcaster from version {version}",
            )


def _check_readable(
    event_type: str,
    versions: Sequence[int],
    target: int,
    steps: Mapping[tuple[str, int], UpcastFunction],
    classes: Set[tuple[str, int]],
) -> None:
    """Every registered version older than the target reaches a class through the chain."""
    for version in versions:
        if version >= target or (event_type, version) in classes:
            continue
        reached = version
        while (event_type, reached) in steps:
            reached += 1
        if (event_type, reached) not in classes:
            raise UpcasterError(
                event_type,
                reached,
                f"events of version {version} cannot be read: nothing upcasts version "
                f"{reached} (and version {reached + 1} does not read it unchanged), and the "
                f"application has no class for it; declare an upcaster from version {reached}",
            )


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
