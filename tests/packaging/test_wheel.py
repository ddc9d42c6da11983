"""A wheel built from this repository works where no checkout is: every file it needs is inside.

The wheel is built as a user would build it (`pip wheel`, hatchling in an isolated build
environment) and installed with its `cli` and `postgres` extras in a new virtualenv; everything
then runs in an empty folder, with nothing of the checkout on `sys.path`: the README's
quickstart, `eventvault migrate` on PostgreSQL and on a SQLite file, the command line, and the
bank example with snapshots (which reads the snapshot tables' SQL from the package).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from ..test_readme import README, code_blocks, runnable_python

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "eventvault"
FIXTURES = ROOT / "tests" / "fixtures" / "stores"
TIMEOUT = 300


def package_files() -> list[PurePosixPath]:
    """Every file of the package in the source tree, relative to `src/`: what a wheel must hold.

    Compiled bytecode is left out: Python writes it beside the sources, and no wheel ships it.
    """
    return sorted(
        PurePosixPath(path.relative_to(PACKAGE.parent).as_posix())
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def clean_env() -> dict[str, str]:
    """This environment without what could put the checkout or a store on the way."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
        and not key.startswith("EVENTVAULT_")
    }


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command; fail with its output when it fails."""
    result = subprocess.run(
        argv, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, (
        f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)], out)
    (built,) = out.glob("eventvault-*.whl")
    return built


@dataclass(frozen=True)
class Installed:
    """A virtualenv holding the wheel, and an empty folder to work in."""

    venv: Path
    work: Path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def eventvault(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The installed `eventvault` command, run in the work folder."""
        return run([str(self.venv / "bin" / "eventvault"), *args], self.work)


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    venv = base / "venv"
    run([sys.executable, "-m", "venv", str(venv)], base)
    run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[cli,postgres]"], base
    )
    work = base / "work"
    work.mkdir()
    return Installed(venv, work)


@pytest.fixture
def postgres_url() -> str:
    """The test server's URL."""
    url = os.environ.get("EVENTVAULT_TEST_POSTGRES_URL")
    if url is None:
        if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
            pytest.fail(
                "EVENTVAULT_REQUIRE_POSTGRES is set but EVENTVAULT_TEST_POSTGRES_URL is not"
            )
        pytest.skip("set EVENTVAULT_TEST_POSTGRES_URL to run the wheel's migrations on PostgreSQL")
    return url


def test_the_wheel_holds_every_file_of_the_package_and_nothing_else(wheel: Path) -> None:
    expected = package_files()
    with zipfile.ZipFile(wheel) as archive:
        names = {PurePosixPath(name) for name in archive.namelist()}
    package = {name for name in names if name.parts[0] == "eventvault"}
    others = {name for name in names - package if not name.parts[0].endswith(".dist-info")}

    assert sorted(set(expected) - package) == []
    assert sorted(package - set(expected)) == []
    assert sorted(others) == []


def test_the_package_files_include_the_sql_the_engines_and_features_read() -> None:
    # What `package_files` must see for the test above to mean anything.
    data = {str(path) for path in package_files() if path.suffix != ".py"}
    assert "eventvault/py.typed" in data
    for folder in (
        "eventvault/store/sqlite/migrations/",
        "eventvault/store/postgres/migrations/",
        "eventvault/aggregates/migrations/",
    ):
        assert any(name.startswith(folder) and name.endswith(".sql") for name in data), folder


@pytest.mark.slow
def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    result = run(
        [installed.python, "-I", "-c", "import eventvault; print(eventvault.__file__)"],
        installed.work,
    )
    location = Path(result.stdout.strip())
    assert location.is_relative_to(installed.venv)
    assert not location.is_relative_to(ROOT)


@pytest.mark.slow
def test_the_readme_quickstart_runs_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    blocks = runnable_python(code_blocks(README.read_text(encoding="utf-8")))
    script = tmp_path / "quickstart.py"
    script.write_text("\n\n".join(block.body for block in blocks), encoding="utf-8")

    result = run([installed.python, "-I", str(script)], installed.work)

    assert "0 AccountOpened {'owner': 'Ada'}" in result.stdout
    assert "delivered 0 OrderPlaced" in result.stdout
    assert (installed.work / "quickstart.db").is_file()


@pytest.mark.slow
def test_eventvault_migrate_from_the_wheel_sets_up_postgresql_and_sqlite(
    installed: Installed, postgres_url: str
) -> None:
    import psycopg

    schema = f"ev_wheel_{uuid.uuid4().hex[:12]}"
    try:
        first = installed.eventvault("migrate", postgres_url, "--schema", schema)
        again = installed.eventvault("migrate", postgres_url, "--schema", schema)
        store = f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema={schema}"
        installed.eventvault(
            "append", "account-1", "AccountOpened", '{"owner": "Ada"}', "--url", store
        )
        stats = json.loads(installed.eventvault("stats", "--json", "--url", store).stdout)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    # The store's own three, and one each: snapshots, schemas, projections, the server's tokens.
    assert "applied 7 migration(s)" in first.stdout
    assert " schemas " in first.stdout
    assert " projections " in first.stdout
    assert "no migration applied" in again.stdout
    assert stats["event_count"] == 1

    # A store written by the release before the storage schema changed, upgraded in place.
    sqlite = installed.work / "migrated.db"
    shutil.copyfile(FIXTURES / "sqlite-schema-1.db", sqlite)
    installed.eventvault("migrate", f"sqlite:///{sqlite}")
    stats = json.loads(installed.eventvault("stats", "--json", "--url", str(sqlite)).stdout)
    assert stats["event_count"] == 7
    read = installed.eventvault("read", "account-0", "--json", "--url", str(sqlite))
    assert [json.loads(line)["event_type"] for line in read.stdout.splitlines()] == [
        "AccountOpened",
        "MoneyDeposited",
    ]


@pytest.mark.slow
def test_the_command_line_from_the_wheel_appends_reads_exports_and_imports(
    installed: Installed,
) -> None:
    store, restored, backup = "cli.db", "restored.db", "backup.jsonl"
    installed.eventvault("append", "account-7", "AccountOpened", '{"owner": "Ada"}', "--url", store)
    installed.eventvault("append", "account-7", "MoneyDeposited", '{"amount": 5}', "--url", store)
    installed.eventvault("append", "order-1", "OrderPlaced", "--url", store)

    read = installed.eventvault("read", "account-7", "--json", "--url", store)
    log = installed.eventvault("log", "--json", "--url", store)
    installed.eventvault("export", backup, "--url", store)
    installed.eventvault("import", backup, "--url", restored)
    stats = json.loads(installed.eventvault("stats", "--json", "--url", restored).stdout)

    assert [json.loads(line)["data"] for line in read.stdout.splitlines()] == [
        {"owner": "Ada"},
        {"amount": 5},
    ]
    assert [json.loads(line)["stream_name"] for line in log.stdout.splitlines()] == [
        "account-7",
        "account-7",
        "order-1",
    ]
    assert (stats["event_count"], stats["stream_count"]) == (3, 2)
    restored_log = installed.eventvault("log", "--json", "--url", restored)
    assert restored_log.stdout == log.stdout


@pytest.mark.slow
def test_the_bank_example_with_snapshots_runs_on_the_wheel(installed: Installed) -> None:
    app = ROOT / "examples" / "bank" / "app.py"
    result = run(
        [installed.python, "-I", str(app), "--url", "bank.db", "--snapshot-every", "2"],
        installed.work,
    )
    assert result.stdout
    assert (installed.work / "bank.db").is_file()
