"""`eventvault migrate`: PostgreSQL schema migrations, and nothing to do for embedded stores."""

from __future__ import annotations

import sys
import types

import pytest

from .cli_harness import Cli

POSTGRES_URL = "postgresql://app@db.internal/bank"


class FakeMigrations:
    """Stands in for `eventvault.store.postgres.migrate` and records its calls."""

    def __init__(self, applied: list[int]) -> None:
        self.applied = applied
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, **options: str) -> list[int]:
        self.calls.append((url, options))
        return self.applied


def install(monkeypatch: pytest.MonkeyPatch, applied: list[int]) -> FakeMigrations:
    migrations = FakeMigrations(applied)
    module = types.ModuleType("eventvault.store.postgres")
    module.migrate = migrations  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "eventvault.store.postgres", module)
    return migrations


def test_migrate_applies_postgres_migrations_in_the_given_schema(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = install(monkeypatch, [1, 2])
    result = cli("migrate", POSTGRES_URL, "--schema", "events")
    assert result.exit_code == 0, result.output
    assert migrations.calls == [(POSTGRES_URL, {"schema": "events"})]
    assert "applied schema migrations: 1, 2" in result.stdout


def test_migrate_without_schema_leaves_the_engine_default(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = install(monkeypatch, [])
    result = cli("migrate", POSTGRES_URL)
    assert result.exit_code == 0, result.output
    assert migrations.calls == [(POSTGRES_URL, {})]
    assert "the schema is up to date" in result.stdout


def test_migrate_takes_the_url_from_eventvault_url(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = install(monkeypatch, [1])
    result = cli("migrate", env={"EVENTVAULT_URL": POSTGRES_URL})
    assert result.exit_code == 0, result.output
    assert migrations.calls == [(POSTGRES_URL, {})]


@pytest.mark.parametrize("url", ["events.db", "sqlite:///events.db", "memory://"])
def test_migrate_of_an_embedded_store_has_nothing_to_do(cli: Cli, url: str) -> None:
    result = cli("migrate", url)
    assert result.exit_code == 0, result.output
    assert "migrates itself when opened; nothing to do" in result.stdout


def test_migrate_of_an_unknown_scheme_exits_2(cli: Cli) -> None:
    result = cli("migrate", "mysql://app@db/bank")
    assert result.exit_code == 2
    assert "unknown scheme 'mysql'" in result.stderr


def test_migrate_without_postgres_support_exits_2_naming_the_extra(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "eventvault.store.postgres", None)
    result = cli("migrate", POSTGRES_URL)
    assert result.exit_code == 2
    assert "pip install 'eventvault[postgres]'" in result.stderr
