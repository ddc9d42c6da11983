"""Bearer tokens of the HTTP server: scopes, stream-prefix rules, stored hashed beside the events.

A token is `ev_<id>_<secret>`. Its id is public (listed, used to revoke); its secret is shown
once, when the token is created, and only its SHA-256 is stored, in the `server_tokens`
component (the seam), so a copy of the database lets nobody in. A token has a name, which the
server records as the `actor` of every event appended with it, one or more scopes and,
optionally, stream prefixes that limit it to the streams whose names start with one of them.

| scope | allows |
| --- | --- |
| `read` | reading streams and the log, subscriptions, versions, stats |
| `write` | appending |
| `admin` | everything: also export, import, the raw log and metrics |

This module needs no web framework: `eventvault token` uses it on a store directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, TypeAlias

import msgspec

from eventvault.errors import (
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from eventvault.serialization import FORBIDDEN_NAME_CHARACTERS, from_micros, now_micros
from eventvault.store.base import EventStore
from eventvault.store.seam import Component, Transaction, load_migrations, register_component

__all__ = [
    "SCOPES",
    "TOKENS",
    "Authorizer",
    "Principal",
    "Scope",
    "TokenInfo",
    "TokenNotFoundError",
    "create_token",
    "list_tokens",
    "parse_scopes",
    "revoke_token",
]

Scope: TypeAlias = Literal["read", "write", "admin"]
SCOPES: Final[tuple[Scope, ...]] = ("read", "write", "admin")
CACHE_SECONDS: Final = 5.0
"""How long the server trusts what it read about a token: a revoked token stops working within
this many seconds on every server of the store."""

TOKENS: Final = register_component(
    Component("server_tokens", load_migrations("eventvault.server", "migrations"))
)

_TOKEN: Final = re.compile(r"ev_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})")
_PLACEHOLDER: Final = {"sqlite": "?", "postgresql": "%s"}


class TokenNotFoundError(NotFoundError, LookupError):
    """No token has that id or name (or every token of that name is revoked already).

    Attributes:
        token: the id or name given.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        super().__init__(f"no active token has the id or name {token!r}")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as `list_tokens` shows it (never its secret).

    Attributes:
        token_id: the public id.
        name: the actor recorded on the events appended with it.
        scopes: what it allows.
        prefixes: the stream prefixes it is limited to; empty: every stream.
        created_at: when it was created.
        revoked_at: when it was revoked, None while active.
    """

    token_id: str
    name: str
    scopes: tuple[Scope, ...]
    prefixes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


def parse_scopes(scopes: Sequence[str]) -> tuple[Scope, ...]:
    """Validated scopes, in their canonical order.

    Raises:
        InvalidArgumentError: no scope, or one that is not read, write or admin.
    """
    if isinstance(scopes, str) or not scopes:
        raise InvalidArgumentError("scopes", scopes, "must name one or more of read, write, admin")
    for scope in scopes:
        if scope not in SCOPES:
            raise InvalidArgumentError(
                "scopes", list(scopes), f"holds {scope!r}; the scopes are read, write and admin"
            )
    return tuple(s for s in SCOPES if s in scopes)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise InvalidArgumentError("name", name, "must be a str of 1 to 100 characters")
    if FORBIDDEN_NAME_CHARACTERS.search(name):
        raise InvalidArgumentError("name", name, "must not hold control characters")
    return name


def _check_prefixes(prefixes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(prefixes, str):
        raise InvalidArgumentError("prefixes", prefixes, "must be a list of str")
    for prefix in prefixes:
        if not isinstance(prefix, str) or not prefix or FORBIDDEN_NAME_CHARACTERS.search(prefix):
            raise InvalidArgumentError(
                "prefixes", list(prefixes), f"holds {prefix!r}, which no stream name starts with"
            )
    return tuple(prefixes)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: Sequence[object]) -> TokenInfo:
    token_id, name, scopes, prefixes, created_at, revoked_at = row
    return TokenInfo(
        str(token_id),
        str(name),
        tuple(s for s in SCOPES if s in str(scopes).split(",")),
        tuple(msgspec.json.decode(str(prefixes).encode(), type=list[str])),
        from_micros(int(created_at)),  # type: ignore[call-overload]
        None if revoked_at is None else from_micros(int(revoked_at)),  # type: ignore[call-overload]
    )


def _select(store: EventStore, where: str) -> str:
    placeholder = _PLACEHOLDER[store.dialect]
    table = "server_tokens" if store.dialect == "sqlite" else "{schema}.server_tokens"
    return (
        f"SELECT token_id, name, scopes, prefixes, created_at, revoked_at FROM {table} "
        f"{where.replace('?', placeholder)} ORDER BY created_at, token_id"
    )


def create_token(
    store: EventStore, name: str, scopes: Sequence[str], prefixes: Sequence[str] = ()
) -> tuple[TokenInfo, str]:
    """Create a token and store its hash.

    Args:
        store: the store the server serves.
        name: who uses it: recorded as the `actor` of the events appended with it; unique
            among the active tokens.
        scopes: `read`, `write` and/or `admin`.
        prefixes: stream prefixes the token is limited to; empty for every stream.

    Returns:
        The token's description, and the token itself: show it once, it is not stored.

    Raises:
        InvalidArgumentError: a bad name, scope or prefix, or the name of an active token.
    """
    _check_name(name)
    granted = parse_scopes(scopes)
    limited = _check_prefixes(prefixes)
    store.use(TOKENS)
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    created = now_micros()
    placeholder = _PLACEHOLDER[store.dialect]
    table = "server_tokens" if store.dialect == "sqlite" else "{schema}.server_tokens"
    insert = f"INSERT INTO {table} VALUES ({', '.join([placeholder] * 7)})"
    taken = f"SELECT 1 FROM {table} WHERE name = {placeholder} AND revoked_at IS NULL"

    def work(tx: Transaction) -> None:
        if tx.fetch(taken, (name,)):
            raise InvalidArgumentError(
                "name", name, "is the name of an active token; revoke it first"
            )
        tx.execute(
            insert,
            (
                token_id,
                name,
                _digest(secret),
                ",".join(granted),
                msgspec.json.encode(list(limited)).decode(),
                created,
                None,
            ),
        )

    store.run_transaction(work)
    info = TokenInfo(token_id, name, granted, limited, from_micros(created), None)
    return info, f"ev_{token_id}_{secret}"


def list_tokens(store: EventStore) -> list[TokenInfo]:
    """Every token of the store, active and revoked, oldest first."""
    store.use(TOKENS)
    return [_info(row) for row in store.query(_select(store, ""))]


def revoke_token(store: EventStore, token: str) -> TokenInfo:
    """Revoke a token by its id or its name; it stops working within `CACHE_SECONDS`.

    Raises:
        TokenNotFoundError: no active token has that id or name.
    """
    store.use(TOKENS)
    placeholder = _PLACEHOLDER[store.dialect]
    table = "server_tokens" if store.dialect == "sqlite" else "{schema}.server_tokens"
    now = now_micros()
    update = (
        f"UPDATE {table} SET revoked_at = {placeholder} WHERE revoked_at IS NULL AND "
        f"(token_id = {placeholder} OR name = {placeholder})"
    )

    def work(tx: Transaction) -> int:
        return tx.execute(update, (now, token, token))

    if not store.run_transaction(work):
        raise TokenNotFoundError(token)
    rows = store.query(_select(store, "WHERE token_id = ? OR name = ?"), (token, token))
    return next(info for info in map(_info, reversed(rows)) if info.revoked_at is not None)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from, and what it may do.

    Attributes:
        actor: the token's name, recorded as each appended event's `actor`; None for an
            anonymous request, whose events keep the metadata they were sent with.
        scopes: what it may do.
        prefixes: the stream prefixes it is limited to; empty: every stream.
    """

    actor: str | None
    scopes: tuple[Scope, ...]
    prefixes: tuple[str, ...] = ()

    def _who(self) -> str:
        return "anonymous requests" if self.actor is None else f"the token {self.actor!r}"

    def require(self, scope: Scope) -> None:
        """Raises `PermissionDeniedError` unless the principal has `scope` (admin has all)."""
        if scope not in self.scopes and "admin" not in self.scopes:
            raise PermissionDeniedError(f"{self._who()} lack the {scope!r} scope")

    def require_unlimited(self, scope: Scope) -> None:
        """`require`, for the whole store: a token limited to stream prefixes is refused."""
        self.require(scope)
        if self.prefixes:
            raise PermissionDeniedError(
                f"{self._who()} are limited to streams starting with "
                f"{', '.join(map(repr, self.prefixes))}; this needs the whole store"
            )

    def allows(self, stream_name: str) -> bool:
        """Whether the principal's prefixes include a stream."""
        return not self.prefixes or stream_name.startswith(self.prefixes)

    def require_stream(self, scope: Scope, stream_name: str) -> None:
        """`require`, for one stream: it must start with one of the principal's prefixes."""
        self.require(scope)
        if not self.allows(stream_name):
            raise PermissionDeniedError(
                f"{self._who()} may not use the stream {stream_name!r}: they are limited to "
                f"streams starting with {', '.join(map(repr, self.prefixes))}"
            )

    def require_prefix(self, scope: Scope, stream_prefix: str | None) -> None:
        """`require`, for a read of the log filtered by `stream_prefix`: the filter must lie
        within one of the principal's prefixes."""
        self.require(scope)
        if self.prefixes and (stream_prefix is None or not stream_prefix.startswith(self.prefixes)):
            raise PermissionDeniedError(
                f"{self._who()} may read the log only with a stream_prefix starting with "
                f"{', '.join(map(repr, self.prefixes))}"
            )


