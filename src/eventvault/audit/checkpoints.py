"""Signed checkpoints: a tree head (size, root hash, time, origin) signed with the operator's key.

A checkpoint is published as JSON (`Checkpoint`); its signature covers a canonical text built from
its fields (`checkpoint_body`), specified in docs/audit-format.md so that anyone can check it
without eventvault::

    eventvault-checkpoint v1
    origin 2f1c...-...
    tree-size 1000
    root-hash 6e34...
    issued-at 2026-05-01T09:31:00.120000Z

Each line ends with a line feed; the signature is Ed25519 over those bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Final

import msgspec

from eventvault.audit.keys import PublicKey, SigningKey
from eventvault.errors import CheckpointSignatureError, InvalidArgumentError
from eventvault.serialization import from_micros, to_micros

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "checkpoint_body",
    "format_time",
    "parse_checkpoint",
    "sign_checkpoint",
    "verify_signature",
]

CHECKPOINT_FORMAT: Final = "eventvault-checkpoint"
CHECKPOINT_VERSION: Final = 1
_TIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_HEX: Final = re.compile(r"[0-9a-f]{64}")
_ORIGIN: Final = re.compile(r"[\x21-\x7e]{1,200}")


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A signed tree head, as stored and as published (JSON).

    Attributes:
        format: always `eventvault-checkpoint`.
        version: the format's version (1).
        origin: the identity of the store whose log it signs.
        tree_size: the number of leaves (events of the log, in global order) the tree holds.
        root_hash: the tree's root hash, 64 lowercase hexadecimal digits.
        issued_at: when it was signed: UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
        key_id: the id of the key that signed it (first 8 bytes of the SHA-256 of the raw
            public key, in hex).
        signature: the Ed25519 signature of `checkpoint_body`, base64 (RFC 4648, with padding).
    """

    format: str = CHECKPOINT_FORMAT
    version: int = CHECKPOINT_VERSION
    origin: str
    tree_size: int
    root_hash: str
    issued_at: str
    key_id: str
    signature: str

    def body(self) -> bytes:
        """The bytes its signature covers."""
        return checkpoint_body(self.origin, self.tree_size, self.root_hash, self.issued_at)

    @property
    def issued(self) -> datetime:
        """`issued_at` as an aware datetime."""
        return datetime.strptime(self.issued_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

    def to_json(self) -> bytes:
        """The checkpoint as one line of JSON, for publishing."""
        return msgspec.json.encode(self)


def format_time(moment: datetime) -> str:
    """A time as a checkpoint writes it: UTC, microseconds, `Z`."""
    return from_micros(to_micros(moment)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def checkpoint_body(origin: str, tree_size: int, root_hash: str, issued_at: str) -> bytes:
    """The canonical text a checkpoint's signature covers (see the module's docstring).

    Raises:
        InvalidArgumentError: a field that the format cannot hold as given.
    """
    if not _ORIGIN.fullmatch(origin):
        raise InvalidArgumentError("origin", origin, "must be 1 to 200 printable ASCII characters")
    if type(tree_size) is not int or tree_size < 0:
        raise InvalidArgumentError("tree_size", tree_size, "must be an int >= 0")
    if not _HEX.fullmatch(root_hash):
        raise InvalidArgumentError("root_hash", root_hash, "must be 64 lowercase hex digits")
    if not _TIME.fullmatch(issued_at):
        raise InvalidArgumentError(
            "issued_at", issued_at, "must be UTC written as YYYY-MM-DDTHH:MM:SS.ffffffZ"
        )
    return (
        f"{CHECKPOINT_FORMAT} v{CHECKPOINT_VERSION}\n"
        f"origin {origin}\n"
        f"tree-size {tree_size}\n"
        f"root-hash {root_hash}\n"
        f"issued-at {issued_at}\n"
    ).encode("ascii")


def sign_checkpoint(
    key: SigningKey, *, origin: str, tree_size: int, root_hash: bytes, issued_at: datetime
) -> Checkpoint:
    """Sign a tree head.

    Returns:
        The checkpoint.
    """
    fields = (origin, tree_size, root_hash.hex(), format_time(issued_at))
    signature = key.sign(checkpoint_body(*fields))
    return Checkpoint(
        origin=fields[0],
        tree_size=fields[1],
        root_hash=fields[2],
        issued_at=fields[3],
        key_id=key.key_id,
        signature=base64.b64encode(signature).decode("ascii"),
    )


def verify_signature(checkpoint: Checkpoint, keys: list[PublicKey]) -> PublicKey:
    """Check a checkpoint's signature with the key among `keys` that it names.

    Returns:
        The key that verified it.

    Raises:
        CheckpointSignatureError: no key of `keys` has its key id (signed by another key), or
            the signature does not verify (forged, or a field changed after signing).
    """
    matching = [key for key in keys if key.key_id == checkpoint.key_id]
    if not matching:
        known = ", ".join(sorted({key.key_id for key in keys})) or "none"
        raise CheckpointSignatureError(
            checkpoint.tree_size,
            checkpoint.key_id,
            f"signed with a key that is not among the keys it is checked with ({known})",
        )
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        body = checkpoint.body()
    except (binascii.Error, ValueError) as exc:
        raise CheckpointSignatureError(
            checkpoint.tree_size, checkpoint.key_id, f"malformed: {exc}"
        ) from exc
    for key in matching:
        if key.verify(signature, body):
            return key
    raise CheckpointSignatureError(
        checkpoint.tree_size,
        checkpoint.key_id,
        "the signature does not verify: the checkpoint was forged or changed after it was signed",
    )


def parse_checkpoint(data: bytes | str, source: str = "the checkpoint") -> Checkpoint:
    """Read a checkpoint's JSON.

    Raises:
        InvalidArgumentError: not a checkpoint of a format this eventvault reads.
    """
    try:
        checkpoint = msgspec.json.decode(data, type=Checkpoint)
    except msgspec.DecodeError as exc:
        raise InvalidArgumentError("checkpoint", source, f"is not a checkpoint: {exc}") from exc
    if checkpoint.format != CHECKPOINT_FORMAT or checkpoint.version != CHECKPOINT_VERSION:
        raise InvalidArgumentError(
            "checkpoint",
            source,
            f"is a {checkpoint.format!r} of version {checkpoint.version}; this eventvault reads "
            f"{CHECKPOINT_FORMAT!r} version {CHECKPOINT_VERSION}",
        )
    return checkpoint
