"""PostgreSQL URLs: eventvault's own options, split off before the rest reaches libpq."""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Final

import psycopg
from psycopg.conninfo import conninfo_to_dict

from eventvault.errors import InvalidURLError
from eventvault.store.masking import mask_url, redact, typed_password

__all__ = [
    "DEFAULT_POOL_MAX",
    "DEFAULT_SCHEMA",
    "DEFAULT_UNAVAILABLE_TIMEOUT",
    "PostgresOptions",
    "connect_timeout",
    "parse_url",
    "quote_schema",
    "server_address",
]

DEFAULT_SCHEMA: Final = "eventvault"
DEFAULT_POOL_MAX: Final = 10
DEFAULT_UNAVAILABLE_TIMEOUT: Final = 5.0
"""Seconds a call waits for a connection before it checks whether the server can be reached."""
# The notification channel is eventvault_<schema>, and PostgreSQL identifiers (channel names
# too) hold at most 63 bytes: 63 - len("eventvault_") = 52.
MAX_SCHEMA_NAME_LENGTH = 52
_SCHEMA_NAME = re.compile(rf"[a-z_][a-z0-9_]{{0,{MAX_SCHEMA_NAME_LENGTH - 1}}}")
_PORT: Final = re.compile(r":[0-9]+$")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
_OPTIONS: Final = frozenset({"schema", "auto_migrate", "pool_max", "unavailable_timeout"})


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """A PostgreSQL store location, split into what libpq needs and what eventvault reads.

    Attributes:
        conninfo: the URL without eventvault's options, handed to psycopg; it holds the
            password, so it is left out of `repr`.
        display_url: the URL with every password masked (`masking.mask_url`), for messages.
        schema: the PostgreSQL schema holding the store's tables.
        auto_migrate: create or upgrade the schema on first use.
        pool_max: the most connections the store's pool opens.
        unavailable_timeout: seconds a call waits for a connection before it checks whether
            the server can be reached, and fails with `StoreUnavailableError` when it cannot.
    """

    conninfo: str = field(repr=False)
    display_url: str
    schema: str
    auto_migrate: bool
    pool_max: int
    unavailable_timeout: float = DEFAULT_UNAVAILABLE_TIMEOUT


def check_schema_name(url: str, schema: str) -> str:
    """Check a schema name: lower case letters, digits and `_`, at most 52 characters.

    Raises:
        InvalidURLError: the name is not a plain lower-case identifier.
    """
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidURLError(
            url,
            f"schema must be a lower-case identifier (letters, digits, _; at most "
            f"{MAX_SCHEMA_NAME_LENGTH} "
            f"characters, not starting with a digit), not {schema!r}",
        )
    return schema


def quote_schema(schema: str) -> str:
    """The schema name as a quoted SQL identifier (the name is already checked)."""
    return f'"{schema}"'


def _check_libpq_reads_it_alike(
    url: str, display: str, parsed: urllib.parse.SplitResult, conninfo: str
) -> None:
    """Refuse a URL that libpq cannot read, or reads otherwise than urllib: its message would
    quote the password, or the store would log in with a password other than the one typed."""
    reserved = (
        "a password in the URL that holds @, /, ? or # must be percent-encoded (%40, %2F, %3F, %23)"
    )
    if typed_password(url) != parsed.password:
        raise InvalidURLError(display, reserved)
    try:
        libpq = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        # libpq's message can quote the password (a bad percent-encoding in it): redact it, and
        # keep the driver's error out of the chain.
        raise InvalidURLError(
            display, f"libpq cannot read it: {redact(str(exc).strip(), url)}"
        ) from None
    typed = None if parsed.password is None else urllib.parse.unquote(parsed.password)
    if typed != libpq.get("password") and "password" not in dict(
        urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    ):
        raise InvalidURLError(display, reserved)
    ports = str(libpq.get("port", "")).split(",")
    if any(port and not port.isdigit() for port in ports):
        raise InvalidURLError(display, f"the port is not a number; {reserved}")


