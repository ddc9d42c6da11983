"""Contract: racing writers (threads and processes), group commit, crashes, import refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import msgspec
import pytest

from eventvault import (
    EventStore,
    NewEvent,
    RawEvent,
    StreamState,
    WrongExpectedVersionError,
    connect,
)
from eventvault.errors import HashChainError, ImportFileError, NotEmptyError
from eventvault.serialization import GENESIS_HASH, raw_event_hash, verify_chain
from eventvault.testing.contract.base import ContractBase, EngineSpec, events

__all__ = ["ConcurrencyContract", "CrashContract", "ImportContract"]


def _race_in_threads(store: EventStore, stream_name: str, workers: int, attempts: int) -> int:
    wins: list[tuple[int, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(workers)

    def work(worker: int) -> None:
        start.wait()
        for attempt in range(attempts):
            version = store.get_stream_version(stream_name)
            expected = StreamState.NO_STREAM if version is None else version
            try:
                result = store.append_to_stream(
                    stream_name,
                    [NewEvent("Raced", {"worker": worker, "attempt": attempt})],
                    expected_version=expected,
                )
            except WrongExpectedVersionError:
                continue
            with lock:
                wins.append((worker, attempt))
            assert result.stream_position == (0 if version is None else version + 1)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorded = [(e.data["worker"], e.data["attempt"]) for e in store.read_stream(stream_name)]
    assert sorted(recorded) == sorted(wins), "every acknowledged append is stored, once"
    return len(wins)


class ConcurrencyContract(ContractBase):
    """Concurrent writers: each expected version is won exactly once, no update is lost."""

    def test_threads_racing_on_one_stream_win_each_version_exactly_once(
        self, store: EventStore
    ) -> None:
        won = _race_in_threads(store, "race-1", workers=8, attempts=25)
        assert won >= 1
        assert store.get_stream_version("race-1") == won - 1
        positions = [e.stream_position for e in store.read_stream("race-1")]
        assert positions == list(range(won))

    def test_processes_racing_on_one_stream_win_each_version_exactly_once(
        self, engine: EngineSpec
    ) -> None:
        if not engine.multiprocess:
            pytest.skip(f"{engine.name} lives in one process")
        with engine.open():
            pass  # create the storage before the children race to
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "eventvault.testing._workers",
                    "race",
                    engine.url,
                    "race-1",
                    "30",
                    f"p{n}",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(4)
        ]
        wins: list[tuple[str, int, int]] = []
        for child in children:
            out, _ = child.communicate(timeout=240)
            assert child.returncode == 0
            for line in out.splitlines():
                win = msgspec.json.decode(line)
                wins.append((win["worker"], win["attempt"], win["position"]))
        with engine.open() as store:
            recorded = [
                (e.data["worker"], e.data["attempt"], e.stream_position)
                for e in store.read_stream("race-1")
            ]
        assert sorted(recorded, key=lambda w: w[2]) == sorted(wins, key=lambda w: w[2])
        assert [w[2] for w in sorted(wins, key=lambda w: w[2])] == list(range(len(wins)))

    def test_concurrent_appends_to_many_streams_all_land(self, store: EventStore) -> None:
        def work(worker: int) -> None:
            for n in range(50):
                store.append_to_stream(
                    f"many-{worker}", [NewEvent("E", {"n": n})], expected_version=StreamState.ANY
                )

        threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for worker in range(16):
            assert [e.data["n"] for e in store.read_stream(f"many-{worker}")] == list(range(50))
        log = [e.global_position for e in store.read_all()]
        assert len(log) == 800 and log == sorted(log)

    def test_the_same_append_sent_from_many_threads_is_stored_once(self, store: EventStore) -> None:
        batch = [NewEvent("Paid", {"n": n}, event_id=uuid.uuid4()) for n in range(3)]
        results: list[object] = []
        lock = threading.Lock()
        start = threading.Barrier(8)

        def work() -> None:
            start.wait()
            result = store.append_to_stream("pay-1", batch, expected_version=StreamState.NO_STREAM)
            with lock:
                results.append(result)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 8
        assert len(set(map(repr, results))) == 1
        assert [e.event_id for e in store.read_stream("pay-1")] == [e.event_id for e in batch]

    def test_a_failing_append_among_concurrent_ones_fails_alone(self, store: EventStore) -> None:
        store.append_to_stream("fixed-1", events(1), expected_version=StreamState.NO_STREAM)
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()
        start = threading.Barrier(12)

        def work(worker: int) -> None:
            start.wait()
            for n in range(20):
                try:
                    if worker % 3 == 0:
                        store.append_to_stream(
                            "fixed-1", events(1), expected_version=StreamState.NO_STREAM
                        )
                        outcome = "unexpected success"
                    else:
                        store.append_to_stream(
                            f"good-{worker}",
                            [NewEvent("E", {"n": n})],
                            expected_version=n - 1 if n else StreamState.NO_STREAM,
                        )
                        outcome = "ok"
                except WrongExpectedVersionError:
                    outcome = "conflict" if worker % 3 == 0 else "lost"
                with lock:
                    outcomes[outcome] += 1

        threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes == Counter({"ok": 160, "conflict": 80})
        for worker in range(12):
            if worker % 3:
                assert store.get_stream_version(f"good-{worker}") == 19
        assert store.get_stream_version("fixed-1") == 0


class CrashContract(ContractBase):
    """A writer killed mid-append loses that append whole, nothing acknowledged (guarantee 5)."""

    def test_acknowledged_events_survive_sigkill_of_the_writer(self, engine: EngineSpec) -> None:
        if not (engine.durable and engine.multiprocess):
            pytest.skip(f"{engine.name} does not outlive its process")
        with engine.open():
            pass
        acknowledged: list[dict[str, int | str]] = []
        for round_number in range(4):
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "eventvault.testing._workers",
                    "append-forever",
                    engine.url,
                    f"crash{round_number}",
                    f"r{round_number}",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            deadline = time.monotonic() + 30
            lines = 0
            # Let it write for a while (a varying number of appends), then kill it mid-stride.
            while lines < 40 + 25 * round_number and time.monotonic() < deadline:
                line = child.stdout.readline()
                if not line:
                    break
                acknowledged.append(msgspec.json.decode(line))
                lines += 1
            os.kill(child.pid, signal.SIGKILL)
            rest, _ = child.communicate(timeout=30)
            for line in rest.splitlines():
                if line.endswith("}"):
                    acknowledged.append(msgspec.json.decode(line))
            assert child.returncode == -signal.SIGKILL
            with engine.open() as store:
                for ack in acknowledged:
                    stream = str(ack["stream"])
                    last = int(ack["position"])
                    size = int(ack["size"])
                    got = list(store.read_stream(stream, from_position=last - size + 1, limit=size))
                    assert [e.data["n"] for e in got] == [ack["n"]] * size
                    assert [e.data["i"] for e in got] == list(range(size))
                    assert got[-1].global_position == ack["global"]
                verify_chain(store.export_events())
                check = getattr(store, "integrity_check", None)
                if check is not None:
                    assert check() == ["ok"]
        assert len(acknowledged) >= 100


class ImportContract(ContractBase):
    """Import refuses what it cannot trust and leaves the store as it was."""

    def test_import_into_a_non_empty_store_is_refused(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(1), expected_version=StreamState.ANY)
        with connect("memory://") as source:
            source.append_to_stream("t-1", events(2), expected_version=StreamState.ANY)
            with pytest.raises(NotEmptyError):
                store.import_events(source.export_events())
        assert store.head_position() == 1

    def test_import_of_a_tampered_event_is_refused_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        with connect("memory://") as source:
            source.append_to_stream("s-1", events(3, amount=10), expected_version=StreamState.ANY)
            exported = list(source.export_events())
        data = bytes(exported[1].data).replace(b"10", b"99")
        exported[1] = msgspec.structs.replace(exported[1], data=msgspec.Raw(data))
        with pytest.raises(HashChainError) as caught:
            store.import_events(exported)
        assert (caught.value.stream_name, caught.value.stream_position) == ("s-1", 1)
        assert store.head_position() == 0

    def test_import_with_a_missing_event_is_refused(self, store: EventStore) -> None:
        with connect("memory://") as source:
            source.append_to_stream("s-1", events(3), expected_version=StreamState.ANY)
            exported = list(source.export_events())
        del exported[1]
        with pytest.raises(ImportFileError, match="position"):
            store.import_events(exported)
        assert store.head_position() == 0

    @pytest.mark.parametrize("count", [1, 999, 1000, 1001, 2500])
    def test_import_rolls_back_when_the_events_raise_after_the_last_one(
        self, store: EventStore, count: int
    ) -> None:
        # What an export reader does with a file cut short: every event is good, and the
        # iterator raises at its very end, after the last batch was handed to the engine.
        with connect("memory://") as source:
            source.append_to_stream("s-1", events(count), expected_version=StreamState.ANY)
            exported = list(source.export_events())

        class CutShortError(ImportFileError):
            pass

        def then_raise() -> Iterator[RawEvent]:
            yield from exported
            raise CutShortError("the closing record is missing")

        with pytest.raises(CutShortError):
            store.import_events(then_raise())
        assert store.head_position() == 0
        assert list(store.read_all(limit=1)) == []
        assert store.import_events(exported) == count
        assert store.head_position() == count

    def test_import_repeating_an_event_id_is_refused(self, store: EventStore) -> None:
        with connect("memory://") as source:
            source.append_to_stream("s-1", events(1), expected_version=StreamState.ANY)
            source.append_to_stream("s-2", events(1), expected_version=StreamState.ANY)
            first, second = source.export_events()
        with pytest.raises(ImportFileError, match="twice"):
            store.import_events([first, _reissued(second, first.event_id)])
        assert store.head_position() == 0


def _reissued(event: RawEvent, event_id: uuid.UUID) -> RawEvent:
    """`event` (first of its stream) with another id and a hash recomputed to match."""
    changed = msgspec.structs.replace(event, event_id=event_id)
    digest = raw_event_hash(changed, GENESIS_HASH)
    return msgspec.structs.replace(changed, hash=digest.hex())
