"""The audit tree of a store: the RFC 9162 Merkle tree over its log, kept beside the events.

Leaf `i` is the `i`-th event of the log in global order (removed events included: they keep their
hash), its bytes the event's global position and hash (`merkle.leaf_bytes`). The tree is kept
behind the log, not on the append path: `AuditTree.catch_up` appends a leaf for every settled event
after the last one it holds, in batches, each batch one transaction of the store (`audit_tree`
component, through the seam). It stores the leaves in chunks of 256 and the hash of every
complete subtree of 256 leaves or more, so that the root of any size and any proof need a handful
of reads: O(log n) node hashes and at most two chunks.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from eventvault.audit.merkle import (
    LEAF_BYTES,
    Range,
    consistency_ranges,
    inclusion_ranges,
    leaf_hashes,
    node_hash,
    root_of,
    split_point,
)
from eventvault.errors import LeafIndexError, StorageError
from eventvault.store.base import EventStore
from eventvault.store.seam import (
    Component,
    Dialect,
    SQLRow,
    Transaction,
    load_migrations,
    register_component,
)
from eventvault.types import EventHash

__all__ = [
    "AUDIT_TREE",
    "CHUNK_LEAVES",
    "AuditTree",
    "Chunk",
    "LeafIndexError",
    "node_number",
]

AUDIT_TREE: Final = register_component(
    Component("audit_tree", load_migrations("eventvault.audit", "migrations/tree"))
)
"""The tables of the audit tree and its checkpoints (`eventvault migrate` creates them)."""

CHUNK_LEVEL: Final = 8
CHUNK_LEAVES: Final = 1 << CHUNK_LEVEL
"""Leaves per stored chunk: the smallest subtree whose hash is stored."""
CATCH_UP_BATCH: Final = 16 * CHUNK_LEAVES
"""Events read and leaves written per transaction of a catch-up."""
_CATCH_UP_ATTEMPTS: Final = 100
_position = struct.Struct(">Q")


def node_number(start: int, size: int) -> int:
    """The number under which the hash of the subtree of `size` (a power of two) leaves from
    leaf `start` is stored: its place in an in-order walk, `2 * start + size - 1`."""
    return 2 * start + size - 1


@dataclass(frozen=True, slots=True)
class Chunk:
    """A stored chunk of leaves.

    Attributes:
        index: the chunk's number; its first leaf is `index * 256`.
        first_position: the global position of its first leaf's event.
        last_position: the global position of its last leaf's event.
        leaves: its leaves, 40 bytes each.
    """

    index: int
    first_position: int
    last_position: int
    leaves: bytes

    @property
    def count(self) -> int:
        """How many leaves it holds."""
        return len(self.leaves) // LEAF_BYTES

    def leaf(self, offset: int) -> bytes:
        """Its leaf at an offset (0 to 255)."""
        return self.leaves[offset * LEAF_BYTES : (offset + 1) * LEAF_BYTES]

    def positions(self) -> list[int]:
        """The global positions of its leaves' events, in order."""
        return [
            _position.unpack_from(self.leaves, at)[0]
            for at in range(0, len(self.leaves), LEAF_BYTES)
        ]

    def leaf_hashes(self) -> list[bytes]:
        """The hashes of its leaves (`merkle.leaf_hash`), in order."""
        return leaf_hashes(self.leaves)


@dataclass(frozen=True, slots=True)
class _Statements:
    lock: str | None
    last_chunk: str
    chunks: str
    chunk_of: str
    nodes: str
    insert_chunk: str
    update_chunk: str
    insert_node: str
    chunk_range: str


