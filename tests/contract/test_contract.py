"""The contract suite of `eventvault.testing`, applied to every engine (see conftest.py)."""

from eventvault.testing.contract import (
    AppendContract,
    AsyncContract,
    BadInputContract,
    CancellationContract,
    ConcurrencyContract,
    CrashContract,
    HashChainContract,
    HostileNamesContract,
    IdempotencyContract,
    ImportContract,
    NestingContract,
    PositionEdgeContract,
    ReadContract,
    RemovalContract,
    SeamContract,
    StatefulContract,
    SubscriptionContract,
)


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


class TestHostileNames(HostileNamesContract):
    pass


class TestConcurrency(ConcurrencyContract):
    pass


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
    pass


class TestCancellation(CancellationContract):
    pass


class TestStateful(StatefulContract):
    pass


class TestSeam(SeamContract):
    pass


class TestRemoval(RemovalContract):
    pass
