"""The one place where psycopg's errors become eventvault's."""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests

from eventvault.errors import (
    EventVaultError,
    NotAnEventVaultDatabaseError,
    ReadOnlyStoreError,
    StorageError,
    StoreClosedError,
    StoreUnavailableError,
)
from eventvault.store.postgres._config import server_address

__all__ = [
    "is_connection_error",
    "is_retryable_conflict",
    "is_unavailable",
    "translate",
    "unavailable",
]

_UNAVAILABLE_STATES: Final = frozenset({"57P01", "57P02", "57P03", "57P05", "53300"})
"""Server errors that mean "not now": an administrator or crash shutdown, a server starting up or
shutting down, a session ended for idling, too many connections."""


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


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error means the server cannot be used for now, although nothing about the
    request was wrong: a connection that could not be made or was lost (class 08, or no
    SQLSTATE at all: libpq's own connection failures), or a server that refuses work for now.

    A connection refused for a reason the server gives (a role or database that does not exist,
    a wrong password) also arrives without a SQLSTATE, so it counts too: the message the
    error carries names the reason.
    """
    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    if isinstance(exc, PoolTimeout | PoolClosed | TooManyRequests):
        return False  # the pool's own errors (operational errors too): see `translate`
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _UNAVAILABLE_STATES


def unavailable(exc: BaseException, location: str, consequence: str = "") -> StoreUnavailableError:
    """The error for a server that cannot be reached, or a connection to it that was lost.

    Args:
        exc: the driver's error (its message, on one line, ends the reason).
        location: the store's URL (password masked).
        consequence: what the failure means for the call, put before the driver's message.

    Returns:
        A `StoreUnavailableError` naming the server (`host:port`).
    """
    server = server_address(location)
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if getattr(exc, "pgconn", None) is not None:
        what = f"cannot connect to the PostgreSQL server at {server}"
    else:
        what = f"lost the connection to the PostgreSQL server at {server}"
    return StoreUnavailableError(location, f"{what}{consequence}: {detail}")


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
    if is_unavailable(exc):
        return unavailable(exc, location)
    if isinstance(exc, PoolTimeout):
        return StorageError(
            f"PostgreSQL at {location!r}: no connection free in the pool in time; the server "
            f"answers, but every connection of the pool stayed busy (raise pool_max, or look "
            f"for connections held by long reads): {exc}"
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
