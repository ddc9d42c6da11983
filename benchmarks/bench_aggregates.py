"""Aggregates: load and save speed of eventvault beside the `eventsourcing` library and raw SQL.

Run: `python benchmarks/bench_aggregates.py [--events 10000] [--repeat 7] [--saves 200]`.

All three contestants use SQLite files in one temporary directory, in WAL mode with SQLite's
default `synchronous = FULL` (eventvault's default too):

(a) load an aggregate of N events without a snapshot: eventvault's `Repository.get`,
    eventsourcing's `Application.repository.get` (`PERSISTENCE_MODULE=eventsourcing.sqlite`,
    an `Aggregate` with `@event` methods, no aggregate cache), and a plain `sqlite3` SELECT of
    the same rows in eventvault's file with `json.loads` and a fold: the floor for Python code.
(b) the same after a snapshot at the last event (eventsourcing: `app.take_snapshot`).
(c) saving one event to an existing aggregate, as an application command does it: get the
    aggregate (one of 100 accounts of about 10 events, taken in turn), record one event, save;
    one commit each: commands/second.
(c') only the save of an aggregate already in memory, one commit each. Both libraries pay one
    fsync per commit, which dominates here; informative, no target.
(d) (c') from several threads at once, each saving its own aggregate: eventvault's group commit
    lets concurrent saves share one transaction and one fsync. Informative; no target.

Each figure is the median of `--repeat` runs (for (c), of runs of `--saves` saves).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate as EsAggregate
from eventsourcing.domain import event

import eventvault
from eventvault.aggregates import Aggregate, EventRegistry, Repository, applies

# -- eventvault ------------------------------------------------------------------------------

registry = EventRegistry()


@registry.event("AccountOpened", version=1)
class AccountOpened(msgspec.Struct, frozen=True):
    """An account was opened."""

    owner: str


@registry.event("MoneyDeposited", version=1)
class MoneyDeposited(msgspec.Struct, frozen=True):
    """Money was paid in."""

    amount: int


class AccountState(msgspec.Struct):
    """An account's state."""

    owner: str = ""
    balance: int = 0


class Account(Aggregate[AccountState]):
    """The eventvault aggregate under test."""

    category = "account"
    state_type = AccountState

    def open(self, owner: str) -> None:
        """Open the account."""
        self.record(AccountOpened(owner=owner))

    def deposit(self, amount: int) -> None:
        """Pay money in."""
        self.record(MoneyDeposited(amount=amount))

    @applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.state.owner = event.owner

    @applies(MoneyDeposited)
    def _deposited(self, event: MoneyDeposited) -> None:
        self.state.balance += event.amount


# -- eventsourcing ---------------------------------------------------------------------------


