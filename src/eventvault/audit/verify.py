"""`verify_store`: every stored byte of a store against its hash chains, tree and checkpoints.

One pass over the log in global order (`export_events`: the exact stored bytes, removed events
included) checks, for each event, and stops at the first that differs, naming it:

1. that it is the event the audit tree recorded at its place (its global position and hash are
   the leaf's): catches an event changed, deleted, inserted, moved or swapped after the tree
   covered it, even when its hash chain was rewritten to match;
2. its hash chain and positions (`ChainVerifier`): catches changed bytes, hashes and positions
   wherever the tree does not reach;
3. that a removed event is covered by the `EventsRemoved` record it names.

On the way it recomputes every complete subtree of 256 leaves or more and compares it with the
stored one (a changed node), and the root at the size of every checkpoint (a checkpoint that does
not sign this log); before it, it checks every checkpoint's signature, against the operator's
public keys when given. `tree_check` is the per-event part alone, for export and copy.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import msgspec

from eventvault.audit.checkpoints import Checkpoint, verify_signature
from eventvault.audit.keys import PublicKey, key_id_of
from eventvault.audit.ledger import AuditLedger
from eventvault.audit.merkle import leaf_hashes, node_hash, root_of
from eventvault.audit.tree import (
    AUDIT_TREE,
    CHUNK_LEAVES,
    CHUNK_LEVEL,
    AuditTree,
    Chunk,
    node_number,
)
from eventvault.errors import AuditMismatchError, IntegrityError, NotSupportedError
from eventvault.serialization import ChainVerifier
from eventvault.store.base import EventStore
from eventvault.types import REMOVALS_STREAM, REMOVED_EVENT_TYPE, RawEvent

__all__ = ["VerificationReport", "tree_check", "verify_store"]

_pack_position = struct.Struct(">Q").pack
_NODE_BATCH: Final = 1024


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """What `verify_store` checked; it raises at the first difference, so a report means every
    check passed.

    Attributes:
        events: events checked (hash chains and positions), removed ones included.
        removed: removed events among them.
        tree_size: leaves of the audit tree checked against the log.
        nodes: stored subtree hashes recomputed and compared.
        checkpoints: checkpoints whose root and signature were checked.
        keys: `operator` when the signatures were checked against the public keys given,
            `stored` when against the keys recorded in the store (which someone who could
            change the store could have replaced).
    """

    events: int
    removed: int
    tree_size: int
    nodes: int
    checkpoints: int
    keys: Literal["operator", "stored"]


class _Leaves:
    """The leaves the tree recorded, in order, a chunk at a time (`leaf` one by one, `chunk` the
    leaves of the chunk that begins at a leaf)."""

    def __init__(self, tree: AuditTree, size: int, *, first: int = 0) -> None:
        self._chunks: Iterator[Chunk] = tree.iter_chunks(first >> CHUNK_LEVEL)
        self._size = size
        self._chunk: Chunk | None = None
        self._base = 0

    def leaf(self, index: int) -> bytes | None:
        if index >= self._size:
            return None
        chunk = self._chunk
        if chunk is None or index - self._base >= chunk.count:
            chunk = self._chunk = next(self._chunks, None)
            if chunk is None:
                return None
            self._base = chunk.index << CHUNK_LEVEL
        offset = (index - self._base) * 40
        return chunk.leaves[offset : offset + 40]

    def chunk(self, first: int) -> bytes | None:
        """The recorded leaves from leaf `first` (the start of a chunk, or a checkpoint's
        size within one) to the end of its chunk, or to the tree's size."""
        if self.leaf(first) is None:
            return None
        assert self._chunk is not None
        offset = (first - self._base) * 40
        end = min(self._chunk.count, self._size - self._base) * 40
        return self._chunk.leaves[offset:end]


class _Removal(msgspec.Struct):
    stream_name: str
    first_position: int
    before: int
    erased: bool


def _mismatch(event: RawEvent, reason: str) -> AuditMismatchError:
    return AuditMismatchError(
        reason,
        global_position=event.global_position,
        stream_name=event.stream_name,
        stream_position=event.stream_position,
    )


