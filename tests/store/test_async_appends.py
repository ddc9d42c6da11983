"""Async appends queue for the group commit from the event loop, not through a thread each."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from eventvault import AsyncEventStore, StreamState, connect
from eventvault.testing.contract import events


def test_concurrent_async_appends_share_commits_without_a_worker_thread_each(
    tmp_path: Path,
) -> None:
    store = connect(str(tmp_path / "async.db"))
    committer = store._committer  # type: ignore[attr-defined]
    commit = committer._commit
    batches: list[tuple[str, int]] = []

    def recording(requests: list[object]) -> list[object]:
        batches.append((threading.current_thread().name, len(requests)))
        return commit(requests)  # type: ignore[no-any-return]

    committer._commit = recording

    async def scenario() -> list[int]:
        face = AsyncEventStore(store)
        results = await asyncio.gather(
            *(
                face.append_to_stream(f"s-{n}", events(1), expected_version=StreamState.NO_STREAM)
                for n in range(256)
            )
        )
        return sorted(r.global_position for r in results)

    try:
        assert asyncio.run(scenario()) == list(range(1, 257))
    finally:
        store.close()
    # Queued from the event loop, committed by the group commit's own thread, in a few batches.
    assert {name for name, _ in batches} == {"eventvault-commit"}
    assert sum(size for _, size in batches) == 256
    assert len(batches) <= 8
