"""Projections: rebuild speed, live latency and fan-out, beside raw SQL and `eventsourcing`.

Run: `python benchmarks/bench_projections.py [--events 1000000] [--postgres-url URL]`
(`--quick` for a smoke run). Every contender does the same work (benchmarks/README.md):

1. Rebuild on SQLite: a projection that upserts one row per event (a row per stream: count
   and total) over `--events` events, from the store's own file into a table of the same file.
   eventvault: `ProjectionRunner.catch_up` of a new `Projection` whose handler queues its upsert
   (`ReadModel.queue`; batches of 1,000 events, one transaction each, the checkpoint in it). Raw: `SELECT global_position, stream_name, data`
   pages of 1,000, `json.loads`, `executemany` of the same upserts and an `UPDATE` of a
   checkpoint row, one transaction per page. Both durable (WAL, `synchronous=FULL`).
2. The same on PostgreSQL (psycopg for the raw side), on a durable server.
3. Against `eventsourcing` 9.5.6 on SQLite: its `Projection` with a `SQLiteTrackingRecorder`
   view doing the same upsert and its tracking record in one transaction per event (its
   documented way), fed by a catch-up loop over `select_notifications` (its `ProjectionRunner`
   cannot subscribe to SQLite), over `--es-events` events of its own application; eventvault
   rebuilds the same events (same streams, same payloads) from its own store.
4. The same on PostgreSQL, where `eventsourcing`'s `ProjectionRunner` subscribes.
5. Append-to-read-model latency of a live projection, p50 and p99: in the same process
   (SQLite), from another process (SQLite: the runner in a child process, the appends and the
   polling of the read model here), and on PostgreSQL (the same, woken by NOTIFY).
6. Fan-out: `--fanout` projections in one runner over the same `--fanout-events` events,
   against one: total events applied per second.

A rate is events per second; a figure is the best of `--rounds` interleaved rounds
(`--stat median` for the median); ratios are eventvault's over the other's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from functools import singledispatchmethod
from pathlib import Path
from typing import Any

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
from eventvault import EventStore, NewEvent, RecordedEvent, StreamAppend, StreamState
from eventvault.export import copy_events
from eventvault.projections import Projection, ProjectionRunner, ReadModel, handles

STREAMS = 10_000
"""Streams the rebuild events are spread over: one read model row each."""
PAGE = 1_000
UPSERT = (
    "INSERT INTO {t} (stream, n, total) VALUES (?, 1, ?) ON CONFLICT (stream) "
    "DO UPDATE SET n = {t}.n + 1, total = {t}.total + excluded.total"
)
CREATE = "CREATE TABLE {t} (stream TEXT PRIMARY KEY, n BIGINT NOT NULL, total BIGINT NOT NULL)"


# -- the projection measured -------------------------------------------------------------------


def totals_projection(tag: str, batch_size: int = PAGE) -> Projection:
    """A new projection upserting one row per event into a table of its own."""
    table = f"totals_{tag}"
    upsert = UPSERT.replace("{t}", f"{{{table}}}")

    class Totals(Projection):
        name = f"totals-{tag}"
        tables = {table: CREATE.replace("{t}", f"{{{table}}}")}

        @handles("Deposited")
        def deposited(self, db: ReadModel, event: RecordedEvent) -> None:
            db.queue(upsert, (event.stream_name, event.data["amount"]))

    Totals.batch_size = batch_size
    return Totals()


def deposit_events(count: int, streams: int, start: int = 0) -> Iterator[StreamAppend]:
    """`count` deposits over `streams` streams, as multi-stream appends of up to 1,000."""
    for chunk in range(start, start + count, PAGE):
        by_stream: dict[str, list[NewEvent]] = {}
        for n in range(chunk, min(chunk + PAGE, start + count)):
            by_stream.setdefault(f"account-{n % streams}", []).append(
                NewEvent("Deposited", {"amount": n % 100, "currency": "EUR"})
            )
        yield from (
            StreamAppend(name, events, StreamState.ANY) for name, events in by_stream.items()
        )


def fill(store: EventStore, count: int, streams: int) -> None:
    """Append `count` deposits over `streams` streams, 1,000 per transaction."""
    batch: list[StreamAppend] = []
    for append in deposit_events(count, streams):
        batch.append(append)
        if sum(len(a.events) for a in batch) >= PAGE:
            store.append_to_streams(batch)
            batch = []
    if batch:
        store.append_to_streams(batch)


def rebuild_rate(store: EventStore, count: int, tag: str) -> float:
    """Rebuild a new totals projection over the store; events per second."""
    projection = totals_projection(tag)
    start = time.perf_counter()
    if not ProjectionRunner(store, [projection]).catch_up(timeout=3600):
        raise BenchmarkSetupError("the projection did not catch up within an hour")
    return count / (time.perf_counter() - start)


# -- raw baselines -----------------------------------------------------------------------------


def raw_sqlite_rate(path: Path, count: int, tag: str) -> float:
    """SELECT + json.loads + executemany upserts per page of 1,000, a checkpoint per commit."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = FULL")
        table = f"raw_{tag}"
        conn.execute(CREATE.replace("{t}", table))
        conn.execute(f"CREATE TABLE {table}_checkpoint (id INTEGER PRIMARY KEY, position INTEGER)")
        conn.execute(f"INSERT INTO {table}_checkpoint VALUES (1, 0)")
        upsert = UPSERT.replace("{t}", table)
        start = time.perf_counter()
        position = 0
        while True:
            rows = conn.execute(
                "SELECT global_position, stream_name, data FROM events WHERE global_position > ? "
                "AND event_type IN ('Deposited') ORDER BY global_position LIMIT ?",
                (position, PAGE),
            ).fetchall()
            if not rows:
                break
            params = [(row[1], json.loads(row[2])["amount"]) for row in rows]
            position = rows[-1][0]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(upsert, params)
            conn.execute(f"UPDATE {table}_checkpoint SET position = ? WHERE id = 1", (position,))
            conn.execute("COMMIT")
        return count / (time.perf_counter() - start)
    finally:
        conn.close()