def _describe_leaf(leaf: bytes) -> str:
    return f"global position {int.from_bytes(leaf[:8], 'big')} with hash {leaf[8:].hex()[:16]}..."


def _compare_leaf(event: RawEvent, leaf: bytes, recorded: bytes, index: int) -> None:
    """Raise naming the first event that differs when the log's leaf `index` (of `event`) is
    not the one the tree recorded."""
    if leaf == recorded:
        return
    if leaf[:8] == recorded[:8]:
        raise _mismatch(
            event,
            f"its hash is {event.hash[:16]}..., the audit tree recorded "
            f"{recorded[8:].hex()[:16]}... for it (leaf {index}): the event was changed after "
            "the tree covered it",
        )
    recorded_position = int.from_bytes(recorded[:8], "big")
    if recorded_position < event.global_position:
        raise AuditMismatchError(
            f"the event the audit tree recorded as leaf {index} (hash "
            f"{recorded[8:].hex()[:16]}...) is missing from the log, which holds "
            f"{event.stream_name!r}@{event.stream_position} (global position "
            f"{event.global_position}) in its place: it was deleted or moved",
            global_position=recorded_position,
        )
    raise _mismatch(
        event,
        f"the audit tree recorded {_describe_leaf(recorded)} as leaf {index}, which this event "
        "takes: it was inserted, or moved here",
    )


def tree_check(store: EventStore) -> Callable[[RawEvent], None] | None:
    """A check of each event of a store's log, read in order from its start, against the leaves
    of its audit tree (for `eventvault.export.write_export` and `copy_events`).

    Returns:
        The check, which raises `AuditMismatchError` naming the first event that is not the one
        the tree recorded at its place; None when the store keeps no audit tree, or keeps it
        out of this process's reach (the HTTP client engine: the server checks its tree as it
        serves `GET /v1/export`, and the client checks every hash chain).
    """
    if AUDIT_TREE.name not in store.component_versions():
        return None
    try:
        tree = AuditTree(store)
    except NotSupportedError:
        return None
    size = tree.size()
    leaves: _Leaves | None = None
    count = 0

    def check(event: RawEvent) -> None:
        nonlocal count, leaves
        if leaves is None:
            # An export of the log's tail starts at the leaf of its first event.
            count = tree.first_leaf_from(event.global_position)
            leaves = _Leaves(tree, size, first=count)
        recorded = leaves.leaf(count)
        if recorded is not None:
            leaf = _pack_position(event.global_position) + bytes.fromhex(event.hash)
            _compare_leaf(event, leaf, recorded, count)
        count += 1

    return check


class _Frontier:
    """The complete subtrees of 256 leaves or more that the log's tree ends with (RFC 9162's
    MTH, streamed a chunk at a time), and the stored hashes still to compare."""

    def __init__(self) -> None:
        self.levels: list[tuple[int, bytes]] = []
        self.chunks = 0
        self.completed: list[tuple[int, bytes]] = []

    def push(self, digest: bytes) -> None:
        """Add the hash of the next chunk of 256 leaves."""
        levels = self.levels
        level = CHUNK_LEVEL
        self.chunks += 1
        end = self.chunks << CHUNK_LEVEL
        self.completed.append((node_number(end - CHUNK_LEAVES, CHUNK_LEAVES), digest))
        while levels and levels[-1][0] == level:
            digest = node_hash(levels.pop()[1], digest)
            level += 1
            size = 1 << level
            self.completed.append((node_number(end - size, size), digest))
        levels.append((level, digest))

    def root(self, partial: Sequence[bytes]) -> bytes:
        """The root of the tree of the chunks pushed and `partial` leaf hashes after them."""
        parts = [digest for _, digest in self.levels]
        start, count = 0, len(partial)
        for bit in reversed(range(CHUNK_LEVEL)):
            if count >> bit & 1:
                parts.append(root_of(partial[start : start + (1 << bit)]))
                start += 1 << bit
        digest = parts[-1]
        for left in reversed(parts[:-1]):
            digest = node_hash(left, digest)
        return digest


