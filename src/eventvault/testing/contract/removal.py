"""Contract: removal, the documented exception to append-only (DESIGN.md section 4, guarantee 1).

Deletion, truncation and retention hide a prefix of a stream from every read and (except a soft
delete) erase its payloads; each removed event keeps its positions, id, type, time and hash, so
the log's hash chains still verify, and every removal is recorded by an event in `$removals`.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from eventvault import (
    AsyncEventStore,
    EventStore,
    NewEvent,
    RawEvent,
    StreamMetadata,
    StreamState,
    WrongExpectedVersionError,
)
from eventvault.errors import (
    ImportFileError,
    InvalidArgumentError,
    InvalidExpectedVersionError,
    ReadOnlyStoreError,
    StreamNotFoundError,
)
from eventvault.serialization import GENESIS_HASH, event_hash, to_micros, verify_chain
from eventvault.store.seam import Component, Migration
from eventvault.testing.contract.base import ContractBase, EngineSpec, events

__all__ = ["RemovalContract"]

REMOVALS = "$removals"
ACTOR = "ops@example.com"
REASON = "ticket 42"


def _names(store: EventStore) -> list[str]:
    return [info.stream_name for info in store.list_streams()]


def _records(store: EventStore) -> list[dict[str, object]]:
    return [event.data for event in store.read_stream(REMOVALS)]


def _old_log(stream: str, ages_in_days: list[int]) -> Iterator[RawEvent]:
    """A log of one stream whose events were recorded the given numbers of days ago, for an
    import (appends always record the present)."""
    previous = GENESIS_HASH
    now = datetime.now(UTC)
    for position, days in enumerate(ages_in_days):
        when = (now - timedelta(days=days)).replace(microsecond=0)
        event_id = uuid.uuid4()
        data = msgspec.json.encode({"n": position})
        previous = event_hash(
            previous, stream, position, event_id.bytes, "Reading", 1, to_micros(when), data, b"{}"
        )
        yield RawEvent(
            global_position=position + 1,
            stream_name=stream,
            stream_position=position,
            event_id=event_id,
            event_type="Reading",
            schema_version=1,
            data=msgspec.Raw(data),
            metadata=msgspec.Raw(b"{}"),
            recorded_at=when,
            hash=previous.hex(),
        )


_DERIVED = Component(
    "contract_derived",
    {
        "sqlite": (
            Migration(1, ("CREATE TABLE contract_derived (stream_name TEXT, version INTEGER)",)),
        ),
        "postgresql": (
            Migration(
                1, ("CREATE TABLE {schema}.contract_derived (stream_name text, version bigint)",)
            ),
        ),
    },
    on_stream_removal={
        "sqlite": ("DELETE FROM contract_derived WHERE stream_name = ?",),
        "postgresql": ("DELETE FROM {schema}.contract_derived WHERE stream_name = %s",),
    },
)
"""A component that keeps data derived from streams, as snapshots do (used by the store, not
registered: removals consider both)."""


class RemovalContract(ContractBase):
    """Removal keeps every hash, hides what it removes, and is recorded."""

    # -- truncation ---------------------------------------------------------------------------

    def test_truncate_hides_the_events_before_the_position_from_every_read(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("meter-1", events(5), expected_version=StreamState.NO_STREAM)
        store.append_to_stream("other-1", events(1), expected_version=StreamState.NO_STREAM)
        removal = store.truncate_stream("meter-1", before=3, actor=ACTOR, reason=REASON)
        assert (removal.first_position, removal.before, removal.count) == (0, 3, 3)
        assert removal.erased and removal.kind == "truncate"
        assert [e.stream_position for e in store.read_stream("meter-1")] == [3, 4]
        assert [e.stream_position for e in store.read_stream("meter-1", from_position=1)] == [3, 4]
        assert [e.stream_position for e in store.read_stream("meter-1", backwards=True)] == [4, 3]
        assert [e.stream_position for e in store.read_stream_payloads("meter-1")] == [3, 4]
        assert [(e.stream_name, e.stream_position) for e in store.read_all()] == [
            ("meter-1", 3),
            ("meter-1", 4),
            ("other-1", 0),
            (REMOVALS, 0),
        ]
        assert [e.global_position for e in store.read_all(backwards=True)] == [7, 6, 5, 4]
        assert store.get_stream_version("meter-1") == 4

    def test_truncate_keeps_positions_ids_and_hashes_so_the_chain_verifies(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("meter-1", events(4), expected_version=StreamState.NO_STREAM)
        before = list(store.export_events())
        store.truncate_stream("meter-1", before=2, actor=ACTOR, reason=REASON)
        after = list(store.export_events())
        assert [e.hash for e in after[:4]] == [e.hash for e in before]
        assert [e.event_id for e in after[:4]] == [e.event_id for e in before]
        assert [bytes(e.data) for e in after[:2]] == [b"null", b"null"]
        assert all(e.erased for e in after[:2]) and not after[2].erased
        assert after[0].removed_by == after[1].removed_by == 5
        assert [bytes(e.data) for e in after[2:4]] == [bytes(e.data) for e in before[2:]]
        assert verify_chain(after) == 5

    def test_a_removal_is_recorded_in_removals_with_who_what_and_why(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("meter-1", events(3), expected_version=StreamState.NO_STREAM)
        last_hash = list(store.read_stream("meter-1"))[1].hash
        removal = store.truncate_stream("meter-1", before=2, actor=ACTOR, reason=REASON)
        (record,) = list(store.read_stream(REMOVALS))
        assert record.event_type == "EventsRemoved"
        assert record.global_position == removal.record_position == 4
        assert record.metadata == {"actor": "ops@example.com"}
        assert record.data == {
            "stream_name": "meter-1",
            "kind": "truncate",
            "first_position": 0,
            "before": 2,
            "count": 2,
            "erased": True,
            "last_hash": last_hash,
            "actor": "ops@example.com",
            "reason": "ticket 42",
        }

    def test_truncating_again_erases_only_what_is_left(self, store: EventStore) -> None:
        store.append_to_stream("meter-1", events(6), expected_version=StreamState.NO_STREAM)
        store.truncate_stream("meter-1", before=2, actor=ACTOR, reason=REASON)
        again = store.truncate_stream("meter-1", before=4, actor=ACTOR, reason=REASON)
        assert (again.first_position, again.count) == (2, 2)
        nothing = store.truncate_stream("meter-1", before=3, actor=ACTOR, reason=REASON)
        assert nothing.count == 0 and nothing.record_position is None
        assert len(_records(store)) == 2
        assert [e.stream_position for e in store.read_stream("meter-1")] == [4, 5]

    def test_truncate_past_the_end_is_refused_and_changes_nothing(self, store: EventStore) -> None:
        store.append_to_stream("meter-1", events(3), expected_version=StreamState.NO_STREAM)
        with pytest.raises(InvalidArgumentError, match="ends at version 2"):
            store.truncate_stream("meter-1", before=4, actor=ACTOR, reason=REASON)
        with pytest.raises(InvalidArgumentError, match="before"):
            store.truncate_stream("meter-1", before=-1, actor=ACTOR, reason=REASON)
        assert len(list(store.read_stream("meter-1"))) == 3
        assert store.head_position() == 3

    def test_truncating_every_event_leaves_a_stream_that_appends_continue(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("meter-1", events(2), expected_version=StreamState.NO_STREAM)
        store.truncate_stream("meter-1", before=2, actor=ACTOR, reason=REASON)
        assert list(store.read_stream("meter-1")) == []
        assert "meter-1" not in _names(store)
        with pytest.raises(WrongExpectedVersionError):
            store.append_to_stream("meter-1", events(1), expected_version=StreamState.NO_STREAM)
        store.append_to_stream("meter-1", events(1), expected_version=1)
        assert [e.stream_position for e in store.read_stream("meter-1")] == [2]
        assert "meter-1" in _names(store)
        assert verify_chain(store.export_events()) == 4

    # -- deletion -----------------------------------------------------------------------------

    def test_soft_delete_hides_every_event_and_keeps_their_bytes(self, store: EventStore) -> None:
        store.append_to_stream("cart-1", events(3), expected_version=StreamState.NO_STREAM)
        store.append_to_stream("cart-2", events(1), expected_version=StreamState.NO_STREAM)
        removal = store.delete_stream("cart-1", actor=ACTOR, reason=REASON)
        assert (removal.kind, removal.count, removal.erased) == ("soft-delete", 3, False)
        assert list(store.read_stream("cart-1")) == []
        assert [e.stream_name for e in store.read_all()] == ["cart-2", REMOVALS]
        assert _names(store) == [REMOVALS, "cart-2"]
        exported = list(store.export_events())
        assert [bytes(e.data) for e in exported[:3]] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        assert [e.removed_by for e in exported[:3]] == [5, 5, 5]
        assert not any(e.erased for e in exported)
        assert verify_chain(exported) == 5

    def test_hard_delete_erases_every_payload(self, store: EventStore) -> None:
        store.append_to_stream(
            "cart-1",
            [NewEvent("Added", {"item": "book"}, metadata={"actor": "ada"})],
            expected_version=StreamState.NO_STREAM,
        )
        removal = store.delete_stream(
            "cart-1", hard=True, expected_version=0, actor=ACTOR, reason=REASON
        )
        assert (removal.kind, removal.count, removal.erased) == ("hard-delete", 1, True)
        (erased, record) = list(store.export_events())
        assert erased.erased and bytes(erased.metadata) == b"null"
        assert record.data and record.event_type == "EventsRemoved"
        assert verify_chain(store.export_events()) == 2

    def test_hard_delete_after_soft_delete_erases_what_was_hidden(self, store: EventStore) -> None:
        store.append_to_stream("cart-1", events(2), expected_version=StreamState.NO_STREAM)
        store.delete_stream("cart-1", actor=ACTOR, reason=REASON)
        assert store.delete_stream("cart-1", actor=ACTOR, reason=REASON).count == 0
        hard = store.delete_stream("cart-1", hard=True, actor=ACTOR, reason=REASON)
        assert (hard.first_position, hard.count) == (0, 2)
        exported = list(store.export_events())
        assert all(e.erased for e in exported[:2])
        assert {e.removed_by for e in exported[:2]} == {hard.record_position}
        assert [r["kind"] for r in _records(store)] == ["soft-delete", "hard-delete"]

    def test_appends_after_a_delete_continue_the_stream(self, store: EventStore) -> None:
        store.append_to_stream("cart-1", events(2), expected_version=StreamState.NO_STREAM)
        store.delete_stream("cart-1", actor=ACTOR, reason=REASON)
        with pytest.raises(WrongExpectedVersionError):
            store.append_to_stream("cart-1", events(1), expected_version=StreamState.NO_STREAM)
        store.append_to_stream("cart-1", events(1), expected_version=1)
        assert [e.stream_position for e in store.read_stream("cart-1")] == [2]
        assert "cart-1" in _names(store)
        assert verify_chain(store.export_events()) == 4

    def test_delete_with_a_wrong_expected_version_raises_and_removes_nothing(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("cart-1", events(2), expected_version=StreamState.NO_STREAM)
        with pytest.raises(WrongExpectedVersionError) as caught:
            store.delete_stream("cart-1", expected_version=0, actor=ACTOR, reason=REASON)
        assert caught.value.actual == 1
        with pytest.raises(InvalidExpectedVersionError):
            store.delete_stream("cart-1", expected_version=-1, actor=ACTOR, reason=REASON)
        assert len(list(store.read_stream("cart-1"))) == 2
        assert store.head_position() == 2

    def test_bad_removals_are_refused_and_change_nothing(self, store: EventStore) -> None:
        store.append_to_stream("cart-1", events(1), expected_version=StreamState.NO_STREAM)
        with pytest.raises(StreamNotFoundError):
            store.delete_stream("cart-9", actor=ACTOR, reason=REASON)
        with pytest.raises(InvalidArgumentError, match="reason"):
            store.delete_stream("cart-1", actor="ops", reason=" ")
        with pytest.raises(InvalidArgumentError, match="actor"):
            store.truncate_stream("cart-1", before=1, actor="", reason="x")
        with pytest.raises(InvalidArgumentError, match="hard"):
            store.delete_stream("cart-1", hard="yes", actor=ACTOR, reason=REASON)  # type: ignore[arg-type]
        store.truncate_stream("cart-1", before=1, actor=ACTOR, reason=REASON)
        with pytest.raises(InvalidArgumentError, match="system stream"):
            store.delete_stream(REMOVALS, actor=ACTOR, reason=REASON)
        with pytest.raises(InvalidArgumentError, match="system stream"):
            store.set_stream_metadata(
                REMOVALS, StreamMetadata(max_count=1), actor=ACTOR, reason=REASON
            )
        assert len(_records(store)) == 1
        assert store.head_position() == 2

    def test_a_read_only_store_refuses_removals(self, engine: EngineSpec) -> None:
        if not engine.durable or not engine.url.endswith(".db"):
            pytest.skip("read-only opening is tested on a SQLite file")
        with engine.open() as store:
            store.append_to_stream("cart-1", events(1), expected_version=StreamState.NO_STREAM)
        from eventvault import connect

        with connect(engine.url, read_only=True) as reader:
            with pytest.raises(ReadOnlyStoreError):
                reader.delete_stream("cart-1", actor=ACTOR, reason=REASON)
            with pytest.raises(ReadOnlyStoreError):
                reader.enforce_retention(actor="ops")
            assert reader.get_stream_metadata("cart-1") == StreamMetadata()

    # -- retention ----------------------------------------------------------------------------

    def test_metadata_is_set_read_back_and_recorded(self, store: EventStore) -> None:
        assert store.get_stream_metadata("meter-1") == StreamMetadata()
        wanted = StreamMetadata(max_age=timedelta(days=30), max_count=100)
        store.set_stream_metadata("meter-1", wanted, actor=ACTOR, reason=REASON)
        assert store.get_stream_metadata("meter-1") == wanted
        (record,) = list(store.read_stream(REMOVALS))
        assert record.event_type == "StreamMetadataSet"
        assert record.data["max_count"] == 100
        assert record.data["max_age_us"] == 30 * 86_400 * 1_000_000
        with pytest.raises(InvalidArgumentError, match="max_count"):
            store.set_stream_metadata(
                "meter-1", StreamMetadata(max_count=0), actor=ACTOR, reason=REASON
            )
        with pytest.raises(InvalidArgumentError, match="max_age"):
            store.set_stream_metadata(
                "meter-1", StreamMetadata(max_age=timedelta(0)), actor=ACTOR, reason=REASON
            )
        assert store.get_stream_metadata("meter-1") == wanted

    def test_retention_by_count_keeps_the_newest_events(self, store: EventStore) -> None:
        store.append_to_stream("meter-1", events(5), expected_version=StreamState.NO_STREAM)
        store.append_to_stream("meter-2", events(5), expected_version=StreamState.NO_STREAM)
        store.set_stream_metadata(
            "meter-1", StreamMetadata(max_count=2), actor=ACTOR, reason=REASON
        )
        (removal,) = store.enforce_retention(actor="retention-job")
        assert (removal.stream_name, removal.kind, removal.count) == ("meter-1", "retention", 3)
        assert [e.stream_position for e in store.read_stream("meter-1")] == [3, 4]
        assert len(list(store.read_stream("meter-2"))) == 5
        assert store.enforce_retention(actor="retention-job") == []
        store.append_to_stream("meter-1", events(1), expected_version=4)
        (again,) = store.enforce_retention(actor="retention-job")
        assert (again.first_position, again.before) == (3, 4)
        assert verify_chain(store.export_events()) == store.head_position()

    def test_retention_by_age_removes_the_old_prefix(self, engine: EngineSpec) -> None:
        with engine.fresh() as store:
            store.import_events(_old_log("meter-1", [40, 35, 20, 31, 2]))
            store.set_stream_metadata(
                "meter-1", StreamMetadata(max_age=timedelta(days=30)), actor=ACTOR, reason=REASON
            )
            (removal,) = store.enforce_retention(actor="retention-job")
            # The event of 31 days follows one of 20: only the prefix older than 30 days goes.
            assert (removal.first_position, removal.before) == (0, 2)
            assert [e.stream_position for e in store.read_stream("meter-1")] == [2, 3, 4]

    # -- moving a store -----------------------------------------------------------------------

    def test_a_copy_keeps_removals_metadata_and_every_hash(self, engine: EngineSpec) -> None:
        with engine.fresh() as source, engine.fresh() as target:
            source.append_to_stream("cart-1", events(3), expected_version=StreamState.NO_STREAM)
            source.append_to_stream("cart-2", events(2), expected_version=StreamState.NO_STREAM)
            source.truncate_stream("cart-1", before=1, actor=ACTOR, reason=REASON)
            source.delete_stream("cart-2", actor=ACTOR, reason=REASON)
            source.set_stream_metadata(
                "cart-1", StreamMetadata(max_count=7), actor=ACTOR, reason=REASON
            )
            assert target.import_events(source.export_events()) == source.head_position()
            assert list(target.export_events()) == list(source.export_events())
            assert list(target.read_all()) == list(source.read_all())
            assert [e.stream_position for e in target.read_stream("cart-1")] == [1, 2]
            assert list(target.read_stream("cart-2")) == []
            assert _names(target) == _names(source)
            assert target.get_stream_metadata("cart-1") == StreamMetadata(max_count=7)
            assert target.truncate_stream("cart-1", before=1, actor=ACTOR, reason=REASON).count == 0

    def test_an_import_refuses_a_removed_event_after_one_that_is_not(
        self, engine: EngineSpec
    ) -> None:
        with engine.fresh() as source, engine.fresh() as target:
            source.append_to_stream("cart-1", events(2), expected_version=StreamState.NO_STREAM)
            source.delete_stream("cart-1", actor=ACTOR, reason=REASON)
            log = list(source.export_events())
            log[0] = msgspec.structs.replace(log[0], removed_by=None)
            with pytest.raises(ImportFileError, match="removals take the first events"):
                target.import_events(log)
            assert target.head_position() == 0

    # -- the audit tree and derived data ------------------------------------------------------

    def test_get_event_finds_an_event_by_id_or_position_removed_or_not(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("cart-1", events(3), expected_version=StreamState.NO_STREAM)
        first, second, _ = list(store.export_events())
        assert store.get_event(second.event_id) == second
        assert store.get_event(stream_name="cart-1", stream_position=1) == second
        store.truncate_stream("cart-1", before=2, actor=ACTOR, reason=REASON)
        erased = store.get_event(first.event_id)
        assert erased is not None and erased.erased and erased.removed_by == 4
        assert erased == store.get_event(stream_name="cart-1", stream_position=0)
        assert store.get_event(uuid.uuid4()) is None
        assert store.get_event(stream_name="cart-1", stream_position=3) is None
        assert store.get_event(stream_name="cart-9", stream_position=0) is None
        with pytest.raises(InvalidArgumentError, match="not both"):
            store.get_event(first.event_id, stream_name="cart-1", stream_position=0)
        with pytest.raises(InvalidArgumentError, match="stream name and a stream position"):
            store.get_event(stream_name="cart-1")
        with pytest.raises(InvalidArgumentError, match="stream_position"):
            store.get_event(stream_name="cart-1", stream_position=-1)

    def test_read_hashes_includes_removed_events(self, store: EventStore) -> None:
        store.append_to_stream("cart-1", events(3), expected_version=StreamState.NO_STREAM)
        hashes = [e.hash for e in store.read_all()]
        store.delete_stream("cart-1", hard=True, actor=ACTOR, reason=REASON)
        found = list(store.read_hashes())
        assert [h.global_position for h in found] == [1, 2, 3, 4]
        assert [h.hash.hex() for h in found[:3]] == hashes
        assert list(store.read_hashes(after=2, limit=1)) == found[2:3]

    def test_components_drop_what_they_derived_from_removed_events(self, store: EventStore) -> None:
        store.use(_DERIVED)
        mark = "?" if store.dialect == "sqlite" else "%s"
        store.append_to_stream("cart-1", events(4), expected_version=StreamState.NO_STREAM)
        store.run_transaction(
            lambda tx: tx.execute_many(
                f"INSERT INTO {{schema}}.contract_derived VALUES ({mark}, {mark})",
                [("cart-1", 1), ("cart-1", 3), ("cart-2", 1)],
            )
        )
        store.append_to_stream("cart-2", events(2), expected_version=StreamState.NO_STREAM)
        failing = store.truncate_stream("cart-1", before=0, actor=ACTOR, reason=REASON)
        assert failing.count == 0  # nothing removed: nothing derived is touched
        assert len(store.query("SELECT version FROM {schema}.contract_derived")) == 3
        store.truncate_stream("cart-1", before=2, actor=ACTOR, reason=REASON)
        rows = store.query("SELECT stream_name, version FROM {schema}.contract_derived")
        assert [(str(r[0]), int(r[1])) for r in rows] == [("cart-2", 1)]

    # -- concurrency and the async face -------------------------------------------------------

    def test_truncations_racing_appends_from_threads_keep_the_log_whole(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("meter-1", events(1), expected_version=StreamState.NO_STREAM)
        failures: list[BaseException] = []

        def append() -> None:
            try:
                for _ in range(20):
                    store.append_to_stream("meter-1", events(2), expected_version=StreamState.ANY)
            except BaseException as exc:
                failures.append(exc)

        def truncate() -> None:
            try:
                for _ in range(10):
                    version = store.get_stream_version("meter-1")
                    assert version is not None
                    store.truncate_stream("meter-1", before=version, actor=ACTOR, reason=REASON)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=append) for _ in range(3)]
        threads.append(threading.Thread(target=truncate))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        exported = list(store.export_events())
        assert verify_chain(exported) == len(exported)
        stream = [e for e in exported if e.stream_name == "meter-1"]
        assert len(stream) == 121
        removed = [e.stream_position for e in stream if e.removed_by is not None]
        assert removed == list(range(len(removed)))
        readable = [e.stream_position for e in store.read_stream("meter-1")]
        assert readable == list(range(len(removed), 121))
        assert sum(int(str(r["count"])) for r in _records(store)) == len(removed)

    def test_the_async_face_removes_as_the_sync_one(self, store: EventStore) -> None:
        async def run() -> None:
            face = AsyncEventStore(store)
            await face.append_to_stream("cart-1", events(3), expected_version=StreamState.NO_STREAM)
            truncated = await face.truncate_stream("cart-1", before=1, actor=ACTOR, reason=REASON)
            await face.set_stream_metadata(
                "cart-1", StreamMetadata(max_count=1), actor=ACTOR, reason=REASON
            )
            (retained,) = await face.enforce_retention(actor="job")
            deleted = await face.delete_stream("cart-1", hard=True, actor=ACTOR, reason=REASON)
            assert (truncated.count, retained.count, deleted.count) == (1, 1, 1)
            assert await face.get_stream_metadata("cart-1") == StreamMetadata(max_count=1)
            assert [h.global_position async for h in face.read_hashes()] == [1, 2, 3, 4, 5, 6, 7]

        asyncio.run(run())