def parse_url(
    url: str,
    *,
    schema: str | None = None,
    auto_migrate: bool | None = None,
    pool_max: int | None = None,
    unavailable_timeout: float | None = None,
) -> PostgresOptions:
    """Split a `postgresql://` URL into libpq's conninfo and eventvault's options.

    Args:
        url: `postgresql://user:password@host:port/database?schema=...&auto_migrate=true&
            pool_max=N&unavailable_timeout=SECONDS`; any other query parameter (such as
            `sslmode` or `connect_timeout`) goes to libpq.
        schema: overrides the URL's `schema` (default `eventvault`).
        auto_migrate: overrides the URL's `auto_migrate` (default false).
        pool_max: overrides the URL's `pool_max` (default 10).
        unavailable_timeout: overrides the URL's `unavailable_timeout` (default 5 seconds).

    Returns:
        The parsed options.

    Raises:
        InvalidURLError: not a PostgreSQL URL, a URL libpq cannot read or would read otherwise
            than it looks (a password holding an unencoded `@`, `/`, `?` or `#`), or an option
            has a bad value. The error shows the URL with its password masked.
    """
    display = mask_url(url)
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() not in ("postgresql", "postgres"):
        raise InvalidURLError(display, "a PostgreSQL URL starts with postgresql://")
    pairs = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    ours = {key: value for key, value in pairs if key in _OPTIONS}
    # Text goes to the server as UTF-8 (binary parameters are not converted): always say so.
    rest = [(key, value) for key, value in pairs if key not in _OPTIONS | {"client_encoding"}]
    rest.append(("client_encoding", "UTF8"))
    query = urllib.parse.urlencode(rest)
    conninfo = urllib.parse.urlunsplit(
        (parsed.scheme, parsed.netloc, parsed.path, query, parsed.fragment)
    )
    _check_libpq_reads_it_alike(url, display, parsed, conninfo)

    chosen_schema = schema if schema is not None else ours.get("schema", DEFAULT_SCHEMA)
    check_schema_name(display, chosen_schema)

    if auto_migrate is None:
        flag = ours.get("auto_migrate", "false").strip().lower()
        if flag in _TRUE:
            auto_migrate = True
        elif flag in _FALSE:
            auto_migrate = False
        else:
            raise InvalidURLError(display, f"auto_migrate must be true or false, not {flag!r}")

    if pool_max is None:
        raw = ours.get("pool_max", str(DEFAULT_POOL_MAX))
        try:
            pool_max = int(raw)
        except ValueError:
            raise InvalidURLError(display, f"pool_max must be an int >= 1, not {raw!r}") from None
    if type(pool_max) is not int or pool_max < 1:
        raise InvalidURLError(display, f"pool_max must be an int >= 1, not {pool_max!r}")

    if unavailable_timeout is None:
        raw = ours.get("unavailable_timeout", str(DEFAULT_UNAVAILABLE_TIMEOUT))
        try:
            unavailable_timeout = float(raw)
        except ValueError:
            unavailable_timeout = math.nan
        if not _positive_seconds(unavailable_timeout):
            raise InvalidURLError(
                display, f"unavailable_timeout must be a number of seconds > 0, not {raw!r}"
            )
    if not _positive_seconds(unavailable_timeout):
        raise InvalidURLError(
            display,
            f"unavailable_timeout must be a number of seconds > 0, not {unavailable_timeout!r}",
        )

    return PostgresOptions(
        conninfo=conninfo,
        display_url=display,
        schema=chosen_schema,
        auto_migrate=auto_migrate,
        pool_max=pool_max,
        unavailable_timeout=float(unavailable_timeout),
    )


def _positive_seconds(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value > 0


def connect_timeout(unavailable_timeout: float) -> int:
    """libpq's `connect_timeout` for a store's connections: whole seconds, at least 2 (libpq
    counts whole seconds, and psycopg raises anything lower to 2)."""
    return max(2, math.ceil(unavailable_timeout))


def server_address(url: str) -> str:
    """The server a URL points at, as `host:port`, for messages (several hosts: as written).

    Args:
        url: a `postgresql://` URL, its password masked or not.
    """
    parsed = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parsed.query))
    hosts = urllib.parse.unquote(parsed.netloc.rpartition("@")[2])
    if not hosts:
        hosts = query.get("host") or query.get("hostaddr") or "localhost"
    if "," in hosts or _PORT.search(hosts):
        return hosts
    return f"{hosts}:{query.get('port', '5432')}"
