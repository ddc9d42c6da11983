"""The domain layer: typed events, aggregates rebuilt from them, a repository, snapshots.

::

    registry = EventRegistry()

    @registry.event("MoneyDeposited", version=1)
    class MoneyDeposited(msgspec.Struct, frozen=True):
        amount: int

    class AccountState(msgspec.Struct):
        balance: int = 0

    class Account(Aggregate[AccountState]):
        category = "account"
        state_type = AccountState

        def deposit(self, amount: int) -> None:
            self.record(MoneyDeposited(amount=amount))

        @applies(MoneyDeposited)
        def _deposited(self, event: MoneyDeposited) -> None:
            self.state.balance += event.amount

    accounts = Repository(Account, store, registry)
    account = Account("42")
    account.deposit(10)
    accounts.save(account)
    assert accounts.get("42").state.balance == 10
"""

from eventvault.aggregates.aggregate import Aggregate, Handler, applies
from eventvault.aggregates.aio import AsyncRepository
from eventvault.aggregates.errors import (
    AggregateDefinitionError,
    AggregateNotFoundError,
    AggregateQueryError,
    EventDecodeError,
    EventRegistrationError,
    MissingHandlerError,
    UnknownEventTypeError,
    UnregisteredEventError,
)
from eventvault.aggregates.registry import EventRegistry, EventType
from eventvault.aggregates.repository import Repository
from eventvault.aggregates.snapshots import (
    MemorySnapshotStore,
    Snapshot,
    SnapshotStore,
    StoreSnapshotStore,
    snapshot_store_for,
)

__all__ = [
    "Aggregate",
    "AggregateDefinitionError",
    "AggregateNotFoundError",
    "AggregateQueryError",
    "AsyncRepository",
    "EventDecodeError",
    "EventRegistrationError",
    "EventRegistry",
    "EventType",
    "Handler",
    "MemorySnapshotStore",
    "MissingHandlerError",
    "Repository",
    "Snapshot",
    "SnapshotStore",
    "StoreSnapshotStore",
    "UnknownEventTypeError",
    "UnregisteredEventError",
    "applies",
    "snapshot_store_for",
]
