"""The bank example, end to end: open accounts, move money, look at the present and past, then
at the read models a projection runner keeps (balances, a statement, daily totals).

Run it from the repository root::

    python examples/bank/app.py                      # writes ./eventvault.db
    python examples/bank/app.py --url memory://      # leaves nothing behind

Each run opens new accounts, so it can be run again on the same file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a script: make the `bank` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventvault
from bank.domain import Account, Bank, BankError
from bank.projections import PROJECTIONS, balances, daily_report, statement
from eventvault.projections import ProjectionRunner
from eventvault.store import DEFAULT_URL


def describe(account: Account) -> str:
    """One line about an account's state."""
    state = account.state
    status = "closed" if state.is_closed else "open"
    return (
        f"{account.id} {state.owner:<6} balance {state.balance / 100:>9.2f} "
        f"(overdraft {state.overdraft_limit / 100:.2f}, {status}, version {account.version})"
    )


def reports(store: eventvault.EventStore, account_id: str) -> None:
    """Bring the read models up to the head of the log, then print them."""
    if not ProjectionRunner(store, PROJECTIONS).catch_up(timeout=60):
        raise SystemExit("the read models did not catch up within a minute")
    print("\nbalances (read model)")
    for account, owner, balance, closed in balances(store):
        print(f"  {account} {owner:<6} {balance / 100:>9.2f}{'  closed' if closed else ''}")
    print(f"\nstatement of {account_id} (read model)")
    for line, description, amount, running in statement(store, account_id):
        print(f"  {line:>3}  {description:<28} {amount / 100:>9.2f} {running / 100:>9.2f}")
    print("\ndaily totals (read model)")
    for day, deposits, withdrawals, transfers, opened in daily_report(store):
        print(
            f"  {day}  in {deposits / 100:>9.2f}  out {withdrawals / 100:>9.2f}  "
            f"moved {transfers / 100:>9.2f}  opened {opened}"
        )


def run(bank: Bank) -> str:
    """The demonstration: every use case once, then current state, history and past state.

    Returns:
        The id of the account it tells the history of.
    """
    alice = bank.open_account("Alice", overdraft_limit=5_000)
    bob = bank.open_account("Bob")
    bank.deposit(alice, 10_000)
    bank.deposit(bob, 2_500)
    before_transfer = datetime.now(UTC)
    bank.transfer(alice, bob, 4_000)
    bank.withdraw(alice, 9_000)
    try:
        bank.withdraw(alice, 10_000)
    except BankError as exc:
        print(f"refused: {exc}")
    carol = bank.open_account("Carol")
    bank.close_account(carol)

    print("\ncurrent state")
    for account_id in (alice, bob, carol):
        print("  " + describe(bank.account(account_id)))

    print(f"\nhistory of {alice}")
    for entry in bank.history(alice):
        when = entry.recorded_at.strftime("%H:%M:%S.%f")
        print(f"  {entry.version:>3}  {when}  {type(entry.event).__name__:<16} {entry.event}")

    print("\npast state")
    print("  at version 1:        " + describe(bank.account(alice, version=1)))
    print("  before the transfer: " + describe(bank.account(alice, as_of=before_transfer)))
    return alice


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example against a store.

    Args:
        argv: the command line arguments (default: `sys.argv[1:]`).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the store (default {DEFAULT_URL})")
    parser.add_argument(
        "--snapshot-every", type=int, default=None, help="snapshot accounts every N events"
    )
    args = parser.parse_args(argv)
    with eventvault.connect(args.url) as store:
        bank = Bank(store, snapshot_every=args.snapshot_every)
        try:
            alice = run(bank)
        finally:
            bank.close()
        reports(store, alice)
    return 0


if __name__ == "__main__":
    sys.exit(main())
