"""Speed of the audit ledger on the embedded (SQLite) engine, side by side with it off.

Four measures, each against its target (see benchmarks/README.md for the method):

1. one-event appends from one thread with the audit tree kept behind the log (a catch-up after
   every 1,000 events, as `eventvault audit run` does), against the same appends without a tree:
   at most 15% slower;
2. appends of 1,000 events with a catch-up after each, against the same appends without: at most
   30% slower;
3. `verify_store` of a store of 1,000,000 events (every hash chain, leaf, subtree and the
   checkpoint's root and signature) against `read_all` of the same store, decoded: at least
   0.5x its rate;
4. an inclusion proof of a random event of that store, by its id (the event found, the tree
   caught up, its path and root read): under 5 ms each, at the median and at the 99th percentile.
   Printed beside it, to read its tail by: the same proofs' CPU time, and two baselines timed
   the same way in the same loop (one SELECT by primary key; one chunk's leaves hashed to its
   root, CPU alone), with the garbage collector's passes inside the timed proofs.

Every store is a SQLite file in WAL mode with `synchronous=FULL`, in one temporary directory on
disk. The contenders of a measure run in interleaved rounds; the figures are the best (or median)
round of each, and the ratio is the audited figure over the plain one.

Usage:
    python benchmarks/bench_audit.py [--quick] [--json PATH] [--rounds N] [--stat best|median]
                                     [--measures 1,2,3,4] [--events N] [--dir DIR]
                                     [--allow-tmpfs] [--plain] [--check]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from _common import (
    BenchmarkSetupError,
    Stat,
    Table,
    bench_dir,
    format_rate,
    format_ratio,
    interleave,
    machine_info,
    print_table,
    summarize,
    write_json,
)

import eventvault
from eventvault import EventStore, NewEvent, StreamState
from eventvault.audit import AuditLedger, AuditTree, generate_key, verify_store
from eventvault.audit.merkle import leaf_hashes, root_of

EVENT_TYPE: Final = "Deposited"
METADATA: Final = {"actor": "bench"}
CATCH_UP_EVERY: Final = 1000
"""Events between two catch-ups of the tree in measure 1 (what a policy process does)."""


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each measure does."""

    one_event_appends: int
    batch_appends: int
    batch_size: int
    verify_events: int
    proofs: int


FULL = Sizes(
    one_event_appends=2000, batch_appends=20, batch_size=1000, verify_events=1_000_000, proofs=1000
)
QUICK = Sizes(one_event_appends=40, batch_appends=2, batch_size=100, verify_events=3000, proofs=20)


@dataclass(slots=True)
class Result:
    """One measure's figures."""

    key: str
    label: str
    audited: float
    plain: float
    unit: str
    target: str
    met: bool
    samples: dict[str, list[float]] = field(default_factory=dict)
    reference: bool = False
    """A row to read a measure by (a baseline), with no target of its own."""


def _events(count: int, start: int = 0) -> list[NewEvent]:
    return [
        NewEvent(
            EVENT_TYPE,
            {"amount": start + n, "currency": "EUR", "note": "coffee"},
            metadata=METADATA,
        )
        for n in range(count)
    ]


def _one_event_appends(directory: Path, count: int, audited: bool) -> float:
    """Rate of `count` one-event appends (each its own commit), with the tree caught up every
    `CATCH_UP_EVERY` events (and at the end) when `audited`. The tree's tables are made before
    the clock starts, as `eventvault migrate` makes them at deploy time."""
    path = directory / f"one-{time.monotonic_ns()}.db"
    with eventvault.connect(str(path)) as store:
        tree = AuditTree(store) if audited else None
        events = _events(count)
        start = time.perf_counter()
        for position, event in enumerate(events):
            store.append_to_stream(
                "account-1",
                [event],
                expected_version=position - 1 if position else StreamState.NO_STREAM,
            )
            if tree is not None and (position + 1) % CATCH_UP_EVERY == 0:
                tree.catch_up()
        if tree is not None:
            tree.catch_up()
        elapsed = time.perf_counter() - start
    path.unlink()
    return count / elapsed


def _batch_appends(directory: Path, appends: int, size: int, audited: bool) -> float:
    """Rate of `appends` appends of `size` events each, with the tree caught up after each when
    `audited`."""
    path = directory / f"batch-{time.monotonic_ns()}.db"
    with eventvault.connect(str(path)) as store:
        tree = AuditTree(store) if audited else None
        batches = [_events(size, n * size) for n in range(appends)]
        start = time.perf_counter()
        for n, batch in enumerate(batches):
            store.append_to_stream(f"account-{n}", batch, expected_version=StreamState.NO_STREAM)
            if tree is not None:
                tree.catch_up()
        elapsed = time.perf_counter() - start
    path.unlink()
    return appends * size / elapsed


def _fill(store: EventStore, count: int) -> None:
    done = 0
    while done < count:
        size = min(1000, count - done)
        store.append_to_stream(
            f"account-{(done // 1000) % 97}", _events(size, done), expected_version=StreamState.ANY
        )
        done += size


