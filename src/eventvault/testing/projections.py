"""Given / then for projections, without a database server: events in, the read model out.

::

    def test_a_deposit_raises_the_balance() -> None:
        (
            ProjectionScenario(Balances())
            .given("account-1", AccountOpened(owner="Ada"), MoneyDeposited(amount=100))
            .given("account-2", AccountOpened(owner="Bob"))
            .then(
                "SELECT account, balance FROM balances ORDER BY account",
                [("account-1", 100), ("account-2", 0)],
            )
        )

The events are appended to an in-memory store and the projection runs through the real
runner, batches, checkpoints and view switch included, with its read model in the store's
in-memory database (also a projection whose `database` names another one): what a test sees is
what a deployment does, without a file or a server.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import TracebackType
from typing import Generic, Self, TypeVar

import msgspec

from eventvault.errors import EventVaultError
from eventvault.projections.failures import Failure
from eventvault.projections.projection import Projection, ProjectionBase
from eventvault.projections.runner import ProjectionRunner
from eventvault.projections.status import projection_status
from eventvault.store.connect import connect
from eventvault.store.seam import SQLRow
from eventvault.types import NewEvent, StreamState

__all__ = ["ProjectionScenario"]

P = TypeVar("P", bound=ProjectionBase)
X = TypeVar("X", bound=BaseException)


def _in_the_store(projection: P) -> P:
    """The projection with its read model in the store's own database."""
    if not isinstance(projection, Projection) or projection.database is None:
        return projection
    cls = type(projection)
    local = type(cls.__name__, (cls,), {"database": None})
    clone: P = object.__new__(local)
    clone.__dict__.update(projection.__dict__)
    return clone


class ProjectionScenario(Generic[P]):
    """One test of a projection: past events, then the read model (or the failure).

    Args:
        projection: the projection under test (an instance).
        timeout: the most seconds the projection may take to apply the events.

    Raises:
        TypeError: `projection` is not a projection instance.
    """

    def __init__(self, projection: P, *, timeout: float = 30.0) -> None:
        if not isinstance(projection, ProjectionBase):
            raise TypeError(f"give a projection instance, not {projection!r}")
        self.projection = projection
        self._local = _in_the_store(projection)
        self.store = connect("memory://")
        self._timeout = timeout
        self._applied = 0

    def given(self, stream_name: str, *events: msgspec.Struct | NewEvent) -> Self:
        """Events of one stream, appended in order (typed events through the projection's
        registry).

        Args:
            stream_name: the stream, such as `account-1`.
            events: registered event objects, or `NewEvent`s.

        Returns:
            The scenario, for chaining.

        Raises:
            UnregisteredEventError: a typed event's class is not in the projection's registry.
            AssertionError: a typed event is given and the projection has no registry.
        """
        registry = self.projection.registry
        new: list[NewEvent] = []
        for event in events:
            if isinstance(event, NewEvent):
                new.append(event)
            elif registry is None:
                raise AssertionError(
                    f"{self.projection!r} has no registry to store {type(event).__qualname__}; "
                    "give NewEvent objects"
                )
            else:
                new.append(registry.to_new_event(event))
        if new:
            self.store.append_to_stream(stream_name, new, expected_version=StreamState.ANY)
        return self

    def run(self) -> Failure | None:
        """Apply every event given so far.

        Returns:
            The failure the projection stopped at, or None.

        Raises:
            AssertionError: it did not finish in time.
        """
        runner = ProjectionRunner(self.store, [self._local], lease_seconds=60)
        if not runner.catch_up(self._timeout):
            raise AssertionError(f"{self.projection!r} did not apply the events in time")
        [status] = projection_status(self.store, [self._local])
        return status.failure

    def query(self, statement: str, params: Sequence[object] = ()) -> list[SQLRow]:
        """Apply the events given so far and read the read model (SQLite SQL, the tables by
        their names: the views of the active version).

        Returns:
            The rows.

        Raises:
            AssertionError: the projection stopped at a failing event.
        """
        failure = self.run()
        if failure is not None:
            raise AssertionError(
                f"{self.projection!r} stopped at {failure.stream_name}@{failure.stream_position} "
                f"({failure.event_type}): {failure.error}\n{failure.details}"
            )
        try:
            return self.store.query(statement, params)
        except EventVaultError as exc:
            raise AssertionError(f"the query failed: {exc}") from exc

    def then(
        self, statement: str, expected: Sequence[Sequence[object]], params: Sequence[object] = ()
    ) -> list[SQLRow]:
        """Check that a query of the read model gives exactly these rows, in order.

        Returns:
            The rows.

        Raises:
            AssertionError: other rows (the message lists both), or the projection failed.
        """
        rows = self.query(statement, params)
        want = [tuple(row) for row in expected]
        got = [tuple(row) for row in rows]
        if got != want:
            lines = [f"{statement} gave {len(got)} row(s), expected {len(want)}:"]
            for index in range(max(len(got), len(want))):
                a = repr(want[index]) if index < len(want) else "(none)"
                b = repr(got[index]) if index < len(got) else "(none)"
                lines.append(f"{'  ' if a == b else '! '}{index}: expected {a}, got {b}")
            raise AssertionError("\n".join(lines))
        return rows

    def then_fails(self, error: type[X], match: str | None = None) -> Failure:
        """Check that the projection stopped at an event because a handler raised `error`.

        Args:
            error: the exception class the handler raised.
            match: a regular expression that must be found in the error's text.

        Returns:
            The failure (the event's stream, positions, type and the error).

        Raises:
            AssertionError: it did not fail, or failed with another error.
        """
        failure = self.run()
        if failure is None:
            raise AssertionError(f"expected {error.__name__}, but every event was applied")
        name = failure.error.split(":", 1)[0]
        if name != error.__name__ or (match is not None and not re.search(match, failure.error)):
            raise AssertionError(f"expected {error.__name__}, but it failed with {failure.error}")
        return failure

    def close(self) -> None:
        """Close the in-memory store."""
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
