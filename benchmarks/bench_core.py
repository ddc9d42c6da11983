"""Speed of eventvault's embedded (SQLite) engine, side by side with hand-written sqlite3.

Five measures, each against its target (see benchmarks/README.md for the method):

1. one-event appends from one thread, against one INSERT and COMMIT per event; the
   `eventsourcing` library saving one event per call is shown for reference;
2. one-event appends from 16 threads (a stream each), against the single-thread raw rate;
3. appends of 1,000 events, against `executemany` of 1,000 rows and one COMMIT;
4. `read_all` of 100,000 events, decoded, against a raw SELECT plus `json.loads`; the
   `eventsourcing` library reading its notification log is shown for reference;
5. the memory that reading 1,000,000 events with `read_all` adds, in a fresh process.

Both sides write with SQLite in WAL mode and `synchronous=FULL`, to files in one temporary
directory on disk. Contenders run in interleaved rounds; the figures are the best (or median)
round of each, and the ratio is eventvault's figure over the baseline's.

Usage:
    python benchmarks/bench_core.py [--quick] [--json PATH] [--rounds N] [--stat best|median]
                                    [--measures 1,2,3,4,5] [--dir DIR] [--allow-tmpfs]
                                    [--plain] [--check]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import resource
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Final, TypedDict

from _common import (
    BenchmarkSetupError,
    Figure,
    Stat,
    Table,
    bench_dir,
    format_bytes,
    format_rate,
    format_ratio,
    imported_from,
    interleave,
    machine_info,
    print_table,
    summarize,
    write_json,
)

from eventvault import NewEvent, StreamState
from eventvault.store.sqlite import SQLiteEventStore
from eventvault.types import ExpectedVersion

try:
    import eventsourcing.application as es_application
    import eventsourcing.domain as es_domain
except ImportError:  # the `bench` extra is not installed
    HAVE_EVENTSOURCING = False
    ES_VERSION = "not installed"
else:
    HAVE_EVENTSOURCING = True
    ES_VERSION = metadata.version("eventsourcing")

EVENT_TYPE: Final = "Deposited"
METADATA: Final = {"actor": "bench"}
MEMORY_LIMIT: Final = 100 * 1024 * 1024
_COLUMNS: Final = (
    "stream_name, stream_position, global_position, event_id, event_type, schema_version, "
    "data, metadata, recorded_at, hash"
)
_RAW_INSERT: Final = (
    "INSERT INTO events (stream_name, stream_position, event_id, event_type, schema_version, "
    "data, metadata, recorded_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_RAW_SELECT: Final = f"SELECT {_COLUMNS} FROM events ORDER BY global_position"
_EVENTS_SCHEMA: Final = (
    ("migrations/0001", ("01_events.sql", "02_events_stream_uq.sql", "03_events_event_id_uq.sql")),
    ("schema", ("events.sql", "events_stream_uq.sql", "events_event_id_uq.sql")),
)
"""Where eventvault keeps its `events` table and that table's two indexes: the files of storage
schema version 1 since SQLite stores have migrations, and before that (the same SQL) a `schema`
folder. Both are tried, so that `compare_versions.py` can run this script against an older
eventvault."""


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work one run does.

    Attributes:
        rounds: interleaved rounds of every measure (each contender runs once per round).
        single_appends: one-event appends per contender per round (measure 1, and the raw
            baseline of measure 2).
        threads: writer threads of measure 2.
        appends_per_thread: one-event appends of each thread per round (measure 2).
        batch_events: events per append (measure 3).
        batches: appends of `batch_events` per contender per round (measure 3).
        read_events: events in the log that measure 4 reads.
        memory_events: events in the log that measure 5 reads.
    """

    rounds: int
    single_appends: int
    threads: int
    appends_per_thread: int
    batch_events: int
    batches: int
    read_events: int
    memory_events: int


FULL: Final = Sizes(
    rounds=7,
    single_appends=1000,
    threads=16,
    appends_per_thread=150,
    batch_events=1000,
    batches=10,
    read_events=100_000,
    memory_events=1_000_000,
)
QUICK: Final = Sizes(
    rounds=2,
    single_appends=20,
    threads=16,
    appends_per_thread=4,
    batch_events=100,
    batches=2,
    read_events=2_000,
    memory_events=5_000,
)


