"""PostgreSQL engine benchmark: eventvault against raw psycopg and the eventsourcing library.

Every contender runs in this one process (the 4x4 measure spawns its 4 processes), on the same
server, in fresh schemas that are dropped afterwards:

1. one-event appends from one connection: eventvault vs raw psycopg INSERT + COMMIT per event
   (into a table with eventvault's columns and constraints)
   vs eventsourcing (PERSISTENCE_MODULE=eventsourcing.postgres) saving one event per call;
2. one-event appends from 16 threads of one process, against the raw single-connection rate
   (with, for reference, raw psycopg committing from 16 connections at once);
3. one-event appends from 4 processes of 4 threads each, against the same raw rate;
4. read_all of 100,000 events, decoded, vs raw SELECT + json.loads and vs eventsourcing
   reading its notification log.

Measure 1's contenders and measure 4's take turns within each round; a write figure is the
median of its rounds, a read figure the best (the round least disturbed by other load).

Targets: 1 >= 0.7x raw; 2 >= 4x raw single; 3 >= 2x raw single; 4 >= 1.0x raw and >= 2x
eventsourcing. Run it against a server with fsync on (the figures are about commits):

    EVENTVAULT_PG_PORT=25430 scripts/postgres-test-cluster start --durable
    python benchmarks/bench_postgres.py --url postgresql://postgres@127.0.0.1:25430/eventvault_test

`--json PATH` also writes every figure with its rounds.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import multiprocessing
import os
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (
    Figure,
    Stat,
    Table,
    format_rate,
    format_ratio,
    imported_from,
    interleave,
    machine_info,
    print_table,
    summarize,
    write_json,
)

from eventvault import NewEvent, StreamAppend, StreamState
from eventvault.store.postgres import PostgresEventStore

try:
    import eventsourcing.application as es_application
    import eventsourcing.domain as es_domain

    HAVE_EVENTSOURCING = True
    ES_VERSION = metadata.version("eventsourcing")
except ImportError:  # pragma: no cover - the bench extra installs it
    HAVE_EVENTSOURCING = False
    ES_VERSION = "not installed"

DATA = {"amount": 100, "currency": "EUR", "note": "deposit"}
READ_EVENTS = 100_000


@dataclass(frozen=True, slots=True)
class Sizes:
    """How long each sample runs and how much is read."""

    seconds: float
    rounds: int
    read_events: int


def _store_url(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}&auto_migrate=true&pool_max=20"


@contextmanager
def _schemas(url: str) -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(label: str) -> str:
        name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        made.append(name)
        return name

    try:
        yield make
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _for(seconds: float, action: Callable[[], None]) -> float:
    """Run `action` repeatedly for about `seconds`; return calls per second."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        action()
        count += 1
    return count / (time.perf_counter() - start)


def _threads(seconds: float, threads: int, action: Callable[[int], None]) -> float:
    """Run `action(thread_index)` in `threads` threads for about `seconds`; return calls/s."""
    counts = [0] * threads
    start_line = threading.Barrier(threads + 1)
    stop = threading.Event()

    def work(index: int) -> None:
        start_line.wait()
        while not stop.is_set():
            action(index)
            counts[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start_line.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - start)


def _append_one(store: PostgresEventStore, stream: str) -> None:
    store.append_to_stream(stream, [NewEvent("Deposited", DATA)], expected_version=StreamState.ANY)


def _process_worker(url: str, seconds: float, threads: int, start_at: float, out: object) -> None:
    """One process of the 4x4 measure: `threads` threads appending through one store."""
    store = PostgresEventStore(url)
    _append_one(store, f"warm-{os.getpid()}")
    time.sleep(max(0.0, start_at - time.time()))
    pid = os.getpid()
    rate = _threads(seconds, threads, lambda i: _append_one(store, f"p{pid}-{i}"))
    store.close()
    out.put(rate)  # type: ignore[attr-defined]


