"""`AuditLedger`: a store's audit tree, its signed checkpoints, and the proofs made from them.

::

    ledger = AuditLedger(store)
    key = load_signing_key("/secrets/audit.pem")
    checkpoint = ledger.checkpoint(key)          # catch the tree up, sign its head, keep it
    publish(checkpoint.to_json())                # anywhere: a file, a URL, another system
    proof = ledger.prove(event_id)               # the event's place under the latest checkpoint
    later = ledger.consistency(checkpoint.tree_size)  # the log since only grew
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from eventvault.audit.checkpoints import Checkpoint, format_time, sign_checkpoint
from eventvault.audit.keys import SigningKey, refuse_beside_store
from eventvault.audit.proofs import ConsistencyProof, InclusionProof, ProvenEvent
from eventvault.audit.tree import CHUNK_LEAVES, AuditTree
from eventvault.errors import (
    AuditMismatchError,
    DatabaseLockedError,
    EventNotFoundError,
    InvalidArgumentError,
    LeafIndexError,
    StoreUnavailableError,
)
from eventvault.serialization import from_micros, now_micros, to_micros
from eventvault.store.base import EventStore
from eventvault.store.seam import Dialect, SQLRow, Transaction

__all__ = ["AuditLedger", "CheckpointPolicy"]

_COLUMNS: Final = "origin, tree_size, root_hash, issued_at, key_id, signature"
"""The columns a checkpoint is read from, in `_checkpoint_of` order."""


@dataclass(frozen=True, slots=True)
class _Statements:
    origin: str
    make_origin: str
    insert_checkpoint: str
    checkpoints: str
    covering: str
    of_size: str
    public_keys: str


def _statements(mark: str, schema: str, ignore: tuple[str, str]) -> _Statements:
    return _Statements(
        origin=f"SELECT origin FROM {schema}audit_origin WHERE id = 1",
        make_origin=f"INSERT {ignore[0]}INTO {schema}audit_origin (id, origin, created_at) "
        f"VALUES (1, {mark}, {mark}){ignore[1]}",
        insert_checkpoint=f"INSERT INTO {schema}audit_checkpoints "
        "(tree_size, issued_at, root_hash, origin, key_id, public_key, signature) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark}, {mark})",
        checkpoints=f"SELECT {_COLUMNS} FROM {schema}audit_checkpoints "
        "ORDER BY tree_size, issued_at",
        covering=f"SELECT {_COLUMNS} FROM {schema}audit_checkpoints WHERE tree_size > {mark} "
        "ORDER BY tree_size DESC, issued_at DESC LIMIT 1",
        of_size=f"SELECT {_COLUMNS} FROM {schema}audit_checkpoints WHERE tree_size = {mark} "
        "ORDER BY issued_at DESC LIMIT 1",
        public_keys=f"SELECT DISTINCT key_id, public_key FROM {schema}audit_checkpoints",
    )


_STATEMENTS: Final[dict[Dialect, _Statements]] = {
    "sqlite": _statements("?", "", ("OR IGNORE ", "")),
    "postgresql": _statements("%s", "{schema}.", ("", " ON CONFLICT DO NOTHING")),
}


def _checkpoint_of(row: SQLRow) -> Checkpoint:
    origin, size, root, issued, key_id, signature = row
    return Checkpoint(
        origin=str(origin),
        tree_size=int(size),
        root_hash=bytes(root).hex(),
        issued_at=format_time(from_micros(int(issued))),
        key_id=str(key_id),
        signature=base64.b64encode(bytes(signature)).decode("ascii"),
    )


class AuditLedger:
    """The audit ledger of one store: its tree (`tree`), checkpoints and proofs.

    Args:
        store: the open store; the `audit_tree` component is made ready in it.

    Raises:
        MigrationRequiredError: the audit tables are missing or old and the store may not
            migrate (run `eventvault migrate URL`).
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.tree = AuditTree(store)
        self._sql = _STATEMENTS[store.dialect]

    # -- identity and checkpoints ----------------------------------------------------------------

    def origin(self) -> str:
        """The store's identity in its checkpoints, made (once) when first asked for.

        Raises:
            ReadOnlyStoreError: it was never made and the store is read-only.
        """
        rows = self.store.query(self._sql.origin)
        if rows:
            return str(rows[0][0])
        made = f"eventvault:{uuid.uuid4()}"

        def make(tx: Transaction) -> str:
            tx.execute(self._sql.make_origin, (made, now_micros()))
            return str(tx.fetch(self._sql.origin)[0][0])

        return self.store.run_transaction(make)

    def catch_up(self) -> int:
        """Bring the tree up to the log, where the store can be written (see
        `AuditTree.catch_up`).

        Returns:
            The tree's size.
        """
        if self.store.read_only:
            return self.tree.size()
        return self.tree.catch_up()

    def checkpoint(self, key: SigningKey, *, issued_at: datetime | None = None) -> Checkpoint:
        """Catch the tree up, sign its head with the operator's key, and keep the checkpoint.

        Args:
            key: the signing key (`load_signing_key`); refused when kept in the folder of the
                store's file.
            issued_at: the time to sign (default: now).

        Returns:
            The checkpoint, to publish.

        Raises:
            AuditKeyError: the key is kept beside the store.
            ReadOnlyStoreError: the store was opened read-only.
        """
        refuse_beside_store(key.path, self.store.storage_file)
        origin = self.origin()
        size = self.tree.catch_up()
        root = self.tree.root(size)
        when = issued_at or datetime.now(UTC)
        checkpoint = sign_checkpoint(
            key, origin=origin, tree_size=size, root_hash=root, issued_at=when
        )
        row = (
            size,
            to_micros(checkpoint.issued),
            root,
            origin,
            key.key_id,
            key.public.raw,
            base64.b64decode(checkpoint.signature),
        )
        self.store.run_transaction(lambda tx: tx.execute(self._sql.insert_checkpoint, row))
        return checkpoint

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint kept in the store, by tree size and time."""
        return [_checkpoint_of(row) for row in self.store.query(self._sql.checkpoints)]

    def latest_checkpoint(self) -> Checkpoint | None:
        """The checkpoint of the largest tree (the latest of those), or None."""
        return self._one(self._sql.covering, -1)

    def checkpoint_of_size(self, tree_size: int) -> Checkpoint | None:
        """The latest checkpoint of a tree size, or None."""
        return self._one(self._sql.of_size, tree_size)

    def _one(self, statement: str, size: int) -> Checkpoint | None:
        rows = self.store.query(statement, (size,))
        return _checkpoint_of(rows[0]) if rows else None

    def stored_public_keys(self) -> dict[str, bytes]:
        """The public keys recorded with the checkpoints, by key id."""
        return {str(k): bytes(raw) for k, raw in self.store.query(self._sql.public_keys)}

    # -- proofs ----------------------------------------------------------------------------------

    def prove(
        self,
        event_id: uuid.UUID | None = None,
        *,
        stream_name: str | None = None,
        stream_position: int | None = None,
        tree_size: int | None = None,
    ) -> InclusionProof:
        """The inclusion proof of an event, removed or not.

        Args:
            event_id: the event's id; or else `stream_name` and `stream_position`.
            stream_name: its stream.
            stream_position: its position in its stream.
            tree_size: the tree to prove it in; by default that of the latest checkpoint that
                holds the event, else the whole tree (after catching it up).

        Returns:
            The proof, with the checkpoint of its tree size when there is one.

        Raises:
            EventNotFoundError: there is no such event.
            LeafIndexError: the tree (of `tree_size`) does not hold the event.
        """
        event = self.store.get_event(
            event_id, stream_name=stream_name, stream_position=stream_position
        )
        if event is None:
            reference = (
                str(event_id) if event_id is not None else f"{stream_name}@{stream_position}"
            )
            raise EventNotFoundError(reference)
        held = self.catch_up()
        index, chunk = self.tree.locate(event.global_position)
        leaf = chunk.leaf(index - chunk.index * CHUNK_LEAVES)
        recorded = ProvenEvent(
            global_position=event.global_position,
            stream_name=event.stream_name,
            stream_position=event.stream_position,
            event_id=str(event.event_id),
            hash=event.hash,
            removed_by=event.removed_by,
        )
        if recorded.leaf() != leaf:
            # A proof names the event as the store holds it now; one the tree recorded otherwise
            # could not verify against any checkpoint: say so instead of making it.
            raise AuditMismatchError(
                f"the event's hash {event.hash[:16]}... is not the hash the audit tree recorded "
                f"for it ({leaf[8:].hex()[:16]}...): the event was changed",
                global_position=event.global_position,
                stream_name=event.stream_name,
                stream_position=event.stream_position,
            )
        checkpoint: Checkpoint | None
        if tree_size is None:
            checkpoint = self._one(self._sql.covering, index)
            size = checkpoint.tree_size if checkpoint is not None else held
        else:
            size = tree_size
            checkpoint = self.checkpoint_of_size(size)
        if index >= size:
            raise LeafIndexError(
                "tree_size",
                size,
                f"{size}: the event at global position {event.global_position} is leaf {index}, "
                f"not in a tree of {size} leaves",
            )
        # The tree's size and the leaf's chunk were just read: the path's reads are its nodes
        # and, when the tree ends in a partial chunk, that chunk.
        *path, root = self.tree.inclusion_path(
            index, size, with_root=True, held=held, read=(chunk,)
        )
        return InclusionProof(
            event=recorded,
            leaf_index=index,
            tree_size=size,
            root_hash=root.hex(),
            path=[h.hex() for h in path],
            checkpoint=checkpoint,
        )

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """The consistency proof between two tree sizes.

        Args:
            old_size: the earlier tree size (a checkpoint's).
            new_size: the later one; by default the latest checkpoint's, else the whole tree
                (after catching it up).

        Returns:
            The proof, with the checkpoints of both sizes where there are.

        Raises:
            LeafIndexError: a size the tree does not hold, or `old_size` > `new_size`.
        """
        self.catch_up()
        if new_size is None:
            latest = self.latest_checkpoint()
            new_size = latest.tree_size if latest is not None else self.tree.size()
        if type(old_size) is not int or type(new_size) is not int:
            raise InvalidArgumentError("old_size", old_size, "tree sizes are ints")
        path = self.tree.consistency_path(old_size, new_size)
        old_root, new_root = (self.tree.root(size) for size in (old_size, new_size))
        return ConsistencyProof(
            old_size=old_size,
            old_root=old_root.hex(),
            new_size=new_size,
            new_root=new_root.hex(),
            path=[h.hex() for h in path],
            old_checkpoint=self.checkpoint_of_size(old_size),
            new_checkpoint=self.checkpoint_of_size(new_size),
        )


@dataclass(slots=True)
class CheckpointPolicy:
    """When to sign a checkpoint: after `every_events` new events, or `every_seconds` after the
    last one when the log grew meanwhile (whichever comes first).

    `run` keeps a ledger's checkpoints to the policy until `stop` is set: the loop behind
    `eventvault audit run`, a process of its own beside the application (only it holds the key).

    Attributes:
        every_events: sign once the tree grew by this many leaves (>= 1), or None.
        every_seconds: sign once this long passed since the last checkpoint and the tree grew,
            or None.
        poll_seconds: how often to look at the log.
    """

    every_events: int | None = None
    every_seconds: float | None = None
    poll_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.every_events is None and self.every_seconds is None:
            raise InvalidArgumentError(
                "every_events", None, "give every_events, every_seconds, or both"
            )
        if self.every_events is not None and (
            type(self.every_events) is not int or self.every_events < 1
        ):
            raise InvalidArgumentError(
                "every_events", self.every_events, "must be an int >= 1 or None"
            )
        if self.every_seconds is not None and not self.every_seconds > 0:
            raise InvalidArgumentError(
                "every_seconds", self.every_seconds, "must be a number > 0 or None"
            )
        if not self.poll_seconds > 0:
            raise InvalidArgumentError("poll_seconds", self.poll_seconds, "must be > 0")

    def due(self, size: int, last: Checkpoint | None, now: datetime) -> bool:
        """Whether a tree of `size` leaves is due for a checkpoint after `last`."""
        signed = 0 if last is None else last.tree_size
        if size <= signed:
            return False
        if last is None:
            return True
        if self.every_events is not None and size - signed >= self.every_events:
            return True
        waited = (now - last.issued).total_seconds()
        return self.every_seconds is not None and waited >= self.every_seconds

    def run(
        self,
        ledger: AuditLedger,
        key: SigningKey,
        stop: threading.Event,
        on_checkpoint: Callable[[Checkpoint], None] | None = None,
    ) -> int:
        """Catch up and sign by the policy until `stop` is set.

        A store that cannot be reached for now (a server restarting, a lock held long) is
        waited out: the loop tries again at its next poll.

        Returns:
            The number of checkpoints signed.
        """
        signed = 0
        while not stop.is_set():
            try:
                size = ledger.catch_up()
                if self.due(size, ledger.latest_checkpoint(), datetime.now(UTC)):
                    checkpoint = ledger.checkpoint(key)
                    signed += 1
                    if on_checkpoint is not None:
                        on_checkpoint(checkpoint)
            except (StoreUnavailableError, DatabaseLockedError):
                pass
            stop.wait(self.poll_seconds)
        return signed