def raw_postgres_rate(url: str, schema: str, count: int, tag: str) -> float:
    """The raw baseline on PostgreSQL, with psycopg: one transaction per page of 1,000."""
    import psycopg

    table = f'"{schema}".raw_{tag}'
    upsert = UPSERT.replace("{t}", table).replace("?", "%s").replace(f"{table}.n", f"raw_{tag}.n")
    upsert = upsert.replace(f"{table}.total", f"raw_{tag}.total")
    with psycopg.connect(url) as conn:
        conn.execute(CREATE.replace("{t}", table))
        conn.execute(f"CREATE TABLE {table}_checkpoint (id int PRIMARY KEY, position bigint)")
        conn.execute(f"INSERT INTO {table}_checkpoint VALUES (1, 0)")
        conn.commit()
        start = time.perf_counter()
        position = 0
        while True:
            rows = conn.execute(
                f'SELECT global_position, stream_name, data FROM "{schema}".events '
                "WHERE global_position > %s AND event_type = ANY(%s) "
                "ORDER BY global_position LIMIT %s",
                (position, ["Deposited"], PAGE),
            ).fetchall()
            if not rows:
                conn.rollback()
                break
            params = [(row[1], json.loads(row[2])["amount"]) for row in rows]
            position = rows[-1][0]
            with conn.cursor() as cursor:
                cursor.executemany(upsert, params)
            conn.execute(f"UPDATE {table}_checkpoint SET position = %s WHERE id = 1", (position,))
            conn.commit()
        return count / (time.perf_counter() - start)


# -- eventsourcing 9.5.6 -----------------------------------------------------------------------