def _processes(url: str, seconds: float, processes: int, threads: int) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 2.0
    workers = [
        context.Process(target=_process_worker, args=(url, seconds, threads, start_at, queue))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    rates = [float(queue.get(timeout=60 + seconds)) for _ in workers]
    for worker in workers:
        worker.join()
    return sum(rates)


if HAVE_EVENTSOURCING:

    class Account(es_domain.Aggregate):
        """The eventsourcing library's side: an aggregate that records deposits."""

        @es_domain.event("Deposited")
        def deposit(self, amount: int, currency: str, note: str) -> None:
            """Record a deposit."""
            self.last_amount = amount

    class BenchApplication(es_application.Application[uuid.UUID]):
        """An eventsourcing application whose notification log reads 1,000 at a time."""

        log_section_size = 1000


def _es_app(url: str, schema: str) -> BenchApplication:
    parts = urllib.parse.urlsplit(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return BenchApplication(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": parts.username or "postgres",
            "POSTGRES_PASSWORD": parts.password or "",
            "POSTGRES_SCHEMA": schema,
            "CREATE_TABLE": "y",
        }
    )


def _raw_table(url: str, schema: str) -> None:
    """The raw baseline's table: eventvault's columns and constraints (global position from a
    sequence as primary key, unique stream position, unique event id), as the SQLite baseline
    uses eventvault's own table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".events (global_position bigserial PRIMARY KEY, '
            "stream_name text NOT NULL, stream_position bigint NOT NULL, event_id uuid NOT NULL, "
            "event_type text NOT NULL, schema_version integer NOT NULL, data bytea NOT NULL, "
            "metadata bytea NOT NULL, recorded_at bigint NOT NULL, hash bytea NOT NULL, "
            "UNIQUE (stream_name, stream_position), UNIQUE (event_id))"
        )


def _raw_writer(
    url: str, schema: str, stream: str
) -> tuple[Callable[[], None], Callable[[], None]]:
    """Raw psycopg storing event rows in the raw table, one INSERT and COMMIT each, on a
    connection of its own: the same work as eventvault minus its checks, hash chain and stream
    heads. Each event gets a new id, its JSON and a SHA-256, as eventvault's do."""
    conn = psycopg.connect(url)
    insert = (
        f'INSERT INTO "{schema}".events (stream_name, stream_position, event_id, event_type, '
        "schema_version, data, metadata, recorded_at, hash) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    position = itertools.count()

    def one() -> None:
        payload = json.dumps(DATA).encode()
        conn.execute(
            insert,
            (
                stream,
                next(position),
                uuid.uuid4(),
                "Deposited",
                1,
                payload,
                b"{}",
                time.time_ns() // 1000,
                hashlib.sha256(payload).digest(),
            ),
        )
        conn.commit()

    return one, conn.close


def _raw_concurrent(url: str, schema: str, seconds: float, connections: int) -> float:
    """Raw one-event commits from `connections` threads, each on a connection of its own: what
    the server and this machine allow for independent small transactions."""
    run = uuid.uuid4().hex[:8]
    writers = [_raw_writer(url, schema, f"raw-{run}-{i}") for i in range(connections)]
    try:
        return _threads(seconds, connections, lambda i: writers[i][0]())
    finally:
        for _, close in writers:
            close()


def measure_writes(url: str, sizes: Sizes, schema: Callable[[str], str]) -> dict[str, list[float]]:
    """Measures 1 to 3: every round of every contender, in events per second.

    Returns:
        `eventvault`, `raw` and `eventsourcing` (measure 1, interleaved rounds), `raw_16`,
        `threads` (measure 2) and `processes` (measure 3) to their rounds.
    """
    ours = PostgresEventStore(_store_url(url, schema("single")))
    raw_schema = schema("raw")
    _raw_table(url, raw_schema)
    raw_one, raw_close = _raw_writer(url, raw_schema, "raw-1")
    contenders: dict[str, Callable[[], float]] = {
        "eventvault": lambda: _for(sizes.seconds, lambda: _append_one(ours, "single-1")),
        "raw": lambda: _for(sizes.seconds, raw_one),
    }
    if HAVE_EVENTSOURCING:
        app = _es_app(url, schema("es"))
        account = Account()
        app.save(account)

        def es_one() -> None:
            account.deposit(amount=100, currency="EUR", note="deposit")
            app.save(account)

        contenders["eventsourcing"] = lambda: _for(sizes.seconds, es_one)
    samples = interleave(contenders, sizes.rounds)
    raw_close()

    samples["raw_16"] = [
        _raw_concurrent(url, raw_schema, sizes.seconds, 16) for _ in range(sizes.rounds)
    ]
    threaded_store = PostgresEventStore(_store_url(url, schema("threads")))
    samples["threads"] = [
        _threads(sizes.seconds, 16, lambda i: _append_one(threaded_store, f"t-{i}"))
        for _ in range(sizes.rounds)
    ]
    threaded_store.close()
    ours.close()
    processes_url = _store_url(url, schema("procs"))
    PostgresEventStore(processes_url).close()
    samples["processes"] = [
        _processes(processes_url, sizes.seconds, 4, 4) for _ in range(sizes.rounds)
    ]
    return samples


def _fill(store: PostgresEventStore, count: int) -> None:
    for start in range(0, count, 500):
        store.append_to_streams(
            [
                StreamAppend(
                    f"acct-{start // 500}-{k}",
                    [NewEvent("Deposited", DATA) for _ in range(100)],
                    StreamState.NO_STREAM,
                )
                for k in range(min(500, count - start) // 100)
            ]
        )


def measure_reads(url: str, sizes: Sizes, schema: Callable[[str], str]) -> dict[str, list[float]]:
    """Measure 4: every round of every reader, in events per second.

    Returns:
        `eventvault`, `raw` and `eventsourcing` to their rounds.
    """
    count = sizes.read_events
    ours_schema = schema("read")
    store = PostgresEventStore(_store_url(url, ours_schema))
    _fill(store, count)
    raw = psycopg.connect(url, autocommit=True)
    select = (
        "SELECT stream_name, stream_position, global_position, event_id, event_type, "
        f'schema_version, data, metadata, recorded_at, hash FROM "{ours_schema}".events '
        "WHERE global_position > %s ORDER BY global_position LIMIT 1000"
    )

    def ours() -> None:
        read = sum(1 for _ in store.read_all())
        assert read == count, read

    def baseline() -> None:
        after, read = 0, 0
        loads = json.loads
        while True:
            rows = raw.execute(select, (after,), binary=True).fetchall()
            for row in rows:
                loads(row[6])
                loads(row[7])
            read += len(rows)
            if len(rows) < 1000:
                break
            after = rows[-1][2]
        assert read == count, read

    contenders: dict[str, Callable[[], float]] = {
        "eventvault": lambda: count / _timed(ours),
        "raw": lambda: count / _timed(baseline),
    }
    if HAVE_EVENTSOURCING:
        app = _es_app(url, schema("esread"))
        for _ in range(count // 100):
            account = Account()
            for _ in range(99):
                account.deposit(amount=100, currency="EUR", note="deposit")
            app.save(account)

        def theirs() -> None:
            select_log = app.notification_log.select
            to_domain_event = app.mapper.to_domain_event
            start, read = 1, 0
            while True:
                notifications = select_log(start, 1000)
                for notification in notifications:
                    to_domain_event(notification)
                read += len(notifications)
                if len(notifications) < 1000:
                    break
                start = notifications[-1].id + 1
            assert read == count, read

        contenders["eventsourcing"] = lambda: count / _timed(theirs)
    for contender in contenders.values():
        contender()
    samples = interleave(contenders, sizes.rounds)
    raw.close()
    store.close()
    return samples


def _figure(key: str, label: str, rounds: list[float], stat: Stat) -> Figure:
    return Figure(key, label, summarize(rounds, stat), "ev/s", samples=tuple(rounds))


def _ratio(key: str, label: str, ours: Figure, theirs: Figure) -> Figure:
    return Figure(key, label, ours.value / theirs.value, "x")


def figures_of(
    writes: dict[str, list[float]], reads: dict[str, list[float]], read_events: int
) -> dict[str, Figure]:
    """The figures of measures 1 to 4: each contender's median (writes) or best round (reads,
    the round least disturbed by other load), and the ratios the targets are about.

    Args:
        writes: what `measure_writes` returned.
        reads: what `measure_reads` returned.
        read_events: the events measure 4 read, for its label.

    Returns:
        Key to figure, in the order of the table.
    """
    one, threads, procs = (
        "1. append 1 event/commit, 1 connection",
        "2. append 1 event/call, 16 threads",
        "3. append 1 event/call, 4 procs x 4 threads",
    )
    read = f"4. read_all {read_events:,} events, decoded"
    raw = _figure(
        "append_one/baseline", f"{one}: raw psycopg INSERT+COMMIT", writes["raw"], "median"
    )
    ours = _figure("append_one", f"{one}: eventvault", writes["eventvault"], "median")
    figures = [ours, _ratio("append_one/ratio", f"{one}: eventvault / raw", ours, raw), raw]
    if "eventsourcing" in writes:
        theirs = _figure(
            "append_one_eventsourcing", f"{one}: eventsourcing", writes["eventsourcing"], "median"
        )
        figures += [
            theirs,
            _ratio("append_one_eventsourcing/ratio", f"{one}: eventsourcing / raw", theirs, raw),
        ]
    threaded = _figure("append_threads", f"{threads}: eventvault", writes["threads"], "median")
    raw_16 = _figure(
        "append_threads_raw16",
        f"{threads}: raw psycopg, 16 connections",
        writes["raw_16"],
        "median",
    )
    multi = _figure("append_processes", f"{procs}: eventvault", writes["processes"], "median")
    figures += [
        threaded,
        _ratio("append_threads/ratio", f"{threads}: eventvault / raw, 1 connection", threaded, raw),
        raw_16,
        _ratio("append_threads_raw16/ratio", f"{threads}: raw 16 / raw 1", raw_16, raw),
        multi,
        _ratio("append_processes/ratio", f"{procs}: eventvault / raw, 1 connection", multi, raw),
    ]
    read_ours = _figure("read_all", f"{read}: eventvault", reads["eventvault"], "best")
    read_raw = _figure(
        "read_all/baseline", f"{read}: raw SELECT + json.loads", reads["raw"], "best"
    )
    figures += [
        read_ours,
        _ratio("read_all/ratio", f"{read}: eventvault / raw", read_ours, read_raw),
        read_raw,
    ]
    if "eventsourcing" in reads:
        read_theirs = _figure(
            "read_all_eventsourcing",
            f"{read}: eventsourcing notification log",
            reads["eventsourcing"],
            "best",
        )
        figures += [
            read_theirs,
            _ratio(
                "read_all_eventsourcing/ratio",
                f"{read}: eventsourcing / raw",
                read_theirs,
                read_raw,
            ),
            _ratio(
                "read_all/eventsourcing",
                f"{read}: eventvault / eventsourcing",
                read_ours,
                read_theirs,
            ),
        ]
    return {figure.key: figure for figure in figures}


def rows_of(figures: dict[str, Figure]) -> list[tuple[str, ...]]:
    """The table: measure, subject, rate, ratio to the raw baseline, target."""

    def rate(key: str) -> str:
        return format_rate(figures[key].value)

    def ratio(key: str) -> str:
        return format_ratio(figures[key].value)

    def measure(key: str) -> str:
        return figures[key].label.split(": ", 1)[0]

    rows: list[tuple[str, ...]] = [
        (measure("append_one"), "eventvault", rate("append_one"), ratio("append_one/ratio"),
         ">= 0.7x raw"),
        ("", "raw psycopg INSERT+COMMIT", rate("append_one/baseline"), "1.00x", ""),
    ]  # fmt: skip
    if "append_one_eventsourcing" in figures:
        rows.append(
            ("", f"eventsourcing {ES_VERSION}", rate("append_one_eventsourcing"),
             ratio("append_one_eventsourcing/ratio"), "")
        )  # fmt: skip
    rows += [
        (measure("append_threads"), "eventvault", rate("append_threads"),
         ratio("append_threads/ratio"), ">= 4x raw single"),
        ("", "raw psycopg, 16 connections at once", rate("append_threads_raw16"),
         ratio("append_threads_raw16/ratio"), "reference"),
        (measure("append_processes"), "eventvault", rate("append_processes"),
         ratio("append_processes/ratio"), ">= 2x raw single"),
        (measure("read_all"), "eventvault", rate("read_all"), ratio("read_all/ratio"),
         ">= 1.0x raw"),
        ("", "raw SELECT + json.loads", rate("read_all/baseline"), "1.00x", ""),
    ]  # fmt: skip
    if "read_all_eventsourcing" in figures:
        rows.append(
            ("", "eventsourcing notification log", rate("read_all_eventsourcing"),
             ratio("read_all_eventsourcing/ratio"),
             f"eventvault {ratio('read_all/eventsourcing')} of it (>= 2x)")
        )  # fmt: skip
    return rows


def _timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("EVENTVAULT_BENCH_POSTGRES_URL")
        or os.environ.get("EVENTVAULT_TEST_POSTGRES_URL"),
        help="the server (default: $EVENTVAULT_BENCH_POSTGRES_URL or $EVENTVAULT_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script only")
    parser.add_argument("--json", metavar="PATH", help="also write every figure and round as JSON")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url or set EVENTVAULT_BENCH_POSTGRES_URL")
    sizes = Sizes(0.3, 1, 2_000) if args.quick else Sizes(4.0, 3, READ_EVENTS)
    with psycopg.connect(args.url, autocommit=True) as conn:
        settings = {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("server_version", "fsync", "synchronous_commit")
        }
    print(f"server: {settings}", flush=True)
    info = machine_info()
    started = time.perf_counter()
    with _schemas(args.url) as schema:
        writes = measure_writes(args.url, sizes, schema)
        reads = measure_reads(args.url, sizes, schema)
    figures = figures_of(writes, reads, sizes.read_events)
    print_table(
        Table(
            title="eventvault on PostgreSQL",
            columns=("measure", "subject", "rate", "ratio", "target"),
            rows=tuple(rows_of(figures)),
            right_aligned=frozenset({2, 3}),
        )
    )
    if args.json:
        info["load_average_after"] = machine_info().get("load_average")
        write_json(
            args.json,
            {
                "benchmark": "bench_postgres",
                "mode": "quick" if args.quick else "full",
                "sizes": asdict(sizes),
                "server": settings,
                "eventsourcing": ES_VERSION,
                "machine": info,
                "imported": {"eventvault": imported_from("eventvault")},
                "seconds": round(time.perf_counter() - started, 1),
                "figures": [asdict(figure) for figure in figures.values()],
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
