"""Property: loading from a snapshot, then the later events, gives exactly a full replay: at
every version, as of every time (also when the clock went back), for states of datetimes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

import eventvault
from eventvault import EventStore
from eventvault.aggregates import (
    AggregateNotFoundError,
    MemorySnapshotStore,
    Repository,
    SnapshotStore,
    snapshot_store_for,
)
from tests.aggregates.domain import (
    Calendar,
    Counter,
    CounterState,
    Created,
    Incremented,
    Renamed,
    Scheduled,
    Tagged,
    meetings,
    registry,
    same_values,
)
from tests.aggregates.history import import_history

Command = tuple[str, int | str]

commands = st.one_of(
    st.tuples(st.just("increment"), st.integers(min_value=1, max_value=10**12)),
    st.tuples(st.just("tag"), st.text(max_size=8)),
    st.tuples(st.just("rename"), st.text(max_size=8)),
)
histories = st.lists(st.lists(commands, min_size=1, max_size=6), min_size=1, max_size=12)


def _run(counter: Counter, command: Command) -> None:
    name, argument = command
    if name == "increment":
        assert isinstance(argument, int)
        counter.increment(argument)
    elif name == "tag":
        counter.tag(str(argument))
    else:
        counter.rename(str(argument))


def _check_every_version_matches(
    store: EventStore, snapshots: SnapshotStore, saves: list[list[Command]], every: int
) -> None:
    with_snapshots = Repository(
        Counter, store, registry, snapshot_store=snapshots, snapshot_every=every
    )
    replay_only = Repository(Counter, store, registry)
    counter = Counter("p")
    counter.create("start")
    for save in saves:
        for command in save:
            _run(counter, command)
        with_snapshots.save(counter)
    last = counter.version
    if last + 1 >= every:
        assert snapshots.latest("counter-p", schema_version=1) is not None
    for version in [*range(last + 1), None]:
        from_snapshot = with_snapshots.get("p", version=version)
        replayed = replay_only.get("p", version=version)
        assert from_snapshot.state == replayed.state
        assert from_snapshot.version == replayed.version
    assert with_snapshots.get("p").state == counter.state


@settings(max_examples=150, deadline=None)
@given(saves=histories, every=st.integers(min_value=1, max_value=7))
def test_snapshot_loads_equal_full_replays_in_memory(
    saves: list[list[Command]], every: int
) -> None:
    with eventvault.connect("memory://") as store:
        _check_every_version_matches(store, MemorySnapshotStore(), saves, every)


@settings(max_examples=25, deadline=None)
@given(saves=histories, every=st.integers(min_value=1, max_value=7))
def test_snapshot_loads_equal_full_replays_in_sqlite(
    saves: list[list[Command]], every: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{os.path.join(directory, 'p.db')}?synchronous=NORMAL"
        with eventvault.connect(url) as store:
            snapshots = snapshot_store_for(store)
            try:
                _check_every_version_matches(store, snapshots, saves, every)
            finally:
                snapshots.close()


# -- past times, when the clock that set recorded_at went back -------------------------------

EVENT_OF: dict[str, Callable[[Any], msgspec.Struct]] = {
    "increment": lambda argument: Incremented(by=argument),
    "tag": lambda argument: Tagged(tag=argument),
    "rename": lambda argument: Renamed(name=argument),
}
DAY_US = 86_400_000_000
# Offsets from the start of the test: imported events fall before and after the appends that
# follow them, which the store records at the real time.
offsets = st.integers(min_value=-DAY_US, max_value=DAY_US)


def _as_of(counters: Repository[Counter], moment: datetime) -> tuple[int, CounterState] | None:
    try:
        counter = counters.get("p", as_of=moment)
    except AggregateNotFoundError:
        return None
    return counter.version, counter.state


def _check_as_of_matches(
    store: EventStore,
    snapshots: SnapshotStore,
    imported: list[tuple[Command, int]],
    saves: list[list[Command]],
    snapshot_at: set[int],
    every: int,
) -> None:
    start = datetime.now(UTC)
    history: list[tuple[msgspec.Struct, datetime]] = [(Created(name="start"), start)]
    for (name, argument), offset in imported:
        history.append((EVENT_OF[name](argument), start + timedelta(microseconds=offset)))
    import_history(store, registry, "counter-p", history)
    with_snapshots = Repository(
        Counter, store, registry, snapshot_store=snapshots, snapshot_every=every
    )
    replay_only = Repository(Counter, store, registry)
    for version in sorted(v for v in snapshot_at if v < len(history)):
        with_snapshots.take_snapshot(with_snapshots.get("p", version=version))
    counter = with_snapshots.get("p")
    for save in saves:
        for command in save:
            _run(counter, command)
        with_snapshots.save(counter)

    times = sorted({event.recorded_at for event in store.read_stream("counter-p")})
    moments = {times[0] - timedelta(seconds=1), times[-1] + timedelta(seconds=1)}
    for moment in times:
        moments.update((moment - timedelta(microseconds=1), moment))
    for moment in sorted(moments):
        assert _as_of(with_snapshots, moment) == _as_of(replay_only, moment), moment


imports = st.lists(st.tuples(commands, offsets), max_size=10)
later_saves = st.lists(st.lists(commands, min_size=1, max_size=4), max_size=5)
snapshot_versions = st.sets(st.integers(min_value=0, max_value=10), max_size=4)


@settings(max_examples=100, deadline=None)
@given(
    imported=imports,
    saves=later_saves,
    snapshot_at=snapshot_versions,
    every=st.integers(min_value=1, max_value=5),
)
def test_snapshot_loads_as_of_any_time_equal_full_replays_in_memory(
    imported: list[tuple[Command, int]],
    saves: list[list[Command]],
    snapshot_at: set[int],
    every: int,
) -> None:
    with eventvault.connect("memory://") as store:
        _check_as_of_matches(store, MemorySnapshotStore(), imported, saves, snapshot_at, every)


@settings(max_examples=20, deadline=None)
@given(
    imported=imports,
    saves=later_saves,
    snapshot_at=snapshot_versions,
    every=st.integers(min_value=1, max_value=5),
)
def test_snapshot_loads_as_of_any_time_equal_full_replays_in_sqlite(
    imported: list[tuple[Command, int]],
    saves: list[list[Command]],
    snapshot_at: set[int],
    every: int,
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{os.path.join(directory, 'p.db')}?synchronous=NORMAL"
        with eventvault.connect(url) as store:
            snapshots = snapshot_store_for(store)
            try:
                _check_as_of_matches(store, snapshots, imported, saves, snapshot_at, every)
            finally:
                snapshots.close()


# -- states holding datetimes with a UTC offset ----------------------------------------------

fixed_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.one_of(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=fixed_offsets
    ),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
)
schedules = st.lists(st.lists(moments, min_size=1, max_size=4), min_size=1, max_size=8)


def _check_calendar_matches(
    store: EventStore, snapshots: SnapshotStore, saves: list[list[datetime]], every: int
) -> None:
    with_snapshots = Repository(
        Calendar, store, meetings, snapshot_store=snapshots, snapshot_every=every
    )
    replay_only = Repository(Calendar, store, meetings)
    calendar = Calendar("p")
    for save in saves:
        for starts in save:
            calendar.record(Scheduled(starts=starts))
        with_snapshots.save(calendar)
    if calendar.version + 1 >= every:
        assert snapshots.latest("calendar-p", schema_version=1) is not None
    for version in [*range(calendar.version + 1), None]:
        from_snapshot = with_snapshots.get("p", version=version)
        replayed = replay_only.get("p", version=version)
        assert from_snapshot.version == replayed.version
        assert same_values(from_snapshot.state, replayed.state)


@settings(max_examples=100, deadline=None)
@given(saves=schedules, every=st.integers(min_value=1, max_value=4))
def test_snapshot_loads_of_offset_datetimes_equal_full_replays_in_memory(
    saves: list[list[datetime]], every: int
) -> None:
    with eventvault.connect("memory://") as store:
        _check_calendar_matches(store, MemorySnapshotStore(), saves, every)


@settings(max_examples=20, deadline=None)
@given(saves=schedules, every=st.integers(min_value=1, max_value=4))
def test_snapshot_loads_of_offset_datetimes_equal_full_replays_in_sqlite(
    saves: list[list[datetime]], every: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{os.path.join(directory, 'p.db')}?synchronous=NORMAL"
        with eventvault.connect(url) as store:
            snapshots = snapshot_store_for(store)
            try:
                _check_calendar_matches(store, snapshots, saves, every)
            finally:
                snapshots.close()
