"""The storage engines behind one API, `EventStore`."""

from eventvault.store.aio import AsyncEventStore, AsyncSubscription
from eventvault.store.base import EventStore, StoreStats
from eventvault.store.connect import DEFAULT_URL, connect, connect_async
from eventvault.store.subscription import Subscription

__all__ = [
    "DEFAULT_URL",
    "AsyncEventStore",
    "AsyncSubscription",
    "EventStore",
    "StoreStats",
    "Subscription",
    "connect",
    "connect_async",
]