@dataclass(slots=True)
class Result:
    """One row of the table: a subject's figure against its baseline.

    Attributes:
        key: a stable identifier of the row.
        measure: what was measured, for people.
        subject: whose figure `value` is (eventvault, or a library shown for reference).
        value: the subject's figure (events per second, or bytes for memory).
        baseline_name: what the subject is compared with.
        baseline: the baseline's figure, in the same unit.
        unit: `ev/s` or `bytes`.
        ratio: value over baseline for rates; None for memory.
        target: the target, for people.
        passed: whether the target was met; None for a reference row.
        samples: every sample of every contender, in the order taken.
        details: further figures of a contender (memory: resident before, peak, seconds).
    """

    key: str
    measure: str
    subject: str
    value: float
    baseline_name: str
    baseline: float
    unit: str
    ratio: float | None
    target: str
    passed: bool | None
    samples: dict[str, list[float]] = field(default_factory=dict)
    details: dict[str, dict[str, float]] = field(default_factory=dict)

    def cells(self) -> tuple[str, ...]:
        """The row as table cells."""
        if self.unit == "bytes":
            value, baseline = f"+{format_bytes(self.value)}", f"+{format_bytes(self.baseline)}"
        else:
            value, baseline = format_rate(self.value), format_rate(self.baseline)
        ratio = "-" if self.ratio is None else format_ratio(self.ratio)
        verdict = "reference" if self.passed is None else ("PASS" if self.passed else "FAIL")
        return (self.measure, self.subject, value, f"{baseline} ({self.baseline_name})", ratio,
                self.target, verdict)  # fmt: skip


class Payload(TypedDict):
    """The data of every benchmark event: a small JSON object."""

    amount: int
    currency: str
    note: str


def _payloads(count: int, offset: int = 0) -> list[Payload]:
    return [
        {"amount": offset + index, "currency": "EUR", "note": "coffee"} for index in range(count)
    ]


def _new_events(payloads: Sequence[Payload]) -> list[NewEvent]:
    return [NewEvent(EVENT_TYPE, payload, metadata=METADATA) for payload in payloads]


def _rates(run: Callable[[], object], count: int) -> Callable[[], float]:
    """A contender: run once, return events per second."""

    def sample() -> float:
        start = time.perf_counter()
        run()
        return count / (time.perf_counter() - start)

    return sample


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def _open_store(path: Path) -> SQLiteEventStore:
    store = SQLiteEventStore(str(path), synchronous="FULL")
    mode = _journal_mode(path)
    if mode != "wal":
        store.close()
        raise BenchmarkSetupError(f"{path}: eventvault opened it in {mode!r} mode, not WAL")
    return store


def _events_schema() -> list[str]:
    """The SQL that creates eventvault's `events` table and its two unique indexes.

    Raises:
        BenchmarkSetupError: the installed eventvault has neither layout of `_EVENTS_SCHEMA`.
    """
    package = resources.files("eventvault.store.sqlite")
    for folder, names in _EVENTS_SCHEMA:
        files = [package.joinpath(*folder.split("/"), name) for name in names]
        if all(file.is_file() for file in files):
            return [file.read_text(encoding="utf-8") for file in files]
    raise BenchmarkSetupError(
        f"no events table SQL in {package}: looked in {', '.join(f for f, _ in _EVENTS_SCHEMA)}"
    )