def run_append_measures(
    directory: Path, sizes: Sizes, rounds: int, stat: Stat, measures: set[int]
) -> list[Result]:
    results: list[Result] = []
    if 1 in measures:
        count = sizes.one_event_appends
        samples = interleave(
            {
                "audited": lambda: _one_event_appends(directory, count, True),
                "plain": lambda: _one_event_appends(directory, count, False),
            },
            rounds,
        )
        audited, plain = summarize(samples["audited"], stat), summarize(samples["plain"], stat)
        results.append(
            Result(
                "append_one",
                f"1. {count:,} one-event appends, tree caught up every {CATCH_UP_EVERY:,}",
                audited,
                plain,
                "ev/s",
                ">= 0.87x (at most +15%)",
                audited / plain >= 1 / 1.15,
                samples,
            )
        )
    if 2 in measures:
        appends, size = sizes.batch_appends, sizes.batch_size
        samples = interleave(
            {
                "audited": lambda: _batch_appends(directory, appends, size, True),
                "plain": lambda: _batch_appends(directory, appends, size, False),
            },
            rounds,
        )
        audited, plain = summarize(samples["audited"], stat), summarize(samples["plain"], stat)
        results.append(
            Result(
                "append_batch",
                f"2. {appends} appends of {size:,} events, tree caught up after each",
                audited,
                plain,
                "ev/s",
                ">= 0.77x (at most +30%)",
                audited / plain >= 1 / 1.3,
                samples,
            )
        )
    return results


def run_store_measures(
    directory: Path, sizes: Sizes, rounds: int, stat: Stat, measures: set[int]
) -> tuple[list[Result], dict[str, object]]:
    results: list[Result] = []
    extra: dict[str, object] = {}
    if not {3, 4} & measures:
        return results, extra
    count = sizes.verify_events
    with (
        tempfile.TemporaryDirectory(prefix="eventvault-audit-keys-") as keys,
        eventvault.connect(str(directory / "large.db")) as store,
    ):
        key = generate_key(str(Path(keys) / "audit.pem"))
        started = time.perf_counter()
        _fill(store, count)
        extra["fill_seconds"] = round(time.perf_counter() - started, 2)
        ledger = AuditLedger(store)
        started = time.perf_counter()
        ledger.catch_up()
        extra["catch_up_seconds"] = round(time.perf_counter() - started, 2)
        ledger.checkpoint(key)
        if 3 in measures:

            def read_all() -> float:
                start = time.perf_counter()
                read = sum(1 for _ in store.read_all())
                return read / (time.perf_counter() - start)

            def verify() -> float:
                start = time.perf_counter()
                report = verify_store(store, public_keys=[key.public])
                return report.events / (time.perf_counter() - start)

            samples = interleave({"verify": verify, "read_all": read_all}, rounds)
            audited = summarize(samples["verify"], stat)
            plain = summarize(samples["read_all"], stat)
            results.append(
                Result(
                    "verify",
                    f"3. verify of {count:,} events against read_all, decoded",
                    audited,
                    plain,
                    "ev/s",
                    ">= 0.5x",
                    audited / plain >= 0.5,
                    samples,
                )
            )
        if 4 in measures:
            results += _prove_measure(store, ledger, count, sizes.proofs, extra)
    return results, extra


