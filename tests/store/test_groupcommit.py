"""The group committer: batching, failures that stay with their request, leadership hand-off."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from eventvault.store._groupcommit import GroupCommitter


def _first_then_queued(
    submit: Callable[[int], object], first: int, queued: range, release: threading.Event
) -> list[threading.Thread]:
    """Submit `first` from one thread (its commit waits for `release`), then each of `queued`
    from a thread of its own while that commit runs; release it and wait for every thread."""
    threads = [threading.Thread(target=submit, args=(first,))]
    threads[0].start()
    time.sleep(0.05)
    threads += [threading.Thread(target=submit, args=(n,)) for n in queued]
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.1)
    release.set()
    for thread in threads:
        thread.join(5)
    return threads


def test_a_lone_request_is_committed_by_its_own_thread() -> None:
    seen: list[str] = []

    def commit(requests: list[int]) -> list[int | BaseException]:
        seen.append(threading.current_thread().name)
        return [r * 2 for r in requests]

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    assert committer.submit(21) == 42
    assert seen == [threading.current_thread().name]


def test_requests_queued_during_a_commit_are_committed_together() -> None:
    batches: list[list[int]] = []
    release = threading.Event()

    def commit(requests: list[int]) -> list[int | BaseException]:
        batches.append(list(requests))
        if requests == [0]:
            release.wait(5)
        return list(requests)

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    results: dict[int, int] = {}

    def submit(n: int) -> None:
        results[n] = committer.submit(n)

    _first_then_queued(submit, 0, range(1, 6), release)
    assert results == {n: n for n in range(6)}
    assert batches[0] == [0]
    assert sorted(batches[1]) == [1, 2, 3, 4, 5]


def test_an_error_for_one_request_is_raised_only_to_its_caller() -> None:
    def commit(requests: list[int]) -> list[int | BaseException]:
        return [ValueError(f"bad {r}") if r < 0 else r for r in requests]

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    with pytest.raises(ValueError, match="bad -1"):
        committer.submit(-1)
    assert committer.submit(3) == 3


def test_a_failing_commit_fails_its_batch_and_the_next_batch_still_runs() -> None:
    calls = 0

    def commit(requests: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk full")
        return list(requests)

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    with pytest.raises(OSError, match="disk full"):
        committer.submit(1)
    assert committer.submit(2) == 2


def test_many_threads_each_get_their_own_result() -> None:
    committer: GroupCommitter[int, int] = GroupCommitter(lambda rs: [r + 1000 for r in rs])
    results: dict[int, int] = {}
    lock = threading.Lock()

    def work(base: int) -> None:
        for n in range(200):
            value = committer.submit(base + n)
            with lock:
                results[base + n] = value

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 1600
    assert all(value == key + 1000 for key, value in results.items())


def test_every_waiter_of_a_batch_returns_though_some_raise_and_none_submits_again() -> None:
    release = threading.Event()

    def commit(requests: list[int]) -> list[int | BaseException]:
        if requests == [-1]:
            release.wait(5)
        return [ValueError(f"odd {r}") if r % 2 else r for r in requests]

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    outcomes: dict[int, object] = {}

    def submit(n: int) -> None:
        try:
            outcomes[n] = committer.submit(n)
        except ValueError as exc:
            outcomes[n] = str(exc)

    # Each thread submits once and ends: the waiters of the batch wake one another in turn,
    # and none of them must be left asleep.
    threads = _first_then_queued(submit, -1, range(15), release)
    assert not any(thread.is_alive() for thread in threads)
    assert outcomes == {-1: "odd -1", **{n: f"odd {n}" if n % 2 else n for n in range(15)}}


def test_has_queued_tells_the_committing_thread_that_another_batch_follows() -> None:
    release = threading.Event()
    seen: list[tuple[list[int], bool]] = []
    committer: GroupCommitter[int, int]

    def commit(requests: list[int]) -> list[int | BaseException]:
        if requests == [0]:
            release.wait(5)
        seen.append((sorted(requests), committer.has_queued()))
        return list(requests)

    committer = GroupCommitter(commit)
    _first_then_queued(committer.submit, 0, range(1, 3), release)
    assert seen == [([0], True), ([1, 2], False)]


# -- coroutines -----------------------------------------------------------------------------


def test_coroutines_share_batches_without_a_thread_each() -> None:
    batches: list[list[int]] = []
    threads: set[str] = set()

    def commit(requests: list[int]) -> list[int | BaseException]:
        batches.append(list(requests))
        threads.add(threading.current_thread().name)
        time.sleep(0.01)
        return [r * 2 for r in requests]

    committer: GroupCommitter[int, int] = GroupCommitter(commit)

    async def scenario() -> list[int]:
        return list(await asyncio.gather(*(committer.submit_async(n) for n in range(256))))

    assert asyncio.run(scenario()) == [n * 2 for n in range(256)]
    # The first request starts a commit; the other 255 queue behind it and go in one batch.
    assert [len(batch) for batch in batches] == [1, 255]
    assert sorted(n for batch in batches for n in batch) == list(range(256))
    assert threads == {"eventvault-commit"}
    assert threading.current_thread().name not in threads


def test_a_failing_request_of_a_coroutine_batch_fails_alone() -> None:
    def commit(requests: list[int]) -> list[int | BaseException]:
        return [ValueError(f"bad {r}") if r % 5 == 0 else r for r in requests]

    committer: GroupCommitter[int, int] = GroupCommitter(commit)

    async def scenario() -> list[int | BaseException]:
        return list(
            await asyncio.gather(
                *(committer.submit_async(n) for n in range(20)), return_exceptions=True
            )
        )

    outcomes = asyncio.run(scenario())
    assert [str(o) for o in outcomes if isinstance(o, ValueError)] == [
        f"bad {n}" for n in range(0, 20, 5)
    ]
    assert [o for o in outcomes if not isinstance(o, BaseException)] == [
        n for n in range(20) if n % 5
    ]


def test_a_commit_that_raises_fails_every_coroutine_of_its_batch() -> None:
    def commit(requests: list[int]) -> list[int | BaseException]:
        raise OSError("disk gone")

    committer: GroupCommitter[int, int] = GroupCommitter(commit)

    async def scenario() -> None:
        with pytest.raises(OSError, match="disk gone"):
            await committer.submit_async(1)

    asyncio.run(scenario())
    # Leadership lapsed: the next request is committed again.
    with pytest.raises(OSError, match="disk gone"):
        committer.submit(2)


def test_threads_and_coroutines_mixed_all_get_their_own_result() -> None:
    def commit(requests: list[int]) -> list[int | BaseException]:
        time.sleep(0.002)
        return [r + 1000 for r in requests]

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    from_threads: dict[int, int] = {}

    def thread_work(worker: int) -> None:
        for n in range(30):
            key = worker * 100 + n
            from_threads[key] = committer.submit(key)

    async def coroutine_work() -> list[int]:
        return list(await asyncio.gather(*(committer.submit_async(-n) for n in range(1, 301))))

    workers = [threading.Thread(target=thread_work, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    from_coroutines = asyncio.run(coroutine_work())
    for worker in workers:
        worker.join(10)
    assert from_coroutines == [1000 - n for n in range(1, 301)]
    assert from_threads == {w * 100 + n: w * 100 + n + 1000 for w in range(4) for n in range(30)}


def test_a_cancelled_coroutine_stops_waiting_but_its_request_is_committed() -> None:
    committed: list[int] = []
    release = threading.Event()

    def commit(requests: list[int]) -> list[int | BaseException]:
        release.wait(5)
        committed.extend(requests)
        return list(requests)

    committer: GroupCommitter[int, int] = GroupCommitter(commit)

    async def scenario() -> int:
        task = asyncio.ensure_future(committer.submit_async(7))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        return await committer.submit_async(8)

    assert asyncio.run(scenario()) == 8
    assert committed == [7, 8]
