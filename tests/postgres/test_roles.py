"""The two roles of docs/postgres.md, set up by running its SQL as written, can do their jobs."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import psycopg
import pytest

import eventvault.audit  # noqa: F401  (its tables are granted: migrate them, as `eventvault migrate` does)
from eventvault import NewEvent, StreamState
from eventvault.aggregates import StoreSnapshotStore
from eventvault.aggregates.snapshots import Snapshot
from eventvault.errors import StorageError
from eventvault.projections import ProjectionRunner, reset
from eventvault.projections.state import read_history
from eventvault.schema import SchemaRegistry
from eventvault.server.tokens import Authorizer, create_token
from eventvault.store.migrate import migrate
from eventvault.store.postgres import PostgresEventStore
from tests.postgres.conftest import with_options
from tests.projections.model import Totals, deposit

DOC = Path(__file__).parents[2] / "docs" / "postgres.md"


def _roles_sql() -> tuple[list[str], list[str]]:
    """The statements of the Roles section: those before `eventvault migrate`, and after."""
    section = DOC.read_text().split("## Roles", 1)[1]
    block = section.split("```sql", 1)[1].split("```", 1)[0]
    before, after = block.split("-- after `eventvault migrate`", 1)

    def statements(text: str) -> list[str]:
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]

    return statements(before), statements(after.split("\n", 1)[1])


@pytest.fixture
def roles(server_url: str) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    names = {
        "owner": f"ev_owner_{suffix}",
        "app": f"ev_app_{suffix}",
        "schema": f"ev_roles_{suffix}",
    }
    yield names
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{names["schema"]}" CASCADE')
        for role in (names["app"], names["owner"]):
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def _named(statement: str, names: dict[str, str]) -> str:
    statement = statement.replace("eventvault_owner", names["owner"])
    statement = statement.replace("eventvault_app", names["app"])
    return re.sub(r"\beventvault\b", names["schema"], statement)


def _as(url: str, user: str, schema: str) -> str:
    return with_options(url.replace("postgres@", f"{user}@", 1), schema=schema)


def _set_up(server_url: str, roles: dict[str, str]) -> None:
    before, after = _roles_sql()
    with psycopg.connect(server_url, autocommit=True) as admin:
        for statement in before:
            admin.execute(_named(statement, roles))
        # The owner migrates the schema it was given, with no rights on the database itself.
        migrate(_as(server_url, roles["owner"], roles["schema"]))
        for statement in after:
            admin.execute(_named(statement, roles))


def test_the_documented_roles_migrate_and_then_read_and_write(
    server_url: str, roles: dict[str, str]
) -> None:
    _set_up(server_url, roles)
    with PostgresEventStore(_as(server_url, roles["app"], roles["schema"])) as store:
        first = store.append_to_stream(
            "account-1",
            [NewEvent("Opened", {"owner": "Ada"})],
            expected_version=StreamState.NO_STREAM,
        )
        store.append_to_stream("account-1", [NewEvent("Deposited", {"n": 1})], expected_version=0)
        assert [e.event_type for e in store.read_all()] == ["Opened", "Deposited"]
        assert store.get_stream_version("account-1") == 1
        with store.subscribe_to_all() as sub:
            assert [e.global_position for e in sub.next_batch(timeout=5)] == [
                first.global_position,
                first.global_position + 1,
            ]
        assert not store.horizon_status().blocked
        snapshots = StoreSnapshotStore(store)
        now = datetime.now(UTC)
        snapshots.save(Snapshot("account-1", 1, 1, msgspec.msgpack.encode({"b": 1}), now, now))
        latest = snapshots.latest("account-1", schema_version=1)
        assert latest is not None and latest.version == 1


def test_the_documented_roles_run_projections_keep_the_registry_and_look_tokens_up(
    server_url: str, roles: dict[str, str]
) -> None:
    _set_up(server_url, roles)
    with PostgresEventStore(_as(server_url, roles["owner"], roles["schema"])) as owner:
        _, secret = create_token(owner, "ada", ["read"])

    with PostgresEventStore(_as(server_url, roles["app"], roles["schema"])) as store:
        store.append_to_stream(
            "account-1", [deposit(5), deposit(7)], expected_version=StreamState.NO_STREAM
        )
        # A runner takes its lease, creates its version's table and view, applies and records.
        totals = Totals()
        assert ProjectionRunner(store, [totals]).catch_up(timeout=60)
        view = "SELECT balance, events FROM {schema}.totals WHERE stream = %s"
        assert store.query(view, ("account-1",)) == [(12, 2)]
        # A reset empties the tables and records itself after the first switch; the runner rebuilds.
        reset(store, totals, actor="ops")
        assert [entry.action for entry in read_history(store, "totals")] == ["switch", "reset"]
        assert ProjectionRunner(store, [totals]).catch_up(timeout=60)
        assert store.query(view, ("account-1",)) == [(12, 2)]

        registry = SchemaRegistry(store, actor="ops")
        schema = {"type": "object", "properties": {"amount": {"type": "integer"}}}
        assert registry.register("Deposited", schema).version == 1
        assert [v.version for v in registry.versions("Deposited")] == [1]

        principal = asyncio.run(Authorizer(store).authenticate(f"Bearer {secret}"))
        assert principal.actor == "ada" and principal.scopes == ("read",)
        # Only the owner makes tokens: the application role cannot grant itself one.
        with pytest.raises(StorageError, match="permission denied for table server_tokens"):
            create_token(store, "mallory", ["admin"])
