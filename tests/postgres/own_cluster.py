"""A PostgreSQL cluster of one test's own, which the test may stop at once and start again without
disturbing any other test: `scripts/postgres-test-cluster` in a folder of its own, on a port of
its own.

Use the `own_cluster` fixture (import it into the test module), or `OwnCluster` directly for a
cluster shared by the tests of a module.
"""

from __future__ import annotations

import getpass
import os
import pwd
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import psycopg
import pytest

__all__ = ["OwnCluster", "own_cluster", "require_server_binaries"]

SCRIPT: Final = Path(__file__).resolve().parents[2] / "scripts" / "postgres-test-cluster"
TIMEOUT: Final = 180


def require_server_binaries() -> None:
    """Skip the test where the PostgreSQL server binaries are missing (fail it where
    `EVENTVAULT_REQUIRE_POSTGRES` is set, as in CI): the script would install them."""
    debian = any(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if debian or shutil.which("pg_ctl") is not None:
        return
    if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
        pytest.fail("EVENTVAULT_REQUIRE_POSTGRES is set but no PostgreSQL binaries are installed")
    pytest.skip("the PostgreSQL server binaries are not installed (scripts/test installs them)")


class OwnCluster:
    """A throwaway cluster in a new folder under /tmp, run by scripts/postgres-test-cluster.

    Args:
        durable: fsync and synchronous_commit on. A test that stops the server at once and
            counts on what was acknowledged needs it: with the fast settings an immediate stop
            loses the last commits.
    """

    def __init__(self, *, durable: bool = True) -> None:
        # Directly in /tmp: as root the server runs as `postgres`, which must reach the folder.
        self.folder = Path(tempfile.mkdtemp(prefix="eventvault-own-pg.", dir="/tmp"))
        self.durable = durable
        self.url = ""
        self._bindir: Path | None = None

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.folder / "data"

    @property
    def port(self) -> int:
        """The port the server listens on (known once it started)."""
        return int((self.folder / "port").read_text())

    def _script(self, *args: str, **env: str) -> str:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("EVENTVAULT_PG_")}
        environment.update(env, EVENTVAULT_PG_DIR=str(self.folder))
        done = subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self) -> str:
        """Start the server: the first time on a free port, then again on that same port (after
        crash recovery, when it was stopped at once).

        Returns:
            The server's URL (the same every time).
        """
        mode = "--durable" if self.durable else "--fast"
        if (self.folder / "port").exists():
            self.url = self._script("start", mode)
        else:
            # Ports below 32768 first: outside Linux's range of ephemeral ports, no outgoing
            # connection takes the port while the server is down between a stop and a start.
            hints = " ".join(str(random.randrange(20000, 32000)) for _ in range(5))
            self.url = self._script("start", mode, "--free-port", EVENTVAULT_PG_PORT_HINTS=hints)
        if self._bindir is None:
            # The binaries of the running server, as it reports them: the ones that made it.
            with psycopg.connect(self.url, autocommit=True) as conn:
                row = conn.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'").fetchone()
            assert row is not None
            self._bindir = Path(str(row[0]))
        return self.url

    def stop_immediately(self) -> None:
        """`pg_ctl stop -m immediate`: every server process quits at once, without a checkpoint,
        as in a power cut or a killed container; the next start runs crash recovery."""
        assert self._bindir is not None, "the cluster was never started"
        pg_ctl = str(self._bindir / "pg_ctl")
        subprocess.run(
            [*self._as_owner(), pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )

    def remove(self) -> None:
        """Stop the server and delete the cluster and its folder."""
        self._script("stop")

    def _as_owner(self) -> list[str]:
        # pg_ctl refuses to run as root; as root the script runs the server as its own user.
        owner = pwd.getpwuid(self.data.stat().st_uid).pw_name
        if owner == getpass.getuser():
            return []
        return ["runuser", "-u", owner, "--"]


@pytest.fixture
def own_cluster() -> Iterator[OwnCluster]:
    """A durable cluster of the test's own, started; removed when the test ends."""
    require_server_binaries()
    cluster = OwnCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