class RawWriter:
    """Hand-written sqlite3: eventvault's own `events` table, one row per event, no more.

    It encodes with `json.dumps`, makes a random id, a timestamp and a SHA-256 of the
    payload per event, and keeps stream positions in a dict: the least a hand-written event
    log does. It keeps no stream table, checks no expected version and chains no hashes.

    Args:
        path: the database file to create.
    """

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise BenchmarkSetupError(f"{path}: SQLite refused WAL mode ({mode!r})")
        self.conn.execute("PRAGMA synchronous = FULL")
        for statement in _events_schema():
            self.conn.execute(statement)
        self.positions: dict[str, int] = {}

    def _rows(self, stream_name: str, payloads: Sequence[Payload]) -> list[tuple[object, ...]]:
        position = self.positions.get(stream_name, -1)
        recorded_at = time.time_ns() // 1000
        rows: list[tuple[object, ...]] = []
        for payload in payloads:
            position += 1
            data = json.dumps(payload).encode()
            rows.append(
                (
                    stream_name,
                    position,
                    uuid.uuid4().bytes,
                    EVENT_TYPE,
                    1,
                    data,
                    json.dumps(METADATA).encode(),
                    recorded_at,
                    hashlib.sha256(data).digest(),
                )
            )
        self.positions[stream_name] = position
        return rows

    def append_one(self, stream_name: str, payload: Payload) -> None:
        """Insert one event in a transaction of its own and commit it."""
        row = self._rows(stream_name, (payload,))[0]
        self.conn.execute("BEGIN")
        self.conn.execute(_RAW_INSERT, row)
        self.conn.execute("COMMIT")

    def append_many(self, stream_name: str, payloads: Sequence[Payload]) -> None:
        """Insert events with `executemany` in one transaction and commit it."""
        rows = self._rows(stream_name, payloads)
        self.conn.execute("BEGIN")
        self.conn.executemany(_RAW_INSERT, rows)
        self.conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def raw_read(conn: sqlite3.Connection) -> int:
    """Read every event with one SELECT, decoding data and metadata with `json.loads`.

    Args:
        conn: a connection to an eventvault database.

    Returns:
        The number of events read.
    """
    loads = json.loads
    count = 0
    for row in conn.execute(_RAW_SELECT):
        loads(row[6])
        loads(row[7])
        count += 1
    return count


if HAVE_EVENTSOURCING:

    class Account(es_domain.Aggregate):
        """The `eventsourcing` library's side: an aggregate that records deposits."""

        @es_domain.event(EVENT_TYPE)
        def deposit(self, amount: int, currency: str, note: str) -> None:
            """Record a deposit."""
            self.last_amount = amount

    class BenchApplication(es_application.Application[uuid.UUID]):
        """An `eventsourcing` application whose notification log reads 1,000 at a time."""

        log_section_size = 1000


def _es_application(path: Path) -> BenchApplication:
    if not HAVE_EVENTSOURCING:
        raise BenchmarkSetupError("the eventsourcing library is not installed")
    return BenchApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )


def _es_read(app: BenchApplication) -> int:
    """Read the whole notification log, turning each notification into its domain event."""
    select = app.notification_log.select
    to_domain_event = app.mapper.to_domain_event
    start, count = 1, 0
    while True:
        notifications = select(start, 1000)
        for notification in notifications:
            to_domain_event(notification)
        count += len(notifications)
        if len(notifications) < 1000:
            return count
        start = notifications[-1].id + 1


def _ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline > 0 else float("inf")


# -- measures --------------------------------------------------------------------------------


def _rate_rows(
    samples: dict[str, list[float]],
    stat: Stat,
    *,
    key: str,
    measure: str,
    baseline_name: str,
    minimum: float,
    reference_target: str = "reference",
) -> list[Result]:
    """eventvault's row against the `raw` contender, with `minimum` as its target ratio, and a
    reference row for the eventsourcing library when it took part."""
    figures = {name: summarize(values, stat) for name, values in samples.items()}
    rows: list[Result] = []
    for name, row_key in (("eventvault", key), ("eventsourcing", f"{key}_eventsourcing")):
        if name not in figures:
            continue
        ratio = _ratio(figures[name], figures["raw"])
        ours = name == "eventvault"
        rows.append(
            Result(
                key=row_key,
                measure=measure,
                subject=name if ours else f"eventsourcing {ES_VERSION}",
                value=figures[name],
                baseline_name=baseline_name,
                baseline=figures["raw"],
                unit="ev/s",
                ratio=ratio,
                target=f">= {minimum:.2f}x" if ours else reference_target,
                passed=ratio >= minimum if ours else None,
                samples=samples,
            )
        )
    return rows