class EsAccount(EsAggregate):
    """The eventsourcing aggregate under test: the same events."""

    @event("AccountOpened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = 0

    @event("MoneyDeposited")
    def deposit(self, amount: int) -> None:
        """Pay money in."""
        self.balance += amount


class EsBank(Application[UUID]):
    """The eventsourcing application; snapshots enabled (taken only when asked)."""

    is_snapshotting_enabled = True


# -- raw sqlite3 -----------------------------------------------------------------------------


def raw_fold(conn: sqlite3.Connection, stream_name: str) -> tuple[str, int]:
    """SELECT the stream's rows, json.loads each payload, fold them into (owner, balance)."""
    owner, balance = "", 0
    rows = conn.execute(
        "SELECT event_type, data FROM events WHERE stream_name = ? ORDER BY stream_position",
        (stream_name,),
    )
    for event_type, data in rows:
        payload = json.loads(data)
        if event_type == "MoneyDeposited":
            balance += payload["amount"]
        elif event_type == "AccountOpened":
            owner = payload["owner"]
    return owner, balance


# -- measuring -------------------------------------------------------------------------------


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    """The median wall time of `repeat` calls of `fn`, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def save_rate(save_one: Callable[[], object], saves: int, repeat: int) -> float:
    """Saves per second: the median over `repeat` runs of `saves` saves each."""
    save_one()
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(saves):
            save_one()
        rates.append(saves / (time.perf_counter() - start))
    return statistics.median(rates)


def _repeat(fn: Callable[[], object], times: int) -> None:
    for _ in range(times):
        fn()


def concurrent_save_rate(save_ones: list[Callable[[], object]], saves: int, repeat: int) -> float:
    """Saves per second with one thread per callable, each making `saves` saves."""
    rates = []
    for _ in range(repeat):
        threads = [
            threading.Thread(target=_repeat, args=(save_one, saves)) for save_one in save_ones
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rates.append(saves * len(save_ones) / (time.perf_counter() - start))
    return statistics.median(rates)


def _saver(account: Account, accounts: Repository[Account]) -> Callable[[], object]:
    def save_one() -> None:
        account.deposit(1)
        accounts.save(account)

    return save_one


def _es_saver(account: EsAccount, app: EsBank) -> Callable[[], object]:
    def save_one() -> None:
        account.deposit(1)
        app.save(account)

    return save_one


def check(condition: bool, what: str) -> None:
    """Stop the benchmark when the contestants disagree: the figures would mean nothing."""
    if not condition:
        raise SystemExit(f"benchmark aborted: {what}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table.

    Returns:
        0 when every target is met, 1 otherwise.
    """
    parser = argparse.ArgumentParser(description="eventvault aggregates vs eventsourcing")
    parser.add_argument("--events", type=int, default=10_000, help="events per aggregate")
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure")
    parser.add_argument("--saves", type=int, default=200, help="saves per run in (c) and (d)")
    parser.add_argument("--threads", type=int, default=8, help="threads in (d)")
    args = parser.parse_args(argv)
    n = args.events
    expected_balance = n - 1

    with tempfile.TemporaryDirectory(prefix="bench-aggregates-") as tmp:
        ev_path = os.path.join(tmp, "eventvault.db")
        es_path = os.path.join(tmp, "eventsourcing.db")

        # eventvault: one account of n events, saved in one append.
        store = eventvault.connect(ev_path)
        accounts = Repository(Account, store, registry)
        snapshotting = Repository(Account, store, registry, snapshot_every=n * 10)
        account = Account("bench")
        account.open("Ada")
        for _ in range(n - 1):
            account.deposit(1)
        accounts.save(account)
        check(accounts.get("bench").state.balance == expected_balance, "eventvault balance")

        # eventsourcing: the same account of n events.
        app = EsBank(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": es_path})
        es_account = EsAccount(owner="Ada")
        for _ in range(n - 1):
            es_account.deposit(1)
        app.save(es_account)
        es_id = es_account.id
        check(app.repository.get(es_id).balance == expected_balance, "eventsourcing balance")

        raw = sqlite3.connect(ev_path)
        check(raw_fold(raw, "account-bench") == ("Ada", expected_balance), "raw fold")

        figures: dict[str, float] = {}
        # (a) full replay
        figures["a_ev"] = median_seconds(lambda: accounts.get("bench"), args.repeat)
        figures["a_es"] = median_seconds(lambda: app.repository.get(es_id), args.repeat)
        figures["a_raw"] = median_seconds(lambda: raw_fold(raw, "account-bench"), args.repeat)

        # (b) from a snapshot at the last event
        snapshotting.take_snapshot(snapshotting.get("bench"))
        app.take_snapshot(es_id)
        check(snapshotting.get("bench").state.balance == expected_balance, "eventvault snapshot")
        check(app.repository.get(es_id).balance == expected_balance, "eventsourcing snapshot")
        figures["b_ev"] = median_seconds(lambda: snapshotting.get("bench"), args.repeat)
        figures["b_es"] = median_seconds(lambda: app.repository.get(es_id), args.repeat)

        # (c) save one event to a loaded aggregate, one commit per save
        loaded = accounts.get("bench")

        def ev_save() -> None:
            loaded.deposit(1)
            accounts.save(loaded)

        es_loaded: Any = app.repository.get(es_id)

        def es_save() -> None:
            es_loaded.deposit(1)
            app.save(es_loaded)

        figures["c1_ev"] = save_rate(ev_save, args.saves, args.repeat)
        figures["c1_es"] = save_rate(es_save, args.saves, args.repeat)
        check(
            accounts.get("bench").version == es_loaded.version - 1,
            "eventvault and eventsourcing saved different numbers of events",
        )

        # (c) get an existing aggregate, record one event, save: 100 accounts in turn
        ev_ids = [f"cmd{index}" for index in range(100)]
        es_ids: list[UUID] = []
        for ev_id in ev_ids:
            mine = Account(ev_id)
            mine.open("Ada")
            theirs = EsAccount(owner="Ada")
            for _ in range(9):
                mine.deposit(1)
                theirs.deposit(1)
            accounts.save(mine)
            app.save(theirs)
            es_ids.append(theirs.id)
        turn = {"ev": 0, "es": 0}

        def ev_command() -> None:
            account = accounts.get(ev_ids[turn["ev"] % 100])
            turn["ev"] += 1
            account.deposit(1)
            accounts.save(account)

        def es_command() -> None:
            account: Any = app.repository.get(es_ids[turn["es"] % 100])
            turn["es"] += 1
            account.deposit(1)
            app.save(account)

        figures["c_ev"] = save_rate(ev_command, args.saves, args.repeat)
        figures["c_es"] = save_rate(es_command, args.saves, args.repeat)
        check(
            accounts.get(ev_ids[0]).version + 1 == app.repository.get(es_ids[0]).version,
            "eventvault and eventsourcing ran different numbers of commands",
        )

        # (d) as (c'), from several threads at once, each on its own aggregate
        ev_savers: list[Callable[[], object]] = []
        es_savers: list[Callable[[], object]] = []
        for index in range(args.threads):
            mine = Account(f"thread{index}")
            mine.open("Ada")
            accounts.save(mine)
            ev_savers.append(_saver(mine, accounts))
            theirs = EsAccount(owner="Ada")
            app.save(theirs)
            es_savers.append(_es_saver(theirs, app))
        per_thread = max(1, args.saves // args.threads)
        figures["d_ev"] = concurrent_save_rate(ev_savers, per_thread, args.repeat)
        figures["d_es"] = concurrent_save_rate(es_savers, per_thread, args.repeat)

        raw.close()
        snapshotting.close()
        store.close()
        app.close()

    ms = 1000.0
    a_speedup = figures["a_es"] / figures["a_ev"]
    a_vs_raw = figures["a_raw"] / figures["a_ev"]
    b_speedup = figures["b_es"] / figures["b_ev"]
    c_speedup = figures["c_ev"] / figures["c_es"]
    c1_speedup = figures["c1_ev"] / figures["c1_es"]
    rows = [
        ("(a) load, no snapshot", "ms", figures["a_ev"] * ms, figures["a_es"] * ms, a_speedup),
        ("(b) load from snapshot", "ms", figures["b_ev"] * ms, figures["b_es"] * ms, b_speedup),
        ("(c) get + 1 event + save", "ops/s", figures["c_ev"], figures["c_es"], c_speedup),
        ("(c') save only", "saves/s", figures["c1_ev"], figures["c1_es"], c1_speedup),
        (
            f"(d) (c') in {args.threads} threads",
            "saves/s",
            figures["d_ev"],
            figures["d_es"],
            figures["d_ev"] / figures["d_es"],
        ),
    ]
    print(f"aggregate of {n} events; median of {args.repeat} runs; Python {sys.version.split()[0]}")
    print()
    print(f"{'measure':<24} {'unit':<8} {'eventvault':>11} {'eventsourcing':>14} {'ratio':>7}")
    for label, unit, ours, their_figure, ratio in rows:
        print(f"{label:<24} {unit:<8} {ours:>11.2f} {their_figure:>14.2f} {ratio:>6.1f}x")
    print()
    print(
        f"raw sqlite3 + json.loads + fold (a): {figures['a_raw'] * ms:.2f} ms; "
        f"eventvault takes {1 / a_vs_raw:.2f}x its time"
    )
    targets = [
        ("(a) >= 5x faster than eventsourcing", a_speedup >= 5),
        ("(a) no slower than the raw fold", a_vs_raw >= 1),
        ("(b) no slower than eventsourcing", b_speedup >= 1),
        (
            "(c) >= 2x eventsourcing's rate of saving one event to an existing aggregate",
            c_speedup >= 2,
        ),
    ]
    print()
    for label, met in targets:
        print(f"{'met   ' if met else 'MISSED'} {label}")
    return 0 if all(met for _, met in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
