"""The Merkle tree of RFC 9162 (Certificate Transparency v2), section 2.1: hashes and proofs.

The tree of `n` leaves is defined recursively: the hash of one leaf is SHA-256(0x00 || leaf),
the hash of two subtrees is SHA-256(0x01 || left || right), and the left subtree of `n > 1`
leaves holds the first `k` of them, `k` the largest power of two below `n`. The prefixes keep a
leaf from ever being taken for a node (a second-preimage defence).

An inclusion proof is the list of subtree hashes that lead from a leaf up to the root; a
consistency proof the list that shows the tree of `m` leaves is the first `m` leaves of the tree
of `n`. This module makes both as lists of *ranges* of leaves (`inclusion_ranges`,
`consistency_ranges`), which the caller turns into hashes from wherever it keeps the tree, and
checks both with the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2, so that a verifier
never needs the tree. It imports nothing of eventvault: `docs/audit-format.md` specifies the same
and `tools/verify_audit.py` does the same with the standard library.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "LEAF_BYTES",
    "ProofError",
    "consistency_ranges",
    "inclusion_ranges",
    "leaf_bytes",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "root_of",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

LEAF_BYTES: Final = 40
"""The bytes of one leaf: the event's global position (8, big-endian) and its hash (32)."""
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""The root of the tree of no leaves: SHA-256 of nothing."""
_pack_position = struct.Struct(">Q").pack
_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof does not verify: it is malformed, or it leads to another root."""


def leaf_bytes(global_position: int, event_hash: bytes) -> bytes:
    """The leaf of an event: its global position as 8 bytes big-endian, then its 32-byte hash.

    The position makes the leaf name the place of the event in the log, and the hash (which
    chains to the event before it in its stream) names its bytes; an event whose payload was
    removed keeps both, and so its leaf.
    """
    return _pack_position(global_position) + event_hash


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 || leaf): the hash of a tree of one leaf."""
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of a node from its two subtrees'."""
    return _sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two below `size` (`size` > 1): where the tree of `size` leaves
    splits into its left and right subtree."""
    return 1 << ((size - 1).bit_length() - 1)


def root_of(hashes: Sequence[bytes]) -> bytes:
    """The root of the tree whose leaves have these leaf hashes (RFC 9162's MTH).

    Args:
        hashes: the leaf hashes (`leaf_hash`), in order.

    Returns:
        The 32-byte root; `EMPTY_ROOT` for no leaves.
    """
    if not hashes:
        return EMPTY_ROOT
    # Bottom up, level by level: the tree is the one of the recursive definition, since each
    # level pairs its hashes from the left and lifts an odd last one unchanged.
    level = list(hashes)
    sha256 = _sha256
    while len(level) > 1:
        paired = [
            sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def leaf_hashes(leaves: bytes | bytearray) -> list[bytes]:
    """The leaf hashes of leaves laid end to end (`LEAF_BYTES` each)."""
    sha256 = _sha256
    return [
        sha256(b"\x00" + leaves[at : at + LEAF_BYTES]).digest()
        for at in range(0, len(leaves), LEAF_BYTES)
    ]


Range = tuple[int, int]
"""Leaves `[start, end)` of the tree: a subtree whose hash a proof holds."""


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes make the inclusion proof of a leaf (RFC 9162's PATH).

    Args:
        index: the leaf's index, 0 <= index < size.
        size: the tree size.

    Returns:
        The ranges, from the leaf's sibling up to the root's other child.

    Raises:
        ValueError: `index` is not in the tree.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees whose hashes make the consistency proof between two tree sizes (RFC 9162's
    PROOF and SUBPROOF).

    Args:
        old_size: the earlier tree size, 0 <= old_size <= new_size.
        new_size: the later tree size.

    Returns:
        The ranges, from the bottom up; empty when `old_size` is 0 or equals `new_size` (then
        nothing needs proving beyond the roots themselves).

    Raises:
        ValueError: `old_size` is negative or greater than `new_size`.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from a tree of {old_size} to one of {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[Range] = []
    start, end, m, whole = 0, new_size, old_size, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ProofError(f"{what} must be 32 bytes, not {value!r:.80}")


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 section 2.1.3.2).

    Args:
        leaf: the leaf hash (`leaf_hash` of the leaf's bytes).
        index: the leaf's index.
        size: the tree size.
        path: the proof's hashes, from the leaf's sibling up.
        root: the root hash of the tree of `size` leaves.

    Raises:
        ProofError: the proof is malformed or leads to another root.
    """
    _check_hash(leaf, "the leaf hash")
    _check_hash(root, "the root hash")
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for number, p in enumerate(path):
        _check_hash(p, f"hash {number} of the path")
        if sn == 0:
            raise ProofError(f"the path has {len(path)} hashes, more than the tree needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the path has {len(path)} hashes, fewer than the tree needs")
    if r != root:
        raise ProofError(
            f"the path leads to the root {r.hex()}, not to {root.hex()}: the leaf is not in "
            "that tree at that index"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> None:
    """Check a consistency proof (RFC 9162 section 2.1.4.2): the tree of `new_size` leaves
    begins with the tree of `old_size` leaves.

    Args:
        old_size: the earlier tree size.
        new_size: the later tree size.
        old_root: the root hash of the earlier tree.
        new_root: the root hash of the later tree.
        path: the proof's hashes.

    Raises:
        ProofError: the proof is malformed or does not lead to both roots.
    """
    _check_hash(old_root, "the old root hash")
    _check_hash(new_root, "the new root hash")
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a tree of {new_size} leaves cannot extend one of {old_size}")
    if old_size == new_size or old_size == 0:
        if path:
            raise ProofError(
                f"between trees of {old_size} and {new_size} leaves the proof is empty, not "
                f"{len(path)} hashes"
            )
        if old_size == new_size and old_root != new_root:
            raise ProofError(
                f"two trees of {old_size} leaves with different roots ({old_root.hex()}, "
                f"{new_root.hex()}): the log was changed"
            )
        return
    if not path:
        raise ProofError("the proof is empty")
    for number, c in enumerate(path):
        _check_hash(c, f"hash {number} of the path")
    hashes = list(path)
    if old_size & (old_size - 1) == 0:
        hashes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if sn == 0:
            raise ProofError(f"the path has {len(path)} hashes, more than the trees need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the path has {len(path)} hashes, fewer than the trees need")
    if fr != old_root:
        raise ProofError(
            f"the proof leads to the old root {fr.hex()}, not to {old_root.hex()}: the earlier "
            "tree is not a prefix of the later one"
        )
    if sr != new_root:
        raise ProofError(
            f"the proof leads to the new root {sr.hex()}, not to {new_root.hex()}: the later "
            "tree does not extend the earlier one"
        )
