"""Tampering behind the store's back, in SQLite and PostgreSQL: `verify` names each change.

Each test builds a store of 600 events in 3 streams (more than two chunks of the tree), signs a
checkpoint, changes the database directly as someone with access to it could, then checks that
`verify_store` (and `eventvault audit verify`) names the first event that differs, and that proofs
against the earlier checkpoint fail.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import eventvault
from eventvault import NewEvent, StreamState
from eventvault.audit import AuditLedger, SigningKey, generate_key, verify_store
from eventvault.audit.checkpoints import sign_checkpoint
from eventvault.audit.tree import CHUNK_LEAVES, node_number
from eventvault.errors import (
    AuditMismatchError,
    CheckpointSignatureError,
    CorruptEventError,
    HashChainError,
    IntegrityError,
)
from eventvault.serialization import event_hash

POSTGRES_URL = os.environ.get("EVENTVAULT_TEST_POSTGRES_URL")


@dataclass
class Target:
    """A store on disk and a way to run SQL on its database behind its back."""

    url: str
    run: Callable[[str, tuple[object, ...]], list[tuple[Any, ...]]]
    mark: str
    prefix: str

    def sql(self, statement: str, *params: object) -> list[tuple[Any, ...]]:
        return self.run(
            statement.replace("{t}", self.prefix).replace("%s", self.mark), tuple(params)
        )


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "sqlite":
        path = str(tmp_path / "store.db")

        def run_sqlite(statement: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                return conn.execute(statement, params).fetchall()
            finally:
                conn.close()

        yield Target(path, run_sqlite, "?", "")
        return
    if POSTGRES_URL is None:
        if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
            pytest.fail(
                "EVENTVAULT_REQUIRE_POSTGRES is set but EVENTVAULT_TEST_POSTGRES_URL is not"
            )
        pytest.skip("set EVENTVAULT_TEST_POSTGRES_URL to tamper with PostgreSQL")
    import psycopg

    schema = f"ev_tamper_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in POSTGRES_URL else "?"

    def run_postgres(statement: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return list(cursor.fetchall()) if cursor.description else []

    try:
        yield Target(
            f"{POSTGRES_URL}{separator}schema={schema}&auto_migrate=true",
            run_postgres,
            "%s",
            f'"{schema}".',
        )
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return generate_key(str(tmp_path_factory.mktemp("keys") / "audit.pem"))


@pytest.fixture
def signed(target: Target, key: SigningKey) -> Target:
    """600 events in 3 streams, covered by a checkpoint."""
    with eventvault.connect(target.url) as store:
        for round_ in range(6):
            for stream in range(3):
                store.append_to_stream(
                    f"account-{stream}",
                    [NewEvent("Deposited", {"amount": round_ * 100 + n}) for n in range(33)]
                    + ([NewEvent("Noted", {"round": round_})] if stream == 0 else []),
                    expected_version=StreamState.ANY,
                )
        store.append_to_stream(
            "account-0", [NewEvent("Closed", {})], expected_version=StreamState.ANY
        )
        assert store.head_position() == 601
        AuditLedger(store).checkpoint(key)
    return target


def verify(target: Target, key: SigningKey) -> IntegrityError:
    with eventvault.connect(target.url) as store, pytest.raises(IntegrityError) as caught:
        verify_store(store, public_keys=[key.public])
    return caught.value


def event_at(target: Target, position: int) -> tuple[str, int]:
    ((name, stream_position),) = target.sql(
        "SELECT stream_name, stream_position FROM {t}events WHERE global_position = %s", position
    )
    return str(name), int(str(stream_position))


def test_an_untouched_store_verifies(signed: Target, key: SigningKey) -> None:
    with eventvault.connect(signed.url) as store:
        report = verify_store(store, public_keys=[key.public])
    assert (report.events, report.tree_size, report.checkpoints) == (601, 601, 1)
    assert report.nodes == 3 and report.keys == "operator"  # two chunks, and their parent


def test_a_changed_payload_byte_is_named(signed: Target, key: SigningKey) -> None:
    name, position = event_at(signed, 300)
    signed.sql(
        "UPDATE {t}events SET data = %s WHERE global_position = 300",
        b'{"amount":999}',
    )
    error = verify(signed, key)
    assert isinstance(error, HashChainError)
    assert (error.stream_name, error.stream_position) == (name, position)


def test_a_changed_hash_is_named_by_the_tree(signed: Target, key: SigningKey) -> None:
    name, position = event_at(signed, 123)
    signed.sql("UPDATE {t}events SET hash = %s WHERE global_position = 123", bytes(32))
    error = verify(signed, key)
    assert isinstance(error, AuditMismatchError)
    assert (error.global_position, error.stream_name, error.stream_position) == (
        123,
        name,
        position,
    )
    assert "recorded" in error.reason


def test_a_rewritten_chain_is_named_by_the_tree(signed: Target, key: SigningKey) -> None:
    # The whole rest of the stream rewritten with hashes that chain: only the tree sees it.
    rows = signed.sql(
        "SELECT global_position, stream_position, event_id, event_type, schema_version, "
        "data, metadata, recorded_at, hash FROM {t}events WHERE stream_name = 'account-2' "
        "ORDER BY stream_position"
    )
    previous = bytes(rows[9][8])
    for row in rows[10:]:
        gp, sp, event_id, etype, version, data, metadata, recorded, _ = row
        data = b'{"amount":0}' if sp == 10 else bytes(data)
        raw_id = event_id if isinstance(event_id, bytes) else uuid.UUID(str(event_id)).bytes
        previous = event_hash(
            previous,
            "account-2",
            int(str(sp)),
            raw_id,
            str(etype),
            int(str(version)),
            int(str(recorded)),
            data,
            bytes(metadata),
        )
        signed.sql(
            "UPDATE {t}events SET data = %s, hash = %s WHERE global_position = %s",
            data,
            previous,
            gp,
        )
    error = verify(signed, key)
    assert isinstance(error, AuditMismatchError)
    assert (error.stream_name, error.stream_position) == ("account-2", 10)


def test_a_changed_position_is_named(signed: Target, key: SigningKey) -> None:
    signed.sql("UPDATE {t}events SET global_position = 9000 WHERE global_position = 200")
    error = verify(signed, key)
    assert isinstance(error, AuditMismatchError)
    assert error.global_position == 200
    assert "missing" in error.reason


def test_a_changed_stream_position_is_named(signed: Target, key: SigningKey) -> None:
    name, _ = event_at(signed, 601)
    signed.sql(
        "UPDATE {t}events SET stream_position = 900 WHERE global_position = 601",
    )
    error = verify(signed, key)
    assert isinstance(error, CorruptEventError)
    assert (error.stream_name, error.global_position) == (name, 601)


def test_a_deleted_row_is_named(signed: Target, key: SigningKey) -> None:
    signed.sql("DELETE FROM {t}events WHERE global_position = 450")
    error = verify(signed, key)
    assert isinstance(error, AuditMismatchError)
    assert error.global_position == 450


def test_a_deleted_last_row_is_named(signed: Target, key: SigningKey) -> None:
    signed.sql("DELETE FROM {t}events WHERE global_position = 601")
    error = verify(signed, key)
    assert isinstance(error, AuditMismatchError)
    assert error.global_position == 601
    assert "deleted" in error.reason


def test_two_swapped_rows_are_named(signed: Target, key: SigningKey) -> None:
    first = signed.sql("SELECT data, hash FROM {t}events WHERE global_position = 10")[0]
    second = signed.sql("SELECT data, hash FROM {t}events WHERE global_position = 20")[0]
    signed.sql("UPDATE {t}events SET data = %s, hash = %s WHERE global_position = 10", *second)
    signed.sql("UPDATE {t}events SET data = %s, hash = %s WHERE global_position = 20", *first)
    error = verify(signed, key)
    assert isinstance(error, AuditMismatchError)
    assert error.global_position == 10


def test_a_row_appended_behind_the_stores_back_is_named(signed: Target, key: SigningKey) -> None:
    # Chained to nothing it should be: its hash is not its bytes' and its stream's.
    signed.sql(
        "INSERT INTO {t}events (global_position, stream_name, stream_position, event_id, "
        "event_type, schema_version, data, metadata, recorded_at, hash) "
        "VALUES (602, 'account-1', 198, %s, 'Deposited', 1, %s, %s, 0, %s)",
        uuid.uuid4().bytes if signed.mark == "?" else uuid.uuid4(),
        b'{"amount":1}',
        b"{}",
        bytes(32),
    )
    error = verify(signed, key)
    assert isinstance(error, HashChainError)
    assert (error.stream_name, error.stream_position) == ("account-1", 198)


def test_a_row_inserted_among_those_a_checkpoint_signed_is_named(
    target: Target, key: SigningKey
) -> None:
    # A position the log skips (PostgreSQL leaves one where a transaction rolled back; here a
    # stream of one event is deleted before the checkpoint), filled later with an event whose
    # hash chains perfectly.
    with eventvault.connect(target.url) as store:
        for name in ("a-1", "a-2", "a-3"):
            store.append_to_stream(name, [NewEvent("A", {})], expected_version=StreamState.ANY)
        target.sql("DELETE FROM {t}events WHERE global_position = 2")
        store.append_to_stream("b-1", [NewEvent("B", {})], expected_version=StreamState.ANY)
        assert [e.global_position for e in store.read_all()] == [1, 3, 4]
        AuditLedger(store).checkpoint(key)
        forged_id = uuid.uuid4()
        forged = event_hash(bytes(32), "c-1", 0, forged_id.bytes, "C", 1, 0, b"{}", b"{}")
        target.sql(
            "INSERT INTO {t}events (global_position, stream_name, stream_position, event_id, "
            "event_type, schema_version, data, metadata, recorded_at, hash) "
            "VALUES (2, 'c-1', 0, %s, 'C', 1, %s, %s, 0, %s)",
            forged_id.bytes if target.mark == "?" else forged_id,
            b"{}",
            b"{}",
            forged,
        )
    error = verify(target, key)
    assert isinstance(error, AuditMismatchError)
    assert (error.global_position, error.stream_name) == (2, "c-1")
    assert "inserted" in error.reason


def test_a_proof_against_the_earlier_checkpoint_fails_after_a_change(
    signed: Target, key: SigningKey
) -> None:
    signed.sql("UPDATE {t}events SET hash = %s WHERE global_position = 77", bytes(32))
    with eventvault.connect(signed.url) as store:
        name, position = event_at(signed, 77)
        with pytest.raises(AuditMismatchError, match="was changed"):
            AuditLedger(store).prove(stream_name=name, stream_position=position)


def test_a_tree_rewritten_to_match_a_change_fails_its_signed_checkpoint(
    signed: Target, key: SigningKey
) -> None:
    # Someone changes the last event of a stream, with a hash that chains, and rewrites the
    # tree's leaf to match: every stored byte agrees, but the checkpoint was signed with a key
    # they do not have.
    ((event_id, recorded, previous),) = signed.sql(
        "SELECT e.event_id, e.recorded_at, p.hash FROM {t}events AS e JOIN {t}events AS p "
        "ON p.stream_name = e.stream_name AND p.stream_position = e.stream_position - 1 "
        "WHERE e.global_position = 601"
    )
    raw_id = event_id if isinstance(event_id, bytes) else uuid.UUID(str(event_id)).bytes
    name, position = event_at(signed, 601)
    forged = event_hash(
        bytes(previous),
        name,
        position,
        raw_id,
        "Closed",
        1,
        int(str(recorded)),
        b'{"by":"someone else"}',
        b"{}",
    )
    signed.sql(
        "UPDATE {t}events SET data = %s, hash = %s WHERE global_position = 601",
        b'{"by":"someone else"}',
        forged,
    )
    ((leaves,),) = signed.sql("SELECT leaves FROM {t}audit_tree_leaves WHERE chunk = 2")
    changed = bytes(leaves)[:-32] + forged
    signed.sql("UPDATE {t}audit_tree_leaves SET leaves = %s WHERE chunk = 2", changed)
    with eventvault.connect(signed.url) as store:
        proof = AuditLedger(store).prove(stream_name=name, stream_position=position)
        with pytest.raises(AuditMismatchError, match="its checkpoint signs"):
            proof.verify([key.public])
        with pytest.raises(AuditMismatchError, match="signed checkpoint of tree size 601"):
            verify_store(store, public_keys=[key.public])


def test_a_changed_subtree_hash_of_the_tree_is_named(signed: Target, key: SigningKey) -> None:
    signed.sql(
        "UPDATE {t}audit_tree_nodes SET hash = %s WHERE node = %s",
        bytes(32),
        node_number(CHUNK_LEAVES, CHUNK_LEAVES),
    )
    error = verify(signed, key)
    assert isinstance(error, AuditMismatchError)
    assert f"subtree {node_number(CHUNK_LEAVES, CHUNK_LEAVES)}" in error.reason


def test_a_forged_checkpoint_is_refused(signed: Target, key: SigningKey) -> None:
    signed.sql("UPDATE {t}audit_checkpoints SET root_hash = %s", bytes(32))
    error = verify(signed, key)
    assert isinstance(error, CheckpointSignatureError)
    assert "forged or changed" in error.reason


def test_a_checkpoint_re_signed_with_another_key_is_refused(
    signed: Target, key: SigningKey, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stranger = generate_key(str(tmp_path_factory.mktemp("stranger") / "k.pem"))
    with eventvault.connect(signed.url) as store:
        ledger = AuditLedger(store)
        (original,) = ledger.checkpoints()
        forged = sign_checkpoint(
            stranger,
            origin=original.origin,
            tree_size=original.tree_size,
            root_hash=bytes(32),
            issued_at=original.issued,
        )
    signed.sql(
        "UPDATE {t}audit_checkpoints SET root_hash = %s, key_id = %s, public_key = %s, "
        "signature = %s",
        bytes(32),
        stranger.key_id,
        stranger.public.raw,
        base64.b64decode(forged.signature),
    )
    error = verify(signed, key)
    assert isinstance(error, CheckpointSignatureError)
    assert "not among the keys" in error.reason
    # Checked only against the keys the store records, the forgery's signature holds, and its
    # root does not: the log is not what it signs.
    with (
        eventvault.connect(signed.url) as store,
        pytest.raises(AuditMismatchError, match="signed checkpoint of tree size 601"),
    ):
        verify_store(store)


def test_export_and_copy_refuse_a_store_whose_tree_sees_a_change(
    signed: Target, key: SigningKey
) -> None:
    import io

    from eventvault.audit import tree_check
    from eventvault.export import copy_events, write_export

    signed.sql("UPDATE {t}events SET global_position = 9000 WHERE global_position = 250")
    with eventvault.connect(signed.url) as store, eventvault.connect("memory://") as copy:
        check = tree_check(store)
        assert check is not None
        with pytest.raises(AuditMismatchError) as caught:
            write_export(store, io.BytesIO(), check=check)
        assert caught.value.global_position == 250
        with pytest.raises(AuditMismatchError):
            copy_events(store, copy, check=tree_check(store))
        assert copy.head_position() == 0
