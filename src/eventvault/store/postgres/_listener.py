"""LISTEN/NOTIFY wake-ups for live subscriptions: a hint, never the data.

A background thread LISTENs on a dedicated connection and bumps the store's `Notifier` on every
notification. When the connection dies it reconnects (with back-off) and bumps the notifier once
more, because notifications sent while it was away are lost; subscribers re-query either way,
so a lost notification delays an event, never loses it.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

import psycopg
from psycopg import sql

from eventvault.store.notify import Notifier

__all__ = ["Listener"]

logger = logging.getLogger("eventvault.postgres")

WAIT_SLICE: Final = 1.0
"""Seconds the thread waits for a notification before it looks at its stop flag again."""
MAX_BACKOFF: Final = 2.0


class Listener:
    """Feeds a `Notifier` from PostgreSQL notifications on one channel.

    Args:
        conninfo: libpq connection string or URL.
        channel: the channel to LISTEN on.
        notifier: bumped on every notification.
    """

    def __init__(
        self,
        conninfo: str,
        channel: str,
        notifier: Notifier,
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._notifier = notifier
        self._stop = threading.Event()
        self._connected = threading.Event()
        self.reconnects = 0
        self._thread = threading.Thread(
            target=self._run, name=f"eventvault-listen-{channel}", daemon=True
        )
        self._thread.start()

    @property
    def connected(self) -> threading.Event:
        """Set while the thread holds a live LISTEN connection."""
        return self._connected

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._connected.set()
                    # Anything committed while we were not listening was not announced.
                    self._notifier.notify()
                    backoff = 0.05
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=WAIT_SLICE):
                            self._notifier.notify()
                            if self._stop.is_set():
                                break
            except psycopg.Error as exc:
                self._connected.clear()
                if self._stop.is_set():
                    break
                self.reconnects += 1
                logger.info("LISTEN connection for %s lost (%s); reconnecting", self._channel, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                self._connected.clear()

    def request_stop(self) -> None:
        """Ask the thread to stop; it does within `WAIT_SLICE` seconds, or at once when a
        notification on the channel wakes it."""
        self._stop.set()

    def join(self, timeout: float = WAIT_SLICE + 0.5) -> None:
        """Wait for the thread (which closes its connection) to end.

        Args:
            timeout: the most seconds to wait.
        """
        self._thread.join(timeout=timeout)
