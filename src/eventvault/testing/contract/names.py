"""Contract: hostile names. Stream names, event types, filters and payload keys holding SQL, quotes,
placeholders and pattern characters are data on every engine, never SQL or patterns: stored and
read back exactly, matched literally by filters, and no table but the events' is touched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from eventvault import EventStore, NewEvent, StreamAppend, StreamState, connect
from eventvault.serialization import verify_chain
from eventvault.store.base import DEFAULT_PAGE_SIZE
from eventvault.store.seam import Transaction
from eventvault.testing.contract.base import ContractBase
from eventvault.testing.contract.seam import COUNTS, bump, count_of

__all__ = ["HOSTILE_NAMES", "HostileNamesContract"]

HOSTILE_NAMES: Final = (
    "o'brien-1",
    'say "hi"-1',
    "semi;colon--1",
    "'); DROP TABLE events; --",
    '"; DELETE FROM streams; --',
    "'); DROP TABLE contract_counts; --",
    "x' OR '1'='1",
    "per%cent-1",
    "under_score-1",
    "back\\slash-1",
    "[bracket]-1",
    "star*-1",
    "?-1",
    "$1-1",
    "%s-1",
    "%(name)s-1",
    "{schema}-1",
    "é-\U0001f600",
    " lead-1",
    "trail-1 ",
    "'\"" * 100,
)
"""Names a store must treat as plain text: SQL, quotes, the placeholders of every driver and of
the seam, LIKE and GLOB pattern characters, characters outside the BMP, edge spaces, and the
longest name allowed (200 characters) made of quotes."""

_DATA: Final[dict[str, object]] = {
    "'); DROP TABLE events; --": "%_\\",
    "k\x00ey": "v\x00alue",
    "%s": ["$1", "?", "{schema}"],
}
_METADATA: Final[dict[str, object]] = {"correlation_id": "'; --", "\x00": "\x00", "%": "_"}


def _streams(store: EventStore, prefix: str, *, backwards: bool = False) -> list[str]:
    """The stream names of the events of streams starting with `prefix`, in log order (or
    reversed)."""
    return [e.stream_name for e in store.read_all(stream_prefix=prefix, backwards=backwards)]


def _subscribed(store: EventStore, prefix: str) -> list[str]:
    """The stream names a subscription to streams starting with `prefix` delivers of the log as
    it is now, in order."""
    names: list[str] = []
    with store.subscribe_to_all(stream_prefix=prefix) as subscription:
        # A zero timeout still queries once: the log does not grow meanwhile, so the first
        # empty answer means the subscriber has caught up with all of it.
        while batch := subscription.next_batch(timeout=0):
            names.extend(e.stream_name for e in batch)
    return names


def _append_each(store: EventStore, names: Sequence[str]) -> None:
    """One event to each stream named, in one append."""
    store.append_to_streams(
        [StreamAppend(name, [NewEvent("Named", {"name": name})], StreamState.ANY) for name in names]
    )


class HostileNamesContract(ContractBase):
    """SQL and pattern characters in names and filters are data (DESIGN.md section 13)."""

    def test_names_holding_sql_and_placeholders_are_stored_and_read_back_exactly(
        self, store: EventStore
    ) -> None:
        for name in HOSTILE_NAMES:
            store.append_to_stream(
                name,
                [NewEvent(name[:200], _DATA, metadata=_METADATA) for _ in range(2)],
                expected_version=StreamState.NO_STREAM,
            )
        for name in HOSTILE_NAMES:
            recorded = list(store.read_stream(name))
            assert [(e.stream_name, e.stream_position) for e in recorded] == [(name, 0), (name, 1)]
            assert all(e.event_type == name and e.data == _DATA for e in recorded)
            assert all(e.metadata == _METADATA for e in recorded)
            assert store.get_stream_version(name) == 1
            with store.subscribe_to_stream(name) as subscription:
                assert [e.stream_name for e in subscription.next_batch(timeout=5)] == [name] * 2
        assert [e.stream_name for e in store.read_all()] == [n for n in HOSTILE_NAMES for _ in "ab"]
        listed = [(s.stream_name, s.version) for s in store.list_streams()]
        assert listed == [(name, 1) for name in sorted(HOSTILE_NAMES)]
        assert verify_chain(store.export_events()) == 2 * len(HOSTILE_NAMES)
        with connect("memory://") as copy:
            copy.import_events(store.export_events())
            assert list(copy.read_all()) == list(store.read_all())

    def test_a_stream_prefix_matches_literally_never_as_a_pattern(self, store: EventStore) -> None:
        _append_each(
            store,
            [
                "per%cent-1",
                "perXcent-1",
                "per_cent-1",
                "perYcent-1",
                "back\\slash-1",
                "backslash-1",
                "[ab]-1",
                "a-1",
                "account-1",
                "Account-1",
                "accountant-1",
                "é-1",
                "e-1",
                "\U0001f600-1",
                "\U0001f600\U0001f600-1",
                "o'brien-1",
                "obrien-1",
            ],
        )
        matches = {
            "per%": ["per%cent-1"],
            "per_": ["per_cent-1"],
            "%": [],
            "_": [],
            "*": [],
            "back\\": ["back\\slash-1"],
            "[ab]": ["[ab]-1"],
            "[a": ["[ab]-1"],
            "account-": ["account-1"],
            "Account": ["Account-1"],
            "é": ["é-1"],
            "e": ["e-1"],
            "\U0001f600-": ["\U0001f600-1"],
            "o'": ["o'brien-1"],
            "per%cent-1": ["per%cent-1"],
            "per%cent-1x": [],
        }
        for prefix, expected in matches.items():
            assert _streams(store, prefix) == expected, prefix
            assert _streams(store, prefix, backwards=True) == expected[::-1], prefix
            assert _subscribed(store, prefix) == expected, prefix

    def test_an_event_type_filter_matches_the_types_named_and_no_other(
        self, store: EventStore
    ) -> None:
        types = ["A%", "AB", "A_", "AC", "A'", "A''", "A", "a", "A ", "A;--", "A\\", "A\\\\"]
        for event_type in types:
            store.append_to_stream(
                "typed-1", [NewEvent(event_type, {})], expected_version=StreamState.ANY
            )
        for event_type in types:
            found = [e.event_type for e in store.read_all(event_types=[event_type])]
            assert found == [event_type]
        assert [e.event_type for e in store.read_all(event_types=["A%", "A_", "nothing"])] == [
            "A%",
            "A_",
        ]
        with store.subscribe_to_all(event_types=["A'", "A\\"]) as subscription:
            assert [e.event_type for e in subscription.next_batch(timeout=5)] == ["A'", "A\\"]

    def test_the_longest_names_match_as_a_prefix_and_as_a_type(self, store: EventStore) -> None:
        name = "'%_\\" * 50
        store.append_to_stream(name, [NewEvent(name, {})], expected_version=StreamState.ANY)
        store.append_to_stream(
            name[:199], [NewEvent("Other", {})], expected_version=StreamState.ANY
        )
        assert _streams(store, name) == [name]
        assert _streams(store, name[:199]) == [name, name[:199]]
        assert [e.event_type for e in store.read_all(event_types=[name])] == [name]

    def test_names_holding_sql_touch_no_other_table(self, store: EventStore) -> None:
        store.use(COUNTS)

        def set_canary(tx: Transaction) -> None:
            bump(tx, "canary", 7)

        store.run_transaction(set_canary)
        for name in HOSTILE_NAMES:
            store.append_to_stream(
                name, [NewEvent(name[:200], _DATA)], expected_version=StreamState.ANY
            )
            list(store.read_all(stream_prefix=name, event_types=[name[:200]]))
            _subscribed(store, name)
        assert count_of(store, "canary") == 7
        assert store.stats().event_count == len(HOSTILE_NAMES)
        assert store.stats().stream_count == len(HOSTILE_NAMES)

    def test_streams_named_with_sql_and_patterns_list_in_code_point_order_across_pages(
        self, store: EventStore
    ) -> None:
        alphabet = ["'", '"', "%", "_", "\\", ";", "-", "A", "a", "é", "\U0001f600"]
        names = [
            f"{alphabet[n % len(alphabet)]}{alphabet[n // len(alphabet) % len(alphabet)]}-{n}"
            for n in range(DEFAULT_PAGE_SIZE + 25)
        ]
        _append_each(store, names)
        assert [s.stream_name for s in store.list_streams()] == sorted(names)
