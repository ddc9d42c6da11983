"""The bank's read models: balances, statements and daily totals, live and rebuilt."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bank.domain import (
    AccountClosed,
    AccountOpened,
    Bank,
    MoneyDeposited,
    MoneyWithdrawn,
    TransferReceived,
    TransferSent,
)
from bank.projections import PROJECTIONS, Balances, DailyTotals, Statement, balances, daily_report

import eventvault
from eventvault import EventStore
from eventvault.projections import ProjectionRunner
from eventvault.testing import ProjectionScenario


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[EventStore]:
    url = "memory://" if request.param == "memory" else f"{tmp_path}/bank.db"
    with eventvault.connect(url) as opened:
        yield opened


def test_balances_follow_deposits_withdrawals_transfers_and_closing() -> None:
    (
        ProjectionScenario(Balances())
        .given(
            "account-a", AccountOpened("Ada", 0), MoneyDeposited(100), TransferSent("t", "b", 30)
        )
        .given("account-b", AccountOpened("Bob", 0), TransferReceived("t", "a", 30))
        .given("account-c", AccountOpened("Cy", 0), MoneyWithdrawn(0), AccountClosed())
        .then(
            "SELECT account, owner, balance, closed FROM balances ORDER BY account",
            [("a", "Ada", 70, 0), ("b", "Bob", 30, 0), ("c", "Cy", 0, 1)],
        )
    )


def test_a_statement_has_a_line_per_event_with_the_running_balance() -> None:
    (
        ProjectionScenario(Statement())
        .given("account-a", AccountOpened("Ada", 50), MoneyDeposited(100), MoneyWithdrawn(130))
        .then(
            "SELECT line, description, amount, balance FROM statement_lines ORDER BY line",
            [(0, "opened for Ada", 0, 0), (1, "deposit", 100, 100), (2, "withdrawal", -130, -30)],
        )
    )


def test_daily_totals_count_a_transfer_once() -> None:
    scenario = (
        ProjectionScenario(DailyTotals())
        .given(
            "account-a", AccountOpened("Ada", 0), MoneyDeposited(100), TransferSent("t", "b", 30)
        )
        .given("account-b", AccountOpened("Bob", 0), TransferReceived("t", "a", 30))
    )
    [(day, deposits, withdrawals, transfers, opened)] = scenario.query("SELECT * FROM daily_totals")
    assert (deposits, withdrawals, transfers, opened) == (100, 0, 30, 2)
    assert len(str(day)) == 10


def test_a_runner_keeps_the_report_live_and_a_new_version_rebuilds_it(store: EventStore) -> None:
    bank = Bank(store)
    alice = bank.open_account("Alice")
    runner = ProjectionRunner(store, PROJECTIONS)
    runner.start()
    try:
        assert runner.wait_until_caught_up(30)
        assert [row[1:] for row in daily_report(store)] == [(0, 0, 0, 1)]
        bank.deposit(alice, 500)
        assert runner.wait_until_caught_up(30)
        assert [row[1:] for row in daily_report(store)] == [(500, 0, 0, 1)]
    finally:
        runner.stop()
        runner.join()

    class DailyTotalsV2(DailyTotals):
        version = 2

    report = daily_report(store)
    assert ProjectionRunner(store, [DailyTotalsV2()]).catch_up(30)
    assert daily_report(store) == report
    assert balances(store)[0][1:3] == ("Alice", 500)
    bank.close()