def _statements(mark: str, schema: str, lock: str | None) -> _Statements:
    return _Statements(
        lock=lock,
        last_chunk=f"SELECT chunk, first_position, last_position, leaves FROM {schema}"
        "audit_tree_leaves ORDER BY chunk DESC LIMIT 1",
        chunks=f"SELECT chunk, first_position, last_position, leaves FROM {schema}"
        "audit_tree_leaves WHERE chunk IN ({marks}) ORDER BY chunk",
        chunk_of=f"SELECT chunk, first_position, last_position, leaves FROM {schema}"
        f"audit_tree_leaves WHERE last_position >= {mark} ORDER BY last_position LIMIT 1",
        nodes=f"SELECT node, hash FROM {schema}audit_tree_nodes WHERE node IN ({{marks}})",
        insert_chunk=f"INSERT INTO {schema}audit_tree_leaves "
        "(chunk, leaf_count, first_position, last_position, leaves) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
        update_chunk=f"UPDATE {schema}audit_tree_leaves SET leaf_count = {mark}, "
        f"last_position = {mark}, leaves = {mark} WHERE chunk = {mark} AND leaf_count = {mark}",
        insert_node=f"INSERT INTO {schema}audit_tree_nodes (node, hash) VALUES ({mark}, {mark})",
        chunk_range=f"SELECT chunk, first_position, last_position, leaves FROM {schema}"
        f"audit_tree_leaves WHERE chunk >= {mark} ORDER BY chunk LIMIT {mark}",
    )


_STATEMENTS: Final[dict[Dialect, _Statements]] = {
    # On SQLite the writing transaction holds the store's one writer; on PostgreSQL catch-ups of
    # several processes write one after the other, each seeing what the one before wrote.
    "sqlite": _statements("?", "", None),
    "postgresql": _statements(
        "%s", "{schema}.", "LOCK TABLE {schema}.audit_tree_leaves IN SHARE ROW EXCLUSIVE MODE"
    ),
}
_MARKS: Final[dict[Dialect, str]] = {"sqlite": "?", "postgresql": "%s"}


def _chunk_of_row(row: SQLRow) -> Chunk:
    return Chunk(int(row[0]), int(row[1]), int(row[2]), bytes(row[3]))


def _first_offset_from(chunk: Chunk, global_position: int) -> int:
    """The offset in a chunk of its first leaf whose event is at or after a global position
    (the chunk's count when there is none): a binary search, leaves being in global order."""
    low, high = 0, chunk.count
    while low < high:
        middle = (low + high) // 2
        if _position.unpack_from(chunk.leaves, middle * LEAF_BYTES)[0] < global_position:
            low = middle + 1
        else:
            high = middle
    return low


class _Moved(Exception):
    """The tree grew under a catch-up (another process caught it up): plan again."""


