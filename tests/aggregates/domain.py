"""A small domain for the aggregate tests: a counter with a name and a list of tags."""

from __future__ import annotations

from datetime import datetime

import msgspec

from eventvault.aggregates import Aggregate, EventRegistry, applies

registry = EventRegistry()


@registry.event("CounterCreated", version=1)
class Created(msgspec.Struct, frozen=True):
    """The counter was created."""

    name: str


@registry.event("CounterIncremented", version=1)
class Incremented(msgspec.Struct, frozen=True):
    """The counter went up."""

    by: int


@registry.event("CounterTagged", version=1)
class Tagged(msgspec.Struct, frozen=True):
    """A tag was added."""

    tag: str


@registry.event("CounterRenamed", version=1)
class Renamed(msgspec.Struct, frozen=True):
    """The counter got a new name."""

    name: str


class CounterState(msgspec.Struct):
    """What a counter knows."""

    name: str = ""
    value: int = 0
    tags: list[str] = msgspec.field(default_factory=list)
    renames: dict[str, int] = msgspec.field(default_factory=dict)


class CounterError(Exception):
    """A counter command broke a rule."""


class Counter(Aggregate[CounterState]):
    """A counter; its stream is `counter-<id>`."""

    category = "counter"
    state_type = CounterState

    def create(self, name: str) -> None:
        """Create the counter."""
        if not self.is_new or self.pending_events:
            raise CounterError("already created")
        self.record(Created(name=name))

    def increment(self, by: int = 1) -> None:
        """Add to the value; `by` must be positive."""
        if by <= 0:
            raise CounterError(f"by must be positive, not {by}")
        self.record(Incremented(by=by))

    def tag(self, tag: str) -> None:
        """Add a tag."""
        self.record(Tagged(tag=tag))

    def rename(self, name: str) -> None:
        """Rename the counter."""
        self.record(Renamed(name=name))

    @applies(Created)
    def _created(self, event: Created) -> None:
        self.state.name = event.name

    @applies(Incremented)
    def _incremented(self, event: Incremented) -> None:
        self.state.value += event.by

    @applies(Tagged)
    def _tagged(self, event: Tagged) -> None:
        self.state.tags.append(event.tag)

    @applies(Renamed)
    def _renamed(self, event: Renamed) -> None:
        self.state.renames[self.state.name] = self.state.renames.get(self.state.name, 0) + 1
        self.state.name = event.name


def new_counter(counter_id: str, *, increments: int = 0, name: str = "c") -> Counter:
    """A created counter with some pending increments of 1."""
    counter = Counter(counter_id)
    counter.create(name)
    for _ in range(increments):
        counter.increment()
    return counter


# -- a calendar: a state of datetimes, each with the UTC offset its event carried ---------

meetings = EventRegistry()


@meetings.event("MeetingScheduled", version=1)
class Scheduled(msgspec.Struct, frozen=True):
    """A meeting was put in the calendar, at a local time."""

    starts: datetime


class CalendarState(msgspec.Struct):
    """The meetings, as scheduled."""

    first: datetime | None = None
    starts: list[datetime] = msgspec.field(default_factory=list)
    by_start: dict[datetime, int] = msgspec.field(default_factory=dict)


class Calendar(Aggregate[CalendarState]):
    """A calendar; its stream is `calendar-<id>`."""

    category = "calendar"
    state_type = CalendarState

    @applies(Scheduled)
    def _scheduled(self, event: Scheduled) -> None:
        if self.state.first is None:
            self.state.first = event.starts
        self.state.starts.append(event.starts)
        self.state.by_start[event.starts] = len(self.state.starts)


def same_values(left: object, right: object) -> bool:
    """Equal, and every datetime with the same UTC offset (== compares instants only)."""
    return left == right and msgspec.json.encode(left) == msgspec.json.encode(right)
