"""Store URLs: one parser for `connect`, `connect_async` and the command line.

A store is named by a URL whose scheme picks the engine (`sqlite:///app.db`, `memory://`,
`postgresql://user@host/db`, or the scheme of an engine registered by a package), or by a plain
file path, which names a SQLite file. The parser splits a URL into what every engine and
interface reads; what the parts mean within an engine is that engine's business.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from eventvault.errors import InvalidURLError
from eventvault.store.masking import is_libpq_keywords, mask_url

__all__ = ["PATH_SCHEME", "StoreURL", "mask_url", "parse_url"]

PATH_SCHEME: Final = "sqlite"
"""The engine a plain file path (a URL without `://`) names."""

# Names that look like a scheme but lack the `://`: `memory`, `memory:` and `sqlite:/` name no
# file a user meant to create.
_BARE_SCHEMES: Final = frozenset({"memory", "sqlite", "postgresql", "postgres"})
_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.-]*")


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A store URL split into the parts engines and interfaces read.

    Attributes:
        text: the URL as given.
        scheme: the engine's scheme, in lower case; `sqlite` for a plain file path.
        host: the URL's host part without credentials (`""` for a plain path).
        location: what the URL names within its engine: a plain file path as given; otherwise
            the URL's path without its first `/` (`sqlite:///data/app.db` gives `data/app.db`,
            `sqlite:////srv/app.db` gives `/srv/app.db`, `postgresql://host/bank` gives `bank`,
            `memory://` gives `""`).
        options: the query string's options, name to value (the last one wins).
        display: the URL with any password masked, for messages and output.
        plain_path: the URL is a plain file path, without a scheme.
    """

    text: str
    scheme: str
    host: str
    location: str
    options: Mapping[str, str]
    display: str
    plain_path: bool


def parse_url(url: object) -> StoreURL:
    """Split a store URL into its parts.

    Args:
        url: a URL such as `sqlite:///app.db?synchronous=NORMAL`, `memory://` or
            `postgresql://user@host/db`, or a plain file path such as `data/app.db`.

    Returns:
        The parsed URL.

    Raises:
        InvalidURLError: the URL is not a non-empty str, names a scheme without `://`
            (`memory:`), or gives options to a plain file path.
    """
    if not isinstance(url, str) or not url:
        raise InvalidURLError(mask_url(str(url)), "a store URL is a non-empty str")
    if is_libpq_keywords(url):
        # Else it would name a SQLite file, with the password in its name.
        raise InvalidURLError(
            mask_url(url),
            "a libpq key=value connection string is not a store URL; use "
            "postgresql://user:password@host:port/database",
        )
    if "://" not in url:
        if url.rstrip(":/").lower() in _BARE_SCHEMES:
            raise InvalidURLError(
                mask_url(url), "a URL needs '://': memory://, sqlite:///path, postgresql://..."
            )
        if "?" in url:
            raise InvalidURLError(
                mask_url(url),
                f"options go with a sqlite: URL, as in sqlite:///{url.split('?', 1)[0]}?...",
            )
        if not url.lower().startswith("sqlite:"):
            return StoreURL(url, PATH_SCHEME, "", url, {}, url, plain_path=True)
        scheme = PATH_SCHEME  # `sqlite:app.db`, an older spelling of sqlite:///app.db
    else:
        scheme = url.split(":", 1)[0].lower()
    if not _SCHEME.fullmatch(scheme):
        raise InvalidURLError(
            mask_url(url), f"{scheme!r} is not a URL scheme (a letter, then letters, digits, + - .)"
        )
    parts = urllib.parse.urlsplit(url)
    return StoreURL(
        text=url,
        scheme=scheme,
        host=parts.netloc.rpartition("@")[2],
        location=parts.path[1:] if parts.path.startswith("/") else parts.path,
        options=dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)),
        display=mask_url(url),
        plain_path=False,
    )
