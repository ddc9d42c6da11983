"""`eventvault serve` as a process: its defaults, its log, graceful shutdown, a kill and restart
mid-subscription, and clients that are slow or vanish."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

import eventvault
from eventvault import NewEvent, StreamState
from eventvault.errors import StoreUnavailableError
from tests.server.conftest import POSTGRES_URL
from tests.server.serving import Served

ANONYMOUS = ("--allow-anonymous", "read,write,admin")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_with_no_arguments_it_serves_eventvault_db_on_port_2113(tmp_path: Path) -> None:
    if not _free(2113):
        pytest.skip("port 2113 is taken on this machine")
    server = Served(cwd=tmp_path)
    try:
        assert server.url == "http://127.0.0.1:2113"
        assert server.store == "./eventvault.db"
        assert (tmp_path / "eventvault.db").exists()
        assert httpx.get(f"{server.url}/health").json()["engine"] == "sqlite"
        # No token and no anonymous access: everything but /health is refused.
        assert httpx.get(f"{server.url}/v1/head").status_code == 401
    finally:
        assert server.terminate() == 0


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs EVENTVAULT_TEST_POSTGRES_URL")
def test_it_logs_the_store_with_its_password_masked() -> None:
    assert POSTGRES_URL is not None
    user, _, rest = POSTGRES_URL.removeprefix("postgresql://").partition("@")
    schema = f"ev_serve_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in rest else "?"
    url = f"postgresql://{user.split(':')[0]}:hunter2@{rest}{separator}schema={schema}&auto_migrate=true"
    server = Served(url, "--port", "0", *ANONYMOUS)
    try:
        assert "hunter2" not in "".join(server.log)
        assert "***" in server.store
        assert "postgres engine" in "".join(server.log)
    finally:
        server.terminate()
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_sigterm_answers_the_appends_in_flight_and_ends_subscriptions_cleanly(
    tmp_path: Path,
) -> None:
    db = tmp_path / "graceful.db"
    server = Served(str(db), "--port", "0", *ANONYMOUS)
    acknowledged: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()
    subscribed = threading.Event()
    ended_cleanly = threading.Event()

    def subscriber() -> None:
        with httpx.stream("GET", f"{server.url}/v1/subscriptions/log", timeout=30) as stream:
            for chunk in stream.iter_bytes():
                if chunk.startswith(b": subscribed"):
                    subscribed.set()
        # The response ended with its terminating chunk: no RemoteProtocolError was raised.
        ended_cleanly.set()

    def writer(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for n in range(10_000):
                body = {
                    "expected_version": "any",
                    "events": [{"event_type": "E", "data": {"n": n}}],
                }
                try:
                    response = client.post(f"/v1/streams/w-{worker}", json=body)
                except httpx.TransportError:
                    return  # the server is gone: this append was never answered
                with lock:
                    if response.status_code == 201:
                        acknowledged.append(response.json()["global_position"])
                    else:
                        failures.append(response.text)

    threads = [threading.Thread(target=subscriber)]
    threads += [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    assert subscribed.wait(10)
    time.sleep(1.0)
    started = time.monotonic()
    assert server.terminate() == 0
    assert time.monotonic() - started < 15
    for thread in threads:
        thread.join(30)
    assert ended_cleanly.is_set()
    assert failures == []
    assert len(acknowledged) > 50
    with eventvault.connect(str(db), read_only=True) as store:
        stored = {event.global_position for event in store.read_all()}
    assert set(acknowledged) <= stored


def test_a_server_killed_and_restarted_mid_subscription_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "restart.db"
    server = Served(str(db), "--port", "0", *ANONYMOUS)
    port = server.url.rsplit(":", 1)[1]
    client = eventvault.connect(server.url)
    received: list[int] = []
    subscription = client.subscribe_to_all()
    stream_subscription = client.subscribe_to_stream("s-1")
    stream_received: list[int] = []

    def consume() -> None:
        for event in subscription:
            received.append(event.global_position)

    def consume_stream() -> None:
        for event in stream_subscription:
            stream_received.append(event.stream_position)

    consumers = [threading.Thread(target=consume), threading.Thread(target=consume_stream)]
    for consumer in consumers:
        consumer.start()
    try:
        for n in range(300):
            client.append_to_stream(
                "s-1",
                [NewEvent("E", {"n": n})],
                expected_version=n - 1 if n else StreamState.NO_STREAM,
            )
        _wait_for(lambda: len(received) == 300)
        server.kill()
        with pytest.raises(StoreUnavailableError):
            client.append_to_stream("s-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
        _wait_for(lambda: subscription.waiting)
        # Events written while no server runs, straight into the store.
        with eventvault.connect(str(db)) as store:
            for n in range(300, 450):
                store.append_to_stream("s-1", [NewEvent("E", {"n": n})], expected_version=n - 1)
        server = Served(str(db), "--port", port, *ANONYMOUS)
        for n in range(450, 600):
            client.append_to_stream("s-1", [NewEvent("E", {"n": n})], expected_version=n - 1)
        _wait_for(lambda: len(received) >= 600 and len(stream_received) >= 600)
        time.sleep(0.5)
        assert received == list(range(1, 601))
        assert stream_received == list(range(600))
        assert not subscription.waiting
    finally:
        subscription.close()
        stream_subscription.close()
        for consumer in consumers:
            consumer.join(10)
        client.close()
        server.terminate()


def _wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_a_subscriber_that_stops_reading_stalls_nobody_and_costs_bounded_memory(
    tmp_path: Path,
) -> None:
    server = Served(str(tmp_path / "slow.db"), "--port", "0", *ANONYMOUS)
    try:
        # A subscriber that reads its first chunk and then never reads again.
        stalled = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(b"GET /v1/subscriptions/log HTTP/1.1\r\nHost: x\r\n\r\n")
        stalled.recv(100)
        client = eventvault.connect(server.url)
        lively = client.subscribe_to_all()
        payload = {"pad": "x" * 2000}
        baseline = 0
        for round_number in range(6):
            started = time.monotonic()
            for n in range(500):
                client.append_to_stream(
                    f"s-{n % 10}", [NewEvent("E", payload)], expected_version=StreamState.ANY
                )
            # Appends and another subscriber go on at full speed while the stalled one waits.
            assert time.monotonic() - started < 30
            taken = 0
            while taken < 500:
                taken += len(lively.next_batch(timeout=10))
            if round_number == 1:
                baseline = _rss_kib(server.pid)
        # 2,000 events of 2 KB more than at the baseline: the stalled subscriber's backlog is
        # not buffered in the server (it would be 4 MB and growing).
        assert _rss_kib(server.pid) - baseline < 3_000
        lively.close()
        client.close()
        stalled.close()
    finally:
        server.terminate()


def test_clients_that_vanish_mid_append_or_mid_subscription_leak_no_connection(
    tmp_path: Path,
) -> None:
    server = Served(str(tmp_path / "vanish.db"), "--port", "0", *ANONYMOUS)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        httpx.get(f"{server.url}/health")
        time.sleep(0.5)
        before = server.open_sockets()
        for _ in range(30):
            # Half a body, then gone.
            cut = socket.create_connection(("127.0.0.1", port))
            cut.sendall(
                b"POST /v1/streams/cut-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 500\r\n\r\n{"expected_version": "any", "events": [{"eve'
            )
            cut.close()
            # A subscriber that leaves at once.
            gone = socket.create_connection(("127.0.0.1", port))
            gone.sendall(b"GET /v1/subscriptions/log HTTP/1.1\r\nHost: x\r\n\r\n")
            gone.recv(100)
            gone.close()
        deadline = time.monotonic() + 20
        while server.open_sockets() > before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.open_sockets() <= before
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/v1/head").json()["head_position"] == 0
            assert "eventvault_subscribers 0.0" in client.get("/metrics").text
    finally:
        server.terminate()


def test_serving_a_store_read_only_refuses_appends_with_403(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    with eventvault.connect(str(db)) as store:
        store.append_to_stream("s-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
    server = Served(str(db), "--port", "0", "--read-only", *ANONYMOUS)
    try:
        body = {"expected_version": "any", "events": [{"event_type": "E", "data": {}}]}
        response = httpx.post(f"{server.url}/v1/streams/s-1", json=body)
        assert response.status_code == 403
        assert response.json()["error"] == "ReadOnlyStoreError"
        assert httpx.get(f"{server.url}/v1/head").json()["head_position"] == 1
        assert "read-only" in "".join(server.log)
    finally:
        server.terminate()


def test_the_server_process_is_not_left_running(tmp_path: Path) -> None:
    server = Served(str(tmp_path / "gone.db"), "--port", "0", *ANONYMOUS)
    server.terminate()
    assert not os.path.exists(f"/proc/{server.pid}") or server.process.poll() is not None
