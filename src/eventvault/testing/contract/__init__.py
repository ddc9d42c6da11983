"""The contract every engine passes: the guarantees of the store, as pytest classes.

Apply it to an engine by defining an `engine` fixture that returns an `EngineSpec` and
subclassing the classes in a test module::

    import pytest
    from eventvault.testing.contract import *  # noqa: F403

    @pytest.fixture
    def engine(tmp_path):
        return EngineSpec("sqlite", str(tmp_path / "test.db"), durable=True, multiprocess=True)

    class TestAppend(AppendContract): ...

An engine that `connect` does not open (or not only), such as a class of another package,
passes a `factory` that opens its stores::

    EngineSpec("mine", "store-1", durable=False, multiprocess=False,
               factory=lambda location, *, max_event_bytes: MyEventStore(...))

Each class holds one area; every test asks only for `store` or `engine`. See
docs/howto-write-an-engine.md.
"""

from eventvault.testing.contract.appends import AppendContract, BadInputContract
from eventvault.testing.contract.base import ContractBase, EngineSpec, StoreFactory, events
from eventvault.testing.contract.cancellation import CancellationContract
from eventvault.testing.contract.concurrency import (
    ConcurrencyContract,
    CrashContract,
    ImportContract,
)
from eventvault.testing.contract.edges import PositionEdgeContract
from eventvault.testing.contract.names import HostileNamesContract
from eventvault.testing.contract.nesting import NestingContract
from eventvault.testing.contract.reads import HashChainContract, IdempotencyContract, ReadContract
from eventvault.testing.contract.removal import RemovalContract
from eventvault.testing.contract.seam import SeamContract
from eventvault.testing.contract.stateful import StatefulContract
from eventvault.testing.contract.subscriptions import AsyncContract, SubscriptionContract

ALL_CONTRACTS = (
    AppendContract,
    BadInputContract,
    IdempotencyContract,
    ReadContract,
    HashChainContract,
    HostileNamesContract,
    ConcurrencyContract,
    CrashContract,
    ImportContract,
    SubscriptionContract,
    AsyncContract,
    CancellationContract,
    NestingContract,
    PositionEdgeContract,
    StatefulContract,
    SeamContract,
    RemovalContract,
)

__all__ = [
    "ALL_CONTRACTS",
    "AppendContract",
    "AsyncContract",
    "BadInputContract",
    "CancellationContract",
    "ConcurrencyContract",
    "ContractBase",
    "CrashContract",
    "EngineSpec",
    "HashChainContract",
    "HostileNamesContract",
    "IdempotencyContract",
    "ImportContract",
    "NestingContract",
    "PositionEdgeContract",
    "ReadContract",
    "RemovalContract",
    "SeamContract",
    "StatefulContract",
    "StoreFactory",
    "SubscriptionContract",
    "events",
]
