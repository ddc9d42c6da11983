"""Aggregates: load and save speed of eventvault beside the `eventsourcing` library and raw SQL.

Run: `python benchmarks/bench_aggregates.py [--events 10000] [--repeat 7] [--saves 200]
[--json PATH]`.

Both libraries do the same work in every measure (see benchmarks/README.md for the method):

- the same durability: SQLite files in one directory on disk (never tmpfs), WAL mode and
  `synchronous = FULL` on every connection that writes, which the script checks before it
  measures;
- the same snapshotting: off on both sides in (a), (c), (c') and (d) (eventsourcing's
  application then never looks for a snapshot), on in (b) on both sides;
- taking turns: every measure runs its contenders once per round, rotating their order from
  round to round, after one untimed run each; a figure is the median of `--repeat` rounds.

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
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from _common import (
    BenchmarkSetupError,
    Figure,
    bench_dir,
    imported_from,
    interleave,
    machine_info,
    write_json,
)
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
    """The eventsourcing application without snapshots, as eventvault's `Repository` without a
    snapshot store: a load reads the events and nothing else."""


class EsSnapshottingBank(EsBank):
    """The same application with snapshots enabled (taken only when asked), for (b): a load
    looks for a snapshot first, as eventvault's `Repository` with a snapshot store does."""

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

Sample = Callable[[], float]
"""Runs one round of a contender and returns its rate (higher is better)."""


def loads_per_second(load: Callable[[], object]) -> Sample:
    """A sample of one load: its rate, so that the figure's unit is the same for every measure."""

    def sample() -> float:
        start = time.perf_counter()
        load()
        return 1 / (time.perf_counter() - start)

    return sample


def saves_per_second(save_one: Callable[[], object], saves: int) -> Sample:
    """A sample of `saves` calls of `save_one`, one after another: calls per second."""

    def sample() -> float:
        start = time.perf_counter()
        for _ in range(saves):
            save_one()
        return saves / (time.perf_counter() - start)

    return sample


def _repeat(fn: Callable[[], object], times: int) -> None:
    for _ in range(times):
        fn()