def es_classes() -> dict[str, Any]:
    """The `eventsourcing` side: an account aggregate, its application, the views (SQLite and
    PostgreSQL tracking recorders with a totals table) and the projection."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event
    from eventsourcing.persistence import Tracking
    from eventsourcing.postgres import PostgresTrackingRecorder
    from eventsourcing.projection import Projection as EsProjection
    from eventsourcing.sqlite import SQLiteTrackingRecorder
    from eventsourcing.utils import get_topic
    from psycopg.sql import SQL

    class Account(Aggregate):
        @event("Opened")
        def __init__(self) -> None:
            pass

        @event("Deposited")
        def deposit(self, amount: int, currency: str) -> None:
            pass

    class Bank(Application[uuid.UUID]):
        pass

    class SQLiteTotals(SQLiteTrackingRecorder):
        def construct_create_table_statements(self) -> list[str]:
            statements = super().construct_create_table_statements()
            statements.append(
                CREATE.replace("CREATE TABLE {t}", "CREATE TABLE IF NOT EXISTS es_totals")
            )
            return statements

        def add(self, stream: str, amount: int, tracking: Tracking) -> None:
            with self.datastore.transaction(commit=True) as c:
                c.execute(UPSERT.replace("{t}", "es_totals"), (stream, amount))
                self._insert_tracking(c, tracking)

    class PostgresTotals(PostgresTrackingRecorder):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            schema = self.datastore.schema
            self.sql_create_statements.append(
                SQL(
                    CREATE.replace(
                        "CREATE TABLE {t}", f'CREATE TABLE IF NOT EXISTS "{schema}".es_totals'
                    )
                ).format()
            )
            self.upsert = SQL(
                UPSERT.replace("{t}.", "es_totals.")
                .replace("{t}", f'"{schema}".es_totals')
                .replace("?", "%s")
            )

        def add(self, stream: str, amount: int, tracking: Tracking) -> None:
            with self.datastore.transaction(commit=True) as c:
                c.execute(self.upsert, (stream, amount))
                self._insert_tracking(c, tracking)

    deposited_class: Any = Account.Deposited  # type: ignore[attr-defined]

    class TotalsProjection(EsProjection[Any]):
        name = "totals"
        topics = (get_topic(deposited_class),)

        @singledispatchmethod
        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            self.view.insert_tracking(tracking)

        # Registered by class: the annotation is a string here (postponed evaluation).
        @process_event.register(deposited_class)
        def deposited(self, domain_event: Any, tracking: Tracking) -> None:
            self.view.add(str(domain_event.originator_id), domain_event.amount, tracking)

    return {
        "Account": Account,
        "Bank": Bank,
        "SQLiteTotals": SQLiteTotals,
        "PostgresTotals": PostgresTotals,
        "TotalsProjection": TotalsProjection,
        "Tracking": Tracking,
    }


def es_fill(app: Any, account_class: Any, count: int, streams: int) -> None:
    """`count` deposits over `streams` accounts (each opened first), an account's events saved
    at once."""
    per_stream = count // streams
    for _ in range(streams):
        account = account_class()
        for n in range(per_stream):
            account.deposit(amount=n % 100, currency="EUR")
        app.save(account)


def es_sqlite_rate(env: dict[str, str], es: dict[str, Any], count: int) -> float:
    """eventsourcing's projection on SQLite, fed by a catch-up loop (no subscription there)."""
    from eventsourcing.persistence import InfrastructureFactory

    app = es["Bank"](env=env)
    view: Any = InfrastructureFactory.construct(env=env).tracking_recorder(es["SQLiteTotals"])
    with view.datastore.transaction(commit=True) as c:
        c.execute("DELETE FROM es_totals")
        c.execute("DELETE FROM tracking WHERE application_name = ?", (app.name,))
    projection = es["TotalsProjection"](view=view)
    tracking_class = es["Tracking"]
    start = time.perf_counter()
    position = (view.max_tracking_id(app.name) or 0) + 1
    while True:
        notifications = app.recorder.select_notifications(
            start=position, limit=PAGE, topics=projection.topics
        )
        if not notifications:
            break
        for notification in notifications:
            projection.process_event(
                app.mapper.to_domain_event(notification),
                tracking_class(app.name, notification.id),
            )
        position = notifications[-1].id + 1
    rate = count / (time.perf_counter() - start)
    app.close()
    return rate