def measure_single(sizes: Sizes, workdir: Path, stat: Stat, reference: bool) -> list[Result]:
    """Measure 1: one-event appends from one thread.

    Args:
        sizes: how much work to do.
        workdir: the directory for the database files.
        stat: how a contender's rounds become its figure.
        reference: also run the eventsourcing library.

    Returns:
        eventvault's row, then the reference row when `reference` is set.

    Raises:
        BenchmarkSetupError: a database is not in WAL mode, or a read came back short.
    """
    count = sizes.single_appends
    payloads = _payloads(count)
    store = _open_store(workdir / "single-eventvault.db")
    raw = RawWriter(workdir / "single-raw.db")
    app = _es_application(workdir / "single-eventsourcing.db") if reference else None
    try:
        version: ExpectedVersion = StreamState.NO_STREAM

        def ours() -> None:
            nonlocal version
            append = store.append_to_stream
            for payload in payloads:
                version = append(
                    "account-1",
                    [NewEvent(EVENT_TYPE, payload, metadata=METADATA)],
                    expected_version=version,
                ).stream_position

        def baseline() -> None:
            for payload in payloads:
                raw.append_one("account-1", payload)

        contenders = {"eventvault": _rates(ours, count), "raw": _rates(baseline, count)}
        if app is not None:
            account = Account()
            app.save(account)

            def theirs() -> None:
                for payload in payloads:
                    account.deposit(**payload)
                    app.save(account)

            contenders["eventsourcing"] = _rates(theirs, count)
        for contender in contenders.values():
            contender()  # warm-up: caches, statement cache, file growth
        samples = interleave(contenders, sizes.rounds)
    finally:
        store.close()
        raw.close()
        if app is not None:
            app.close()
    return _rate_rows(
        samples,
        stat,
        key="append_one",
        measure="1. append 1 event per commit, 1 thread",
        baseline_name="raw INSERT+COMMIT",
        minimum=0.8,
        reference_target="reference (~0.55x)",
    )


def measure_threads(sizes: Sizes, workdir: Path, stat: Stat) -> list[Result]:
    """Measure 2: one-event appends from many threads at once, a stream each.

    Args:
        sizes: how much work to do.
        workdir: the directory for the database files.
        stat: how a contender's rounds become its figure.

    Returns:
        eventvault's row.

    Raises:
        BenchmarkSetupError: a database is not in WAL mode, or a read came back short.
    """
    threads, per_thread = sizes.threads, sizes.appends_per_thread
    store = _open_store(workdir / "threads-eventvault.db")
    raw = RawWriter(workdir / "threads-raw.db")
    payloads = _payloads(max(per_thread, sizes.single_appends))
    versions: list[ExpectedVersion] = [StreamState.NO_STREAM] * threads

    def ours() -> float:
        barrier = threading.Barrier(threads + 1)
        failures: list[BaseException] = []

        def work(index: int) -> None:
            stream_name = f"writer-{index}"
            version = versions[index]
            barrier.wait()
            try:
                for payload in payloads[:per_thread]:
                    version = store.append_to_stream(
                        stream_name,
                        [NewEvent(EVENT_TYPE, payload, metadata=METADATA)],
                        expected_version=version,
                    ).stream_position
            except BaseException as exc:
                failures.append(exc)
            versions[index] = version

        workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        if failures:
            raise failures[0]
        return threads * per_thread / elapsed

    def baseline() -> None:
        for payload in payloads[: sizes.single_appends]:
            raw.append_one("account-1", payload)

    try:
        contenders = {"eventvault": ours, "raw": _rates(baseline, sizes.single_appends)}
        for contender in contenders.values():
            contender()
        samples = interleave(contenders, sizes.rounds)
    finally:
        store.close()
        raw.close()
    return _rate_rows(
        samples,
        stat,
        key="append_threads",
        measure=f"2. append 1 event per call, {threads} threads",
        baseline_name="raw INSERT+COMMIT, 1 thread",
        minimum=4.0,
    )


