"""The bank's read models: balances, a statement per account, daily totals.

Each is a `Projection`: SQL tables kept current from the log by a runner, rows and checkpoint
committed together. Run them with the application::

    runner = ProjectionRunner(store, PROJECTIONS)
    runner.start()

or on their own, as many processes as you like::

    eventvault projections run --module bank.projections --url eventvault.db

Queries read the tables by name (`balances`, `statement_lines`, `daily_totals`): views of the
version that has caught up. The SQL is written once for SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Final

from bank.domain import (
    AccountClosed,
    AccountOpened,
    MoneyDeposited,
    MoneyWithdrawn,
    TransferReceived,
    TransferSent,
    registry,
)
from eventvault import EventStore, RecordedEvent
from eventvault.projections import Projection, ProjectionBase, ReadModel, handles
from eventvault.store.seam import SQLRow


def account_id(recorded: RecordedEvent) -> str:
    """The account an event belongs to: its stream is `account-<id>`."""
    return recorded.stream_name.partition("-")[2]


class Balances(Projection):
    """Every account's owner, balance and whether it is closed."""

    name = "balances"
    registry = registry
    categories = ("account",)
    tables = {
        "balances": "CREATE TABLE {balances} (account TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "balance BIGINT NOT NULL, closed BOOLEAN NOT NULL)"
    }

    def _move(self, db: ReadModel, recorded: RecordedEvent, amount: int) -> None:
        db.execute(
            "UPDATE {balances} SET balance = balance + ? WHERE account = ?",
            (amount, account_id(recorded)),
        )

    @handles(AccountOpened)
    def opened(self, db: ReadModel, event: AccountOpened, recorded: RecordedEvent) -> None:
        db.execute(
            "INSERT INTO {balances} (account, owner, balance, closed) VALUES (?, ?, 0, ?)",
            (account_id(recorded), event.owner, False),
        )

    @handles(MoneyDeposited)
    def deposited(self, db: ReadModel, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        self._move(db, recorded, event.amount)

    @handles(MoneyWithdrawn)
    def withdrawn(self, db: ReadModel, event: MoneyWithdrawn, recorded: RecordedEvent) -> None:
        self._move(db, recorded, -event.amount)

    @handles(TransferSent)
    def sent(self, db: ReadModel, event: TransferSent, recorded: RecordedEvent) -> None:
        self._move(db, recorded, -event.amount)

    @handles(TransferReceived)
    def received(self, db: ReadModel, event: TransferReceived, recorded: RecordedEvent) -> None:
        self._move(db, recorded, event.amount)

    @handles(AccountClosed)
    def closed(self, db: ReadModel, event: AccountClosed, recorded: RecordedEvent) -> None:
        db.execute(
            "UPDATE {balances} SET closed = ? WHERE account = ?", (True, account_id(recorded))
        )


class Statement(Projection):
    """A statement per account: one line per event, with the running balance."""

    name = "statement"
    registry = registry
    categories = ("account",)
    tables = {
        "statement_lines": "CREATE TABLE {statement_lines} (account TEXT NOT NULL, "
        "line BIGINT NOT NULL, recorded_at TEXT NOT NULL, description TEXT NOT NULL, "
        "amount BIGINT NOT NULL, balance BIGINT NOT NULL, PRIMARY KEY (account, line))"
    }

    def _line(self, db: ReadModel, recorded: RecordedEvent, text: str, amount: int) -> None:
        account = account_id(recorded)
        last = db.fetch(
            "SELECT balance FROM {statement_lines} WHERE account = ? ORDER BY line DESC LIMIT 1",
            (account,),
        )
        balance = (int(last[0][0]) if last else 0) + amount
        db.execute(
            "INSERT INTO {statement_lines} VALUES (?, ?, ?, ?, ?, ?)",
            (
                account,
                recorded.stream_position,
                recorded.recorded_at.isoformat(timespec="seconds"),
                text,
                amount,
                balance,
            ),
        )

    @handles(AccountOpened)
    def opened(self, db: ReadModel, event: AccountOpened, recorded: RecordedEvent) -> None:
        self._line(db, recorded, f"opened for {event.owner}", 0)

    @handles(MoneyDeposited)
    def deposited(self, db: ReadModel, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        self._line(db, recorded, "deposit", event.amount)

    @handles(MoneyWithdrawn)
    def withdrawn(self, db: ReadModel, event: MoneyWithdrawn, recorded: RecordedEvent) -> None:
        self._line(db, recorded, "withdrawal", -event.amount)

    @handles(TransferSent)
    def sent(self, db: ReadModel, event: TransferSent, recorded: RecordedEvent) -> None:
        self._line(db, recorded, f"transfer to {event.to_account}", -event.amount)

    @handles(TransferReceived)
    def received(self, db: ReadModel, event: TransferReceived, recorded: RecordedEvent) -> None:
        self._line(db, recorded, f"transfer from {event.from_account}", event.amount)

    @handles(AccountClosed)
    def closed(self, db: ReadModel, event: AccountClosed, recorded: RecordedEvent) -> None:
        self._line(db, recorded, "closed", 0)


class DailyTotals(Projection):
    """A report: per day (UTC), money paid in, taken out, moved between accounts, and
    accounts opened."""

    name = "daily-totals"
    registry = registry
    categories = ("account",)
    tables = {
        "daily_totals": "CREATE TABLE {daily_totals} (day TEXT PRIMARY KEY, "
        "deposits BIGINT NOT NULL, withdrawals BIGINT NOT NULL, transfers BIGINT NOT NULL, "
        "accounts_opened BIGINT NOT NULL)"
    }
    _ADD: Final = (
        "INSERT INTO {daily_totals} VALUES (?, ?, ?, ?, ?) ON CONFLICT (day) DO UPDATE SET "
        "deposits = {daily_totals}.deposits + excluded.deposits, "
        "withdrawals = {daily_totals}.withdrawals + excluded.withdrawals, "
        "transfers = {daily_totals}.transfers + excluded.transfers, "
        "accounts_opened = {daily_totals}.accounts_opened + excluded.accounts_opened"
    )

    def _add(
        self,
        db: ReadModel,
        recorded: RecordedEvent,
        *,
        deposits: int = 0,
        withdrawals: int = 0,
        transfers: int = 0,
        opened: int = 0,
    ) -> None:
        day = recorded.recorded_at.date().isoformat()
        db.execute(self._ADD, (day, deposits, withdrawals, transfers, opened))

    @handles(AccountOpened)
    def opened(self, db: ReadModel, event: AccountOpened, recorded: RecordedEvent) -> None:
        self._add(db, recorded, opened=1)

    @handles(MoneyDeposited)
    def deposited(self, db: ReadModel, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        self._add(db, recorded, deposits=event.amount)

    @handles(MoneyWithdrawn)
    def withdrawn(self, db: ReadModel, event: MoneyWithdrawn, recorded: RecordedEvent) -> None:
        self._add(db, recorded, withdrawals=event.amount)

    @handles(TransferSent)
    def sent(self, db: ReadModel, event: TransferSent, recorded: RecordedEvent) -> None:
        # Counted once, on the sending side.
        self._add(db, recorded, transfers=event.amount)


PROJECTIONS: list[ProjectionBase] = [Balances(), Statement(), DailyTotals()]
"""What `eventvault projections ... --module bank.projections` runs."""


def balances(store: EventStore) -> list[SQLRow]:
    """(account, owner, balance, closed) of every account, by owner."""
    return store.query(
        "SELECT account, owner, balance, closed FROM {schema}.balances ORDER BY owner, account"
    )


def statement(store: EventStore, account: str) -> list[SQLRow]:
    """The statement of one account: (line, description, amount, balance), oldest first."""
    placeholder = "%s" if store.dialect == "postgresql" else "?"
    return store.query(
        "SELECT line, description, amount, balance FROM {schema}.statement_lines "
        f"WHERE account = {placeholder} ORDER BY line",
        (account,),
    )


def daily_report(store: EventStore) -> list[SQLRow]:
    """(day, deposits, withdrawals, transfers, accounts opened), oldest day first."""
    return store.query(
        "SELECT day, deposits, withdrawals, transfers, accounts_opened "
        "FROM {schema}.daily_totals ORDER BY day"
    )
