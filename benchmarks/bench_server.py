"""The HTTP server against the same work done in-process, side by side in one run.

| # | over HTTP (`eventvault serve`, another process) | in-process baseline | target |
| --- | --- | --- | --- |
| 1 | 64 keep-alive clients, appends of 1 event each | 64 threads, `append_to_stream` of 1 event | >= 0.5x |
| 1b | the same, appends of 100 events each | the same, 100 events per call | >= 0.5x |
| 2 | `read_all()` of the log through the HTTP client engine | `read_all()` of the same file | >= 0.5x |
| 3 | append (HTTP) to delivery to an SSE subscriber, p50 and p99 | | p99 < 20 ms |
| 4 | 256 asyncio tasks appending 1 event each, `AsyncEventStore` | raw INSERT+COMMIT, 1 thread | >= 4x |
| 5 | 64 clients asking `GET /health` of the server (a worker thread reads the head) | | |
| 5b | the same against a bare ASGI app on uvicorn (no framework, no store): Python's ceiling | | |

The HTTP clients of measure 1 are a small asyncio HTTP/1.1 client written here (keep-alive,
one request in flight per connection), in a process of their own, so that the figure is the
server's and not a client library's. Every contender of a measure runs once per round, in an
order that rotates (`_common.interleave`); a figure is the best round. Both sides use durable
SQLite files (WAL, synchronous=FULL) in one directory on disk.

Run: `python benchmarks/bench_server.py [--rounds 5] [--quick] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from _common import (
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
from bench_handoff import raw_commit_seconds

import eventvault
from eventvault import AsyncEventStore, NewEvent, StreamState

PAYLOAD: Final = {"amount": 7, "currency": "EUR", "note": "coffee"}
CLIENTS: Final = 64
_LISTENING: Final = re.compile(r"on (http://127\.0\.0\.1:\d+)")


class Server:
    """`eventvault serve` on a file, anonymous access, in a process of its own."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "eventvault.cli", "serve", str(path), "--port", "0"),
                *("--allow-anonymous", "read,write,admin", "--log-level", "warning"),
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            found = _LISTENING.search(line)
            if found:
                self.url = found.group(1)
                break
        else:
            raise RuntimeError("the server did not start")
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


BARE_APP: Final = r"""
import socket, sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")]})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
"""


def bare_ceiling(requests: int, rounds: int) -> float:
    """Requests per second of CLIENTS clients against a bare ASGI app on uvicorn."""
    process = subprocess.Popen([sys.executable, "-c", BARE_APP], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = f"http://127.0.0.1:{int(process.stdout.readline())}"
        return max(http_load(url, requests, 0, "health") for _ in range(rounds))
    finally:
        process.terminate()
        process.wait(30)


CLIENT_SCRIPT: Final = r"""
import asyncio, json, sys, time
host, port, clients, requests, events, path = sys.argv[1:7]
port, clients, requests, events = int(port), int(clients), int(requests), int(events)
payload = {"amount": 7, "currency": "EUR", "note": "coffee"}

async def client(n):
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    for i in range(requests):
        if path == "append":
            body = json.dumps({"expected_version": "any", "events": [
                {"event_type": "Paid", "data": payload} for _ in range(events)]}).encode()
            head = (f"POST /v1/streams/bench-{n} HTTP/1.1\r\nHost: x\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
            writer.write(head.encode() + body)
        else:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        if b" 20" not in status:
            errors += 1
    writer.close()
    return errors

async def main():
    started = time.perf_counter()
    errors = sum(await asyncio.gather(*(client(n) for n in range(clients))))
    print(json.dumps({"seconds": time.perf_counter() - started, "errors": errors}))

asyncio.run(main())
"""


def http_load(url: str, requests: int, events: int, path: str = "append") -> float:
    """Requests per second... as events per second, of CLIENTS raw keep-alive clients."""
    host, port = url.removeprefix("http://").split(":")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT_SCRIPT,
            host,
            port,
            str(CLIENTS),
            str(requests),
            str(events),
            path,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} requests failed")
    return CLIENTS * requests * max(events, 1) / float(result["seconds"])


def threads_load(store: eventvault.EventStore, calls: int, events: int) -> float:
    """Events per second of CLIENTS threads, each appending `events` per call."""
    barrier = threading.Barrier(CLIENTS + 1)

    def work(n: int) -> None:
        barrier.wait()
        for _ in range(calls):
            store.append_to_stream(
                f"bench-{n}",
                [NewEvent("Paid", PAYLOAD) for _ in range(events)],
                expected_version=StreamState.ANY,
            )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return CLIENTS * calls * events / (time.perf_counter() - started)


def read_rate(open_store: Callable[[], eventvault.EventStore]) -> float:
    with open_store() as store:
        started = time.perf_counter()
        count = sum(1 for _ in store.read_all())
        return count / (time.perf_counter() - started)


def sse_latencies(url: str, count: int) -> list[float]:
    """Seconds from sending an append over HTTP to its delivery to an SSE subscriber."""
    client = eventvault.connect(url)
    arrived: dict[int, float] = {}
    subscription = client.subscribe_to_all(after=client.head_position())

    def consume() -> None:
        for event in subscription:
            arrived[int(event.data["n"])] = time.perf_counter()  # type: ignore[call-overload]

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    sent: dict[int, float] = {}
    for n in range(count):
        sent[n] = time.perf_counter()
        client.append_to_stream(
            "sse-1", [NewEvent("Ping", {"n": n})], expected_version=StreamState.ANY
        )
        deadline = time.perf_counter() + 5
        while n not in arrived and time.perf_counter() < deadline:
            time.sleep(0.0002)
    subscription.close()
    client.close()
    return [arrived[n] - sent[n] for n in range(count) if n in arrived]


