"""Helpers of the command-line tests: run `eventvault` in-process, seed and inspect stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from typer.testing import CliRunner, Result

import eventvault
from eventvault import NewEvent, StreamState
from eventvault.cli import app

SeedEvent = tuple[str, str, dict[str, object]]
"""(stream, event type, data)."""

SAMPLE: Final[tuple[SeedEvent, ...]] = (
    ("account-1", "AccountOpened", {"owner": "Ada"}),
    ("account-1", "MoneyDeposited", {"amount": 10}),
    ("account-2", "AccountOpened", {"owner": "Grace"}),
    ("order-7", "OrderPlaced", {"items": 3}),
)
"""Four events in three streams of two categories."""


class Cli:
    """Runs `eventvault` in-process with a wide terminal, so tables are not cut."""

    def __init__(self) -> None:
        self.runner = CliRunner(env={"COLUMNS": "200", "EVENTVAULT_URL": None})

    def __call__(
        self, *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """Run the command line with these arguments; return its exit code and output."""
        return self.runner.invoke(app, list(args), input=input, env=env)


def seed(url: str, events: Sequence[SeedEvent]) -> None:
    """Append events to a store, one append each."""
    with eventvault.connect(url) as store:
        for stream, event_type, data in events:
            store.append_to_stream(
                stream, [NewEvent(event_type, data)], expected_version=StreamState.ANY
            )


def head(url: str) -> int:
    """The head position of a store."""
    with eventvault.connect(url) as store:
        return store.head_position()
