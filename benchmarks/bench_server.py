"""The HTTP server against the same work done in-process, side by side in one run.

| # | over HTTP (`eventvault serve`, another process) | in-process baseline | target |
| --- | --- | --- | --- |
| 1 | 64 keep-alive clients, appends of 1 event each | 64 threads, `append_to_stream` of 1 event | >= 0.5x |
| 1b | the same, appends of 100 events each | the same, 100 events per call | >= 0.5x |
| 1c | 1 against a bare ASGI app on uvicorn that only appends (no token, no decoding, no metrics) | as 1 | the ceiling of 1 |
| 2 | `read_all()` of the log through the HTTP client engine | `read_all()` of the same file | >= 0.5x |
| 3 | append (HTTP) to delivery to an SSE subscriber, p50 and p99 | | p99 < 20 ms |
| 4 | 256 asyncio tasks appending 1 event each, `AsyncEventStore` | raw INSERT+COMMIT, 1 thread | >= 4x |
| 5 | 64 clients asking `GET /health` of the server (a worker thread reads the head) | | |
| 5b | the same against a bare ASGI app on uvicorn (no framework, no store): Python's ceiling | | |

The HTTP clients of measure 1 are a small asyncio HTTP/1.1 client written here (keep-alive,
one request in flight per connection, each request's bytes built once; uvloop when installed),
in a process of their own, so that the figure is the server's and not a client library's; the
JSON records the client's CPU time per request, since it shares the machine's cores. Every contender of a measure runs once per round, in an
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
sock.listen(2048)  # clients may connect before uvicorn serves: they queue
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
"""


APPEND_APP: Final = r"""
import socket, sys, uvicorn, eventvault
from eventvault import AsyncEventStore, NewEvent, StreamState

face = AsyncEventStore(eventvault.connect(sys.argv[1]))
payload = {"amount": 7, "currency": "EUR", "note": "coffee"}

async def app(scope, receive, send):
    # Only the store's append: no token, no body decoding, no metrics. The body is read
    # (and ignored) and one event of the benchmark's payload appended per request.
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    result = await face.append_to_stream(
        scope["path"].rpartition("/")[2], [NewEvent("Paid", payload)],
        expected_version=StreamState.ANY)
    body = b'{"stream_position":%d,"global_position":%d}' % (
        result.stream_position, result.global_position)
    await send({"type": "http.response.start", "status": 201, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(2048)  # clients may connect before uvicorn serves: they queue
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(
    app, log_level="warning", lifespan="off", access_log=False)).run(sockets=[sock])
"""


class BareApp:
    """One of the scripts above on uvicorn, in a process of its own."""

    def __init__(self, script: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def bare_ceiling(requests: int, rounds: int) -> float:
    """Requests per second of CLIENTS clients against a bare ASGI app on uvicorn."""
    app = BareApp(BARE_APP)
    try:
        return max(http_load(app.url, requests, 0, "health") for _ in range(rounds))
    finally:
        app.stop()


CLIENT_SCRIPT: Final = r"""
import asyncio, json, sys, time
host, port, clients, requests, events, path = sys.argv[1:7]
port, clients, requests, events = int(port), int(clients), int(requests), int(events)
payload = {"amount": 7, "currency": "EUR", "note": "coffee"}

def request_of(n):
    # Each client sends the same bytes every time: built once, not once per request.
    if path != "append":
        return b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    body = json.dumps({"expected_version": "any", "events": [
        {"event_type": "Paid", "data": payload} for _ in range(events)]}).encode()
    head = (f"POST /v1/streams/bench-{n} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body

class Client(asyncio.Protocol):
    # One request in flight; the next is written once the whole response (by its
    # Content-Length) has arrived.
    def __init__(self, n, done):
        self.request, self.left, self.done = request_of(n), requests, done
        self.buffer, self.errors = b"", 0

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        buffer = self.buffer + data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            status, *lines = buffer[:end].split(b"\r\n")
            length = 0
            for line in lines:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            if len(buffer) < end + 4 + length:
                break
            buffer = buffer[end + 4 + length:]
            if status.split(b" ")[1][:1] != b"2":
                self.errors += 1
            self.left -= 1
            if self.left:
                self.transport.write(self.request)
            else:
                self.transport.close()
                self.done.set_result(self.errors)
        self.buffer = buffer

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("the server closed the connection"))

async def main():
    loop = asyncio.get_running_loop()
    done = [loop.create_future() for _ in range(clients)]
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(clients):
        await loop.create_connection(lambda n=n: Client(n, done[n]), host, port)
    errors = sum(await asyncio.gather(*done))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "errors": errors, "cpu": time.process_time() - cpu}))

try:
    import uvloop
except ImportError:
    asyncio.run(main())
else:
    uvloop.run(main())
"""


def http_load(
    url: str, requests: int, events: int, path: str = "append", cpu: list[float] | None = None
) -> float:
    """Events per second (requests per second when `events` is 0) of CLIENTS raw keep-alive
    clients, each sending `requests` requests; the client process's CPU seconds per request
    are added to `cpu` when given."""
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
    if cpu is not None:
        cpu.append(float(result["cpu"]) / (CLIENTS * requests))
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
        append_only = BareApp(APPEND_APP, str(folder / "append-only.db"))
        try:
            local = eventvault.connect(str(local_path))
            for events, label, count in ((1, "1", calls), (100, "1b", big_calls)):
                client_cpu: list[float] = []
                contenders: dict[str, Callable[[], float]] = {
                    "http": functools.partial(http_load, server.url, count, events, cpu=client_cpu),
                    "in-process": functools.partial(threads_load, local, count, events),
                }
                if events == 1:
                    contenders["append-only app"] = functools.partial(
                        http_load, append_only.url, count, events
                    )
                samples = interleave(contenders, rounds)
                http, near = (
                    summarize(samples["http"], "best"),
                    summarize(samples["in-process"], "best"),
                )
                figures[f"measure_{label}"] = samples
                figures[f"measure_{label}_client_cpu_us"] = [s * 1e6 for s in client_cpu]
                rows.append(
                    (
                        f"{label}. appends of {events} event(s), {CLIENTS} clients",
                        format_rate(http),
                        format_rate(near),
                        format_ratio(http / near),
                        ">= 0.5x",
                    )
                )
                if events == 1:
                    bare_append = summarize(samples["append-only app"], "best")
                    rows.append(
                        (
                            "1c. the same against a bare ASGI app that only appends",
                            format_rate(bare_append),
                            format_rate(near),
                            format_ratio(bare_append / near),
                            "the ceiling of 1",
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
            append_only.stop()
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
