"""URLs: eventvault's options are read and stripped; libpq gets the rest."""

from __future__ import annotations

import pytest

from eventvault.errors import InvalidURLError
from eventvault.store.postgres._config import (
    DEFAULT_POOL_MAX,
    DEFAULT_SCHEMA,
    DEFAULT_UNAVAILABLE_TIMEOUT,
    connect_timeout,
    parse_url,
    server_address,
)


def test_defaults_apply_when_the_url_has_no_options() -> None:
    options = parse_url("postgresql://u@h/db")
    assert (options.schema, options.auto_migrate, options.pool_max) == (
        DEFAULT_SCHEMA,
        False,
        DEFAULT_POOL_MAX,
    )


def test_eventvault_options_are_stripped_and_others_kept() -> None:
    options = parse_url(
        "postgresql://u@h/db?schema=orders&sslmode=disable&auto_migrate=yes&pool_max=3"
    )
    assert options.conninfo == "postgresql://u@h/db?sslmode=disable&client_encoding=UTF8"
    assert (options.schema, options.auto_migrate, options.pool_max) == ("orders", True, 3)


def test_the_postgres_scheme_is_accepted() -> None:
    assert parse_url("postgres://u@h/db").conninfo == "postgres://u@h/db?client_encoding=UTF8"


def test_the_client_encoding_is_always_utf8() -> None:
    # Binary text parameters are not converted by the server: they must be in its encoding.
    options = parse_url("postgresql://u@h/db?client_encoding=LATIN1&sslmode=disable")
    assert options.conninfo == "postgresql://u@h/db?sslmode=disable&client_encoding=UTF8"


def test_the_password_is_masked_in_the_display_url() -> None:
    options = parse_url("postgresql://user:s3cret@host:5432/db?schema=x")
    assert "s3cret" not in options.display_url
    assert options.display_url == "postgresql://user:***@host:5432/db?schema=x"
    assert "s3cret" in options.conninfo


def test_keyword_arguments_override_the_url() -> None:
    options = parse_url("postgresql://u@h/db?schema=a", schema="b", pool_max=4)
    assert (options.schema, options.pool_max) == ("b", 4)


def test_a_schema_name_is_at_most_52_characters_so_its_channel_fits_63() -> None:
    assert parse_url("postgresql://u@h/db", schema="s" * 52).schema == "s" * 52
    with pytest.raises(InvalidURLError, match="at most 52 characters"):
        parse_url("postgresql://u@h/db", schema="s" * 53)


@pytest.mark.parametrize("name", ["Upper", "has-dash", "1digit", "", "x" * 53, 'a"b'])
def test_a_bad_schema_name_raises_invalid_url_error(name: str) -> None:
    with pytest.raises(InvalidURLError, match="schema"):
        parse_url("postgresql://u@h/db", schema=name)


def test_a_bad_auto_migrate_value_raises_invalid_url_error() -> None:
    with pytest.raises(InvalidURLError, match="auto_migrate"):
        parse_url("postgresql://u@h/db?auto_migrate=maybe")


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_pool_max_raises_invalid_url_error(value: str) -> None:
    with pytest.raises(InvalidURLError, match="pool_max"):
        parse_url(f"postgresql://u@h/db?pool_max={value}")


def test_a_url_of_another_scheme_raises_invalid_url_error() -> None:
    with pytest.raises(InvalidURLError):
        parse_url("mysql://u@h/db")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:s3cret@host:5432/db?schema=x",
        "postgresql://user@host/db?password=s3cret&schema=x",
        "postgresql://user:s3%63ret@host/db",
    ],
)
def test_the_options_repr_and_display_url_hold_no_password(url: str) -> None:
    options = parse_url(url)
    assert "s3cret" not in repr(options) and "s3%63ret" not in repr(options)
    assert "***" in options.display_url
    assert "s3cret" in options.conninfo or "s3%63ret" in options.conninfo


def test_a_url_of_another_scheme_is_refused_with_its_password_masked() -> None:
    with pytest.raises(InvalidURLError) as caught:
        parse_url("mysql://user:s3cret@host/db")
    assert "s3cret" not in str(caught.value)


def test_unavailable_timeout_defaults_to_a_few_seconds_and_is_read_from_the_url() -> None:
    assert parse_url("postgresql://u@h/db").unavailable_timeout == DEFAULT_UNAVAILABLE_TIMEOUT
    options = parse_url("postgresql://u@h/db?unavailable_timeout=1.5&sslmode=disable")
    assert options.unavailable_timeout == 1.5
    assert options.conninfo == "postgresql://u@h/db?sslmode=disable&client_encoding=UTF8"
    assert (
        parse_url(
            "postgresql://u@h/db?unavailable_timeout=9", unavailable_timeout=2
        ).unavailable_timeout
        == 2
    )


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan", ""])
def test_a_bad_unavailable_timeout_raises_invalid_url_error_naming_it(value: str) -> None:
    with pytest.raises(InvalidURLError, match=f"unavailable_timeout must be .*{value!r}"):
        parse_url(f"postgresql://u@h/db?unavailable_timeout={value}")


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("postgresql://u:***@db.example:5433/x?schema=s", "db.example:5433"),
        ("postgresql://u@db.example/x", "db.example:5432"),
        ("postgresql:///x?host=/run/postgresql&port=5434", "/run/postgresql:5434"),
        ("postgresql://u@a:1,b:2/x", "a:1,b:2"),
        ("postgresql://u@[::1]:6000/x", "[::1]:6000"),
    ],
)
def test_the_server_address_named_in_messages_is_host_and_port(url: str, server: str) -> None:
    assert server_address(url) == server


def test_the_connect_timeout_follows_unavailable_timeout_in_whole_seconds_from_2() -> None:
    assert [connect_timeout(s) for s in (0.1, 2, 2.5, 5)] == [2, 2, 3, 5]


@pytest.mark.parametrize("value", [0, -2.5, float("inf"), True])
def test_a_bad_unavailable_timeout_argument_raises_invalid_url_error(value: float) -> None:
    with pytest.raises(InvalidURLError, match="unavailable_timeout must be a number"):
        parse_url("postgresql://u@h/db", unavailable_timeout=value)
