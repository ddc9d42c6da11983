"""Contract: racing writers (threads and processes), retries sent at once, exports taken while
others write, group commit, crashes, import refusals."""

from __future__ import annotations

import io
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
    StreamAppend,
    StreamState,
    WrongExpectedVersionError,
    connect,
)
from eventvault.errors import HashChainError, ImportFileError, NotEmptyError
from eventvault.export import copy_events, load_export, write_export
from eventvault.serialization import GENESIS_HASH, raw_event_hash, verify_chain
from eventvault.store.base import DEFAULT_PAGE_SIZE
from eventvault.testing._workers import resent_batch
from eventvault.testing.contract.base import ContractBase, EngineSpec, events, shared_storage

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


def _worker(*args: str, stdin: bool = False) -> subprocess.Popen[str]:
    """A child process running `eventvault.testing._workers` with these arguments; its stdout
    (one JSON line per result) is piped, and its stdin too when asked."""
    return subprocess.Popen(
        [sys.executable, "-m", "eventvault.testing._workers", *args],
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        text=True,
    )


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
        shared_storage(engine)
        children = [_worker("race", engine.url, "race-1", "25", f"p{n}") for n in range(8)]
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

    def test_the_same_appends_sent_from_many_processes_at_once_are_each_stored_once(
        self, engine: EngineSpec
    ) -> None:
        # Clients retrying one request through several processes and threads: every copy of
        # each append gets its original result, whichever copy landed first.
        shared_storage(engine)
        seed, rounds = uuid.uuid4(), 5
        senders = [
            _worker("resend", engine.url, "pay-1", str(seed), str(rounds), "3", stdin=True)
            for _ in range(4)
        ]
        for sender in senders:
            assert sender.stdin is not None and sender.stdout is not None
            assert msgspec.json.decode(sender.stdout.readline()) == {"ready": True}
        for sender in senders:
            assert sender.stdin is not None
            sender.stdin.write("go\n")
            sender.stdin.flush()
        results: dict[int, set[tuple[int, int]]] = {r: set() for r in range(rounds)}
        for sender in senders:
            out, _ = sender.communicate(timeout=120)
            assert sender.returncode == 0
            lines = [msgspec.json.decode(line) for line in out.splitlines()]
            assert len(lines) == rounds * 3
            for line in lines:
                results[line["round"]].add((line["position"], line["global"]))
        with engine.open() as store:
            stored = list(store.read_stream("pay-1"))
            assert len(stored) == 3 * rounds
            for round_ in range(rounds):
                batch, _ = resent_batch(seed, round_)
                last = stored[3 * round_ + 2]
                assert results[round_] == {(last.stream_position, last.global_position)}
                assert [e.event_id for e in stored[3 * round_ : 3 * round_ + 3]] == [
                    e.event_id for e in batch
                ]
            assert store.stats().event_count == 3 * rounds

    def test_an_export_taken_while_threads_append_is_a_whole_prefix_of_the_log(
        self, store: EventStore
    ) -> None:
        store.append_to_streams(
            [
                StreamAppend(f"old-{n:04d}", events(2), StreamState.NO_STREAM)
                for n in range(DEFAULT_PAGE_SIZE + 100)
            ]
        )
        stop = threading.Event()
        appended: list[int] = []

        def append(worker: int) -> None:
            number = 0
            while not stop.is_set():
                store.append_to_stream(
                    f"live-{worker}-{number % 3}",
                    events(number % 3 + 1, worker=worker),
                    expected_version=StreamState.ANY,
                )
                number += 1
            appended.append(number)

        writers = [threading.Thread(target=append, args=(n,)) for n in range(4)]
        taken: list[tuple[int, bytes, int]] = []
        copied: list[RawEvent] = []
        for writer in writers:
            writer.start()
        try:
            for _ in range(3):
                out = io.BytesIO()
                summary = write_export(store, out)
                taken.append((summary.header.head, out.getvalue(), store.head_position()))
            with connect("memory://") as target:
                copy_events(store, target)
                copied = list(target.export_events())
        finally:
            stop.set()
            for writer in writers:
                writer.join()
        log = list(store.export_events())
        assert sum(appended) > 0
        assert any(head_after > head for head, _, head_after in taken), (
            "the log grew while an export ran"
        )
        for head, data, _ in taken:
            with connect("memory://") as target:
                assert load_export(target, io.BytesIO(data)) == len(
                    [e for e in log if e.global_position <= head]
                )
                restored = list(target.export_events())
            assert restored == [e for e in log if e.global_position <= head]
            assert verify_chain(restored) == len(restored)
        assert copied == log[: len(copied)]
        assert verify_chain(copied) == len(copied) > 2 * DEFAULT_PAGE_SIZE

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

    @pytest.mark.parametrize("threads", [1, 4], ids=["one-thread", "four-threads"])
    def test_acknowledged_events_survive_sigkill_of_the_writer(
        self, engine: EngineSpec, threads: int
    ) -> None:
        # With four threads the writer commits appends of several threads together: the kill
        # lands in group commits too.
        if not (engine.durable and engine.multiprocess):
            pytest.skip(f"{engine.name} does not outlive its process")
        with engine.open():
            pass
        acknowledged: list[dict[str, int | str]] = []
        for round_number in range(4):
            child = _worker(
                "append-forever",
                engine.url,
                f"crash{round_number}",
                f"r{round_number}",
                str(threads),
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
