"""The one URL parser of `connect`, `connect_async` and the command line."""

from __future__ import annotations

import pytest

from eventvault.errors import InvalidURLError
from eventvault.store.url import mask_url, parse_url


@pytest.mark.parametrize(
    ("url", "scheme", "host", "location", "options", "plain"),
    [
        ("events.db", "sqlite", "", "events.db", {}, True),
        ("/srv/data/events.db", "sqlite", "", "/srv/data/events.db", {}, True),
        ("sqlite:///events.db", "sqlite", "", "events.db", {}, False),
        ("sqlite:////srv/events.db", "sqlite", "", "/srv/events.db", {}, False),
        ("sqlite://localhost/events.db", "sqlite", "localhost", "events.db", {}, False),
        ("sqlite:events.db", "sqlite", "", "events.db", {}, False),
        ("sqlite:///:memory:", "sqlite", "", ":memory:", {}, False),
        (
            "SQLite:///a.db?synchronous=normal&busy_timeout=5",
            "sqlite",
            "",
            "a.db",
            {"synchronous": "normal", "busy_timeout": "5"},
            False,
        ),
        ("memory://", "memory", "", "", {}, False),
        ("memory:///", "memory", "", "", {}, False),
        (
            "postgresql://app:pw@db.internal:5433/bank?schema=ev",
            "postgresql",
            "db.internal:5433",
            "bank",
            {"schema": "ev"},
            False,
        ),
        ("toy://shop", "toy", "shop", "", {}, False),
    ],
)
def test_a_url_is_split_into_scheme_host_location_and_options(
    url: str, scheme: str, host: str, location: str, options: dict[str, str], plain: bool
) -> None:
    parsed = parse_url(url)
    assert parsed.text == url
    assert (parsed.scheme, parsed.host, parsed.location) == (scheme, host, location)
    assert dict(parsed.options) == options
    assert parsed.plain_path is plain


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "non-empty str"),
        ("memory", "needs '://'"),
        ("memory:", "needs '://'"),
        ("sqlite:/", "needs '://'"),
        ("postgresql", "needs '://'"),
        ("app.db?synchronous=NORMAL", "sqlite:///app.db?"),
        ("sqlite:app.db?synchronous=NORMAL", "options go with a sqlite: URL"),
        ("./odd://x", "is not a URL scheme"),
    ],
)
def test_a_malformed_url_is_refused_naming_the_problem(url: str, reason: str) -> None:
    with pytest.raises(InvalidURLError) as caught:
        parse_url(url)
    assert reason in str(caught.value)


def test_a_url_that_is_not_a_str_is_refused() -> None:
    with pytest.raises(InvalidURLError, match="non-empty str"):
        parse_url(b"events.db")


@pytest.mark.parametrize(
    ("url", "display"),
    [
        ("postgresql://app:s3cret@db/bank", "postgresql://app:***@db/bank"),
        ("postgresql://app:s3cret@db/bank?schema=x", "postgresql://app:***@db/bank?schema=x"),
        (
            "postgresql://app@db/bank?password=s3cret&schema=x",
            "postgresql://app@db/bank?password=***&schema=x",
        ),
        ("postgresql://db/bank?sslpassword=k3y", "postgresql://db/bank?sslpassword=***"),
        ("postgresql://a%3Ab:p%40ss@db:5432/bank", "postgresql://a%3Ab:***@db:5432/bank"),
        ("postgresql://app@db/bank", "postgresql://app@db/bank"),
        ("events.db", "events.db"),
        ("sqlite:///events.db?synchronous=NORMAL", "sqlite:///events.db?synchronous=NORMAL"),
    ],
)
def test_the_display_form_masks_every_password(url: str, display: str) -> None:
    assert mask_url(url) == display
    assert parse_url(url).display == display