def es_postgres_rate(env: dict[str, str], es: dict[str, Any], count: int) -> float:
    """eventsourcing's `ProjectionRunner` on PostgreSQL, until its view tracks the last event."""
    import psycopg
    from eventsourcing.projection import ProjectionRunner as EsRunner
    from psycopg import sql

    app = es["Bank"](env=env)
    last = app.recorder.max_notification_id()
    app.close()
    # Empty what an earlier round built: the runner's view keeps its tracking in a table named
    # after the projection ("totals_tracking"), created by the first round.
    schema = env["POSTGRES_SCHEMA"]
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table in ("es_totals", "totals_tracking"):
            name = sql.Identifier(schema, table)
            if conn.execute("SELECT to_regclass(%s)", (f'"{schema}".{table}',)).fetchone() != (
                None,
            ):
                if table == "es_totals":
                    conn.execute(sql.SQL("DELETE FROM {}").format(name))
                else:
                    conn.execute(
                        sql.SQL("DELETE FROM {} WHERE application_name = %s").format(name),
                        (es["Bank"].name,),
                    )
    start = time.perf_counter()
    with EsRunner(
        application_class=es["Bank"],
        projection_class=es["TotalsProjection"],
        view_class=es["PostgresTotals"],
        env=env,
    ) as runner:
        # Polled every 5 ms rather than with runner.wait, whose back-off (up to 800 ms) would
        # count against it.
        while (runner.view.max_tracking_id(runner.app_name) or 0) < last:
            if time.perf_counter() - start > 3600:
                raise BenchmarkSetupError("eventsourcing's projection did not finish in an hour")
            time.sleep(0.005)
        rate = count / (time.perf_counter() - start)
        with runner.view.datastore.transaction(commit=False) as c:
            rows = c.execute(f'SELECT sum(n) FROM "{runner.view.datastore.schema}".es_totals')
            applied = int(rows.fetchone()["sum"] or 0)
    if applied != count:
        raise BenchmarkSetupError(f"eventsourcing's view applied {applied} events, not {count}")
    return rate


# -- latency -----------------------------------------------------------------------------------


class Latency(Projection):
    """One row per event: when it is there, the event has reached the read model."""

    name = "latency"
    batch_size = 100
    tables = {"latency": "CREATE TABLE {latency} (position BIGINT PRIMARY KEY)"}

    @handles("Ping")
    def ping(self, db: ReadModel, event: RecordedEvent) -> None:
        db.execute("INSERT INTO {latency} VALUES (?)", (event.global_position,))


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_in_process(path: str, samples: int) -> list[float]:
    """Seconds from an append to its row committed, runner in this process."""
    found: list[float] = []
    with eventvault.connect(path) as store:
        runner = ProjectionRunner(store, [Latency()])
        runner.start()
        try:
            runner.wait_until_caught_up(60)
            for n in range(samples):
                started = time.perf_counter()
                result = store.append_to_stream(
                    "ping-1", [NewEvent("Ping", {"n": n})], expected_version=StreamState.ANY
                )
                runner.wait_until_caught_up(10, position=result.global_position)
                found.append(time.perf_counter() - started)
                time.sleep(0.01)
        finally:
            runner.stop()
            runner.join()
    return found