def _signature_keys(
    ledger: AuditLedger, checkpoints: Sequence[Checkpoint], public_keys: Sequence[PublicKey]
) -> list[PublicKey]:
    if public_keys:
        return list(public_keys)
    stored = ledger.stored_public_keys()
    return [
        PublicKey(raw, key_id, "the store")
        for key_id, raw in stored.items()
        if key_id_of(raw) == key_id
    ]


def verify_store(
    store: EventStore,
    *,
    public_keys: Sequence[PublicKey] = (),
    on_progress: Callable[[int], None] | None = None,
) -> VerificationReport:
    """Check every stored byte of a store: hash chains, the audit tree, checkpoints, removals.

    The tree is caught up with the log first (unless the store is read-only), so the events
    after the last checkpoint are covered from now on; events changed before the tree covered
    them are caught by their hash chains alone.

    Args:
        store: the store.
        public_keys: the operator's public keys: every checkpoint must be signed by one of
            them. Without them, signatures are checked against the keys recorded in the store.
        on_progress: called with the number of events checked, every 10,000 events.

    Returns:
        What was checked.

    Raises:
        AuditMismatchError: the first event (in global order) that is not what the tree
            recorded, a stored subtree hash that is not the log's, a checkpoint whose root is not
            the log's, or a removal its record does not cover.
        HashChainError, CorruptEventError: the first event whose hash or position does not
            follow from the bytes before it.
        CheckpointSignatureError: a checkpoint whose signature does not verify, or that was
            signed by a key not among `public_keys`.
        MigrationRequiredError: the store keeps no audit tree and cannot make one (read-only).
    """
    ledger = AuditLedger(store)
    size = ledger.catch_up()
    tree = ledger.tree
    checkpoints = ledger.checkpoints()
    keys = _signature_keys(ledger, checkpoints, public_keys)
    origin = ledger.origin() if checkpoints else None
    for checkpoint in checkpoints:
        verify_signature(checkpoint, keys)
        if checkpoint.origin != origin:
            raise AuditMismatchError(
                f"the checkpoint of tree size {checkpoint.tree_size} signs the log of "
                f"{checkpoint.origin!r}, this store is {origin!r}"
            )
    sizes = sorted({cp.tree_size for cp in checkpoints if cp.tree_size > 0}, reverse=True)
    roots = {cp.tree_size: cp.root_hash for cp in checkpoints}
    leaves = _Leaves(tree, size)
    verifier = ChainVerifier()
    frontier = _Frontier()
    records: dict[int, _Removal] = {}
    # Per (record, stream, erased): the lowest and highest removed position, and the first
    # event, to name it; memory grows with the removals, not the removed events.
    removed_groups: dict[tuple[int, str, bool], tuple[int, int, RawEvent]] = {}
    nodes_checked = 0
    removed = 0
    last: RawEvent | None = None
    # The chunk being read: its events, their leaves (as the tree stores them) and leaf hashes.
    chunk_events: list[RawEvent] = []
    chunk_leaves = bytearray()
    pack, unhex = _pack_position, bytes.fromhex
    count = 0

    def check_nodes() -> None:
        nonlocal nodes_checked
        completed = frontier.completed
        if not completed:
            return
        stored = tree.nodes(number for number, _ in completed)
        for number, digest in completed:
            found = stored.get(number)
            if found is not None and found != digest:
                raise AuditMismatchError(
                    f"the audit tree's stored hash of its subtree {number} is "
                    f"{found.hex()[:16]}..., its leaves give {digest.hex()[:16]}...: the stored "
                    "tree was changed"
                )
            nodes_checked += found is not None
        completed.clear()

    def check_chunk() -> None:
        # One comparison of the chunk's leaves read so far with what the tree recorded; leaf by
        # leaf only to name the first that differs.
        first = count - len(chunk_events)
        recorded = leaves.chunk(first)
        if recorded is None:
            return
        length = min(len(recorded), len(chunk_leaves))
        if recorded[:length] == chunk_leaves[:length]:
            return
        for offset in range(length // 40):
            at = offset * 40
            leaf = bytes(chunk_leaves[at : at + 40])
            _compare_leaf(chunk_events[offset], leaf, recorded[at : at + 40], first + offset)

    for event in store.export_events():
        chunk_events.append(event)
        count += 1
        try:
            verifier.check(event)
        except (IntegrityError, ValueError):
            # A change the tree also sees, at this event or before it in its chunk, is named
            # first: the chain breaks only at the next event of the changed one's stream.
            chunk_leaves += pack(event.global_position) + unhex(event.hash)
            check_chunk()
            raise
        chunk_leaves += pack(event.global_position) + verifier.last_hash
        if event.removed_by is not None:
            removed += 1
            key = (event.removed_by, event.stream_name, event.erased)
            group = removed_groups.get(key)
            position = event.stream_position
            removed_groups[key] = (
                (position, position, event)
                if group is None
                else (group[0], max(group[1], position), group[2])
            )
        elif event.stream_name == REMOVALS_STREAM and event.event_type == REMOVED_EVENT_TYPE:
            try:
                records[event.global_position] = msgspec.json.decode(
                    bytes(event.data), type=_Removal
                )
            except msgspec.MsgspecError as exc:
                raise _mismatch(event, f"a removal record that is not one ({exc})") from exc
        if sizes and count == sizes[-1]:
            check_chunk()
            checked = sizes.pop()
            root = frontier.root(leaf_hashes(chunk_leaves)).hex()
            if root != roots[checked]:
                raise AuditMismatchError(
                    f"the signed checkpoint of tree size {checked} has the root "
                    f"{roots[checked][:16]}..., the log's first {checked} events give "
                    f"{root[:16]}...: events up to global position {event.global_position} were "
                    "changed, removed or added, and the audit tree rewritten to match"
                )
        if len(chunk_events) == CHUNK_LEAVES:
            check_chunk()
            frontier.push(root_of(leaf_hashes(chunk_leaves)))
            chunk_events.clear()
            chunk_leaves.clear()
            if len(frontier.completed) >= _NODE_BATCH:
                check_nodes()
        last = event
        if on_progress is not None and count % 10_000 == 0:
            on_progress(count)
    check_chunk()
    check_nodes()
    if count < size:
        missing = leaves.leaf(count)
        assert missing is not None
        raise AuditMismatchError(
            f"the audit tree records {size} leaves, the log holds {count} events: the events from "
            f"{_describe_leaf(missing)} on were deleted",
            global_position=int.from_bytes(missing[:8], "big"),
        )
    if sizes:
        raise AuditMismatchError(
            f"a checkpoint signs a tree of {sizes[-1]} leaves, the log holds {count} events: "
            "events were deleted from its end"
            + ("" if last is None else f" (the last is at global position {last.global_position})")
        )
    for (removed_by, stream, erased), (low, high, event) in removed_groups.items():
        record = records.get(removed_by)
        if record is None:
            raise _mismatch(
                event,
                f"removed by a record at global position {removed_by}, which is not an "
                f"{REMOVED_EVENT_TYPE} event of {REMOVALS_STREAM}",
            )
        covered = record.first_position <= low and high < record.before
        if record.stream_name != stream or not covered or record.erased != erased:
            raise _mismatch(
                event,
                f"its removal record (global position {removed_by}) removes "
                f"{record.stream_name!r} positions {record.first_position} to "
                f"{record.before - 1} ({'erased' if record.erased else 'hidden'}), which does not "
                f"cover the events of {stream!r} from position {low} to {high} that name it "
                f"({'erased' if erased else 'hidden'})",
            )
    return VerificationReport(
        events=count,
        removed=removed,
        tree_size=size,
        nodes=nodes_checked,
        checkpoints=len(checkpoints),
        keys="operator" if public_keys else "stored",
    )
