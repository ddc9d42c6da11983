"""The audit ledger on every engine: the tree behind the log, signed checkpoints, proofs."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

import eventvault
from eventvault import EventStore, NewEvent, StreamState
from eventvault.audit import (
    AuditLedger,
    AuditTree,
    CheckpointPolicy,
    InclusionProof,
    SigningKey,
    generate_key,
    load_public_key,
    load_signing_key,
    parse_checkpoint,
    parse_proof,
    verify_store,
)
from eventvault.audit.checkpoints import checkpoint_body
from eventvault.audit.merkle import leaf_bytes, leaf_hash, root_of
from eventvault.errors import (
    AuditKeyError,
    AuditMismatchError,
    CheckpointSignatureError,
    EventNotFoundError,
    InvalidArgumentError,
    LeafIndexError,
    ReadOnlyStoreError,
)
from eventvault.store.seam import SQLRow
from eventvault.testing.contract import EngineSpec

from .conftest import fill


def reference_root(store: EventStore, size: int | None = None) -> bytes:
    """The root of the tree of the log, from `read_hashes`, by the textbook definition."""
    hashes = [leaf_hash(leaf_bytes(p, h)) for p, h in store.read_hashes()]
    return root_of(hashes if size is None else hashes[:size])


# -- the tree ------------------------------------------------------------------------------------


def test_the_tree_catches_up_with_every_event_and_has_the_reference_root(store: EventStore) -> None:
    tree = AuditTree(store)
    assert tree.catch_up() == 0
    assert tree.root(0) == root_of([])
    total = 0
    for count in (1, 254, 1, 1, 300, 1000, 7):
        fill(store, count)
        total += count
        assert tree.catch_up() == total
        for size in {1, 255, 256, 257, 512, total // 2, total}:
            if 0 < size <= total:
                assert tree.root(size) == reference_root(store, size), size
    assert tree.catch_up() == total


def test_the_tree_holds_removed_events_whose_hashes_were_kept(store: EventStore) -> None:
    fill(store, 300, streams=1)
    tree = AuditTree(store)
    tree.catch_up()
    before = tree.root(300)
    store.truncate_stream("account-0", before=200, actor="ops", reason="retention")
    store.delete_stream("account-0", hard=True, actor="ops", reason="erasure")
    assert tree.catch_up() == 302
    assert tree.root(300) == before
    assert tree.root(302) == reference_root(store)


def test_a_tree_catches_up_in_batches_as_the_limit_says(store: EventStore) -> None:
    fill(store, 700)
    tree = AuditTree(store)
    assert tree.catch_up(limit=300) == 300
    assert tree.catch_up(limit=300) == 600
    assert tree.catch_up() == 700
    assert tree.root(700) == reference_root(store)


def test_catch_ups_racing_in_threads_make_one_tree(store: EventStore) -> None:
    failures: list[BaseException] = []
    trees = [AuditTree(store) for _ in range(4)]

    def work(tree: AuditTree) -> None:
        try:
            for _ in range(5):
                fill(store, 130)
                tree.catch_up()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(tree,)) for tree in trees]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert trees[0].catch_up() == 2600
    assert trees[0].root(2600) == reference_root(store)
    verify_store(store)


def test_a_proof_of_a_tree_larger_than_it_holds_is_refused(store: EventStore) -> None:
    fill(store, 10)
    tree = AuditTree(store)
    tree.catch_up()
    with pytest.raises(LeafIndexError, match="holds 10 leaves, not 11"):
        tree.root(11)
    with pytest.raises(LeafIndexError, match="leaf 10 is not in a tree of 10"):
        tree.inclusion_path(10, 10)
    with pytest.raises(LeafIndexError, match="cannot precede"):
        tree.consistency_path(5, 4)


# -- keys and checkpoints ------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads_and_the_public_key_beside_it(
    keys_folder: Path,
) -> None:
    key = generate_key(str(keys_folder / "k.pem"))
    assert (keys_folder / "k.pem").stat().st_mode & 0o777 == 0o600
    assert load_public_key(str(keys_folder / "k.pem.pub")).raw == key.public.raw
    assert load_signing_key(str(keys_folder / "k.pem")).key_id == key.key_id
    with pytest.raises(AuditKeyError, match="exists already"):
        generate_key(str(keys_folder / "k.pem"))
    with pytest.raises(AuditKeyError, match="does not exist"):
        load_signing_key(str(keys_folder / "missing.pem"))


def test_a_key_with_a_passphrase_opens_only_with_it(keys_folder: Path) -> None:
    path = str(keys_folder / "locked.pem")
    key = generate_key(path, passphrase=b"correct horse")
    assert load_signing_key(path, passphrase=b"correct horse").key_id == key.key_id
    with pytest.raises(AuditKeyError, match="EVENTVAULT_AUDIT_KEY_PASSPHRASE"):
        load_signing_key(path)
    with pytest.raises(AuditKeyError, match="passphrase"):
        load_signing_key(path, passphrase=b"wrong")
    with pytest.raises(AuditKeyError, match="no PEM public key"):
        load_public_key(path)


def test_a_checkpoint_signs_the_head_of_the_tree_and_is_kept(
    store: EventStore, key: SigningKey
) -> None:
    fill(store, 300)
    ledger = AuditLedger(store)
    moment = datetime(2026, 5, 1, 9, 31, 0, 120000, tzinfo=UTC)
    checkpoint = ledger.checkpoint(key, issued_at=moment)
    assert (checkpoint.tree_size, checkpoint.root_hash) == (300, reference_root(store).hex())
    assert checkpoint.issued_at == "2026-05-01T09:31:00.120000Z"
    assert checkpoint.origin == ledger.origin() and checkpoint.origin.startswith("eventvault:")
    assert checkpoint.body() == checkpoint_body(
        checkpoint.origin, 300, checkpoint.root_hash, checkpoint.issued_at
    )
    assert key.public.verify(
        __import__("base64").b64decode(checkpoint.signature), checkpoint.body()
    )
    assert ledger.checkpoints() == [checkpoint]
    assert parse_checkpoint(checkpoint.to_json()) == checkpoint
    fill(store, 5)
    later = ledger.checkpoint(key)
    assert ledger.latest_checkpoint() == later and later.tree_size == 305


def test_a_signing_key_beside_the_store_file_is_refused(tmp_path: Path) -> None:
    key = generate_key(str(tmp_path / "audit.pem"))
    with eventvault.connect(str(tmp_path / "store.db")) as store:
        fill(store, 3)
        with pytest.raises(AuditKeyError, match="folder of the store"):
            AuditLedger(store).checkpoint(key)
        assert AuditLedger(store).checkpoints() == []


def test_a_read_only_store_proves_and_verifies_but_signs_nothing(
    tmp_path: Path, key: SigningKey
) -> None:
    path = str(tmp_path / "store.db")
    with eventvault.connect(path) as store:
        fill(store, 20)
        AuditLedger(store).checkpoint(key)
        fill(store, 5)
    with eventvault.connect(path, read_only=True) as reader:
        ledger = AuditLedger(reader)
        assert ledger.catch_up() == 20
        proof = ledger.prove(stream_name="account-0", stream_position=3)
        proof.verify([key.public])
        assert verify_store(reader, public_keys=[key.public]).tree_size == 20
        with pytest.raises(ReadOnlyStoreError):
            ledger.checkpoint(key)


# -- proofs -------------------------------------------------------------------------------------


def test_an_inclusion_proof_of_any_event_verifies_against_its_checkpoint(
    store: EventStore, key: SigningKey
) -> None:
    fill(store, 1000)
    ledger = AuditLedger(store)
    checkpoint = ledger.checkpoint(key)
    for event in list(store.read_all())[::97]:
        proof = ledger.prove(event.event_id)
        assert proof.checkpoint == checkpoint and proof.tree_size == 1000
        assert proof.event.hash == event.hash
        assert proof.leaf_index == event.global_position - 1
        assert len(proof.path) <= 10
        proof.verify([key.public])
        assert parse_proof(proof.to_json()) == proof
    by_position = ledger.prove(stream_name="account-3", stream_position=50)
    assert by_position.event.stream_name == "account-3"


def test_a_proof_reads_the_tree_in_a_handful_of_statements_whatever_its_size(
    store: EventStore, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tree's reads of a proof: its last chunk (catching up), the leaf's chunk, the covering
    # checkpoint, the path's node hashes and the tree's partial last chunk; as many for a tree
    # sixteen times larger, never one per node, and no row read twice.
    ledger = AuditLedger(store)
    reads: list[tuple[str, tuple[object, ...]]] = []
    query = store.query

    def counted(statement: str, params: Sequence[object] = ()) -> list[SQLRow]:
        reads.append((statement, tuple(params)))
        return query(statement, params)

    for size in (300, 4800):
        fill(store, size - store.head_position())
        ledger.checkpoint(key)
        events = list(store.read_all())
        monkeypatch.setattr(store, "query", counted)
        for event in (events[0], events[size // 2], events[-1]):
            reads.clear()
            ledger.prove(event.event_id).verify([key.public])
            assert len(reads) <= 5, reads
            assert len(set(reads)) == len(reads), reads
        monkeypatch.undo()


def test_a_proof_made_as_another_process_signs_a_larger_tree_uses_that_tree(
    store: EventStore, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The size a proof's own catch-up read spares it a read only for trees up to that size: a
    # checkpoint of a larger tree, signed by another process in between, is checked afresh.
    fill(store, 300)
    ledger = AuditLedger(store)
    [first] = list(store.read_all(limit=1))
    stale = ledger.catch_up()
    fill(store, 300)
    signed = AuditLedger(store).checkpoint(key)
    monkeypatch.setattr(ledger, "catch_up", lambda: stale)
    proof = ledger.prove(first.event_id)
    assert (proof.tree_size, proof.checkpoint) == (600, signed)
    proof.verify([key.public])


def test_a_proof_names_the_latest_checkpoint_that_holds_the_event(
    store: EventStore, key: SigningKey
) -> None:
    fill(store, 10)
    ledger = AuditLedger(store)
    first = ledger.checkpoint(key)
    fill(store, 10)
    second = ledger.checkpoint(key)
    fill(store, 10)
    assert ledger.prove(stream_name="account-0", stream_position=0).checkpoint == second
    assert (
        ledger.prove(stream_name="account-0", stream_position=0, tree_size=10).checkpoint == first
    )
    newest = list(store.read_all())[-1]
    unsigned = ledger.prove(newest.event_id)
    assert unsigned.checkpoint is None and unsigned.tree_size == 30
    unsigned.verify()
    with pytest.raises(LeafIndexError, match="not in a tree of 10"):
        ledger.prove(newest.event_id, tree_size=10)


def test_a_removed_event_is_still_proven(store: EventStore, key: SigningKey) -> None:
    fill(store, 4, streams=1)
    ledger = AuditLedger(store)
    erased = list(store.read_all())[1]
    store.delete_stream("account-0", hard=True, actor="ops", reason="erasure")
    proof = ledger.prove(erased.event_id)
    assert proof.event.removed_by == 5 and proof.event.hash == erased.hash
    ledger.checkpoint(key)
    ledger.prove(erased.event_id).verify([key.public])


def test_a_proof_of_an_unknown_event_is_refused(store: EventStore) -> None:
    fill(store, 3)
    ledger = AuditLedger(store)
    with pytest.raises(EventNotFoundError, match="no event"):
        ledger.prove(uuid.uuid4())
    with pytest.raises(EventNotFoundError, match="account-0@99"):
        ledger.prove(stream_name="account-0", stream_position=99)
    with pytest.raises(InvalidArgumentError, match="not both"):
        ledger.prove(uuid.uuid4(), stream_name="account-0", stream_position=0)


def test_a_consistency_proof_shows_each_checkpoint_extends_the_one_before(
    store: EventStore, key: SigningKey
) -> None:
    ledger = AuditLedger(store)
    checkpoints = []
    for count in (1, 255, 300, 2):
        fill(store, count)
        checkpoints.append(ledger.checkpoint(key))
    for old in checkpoints:
        for new in checkpoints:
            if old.tree_size <= new.tree_size:
                proof = ledger.consistency(old.tree_size, new.tree_size)
                assert proof.old_checkpoint == old and proof.new_checkpoint == new
                proof.verify([key.public])
    latest = ledger.consistency(1)
    assert latest.new_size == 558 and len(latest.path) <= 20


def test_a_proof_whose_path_or_event_was_changed_does_not_verify(
    store: EventStore, key: SigningKey
) -> None:
    fill(store, 50)
    ledger = AuditLedger(store)
    ledger.checkpoint(key)
    proof = ledger.prove(stream_name="account-0", stream_position=7)
    bent = msgspec.structs.replace(proof, path=[*proof.path[:-1], "00" * 32])
    with pytest.raises(AuditMismatchError, match="does not verify"):
        bent.verify()
    other = msgspec.structs.replace(
        proof, event=msgspec.structs.replace(proof.event, global_position=9)
    )
    with pytest.raises(AuditMismatchError):
        other.verify()
    assert isinstance(parse_proof(proof.to_json()), InclusionProof)


def test_a_checkpoint_signed_by_another_key_is_refused(
    store: EventStore, key: SigningKey, keys_folder: Path
) -> None:
    fill(store, 20)
    ledger = AuditLedger(store)
    ledger.checkpoint(key)
    stranger = generate_key(str(keys_folder / "stranger.pem"))
    proof = ledger.prove(stream_name="account-0", stream_position=1)
    with pytest.raises(CheckpointSignatureError, match="not among the keys"):
        proof.verify([stranger.public])
    with pytest.raises(CheckpointSignatureError, match="not among the keys"):
        verify_store(store, public_keys=[stranger.public])
    assert verify_store(store, public_keys=[key.public]).keys == "operator"


# -- the policy ---------------------------------------------------------------------------------


def test_the_policy_signs_every_n_events(store: EventStore, key: SigningKey) -> None:
    ledger = AuditLedger(store)
    policy = CheckpointPolicy(every_events=100, poll_seconds=0.01)
    signed: list[int] = []
    stop = threading.Event()
    runner = threading.Thread(
        target=policy.run, args=(ledger, key, stop, lambda cp: signed.append(cp.tree_size))
    )
    runner.start()
    try:
        fill(store, 1)
        _wait_for(lambda: signed == [1])
        fill(store, 99)
        fill(store, 1)
        _wait_for(lambda: len(signed) == 2)
        fill(store, 50)
    finally:
        stop.set()
        runner.join()
    assert signed == [1, 101]
    assert [cp.tree_size for cp in ledger.checkpoints()] == [1, 101]


def test_the_policy_signs_after_some_time_when_the_log_grew() -> None:
    policy = CheckpointPolicy(every_seconds=60)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    from eventvault.audit.checkpoints import Checkpoint, format_time

    last = Checkpoint(
        origin="o",
        tree_size=10,
        root_hash="00" * 32,
        issued_at=format_time(now),
        key_id="k",
        signature="",
    )
    assert not policy.due(11, last, now + timedelta(seconds=59))
    assert policy.due(11, last, now + timedelta(seconds=60))
    assert not policy.due(10, last, now + timedelta(hours=1))
    assert policy.due(1, None, now)
    with pytest.raises(InvalidArgumentError, match="every_events, every_seconds"):
        CheckpointPolicy()
    with pytest.raises(InvalidArgumentError, match="every_events"):
        CheckpointPolicy(every_events=0)


def _wait_for(condition: object, seconds: float = 10.0) -> None:
    import time

    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_proofs_of_a_store_verify_against_its_copy(engine: EngineSpec, key: SigningKey) -> None:
    with engine.fresh() as source, eventvault.connect("memory://") as copy:
        fill(source, 600)
        source.truncate_stream("account-1", before=50, actor="ops", reason="retention")
        checkpoint = AuditLedger(source).checkpoint(key)
        copy.import_events(source.export_events())
        ledger = AuditLedger(copy)
        assert ledger.catch_up() == checkpoint.tree_size
        assert ledger.tree.root(checkpoint.tree_size).hex() == checkpoint.root_hash
        proof = ledger.prove(stream_name="account-2", stream_position=5)
        assert proof.checkpoint is None
        InclusionProof(
            event=proof.event,
            leaf_index=proof.leaf_index,
            tree_size=proof.tree_size,
            root_hash=proof.root_hash,
            path=proof.path,
            checkpoint=checkpoint,
        ).verify([key.public])


def test_a_store_opened_by_name_appends_and_signs_as_processes_do(
    tmp_path: Path, key: SigningKey
) -> None:
    # Two stores on one SQLite file: each catches up what the other appended.
    path = str(tmp_path / "shared.db")
    with eventvault.connect(path) as one, eventvault.connect(path) as two:
        one.append_to_stream("a-1", [NewEvent("A", {})], expected_version=StreamState.ANY)
        AuditLedger(one).checkpoint(key)
        two.append_to_stream("a-1", [NewEvent("A", {})], expected_version=StreamState.ANY)
        assert AuditLedger(two).checkpoint(key).tree_size == 2
        assert [cp.tree_size for cp in AuditLedger(one).checkpoints()] == [1, 2]


def test_consistency_from_an_empty_tree_or_of_a_tree_with_itself(
    store: EventStore, key: SigningKey
) -> None:
    ledger = AuditLedger(store)
    empty = ledger.consistency(0, 0)
    assert (empty.old_root, empty.path) == (root_of([]).hex(), [])
    empty.verify()
    fill(store, 5)
    ledger.checkpoint(key)
    for old, new in ((0, 5), (5, 5), (0, 0)):
        proof = ledger.consistency(old, new)
        assert proof.path == [] and proof.new_root == reference_root(store, new).hex()
        proof.verify([key.public])
