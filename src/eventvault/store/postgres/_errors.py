"""The one place where psycopg's errors become eventvault's."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolClosed, PoolTimeout

from eventvault.errors import (
    EventVaultError,
    NotAnEventVaultDatabaseError,
    ReadOnlyStoreError,
    StorageError,
    StoreClosedError,
)

__all__ = ["is_connection_error", "is_retryable_conflict", "translate"]


def is_retryable_conflict(exc: BaseException) -> bool:
    """Whether a failed write transaction may simply be run again.

    Unique violations (another writer created the same stream or stored the same event id and
    committed first), deadlocks and serialization failures all leave nothing behind; running
    the transaction again re-reads the state the other writer committed.
    """
    return isinstance(
        exc,
        pg_errors.UniqueViolation | pg_errors.DeadlockDetected | pg_errors.SerializationFailure,
    )


def is_connection_error(exc: BaseException) -> bool:
    """Whether an error means the connection is gone (server restart, terminated backend)."""
    if isinstance(exc, pg_errors.TransactionRollback | pg_errors.QueryCanceled):
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def translate(exc: BaseException, location: str) -> EventVaultError:
    """Turn a driver or pool error into eventvault's error for it.

    Args:
        exc: the error psycopg or psycopg_pool raised.
        location: the store's URL (password masked), for the message.

    Returns:
        The error to raise `from exc`.
    """
    if isinstance(exc, PoolClosed):
        return StoreClosedError(location)
    if isinstance(exc, PoolTimeout):
        return StorageError(
            f"PostgreSQL at {location!r}: no connection free in the pool in time "
            f"(raise pool_max, or look for connections held by long reads): {exc}"
        )
    if isinstance(exc, pg_errors.UndefinedTable | pg_errors.UndefinedFunction):
        return NotAnEventVaultDatabaseError(
            location,
            f"eventvault's tables are missing ({exc}); create them with: eventvault migrate URL",
        )
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return ReadOnlyStoreError(
            location,
            f"the server runs its sessions read-only (a read-only store, "
            f"default_transaction_read_only, or a standby): {str(exc).strip()}",
        )
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return StorageError(f"PostgreSQL at {location!r}: permission denied: {exc}")
    message = str(exc).strip() or type(exc).__name__
    return StorageError(f"PostgreSQL error on {location!r}: {message}")