class AuditTree:
    """The audit tree of one store (see the module's docstring).

    Args:
        store: the open store; the `audit_tree` component is made ready in it (`store.use`).

    Raises:
        MigrationRequiredError: the tables are missing or old and the store may not migrate.
    """

    def __init__(self, store: EventStore) -> None:
        store.use(AUDIT_TREE)
        self.store = store
        self._sql = _STATEMENTS[store.dialect]
        self._mark = _MARKS[store.dialect]

    # -- reading the stored tree ---------------------------------------------------------------

    def _last_chunk(self) -> Chunk | None:
        rows = self.store.query(self._sql.last_chunk)
        return _chunk_of_row(rows[0]) if rows else None

    def size(self) -> int:
        """The number of leaves the tree holds now (without catching up)."""
        last = self._last_chunk()
        return 0 if last is None else last.index * CHUNK_LEAVES + last.count

    def _in(self, statement: str, values: Sequence[int]) -> str:
        return statement.replace("{marks}", ", ".join([self._mark] * len(values)))

    def chunks(self, indexes: Iterable[int]) -> dict[int, Chunk]:
        """Stored chunks by index (those that exist)."""
        wanted = sorted(set(indexes))
        found: dict[int, Chunk] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            for row in self.store.query(self._in(self._sql.chunks, part), part):
                chunk = _chunk_of_row(row)
                found[chunk.index] = chunk
        return found

    def iter_chunks(self, first: int = 0) -> Iterator[Chunk]:
        """Every stored chunk from index `first` on, in order, a page at a time."""
        index = first
        while True:
            rows = self.store.query(self._sql.chunk_range, (index, 64))
            for row in rows:
                yield _chunk_of_row(row)
            if len(rows) < 64:
                return
            index = int(str(rows[-1][0])) + 1

    def nodes(self, numbers: Iterable[int]) -> dict[int, bytes]:
        """Stored subtree hashes by node number (those that exist)."""
        wanted = sorted(set(numbers))
        found: dict[int, bytes] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            for node, digest in self.store.query(self._in(self._sql.nodes, part), part):
                found[int(node)] = bytes(digest)
        return found

    def first_leaf_from(self, global_position: int) -> int:
        """The index of the first leaf whose event is at or after a global position (the
        tree's size when there is none)."""
        rows = self.store.query(self._sql.chunk_of, (global_position,))
        if not rows:
            return self.size()
        chunk = _chunk_of_row(rows[0])
        return chunk.index * CHUNK_LEAVES + _first_offset_from(chunk, global_position)

    def leaf_index(self, global_position: int) -> tuple[int, bytes]:
        """The index of an event's leaf, and the leaf, from the stored tree.

        Args:
            global_position: the event's global position.

        Returns:
            (leaf index, the 40-byte leaf).

        Raises:
            LeafIndexError: the tree holds no leaf of that position (no such event, or one the
                tree has not caught up with).
        """
        index, chunk = self.locate(global_position)
        return index, chunk.leaf(index - chunk.index * CHUNK_LEAVES)

    def locate(self, global_position: int) -> tuple[int, Chunk]:
        """The index of an event's leaf and the chunk that holds it, in one read.

        Args:
            global_position: the event's global position.

        Returns:
            (leaf index, its chunk).

        Raises:
            LeafIndexError: the tree holds no leaf of that position (no such event, or one the
                tree has not caught up with).
        """
        rows = self.store.query(self._sql.chunk_of, (global_position,))
        if rows:
            chunk = _chunk_of_row(rows[0])
            offset = _first_offset_from(chunk, global_position)
            if offset < chunk.count and chunk.leaf(offset)[:8] == _position.pack(global_position):
                return chunk.index * CHUNK_LEAVES + offset, chunk
        raise LeafIndexError(
            "global_position",
            global_position,
            f"{global_position}: no event at that position is in the audit tree, which holds "
            f"{self.size()} leaves",
        )

    # -- subtree hashes ------------------------------------------------------------------------

    def hashes(
        self, ranges: Sequence[Range], size: int, *, read: Iterable[Chunk] = ()
    ) -> list[bytes]:
        """The hashes of subtrees of the tree of `size` leaves, from the fewest reads: the
        stored hash of each complete subtree of 256 leaves or more, the chunks for the rest.

        Args:
            ranges: leaf ranges `[start, end)`, each a subtree of RFC 9162's recursion (its
                start a multiple of the power of two at or above its size).
            size: the tree size they belong to, at most `self.size()`.
            read: chunks the caller has just read (a proof's own leaf chunk), not read again.

        Returns:
            One hash per range.
        """
        complete = (size // CHUNK_LEAVES) * CHUNK_LEAVES
        node_numbers: set[int] = set()
        chunk_indexes: set[int] = set()

        def plan(start: int, end: int) -> None:
            count = end - start
            if count >= CHUNK_LEAVES and count & (count - 1) == 0 and end <= complete:
                node_numbers.add(node_number(start, count))
            elif count <= CHUNK_LEAVES and start // CHUNK_LEAVES == (end - 1) // CHUNK_LEAVES:
                chunk_indexes.add(start // CHUNK_LEAVES)
            else:
                k = split_point(count)
                plan(start, start + k)
                plan(start + k, end)

        for start, end in ranges:
            plan(start, end)
        nodes = self.nodes(node_numbers)
        chunks = {chunk.index: chunk for chunk in read if chunk.index in chunk_indexes}
        chunks.update(self.chunks(chunk_indexes - chunks.keys()))
        leaf_cache: dict[int, list[bytes]] = {}

        def leaves_of(index: int) -> list[bytes]:
            if index not in leaf_cache:
                chunk = chunks.get(index)
                if chunk is None:
                    raise StorageError(f"the audit tree lacks its chunk {index}")
                leaf_cache[index] = chunk.leaf_hashes()
            return leaf_cache[index]

        def compute(start: int, end: int) -> bytes:
            count = end - start
            number = node_number(start, count)
            if count >= CHUNK_LEAVES and count & (count - 1) == 0 and end <= complete:
                if number not in nodes:
                    raise StorageError(f"the audit tree lacks the hash of its node {number}")
                return nodes[number]
            if count <= CHUNK_LEAVES and start // CHUNK_LEAVES == (end - 1) // CHUNK_LEAVES:
                base = (start // CHUNK_LEAVES) * CHUNK_LEAVES
                hashes = leaves_of(start // CHUNK_LEAVES)[start - base : end - base]
                if len(hashes) != count:
                    raise StorageError(
                        f"the audit tree's chunk {start // CHUNK_LEAVES} holds fewer leaves than "
                        f"its size says"
                    )
                return root_of(hashes)
            k = split_point(count)
            return node_hash(compute(start, start + k), compute(start + k, end))

        return [compute(start, end) for start, end in ranges]

    def root(self, size: int) -> bytes:
        """The root hash of the tree of its first `size` leaves.

        Raises:
            LeafIndexError: the tree holds fewer than `size` leaves.
        """
        self._check_size(size)
        if size == 0:
            return root_of([])
        return self.hashes([(0, size)], size)[0]

    def inclusion_path(
        self,
        index: int,
        size: int,
        *,
        with_root: bool = False,
        held: int | None = None,
        read: Iterable[Chunk] = (),
    ) -> list[bytes]:
        """The inclusion proof of leaf `index` in the tree of `size` leaves.

        Args:
            index: the leaf.
            size: the tree size.
            with_root: also the tree's root, after the path (read in the same reads).
            held: a size the tree is known to have reached (`catch_up`'s answer), which spares
                a read when `size` is at most that; None to read it.
            read: chunks the caller has just read (the leaf's, from `locate`), not read again.

        Raises:
            LeafIndexError: the tree holds fewer than `size` leaves, or `index` >= `size`.
        """
        self._check_size(size, held)
        if not 0 <= index < size:
            raise LeafIndexError(
                "leaf_index", index, f"{index}: leaf {index} is not in a tree of {size} leaves"
            )
        ranges = inclusion_ranges(index, size)
        return self.hashes([*ranges, (0, size)] if with_root else ranges, size, read=read)

    def consistency_path(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof between the trees of `old_size` and `new_size` leaves.

        Raises:
            LeafIndexError: the tree holds fewer than `new_size` leaves, or `old_size` is
                greater than `new_size`.
        """
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise LeafIndexError(
                "old_size",
                old_size,
                f"{old_size}: a tree of {old_size} leaves cannot precede one of {new_size}",
            )
        return self.hashes(consistency_ranges(old_size, new_size), new_size)

    def _check_size(self, size: int, held: int | None = None) -> None:
        # The tree only grows: a size the caller read is proof enough for any size up to it;
        # a larger one (a checkpoint made since by another process) is checked afresh.
        if held is None or type(size) is not int or size > held:
            held = self.size()
        if type(size) is not int or not 0 <= size <= held:
            raise LeafIndexError(
                "tree_size", size, f"{size}: the audit tree holds {held} leaves, not {size}"
            )

    # -- catching up with the log --------------------------------------------------------------

    def catch_up(self, *, limit: int | None = None) -> int:
        """Append a leaf for every settled event after the last leaf, in batches of one
        transaction each.

        Several processes may catch up at once: a batch that finds the tree grown meanwhile is
        planned again from where the tree is.

        Args:
            limit: the most leaves to add; None for all.

        Returns:
            The tree's size afterwards.

        Raises:
            ReadOnlyStoreError: the store was opened read-only and the tree is behind.
            StorageError: the store failed.
        """
        added = 0
        attempts = 0
        while limit is None or added < limit:
            last = self._last_chunk()
            after = 0 if last is None else last.last_position
            want = CATCH_UP_BATCH if limit is None else min(CATCH_UP_BATCH, limit - added)
            new = list(self.store.read_hashes(after=after, limit=want))
            if not new:
                # Nothing after the last chunk: the tree's size is the one just read.
                return 0 if last is None else last.index * CHUNK_LEAVES + last.count
            plan = self._plan(last, new)
            try:
                self.store.run_transaction(functools.partial(self._write, plan=plan))
            except _Moved:
                attempts += 1
                if attempts >= _CATCH_UP_ATTEMPTS:
                    raise StorageError(
                        f"the audit tree of {self.store.url!r} kept growing under this catch-up "
                        f"({attempts} attempts)"
                    ) from None
                continue
            added += len(new)
            if len(new) < want:
                # Fewer than asked: every event settled when they were read is in the tree now,
                # whose size is that of the last chunk just written.
                end = plan.chunks[-1]
                return end.index * CHUNK_LEAVES + end.count
        return self.size()

    def _frontier(self, complete_chunks: int) -> list[tuple[int, int, bytes]]:
        """The hashes of the complete subtrees that a tree of `complete_chunks` chunks ends
        with, largest first, as (level, index at that level, hash): the left siblings that
        the next chunks complete."""
        parts: list[tuple[int, int]] = []
        start = 0
        for bit in reversed(range(complete_chunks.bit_length())):
            if complete_chunks >> bit & 1:
                level = CHUNK_LEVEL + bit
                parts.append((level, start >> level))
                start += 1 << level
        found = self.nodes(node_number(index << level, 1 << level) for level, index in parts)
        frontier = []
        for level, index in parts:
            number = node_number(index << level, 1 << level)
            if number not in found:
                raise StorageError(f"the audit tree lacks the hash of its node {number}")
            frontier.append((level, index, found[number]))
        return frontier

    def _plan(self, last: Chunk | None, new: Sequence[EventHash]) -> _Plan:
        """The rows a batch of new leaves writes: chunks and complete subtrees' hashes."""
        pack = _position.pack
        leaves = b"".join([pack(p) + h for p, h in new])
        chunks: list[Chunk] = []
        index, first = 0, new[0].global_position
        if last is not None and last.count < CHUNK_LEAVES:
            leaves = last.leaves + leaves
            index, first = last.index, last.first_position
        elif last is not None:
            index = last.index + 1
        step = CHUNK_LEAVES * LEAF_BYTES
        for at in range(0, len(leaves), step):
            part = leaves[at : at + step]
            start = part[:8] if at else _position.pack(first)
            chunks.append(
                Chunk(
                    index + at // step,
                    _position.unpack(start)[0],
                    _position.unpack_from(part, len(part) - LEAF_BYTES)[0],
                    part,
                )
            )
        complete = [chunk for chunk in chunks if chunk.count == CHUNK_LEAVES]
        nodes: list[tuple[int, bytes]] = []
        if complete:
            frontier = self._frontier(complete[0].index)
            for chunk in complete:
                level, number, digest = CHUNK_LEVEL, chunk.index, root_of(chunk.leaf_hashes())
                nodes.append((node_number(number << level, 1 << level), digest))
                # Merge with the left siblings this chunk completes, as a binary counter carries.
                while frontier and frontier[-1][0] == level:
                    _, left_index, left = frontier.pop()
                    level, number, digest = level + 1, left_index >> 1, node_hash(left, digest)
                    nodes.append((node_number(number << level, 1 << level), digest))
                frontier.append((level, number, digest))
        return _Plan(last, chunks, nodes)

    def _write(self, tx: Transaction, *, plan: _Plan) -> None:
        sql = self._sql
        if sql.lock is not None:
            tx.execute(sql.lock)
        rows = tx.fetch(sql.last_chunk)
        current = _chunk_of_row(rows[0]) if rows else None
        last = plan.last
        if (current is None) != (last is None) or (
            current is not None
            and last is not None
            and (current.index, current.count) != (last.index, last.count)
        ):
            raise _Moved
        for chunk in plan.chunks:
            if last is not None and chunk.index == last.index:
                changed = tx.execute(
                    sql.update_chunk,
                    (chunk.count, chunk.last_position, chunk.leaves, chunk.index, last.count),
                )
                if changed != 1:
                    raise _Moved
            else:
                tx.execute(
                    sql.insert_chunk,
                    (
                        chunk.index,
                        chunk.count,
                        chunk.first_position,
                        chunk.last_position,
                        chunk.leaves,
                    ),
                )
        if plan.nodes:
            tx.execute_many(sql.insert_node, plan.nodes)


@dataclass(frozen=True, slots=True)
class _Plan:
    last: Chunk | None
    chunks: list[Chunk]
    nodes: list[tuple[int, bytes]]
