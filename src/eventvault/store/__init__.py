"""The storage engines behind one API, `EventStore`, found by URL scheme."""

from eventvault.store.aio import AsyncEventStore, AsyncSubscription
from eventvault.store.base import EventStore, StoreStats
from eventvault.store.connect import DEFAULT_URL, connect, connect_async
from eventvault.store.registry import (
    ConnectOptions,
    register_engine,
    registered_schemes,
    unregister_engine,
)
from eventvault.store.subscription import Subscription
from eventvault.store.url import StoreURL, parse_url

__all__ = [
    "DEFAULT_URL",
    "AsyncEventStore",
    "AsyncSubscription",
    "ConnectOptions",
    "EventStore",
    "StoreStats",
    "StoreURL",
    "Subscription",
    "connect",
    "connect_async",
    "parse_url",
    "register_engine",
    "registered_schemes",
    "unregister_engine",
]