class Authorizer:
    """Turns a request's `Authorization` header into a `Principal`.

    Tokens are looked up in the store and the answer kept for `CACHE_SECONDS`, so a busy
    server reads a token once every few seconds, not once per request.

    Args:
        store: the store whose tokens are checked.
        anonymous: the scopes of a request without a token; empty (the default): such a
            request is refused with 401.
        tokens: whether the store holds the tokens component; False on a server that only
            serves anonymous requests (a token is then always unknown).
    """

    def __init__(
        self, store: EventStore, anonymous: Sequence[Scope] = (), *, tokens: bool = True
    ) -> None:
        self._store = store
        self._anonymous = (
            Principal(None, tuple(s for s in SCOPES if s in anonymous)) if anonymous else None
        )
        self._tokens = tokens
        self._cache: dict[str, tuple[float, tuple[str, Principal] | None]] = {}

    @property
    def anonymous(self) -> Principal | None:
        """What a request without a token may do; None when it is refused."""
        return self._anonymous

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of a request.

        Args:
            authorization: the `Authorization` header, None when absent.

        Raises:
            AuthenticationError: no token where one is needed, or a token that is malformed,
                unknown or revoked.
        """
        if authorization is None:
            if self._anonymous is None:
                raise AuthenticationError(
                    "this server needs a bearer token (Authorization: Bearer ev_...); create "
                    "one with `eventvault token create`"
                )
            return self._anonymous
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise AuthenticationError("the bearer token is not an eventvault token (ev_...)")
        token_id, secret = match.groups()
        now = time.monotonic()
        cached = self._cache.get(token_id)
        if cached is None or cached[0] < now:
            found = await asyncio.to_thread(self._lookup, token_id) if self._tokens else None
            if len(self._cache) > 10_000:
                self._cache.clear()
            cached = self._cache[token_id] = (now + CACHE_SECONDS, found)
        found = cached[1]
        if found is None or not hmac.compare_digest(found[0], _digest(secret)):
            raise AuthenticationError("the bearer token is unknown or revoked")
        return found[1]

    def _lookup(self, token_id: str) -> tuple[str, Principal] | None:
        store = self._store
        placeholder = _PLACEHOLDER[store.dialect]
        table = "server_tokens" if store.dialect == "sqlite" else "{schema}.server_tokens"
        rows = store.query(
            f"SELECT secret_sha256, name, scopes, prefixes FROM {table} "
            f"WHERE token_id = {placeholder} AND revoked_at IS NULL",
            (token_id,),
        )
        if not rows:
            return None
        digest, name, scopes, prefixes = rows[0]
        principal = Principal(
            str(name),
            tuple(s for s in SCOPES if s in str(scopes).split(",")),
            tuple(msgspec.json.decode(str(prefixes).encode(), type=list[str])),
        )
        return str(digest), principal
