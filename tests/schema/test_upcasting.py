"""Upcasting on every engine: chains checked at registration, applied on read by the domain
layer, stored bytes untouched; snapshots upcast or discarded."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
import pytest

from eventvault import EventStore, NewEvent, StreamState
from eventvault.aggregates import Aggregate, EventRegistry, MemorySnapshotStore, Repository, applies
from eventvault.errors import AggregateDefinitionError, UpcasterError
from eventvault.schema import SchemaRegistry, Upcasters
from eventvault.serialization import verify_chain

ANY = StreamState.ANY


class OpenedV1(msgspec.Struct, frozen=True):
    owner: str


class OpenedV2(msgspec.Struct, frozen=True):
    owner: str
    currency: str = "EUR"


class OpenedV3(msgspec.Struct, frozen=True):
    holder: str
    currency: str


def registries() -> tuple[EventRegistry, EventRegistry, EventRegistry]:
    one, two, three = EventRegistry(), EventRegistry(), EventRegistry()
    one.register(OpenedV1, name="AccountOpened", version=1)
    two.register(OpenedV2, name="AccountOpened", version=2)
    three.register(OpenedV3, name="AccountOpened", version=3)
    return one, two, three


def chain() -> Upcasters:
    upcasters = Upcasters()

    @upcasters.upcaster("AccountOpened", from_version=1, examples=[{"owner": "Ada"}])
    def add_currency(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "currency": "EUR"}

    @upcasters.upcaster(
        "AccountOpened", from_version=2, examples=[{"owner": "Ada", "currency": "USD"}]
    )
    def rename_owner(data: dict[str, Any]) -> dict[str, Any]:
        data["holder"] = data.pop("owner")
        return data

    return upcasters


def evolve(store: EventStore) -> tuple[SchemaRegistry, EventRegistry]:
    """Version 1 events in the store, then versions 2 and 3 registered (mode NONE for the
    rename), the application reading version 3."""
    one, two, three = registries()
    registry = SchemaRegistry(store)
    registry.sync(one)
    store.append_to_stream(
        "account-1", [one.to_new_event(OpenedV1("Ada"))], expected_version=StreamState.NO_STREAM
    )
    registry.sync(two)
    store.append_to_stream(
        "account-2", [two.to_new_event(OpenedV2("Bo", "USD"))], expected_version=ANY
    )
    registry.set_mode("AccountOpened", "NONE")
    registry.sync(three, upcasters=chain())
    return registry, three


def test_older_versions_are_read_as_the_newest_class(store: EventStore) -> None:
    _, events = evolve(store)
    decoded = [events.decode(e) for e in store.read_all()]
    assert decoded == [OpenedV3("Ada", "EUR"), OpenedV3("Bo", "USD")]


def test_upcasting_never_rewrites_stored_bytes(store: EventStore) -> None:
    _, events = evolve(store)
    recorded = list(store.read_stream("account-1"))
    events.decode(recorded[0])
    assert recorded[0].data == {"owner": "Ada"}
    assert [e.data for e in store.read_stream("account-1")] == [{"owner": "Ada"}]
    assert [e.schema_version for e in store.read_stream("account-1")] == [1]
    verify_chain(store.read_stream("account-1"))
    verify_chain(store.export_events())


class AccountState(msgspec.Struct):
    holder: str = ""
    currency: str = ""


class Account(Aggregate[AccountState]):
    category = "account"
    state_type = AccountState

    @applies(OpenedV3)
    def _opened(self, event: OpenedV3) -> None:
        self.state.holder = event.holder
        self.state.currency = event.currency


def test_repository_loads_upcast_older_events(store: EventStore) -> None:
    _, events = evolve(store)
    accounts = Repository(Account, store, events)
    account = accounts.get("1")
    assert (account.state.holder, account.state.currency, account.version) == ("Ada", "EUR", 0)


def test_a_repository_made_before_the_upcasters_were_registered_uses_them(
    store: EventStore,
) -> None:
    one, two, three = registries()
    registry = SchemaRegistry(store)
    registry.sync(one)
    store.append_to_stream("account-1", [one.to_new_event(OpenedV1("Ada"))], expected_version=ANY)
    registry.sync(two)
    registry.set_mode("AccountOpened", "NONE")
    accounts = Repository(Account, store, three)
    registry.sync(three, upcasters=chain())
    assert accounts.get("1").state.holder == "Ada"


def test_a_gap_in_a_chain_is_refused_at_registration(store: EventStore) -> None:
    one, two, three = registries()
    registry = SchemaRegistry(store)
    registry.sync(one)
    registry.sync(two)
    registry.set_mode("AccountOpened", "NONE")
    only_first = Upcasters()
    only_first.add(
        "AccountOpened", 1, lambda data: {**data, "currency": "EUR"}, examples=[{"owner": "A"}]
    )
    with pytest.raises(UpcasterError, match="a gap in the chain: nothing upcasts version 2"):
        registry.sync(three, upcasters=only_first)
    assert [v.version for v in registry.versions("AccountOpened")] == [1, 2]
    assert three.upcasts is None


def test_an_upcaster_whose_output_fails_the_next_schema_is_refused_at_registration(
    store: EventStore,
) -> None:
    one, two, _ = registries()
    registry = SchemaRegistry(store)
    registry.sync(one)
    wrong = Upcasters()
    wrong.add("AccountOpened", 1, lambda data: {**data, "currency": 978}, examples=[{"owner": "A"}])
    with pytest.raises(UpcasterError) as caught:
        registry.sync(two, upcasters=wrong)
    assert "output for example 0 fails the schema of version 2" in str(caught.value)
    assert "/currency" in str(caught.value)
    assert [v.version for v in registry.versions("AccountOpened")] == [1]


def test_an_example_that_is_not_valid_under_its_version_is_refused(store: EventStore) -> None:
    one, two, _ = registries()
    registry = SchemaRegistry(store)
    registry.sync(one)
    wrong = Upcasters()
    wrong.add("AccountOpened", 1, lambda data: {**data, "currency": "EUR"}, examples=[{"name": 1}])
    with pytest.raises(UpcasterError, match="example 0 is not valid under version 1"):
        registry.sync(two, upcasters=wrong)


def test_an_upcaster_that_raises_on_an_example_is_refused(store: EventStore) -> None:
    one, two, _ = registries()
    registry = SchemaRegistry(store)
    registry.sync(one)
    wrong = Upcasters()
    wrong.add(
        "AccountOpened", 1, lambda data: {"currency": data["missing"]}, examples=[{"owner": "A"}]
    )
    with pytest.raises(UpcasterError, match="it raised on example 0: KeyError"):
        registry.sync(two, upcasters=wrong)


def test_an_upcaster_to_a_version_that_is_not_registered_is_refused(store: EventStore) -> None:
    one, _, _ = registries()
    registry = SchemaRegistry(store)
    registry.sync(one)
    ahead = Upcasters()
    ahead.add("AccountOpened", 1, lambda data: data, examples=[{"owner": "A"}])
    with pytest.raises(UpcasterError, match="reads version 1, but the application reads version 1"):
        registry.upcast_chain(ahead)


@pytest.mark.parametrize(
    ("event_type", "version", "examples", "reason"),
    [
        ("", 1, [{}], "non-empty str"),
        ("A", 0, [{}], "from 1 to"),
        ("A", 1, [], "at least one example"),
        ("A", 1, [[1]], "example 0 is a list"),
        ("A", 1, {"a": 1}, "a list of payloads"),
    ],
)
def test_a_malformed_upcaster_is_refused_when_declared(
    event_type: str, version: int, examples: Any, reason: str
) -> None:
    with pytest.raises(UpcasterError, match=reason):
        Upcasters().add(event_type, version, lambda data: data, examples=examples)


def test_an_upcaster_declared_twice_is_refused() -> None:
    upcasters = Upcasters()
    upcasters.add("A", 1, lambda data: data, examples=[{}])
    with pytest.raises(UpcasterError, match="already declared"):
        upcasters.add("A", 1, lambda data: data, examples=[{}])


# -- snapshots --------------------------------------------------------------------------------


class TallyV1(msgspec.Struct):
    count: int = 0


class TallyV2(msgspec.Struct):
    total: int = 0
    label: str = ""


class Counted(msgspec.Struct, frozen=True):
    by: int


COUNTS = EventRegistry()
COUNTS.register(Counted, name="Counted", version=1)


class CounterV1(Aggregate[TallyV1]):
    category = "counter"
    state_type = TallyV1

    @applies(Counted)
    def _counted(self, event: Counted) -> None:
        self.state.count += event.by


class CounterV2(Aggregate[TallyV2]):
    category = "counter"
    state_type = TallyV2
    snapshot_version = 2
    snapshot_upcasters: ClassVar[dict[int, Any]] = {
        1: lambda state: {"total": state["count"], "label": "upcast"}
    }

    @applies(Counted)
    def _counted(self, event: Counted) -> None:
        self.state.total += event.by


class CounterV2Plain(Aggregate[TallyV2]):
    category = "counter"
    state_type = TallyV2
    snapshot_version = 2

    @applies(Counted)
    def _counted(self, event: Counted) -> None:
        self.state.total += event.by


def snapshot_at_version_1(store: EventStore) -> MemorySnapshotStore:
    snapshots = MemorySnapshotStore()
    with Repository(CounterV1, store, COUNTS, snapshot_store=snapshots) as old:
        counter = CounterV1("c")
        for _ in range(3):
            counter.record(Counted(2))
        old.save(counter)
        old.take_snapshot(counter)
    return snapshots


def test_a_snapshot_of_an_older_state_version_is_upcast_on_load(store: EventStore) -> None:
    snapshots = snapshot_at_version_1(store)
    with Repository(CounterV2, store, COUNTS, snapshot_store=snapshots) as new:
        counter = new.get("c")
    # The label shows the state came from the upcast snapshot, not from a replay.
    assert (counter.state.total, counter.state.label, counter.version) == (6, "upcast", 2)


def test_a_snapshot_of_an_older_state_version_without_upcaster_is_discarded(
    store: EventStore,
) -> None:
    snapshots = snapshot_at_version_1(store)
    with Repository(CounterV2Plain, store, COUNTS, snapshot_store=snapshots) as new:
        counter = new.get("c")
    assert (counter.state.total, counter.state.label, counter.version) == (6, "", 2)


def test_a_failing_snapshot_upcaster_replays_instead(store: EventStore) -> None:
    snapshots = snapshot_at_version_1(store)

    class Broken(CounterV2Plain):
        snapshot_upcasters: ClassVar[dict[int, Any]] = {1: lambda state: state["missing"]}

    with Repository(Broken, store, COUNTS, snapshot_store=snapshots) as new:
        assert new.get("c").state.total == 6


def test_a_gap_in_the_snapshot_upcasters_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(AggregateDefinitionError, match="nothing upcasts version 2"):

        class Gappy(Aggregate[TallyV2]):
            category = "gappy"
            state_type = TallyV2
            snapshot_version = 3
            snapshot_upcasters: ClassVar[dict[int, Any]] = {1: lambda state: state}

    with pytest.raises(AggregateDefinitionError, match="not an older snapshot_version"):

        class Ahead(Aggregate[TallyV2]):
            category = "ahead"
            state_type = TallyV2
            snapshot_version = 2
            snapshot_upcasters: ClassVar[dict[int, Any]] = {2: lambda state: state}


def test_new_event_of_the_newest_version_decodes_directly(store: EventStore) -> None:
    _, events = evolve(store)
    store.append_to_stream(
        "account-3",
        [NewEvent("AccountOpened", {"holder": "Cy", "currency": "GBP"}, schema_version=3)],
        expected_version=ANY,
    )
    assert events.decode(next(store.read_stream("account-3"))) == OpenedV3("Cy", "GBP")


# -- versions the next one reads unchanged ----------------------------------------------------


class NoteV1(msgspec.Struct, frozen=True):
    text: str


class NoteV2(msgspec.Struct, frozen=True):
    text: str
    pinned: bool = False


class NoteState(msgspec.Struct):
    texts: list[str] = msgspec.field(default_factory=list)
    pinned: int = 0


class Notebook(Aggregate[NoteState]):
    category = "notebook"
    state_type = NoteState

    @applies(NoteV2)
    def _noted(self, event: NoteV2) -> None:
        self.state.texts.append(event.text)
        self.state.pinned += event.pinned


def test_a_compatible_version_needs_no_upcaster_old_events_read_as_the_new_class(
    store: EventStore,
) -> None:
    one, two = EventRegistry(), EventRegistry()
    one.register(NoteV1, name="NoteTaken", version=1)
    two.register(NoteV2, name="NoteTaken", version=2)
    registry = SchemaRegistry(store)
    registry.sync(one)
    store.append_to_stream("notebook-1", [one.to_new_event(NoteV1("old"))], expected_version=ANY)
    report = registry.sync(two)
    assert (report.registered, report.upcasters) == ([("NoteTaken", 2)], 1)
    store.append_to_stream(
        "notebook-1", [two.to_new_event(NoteV2("new", pinned=True))], expected_version=ANY
    )
    assert [two.decode(e) for e in store.read_stream("notebook-1")] == [
        NoteV2("old"),
        NoteV2("new", pinned=True),
    ]
    assert two.upcasts is not None and two.upcasts.unchanged("NoteTaken", 1)
    state = Repository(Notebook, store, two).get("1").state
    assert (state.texts, state.pinned) == (["old", "new"], 1)


def test_a_breaking_version_without_upcaster_or_old_class_is_refused_at_sync(
    store: EventStore,
) -> None:
    one, _, _ = registries()
    registry = SchemaRegistry(store)
    registry.sync(one)
    registry.set_mode("AccountOpened", "NONE")
    renamed = EventRegistry()
    renamed.register(OpenedV3, name="AccountOpened", version=2)
    with pytest.raises(UpcasterError, match="events of version 1 cannot be read"):
        registry.sync(renamed)
    assert [v.version for v in registry.versions("AccountOpened")] == [1]


def test_an_application_that_keeps_the_old_class_needs_no_upcaster(store: EventStore) -> None:
    one, _, _ = registries()
    registry = SchemaRegistry(store)
    registry.sync(one)
    registry.set_mode("AccountOpened", "NONE")
    both = EventRegistry()
    both.register(OpenedV1, name="AccountOpened", version=1)
    both.register(OpenedV3, name="AccountOpened", version=2)
    assert registry.sync(both).registered == [("AccountOpened", 2)]
