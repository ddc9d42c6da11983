"""Servers in real processes for the tests of the HTTP API and the HTTP client engine."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from eventvault.testing.contract import EngineSpec

POSTGRES_URL = os.environ.get("EVENTVAULT_TEST_POSTGRES_URL")
HTTP_ENGINES = ["http-memory", "http-sqlite", "http-postgres"]


class ServerProcess:
    """A server process and the URL it listens on."""

    def __init__(self, command: list[str], cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
            raise RuntimeError(f"the server did not start: {line!r} {err[-2000:]}")
        self.url = f"http://127.0.0.1:{int(line.split()[-1])}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def _multistore(engine: str, where: str) -> ServerProcess:
    return ServerProcess([sys.executable, "-m", "tests.server.multistore", engine, where])


@pytest.fixture(scope="session")
def multistore_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, ServerProcess]]:
    """One multi-store server per engine, started when first asked for."""
    started: dict[str, ServerProcess] = {}
    folder = tmp_path_factory.mktemp("http-stores")

    class Lazy(dict[str, ServerProcess]):
        def __missing__(self, engine: str) -> ServerProcess:
            where = {"memory": "", "sqlite": str(folder), "postgres": POSTGRES_URL or ""}[engine]
            server = started[engine] = _multistore(engine, where)
            self[engine] = server
            return server

    try:
        yield Lazy()
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(params=HTTP_ENGINES)
def engine(
    request: pytest.FixtureRequest, multistore_servers: dict[str, ServerProcess]
) -> Iterator[EngineSpec]:
    """Each contract test runs once per engine behind a real server, through the HTTP client."""
    name = request.param
    kind = name.removeprefix("http-")
    if kind == "postgres" and POSTGRES_URL is None:
        if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
            pytest.fail(
                "EVENTVAULT_REQUIRE_POSTGRES is set but EVENTVAULT_TEST_POSTGRES_URL is not"
            )
        pytest.skip("set EVENTVAULT_TEST_POSTGRES_URL to run the contract on PostgreSQL")
    base = multistore_servers[kind].url
    made: list[str] = []

    def new_url() -> str:
        store = uuid.uuid4().hex[:12]
        made.append(store)
        return f"{base}/s/{store}"

    try:
        yield EngineSpec(name, new_url(), durable=True, multiprocess=True, new_url=new_url)
    finally:
        with httpx.Client(timeout=60) as client:
            for store in made:
                client.delete(f"{base}/s/{store}")
