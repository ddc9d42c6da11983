"""Engines by URL scheme: the one place that knows which engine opens a URL.

The engines that come with eventvault (SQLite, memory, PostgreSQL) are registered here, each
imported only when a URL of its scheme is opened. Another package adds an engine by calling
`register_engine`, or without any call, by an entry point in the group `eventvault.engines`
whose name is the scheme and whose object is the engine's opener::

    [project.entry-points."eventvault.engines"]
    toy = "toy_engine:open_store"

Entry points are looked up the first time a URL names a scheme that is not registered. See
docs/howto-write-an-engine.md.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Final, Protocol

from eventvault.errors import InvalidURLError
from eventvault.serialization import DEFAULT_MAX_EVENT_BYTES
from eventvault.store.base import EventStore
from eventvault.store.url import StoreURL

__all__ = [
    "ENTRY_POINT_GROUP",
    "ConnectOptions",
    "Opener",
    "engine_for",
    "open_url",
    "register_engine",
    "registered_schemes",
    "unregister_engine",
]

ENTRY_POINT_GROUP: Final = "eventvault.engines"
"""The entry-point group in which packages declare engines, one entry point per scheme."""

_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.-]*")


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """What `connect` asks of an engine besides the URL.

    Attributes:
        max_event_bytes: the limit on one event's encoded data plus metadata.
        read_only: open the store for reading only: create, migrate and change nothing, and
            refuse appends, imports and transactions with `ReadOnlyStoreError`.
        migrate: the store may create or upgrade its own tables when it opens them, also on
            an engine that otherwise only does when its URL asks (PostgreSQL's
            `auto_migrate`); what `eventvault migrate` asks.
    """

    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    read_only: bool = False
    migrate: bool = False


class Opener(Protocol):
    """Opens a store of one engine from a parsed URL of its scheme."""

    def __call__(self, url: StoreURL, options: ConnectOptions, /) -> EventStore:
        """Open the store.

        Args:
            url: the parsed URL.
            options: `connect`'s other arguments.

        Returns:
            The open store, honouring `options.read_only`.

        Raises:
            InvalidURLError: the URL has a bad path or option for this engine.
            EventVaultError: the store cannot be opened.
        """
        ...


def _import_engine(url: StoreURL, module: str, label: str, extra: str) -> ModuleType:
    """An engine module of eventvault, whose driver comes with an extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InvalidURLError(
            url.display,
            f"{label} needs the {extra} extra: pip install 'eventvault[{extra}]' ({exc})",
        ) from exc


def _open_sqlite(url: StoreURL, options: ConnectOptions) -> EventStore:
    from eventvault.store.sqlite.opening import open_sqlite

    return open_sqlite(url, options)


def _open_memory(url: StoreURL, options: ConnectOptions) -> EventStore:
    from eventvault.store.memory import open_memory

    return open_memory(url, options)


def _open_postgres(url: StoreURL, options: ConnectOptions) -> EventStore:
    module = _import_engine(url, "eventvault.store.postgres", "PostgreSQL", "postgres")
    store: EventStore = module.PostgresEventStore(
        url.text,
        max_event_bytes=options.max_event_bytes,
        read_only=options.read_only,
        auto_migrate=True if options.migrate else None,
    )
    return store


def _open_http(url: StoreURL, options: ConnectOptions) -> EventStore:
    module = _import_engine(url, "eventvault.store.http.client", "an HTTP store", "client")
    store: EventStore = module.HTTPEventStore(
        url.text, max_event_bytes=options.max_event_bytes, read_only=options.read_only
    )
    return store


_BUILTIN: Final[dict[str, Opener]] = {
    "sqlite": _open_sqlite,
    "memory": _open_memory,
    "postgresql": _open_postgres,
    "postgres": _open_postgres,
    "http": _open_http,
    "https": _open_http,
}

_lock = threading.Lock()
_engines: dict[str, Opener] = dict(_BUILTIN)


