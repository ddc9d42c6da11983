"""A bounded load test on loopback: many concurrent clients append and read through a real server
for a fixed number of requests; every error is counted, and there must be none."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

import eventvault
from tests.server.serving import Served

CLIENTS = 32
REQUESTS = 60
"""Appends per client; each client also reads its stream back every tenth request."""


@pytest.mark.slow
def test_32_clients_append_and_read_concurrently_without_a_single_error(tmp_path: Path) -> None:
    db = tmp_path / "load.db"
    server = Served(str(db), "--port", "0", "--allow-anonymous", "read,write")
    outcomes: Counter[str] = Counter()
    acknowledged: list[int] = []

    async def client(number: int) -> None:
        limits = httpx.Limits(max_connections=2)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
            for n in range(REQUESTS):
                body = {
                    "expected_version": n - 1 if n else "no_stream",
                    "events": [{"event_type": "Loaded", "data": {"client": number, "n": n}}],
                }
                try:
                    response = await http.post(f"/v1/streams/load-{number}", json=body)
                    if response.status_code == 201:
                        acknowledged.append(response.json()["global_position"])
                    outcomes[str(response.status_code)] += 1
                    if n % 10 == 9:
                        read = await http.get(f"/v1/streams/load-{number}")
                        outcomes[f"read {read.status_code}"] += 1
                        assert len(read.text.splitlines()) == n + 1
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(CLIENTS))), 120)
        return time.perf_counter() - started

    try:
        elapsed = asyncio.run(run())
    finally:
        server.terminate()
    appends = CLIENTS * REQUESTS
    assert outcomes == Counter({"201": appends, "read 200": appends // 10}), outcomes
    assert len(set(acknowledged)) == appends
    with eventvault.connect(str(db), read_only=True) as store:
        assert store.head_position() == appends
        for number in range(CLIENTS):
            data = [e.data["n"] for e in store.read_stream(f"load-{number}")]
            assert data == list(range(REQUESTS))
    print(f"{appends} appends and {appends // 10} reads by {CLIENTS} clients in {elapsed:.1f} s")
