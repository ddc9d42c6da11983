"""How a filtered subscription moves through a log where its filter rarely matches."""

from __future__ import annotations

from pathlib import Path

import pytest

import eventvault
from eventvault import NewEvent, StreamState


@pytest.mark.parametrize("engine", ["memory", "sqlite"])
def test_a_filtered_subscription_does_not_rescan_events_that_never_matched(
    engine: str, tmp_path: Path
) -> None:
    url = "memory://" if engine == "memory" else str(tmp_path / "s.db")
    with eventvault.connect(url) as store:
        store.append_to_stream(
            "noise-1",
            [NewEvent("Noise", {"n": n}) for n in range(2500)],
            expected_version=StreamState.ANY,
        )
        with store.subscribe_to_all(event_types=["Rare"]) as subscription:
            assert subscription.next_batch(timeout=0.2) == []
            # Every event up to the head was examined once; the next poll starts after them.
            assert subscription._cursor == store.head_position()
            store.append_to_stream(
                "rare-1", [NewEvent("Rare", {})], expected_version=StreamState.ANY
            )
            (event,) = subscription.next_batch(timeout=5)
        assert event.event_type == "Rare"
        assert subscription.position == event.global_position