def _median_p99(seconds: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile of timings, in milliseconds."""
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


class _GcPauses:
    """The garbage collector's passes while a timed call runs (`gc.callbacks`)."""

    def __init__(self) -> None:
        self.timing = False
        self.passes = 0
        self.seconds = 0.0
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if not self.timing:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.passes += 1
        self.seconds += pause
        self.longest = max(self.longest, pause)


def _prove_measure(
    store: EventStore, ledger: AuditLedger, count: int, proofs: int, extra: dict[str, object]
) -> list[Result]:
    """Measure 4: proofs of random events, each timed by the wall clock and by the CPU time of
    its thread, the garbage collector's passes inside them counted. Beside each proof, in the
    same loop so the same load hits both, two baselines timed the same way: one SELECT of a
    stored node hash by its primary key, and the root of one chunk's 256 leaves hashed (CPU
    alone, about the hashing a proof does). When the wall clock's tail is far above the CPU
    time's and the baselines' tails rise alike, the tail is the machine's scheduler."""
    ids = [event.event_id for event in store.read_all()]
    chosen = random.Random(7).sample(ids, min(proofs, len(ids)))
    nodes = [int(row[0]) for row in store.query("SELECT node FROM {schema}.audit_tree_nodes")]
    lookups = random.Random(11).choices(nodes or [0], k=len(chosen))
    chunk = next(ledger.tree.iter_chunks(), None)
    leaves = b"" if chunk is None else chunk.leaves
    wall: list[float] = []
    cpu: list[float] = []
    select_wall: list[float] = []
    hashing_wall: list[float] = []
    hashing_cpu: list[float] = []
    proof_bytes: list[int] = []
    path_bytes: list[int] = []
    pauses = _GcPauses()
    gc.callbacks.append(pauses)
    try:
        for event_id, node in zip(chosen, lookups, strict=True):
            pauses.timing = True
            start, start_cpu = time.perf_counter(), time.thread_time()
            proof = ledger.prove(event_id)
            cpu.append(time.thread_time() - start_cpu)
            wall.append(time.perf_counter() - start)
            pauses.timing = False
            start = time.perf_counter()
            store.query("SELECT hash FROM {schema}.audit_tree_nodes WHERE node = ?", (node,))
            select_wall.append(time.perf_counter() - start)
            start, start_cpu = time.perf_counter(), time.thread_time()
            root_of(leaf_hashes(leaves))
            hashing_cpu.append(time.thread_time() - start_cpu)
            hashing_wall.append(time.perf_counter() - start)
            proof_bytes.append(len(proof.to_json()))
            path_bytes.append(32 * len(proof.path))
    finally:
        gc.callbacks.remove(pauses)
    extra["proof_json_bytes_max"] = max(proof_bytes)
    extra["proof_path_bytes_max"] = max(path_bytes)
    extra["proof_gc_passes"] = pauses.passes
    extra["proof_gc_ms_total"] = round(pauses.seconds * 1000, 2)
    extra["proof_gc_ms_longest"] = round(pauses.longest * 1000, 2)
    median, p99 = _median_p99(wall)
    label = f"random event of {count:,}: median, p99"
    return [
        Result(
            "prove",
            f"4. inclusion proof of a {label}",
            median,
            p99,
            "ms",
            "< 5 ms",
            p99 < 5,
            {"milliseconds": [t * 1000 for t in sorted(wall)]},
        ),
        _reference("prove_cpu", "4a. the same proofs' CPU time (thread_time)", cpu),
        _reference(
            "baseline_select", "4b. baseline: one SELECT of a node hash by primary key", select_wall
        ),
        _reference(
            "baseline_hashing",
            "4c. baseline: a chunk's 256 leaves hashed to its root",
            hashing_wall,
        ),
        _reference("baseline_hashing_cpu", "4d. baseline 4c's CPU time (thread_time)", hashing_cpu),
    ]


def _reference(key: str, label: str, seconds: list[float]) -> Result:
    """A row of figures printed beside a measure to read it by, with no target of its own."""
    median, p99 = _median_p99(seconds)
    return Result(
        key,
        f"{label}: median, p99",
        median,
        p99,
        "ms",
        "(reference)",
        True,
        {"milliseconds": [t * 1000 for t in sorted(seconds)]},
        reference=True,
    )


def _rows(results: Sequence[Result]) -> tuple[tuple[str, ...], ...]:
    rows: list[tuple[str, ...]] = []
    for result in results:
        if result.unit == "ms":
            rows.append(
                (
                    result.label,
                    f"{result.audited:.2f} ms",
                    f"{result.plain:.2f} ms",
                    "",
                    result.target,
                    "" if result.reference else "met" if result.met else "MISSED",
                )
            )
        else:
            rows.append(
                (
                    result.label,
                    format_rate(result.audited),
                    format_rate(result.plain),
                    format_ratio(result.audited / result.plain),
                    result.target,
                    "met" if result.met else "MISSED",
                )
            )
    return tuple(rows)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 2)")
    parser.add_argument("--stat", choices=("best", "median"), default="best")
    parser.add_argument("--measures", default="1,2,3,4", help="which measures, e.g. 3,4")
    parser.add_argument("--events", type=int, help="events of the store of measures 3 and 4")
    parser.add_argument("--dir", help="directory for the database files (not on tmpfs)")
    parser.add_argument(
        "--allow-tmpfs", action="store_true", help="accept a memory file system (smoke tests)"
    )
    parser.add_argument("--plain", action="store_true", help="plain-text table, without Rich")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else FULL
    if args.events:
        sizes = Sizes(
            sizes.one_event_appends,
            sizes.batch_appends,
            sizes.batch_size,
            args.events,
            sizes.proofs,
        )
    rounds = args.rounds or (2 if args.quick else 5)
    measures = {int(m) for m in args.measures.split(",") if m.strip()}
    with bench_dir("eventvault-audit-", args.dir, allow_memory_fs=args.allow_tmpfs) as directory:
        info = machine_info(directory)
        results = run_append_measures(directory, sizes, rounds, args.stat, measures)
        more, extra = run_store_measures(directory, sizes, rounds, args.stat, measures)
        results += more
    print_table(
        Table(
            f"eventvault audit ledger, SQLite ({rounds} interleaved rounds, {args.stat})",
            ("measure", "with audit", "without / baseline", "ratio", "target", ""),
            _rows(results),
            right_aligned=frozenset({1, 2, 3}),
        ),
        plain=args.plain,
    )
    for name, value in extra.items():
        print(f"{name}: {value}")
    if args.json:
        write_json(
            args.json,
            {
                "machine": info,
                "sizes": asdict(sizes),
                "rounds": rounds,
                "stat": args.stat,
                "results": [asdict(result) for result in results],
                "extra": extra,
            },
        )
    missed = [result.key for result in results if not result.met]
    return 1 if args.check and missed else 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(_parse(argv))
    except BenchmarkSetupError as exc:
        print(f"bench_audit: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
