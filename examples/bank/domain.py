"""The bank's domain: account events, the `Account` aggregate and the `Bank` service.

Amounts are integers in cents. An account may go below zero down to its overdraft limit; it
closes only at a zero balance; a transfer is two events in two accounts, saved atomically.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import msgspec

from eventvault import EventStore, RecordedEvent
from eventvault.aggregates import Aggregate, EventRegistry, Repository, applies

registry = EventRegistry()


# -- events ------------------------------------------------------------------------------------


@registry.event("AccountOpened", version=1)
class AccountOpened(msgspec.Struct, frozen=True):
    """An account was opened for an owner, with an overdraft limit (cents, >= 0)."""

    owner: str
    overdraft_limit: int


@registry.event("MoneyDeposited", version=1)
class MoneyDeposited(msgspec.Struct, frozen=True):
    """Money was paid into an account."""

    amount: int


@registry.event("MoneyWithdrawn", version=1)
class MoneyWithdrawn(msgspec.Struct, frozen=True):
    """Money was taken out of an account."""

    amount: int


@registry.event("TransferSent", version=1)
class TransferSent(msgspec.Struct, frozen=True):
    """Money left an account for another one."""

    transfer_id: str
    to_account: str
    amount: int


@registry.event("TransferReceived", version=1)
class TransferReceived(msgspec.Struct, frozen=True):
    """Money arrived from another account."""

    transfer_id: str
    from_account: str
    amount: int


@registry.event("AccountClosed", version=1)
class AccountClosed(msgspec.Struct, frozen=True):
    """An account was closed; it takes no more money."""


# -- errors ------------------------------------------------------------------------------------


class BankError(Exception):
    """A command broke a rule of the bank; nothing was recorded."""


class InsufficientFundsError(BankError):
    """A withdrawal or transfer would take the balance below the overdraft limit."""

    def __init__(self, account_id: str, balance: int, amount: int, overdraft_limit: int) -> None:
        self.account_id = account_id
        self.balance = balance
        self.amount = amount
        self.overdraft_limit = overdraft_limit
        super().__init__(
            f"account {account_id}: taking {amount / 100:.2f} from a balance of "
            f"{balance / 100:.2f} would pass the overdraft limit of {overdraft_limit / 100:.2f}"
        )


# -- the aggregate -----------------------------------------------------------------------------


class AccountState(msgspec.Struct):
    """What an account knows: the state its events add up to."""

    owner: str = ""
    balance: int = 0
    overdraft_limit: int = 0
    is_open: bool = False
    is_closed: bool = False


class Account(Aggregate[AccountState]):
    """A bank account; its stream is `account-<id>`."""

    category = "account"
    state_type = AccountState
    snapshot_version = 1

    # -- commands: check the rules, then record

    def open(self, owner: str, overdraft_limit: int = 0) -> None:
        """Open this (new) account.

        Raises:
            BankError: it is already open, the owner is empty or the limit is negative.
        """
        if self.state.is_open:
            raise BankError(f"account {self.id} is already open")
        if not owner:
            raise BankError("an account needs an owner")
        if overdraft_limit < 0:
            raise BankError(f"the overdraft limit must be >= 0, not {overdraft_limit}")
        self.record(AccountOpened(owner=owner, overdraft_limit=overdraft_limit))

    def deposit(self, amount: int) -> None:
        """Pay money in.

        Raises:
            BankError: the account is not open, or the amount is not positive.
        """
        self._check_usable(amount)
        self.record(MoneyDeposited(amount=amount))

    def withdraw(self, amount: int) -> None:
        """Take money out, down to the overdraft limit.

        Raises:
            BankError: the account is not open, or the amount is not positive.
            InsufficientFundsError: the balance would pass the overdraft limit.
        """
        self._check_usable(amount)
        self._check_funds(amount)
        self.record(MoneyWithdrawn(amount=amount))

    def send(self, transfer_id: str, to_account: str, amount: int) -> None:
        """The sending half of a transfer (see `Bank.transfer`).

        Raises:
            BankError, InsufficientFundsError: as for `withdraw`.
        """
        self._check_usable(amount)
        self._check_funds(amount)
        self.record(TransferSent(transfer_id=transfer_id, to_account=to_account, amount=amount))

    def receive(self, transfer_id: str, from_account: str, amount: int) -> None:
        """The receiving half of a transfer.

        Raises:
            BankError: as for `deposit`.
        """
        self._check_usable(amount)
        self.record(
            TransferReceived(transfer_id=transfer_id, from_account=from_account, amount=amount)
        )

    def close(self) -> None:
        """Close the account.

        Raises:
            BankError: it is not open, or its balance is not zero.
        """
        self._check_usable(None)
        if self.state.balance != 0:
            raise BankError(
                f"account {self.id} has a balance of {self.state.balance}; it closes only at zero"
            )
        self.record(AccountClosed())

    def _check_usable(self, amount: int | None) -> None:
        if not self.state.is_open:
            raise BankError(f"account {self.id} is not open")
        if self.state.is_closed:
            raise BankError(f"account {self.id} is closed")
        if amount is not None and amount <= 0:
            raise BankError(f"the amount must be positive, not {amount}")

    def _check_funds(self, amount: int) -> None:
        state = self.state
        if state.balance - amount < -state.overdraft_limit:
            raise InsufficientFundsError(self.id, state.balance, amount, state.overdraft_limit)

    # -- handlers: one per event, change the state, never fail

    @applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.state.owner = event.owner
        self.state.overdraft_limit = event.overdraft_limit
        self.state.is_open = True

    @applies(MoneyDeposited)
    def _deposited(self, event: MoneyDeposited) -> None:
        self.state.balance += event.amount

    @applies(MoneyWithdrawn)
    def _withdrawn(self, event: MoneyWithdrawn) -> None:
        self.state.balance -= event.amount

    @applies(TransferSent)
    def _sent(self, event: TransferSent) -> None:
        self.state.balance -= event.amount

    @applies(TransferReceived)
    def _received(self, event: TransferReceived) -> None:
        self.state.balance += event.amount

    @applies(AccountClosed)
    def _closed(self, event: AccountClosed) -> None:
        self.state.is_closed = True


# -- the service -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One event of an account's history, as the store recorded it."""

    version: int
    recorded_at: datetime
    event: msgspec.Struct


