"""The SQL of read models: written once, with `?` placeholders and `{table}` names.

A projection's statements name its tables in braces (`UPDATE {balances} SET ...`) and take
parameters as `?`. Before a statement runs, each `{table}` becomes the physical table of the
projection's version (`balances_v2`, in the right schema) and, on PostgreSQL, each `?` outside a
quoted literal becomes `%s` (and a literal `%` becomes `%%`, as psycopg needs). Where the
dialects really differ, a statement is given per dialect instead: `{"sqlite": ..., "postgresql":
...}`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

from eventvault.errors import ProjectionDefinitionError
from eventvault.store.seam import Dialect, SQLRow, Transaction

__all__ = ["SQL", "ReadModel", "enter_schema", "physical_table", "render"]

SQL: TypeAlias = str | Mapping[Dialect, str]
"""A statement: one text for both dialects, or one per dialect."""

_NAME: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Quoted literals and identifiers, which may hold `?` and `%` that are not placeholders.
_QUOTED: Final = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def physical_table(table: str, version: int) -> str:
    """The name of a read model table of one version of a projection: `balances_v2`."""
    return f"{table}_v{version}"


def _postgres_placeholders(text: str) -> str:
    parts: list[str] = []
    last = 0
    for match in _QUOTED.finditer(text):
        parts.append(text[last : match.start()].replace("%", "%%").replace("?", "%s"))
        parts.append(match.group(0).replace("%", "%%"))
        last = match.end()
    parts.append(text[last:].replace("%", "%%").replace("?", "%s"))
    return "".join(parts)


@functools.lru_cache(maxsize=4096)
def _render(statement: str, dialect: Dialect, names: tuple[tuple[str, str], ...]) -> str:
    lookup = dict(names)

    def name(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "schema":
            return match.group(0)
        table = lookup.get(key)
        if table is None:
            known = ", ".join(sorted(lookup)) or "none"
            raise ProjectionDefinitionError(
                key,
                f"a statement names the table {{{key}}}, which is not declared (declared: {known})",
            )
        return table

    text = _NAME.sub(name, statement)
    return _postgres_placeholders(text) if dialect == "postgresql" else text


def render(statement: SQL, dialect: Dialect, tables: Mapping[str, str]) -> str:
    """A read model statement as the database runs it.

    Args:
        statement: the statement, with `{table}` names and `?` placeholders, or one per dialect.
        dialect: the database's dialect.
        tables: each declared table name to its physical name (`balances_v2`).

    Returns:
        The statement in the dialect, `{schema}` left for the seam to fill in.

    Raises:
        ProjectionDefinitionError: the statement names a table that is not declared, or has
            no text for the dialect.
    """
    if not isinstance(statement, str):
        text = statement.get(dialect)
        if text is None:
            raise ProjectionDefinitionError(
                str(statement)[:60], f"the statement has no {dialect} text"
            )
        statement = text
    return _render(statement, dialect, tuple(sorted(tables.items())))


def enter_schema(tx: Transaction) -> None:
    """Make unqualified table names mean the schema of the database's tables, for the rest of
    the transaction.

    Read model tables are named without a schema (`balances_v2`), since `CREATE INDEX` takes
    neither a qualified index name on PostgreSQL nor a qualified table on SQLite; on SQLite
    they are in `main`, on PostgreSQL the search path of the transaction points at the schema.
    """
    if tx.dialect == "postgresql":
        tx.execute("SET LOCAL search_path TO {schema}, public")


_RENDERED: dict[tuple[Dialect, tuple[tuple[str, str], ...]], dict[str, str]] = {}
_MAX_RENDERED: Final = 1000


class ReadModel:
    """The transaction a projection's handlers write its read model in.

    Every statement is rendered (`render`) for the projection's tables and the database's
    dialect, then run in the transaction that also moves the projection's checkpoint: it
    commits with it, or not at all.

    `execute` runs a statement at once and returns its row count. `queue` runs it later, in
    order: before the next `execute`, `execute_many` or `fetch`, and before the commit, with the
    queued statements of the same text in a row sent as one `executemany` (on PostgreSQL one
    round trip for a batch of events instead of one per event). Use it for writes whose row
    count the handler does not need.

    Args:
        tx: the batch's transaction.
        tables: each declared table to its physical name.
        immediate: run queued statements at once (the runner's second pass over a batch whose
            queued statements failed, to find the event at fault).

    Attributes:
        dialect: the database's dialect (`sqlite` or `postgresql`).
        queued_any: whether a statement was queued (an error may then belong to an earlier
            event than the handler running).
    """

    __slots__ = (
        "_pending",
        "_pending_sql",
        "_rendered",
        "_tables",
        "_tx",
        "dialect",
        "immediate",
        "queued_any",
    )

    def __init__(
        self, tx: Transaction, tables: Mapping[str, str], *, immediate: bool = False
    ) -> None:
        self._tx = tx
        self._tables = tables
        self.dialect: Dialect = tx.dialect
        self.immediate = immediate
        self.queued_any = False
        self._pending: list[Sequence[object]] = []
        self._pending_sql = ""
        # Statements rendered for these tables and this dialect, shared by every batch: a
        # handler runs the same few statements for every event.
        key = (self.dialect, tuple(sorted(tables.items())))
        rendered = _RENDERED.get(key)
        if rendered is None:
            rendered = _RENDERED[key] = {}
        self._rendered: dict[str, str] = rendered
        enter_schema(tx)

    def sql(self, statement: SQL) -> str:
        """A statement as it runs here (see `render`)."""
        if isinstance(statement, str):
            text = self._rendered.get(statement)
            if text is None:
                if len(self._rendered) >= _MAX_RENDERED:
                    self._rendered.clear()  # statements built per event: do not hoard them
                text = self._rendered[statement] = render(statement, self.dialect, self._tables)
            return text
        return render(statement, self.dialect, self._tables)

    def execute(self, statement: SQL, params: Sequence[object] = ()) -> int:
        """Run a statement that writes, now (after the queued ones); returns how many rows it
        changed.

        Raises:
            StorageError: the statement failed (the projection stops at this event).
        """
        self.flush()
        return self._tx.execute(self.sql(statement), params)

    def queue(self, statement: SQL, params: Sequence[object] = ()) -> None:
        """Run a statement that writes later, in order, batched with the queued statements of
        the same text (see the class). Its failure stops the projection at the event that
        queued it, as `execute`'s does.
        """
        text = self.sql(statement)
        if self.immediate:
            self._tx.execute(text, params)
            return
        if self._pending and text != self._pending_sql:
            self.flush()
        self._pending_sql = text
        self._pending.append(params)
        self.queued_any = True

    def flush(self) -> None:
        """Run the queued statements now.

        Raises:
            StorageError: a queued statement failed.
        """
        if self._pending:
            rows, self._pending = self._pending, []
            self._tx.execute_many(self._pending_sql, rows)

    def execute_many(self, statement: SQL, params: Sequence[Sequence[object]]) -> int:
        """Run a statement once per parameter row; returns how many rows it changed in all."""
        self.flush()
        return self._tx.execute_many(self.sql(statement), params)

    def fetch(self, statement: SQL, params: Sequence[object] = ()) -> list[SQLRow]:
        """Run a query in the transaction (its own writes included) and return its rows."""
        self.flush()
        return self._tx.fetch(self.sql(statement), params)
