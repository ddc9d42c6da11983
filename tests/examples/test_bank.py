"""The bank example: its rules, its transfers, and the script as the README runs it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bank.app import main
from bank.domain import (
    Account,
    AccountClosed,
    AccountOpened,
    Bank,
    BankError,
    InsufficientFundsError,
    MoneyDeposited,
    MoneyWithdrawn,
    TransferReceived,
    TransferSent,
    registry,
)

import eventvault
from eventvault import WrongExpectedVersionError
from eventvault.testing.aggregates import AggregateScenario

from .conftest import EXAMPLES

OPENED = AccountOpened(owner="Ada", overdraft_limit=100)


@pytest.fixture
def bank() -> Iterator[Bank]:
    with eventvault.connect("memory://") as store:
        opened = Bank(store)
        yield opened
        opened.close()


def scenario() -> AggregateScenario[Account]:
    return AggregateScenario(Account, "a1", registry=registry)


# -- the account's rules -------------------------------------------------------------------


def test_opening_records_the_owner_and_overdraft_limit() -> None:
    scenario().when(lambda a: a.open("Ada", 100)).then(OPENED)


def test_an_account_opens_once() -> None:
    scenario().given(OPENED).when(lambda a: a.open("Ada")).then_raises(BankError, "already open")


def test_a_negative_overdraft_limit_is_refused() -> None:
    scenario().when(lambda a: a.open("Ada", -1)).then_raises(BankError, "overdraft limit")


def test_a_deposit_adds_to_the_balance() -> None:
    account = scenario().given(OPENED).when(lambda a: a.deposit(50)).then(MoneyDeposited(50))
    assert account.state.balance == 50


@pytest.mark.parametrize("amount", [0, -5])
def test_a_deposit_must_be_positive(amount: int) -> None:
    scenario().given(OPENED).when(lambda a: a.deposit(amount)).then_raises(BankError, "positive")


def test_money_cannot_go_into_an_account_not_opened() -> None:
    scenario().when(lambda a: a.deposit(5)).then_raises(BankError, "not open")


def test_a_withdrawal_may_use_the_overdraft() -> None:
    account = scenario().given(OPENED).when(lambda a: a.withdraw(100)).then(MoneyWithdrawn(100))
    assert account.state.balance == -100


def test_a_withdrawal_past_the_overdraft_limit_is_refused() -> None:
    error = (
        scenario()
        .given(OPENED, MoneyDeposited(20))
        .when(lambda a: a.withdraw(121))
        .then_raises(InsufficientFundsError)
    )
    assert (error.balance, error.amount, error.overdraft_limit) == (20, 121, 100)


def test_an_account_closes_at_a_zero_balance() -> None:
    scenario().given(OPENED).when(lambda a: a.close()).then(AccountClosed())


def test_an_account_with_money_does_not_close() -> None:
    (
        scenario()
        .given(OPENED, MoneyDeposited(1))
        .when(lambda a: a.close())
        .then_raises(BankError, "balance of 1")
    )


def test_a_closed_account_takes_no_money() -> None:
    scenario().given(OPENED, AccountClosed()).when(lambda a: a.deposit(1)).then_raises(
        BankError, "closed"
    )


# -- the bank service ----------------------------------------------------------------------


def test_a_transfer_moves_money_and_saves_both_accounts_together(bank: Bank) -> None:
    alice = bank.open_account("Alice")
    bob = bank.open_account("Bob")
    bank.deposit(alice, 300)
    transfer_id = bank.transfer(alice, bob, 120)
    assert bank.account(alice).state.balance == 180
    assert bank.account(bob).state.balance == 120
    sent = [entry.event for entry in bank.history(alice)][-1]
    received = [entry.event for entry in bank.history(bob)][-1]
    assert sent == TransferSent(transfer_id, bob, 120)
    assert received == TransferReceived(transfer_id, alice, 120)


def test_a_transfer_past_the_overdraft_limit_changes_neither_account(bank: Bank) -> None:
    alice = bank.open_account("Alice")
    bob = bank.open_account("Bob")
    with pytest.raises(InsufficientFundsError):
        bank.transfer(alice, bob, 1)
    assert bank.account(alice).version == 0
    assert bank.account(bob).version == 0


def test_a_transfer_to_a_closed_account_changes_neither_account(bank: Bank) -> None:
    alice = bank.open_account("Alice")
    bob = bank.open_account("Bob")
    bank.deposit(alice, 50)
    bank.close_account(bob)
    with pytest.raises(BankError, match="closed"):
        bank.transfer(alice, bob, 10)
    assert bank.account(alice).state.balance == 50


def test_a_transfer_to_the_same_account_is_refused(bank: Bank) -> None:
    alice = bank.open_account("Alice")
    with pytest.raises(BankError, match="two different accounts"):
        bank.transfer(alice, alice, 1)


def test_a_transfer_racing_another_write_saves_nothing(bank: Bank) -> None:
    alice = bank.open_account("Alice")
    bob = bank.open_account("Bob")
    bank.deposit(alice, 100)
    source = bank.accounts.get(alice)
    target = bank.accounts.get(bob)
    bank.deposit(bob, 1)  # another writer moves Bob on
    source.send("t1", bob, 10)
    target.receive("t1", alice, 10)
    with pytest.raises(WrongExpectedVersionError):
        bank.accounts.save(source, target)
    assert bank.account(alice).state.balance == 100


def test_past_states_by_version_and_by_time(bank: Bank) -> None:
    alice = bank.open_account("Alice")
    bank.deposit(alice, 10)
    after_first_deposit = datetime.now(UTC)
    bank.deposit(alice, 20)
    assert bank.account(alice, version=1).state.balance == 10
    assert bank.account(alice, as_of=after_first_deposit).state.balance == 10
    assert bank.account(alice).state.balance == 30


def test_history_lists_every_event_in_order(bank: Bank) -> None:
    alice = bank.open_account("Alice", overdraft_limit=5)
    bank.withdraw(alice, 5)
    entries = list(bank.history(alice))
    assert [entry.version for entry in entries] == [0, 1]
    assert [entry.event for entry in entries] == [AccountOpened("Alice", 5), MoneyWithdrawn(5)]


def test_snapshots_do_not_change_what_the_bank_reports(tmp_path: Path) -> None:
    with eventvault.connect(str(tmp_path / "bank.db")) as store:
        plain = Bank(store)
        snapshotting = Bank(store, snapshot_every=2)
        alice = snapshotting.open_account("Alice")
        for amount in range(1, 8):
            snapshotting.deposit(alice, amount)
        assert snapshotting.account(alice).state == plain.account(alice).state
        assert snapshotting.account(alice, version=4).state == plain.account(alice, version=4).state
        snapshotting.close()
        plain.close()


# -- the script ----------------------------------------------------------------------------


def test_main_prints_current_state_history_and_past_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--url", "memory://"]) == 0
    out = capsys.readouterr().out
    assert "current state" in out
    assert "history of" in out
    assert "past state" in out
    assert "refused: account" in out
    assert "TransferSent" in out
    assert "balances (read model)" in out
    assert "statement of" in out
    assert "daily totals (read model)" in out


def test_the_script_writes_eventvault_db_in_the_working_directory(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "bank" / "app.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "eventvault.db").exists()
    with eventvault.connect(str(tmp_path / "eventvault.db")) as store:
        assert store.stats().stream_count == 3


def test_the_script_accepts_url_and_can_run_twice_on_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "bank" / "app.py"), "--url", url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    with eventvault.connect(url) as store:
        assert store.stats().stream_count == 6