def async_tasks_rate(path: Path, total: int) -> float:
    """Events per second of 256 asyncio tasks appending one event each, `total` in all."""

    async def run() -> float:
        face = AsyncEventStore(eventvault.connect(str(path)))
        per_task = total // 256

        async def task(n: int) -> None:
            for _ in range(per_task):
                await face.append_to_stream(
                    f"task-{n}", [NewEvent("Paid", PAYLOAD)], expected_version=StreamState.ANY
                )

        started = time.perf_counter()
        await asyncio.gather(*(task(n) for n in range(256)))
        elapsed = time.perf_counter() - started
        await face.close()
        return 256 * per_task / elapsed

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--allow-tmpfs", action="store_true")
    parser.add_argument("--plain", action="store_true", help="plain-text table")
    options = parser.parse_args()
    rounds = 1 if options.quick else options.rounds
    calls = 3 if options.quick else 40
    big_calls = 1 if options.quick else 4
    log_events = 3_000 if options.quick else 100_000
    pings = 20 if options.quick else 500
    async_total = 512 if options.quick else 25_600

    figures: dict[str, object] = {"machine": machine_info(), "rounds": rounds}
    rows: list[tuple[str, ...]] = []
    with bench_dir("ev-bench-server-", options.dir, allow_memory_fs=options.allow_tmpfs) as folder:
        served_path = folder / "served.db"
        local_path = folder / "local.db"
        server = Server(served_path)
        try:
            local = eventvault.connect(str(local_path))
            for events, label, count in ((1, "1", calls), (100, "1b", big_calls)):
                contenders: dict[str, Callable[[], float]] = {
                    "http": functools.partial(http_load, server.url, count, events),
                    "in-process": functools.partial(threads_load, local, count, events),
                }
                samples = interleave(contenders, rounds)
                http, near = (
                    summarize(samples["http"], "best"),
                    summarize(samples["in-process"], "best"),
                )
                figures[f"measure_{label}"] = samples
                rows.append(
                    (
                        f"{label}. appends of {events} event(s), {CLIENTS} clients",
                        format_rate(http),
                        format_rate(near),
                        format_ratio(http / near),
                        ">= 0.5x",
                    )
                )
            ceiling = max(http_load(server.url, calls, 0, "health") for _ in range(rounds))
            figures["measure_5"] = ceiling
            rows.append(
                (
                    f"5. GET /health, {CLIENTS} clients (a store read each)",
                    format_rate(ceiling, "req/s"),
                    "",
                    "",
                    "",
                )
            )
            bare = bare_ceiling(calls, rounds)
            figures["measure_5b"] = bare
            rows.append(
                (
                    f"5b. bare ASGI app on uvicorn, {CLIENTS} clients",
                    format_rate(bare, "req/s"),
                    "",
                    "",
                    "",
                )
            )
            local.close()
            # A log of the same size on both sides for the reads.
            with eventvault.connect(str(served_path)) as store:
                missing = log_events - store.head_position()
                for start in range(0, max(missing, 0), 1000):
                    store.append_to_stream(
                        "fill-1",
                        [NewEvent("Paid", PAYLOAD) for _ in range(min(1000, missing - start))],
                        expected_version=StreamState.ANY,
                    )
                head = store.head_position()
            samples = interleave(
                {
                    "http": lambda: read_rate(lambda: eventvault.connect(server.url)),
                    "in-process": lambda: read_rate(
                        lambda: eventvault.connect(str(served_path), read_only=True)
                    ),
                },
                rounds,
            )
            http, near = (
                summarize(samples["http"], "best"),
                summarize(samples["in-process"], "best"),
            )
            figures["measure_2"] = {"events": head, **samples}
            rows.append(
                (
                    f"2. read_all of {head:,} events",
                    format_rate(http),
                    format_rate(near),
                    format_ratio(http / near),
                    ">= 0.5x",
                )
            )
            latencies = sorted(sse_latencies(server.url, pings))
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            figures["measure_3"] = {"p50_ms": p50, "p99_ms": p99, "samples": len(latencies)}
            rows.append(
                (
                    "3. append to SSE delivery",
                    f"p50 {p50:.2f} ms",
                    f"p99 {p99:.2f} ms",
                    "",
                    "p99 < 20 ms",
                )
            )
        finally:
            server.stop()
        raw = 1 / raw_commit_seconds(str(folder), 200 if not options.quick else 20, rounds)
        tasks = max(async_tasks_rate(folder / f"tasks-{n}.db", async_total) for n in range(rounds))
        figures["measure_4"] = {"tasks": tasks, "raw": raw}
        rows.append(
            (
                "4. 256 asyncio tasks, 1 event each",
                format_rate(tasks),
                format_rate(raw),
                format_ratio(tasks / raw),
                ">= 4x",
            )
        )
    print_table(
        Table(
            "eventvault serve against in-process (best of rounds)",
            ("measure", "eventvault", "baseline", "ratio", "target"),
            tuple(rows),
            frozenset({1, 2, 3}),
        ),
        plain=options.plain,
    )
    if options.json_path:
        write_json(options.json_path, figures)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
