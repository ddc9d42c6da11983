"""Property: loading from a snapshot, then the later events, gives exactly a full replay."""

from __future__ import annotations

import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

import eventvault
from eventvault import EventStore
from eventvault.aggregates import MemorySnapshotStore, Repository, SnapshotStore, snapshot_store_for
from tests.aggregates.domain import Counter, registry

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