def concurrent_saves_per_second(save_ones: list[Callable[[], object]], saves: int) -> Sample:
    """A sample with one thread per callable, each making `saves` calls: calls per second."""

    def sample() -> float:
        threads = [
            threading.Thread(target=_repeat, args=(save_one, saves)) for save_one in save_ones
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return saves * len(save_ones) / (time.perf_counter() - start)

    return sample


def taking_turns(contenders: dict[str, Sample], rounds: int) -> dict[str, list[float]]:
    """Each contender's rates in `rounds` interleaved rounds, after one untimed run."""
    for sample in contenders.values():
        sample()
    return interleave(contenders, rounds)


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


_SYNCHRONOUS_FULL = 2


def check_durability(ev_path: Path, app: EsBank) -> None:
    """Stop unless both sides write in WAL mode with `synchronous = FULL`.

    eventvault's store is opened with `synchronous=FULL` in its URL; eventsourcing leaves both
    settings to its defaults, which are checked on one of its own connections.
    """
    conn = sqlite3.connect(ev_path)
    try:
        check(conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal", "eventvault not in WAL")
    finally:
        conn.close()
    with app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode")
        mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        synchronous = cursor.fetchone()[0]
    check(mode == "wal", f"eventsourcing's journal_mode is {mode}, not wal")
    check(
        synchronous == _SYNCHRONOUS_FULL,
        f"eventsourcing's synchronous is {synchronous}, not FULL ({_SYNCHRONOUS_FULL})",
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="eventvault aggregates vs eventsourcing")
    parser.add_argument("--events", type=int, default=10_000, help="events per aggregate")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved rounds per figure")
    parser.add_argument("--saves", type=int, default=200, help="saves per round in (c) and (d)")
    parser.add_argument("--threads", type=int, default=8, help="threads in (d)")
    parser.add_argument("--dir", help="directory for the database files (not on tmpfs)")
    parser.add_argument(
        "--allow-tmpfs",
        action="store_true",
        help="allow a memory file system (smoke tests only: its syncs cost nothing)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure and round as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table.

    Returns:
        0 when every target is met, 1 otherwise.
    """
    args = _parse(argv)
    started = time.perf_counter()
    try:
        with bench_dir("bench-aggregates-", args.dir, allow_memory_fs=args.allow_tmpfs) as tmp:
            info = machine_info(tmp)
            samples = measure(args, tmp)
    except BenchmarkSetupError as exc:
        print(f"benchmark setup: {exc}", file=sys.stderr)
        return 2
    figures = {key: statistics.median(rates) for key, rates in samples.items()}
    if args.json:
        info["load_average_after"] = machine_info().get("load_average")
        write_json(
            args.json,
            {
                "benchmark": "bench_aggregates",
                "sizes": {
                    "events": args.events,
                    "repeat": args.repeat,
                    "saves": args.saves,
                    "threads": args.threads,
                },
                "stat": "median",
                "machine": info,
                "imported": {"eventvault": imported_from("eventvault")},
                "seconds": round(time.perf_counter() - started, 1),
                "figures": [asdict(figure) for figure in figures_of(samples, args.threads)],
            },
        )
    return report(args, figures)


_MEASURES = {
    "a": ("(a) load, no snapshot", "loads/s"),
    "b": ("(b) load from snapshot", "loads/s"),
    "c": ("(c) get + 1 event + save", "ops/s"),
    "c1": ("(c') save only", "saves/s"),
    "d": ("(d) (c') in {threads} threads", "saves/s"),
}
_CONTENDERS = {
    "ev": "eventvault",
    "es": "eventsourcing 9.5.6",
    "raw": "raw sqlite3 + json.loads + fold",
}


def figures_of(samples: dict[str, list[float]], threads: int) -> list[Figure]:
    """Every contender's median rate, and eventvault's over each other contender's.

    Args:
        samples: `<measure>_<contender>` to its rates, as `measure` returns them.
        threads: the threads of (d), for its label.

    Returns:
        The figures, keyed `a_ev`, `a_es`, ..., and `a_ev/es` for a ratio.
    """
    figures: list[Figure] = []
    for key, rates in samples.items():
        measure, contender = key.rsplit("_", 1)
        label, unit = _MEASURES[measure]
        label = label.format(threads=threads)
        median = statistics.median(rates)
        figures.append(
            Figure(key, f"{label}: {_CONTENDERS[contender]}", median, unit, samples=tuple(rates))
        )
        if contender != "ev":
            ours = statistics.median(samples[f"{measure}_ev"])
            figures.append(
                Figure(
                    f"{measure}_ev/{contender}",
                    f"{label}: eventvault / {_CONTENDERS[contender]}",
                    ours / median,
                    "x",
                )
            )
    return figures


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, list[float]]:
    """Build both sides' files in `tmp` and take every round of every measure.

    Returns:
        `<measure>_<contender>` (such as `a_ev`) to its rates, higher is better, one per round.
    """
    n = args.events
    expected_balance = n - 1
    ev_path = tmp / "eventvault.db"
    es_env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp / "es.db")}

    # eventvault: one account of n events, saved in one append.
    store = eventvault.connect(f"sqlite:///{ev_path}?synchronous=FULL")
    accounts = Repository(Account, store, registry)
    snapshotting = Repository(Account, store, registry, snapshot_every=n * 10)
    account = Account("bench")
    account.open("Ada")
    for _ in range(n - 1):
        account.deposit(1)
    accounts.save(account)
    check(accounts.get("bench").state.balance == expected_balance, "eventvault balance")

    # eventsourcing: the same account of n events; two applications on one file, without and
    # with snapshots.
    app = EsBank(env=es_env)
    snapshotting_app = EsSnapshottingBank(env=es_env)
    check_durability(ev_path, app)
    es_account = EsAccount(owner="Ada")
    for _ in range(n - 1):
        es_account.deposit(1)
    app.save(es_account)
    es_id = es_account.id
    check(app.repository.get(es_id).balance == expected_balance, "eventsourcing balance")

    raw = sqlite3.connect(ev_path)
    check(raw_fold(raw, "account-bench") == ("Ada", expected_balance), "raw fold")

    rounds = args.repeat
    samples: dict[str, list[float]] = {}
    # (a) full replay, no snapshot on either side
    samples |= prefixed(
        "a",
        taking_turns(
            {
                "ev": loads_per_second(lambda: accounts.get("bench")),
                "es": loads_per_second(lambda: app.repository.get(es_id)),
                "raw": loads_per_second(lambda: raw_fold(raw, "account-bench")),
            },
            rounds,
        ),
    )

    # (b) from a snapshot at the last event, on both sides
    snapshotting.take_snapshot(snapshotting.get("bench"))
    snapshotting_app.take_snapshot(es_id)
    check(snapshotting.get("bench").state.balance == expected_balance, "eventvault snapshot")
    check(
        snapshotting_app.repository.get(es_id).balance == expected_balance,
        "eventsourcing snapshot",
    )
    samples |= prefixed(
        "b",
        taking_turns(
            {
                "ev": loads_per_second(lambda: snapshotting.get("bench")),
                "es": loads_per_second(lambda: snapshotting_app.repository.get(es_id)),
            },
            rounds,
        ),
    )

    # (c') save one event to a loaded aggregate, one commit per save
    loaded = accounts.get("bench")
    es_loaded: Any = app.repository.get(es_id)
    samples |= prefixed(
        "c1",
        taking_turns(
            {
                "ev": saves_per_second(_saver(loaded, accounts), args.saves),
                "es": saves_per_second(_es_saver(es_loaded, app), args.saves),
            },
            rounds,
        ),
    )
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

    samples |= prefixed(
        "c",
        taking_turns(
            {
                "ev": saves_per_second(ev_command, args.saves),
                "es": saves_per_second(es_command, args.saves),
            },
            rounds,
        ),
    )
    check(
        turn["ev"] == turn["es"], "eventvault and eventsourcing ran different numbers of commands"
    )
    check(
        accounts.get(ev_ids[0]).version + 1 == app.repository.get(es_ids[0]).version,
        "eventvault and eventsourcing saved different numbers of events",
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
    samples |= prefixed(
        "d",
        taking_turns(
            {
                "ev": concurrent_saves_per_second(ev_savers, per_thread),
                "es": concurrent_saves_per_second(es_savers, per_thread),
            },
            rounds,
        ),
    )

    raw.close()
    snapshotting.close()
    store.close()
    app.close()
    snapshotting_app.close()
    return samples


def prefixed(measure: str, samples: dict[str, list[float]]) -> dict[str, list[float]]:
    """`{"ev": x}` as `{"<measure>_ev": x}`."""
    return {f"{measure}_{name}": rates for name, rates in samples.items()}


def report(args: argparse.Namespace, figures: dict[str, float]) -> int:
    """Print the table and the targets; 0 when every target is met, else 1."""
    ms = 1000.0
    a_speedup = figures["a_ev"] / figures["a_es"]
    a_vs_raw = figures["a_ev"] / figures["a_raw"]
    b_speedup = figures["b_ev"] / figures["b_es"]
    c_speedup = figures["c_ev"] / figures["c_es"]
    c1_speedup = figures["c1_ev"] / figures["c1_es"]
    rows = [
        ("(a) load, no snapshot", "ms", ms / figures["a_ev"], ms / figures["a_es"], a_speedup),
        ("(b) load from snapshot", "ms", ms / figures["b_ev"], ms / figures["b_es"], b_speedup),
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
    print(
        f"aggregate of {args.events} events; median of {args.repeat} interleaved rounds; "
        f"WAL + synchronous=FULL on both sides; snapshots only in (b), on both sides; "
        f"Python {sys.version.split()[0]}"
    )
    print()
    print(f"{'measure':<24} {'unit':<8} {'eventvault':>11} {'eventsourcing':>14} {'ratio':>7}")
    for label, unit, ours, their_figure, ratio in rows:
        print(f"{label:<24} {unit:<8} {ours:>11.2f} {their_figure:>14.2f} {ratio:>6.1f}x")
    print()
    print(
        f"raw sqlite3 + json.loads + fold (a): {ms / figures['a_raw']:.2f} ms; "
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
