"""`scripts/test` gives every run its own PostgreSQL and takes it away again, whatever happens.

Each test runs the real `scripts/test` (and `scripts/postgres-test-cluster`) from copies of this
checkout, as a developer or CI would, with a one-test suite, the probe, that reports the cluster
it was given (its URL, port and data folder, read from the server itself) and then waits as told.
The copies share this run's interpreter instead of building a virtualenv each.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 120

PROBE = textwrap.dedent(
    """\
    import json
    import os
    import time
    from pathlib import Path

    import psycopg


    def test_probe() -> None:
        url = os.environ["EVENTVAULT_TEST_POSTGRES_URL"]
        with psycopg.connect(url) as conn:
            port = conn.execute("SHOW port").fetchone()[0]
            data = conn.execute("SHOW data_directory").fetchone()[0]
        report = Path(os.environ["PROBE_REPORT"])
        partial = report.with_suffix(".partial")
        partial.write_text(
            json.dumps({"url": url, "port": int(port), "data": data, "pid": os.getpid()})
        )
        partial.rename(report)
        # Hold the cluster until every expected report exists (the runs overlap), or as told.
        peers = [Path(path) for path in os.environ.get("PROBE_WAIT_FOR", "").split()]
        deadline = time.monotonic() + float(os.environ.get("PROBE_WAIT_SECONDS", "0"))
        while not all(peer.exists() for peer in peers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(peer.exists() for peer in peers), "the other run never reported"
        assert os.environ.get("PROBE_FAIL") is None, "this run was asked to fail"
    """
)

# What a run may print on stderr: the cluster script's progress and pg_ctl's.
EXPECTED_STDERR = (
    "postgres-test-cluster: ",
    "waiting for server to start",
    "server started",
)


@dataclass(frozen=True)
class Report:
    """What the probe saw of the cluster its run gave it."""

    url: str
    port: int
    data: Path
    pid: int

    @property
    def folder(self) -> Path:
        """The cluster's folder: its data directory's parent."""
        return self.data.parent


@dataclass(frozen=True)
class Checkout:
    """A copy of this checkout's scripts with the probe as its whole test suite."""

    root: Path
    venv: Path

    def command(self) -> list[str]:
        """`scripts/test` of this checkout, quiet, leaving no pytest cache behind."""
        return ["bash", str(self.root / "scripts" / "test"), "-q", "-p", "no:cacheprovider"]

    def env(self, report: Path, **extra: str) -> dict[str, str]:
        """The environment of a run: none of this run's cluster settings, the probe's own."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("EVENTVAULT_", "PYTEST_", "PROBE_"))
        }
        return {
            **inherited,
            "EVENTVAULT_VENV": str(self.venv),
            "PROBE_REPORT": str(report),
            **extra,
        }


@pytest.fixture(scope="module", autouse=True)
def _postgres_binaries() -> None:
    # Where scripts/postgres-test-cluster looks for them.
    debian = any(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not debian and shutil.which("pg_ctl") is None:
        if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
            pytest.fail(
                "EVENTVAULT_REQUIRE_POSTGRES is set but no PostgreSQL binaries are installed"
            )
        pytest.skip("the PostgreSQL server binaries are not installed (scripts/test installs them)")


@pytest.fixture
def private(tmp_path: Path) -> Path:
    """A folder only its owner may enter: as root, the `postgres` user cannot change into it."""
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    return folder


def make_checkout(parent: Path, name: str) -> Checkout:
    """A copy of `scripts/` and `pyproject.toml`, a probe suite, and a virtualenv that is this one.

    `scripts/_venv.sh` installs nothing when the venv's stamp is newer than `pyproject.toml`;
    its `python` runs this interpreter, which has eventvault and psycopg.
    """
    root = parent / name
    (root / "tests").mkdir(parents=True)
    shutil.copytree(ROOT / "scripts", root / "scripts")
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "tests" / "test_probe.py").write_text(PROBE, encoding="utf-8")
    venv = parent / f"{name}-venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    stamp = venv / ".eventvault-installed"
    stamp.touch()
    later = time.time() + 3600
    os.utime(stamp, (later, later))
    return Checkout(root, venv)


def read_report(path: Path) -> Report:
    fields = json.loads(path.read_text(encoding="utf-8"))
    return Report(fields["url"], fields["port"], Path(fields["data"]), fields["pid"])


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    """Wait until `path` exists; fail with the run's output if the run ends first."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while not path.exists():
        if process.poll() is not None:
            stdout, stderr = process.communicate()
            pytest.fail(f"the run ended before its probe reported:\n{stdout}\n{stderr}")
        assert time.monotonic() < deadline, f"no report at {path}"
        time.sleep(0.05)


def is_listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def server_processes(data: Path) -> list[int]:
    """The pids of processes whose command line names the data directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(data).encode() in cmdline.split(b"\0"):
            found.append(int(proc.name))
    return found


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_cluster_gone(report: Report) -> None:
    """Nothing of the cluster is left: no server, no listener, no folder."""
    assert server_processes(report.data) == []
    assert not is_listening(report.port)
    assert not report.folder.exists()


def assert_gone(report: Report) -> None:
    """Nothing of the run is left: neither its cluster nor its pytest."""
    assert_cluster_gone(report)
    assert not is_alive(report.pid)


def assert_quiet(stderr: str) -> None:
    """stderr holds the cluster's progress and nothing else: no warning, as root neither."""
    unexpected = [line for line in stderr.splitlines() if not line.startswith(EXPECTED_STDERR)]
    assert unexpected == [], stderr


def start(
    checkout: Checkout, env: Mapping[str, str], *, new_session: bool = False
) -> subprocess.Popen[str]:
    """Start `scripts/test` in the checkout; `new_session` gives it a process group of its own."""
    return subprocess.Popen(
        checkout.command(),
        cwd=checkout.root,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )


@pytest.fixture
def runs() -> Iterator[list[subprocess.Popen[str]]]:
    """Runs a test starts; any still going at the end is ended, so no cluster outlives the test."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.communicate(timeout=RUN_TIMEOUT)


def test_two_runs_from_two_checkouts_at_once_each_get_their_own_cluster_and_leave_nothing(
    private: Path, tmp_path: Path, runs: list[subprocess.Popen[str]]
) -> None:
    checkouts = [make_checkout(private, name) for name in ("one", "two")]
    reports = [tmp_path / "one.json", tmp_path / "two.json"]
    for checkout, report in zip(checkouts, reports, strict=True):
        env = checkout.env(
            report,
            PROBE_WAIT_FOR=" ".join(str(path) for path in reports),
            PROBE_WAIT_SECONDS=str(RUN_TIMEOUT),
        )
        runs.append(start(checkout, env))

    outputs = [process.communicate(timeout=RUN_TIMEOUT) for process in runs]

    for process, (stdout, stderr) in zip(runs, outputs, strict=True):
        assert process.returncode == 0, stdout + stderr
        assert "1 passed" in stdout
        assert_quiet(stderr)
    one, two = (read_report(path) for path in reports)
    assert one.port != two.port
    assert one.folder != two.folder
    assert_gone(one)
    assert_gone(two)


def test_a_failing_run_on_an_explicit_port_stops_the_cluster_it_started(
    private: Path, tmp_path: Path
) -> None:
    checkout = make_checkout(private, "checkout")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = tmp_path / "report.json"
    env = checkout.env(report, EVENTVAULT_PG_PORT=str(port), PROBE_FAIL="1")

    result = subprocess.run(
        checkout.command(),
        cwd=checkout.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "asked to fail" in result.stdout
    seen = read_report(report)
    assert seen.port == port
    assert seen.folder == Path(f"/tmp/eventvault-pg-{port}")
    assert_gone(seen)


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_the_script_alone_ends_pytest_and_removes_the_cluster(
    sent: signal.Signals, private: Path, tmp_path: Path, runs: list[subprocess.Popen[str]]
) -> None:
    checkout = make_checkout(private, "checkout")
    report = tmp_path / "report.json"
    never = str(tmp_path / "never")
    process = start(checkout, checkout.env(report, PROBE_WAIT_FOR=never, PROBE_WAIT_SECONDS="600"))
    runs.append(process)
    wait_for(report, process)

    process.send_signal(sent)
    _, stderr = process.communicate(timeout=RUN_TIMEOUT)

    # pytest ended by the same signal, whose status the script passes on.
    assert process.returncode == 128 + sent
    assert f"interrupted ({sent.name})" in stderr
    assert_gone(read_report(report))


def test_ctrl_c_ends_pytest_cleanly_and_removes_the_cluster(
    private: Path, tmp_path: Path, runs: list[subprocess.Popen[str]]
) -> None:
    checkout = make_checkout(private, "checkout")
    report = tmp_path / "report.json"
    never = str(tmp_path / "never")
    env = checkout.env(report, PROBE_WAIT_FOR=never, PROBE_WAIT_SECONDS="600")
    # A terminal's Ctrl-C signals the whole foreground process group.
    process = start(checkout, env, new_session=True)
    runs.append(process)
    wait_for(report, process)

    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)

    # pytest's own exit on KeyboardInterrupt, with its summary: it was interrupted once.
    assert process.returncode == 2, stdout + stderr
    assert "KeyboardInterrupt" in stdout
    assert "Traceback" not in stderr
    assert_gone(read_report(report))


def test_a_port_taken_before_the_server_binds_it_is_replaced_and_a_named_cluster_is_kept(
    private: Path, tmp_path: Path
) -> None:
    checkout = make_checkout(private, "checkout")
    # Under /tmp: the server's user must reach the folder, and pytest's tmp_path is private.
    folder = Path(tempfile.mkdtemp(prefix="eventvault-pg.", dir="/tmp"))
    cluster_env = {
        **checkout.env(tmp_path / "unused.json"),
        "EVENTVAULT_PG_DIR": str(folder),
    }
    cluster = [str(checkout.root / "scripts" / "postgres-test-cluster")]
    with socket.socket() as taken:
        # Offered first, as if the kernel had found it free just before someone took it.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        started = subprocess.run(
            ["bash", *cluster, "start", "--free-port"],
            env={**cluster_env, "EVENTVAULT_PG_PORT_HINTS": str(taken_port)},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    try:
        assert started.returncode == 0, started.stderr
        assert f"port {taken_port} was taken before the server could bind it" in started.stderr
        assert f":{taken_port}/" not in started.stdout

        report = tmp_path / "report.json"
        reused = subprocess.run(
            checkout.command(),
            cwd=checkout.root,
            env={**checkout.env(report), "EVENTVAULT_PG_DIR": str(folder)},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )

        assert reused.returncode == 0, reused.stdout + reused.stderr
        seen = read_report(report)
        assert seen.url == started.stdout.strip()
        assert seen.folder == folder
        status = subprocess.run(
            ["bash", *cluster, "status"],
            env=cluster_env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert status.returncode == 0, "a cluster the run did not start was stopped"
        assert is_listening(seen.port)
    finally:
        subprocess.run(
            ["bash", *cluster, "stop"], env=cluster_env, capture_output=True, check=False
        )
    assert_cluster_gone(seen)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_a_cluster_folder_the_server_user_cannot_reach_is_refused_naming_it(
    private: Path,
) -> None:
    checkout = make_checkout(private, "checkout")
    folder = private / "cluster"
    env = {**checkout.env(private / "unused.json"), "EVENTVAULT_PG_DIR": str(folder)}

    result = subprocess.run(
        ["bash", str(checkout.root / "scripts" / "postgres-test-cluster"), "start", "--free-port"],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )

    assert result.returncode == 1
    assert f"postgres cannot write to {folder}" in result.stderr
    assert "choose another EVENTVAULT_PG_DIR" in result.stderr
    assert not (folder / "data").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"EVENTVAULT_PG_PORT": "25999"},
            "--free-port picks the port itself: unset EVENTVAULT_PG_PORT (25999)",
        ),
        ({}, "--free-port needs EVENTVAULT_PG_DIR"),
    ],
    ids=["with-a-port", "without-a-folder"],
)
def test_free_port_without_a_folder_or_with_a_port_is_refused_saying_why(
    env: dict[str, str], message: str, private: Path
) -> None:
    checkout = make_checkout(private, "checkout")
    result = subprocess.run(
        ["bash", str(checkout.root / "scripts" / "postgres-test-cluster"), "start", "--free-port"],
        env={**checkout.env(private / "unused.json"), **env},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert not Path("/tmp/eventvault-pg-25999").exists()


def test_an_explicit_port_in_use_is_refused_naming_it_and_nothing_is_left(
    private: Path,
) -> None:
    checkout = make_checkout(private, "checkout")
    cluster = ["bash", str(checkout.root / "scripts" / "postgres-test-cluster")]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**checkout.env(private / "unused.json"), "EVENTVAULT_PG_PORT": str(port)}
        result = subprocess.run(
            [*cluster, "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        subprocess.run([*cluster, "stop"], env=env, capture_output=True, check=True)

    assert result.returncode == 1
    assert f"port {port} is in use: choose another EVENTVAULT_PG_PORT" in result.stderr
    assert not Path(f"/tmp/eventvault-pg-{port}").exists()
