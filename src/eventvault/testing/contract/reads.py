"""Contract: reading streams and the global log, idempotent retries, the hash chain."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from eventvault import EventStore, NewEvent, StreamAppend, StreamState, WrongExpectedVersionError
from eventvault.errors import (
    DuplicateEventIdError,
    HashChainError,
    ImportFileError,
    InvalidArgumentError,
    InvalidEventError,
    InvalidStreamNameError,
    StoreClosedError,
)
from eventvault.serialization import GENESIS_HASH, event_hash, to_micros, verify_chain
from eventvault.store.base import DEFAULT_PAGE_SIZE
from eventvault.testing.contract.base import ContractBase, EngineSpec, events
from eventvault.types import RawEvent

__all__ = ["HashChainContract", "IdempotencyContract", "ReadContract"]


def _with_ids(count: int) -> list[NewEvent]:
    return [NewEvent("Paid", {"n": n}, event_id=uuid.uuid4()) for n in range(count)]


class IdempotencyContract(ContractBase):
    """Re-sent appends return the original result and store nothing twice (guarantee 4)."""

    def test_retry_with_same_ids_and_expected_version_returns_original_result(
        self, store: EventStore
    ) -> None:
        batch = _with_ids(3)
        first = store.append_to_stream("pay-1", batch, expected_version=StreamState.NO_STREAM)
        store.append_to_stream("other-1", events(1), expected_version=StreamState.ANY)
        again = store.append_to_stream("pay-1", batch, expected_version=StreamState.NO_STREAM)
        assert again == first
        assert len(list(store.read_stream("pay-1"))) == 3
        assert store.head_position() == 4

    def test_retry_with_exact_version_returns_original_result(self, store: EventStore) -> None:
        store.append_to_stream("pay-1", events(2), expected_version=StreamState.NO_STREAM)
        batch = _with_ids(2)
        first = store.append_to_stream("pay-1", batch, expected_version=1)
        store.append_to_stream("pay-1", events(1), expected_version=3)
        assert store.append_to_stream("pay-1", batch, expected_version=1) == first
        assert store.get_stream_version("pay-1") == 4

    def test_retry_with_any_returns_original_result(self, store: EventStore) -> None:
        batch = _with_ids(2)
        first = store.append_to_stream("pay-1", batch, expected_version=StreamState.ANY)
        assert store.append_to_stream("pay-1", batch, expected_version=StreamState.ANY) == first
        assert store.get_stream_version("pay-1") == 1

    def test_retry_after_reopening_returns_original_result(self, engine: EngineSpec) -> None:
        if not engine.durable:
            pytest.skip(f"{engine.name} keeps nothing after close")
        batch = _with_ids(2)
        with engine.open() as store:
            first = store.append_to_stream("pay-1", batch, expected_version=StreamState.NO_STREAM)
        with engine.open() as store:
            again = store.append_to_stream("pay-1", batch, expected_version=StreamState.NO_STREAM)
            assert again == first
            assert store.head_position() == 2

    def test_same_event_id_in_another_stream_raises(self, store: EventStore) -> None:
        batch = _with_ids(1)
        store.append_to_stream("pay-1", batch, expected_version=StreamState.ANY)
        with pytest.raises(DuplicateEventIdError) as caught:
            store.append_to_stream("pay-2", batch, expected_version=StreamState.ANY)
        assert caught.value.event_id == batch[0].event_id
        assert caught.value.existing_stream_name == "pay-1"
        assert store.get_stream_version("pay-2") is None

    def test_same_ids_placed_differently_in_the_same_stream_raise(self, store: EventStore) -> None:
        batch = _with_ids(1)
        store.append_to_stream("pay-1", events(1), expected_version=StreamState.NO_STREAM)
        store.append_to_stream("pay-1", batch, expected_version=0)
        with pytest.raises(DuplicateEventIdError):
            store.append_to_stream("pay-1", batch, expected_version=StreamState.NO_STREAM)
        assert store.get_stream_version("pay-1") == 1

    def test_retry_that_adds_a_new_event_raises(self, store: EventStore) -> None:
        batch = _with_ids(2)
        store.append_to_stream("pay-1", batch, expected_version=StreamState.NO_STREAM)
        with pytest.raises(DuplicateEventIdError):
            store.append_to_stream(
                "pay-1", [*batch, *_with_ids(1)], expected_version=StreamState.ANY
            )
        assert store.get_stream_version("pay-1") == 1

    def test_version_conflict_with_new_ids_still_raises(self, store: EventStore) -> None:
        store.append_to_stream("pay-1", _with_ids(1), expected_version=StreamState.NO_STREAM)
        with pytest.raises(WrongExpectedVersionError):
            store.append_to_stream("pay-1", _with_ids(1), expected_version=StreamState.NO_STREAM)

    def test_one_append_repeating_an_event_id_raises(self, store: EventStore) -> None:
        event_id = uuid.uuid4()
        with pytest.raises(InvalidEventError, match="repeats"):
            store.append_to_stream(
                "pay-1",
                [NewEvent("A", {}, event_id=event_id), NewEvent("B", {}, event_id=event_id)],
                expected_version=StreamState.ANY,
            )


class ReadContract(ContractBase):
    """Reading streams and the log, forwards and backwards, in pages, with filters."""

    def test_a_stream_that_does_not_exist_reads_as_empty(self, store: EventStore) -> None:
        assert list(store.read_stream("nothing-here")) == []
        assert store.get_stream_version("nothing-here") is None

    def test_read_stream_with_an_invalid_name_raises(self, store: EventStore) -> None:
        with pytest.raises(InvalidStreamNameError):
            store.read_stream("")

    def test_read_stream_from_a_position(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(5), expected_version=StreamState.ANY)
        assert [e.stream_position for e in store.read_stream("s-1", from_position=3)] == [3, 4]

    def test_read_stream_backwards_from_the_end(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(4), expected_version=StreamState.ANY)
        positions = [e.stream_position for e in store.read_stream("s-1", backwards=True)]
        assert positions == [3, 2, 1, 0]

    def test_read_stream_backwards_from_a_position_with_a_limit(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(6), expected_version=StreamState.ANY)
        read = store.read_stream("s-1", from_position=4, backwards=True, limit=2)
        assert [e.stream_position for e in read] == [4, 3]

    def test_read_stream_limit(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(5), expected_version=StreamState.ANY)
        assert len(list(store.read_stream("s-1", limit=2))) == 2
        assert list(store.read_stream("s-1", limit=0)) == []

    def test_reads_longer_than_a_page_yield_every_event_in_order(self, store: EventStore) -> None:
        for chunk in range(5):
            store.append_to_stream(
                "long-1", events(500, chunk=chunk), expected_version=StreamState.ANY
            )
        forwards = [e.stream_position for e in store.read_stream("long-1")]
        assert forwards == list(range(2500))
        backwards = [e.stream_position for e in store.read_stream("long-1", backwards=True)]
        assert backwards == list(range(2499, -1, -1))
        log = [e.global_position for e in store.read_all()]
        assert log == sorted(log) and len(log) == 2500
        assert [e.global_position for e in store.read_all(backwards=True)] == log[::-1]

    def test_read_stream_payloads_gives_the_stored_bytes_of_a_stream(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("s-1", events(2500, kind="x"), expected_version=StreamState.ANY)
        store.append_to_stream("s-2", events(1), expected_version=StreamState.ANY)
        recorded = list(store.read_stream("s-1"))
        payloads = list(store.read_stream_payloads("s-1"))
        assert [p.stream_position for p in payloads] == list(range(2500))
        assert [msgspec.json.decode(p.data) for p in payloads] == [e.data for e in recorded]
        assert [p.event_type for p in payloads] == [e.event_type for e in recorded]
        assert payloads[7].recorded_at_us == to_micros(recorded[7].recorded_at)
        window = list(store.read_stream_payloads("s-1", from_position=10, limit=3))
        assert [p.stream_position for p in window] == [10, 11, 12]
        assert list(store.read_stream_payloads("missing-1")) == []

    def test_read_all_after_a_position(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(3), expected_version=StreamState.ANY)
        store.append_to_stream("s-2", events(2), expected_version=StreamState.ANY)
        everything = list(store.read_all())
        after = everything[2].global_position
        assert list(store.read_all(after=after)) == everything[3:]

    def test_read_all_backwards_before_a_position(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(5), expected_version=StreamState.ANY)
        everything = list(store.read_all())
        before = everything[3].global_position
        assert list(store.read_all(after=before, backwards=True)) == everything[:3][::-1]

    def test_read_all_filters_by_event_type(self, store: EventStore) -> None:
        for n in range(30):
            store.append_to_stream(
                f"s-{n % 3}",
                [NewEvent("Wanted" if n % 7 == 0 else "Other", {"n": n})],
                expected_version=StreamState.ANY,
            )
        wanted = [e.data["n"] for e in store.read_all(event_types=["Wanted"])]
        assert wanted == [0, 7, 14, 21, 28]
        assert list(store.read_all(event_types=[])) == []

    def test_read_all_filters_by_stream_prefix(self, store: EventStore) -> None:
        store.append_to_stream("account-1", events(2), expected_version=StreamState.ANY)
        store.append_to_stream("order-1", events(2), expected_version=StreamState.ANY)
        store.append_to_stream("account-2", events(1), expected_version=StreamState.ANY)
        store.append_to_stream("accountant-1", events(1), expected_version=StreamState.ANY)
        names = [e.stream_name for e in store.read_all(stream_prefix="account-")]
        assert names == ["account-1", "account-1", "account-2"]

    def test_filters_combine_and_page(self, store: EventStore) -> None:
        for n in range(2200):
            stream = "keep-1" if n % 2 == 0 else "drop-1"
            kind = "A" if n % 4 == 0 else "B"
            store.append_to_stream(
                stream, [NewEvent(kind, {"n": n})], expected_version=StreamState.ANY
            )
        picked = [e.data["n"] for e in store.read_all(event_types=["A"], stream_prefix="keep")]
        assert picked == list(range(0, 2200, 4))
        limited = list(store.read_all(event_types=["A"], stream_prefix="keep", limit=3))
        assert [e.data["n"] for e in limited] == [0, 4, 8]

    def test_export_rejects_a_bad_position_at_the_call(self, store: EventStore) -> None:
        with pytest.raises(InvalidArgumentError) as caught:
            store.export_events(after=-1)
        assert (caught.value.argument, caught.value.value) == ("after", -1)
        with pytest.raises(InvalidArgumentError, match="until") as caught:
            store.export_events(until=-1)
        assert caught.value.argument == "until"

    def test_export_until_a_position_stops_there_across_pages(self, store: EventStore) -> None:
        total = DEFAULT_PAGE_SIZE * 2 + 10
        store.append_to_streams(
            [StreamAppend(f"s-{n:04d}", events(1), StreamState.NO_STREAM) for n in range(total)]
        )
        for after, until in [(0, 0), (0, 1), (0, DEFAULT_PAGE_SIZE), (5, DEFAULT_PAGE_SIZE + 7)]:
            positions = [e.global_position for e in store.export_events(after=after, until=until)]
            assert positions == list(range(after + 1, until + 1))
        assert len(list(store.export_events(until=total + 50))) == total
        assert list(store.export_events(after=9, until=3)) == []

    def test_export_until_the_head_leaves_out_events_appended_while_it_runs(
        self, store: EventStore
    ) -> None:
        store.append_to_stream(
            "s-1", events(DEFAULT_PAGE_SIZE + 5), expected_version=StreamState.ANY
        )
        head = store.head_position()
        exported = store.export_events(until=head)
        first = next(exported)
        store.append_to_stream("s-1", events(3), expected_version=StreamState.ANY)
        rest = [e.global_position for e in exported]
        assert [first.global_position, *rest] == list(range(1, head + 1))

    def test_read_all_rejects_bad_arguments_naming_the_argument(self, store: EventStore) -> None:
        with pytest.raises(InvalidArgumentError, match="after") as caught:
            store.read_all(after=-1)
        assert caught.value.argument == "after"
        with pytest.raises(InvalidArgumentError) as caught:
            store.read_all(event_types="Single")
        assert caught.value.argument == "event_types"
        with pytest.raises(InvalidArgumentError) as caught:
            store.read_all(limit=-5)
        assert caught.value.argument == "limit"

    @pytest.mark.parametrize("bad", [-1, "3", 1.5, True], ids=["negative", "str", "float", "bool"])
    def test_bad_positions_and_limits_are_argument_errors_not_event_errors(
        self, store: EventStore, bad: object
    ) -> None:
        value: Any = bad
        calls: dict[str, Callable[[], object]] = {
            "from_position": lambda: store.read_stream("a-1", from_position=value),
            "limit": lambda: store.read_stream("a-1", limit=value),
            "after": lambda: store.subscribe_to_all(after=value),
        }
        for argument, call in calls.items():
            with pytest.raises(InvalidArgumentError) as caught:
                call()
            assert caught.value.argument == argument
            assert not isinstance(caught.value, InvalidEventError)

    @pytest.mark.parametrize(
        "bad", ["nul\x00", "half\ud800pair", "tab\t"], ids=["nul", "lone-surrogate", "tab"]
    )
    def test_filters_no_name_could_match_are_refused_on_every_engine(
        self, store: EventStore, bad: str
    ) -> None:
        store.append_to_stream("a-1", events(1), expected_version=StreamState.ANY)
        with pytest.raises(InvalidArgumentError, match="event_types"):
            store.read_all(event_types=["A", bad])
        with pytest.raises(InvalidArgumentError, match="stream_prefix"):
            store.read_all(stream_prefix=bad)
        with pytest.raises(InvalidArgumentError, match="stream_prefix"):
            store.subscribe_to_all(stream_prefix=bad)

    def test_list_streams_gives_versions_in_name_order(self, store: EventStore) -> None:
        store.append_to_stream("b-1", events(3), expected_version=StreamState.ANY)
        store.append_to_stream("a-1", events(1), expected_version=StreamState.ANY)
        listed = [(s.stream_name, s.version, s.event_count) for s in store.list_streams()]
        assert listed == [("a-1", 0, 1), ("b-1", 2, 3)]

    def test_iterators_raise_store_closed_when_the_store_closes_between_pages(
        self, store: EventStore
    ) -> None:
        store.append_to_streams(
            [
                StreamAppend(f"s-{n:04d}", events(1), StreamState.NO_STREAM)
                for n in range(DEFAULT_PAGE_SIZE + 1)
            ]
        )
        iterators: list[Iterator[object]] = [
            iter(store.read_all()),
            iter(store.export_events()),
            iter(store.list_streams()),
        ]
        for iterator in iterators:
            next(iterator)
        store.close()
        for iterator in iterators:
            with pytest.raises(StoreClosedError):
                for _ in iterator:
                    pass

    def test_stats_count_events_and_streams(self, store: EventStore) -> None:
        empty = store.stats()
        assert (empty.event_count, empty.stream_count, empty.head_position) == (0, 0, 0)
        assert empty.first_recorded_at is None
        store.append_to_stream("a-1", events(3), expected_version=StreamState.ANY)
        store.append_to_stream("b-1", events(1), expected_version=StreamState.ANY)
        stats = store.stats()
        assert (stats.event_count, stats.stream_count) == (4, 2)
        assert stats.head_position == store.head_position()
        assert stats.first_recorded_at is not None and stats.last_recorded_at is not None
        assert stats.first_recorded_at <= stats.last_recorded_at


class HashChainContract(ContractBase):
    """Each event's hash chains to the previous event of its stream, over the stored bytes."""

    def test_first_event_chains_from_the_genesis_hash(self, store: EventStore) -> None:
        store.append_to_stream("s-1", [NewEvent("A", {"k": 1})], expected_version=StreamState.ANY)
        (raw,) = store.export_events()
        expected = event_hash(
            GENESIS_HASH,
            raw.stream_name,
            raw.stream_position,
            raw.event_id.bytes,
            raw.event_type,
            raw.schema_version,
            to_micros(raw.recorded_at),
            bytes(raw.data),
            bytes(raw.metadata),
        )
        assert raw.hash == expected.hex()
        (event,) = store.read_stream("s-1")
        assert event.hash == raw.hash

    def test_each_event_chains_to_the_previous_of_its_own_stream(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(2), expected_version=StreamState.ANY)
        store.append_to_stream("s-2", events(2), expected_version=StreamState.ANY)
        store.append_to_stream("s-1", events(2), expected_version=StreamState.ANY)
        exported = list(store.export_events())
        assert verify_chain(exported) == 6
        stream = [r for r in exported if r.stream_name == "s-1"]
        previous = bytes.fromhex(stream[1].hash)
        third = stream[2]
        assert (
            third.hash
            == event_hash(
                previous,
                third.stream_name,
                third.stream_position,
                third.event_id.bytes,
                third.event_type,
                third.schema_version,
                to_micros(third.recorded_at),
                bytes(third.data),
                bytes(third.metadata),
            ).hex()
        )

    def test_export_then_import_into_an_empty_store_keeps_everything(
        self, store: EventStore
    ) -> None:
        from eventvault import connect

        store.append_to_stream("s-1", events(3), expected_version=StreamState.ANY)
        store.append_to_stream("s-2", _with_ids(2), expected_version=StreamState.ANY)
        with connect("memory://") as target:
            assert target.import_events(store.export_events()) == 5
            assert list(target.export_events()) == list(store.export_events())
            assert list(target.read_all()) == list(store.read_all())
            result = target.append_to_stream("s-1", events(1), expected_version=2)
            assert result.global_position == 6
            assert verify_chain(target.export_events()) == 6

    def test_import_into_this_engine_keeps_everything(self, store: EventStore) -> None:
        from eventvault import connect

        with connect("memory://") as source:
            source.append_to_stream("s-1", events(3), expected_version=StreamState.ANY)
            source.append_to_stream("s-2", _with_ids(2), expected_version=StreamState.ANY)
            assert store.import_events(source.export_events()) == 5
            assert list(store.export_events()) == list(source.export_events())
        assert store.append_to_stream("s-2", events(1), expected_version=1).global_position == 6

    def test_verify_chain_checks_a_stream_read_from_its_start_and_the_whole_log(
        self, store: EventStore
    ) -> None:
        class Booked(msgspec.Struct, frozen=True):
            at: datetime
            seats: tuple[int, ...]
            ticket: bytes
            price: float

        paris = timezone(timedelta(hours=2))
        booked = Booked(datetime(2024, 6, 1, 9, 30, tzinfo=paris), (3, 4), b"\x00\xff", 0.1)
        store.append_to_stream(
            "trip-1",
            [
                NewEvent("Booked", booked, metadata={"actor": "zoë", "tenant": "t\n1"}),
                NewEvent("Noted", {"text": 'naïve "quoted" \u2028 \x01', "n": -0.0}),
            ],
            expected_version=StreamState.NO_STREAM,
        )
        store.append_to_stream("trip-2", events(2), expected_version=StreamState.ANY)
        store.append_to_stream(
            "trip-1",
            [NewEvent("Priced", {"big": 2**63 - 1, "tiny": 5e-324, "nested": [{"k": None}]})],
            expected_version=1,
        )
        assert verify_chain(store.read_stream("trip-1")) == 3
        assert verify_chain(store.read_stream("trip-2")) == 2
        assert verify_chain(store.read_all()) == 5
        assert verify_chain(store.export_events()) == 5

    def test_verify_chain_of_read_events_detects_a_changed_payload(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(2), expected_version=StreamState.ANY)
        first, second = store.read_stream("s-1")
        changed = msgspec.structs.replace(second, data={**second.data, "n": 99})
        with pytest.raises(HashChainError) as caught:
            verify_chain([first, changed])
        assert (caught.value.stream_name, caught.value.stream_position) == ("s-1", 1)

    @pytest.mark.parametrize(
        ("data", "metadata", "problem"),
        [
            (b'{"a": 1}', b"{}", r"data is not in the canonical form .* from byte 5"),
            (b'{"\\u0061":1}', b"{}", "data is not in the canonical form"),
            (b'{"a":1,"a":2}', b"{}", "data is not in the canonical form"),
            (b'{"a":1E5}', b"{}", "data is not in the canonical form"),
            (b'{"a":1}', b"{ }", "metadata is not in the canonical form"),
            (b'{"a":1', b"{}", "data is not a JSON object eventvault can read"),
        ],
    )
    def test_import_refuses_payload_bytes_an_append_would_not_write(
        self, store: EventStore, data: bytes, metadata: bytes, problem: str
    ) -> None:
        fine = _crafted(0, GENESIS_HASH, b'{"a":1}', b"{}")
        odd = _crafted(1, bytes.fromhex(fine.hash), data, metadata)
        with pytest.raises(ImportFileError, match=rf"'s-1'@1: {problem}"):
            store.import_events([fine, odd])
        assert store.head_position() == 0


def _crafted(position: int, previous: bytes, data: bytes, metadata: bytes) -> RawEvent:
    """An exported event of stream `s-1` with the given payload bytes and a hash that fits."""
    event_id = uuid.uuid4()
    recorded_at = datetime(2024, 1, 1, tzinfo=UTC)
    digest = event_hash(
        previous, "s-1", position, event_id.bytes, "A", 1, to_micros(recorded_at), data, metadata
    )
    return RawEvent(
        global_position=position + 1,
        stream_name="s-1",
        stream_position=position,
        event_id=event_id,
        event_type="A",
        schema_version=1,
        data=msgspec.Raw(data),
        metadata=msgspec.Raw(metadata),
        recorded_at=recorded_at,
        hash=digest.hex(),
    )
