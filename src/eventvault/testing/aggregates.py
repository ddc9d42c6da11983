"""Given / when / then for aggregates, without a database.

::

    def test_withdrawing_past_the_overdraft_limit_is_refused() -> None:
        (
            AggregateScenario(Account, registry=registry)
            .given(AccountOpened(owner="Ada", overdraft_limit=100))
            .when(lambda account: account.withdraw(101))
            .then_raises(InsufficientFundsError)
        )

`given` replays past events (they are not pending), `when` runs one command, and `then` checks
the events the command recorded, in order, by equality. With a `registry`, every event is also
checked to be registered and to survive the trip through JSON unchanged, as a save and a load
would put it; one that a load could not decode raises the `EventDecodeError` the load would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar

import msgspec

from eventvault.aggregates.aggregate import Aggregate
from eventvault.aggregates.registry import EventRegistry
from eventvault.errors import EventDecodeError

__all__ = ["AggregateScenario"]

A = TypeVar("A", bound=Aggregate[Any])
X = TypeVar("X", bound=BaseException)


class AggregateScenario(Generic[A]):
    """One test of an aggregate: past events, one command, the expected outcome.

    Args:
        aggregate_type: the aggregate class under test.
        aggregate_id: the id of the aggregate the scenario builds.
        registry: when given, every given and recorded event must be registered in it and
            round-trip through JSON to an equal object.

    Raises:
        TypeError: `aggregate_type` is not an `Aggregate` subclass.
    """

    def __init__(
        self,
        aggregate_type: type[A],
        aggregate_id: str = "test",
        *,
        registry: EventRegistry | None = None,
    ) -> None:
        if not isinstance(aggregate_type, type) or not issubclass(aggregate_type, Aggregate):
            raise TypeError(f"aggregate_type must be an Aggregate subclass, not {aggregate_type!r}")
        self.aggregate_type = aggregate_type
        self.registry = registry
        self.aggregate: A = aggregate_type(aggregate_id)
        self._error: BaseException | None = None
        self._ran = False

    def given(self, *events: msgspec.Struct) -> Self:
        """Past events of the aggregate, replayed in order (they advance its version).

        Args:
            events: event objects the aggregate handles.

        Returns:
            The scenario, for chaining.

        Raises:
            AssertionError: `when` already ran, or an event fails the registry checks.
            EventDecodeError: (with a registry) an event, once stored, would not decode as its
                class, so a load would fail on it.
            MissingHandlerError: the aggregate has no handler for an event.
        """
        if self._ran:
            raise AssertionError("given() must come before when()")
        first = self.aggregate.version + 1
        for offset, event in enumerate(events):
            self._check_registered(event, "given", first + offset)
        self.aggregate.replay(events)
        return self

    def when(self, command: Callable[[A], object]) -> Self:
        """Run a command on the aggregate built from the given events.

        An exception the command raises is kept for `then_raises`; `then` reports it.

        Args:
            command: called with the aggregate, such as `lambda account: account.deposit(5)`.

        Returns:
            The scenario, for chaining.

        Raises:
            AssertionError: `when` already ran.
        """
        if self._ran:
            raise AssertionError("a scenario runs one command: when() was already called")
        self._ran = True
        try:
            command(self.aggregate)
        except Exception as exc:  # kept for then_raises, or reported by then
            self._error = exc
        return self

    def then(self, *events: msgspec.Struct) -> A:
        """Check that the command succeeded and recorded exactly these events, in order.

        Args:
            events: the expected events (none: the command recorded nothing).

        Returns:
            The aggregate, for further checks of its state.

        Raises:
            AssertionError: the command raised, or recorded other events, or an event fails
                the registry checks.
            EventDecodeError: (with a registry) a recorded event, once stored, would not decode
                as its class, so a load would fail on it.
        """
        self._require_run()
        if self._error is not None:
            raise AssertionError(
                f"expected {len(events)} event(s), but the command raised "
                f"{type(self._error).__name__}: {self._error}"
            ) from self._error
        recorded = list(self.aggregate.pending_events)
        if recorded != list(events):
            raise AssertionError(_difference(list(events), recorded))
        first = self.aggregate.version + 1
        for offset, event in enumerate(recorded):
            self._check_registered(event, "recorded", first + offset)
        return self.aggregate

    def then_nothing(self) -> A:
        """Check that the command succeeded and recorded no event.

        Returns:
            The aggregate.

        Raises:
            AssertionError: the command raised or recorded events.
        """
        return self.then()

    def then_raises(self, error: type[X], match: str | None = None) -> X:
        """Check that the command raised an error of this type and recorded nothing.

        Args:
            error: the expected exception class (a subclass matches too).
            match: a regular expression that must be found in the error's message.

        Returns:
            The exception, for further checks of its attributes.

        Raises:
            AssertionError: the command succeeded, raised something else, the message does
                not match, or events were recorded before it raised.
        """
        self._require_run()
        raised = self._error
        if raised is None:
            recorded = self.aggregate.pending_events
            raise AssertionError(
                f"expected {error.__name__}, but the command succeeded and recorded "
                f"{_listing(recorded) or 'nothing'}"
            )
        if not isinstance(raised, error):
            raise AssertionError(
                f"expected {error.__name__}, but the command raised "
                f"{type(raised).__name__}: {raised}"
            ) from raised
        if match is not None and not re.search(match, str(raised)):
            raise AssertionError(
                f"{error.__name__} raised with message {str(raised)!r}, "
                f"which does not match {match!r}"
            ) from raised
        if self.aggregate.pending_events:
            raise AssertionError(
                f"{error.__name__} raised as expected, but the command recorded "
                f"{_listing(self.aggregate.pending_events)} first"
            )
        return raised

    def _require_run(self) -> None:
        if not self._ran:
            raise AssertionError("call when(command) before then...()")

    def _check_registered(self, event: msgspec.Struct, role: str, position: int) -> None:
        """Check that an event, stored at `position` of the aggregate's stream, reads back
        equal: encoded as a save encodes it, decoded as a load decodes it."""
        registry = self.registry
        if registry is None:
            return
        if not registry.is_registered(type(event)):
            raise AssertionError(
                f"{role} event {event!r}: {type(event).__qualname__} is not registered"
            )
        entry = registry.type_of(type(event))
        try:
            data = msgspec.json.encode(event)
        except (msgspec.MsgspecError, TypeError, ValueError) as exc:
            raise AssertionError(f"{role} event {event!r} cannot be stored: {exc}") from exc
        try:
            back = msgspec.json.decode(data, type=entry.cls)
        except msgspec.DecodeError as exc:
            raise EventDecodeError(
                self.aggregate.stream_name,
                position,
                entry.name,
                entry.version,
                entry.cls,
                str(exc),
            ) from exc
        if back != event:
            raise AssertionError(
                f"{role} event {event!r} does not survive storage: it reads back as {back!r}"
            )


def _listing(events: list[msgspec.Struct]) -> str:
    return ", ".join(repr(event) for event in events)


def _difference(expected: list[msgspec.Struct], actual: list[msgspec.Struct]) -> str:
    lines = [f"expected {len(expected)} event(s), the command recorded {len(actual)}:"]
    for index in range(max(len(expected), len(actual))):
        want = repr(expected[index]) if index < len(expected) else "(none)"
        got = repr(actual[index]) if index < len(actual) else "(none)"
        mark = "  " if want == got else "! "
        lines.append(f"{mark}{index}: expected {want}")
        lines.append(f"{mark}{' ' * len(str(index))}  recorded {got}")
    return "\n".join(lines)
