"""PostgreSQL passwords never show: not in command output, errors, reprs or logs.

Each test puts a password in every form libpq accepts (the URL's user information, plain or
percent-encoded, and `?password=`) and checks that it appears nowhere a user or a log reader
could see it: stdout, stderr, the messages and reprs of errors (and of their causes, which a
traceback prints), the store's repr, and every log record.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import eventvault
from eventvault.errors import InvalidURLError, StorageError
from eventvault.store.postgres import PostgresEventStore, migrate
from tests.cli.cli_harness import Cli, seed
from tests.postgres.conftest import with_options

SECRET = "s3cret-Pw.42"


def _forms(url: str, secret: str) -> list[str]:
    """`url` (which has no password) with `secret` in each form libpq accepts."""
    parts = urllib.parse.urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    user = user or "postgres"
    quoted = urllib.parse.quote(secret, safe="")
    query = f"{parts.query}&" if parts.query else ""
    base = f"{parts.scheme}://{{}}{host}{parts.path}"
    return [
        base.format(f"{user}:{secret}@") + (f"?{parts.query}" if parts.query else ""),
        base.format(f"{user}:{quoted}@") + (f"?{parts.query}" if parts.query else ""),
        base.format(f"{user}@") + f"?{query}password={quoted}",
    ]


def _assert_hidden(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text
        assert urllib.parse.quote(secret, safe="") not in text


def _error_texts(error: BaseException) -> list[str]:
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )


class RefusingServer:
    """Just enough of a PostgreSQL server to ask for a password and refuse it.

    Attributes:
        port: the port it listens on, on 127.0.0.1.
        passwords: the passwords clients sent, in order.
    """

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.passwords: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._refuse, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def _refuse(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError, ConnectionError):
            while True:
                (length,) = struct.unpack("!I", self._read(conn, 4))
                body = self._read(conn, length - 4)
                if struct.unpack("!I", body[:4])[0] in (80877103, 80877104):
                    conn.sendall(b"N")  # no SSL, no GSS encryption: go on in the clear
                    continue
                break
            conn.sendall(b"R" + struct.pack("!II", 8, 3))  # send your password in clear
            self._read(conn, 1)
            (length,) = struct.unpack("!I", self._read(conn, 4))
            self.passwords.append(self._read(conn, length - 4).rstrip(b"\0").decode())
            fields = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "app"\0\0'
            conn.sendall(b"E" + struct.pack("!I", len(fields) + 4) + fields)

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def refusing() -> Iterator[RefusingServer]:
    server = RefusingServer()
    yield server
    server.close()


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_a_refused_password_is_named_nowhere_by_the_library(
    refusing: RefusingServer, every_log: pytest.LogCaptureFixture
) -> None:
    for url in _forms(f"postgresql://app@127.0.0.1:{refusing.port}/bank", SECRET):
        with pytest.raises(StorageError) as caught:
            PostgresEventStore(url)
        assert "password authentication failed" in str(caught.value)
        _assert_hidden(SECRET, *_error_texts(caught.value))
        with pytest.raises(StorageError) as caught:
            migrate(url)
        _assert_hidden(SECRET, *_error_texts(caught.value))
    # The password did reach the server, in every form: there was something to hide.
    assert refusing.passwords == [SECRET] * 6
    _assert_hidden(SECRET, _log_text(every_log))


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["stats", "--json"],
        ["log"],
        ["read", "account-1"],
        ["append", "account-1", "Opened"],
        ["export", "-"],
        ["migrate"],
    ],
    ids=lambda command: "-".join(command),
)
def test_a_refused_password_is_named_nowhere_by_the_command_line(
    refusing: RefusingServer, every_log: pytest.LogCaptureFixture, command: list[str]
) -> None:
    cli = Cli()
    for url in _forms(f"postgresql://app@127.0.0.1:{refusing.port}/bank", SECRET):
        args = [*command, url] if command == ["migrate"] else [*command, "--url", url]
        result = cli(*args)
        assert result.exit_code == 8, result.output
        assert "password authentication failed" in result.stderr
        _assert_hidden(SECRET, result.stdout, result.stderr)
    _assert_hidden(SECRET, _log_text(every_log))


def test_import_and_copy_into_a_refusing_server_name_no_password(
    refusing: RefusingServer, every_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    cli = Cli()
    source = str(tmp_path / "source.db")
    seed(source, [("account-1", "Opened", {})])
    exported = tmp_path / "export.jsonl"
    assert cli("export", str(exported), "--url", source).exit_code == 0
    for url in _forms(f"postgresql://app@127.0.0.1:{refusing.port}/bank", SECRET):
        for args in (["import", str(exported), "--url", url], ["copy", source, url]):
            result = cli(*args)
            assert result.exit_code == 8, result.output
            _assert_hidden(SECRET, result.stdout, result.stderr)
    _assert_hidden(SECRET, _log_text(every_log))


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://app:{SECRET}%zz@db/bank",
        f"postgresql://app:{SECRET}@db/bank?bogus=1",
        f"postgresql://app@db/bank?password={SECRET}&bogus=1",
        f"postgresql://app:{SECRET}@db/bank?pool_max=many",
        f"postgresql://app:{SECRET}@db/bank?schema=Not-An-Identifier",
        f"postgresql://app:{SECRET}@db:port/bank",
        f"postgresql://app:{SECRET}/x@db/bank",
        f"postgresql://app:{SECRET}@x@db/bank",
        f"postgresql://app:{SECRET}?x@db/bank",
        f"postgresql://app:{SECRET}#x@db/bank",
    ],
    ids=[
        "bad-percent-encoding",
        "unknown-parameter",
        "unknown-parameter-beside-password",
        "bad-pool-max",
        "bad-schema",
        "bad-port",
        "slash-in-password",
        "at-in-password",
        "question-mark-in-password",
        "hash-in-password",
    ],
)
def test_a_malformed_url_is_refused_naming_no_password(
    url: str, every_log: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(InvalidURLError) as caught:
        eventvault.connect(url)
    _assert_hidden(SECRET, *_error_texts(caught.value), caught.value.url, _log_text(every_log))
    result = Cli()("stats", "--url", url)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: cannot open 'postgresql://app")
    _assert_hidden(SECRET, result.stdout, result.stderr)


def test_a_password_holding_reserved_characters_asks_for_percent_encoding() -> None:
    with pytest.raises(InvalidURLError, match="must be percent-encoded"):
        eventvault.connect("postgresql://app:p@ss@db/bank")


# -- with a server that lets the client in ---------------------------------------------------


@pytest.fixture
def secret_urls(server_url: str, new_schema: Callable[[], str]) -> tuple[str, list[str]]:
    """The password, and URLs of fresh stores on the test server with it in each form.

    The test server's own password is used when its URL has one; otherwise any password will
    do, as a server that trusts the client never asks for it."""
    parts = urllib.parse.urlsplit(server_url)
    secret = urllib.parse.unquote(parts.password) if parts.password else SECRET
    plain = server_url.replace(f":{parts.password}@", "@") if parts.password else server_url
    urls = [
        with_options(url, schema=new_schema(), auto_migrate="true") for url in _forms(plain, secret)
    ]
    return secret, urls


def test_the_store_and_its_messages_show_the_url_without_its_password(
    secret_urls: tuple[str, list[str]], every_log: pytest.LogCaptureFixture
) -> None:
    secret, urls = secret_urls
    for url in urls:
        with eventvault.connect(url) as store:
            store.append_to_stream(
                "account-1",
                [eventvault.NewEvent("Opened", {})],
                expected_version=eventvault.StreamState.ANY,
            )
            assert "***" in store.url
            _assert_hidden(secret, repr(store), store.url)
    _assert_hidden(secret, _log_text(every_log))


def test_stats_copy_and_import_summaries_show_no_password(
    secret_urls: tuple[str, list[str]], every_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    secret, urls = secret_urls
    cli = Cli()
    source = str(tmp_path / "source.db")
    seed(source, [("account-1", "Opened", {}), ("account-2", "Opened", {})])
    exported = tmp_path / "export.jsonl"
    assert cli("export", str(exported), "--url", source).exit_code == 0
    copied, imported, spare = urls
    outputs: list[str] = []
    for args in (
        ["copy", source, copied],
        ["import", str(exported), "--url", imported],
        ["stats", "--url", copied],
        ["stats", "--json", "--url", imported],
        ["copy", imported, str(tmp_path / "back.db")],
        ["append", "account-9", "Opened", "--url", spare],
        ["migrate", spare],
    ):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        outputs += [result.stdout, result.stderr]
    summaries = "\n".join(outputs)
    assert "copied 2 events from" in summaries and "imported 2 events into" in summaries
    assert summaries.count(":***@") + summaries.count("password=***") >= 4
    _assert_hidden(secret, summaries, _log_text(every_log))
