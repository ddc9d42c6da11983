"""URLs: eventvault's options are read and stripped; libpq gets the rest."""

from __future__ import annotations

import pytest

from eventvault.errors import InvalidURLError
from eventvault.store.postgres._config import DEFAULT_POOL_MAX, DEFAULT_SCHEMA, parse_url


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