def measure_batch(sizes: Sizes, workdir: Path, stat: Stat) -> list[Result]:
    """Measure 3: appends of many events in one call and one commit.

    Args:
        sizes: how much work to do.
        workdir: the directory for the database files.
        stat: how a contender's rounds become its figure.

    Returns:
        eventvault's row.

    Raises:
        BenchmarkSetupError: a database is not in WAL mode, or a read came back short.
    """
    size, batches = sizes.batch_events, sizes.batches
    store = _open_store(workdir / "batch-eventvault.db")
    raw = RawWriter(workdir / "batch-raw.db")
    payloads = _payloads(size)
    counter = [0, 0]

    def ours() -> None:
        # The events exist before the timer starts, as the payload dicts do for raw.
        lists = [_new_events(payloads) for _ in range(batches)]
        start = time.perf_counter()
        for events in lists:
            counter[0] += 1
            store.append_to_stream(
                f"import-{counter[0]}", events, expected_version=StreamState.NO_STREAM
            )
        timings.append(time.perf_counter() - start)

    def baseline() -> None:
        start = time.perf_counter()
        for _ in range(batches):
            counter[1] += 1
            raw.append_many(f"import-{counter[1]}", payloads)
        timings.append(time.perf_counter() - start)

    timings: list[float] = []

    def rate(run: Callable[[], None]) -> Callable[[], float]:
        def sample() -> float:
            run()
            return size * batches / timings[-1]

        return sample

    try:
        contenders = {"eventvault": rate(ours), "raw": rate(baseline)}
        for contender in contenders.values():
            contender()
        samples = interleave(contenders, sizes.rounds)
    finally:
        store.close()
        raw.close()
    return _rate_rows(
        samples,
        stat,
        key="append_batch",
        measure=f"3. append {size:,} events per call",
        baseline_name="raw executemany+COMMIT",
        minimum=0.6,
    )


def _fill(store: SQLiteEventStore, count: int, prefix: str = "account") -> None:
    """Append `count` events in appends of up to 1,000, a stream per append."""
    written, stream = 0, 0
    while written < count:
        size = min(1000, count - written)
        store.append_to_stream(
            f"{prefix}-{stream}",
            _new_events(_payloads(size, written)),
            expected_version=StreamState.NO_STREAM,
        )
        written += size
        stream += 1


def _es_fill(app: BenchApplication, count: int) -> None:
    """Save `count` events: aggregates of up to 1,000 events, one save each."""
    written = 0
    while written < count:
        size = min(1000, count - written)
        account = Account()  # its creation is the first of its events
        for payload in _payloads(size - 1, written):
            account.deposit(**payload)
        app.save(account)
        written += size


def measure_read(sizes: Sizes, workdir: Path, stat: Stat, reference: bool) -> list[Result]:
    """Measure 4: reading the whole log, decoded.

    Args:
        sizes: how much work to do.
        workdir: the directory for the database files.
        stat: how a contender's rounds become its figure.
        reference: also run the eventsourcing library.

    Returns:
        eventvault's row, then the reference row when `reference` is set.

    Raises:
        BenchmarkSetupError: a database is not in WAL mode, or a read came back short.
    """
    count = sizes.read_events
    path = workdir / "read-eventvault.db"
    store = _open_store(path)
    _fill(store, count)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA query_only = 1")
    app = None
    if reference:
        app = _es_application(workdir / "read-eventsourcing.db")
        _es_fill(app, count)

    def ours() -> None:
        read = sum(1 for _ in store.read_all())
        if read != count:
            raise BenchmarkSetupError(f"read_all returned {read} events, not {count}")

    def baseline() -> None:
        read = raw_read(raw)
        if read != count:
            raise BenchmarkSetupError(f"raw SELECT returned {read} rows, not {count}")

    try:
        contenders = {"eventvault": _rates(ours, count), "raw": _rates(baseline, count)}
        if app is not None:
            es_app = app

            def theirs() -> None:
                read = _es_read(es_app)
                if read != count:
                    raise BenchmarkSetupError(f"eventsourcing read {read} events, not {count}")

            contenders["eventsourcing"] = _rates(theirs, count)
        for contender in contenders.values():
            contender()
        samples = interleave(contenders, sizes.rounds)
    finally:
        store.close()
        raw.close()
        if app is not None:
            app.close()
    return _rate_rows(
        samples,
        stat,
        key="read_all",
        measure=f"4. read_all {count:,} events, decoded",
        baseline_name="raw SELECT+json.loads",
        minimum=1.0,
    )


def _proc_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's resident-memory high-water mark (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return _proc_status_kib("VmHWM") is not None


