"""Inclusion and consistency proofs as published JSON, and their checks.

An inclusion proof shows that an event is leaf `leaf_index` of the tree of `tree_size` leaves whose
root is `root_hash` (and, with its checkpoint, that the operator signed that root); a consistency
proof shows that the tree of `new_size` leaves begins with the tree of `old_size` leaves, so
nothing recorded before the older checkpoint was changed, removed or reordered since. Both are a
few hundred bytes: a path of at most about 2 log2(n) hashes. docs/audit-format.md specifies them;
`tools/verify_audit.py` checks them without eventvault.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from eventvault.audit.checkpoints import Checkpoint, verify_signature
from eventvault.audit.keys import PublicKey
from eventvault.audit.merkle import (
    ProofError,
    leaf_bytes,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from eventvault.errors import AuditMismatchError, InvalidArgumentError

__all__ = [
    "CONSISTENCY_FORMAT",
    "INCLUSION_FORMAT",
    "ConsistencyProof",
    "InclusionProof",
    "ProvenEvent",
    "parse_proof",
]

INCLUSION_FORMAT: Final = "eventvault-inclusion-proof"
CONSISTENCY_FORMAT: Final = "eventvault-consistency-proof"
PROOF_VERSION: Final = 1
_HEX: Final = re.compile(r"[0-9a-f]{64}")


def _digest(value: str, what: str) -> bytes:
    if not _HEX.fullmatch(value):
        raise AuditMismatchError(f"{what} {value!r:.80} is not 64 lowercase hexadecimal digits")
    return bytes.fromhex(value)


class ProvenEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The event an inclusion proof is about.

    Attributes:
        global_position: its global position.
        stream_name: its stream.
        stream_position: its position in its stream.
        event_id: its id.
        hash: its hash (the export format's `hash`), 64 hexadecimal digits.
        removed_by: for a removed event, the global position of its removal's record.
    """

    global_position: int
    stream_name: str
    stream_position: int
    event_id: str
    hash: str
    removed_by: int | None = None

    def leaf(self) -> bytes:
        """The event's leaf: its global position (8 bytes, big-endian) and its hash."""
        return leaf_bytes(self.global_position, _digest(self.hash, "the event's hash"))


def _check_checkpoint(
    checkpoint: Checkpoint | None, size: int, root: str, keys: list[PublicKey] | None, what: str
) -> None:
    if checkpoint is None:
        return
    if (checkpoint.tree_size, checkpoint.root_hash) != (size, root):
        raise AuditMismatchError(
            f"the {what} names a tree of {size} leaves with root {root[:16]}..., its checkpoint "
            f"signs {checkpoint.tree_size} leaves with root {checkpoint.root_hash[:16]}..."
        )
    if keys is not None:
        verify_signature(checkpoint, keys)


class InclusionProof(msgspec.Struct, frozen=True, kw_only=True):
    """An event's place in the tree of a checkpoint.

    Attributes:
        format: always `eventvault-inclusion-proof`.
        version: the format's version (1).
        event: the event.
        leaf_index: its leaf's index (its ordinal in the log).
        tree_size: the tree size the proof is for.
        root_hash: that tree's root.
        path: the proof's hashes, from the leaf's sibling up, in hexadecimal.
        checkpoint: the signed checkpoint of that tree, when there is one.
    """

    format: str = INCLUSION_FORMAT
    version: int = PROOF_VERSION
    event: ProvenEvent
    leaf_index: int
    tree_size: int
    root_hash: str
    path: list[str]
    checkpoint: Checkpoint | None = None

    def verify(self, keys: list[PublicKey] | None = None) -> None:
        """Check the proof (and, given keys, its checkpoint's signature).

        Raises:
            AuditMismatchError: the path does not lead from the event's leaf to the root, or
                the checkpoint names another tree.
            CheckpointSignatureError: the checkpoint's signature does not verify.
        """
        _check_checkpoint(self.checkpoint, self.tree_size, self.root_hash, keys, "proof")
        try:
            verify_inclusion(
                leaf_hash(self.event.leaf()),
                self.leaf_index,
                self.tree_size,
                [_digest(h, "a path hash") for h in self.path],
                _digest(self.root_hash, "the root hash"),
            )
        except ProofError as exc:
            event = self.event
            raise AuditMismatchError(
                f"the inclusion proof does not verify: {exc}",
                global_position=event.global_position,
                stream_name=event.stream_name,
                stream_position=event.stream_position,
            ) from exc

    def to_json(self) -> bytes:
        """The proof as JSON."""
        return msgspec.json.encode(self)


class ConsistencyProof(msgspec.Struct, frozen=True, kw_only=True):
    """That a later tree extends an earlier one.

    Attributes:
        format: always `eventvault-consistency-proof`.
        version: the format's version (1).
        old_size: the earlier tree size.
        old_root: the earlier tree's root.
        new_size: the later tree size.
        new_root: the later tree's root.
        path: the proof's hashes, in hexadecimal.
        old_checkpoint: the signed checkpoint of the earlier tree, when there is one.
        new_checkpoint: the signed checkpoint of the later tree, when there is one.
    """

    format: str = CONSISTENCY_FORMAT
    version: int = PROOF_VERSION
    old_size: int
    old_root: str
    new_size: int
    new_root: str
    path: list[str]
    old_checkpoint: Checkpoint | None = None
    new_checkpoint: Checkpoint | None = None

    def verify(self, keys: list[PublicKey] | None = None) -> None:
        """Check the proof (and, given keys, its checkpoints' signatures).

        Raises:
            AuditMismatchError: the proof does not lead to both roots, or a checkpoint names
                another tree.
            CheckpointSignatureError: a checkpoint's signature does not verify.
        """
        _check_checkpoint(self.old_checkpoint, self.old_size, self.old_root, keys, "old tree")
        _check_checkpoint(self.new_checkpoint, self.new_size, self.new_root, keys, "new tree")
        try:
            verify_consistency(
                self.old_size,
                self.new_size,
                _digest(self.old_root, "the old root"),
                _digest(self.new_root, "the new root"),
                [_digest(h, "a path hash") for h in self.path],
            )
        except ProofError as exc:
            raise AuditMismatchError(
                f"the consistency proof from {self.old_size} to {self.new_size} leaves does not "
                f"verify: {exc}"
            ) from exc

    def to_json(self) -> bytes:
        """The proof as JSON."""
        return msgspec.json.encode(self)


def parse_proof(data: bytes | str, source: str = "the proof") -> InclusionProof | ConsistencyProof:
    """Read a proof's JSON, of either kind.

    Raises:
        InvalidArgumentError: not a proof of a format this eventvault reads.
    """
    try:
        probe = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidArgumentError("proof", source, f"is not JSON: {exc}") from exc
    kind = probe.get("format") if isinstance(probe, dict) else None
    target: type[InclusionProof] | type[ConsistencyProof]
    if kind == INCLUSION_FORMAT:
        target = InclusionProof
    elif kind == CONSISTENCY_FORMAT:
        target = ConsistencyProof
    else:
        raise InvalidArgumentError("proof", source, f"is not a proof (format {kind!r})")
    try:
        proof = msgspec.json.decode(data, type=target)
    except msgspec.DecodeError as exc:
        raise InvalidArgumentError("proof", source, f"is malformed: {exc}") from exc
    if proof.version != PROOF_VERSION:
        raise InvalidArgumentError(
            "proof", source, f"is of version {proof.version}; this eventvault reads {PROOF_VERSION}"
        )
    return proof
