"""SQL through the names a PostgreSQL store takes from outside: a schema name in the URL is
refused before anything reaches the server, and stream names, types and filters holding SQL leave
every table outside the store's schema as it was. (Names inside the store are held to the same by
the contract suite, `HostileNamesContract`, on every engine.)"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Final

import psycopg
import pytest

from eventvault import NewEvent, StreamState, connect
from eventvault.errors import InvalidURLError
from eventvault.store.migrate import migrate
from eventvault.testing.contract.names import HOSTILE_NAMES
from tests.cli.cli_harness import Cli

from .conftest import with_options

CANARY: Final = f"public.canary_{uuid.uuid4().hex[:12]}"
"""A table outside any store's schema: what an injection would hit (named apart from the
canaries of other test runs on the same server)."""
HOSTILE_SCHEMAS: Final = {
    "quote-and-drop-schema": 'x"; DROP SCHEMA public CASCADE; --',
    "quote-and-drop-table": f"x'; DROP TABLE {CANARY}; --",
    "statement-after": f"public; DROP TABLE {CANARY}",
    "dollar-quote": f"x$$; DROP TABLE {CANARY}; $$",
    "comment": "public--",
    "upper-case": "Upper",
    "space": "x y",
    "empty": "",
    "too-long": "s" * 53,
}
"""Schema names an attacker (or a typo) could put in a URL; none is a plain lower-case name."""


@pytest.fixture
def canary(admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[str]:
    """`CANARY`, with one row."""
    admin.execute(f"CREATE TABLE {CANARY} (note text)")
    admin.execute(f"INSERT INTO {CANARY} VALUES ('still here')")
    try:
        yield CANARY
    finally:
        admin.execute(f"DROP TABLE IF EXISTS {CANARY}")


def _schemas(admin: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """The schemas of the database, but the fresh ones tests make for their stores."""
    rows = admin.execute("SELECT nspname FROM pg_namespace ORDER BY nspname").fetchall()
    return [str(r[0]) for r in rows if not str(r[0]).startswith(("ev_test_", "ev_pgtest_"))]


def _assert_untouched(admin: psycopg.Connection[tuple[object, ...]], canary: str) -> None:
    assert admin.execute(f"SELECT note FROM {canary}").fetchall() == [("still here",)]


@pytest.mark.parametrize("schema", HOSTILE_SCHEMAS.values(), ids=HOSTILE_SCHEMAS.keys())
def test_a_schema_name_that_is_not_a_plain_name_is_refused_before_reaching_the_server(
    server_url: str, admin: psycopg.Connection[tuple[object, ...]], canary: str, schema: str
) -> None:
    url = with_options(server_url, schema=urllib.parse.quote(schema), auto_migrate="true")
    before = _schemas(admin)
    with pytest.raises(InvalidURLError, match="schema must be a lower-case identifier"):
        connect(url)
    with pytest.raises(InvalidURLError, match="schema must be a lower-case identifier"):
        migrate(url)
    result = Cli()("migrate", url)
    assert result.exit_code == 2, result.output
    assert "schema must be a lower-case identifier" in result.stderr
    assert _schemas(admin) == before
    _assert_untouched(admin, canary)


def test_names_holding_sql_leave_tables_outside_the_store_alone(
    store_url: str, admin: psycopg.Connection[tuple[object, ...]], canary: str
) -> None:
    with connect(store_url) as store:
        for name in HOSTILE_NAMES:
            store.append_to_stream(
                name, [NewEvent(name, {name: name})], expected_version=StreamState.ANY
            )
            list(store.read_all(stream_prefix=name, event_types=[name]))
            assert store.get_stream_version(name) == 0
        assert [e.stream_name for e in store.read_all()] == list(HOSTILE_NAMES)
    _assert_untouched(admin, canary)
