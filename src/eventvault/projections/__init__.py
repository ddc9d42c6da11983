"""Projections: read models kept current from the log, with exactly-once effects.

::

    class Balances(Projection):
        name = "balances"
        registry = registry
        tables = {"balances": "CREATE TABLE {balances} "
                  "(account TEXT PRIMARY KEY, balance BIGINT NOT NULL)"}

        @handles(MoneyDeposited)
        def deposited(self, db: ReadModel, event: MoneyDeposited, recorded: RecordedEvent) -> None:
            db.execute(
                "INSERT INTO {balances} VALUES (?, ?) ON CONFLICT (account) "
                "DO UPDATE SET balance = {balances}.balance + excluded.balance",
                (recorded.stream_name, event.amount),
            )

    runner = ProjectionRunner(store, [Balances()])
    runner.run()  # until SIGTERM or Ctrl-C; or start() / stop() from an application

    store.query("SELECT balance FROM balances WHERE account = ?", ("account-42",))

See docs/projections.md for the guarantees (exactly once for SQL read models, at least once for
sinks), ownership by leases, rebuilds without downtime and the command line.
"""

from eventvault.projections.failures import Failure, reset, retry, skip
from eventvault.projections.projection import Handler, Projection, ProjectionBase, Sink, handles
from eventvault.projections.runner import DEFAULT_LEASE_SECONDS, ProjectionRunner
from eventvault.projections.sql import SQL, ReadModel
from eventvault.projections.state import PROJECTIONS, HistoryEntry
from eventvault.projections.status import (
    ProjectionState,
    ProjectionStatus,
    StatusReader,
    projection_status,
)

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "PROJECTIONS",
    "SQL",
    "Failure",
    "Handler",
    "HistoryEntry",
    "Projection",
    "ProjectionBase",
    "ProjectionRunner",
    "ProjectionState",
    "ProjectionStatus",
    "ReadModel",
    "Sink",
    "StatusReader",
    "handles",
    "projection_status",
    "reset",
    "retry",
    "skip",
]
