"""Credentials out of sight: the one place that masks the passwords a store URL can hold.

Every message, `repr`, log line and command output that shows a store's URL shows
`mask_url(url)`, and text that may echo a URL's parts (a driver's complaint about a malformed
URL) goes through `redact`. Nothing here imports a database driver, so the command line masks
URLs without loading one.

A password can hide in every form libpq accepts, and they are all masked:

- the user information of a URL, `postgresql://user:secret@host/db`, read both the way
  `urllib` reads it (up to the last `@` before the path) and the way libpq does (a password may
  hold `?` or `#`, and one holding an unencoded `/` is still a password to whoever typed it);
- a query parameter, `?password=secret` (also `sslpassword`, and any parameter whose name holds
  `password`);
- a keyword of a libpq connection string, `host=db password=secret` or `password='s e c'`.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

__all__ = ["MASK", "is_libpq_keywords", "mask_url", "redact", "typed_password", "url_secrets"]

MASK: Final = "***"
"""What a password is shown as."""

_QUERY_SECRET: Final = re.compile(r"(?i)(^|[?&;])([^=&;#]*password[^=&;#]*=)([^&;#]*)")
"""A query parameter whose name holds "password", and its value."""
_KEYWORD_SECRET: Final = re.compile(r"(?i)(\b\w*password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s']*)")
"""A libpq `keyword=value` pair whose keyword holds "password", and its (quoted) value."""
_LIBPQ_KEYWORDS: Final = re.compile(
    r"\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|connect_timeout)\s*="
)
"""How a libpq `key=value` connection string starts."""


def is_libpq_keywords(url: str) -> bool:
    """Whether a store URL is really a libpq `key=value` connection string (`host=db ...`).

    eventvault takes `postgresql://` URLs; without this check such a string would name a SQLite
    file, with the password in its name.

    Args:
        url: the URL as given.

    Returns:
        True when it starts with a libpq keyword and `=`.
    """
    return "://" not in url and _LIBPQ_KEYWORDS.match(url) is not None


def _userinfo_end(rest: str) -> int:
    """Where the user information of a URL (after `scheme://`) ends: the index of its `@`, or
    -1 when the URL has none."""
    slash = rest.find("/")
    authority_end = len(rest) if slash < 0 else slash
    at = rest.rfind("@", 0, authority_end)
    if at >= 0:
        return at
    # No `@` before the path. `user:pa/ss@host` still carries a password, typed with an
    # unencoded `/`: the text after the first `:` is no port (not digits, no host list), and an
    # `@` follows later.
    colon = rest.find(":", 0, authority_end)
    later = rest.find("@", authority_end)
    if colon < 0 or later < 0:
        return -1
    port = rest[colon + 1 : authority_end]
    if port.isdigit() or "," in port:
        return -1
    return later


def _split(url: str) -> tuple[str, str, str, str]:
    """(prefix up to `://`, user, password, rest after the user information); password is ""
    when there is none, user and password are "" when the URL has no user information."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url, "", "", ""
    prefix = url[: scheme_end + 3]
    rest = url[scheme_end + 3 :]
    end = _userinfo_end(rest)
    if end < 0:
        return prefix, "", "", rest
    user, colon, password = rest[:end].partition(":")
    return prefix, user, password if colon else "", rest[end:]


def mask_url(url: str) -> str:
    """A store URL (or libpq connection string) fit to show: every password is `***`.

    Args:
        url: the URL as given, in any form libpq accepts.

    Returns:
        The URL with the password of its user information, and the value of every parameter or
        keyword whose name holds "password", replaced by `***`; everything else as given.
    """
    if "://" not in url:
        return _KEYWORD_SECRET.sub(lambda found: f"{found.group(1)}{MASK}", url)
    prefix, user, password, rest = _split(url)
    if password:
        rest = f"{user}:{MASK}{rest}"
    elif user:
        rest = f"{user}{rest}"
    return prefix + _QUERY_SECRET.sub(lambda found: f"{found.group(1)}{found.group(2)}{MASK}", rest)


def typed_password(url: str) -> str | None:
    """The password of a URL's user information as its author meant it, read the way
    `mask_url` reads it (which may differ from urllib's and libpq's reading).

    Args:
        url: the URL as given.

    Returns:
        The password as typed (still percent-encoded), or None when there is none.
    """
    _, _, password, _ = _split(url)
    return password or None


def url_secrets(url: str) -> tuple[str, ...]:
    """The secrets a URL holds, as typed and percent-decoded, longest first.

    Args:
        url: the URL as given.

    Returns:
        Every non-empty value `mask_url` hides.
    """
    found: set[str] = set()
    if "://" in url:
        _, _, password, rest = _split(url)
        found.add(password)
        found.update(match.group(3) for match in _QUERY_SECRET.finditer(rest))
    else:
        for match in _KEYWORD_SECRET.finditer(url):
            found.update((match.group(2), match.group(2).strip("'")))
    found |= {urllib.parse.unquote(secret) for secret in found}
    found.discard("")
    return tuple(sorted(found, key=len, reverse=True))


def redact(text: str, url: str) -> str:
    """Text that may quote parts of a URL (a driver's error message), with its secrets masked.

    Args:
        text: the text.
        url: the URL whose secrets must not show.

    Returns:
        The text with every secret of `url` replaced by `***`.
    """
    for secret in url_secrets(url):
        text = text.replace(secret, MASK)
    return text
