"""The contract suite through the HTTP client engine, against a real server on each engine.

What does not apply, and why (docs/http.md says the same):

- `SeamContract`: a transaction's work is a Python function and component tables belong to the
  server's store; the client refuses `use`, `query`, `component_versions` and `run_transaction`
  with `NotSupportedError`, which `TestSeamRefused` checks instead; `component_versions` reads
  the versions of the server store's tables.
- `AsyncContract.test_async_seam_runs_a_transaction_of_rows_and_events`: the same, replaced by
  a test of the refusal through the async face.
- `RemovalContract.test_components_drop_what_they_derived_from_removed_events`: it keeps rows
  in a component table of the client's; the server's store runs its own components'
  statements in each removal's transaction. Replaced by a test that the removal travels while
  the component is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from eventvault import AsyncEventStore, EventStore, StreamState
from eventvault.audit import AuditLedger, SubjectKeys
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
    RemovalContract,
    StatefulContract,
    SubscriptionContract,
)
from eventvault.testing.contract.base import events
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


class TestRemoval(RemovalContract):
    def test_components_drop_what_they_derived_from_removed_events(self, store: EventStore) -> None:
        store.append_to_stream("cart-1", events(4), expected_version=StreamState.NO_STREAM)
        with pytest.raises(NotSupportedError, match="use"):
            store.use(COUNTS)
        removal = store.truncate_stream("cart-1", before=2, actor="ops", reason="closed")
        assert (removal.count, removal.record_position) == (2, 5)
        assert [e.stream_position for e in store.read_stream("cart-1")] == [2, 3]


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

    def test_the_audit_ledger_and_subject_keys_are_refused_naming_the_seam(
        self, store: EventStore
    ) -> None:
        # Both keep tables beside the events: they run where the server's store is.
        makers: list[Callable[[EventStore], object]] = [AuditLedger, SubjectKeys]
        for make in makers:
            with pytest.raises(NotSupportedError) as caught:
                make(store)
            assert (caught.value.operation, caught.value.engine) == ("use", "http")
