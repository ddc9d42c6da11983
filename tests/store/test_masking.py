"""Masking credentials: every form of password libpq accepts, hidden in what users see."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import eventvault
from eventvault.errors import InvalidURLError
from eventvault.store.masking import mask_url, redact, url_secrets

SECRET = "s3cret-Pw"

FORMS: list[tuple[str, str]] = [
    (
        f"postgresql://app:{SECRET}@db.internal:5432/bank",
        "postgresql://app:***@db.internal:5432/bank",
    ),
    (f"postgres://app:{SECRET}@db/bank?schema=x", "postgres://app:***@db/bank?schema=x"),
    (f"postgresql://db/bank?password={SECRET}", "postgresql://db/bank?password=***"),
    (
        f"postgresql://app@db/bank?sslmode=require&password={SECRET}&schema=x",
        "postgresql://app@db/bank?sslmode=require&password=***&schema=x",
    ),
    (f"postgresql://db/bank?sslpassword={SECRET}", "postgresql://db/bank?sslpassword=***"),
    (
        f"postgresql://app:{SECRET}@h1:5432,h2:5433/bank",
        "postgresql://app:***@h1:5432,h2:5433/bank",
    ),
    ("postgresql://app:s3c%40ret@db/bank", "postgresql://app:***@db/bank"),
    ("postgresql://app:p@ss@db/bank", "postgresql://app:***@db/bank"),
    ("postgresql://app:p?ss#w@db/bank", "postgresql://app:***@db/bank"),
    ("postgresql://app:pa/ss@db/bank", "postgresql://app:***@db/bank"),
    (
        f"host=db user=app password={SECRET} dbname=bank",
        "host=db user=app password=*** dbname=bank",
    ),
    ("host=db password = 's3 cret' dbname=bank", "host=db password = *** dbname=bank"),
]


@pytest.mark.parametrize(("url", "masked"), FORMS, ids=[masked for _, masked in FORMS])
def test_every_form_of_password_is_masked_and_the_rest_kept(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app@db/bank",
        "postgresql://db:5432/bank?application_name=me@laptop",
        "postgresql://app@h1:5432,h2:5433/bank?application_name=me@laptop",
        "sqlite:///data/bank.db?synchronous=NORMAL",
        "bank.db",
        "memory://",
    ],
)
def test_a_url_without_a_password_is_shown_as_given(url: str) -> None:
    assert mask_url(url) == url
    assert url_secrets(url) == ()


def test_redact_hides_the_secret_as_typed_and_percent_decoded() -> None:
    url = "postgresql://app:s3c%40ret@db/bank"
    assert set(url_secrets(url)) == {"s3c%40ret", "s3c@ret"}
    text = 'invalid token "s3c%40ret" (decoded: s3c@ret)'
    assert redact(text, url) == 'invalid token "***" (decoded: ***)'


def test_masking_needs_no_database_driver() -> None:
    # The command line masks URLs of every engine without loading psycopg.
    code = (
        "import sys; import eventvault.store.masking, eventvault.cli.app; "
        "assert 'psycopg' not in sys.modules, sorted(m for m in sys.modules if 'psycopg' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresq://app:{SECRET}@db/bank",
        f"sqlite://app:{SECRET}@remote/bank.db",
        f"memory://app:{SECRET}@x",
        f"host=db user=app password={SECRET} dbname=bank",
        f"bank.db?password={SECRET}",
    ],
    ids=["bad-scheme", "sqlite-remote", "memory-path", "libpq-keywords", "options-on-a-path"],
)
def test_a_refused_url_is_named_with_its_password_masked(url: str) -> None:
    with pytest.raises(InvalidURLError) as caught:
        eventvault.connect(url)
    for shown in (str(caught.value), repr(caught.value), caught.value.url):
        assert SECRET not in shown
    assert "***" in caught.value.url


def test_a_libpq_connection_string_is_refused_instead_of_naming_a_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidURLError, match="libpq key=value connection string"):
        eventvault.connect(f"host=db user=app password={SECRET}")
    assert list(tmp_path.iterdir()) == []