def _check_scheme(scheme: object) -> str:
    if not isinstance(scheme, str) or not _SCHEME.fullmatch(scheme):
        raise InvalidURLError(
            f"{scheme}://",
            f"an engine's scheme is a lower-case name (a letter, then letters, digits, + - .), "
            f"not {scheme!r}",
        )
    return scheme


def register_engine(scheme: str, opener: Opener, *, replace: bool = False) -> None:
    """Make `connect` open URLs of a scheme with an engine.

    Args:
        scheme: the URL scheme, in lower case (`toy` for `toy://...`).
        opener: called with the parsed URL and `ConnectOptions`; returns the open store.
        replace: replace the engine registered for the scheme (also a built-in one).

    Raises:
        InvalidURLError: the scheme is not a lower-case URL scheme, or is taken and `replace`
            is False.
    """
    _check_scheme(scheme)
    if not callable(opener):
        raise InvalidURLError(
            f"{scheme}://", f"an engine's opener must be callable, not {opener!r}"
        )
    with _lock:
        if scheme in _engines and not replace:
            raise InvalidURLError(
                f"{scheme}://",
                f"an engine is already registered for {scheme!r}; pass replace=True to replace it",
            )
        _engines[scheme] = opener


def unregister_engine(scheme: str) -> None:
    """Forget the engine registered for a scheme; a built-in one comes back.

    Args:
        scheme: the URL scheme.
    """
    with _lock:
        builtin = _BUILTIN.get(scheme)
        if builtin is not None:
            _engines[scheme] = builtin
        else:
            _engines.pop(scheme, None)


def registered_schemes() -> list[str]:
    """The schemes registered so far (entry points not yet used are not listed), sorted."""
    with _lock:
        return sorted(_engines)


def engine_for(url: StoreURL) -> Opener:
    """The engine of a URL's scheme, as its opener: registered, or declared by an entry point.

    Args:
        url: a parsed URL.

    Returns:
        The opener.

    Raises:
        InvalidURLError: no engine is registered or declared for the scheme, or its entry point
            cannot be loaded.
    """
    with _lock:
        engine = _engines.get(url.scheme)
    if engine is not None:
        return engine
    engine = _from_entry_point(url)
    with _lock:
        return _engines.setdefault(url.scheme, engine)


def _from_entry_point(url: StoreURL) -> Opener:
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=url.scheme)
    if not found:
        others = sorted(set(registered_schemes()) - set(_BUILTIN))
        known = f", or a registered one: {', '.join(others)}" if others else ""
        raise InvalidURLError(
            url.display,
            f"unknown scheme {url.scheme!r}; use a file path, sqlite:///, memory:// or "
            f"postgresql://{known}",
        )
    entry = next(iter(found))
    try:
        loaded = entry.load()
    except Exception as exc:
        raise InvalidURLError(
            url.display,
            f"the engine for {url.scheme!r} (entry point {entry.value!r} in the group "
            f"{ENTRY_POINT_GROUP!r}) cannot be loaded: {type(exc).__name__}: {exc}",
        ) from exc
    if not callable(loaded):
        raise InvalidURLError(
            url.display,
            f"the entry point {entry.value!r} for {url.scheme!r} is {loaded!r}, not an opener "
            "function",
        )
    opener: Opener = loaded
    return opener


def open_url(url: StoreURL, options: ConnectOptions) -> EventStore:
    """Open a parsed URL with its engine, and check what the engine gave back.

    Args:
        url: the parsed URL.
        options: `connect`'s other arguments.

    Returns:
        The open store.

    Raises:
        InvalidURLError: no engine for the scheme; the engine returned no store, or a store
            that is not read-only when `options.read_only` asked for one.
        The errors of the engine's opener.
    """
    store = engine_for(url)(url, options)
    if not isinstance(store, EventStore):
        raise InvalidURLError(
            url.display,
            f"the engine registered for {url.scheme!r} returned {store!r}, not an EventStore",
        )
    if options.read_only and not store.read_only:
        store.close()
        raise InvalidURLError(
            url.display, f"the {store.engine} engine cannot open a store read-only"
        )
    return store