def _child_memory(kind: str, path: str) -> dict[str, float]:
    """In a fresh process: read the whole log and report the peak resident memory it added.

    The high-water mark of resident memory is reset just before the read (Linux's
    /proc/self/clear_refs), so the figure is the read's own peak over the memory the process
    already held, not hidden under the peak of start-up. Where the reset is unavailable, the
    figure falls back to the growth of `ru_maxrss`, which can only under-state.
    """
    if kind == "eventvault":
        store = SQLiteEventStore(path, synchronous="FULL")

        def read() -> int:
            return sum(1 for _ in store.read_all())

        close: Callable[[], None] = store.close
    elif kind == "raw":
        conn = sqlite3.connect(path, isolation_level=None)

        def read() -> int:
            return raw_read(conn)

        close = conn.close
    else:
        raise BenchmarkSetupError(f"unknown reader {kind!r}")
    gc.collect()
    exact = _reset_peak_rss()
    before_kib = (_proc_status_kib("VmRSS") if exact else None) or resource.getrusage(
        resource.RUSAGE_SELF
    ).ru_maxrss
    start = time.perf_counter()
    count = read()
    elapsed = time.perf_counter() - start
    peak_kib = (_proc_status_kib("VmHWM") if exact else None) or resource.getrusage(
        resource.RUSAGE_SELF
    ).ru_maxrss
    close()
    return {
        "count": count,
        "seconds": elapsed,
        "resident_before": before_kib * 1024,
        "peak": peak_kib * 1024,
        "added": max(peak_kib - before_kib, 0) * 1024,
        "exact": 1.0 if exact else 0.0,
    }


def _memory_in_child(kind: str, path: Path) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child-memory", kind, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchmarkSetupError(
            f"the {kind} memory reader failed ({completed.returncode}): {completed.stderr}"
        )
    figures: dict[str, float] = json.loads(completed.stdout)
    return figures


def measure_memory(sizes: Sizes, workdir: Path) -> list[Result]:
    """Measure 5: peak memory that reading a long log adds, each reader in a fresh process.

    Args:
        sizes: how much work to do.
        workdir: the directory for the database file.

    Returns:
        eventvault's row (the raw cursor's figure is its baseline, for scale).

    Raises:
        BenchmarkSetupError: a reader failed or read the wrong number of events.
    """
    count = sizes.memory_events
    path = workdir / "memory-eventvault.db"
    with _open_store(path) as store:
        _fill(store, count)
    ours = _memory_in_child("eventvault", path)
    raw = _memory_in_child("raw", path)
    for kind, figures in (("eventvault", ours), ("raw", raw)):
        if figures["count"] != count:
            raise BenchmarkSetupError(f"the {kind} reader read {figures['count']}, not {count}")
    return [
        Result(
            key="read_memory",
            measure=f"5. read_all {count:,} events: peak memory added",
            subject="eventvault",
            value=ours["added"],
            baseline_name="raw cursor",
            baseline=raw["added"],
            unit="bytes",
            ratio=None,
            target="< 100 MiB",
            passed=ours["added"] < MEMORY_LIMIT,
            samples={"eventvault": [ours["added"]], "raw": [raw["added"]]},
            details={"eventvault": ours, "raw": raw},
        )
    ]


def figures_of(results: Sequence[Result]) -> list[Figure]:
    """Every figure of the rows, for the JSON: each subject's figure and its ratio, and each
    measure's baseline once.

    Args:
        results: the rows, eventvault's first within each measure.

    Returns:
        The figures, keyed by the row's key (`append_one`, `append_one/ratio`,
        `append_one/baseline`).
    """
    figures: list[Figure] = []
    baselines: set[str] = set()
    for result in results:
        rate = result.unit != "bytes"
        subject = "eventvault" if result.subject == "eventvault" else "eventsourcing"
        figures.append(
            Figure(
                result.key,
                f"{result.measure}: {result.subject}",
                result.value,
                result.unit,
                higher_is_better=rate,
                samples=tuple(result.samples.get(subject, ())),
            )
        )
        if result.ratio is not None:
            figures.append(
                Figure(
                    f"{result.key}/ratio",
                    f"{result.measure}: {result.subject} / {result.baseline_name}",
                    result.ratio,
                    "x",
                )
            )
        if result.measure not in baselines:
            baselines.add(result.measure)
            figures.append(
                Figure(
                    f"{result.key}/baseline",
                    f"{result.measure}: {result.baseline_name}",
                    result.baseline,
                    result.unit,
                    higher_is_better=rate,
                    samples=tuple(result.samples.get("raw", ())),
                )
            )
    return figures