def latency_from_another_process(url: str, samples: int, poll: float) -> list[float]:
    """Seconds from an append here to its row in the read model, the runner in a child."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-latency-runner", url],
        stdout=subprocess.PIPE,
        text=True,
    )
    found: list[float] = []
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        with eventvault.connect(url) as store:
            placeholder = "%s" if store.dialect == "postgresql" else "?"
            check = f"SELECT 1 FROM {{schema}}.latency WHERE position = {placeholder}"
            for n in range(samples + 10):
                started = time.perf_counter()
                result = store.append_to_stream(
                    "ping-1", [NewEvent("Ping", {"n": n})], expected_version=StreamState.ANY
                )
                deadline = started + 10
                while not store.query(check, (result.global_position,)):
                    if time.perf_counter() > deadline:
                        raise BenchmarkSetupError("a ping did not reach the read model in 10 s")
                    time.sleep(poll)
                if n >= 10:  # the first ones warm up the child's connections
                    found.append(time.perf_counter() - started)
                time.sleep(0.01)
    finally:
        child.terminate()
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    return found


def serve_latency_runner(url: str) -> None:
    """The child of `latency_from_another_process`: run the Latency projection until SIGTERM."""
    with eventvault.connect(url) as store:
        runner = ProjectionRunner(store, [Latency()])
        runner.start()
        runner.wait_until_caught_up(60)
        print("ready", flush=True)
        runner.run()


# -- the run -----------------------------------------------------------------------------------


def postgres_schema_url(base: str, schema: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}schema={schema}&auto_migrate=true"


def es_postgres_env(base: str, schema: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(base)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
        "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_SCHEMA": schema,
    }


def check_durable_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        settings = {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("fsync", "synchronous_commit")
        }
    if settings != {"fsync": "on", "synchronous_commit": "on"}:
        raise BenchmarkSetupError(
            f"PostgreSQL at {url} is not durable ({settings}); start one with "
            "scripts/postgres-test-cluster start --durable"
        )


def measure(args: argparse.Namespace, tmp: Path, figures: dict[str, Any]) -> None:
    """Run the measures asked for, adding each one's figures to `figures` as it ends (so that
    a failure later still leaves them to report)."""
    stat: Stat = args.stat
    rounds = args.rounds
    figures["samples"] = {}
    serial = iter(range(10**6))

    def tag() -> str:
        return f"r{next(serial)}"

    def record(measure: str, samples: dict[str, list[float]]) -> dict[str, float]:
        figures["samples"][measure] = samples
        return {name: summarize(values, stat) for name, values in samples.items()}

    wanted = set(args.measures)
    sqlite_path = tmp / "events.db"
    if wanted & {1, 2, 6}:
        print(f"writing {args.events:,} events to {sqlite_path} ...", flush=True)
        started = time.perf_counter()
        with eventvault.connect(str(sqlite_path)) as store:
            fill(store, args.events, STREAMS)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    if 1 in wanted:
        with eventvault.connect(str(sqlite_path)) as store:
            figures["rebuild_sqlite"] = record(
                "rebuild_sqlite",
                interleave(
                    {
                        "eventvault": lambda: rebuild_rate(store, args.events, tag()),
                        "raw": lambda: raw_sqlite_rate(sqlite_path, args.events, tag()),
                    },
                    rounds,
                ),
            )
    if args.postgres_url and wanted & {2, 4, 5}:
        check_durable_postgres(args.postgres_url)
    if 2 in wanted and args.postgres_url:
        schema = f"bench_proj_{uuid.uuid4().hex[:8]}"
        url = postgres_schema_url(args.postgres_url, schema)
        print(f"copying the events to PostgreSQL schema {schema} ...", flush=True)
        with eventvault.connect(str(sqlite_path)) as source, eventvault.connect(url) as store:
            copy_events(source, store)
            figures["rebuild_postgres"] = record(
                "rebuild_postgres",
                interleave(
                    {
                        "eventvault": lambda: rebuild_rate(store, args.events, tag()),
                        "raw": lambda: raw_postgres_rate(
                            args.postgres_url, schema, args.events, tag()
                        ),
                    },
                    rounds,
                ),
            )
    if wanted & {3, 4}:
        es = es_classes()
        es_streams = max(args.es_events // 100, 1)
        count = es_streams * 100
        if 3 in wanted:
            es_env = {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(tmp / "es.db"),
            }
            app = es["Bank"](env=es_env)
            es_fill(app, es["Account"], count, es_streams)
            app.close()
            with sqlite3.connect(tmp / "es.db") as check:
                mode = check.execute("PRAGMA journal_mode").fetchone()[0]
                sync = check.execute("PRAGMA synchronous").fetchone()[0]
            if (str(mode).lower(), int(sync)) != ("wal", 2):
                raise BenchmarkSetupError(f"eventsourcing's file is {mode}/{sync}, not WAL/FULL")
            with eventvault.connect(str(tmp / "same.db")) as store:
                fill(store, count, es_streams)
                figures["vs_eventsourcing_sqlite"] = record(
                    "vs_eventsourcing_sqlite",
                    interleave(
                        {
                            "eventvault": lambda: rebuild_rate(store, count, tag()),
                            "eventsourcing": lambda: es_sqlite_rate(es_env, es, count),
                        },
                        rounds,
                    ),
                )
        if 4 in wanted and args.postgres_url:
            schema = f"bench_es_{uuid.uuid4().hex[:8]}"
            es_env = es_postgres_env(args.postgres_url, schema)
            import psycopg

            with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            app = es["Bank"](env=es_env)
            es_fill(app, es["Account"], count, es_streams)
            app.close()
            url = postgres_schema_url(args.postgres_url, f"bench_same_{uuid.uuid4().hex[:8]}")
            with eventvault.connect(url) as store:
                fill(store, count, es_streams)
                figures["vs_eventsourcing_postgres"] = record(
                    "vs_eventsourcing_postgres",
                    interleave(
                        {
                            "eventvault": lambda: rebuild_rate(store, count, tag()),
                            "eventsourcing": lambda: es_postgres_rate(es_env, es, count),
                        },
                        rounds,
                    ),
                )
    if 5 in wanted:
        latency: dict[str, list[float]] = {
            "same process, SQLite": latency_in_process(str(tmp / "latency.db"), args.samples),
            "another process, SQLite": latency_from_another_process(
                str(tmp / "latency-shared.db"), args.samples, 0.0005
            ),
        }
        if args.postgres_url:
            url = postgres_schema_url(args.postgres_url, f"bench_lat_{uuid.uuid4().hex[:8]}")
            with eventvault.connect(url):
                pass  # creates the schema before the child opens it
            latency["another process, PostgreSQL"] = latency_from_another_process(
                url, args.samples, 0.001
            )
        figures["samples"]["latency"] = latency
        figures["latency"] = {
            name: {"p50_ms": percentile(v, 0.5) * 1000, "p99_ms": percentile(v, 0.99) * 1000}
            for name, v in latency.items()
        }
    if 6 in wanted:
        fan_path = sqlite_path
        count = args.events
        if args.fanout_events != args.events:
            fan_path = tmp / "fanout.db"
            with eventvault.connect(str(fan_path)) as store:
                fill(store, args.fanout_events, STREAMS)
            count = args.fanout_events

        def fanout(width: int) -> float:
            with eventvault.connect(str(fan_path)) as store:
                projections = [totals_projection(tag()) for _ in range(width)]
                started = time.perf_counter()
                if not ProjectionRunner(store, projections).catch_up(timeout=7200):
                    raise BenchmarkSetupError("the fan-out did not catch up within two hours")
                return float(width * count / (time.perf_counter() - started))

        figures["fanout"] = record(
            "fanout",
            interleave(
                {"one": lambda: fanout(1), f"{args.fanout}": lambda: fanout(args.fanout)},
                args.fanout_rounds,
            ),
        )
        figures["fanout_events"] = count


TARGETS = {
    "rebuild_sqlite": ("raw", 0.5),
    "rebuild_postgres": ("raw", 0.5),
    "vs_eventsourcing_sqlite": ("eventsourcing", 20.0),
    "vs_eventsourcing_postgres": ("eventsourcing", 20.0),
}
LATENCY_TARGETS = {
    "same process, SQLite": 10.0,
    "another process, SQLite": 100.0,
    "another process, PostgreSQL": 20.0,
}


def report(args: argparse.Namespace, figures: dict[str, Any]) -> bool:
    """Print the tables; True when every target was met."""
    met = True
    rows: list[tuple[str, ...]] = []
    for measure, (other, target) in TARGETS.items():
        if measure not in figures:
            continue
        ours, theirs = figures[measure]["eventvault"], figures[measure][other]
        ratio = ours / theirs
        met &= ratio >= target
        rows.append(
            (
                measure,
                format_rate(ours),
                f"{format_rate(theirs)} ({other})",
                format_ratio(ratio),
                f">= {target}x",
                "yes" if ratio >= target else "NO",
            )
        )
    if rows:
        print_table(
            Table(
                f"Rebuilds ({args.stat} of {args.rounds} rounds; {args.events:,} events, "
                f"{args.es_events:,} against eventsourcing)",
                ("measure", "eventvault", "other", "ratio", "target", "met"),
                tuple(rows),
                frozenset({1, 2, 3}),
            ),
            plain=args.plain,
        )
    if "latency" in figures:
        lat_rows = []
        for name, values in figures["latency"].items():
            target = LATENCY_TARGETS[name]
            ok = values["p99_ms"] < target
            met &= ok
            lat_rows.append(
                (
                    name,
                    f"{values['p50_ms']:.2f} ms",
                    f"{values['p99_ms']:.2f} ms",
                    f"< {target:.0f} ms",
                    "yes" if ok else "NO",
                )
            )
        print_table(
            Table(
                f"Append-to-read-model latency ({args.samples} appends each)",
                ("where", "p50", "p99", "p99 target", "met"),
                tuple(lat_rows),
                frozenset({1, 2}),
            ),
            plain=args.plain,
        )
    if "fanout" in figures:
        one, many = figures["fanout"]["one"], figures["fanout"][f"{args.fanout}"]
        print_table(
            Table(
                f"Fan-out: projections in one runner over {figures['fanout_events']:,} events",
                ("projections", "events applied/s in all", "against one"),
                (
                    ("1", format_rate(one), "1.00x"),
                    (str(args.fanout), format_rate(many), format_ratio(many / one)),
                ),
                frozenset({1, 2}),
            ),
            plain=args.plain,
        )
    return met


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="eventvault projections: rebuilds, latency")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--es-events", type=int, default=20_000)
    parser.add_argument("--fanout", type=int, default=20)
    parser.add_argument("--fanout-events", type=int, default=None)
    parser.add_argument("--fanout-rounds", type=int, default=1)
    parser.add_argument("--samples", type=int, default=300, help="appends per latency measure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stat", choices=["best", "median"], default="best")
    parser.add_argument("--measures", default="1,2,3,4,5,6")
    parser.add_argument("--postgres-url", default=os.environ.get("EVENTVAULT_BENCH_POSTGRES_URL"))
    parser.add_argument("--dir")
    parser.add_argument("--allow-tmpfs", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--serve-latency-runner", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.measures = [int(m) for m in args.measures.split(",")]
    if args.quick:
        args.events, args.es_events, args.samples = 3_000, 400, 20
        args.rounds, args.fanout, args.fanout_events = 1, 3, 2_000
    if args.fanout_events is None:
        args.fanout_events = args.events
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.serve_latency_runner:
        serve_latency_runner(args.serve_latency_runner)
        return 0
    figures: dict[str, Any] = {}
    try:
        with bench_dir("bench-projections-", args.dir, allow_memory_fs=args.allow_tmpfs) as tmp:
            info = machine_info(tmp)
            measure(args, tmp, figures)
    except BenchmarkSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        met = report(args, figures)
    if args.json:
        figures["machine"] = info
        figures["date"] = date.today().isoformat()
        figures["arguments"] = {k: v for k, v in vars(args).items() if k != "postgres_url"}
        write_json(args.json, figures)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
