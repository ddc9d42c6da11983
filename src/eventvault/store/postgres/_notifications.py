"""Wake-ups for subscribers: NOTIFY after commits, LISTEN for other processes' commits.

A notification is only a hint that the log grew: subscribers re-query after every wake-up and
also poll, so a notification lost or left out delays an event and never loses it. That is what
lets a writer leave a batch's NOTIFY to the batch after it when appends queue back to back:
under a steady stream of batches most commits notify nobody, and the last notification is never
older than `ANNOUNCE_INTERVAL` (docs/adr/0004-postgres-global-order.md, "NOTIFY").
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

import psycopg
from psycopg_pool import PoolClosed, PoolTimeout

from eventvault.errors import EventVaultError
from eventvault.store.notify import Notifier
from eventvault.store.postgres._connections import Connections
from eventvault.store.postgres._listener import Listener

__all__ = ["ANNOUNCE_INTERVAL", "Notifications"]

logger = logging.getLogger("eventvault.postgres")

ANNOUNCE_INTERVAL: Final = 0.002
"""While appends queue back to back, the longest time between two notifications for
subscribers in other processes (seconds)."""


class Notifications:
    """A store's notifier, its LISTEN thread, and what its writer still owes subscribers.

    Args:
        connections: the store's pool (for NOTIFY statements of their own).
        conninfo: the libpq connection string (the LISTEN thread's own connection).
        channel: the store's notification channel.
        statement: the NOTIFY statement, `SELECT pg_notify(%s, %s)`.
    """

    def __init__(
        self, connections: Connections, conninfo: str, channel: str, statement: str
    ) -> None:
        self.notifier = Notifier()
        self.channel = channel
        self._connections = connections
        self._conninfo = conninfo
        self._statement = statement
        self._listener: Listener | None = None
        self._listener_lock = threading.Lock()
        self._closed = False
        # Whether a committed batch still waits for its NOTIFY, and when the last one went.
        self._unannounced = False
        self._announced_at = 0.0
        self._last_committed = 0

    def listening(self) -> Notifier:
        """The notifier, with the LISTEN thread started on first use (subscribers call this:
        a store that nobody subscribes to holds no LISTEN connection)."""
        with self._listener_lock:
            if self._listener is None and not self._closed:
                self._listener = Listener(self._conninfo, self.channel, self.notifier)
        return self.notifier

    # -- the writer's side -------------------------------------------------------------------

    def due(self, queued: bool) -> bool:
        """Whether the batch being written should carry the NOTIFY itself.

        Args:
            queued: appends are queued behind it (a batch that follows will commit later, so
                its notification would cover both).
        """
        return not queued or time.monotonic() - self._announced_at >= ANNOUNCE_INTERVAL

    def committed(self, last_position: int, sent: bool) -> None:
        """Record that a batch committed up to `last_position`, and whether it notified."""
        self._last_committed = max(self._last_committed, last_position)
        if sent:
            self._announced_at = time.monotonic()
        self._unannounced = not sent

    def settle(self, queued: bool) -> None:
        """Send a notification still owed once no batch follows to carry it."""
        if self._unannounced and not queued:
            self.announce()

    def announce(self) -> None:
        """Notify subscribers of batches committed without a notification (best effort: they
        poll, so a lost notification only delays them)."""
        self._unannounced = False
        payload = str(self._last_committed)
        try:
            with self._connections.connection() as conn:
                conn.execute(self._statement, (self.channel, payload), prepare=True)
        except (psycopg.Error, EventVaultError) as exc:
            logger.info("NOTIFY failed on %s (subscribers will poll): %s", self.channel, exc)
            return
        self._announced_at = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the LISTEN thread (woken by a last notification on its channel)."""
        with self._listener_lock:
            self._closed = True
            listener, self._listener = self._listener, None
        if listener is None:
            return
        listener.request_stop()
        try:
            with self._connections.pool.connection(timeout=2.0) as conn:
                conn.execute(self._statement, (self.channel, "close"))
        except (psycopg.Error, PoolClosed, PoolTimeout) as exc:
            # The thread stops on its own within its wait slice.
            logger.info("could not wake the LISTEN thread of %s (%s)", self.channel, exc)
        listener.join()