# -- command line ----------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Speed of eventvault's SQLite engine against raw sqlite3."
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7; quick 2)")
    parser.add_argument(
        "--stat",
        choices=("best", "median"),
        default="best",
        help="figure of a contender's rounds (default best)",
    )
    parser.add_argument(
        "--measures", default="1,2,3,4,5", help="which measures to run, e.g. 1,4 (default all)"
    )
    parser.add_argument("--dir", help="directory for the database files (not on tmpfs)")
    parser.add_argument(
        "--allow-tmpfs",
        action="store_true",
        help="allow --dir on a memory file system (smoke tests only: its syncs cost nothing)",
    )
    parser.add_argument("--plain", action="store_true", help="plain-text table, without Rich")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument("--child-memory", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be >= 1")
    try:
        args.measure_set = {int(part) for part in args.measures.split(",") if part.strip()}
    except ValueError:
        parser.error(f"--measures takes numbers 1 to 5 separated by commas, not {args.measures!r}")
    if not args.measure_set or not args.measure_set <= {1, 2, 3, 4, 5}:
        parser.error(f"--measures takes numbers 1 to 5 separated by commas, not {args.measures!r}")
    return args


def run(args: argparse.Namespace) -> int:
    """Run the measures the arguments select, print the table, and write the JSON.

    Args:
        args: the parsed command line.

    Returns:
        The exit status: 1 when `--check` is given and a target was missed, else 0.
    """
    sizes = QUICK if args.quick else FULL
    if args.rounds is not None:
        sizes = Sizes(**{**asdict(sizes), "rounds": args.rounds})
    stat: Stat = args.stat
    reference = HAVE_EVENTSOURCING
    results: list[Result] = []
    started = time.perf_counter()
    with bench_dir("eventvault-bench-", args.dir, allow_memory_fs=args.allow_tmpfs) as workdir:
        info = machine_info(workdir)
        print(
            f"eventvault core benchmark: {'quick' if args.quick else 'full'} run, "
            f"{sizes.rounds} rounds, figure = {stat} round; files in {workdir} "
            f"({info.get('filesystem')}); WAL + synchronous=FULL on every side; "
            f"load average {info.get('load_average')}",
            flush=True,
        )
        if not reference:
            print("eventsourcing is not installed: its reference rows are left out", flush=True)
        steps: list[tuple[int, Callable[[], list[Result]]]] = [
            (1, lambda: measure_single(sizes, workdir, stat, reference)),
            (2, lambda: measure_threads(sizes, workdir, stat)),
            (3, lambda: measure_batch(sizes, workdir, stat)),
            (4, lambda: measure_read(sizes, workdir, stat, reference)),
            (5, lambda: measure_memory(sizes, workdir)),
        ]
        for number, step in steps:
            if number in args.measure_set:
                step_start = time.perf_counter()
                results.extend(step())
                print(
                    f"measure {number} done in {time.perf_counter() - step_start:.1f} s", flush=True
                )
    elapsed = time.perf_counter() - started
    print_table(
        Table(
            title=f"eventvault SQLite engine vs baselines ({elapsed:.0f} s)",
            columns=("measure", "subject", "rate", "baseline", "ratio", "target", "result"),
            rows=tuple(result.cells() for result in results),
            right_aligned=frozenset({2, 3, 4}),
        ),
        plain=args.plain,
    )
    if args.json:
        info["load_average_after"] = machine_info().get("load_average")
        write_json(
            args.json,
            {
                "benchmark": "bench_core",
                "mode": "quick" if args.quick else "full",
                "stat": stat,
                "sizes": asdict(sizes),
                "durability": {"journal_mode": "wal", "synchronous": "FULL"},
                "eventsourcing": ES_VERSION,
                "machine": info,
                "imported": {"eventvault": imported_from("eventvault")},
                "seconds": round(elapsed, 1),
                "results": [asdict(result) for result in results],
                "figures": [asdict(figure) for figure in figures_of(results)],
            },
        )
    missed = [result.key for result in results if result.passed is False]
    return 1 if args.check and missed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: see the module's docstring.

    Args:
        argv: the arguments; None for `sys.argv[1:]`.

    Returns:
        The exit status: 0, 1 (`--check` and a missed target) or 2 (cannot run).
    """
    args = _parse(argv)
    try:
        if args.child_memory:
            print(json.dumps(_child_memory(*args.child_memory)))
            return 0
        return run(args)
    except BenchmarkSetupError as exc:
        print(f"bench_core: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
