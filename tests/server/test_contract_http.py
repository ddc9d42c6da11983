"""The contract suite through the HTTP client engine, against a real server on each engine.

What does not apply, and why (docs/http.md says the same):

- `SeamContract`: a transaction's work is a Python function and component tables belong to the
  server's store; the client refuses `use`, `query`, `component_versions` and `run_transaction`
  with `NotSupportedError`, which `TestSeamRefused` checks instead; `component_versions` reads
  the versions of the server store's tables.
- `AsyncContract.test_async_seam_runs_a_transaction_of_rows_and_events`: the same, replaced by
  a test of the refusal through the async face.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from eventvault import AsyncEventStore, EventStore
from eventvault.errors import NotSupportedError
from eventvault.testing.contract import (
    AppendContract,
    AsyncContract,
    BadInputContract,
    CancellationContract,
    ConcurrencyContract,
    ContractBase,
    CrashContract,
    HashChainContract,
    IdempotencyContract,
    ImportContract,
    NestingContract,
    PositionEdgeContract,
    ReadContract,
    StatefulContract,
    SubscriptionContract,
)
from eventvault.testing.contract.seam import COUNTS


class TestAppend(AppendContract):
    pass


class TestBadInput(BadInputContract):
    pass


class TestIdempotency(IdempotencyContract):
    pass


class TestRead(ReadContract):
    pass


class TestHashChain(HashChainContract):
    pass


class TestConcurrency(ConcurrencyContract):
    pass


@pytest.mark.slow
class TestCrash(CrashContract):
    pass


class TestImport(ImportContract):
    pass


class TestNesting(NestingContract):
    pass


class TestPositionEdges(PositionEdgeContract):
    pass


class TestSubscription(SubscriptionContract):
    pass


class TestAsync(AsyncContract):
    def test_async_seam_runs_a_transaction_of_rows_and_events(self, store: EventStore) -> None:
        async def scenario() -> None:
            face = AsyncEventStore(store)
            with pytest.raises(NotSupportedError, match="run_transaction"):
                await face.run_transaction(lambda tx: None)
            with pytest.raises(NotSupportedError, match="use"):
                await face.use(COUNTS)

        asyncio.run(scenario())


@pytest.mark.slow
class TestCancellation(CancellationContract):
    pass


@pytest.mark.slow
class TestStateful(StatefulContract):
    pass


class TestSeamRefused(ContractBase):
    def test_every_seam_operation_is_refused_naming_it(self, store: EventStore) -> None:
        calls: dict[str, Callable[[], object]] = {
            "use": lambda: store.use(COUNTS),
            "query": lambda: store.query("SELECT 1"),
            "run_transaction": lambda: store.run_transaction(lambda tx: None),
        }
        for operation, call in calls.items():
            with pytest.raises(NotSupportedError) as caught:
                call()
            assert caught.value.operation == operation
            assert caught.value.engine == "http"
        assert store.head_position() == 0
        assert store.component_versions()["eventvault"] >= 1