class Bank:
    """The bank's use cases over an event store.

    Args:
        store: the event store.
        snapshot_every: snapshot accounts every this many events (None: never).
    """

    def __init__(self, store: EventStore, *, snapshot_every: int | None = None) -> None:
        self.store = store
        self.accounts = Repository(Account, store, registry, snapshot_every=snapshot_every)

    def open_account(self, owner: str, overdraft_limit: int = 0) -> str:
        """Open an account; returns its new id."""
        account = Account(uuid.uuid4().hex[:12])
        account.open(owner, overdraft_limit)
        self.accounts.save(account)
        return account.id

    def deposit(self, account_id: str, amount: int) -> Account:
        """Pay money in (re-run on a fresh copy if another writer got there first)."""
        return self.accounts.update(account_id, lambda account: account.deposit(amount))

    def withdraw(self, account_id: str, amount: int) -> Account:
        """Take money out, within the overdraft limit."""
        return self.accounts.update(account_id, lambda account: account.withdraw(amount))

    def transfer(self, from_id: str, to_id: str, amount: int) -> str:
        """Move money between two accounts: both are saved in one atomic append.

        Returns:
            The transfer's id.

        Raises:
            BankError: same account, or a rule of either account is broken.
            WrongExpectedVersionError: either account changed meanwhile; nothing was saved.
        """
        if from_id == to_id:
            raise BankError("a transfer needs two different accounts")
        source = self.accounts.get(from_id)
        target = self.accounts.get(to_id)
        transfer_id = uuid.uuid4().hex[:12]
        source.send(transfer_id, to_id, amount)
        target.receive(transfer_id, from_id, amount)
        self.accounts.save(source, target)
        return transfer_id

    def close_account(self, account_id: str) -> Account:
        """Close an account with a zero balance."""
        return self.accounts.update(account_id, lambda account: account.close())

    def account(
        self, account_id: str, *, version: int | None = None, as_of: datetime | None = None
    ) -> Account:
        """An account now, at a version, or as of a time."""
        return self.accounts.get(account_id, version=version, as_of=as_of)

    def history(self, account_id: str) -> Iterator[HistoryEntry]:
        """An account's events, oldest first."""
        stream = Account.stream_name_for(account_id)
        for recorded in self.store.read_stream(stream):
            yield _entry(recorded)

    def close(self) -> None:
        """Release the snapshot store (the event store stays open)."""
        self.accounts.close()


def _entry(recorded: RecordedEvent) -> HistoryEntry:
    return HistoryEntry(recorded.stream_position, recorded.recorded_at, registry.decode(recorded))
