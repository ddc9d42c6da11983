"""Engines found by URL scheme: registered by a call or declared by an entry point."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import eventvault
from eventvault import NewEvent, StreamState
from eventvault.errors import InvalidURLError, ReadOnlyStoreError
from eventvault.store.memory import MemoryEventStore
from eventvault.store.registry import (
    ConnectOptions,
    register_engine,
    registered_schemes,
    unregister_engine,
)
from eventvault.store.url import StoreURL
from tests.cli.cli_harness import Cli

from .conftest import install_distribution
from .toy import ToyEventStore, ToyLog, open_toy

ONE = [NewEvent("Happened", {"n": 1})]


@pytest.mark.usefixtures("toy_registered")
def test_an_engine_registered_for_a_scheme_opens_its_urls() -> None:
    with eventvault.connect("toy://shop") as store:
        assert isinstance(store, ToyEventStore)
        store.append_to_stream("order-1", ONE, expected_version=StreamState.NO_STREAM)
    with eventvault.connect("toy://shop") as again:
        assert again.get_stream_version("order-1") == 0
        assert again.engine == "toy"
        assert again.embedded
        assert again.storage_file is None
        assert again.storage_size() is None


@pytest.mark.usefixtures("toy_registered")
def test_connect_async_opens_a_registered_engine() -> None:
    async def main() -> int:
        async with eventvault.connect_async("toy://async") as store:
            await store.append_to_stream("s-1", ONE, expected_version=StreamState.ANY)
            return await store.head_position()

    assert asyncio.run(main()) == 1


def test_an_engine_declared_by_an_entry_point_is_loaded_when_its_scheme_is_used(
    toy_entry_point: Path,
) -> None:
    assert "toy" not in registered_schemes()
    with eventvault.connect("toy://declared") as store:
        assert isinstance(store, ToyEventStore)
        store.append_to_stream("s-1", ONE, expected_version=StreamState.ANY)
    assert "toy" in registered_schemes()


def test_an_entry_point_that_cannot_be_loaded_is_named_in_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    install_distribution(site, "broken_engine", {"broken": "no_such_module_here:open"})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(InvalidURLError) as caught:
        eventvault.connect("broken://x")
    message = str(caught.value)
    assert "no_such_module_here:open" in message
    assert "eventvault.engines" in message
    assert "ModuleNotFoundError" in message


def test_an_unknown_scheme_lists_the_registered_engines(toy_registered: None) -> None:
    with pytest.raises(InvalidURLError, match=r"unknown scheme 'nosuch'.*registered one: toy"):
        eventvault.connect("nosuch://x")


@pytest.mark.parametrize("scheme", ["", "Toy", "1toy", "to y", "toy://"])
def test_a_scheme_that_is_not_a_url_scheme_cannot_be_registered(scheme: str) -> None:
    with pytest.raises(InvalidURLError, match="scheme is a lower-case name"):
        register_engine(scheme, open_toy)


def test_a_taken_scheme_is_refused_unless_replaced_and_a_builtin_comes_back() -> None:
    with pytest.raises(InvalidURLError, match="already registered for 'memory'"):
        register_engine("memory", open_toy)
    register_engine("memory", open_toy, replace=True)
    try:
        with eventvault.connect("memory://") as store:
            assert isinstance(store, ToyEventStore)
    finally:
        unregister_engine("memory")
    with eventvault.connect("memory://") as store:
        assert isinstance(store, MemoryEventStore)


def test_an_engine_that_ignores_read_only_is_refused_when_read_only_is_asked() -> None:
    def careless(url: StoreURL, options: ConnectOptions) -> ToyEventStore:
        return ToyEventStore(ToyLog(), url.text)

    register_engine("careless", careless)
    try:
        with pytest.raises(InvalidURLError, match="cannot open a store read-only"):
            eventvault.connect("careless://", read_only=True)
        with eventvault.connect("careless://") as store:
            assert not store.read_only
    finally:
        unregister_engine("careless")


def test_an_opener_that_returns_no_store_is_reported() -> None:
    register_engine("hollow", lambda url, options: "a store")  # type: ignore[arg-type]
    try:
        with pytest.raises(InvalidURLError, match="returned 'a store', not an EventStore"):
            eventvault.connect("hollow://")
    finally:
        unregister_engine("hollow")


@pytest.mark.usefixtures("toy_registered")
def test_a_toy_store_opened_read_only_refuses_appends() -> None:
    with eventvault.connect("toy://ro", read_only=True) as store:
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            store.append_to_stream("s-1", ONE, expected_version=StreamState.ANY)
        assert store.head_position() == 0


@pytest.mark.usefixtures("toy_entry_point")
def test_the_command_line_uses_an_engine_declared_by_an_entry_point() -> None:
    cli = Cli()
    appended = cli("append", "order-1", "OrderPlaced", '{"items": 2}', "--url", "toy://cli")
    assert appended.exit_code == 0, appended.output
    read = cli("read", "order-1", "--json", "--url", "toy://cli")
    assert read.exit_code == 0, read.output
    assert json.loads(read.stdout)["data"] == {"items": 2}
    stats = json.loads(cli("stats", "--json", "--url", "toy://cli").stdout)
    assert (stats["engine"], stats["event_count"], stats["file_size_bytes"]) == ("toy", 1, None)
    migrated = cli("migrate", "toy://cli")
    assert migrated.exit_code == 0, migrated.output
    assert "snapshots" in migrated.stdout  # the component tables, made through the seam
