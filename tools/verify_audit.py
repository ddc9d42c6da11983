"""Verify eventvault audit checkpoints and proofs without eventvault (docs/audit-format.md).

Needs Python 3.11+ and the `cryptography` package (for Ed25519 and PEM keys); nothing else.

Usage:
    python3 verify_audit.py checkpoint CHECKPOINT.json --public-key KEY.pub
    python3 verify_audit.py inclusion PROOF.json --public-key KEY.pub [--checkpoint CHECKPOINT.json]
    python3 verify_audit.py consistency PROOF.json --public-key KEY.pub [--old OLD.json] [--new NEW.json]

`--public-key` is the operator's public key (PEM), obtained from the operator, never from the
store or the proof; it may be given more than once (keys in use over time). `--checkpoint`, `--old`
and `--new` are checkpoints you hold (published earlier): the proof must be for exactly those.

Prints "verified: ..." and exits 0, or prints "not verified: REASON" on stderr and exits 1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEX = re.compile(r"[0-9a-f]{64}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
ORIGIN = re.compile(r"[\x21-\x7e]{1,200}")


class NotVerified(Exception):
    pass


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(leaf: bytes) -> bytes:
    return sha256(b"\x00" + leaf)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def digest(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not HEX.fullmatch(value):
        raise NotVerified(f"{what} is not 64 lowercase hexadecimal digits")
    return bytes.fromhex(value)


def integer(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise NotVerified(f"{what} is not an integer >= 0")
    return value


def load_json(path: str) -> dict[str, Any]:
    with open(path, "rb") as file:
        value = json.loads(file.read())
    if not isinstance(value, dict):
        raise NotVerified(f"{path} does not hold a JSON object")
    return value


def load_key(path: str) -> tuple[str, Ed25519PublicKey]:
    with open(path, "rb") as file:
        key = serialization.load_pem_public_key(file.read())
    if not isinstance(key, Ed25519PublicKey):
        raise NotVerified(f"{path} does not hold an Ed25519 public key")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16], key


def checkpoint_body(checkpoint: dict[str, Any]) -> bytes:
    origin, size = checkpoint.get("origin"), checkpoint.get("tree_size")
    root, issued = checkpoint.get("root_hash"), checkpoint.get("issued_at")
    if not isinstance(origin, str) or not ORIGIN.fullmatch(origin):
        raise NotVerified("the checkpoint's origin is not 1 to 200 printable ASCII characters")
    integer(size, "the checkpoint's tree_size")
    digest(root, "the checkpoint's root_hash")
    if not isinstance(issued, str) or not TIME.fullmatch(issued):
        raise NotVerified("the checkpoint's issued_at is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    text = (
        f"eventvault-checkpoint v1\norigin {origin}\ntree-size {size}\n"
        f"root-hash {root}\nissued-at {issued}\n"
    )
    return text.encode("ascii")


def verify_checkpoint(checkpoint: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> None:
    if (checkpoint.get("format"), checkpoint.get("version")) != ("eventvault-checkpoint", 1):
        raise NotVerified("not an eventvault checkpoint of version 1")
    body = checkpoint_body(checkpoint)
    key = keys.get(str(checkpoint.get("key_id")))
    if key is None:
        raise NotVerified(
            f"the checkpoint of tree size {checkpoint['tree_size']} is signed with key "
            f"{checkpoint.get('key_id')!r}, which is not among the public keys given"
        )
    try:
        signature = base64.b64decode(str(checkpoint.get("signature")), validate=True)
        key.verify(signature, body)
    except (InvalidSignature, ValueError) as exc:
        raise NotVerified(
            f"the signature of the checkpoint of tree size {checkpoint['tree_size']} does not "
            f"verify: it was forged or changed after signing ({type(exc).__name__})"
        ) from None


def same_checkpoint(held: dict[str, Any] | None, embedded: object, size: int, root: str) -> None:
    """The proof must be for the tree of the checkpoint one holds (or, without one, for the
    tree of its own, signed, checkpoint)."""
    for checkpoint in (held, embedded):
        if isinstance(checkpoint, dict) and (
            checkpoint.get("tree_size"),
            checkpoint.get("root_hash"),
        ) != (size, root):
            raise NotVerified(
                f"the proof is for a tree of {size} leaves with root {root[:16]}..., the "
                f"checkpoint signs {checkpoint.get('tree_size')} leaves with root "
                f"{str(checkpoint.get('root_hash'))[:16]}..."
            )


def signed(
    held: dict[str, Any] | None, embedded: object, keys: dict[str, Ed25519PublicKey]
) -> dict[str, Any]:
    checkpoint = held if held is not None else embedded
    if not isinstance(checkpoint, dict):
        raise NotVerified("no signed checkpoint: give the one you hold (--checkpoint)")
    verify_checkpoint(checkpoint, keys)
    return checkpoint


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> None:
    """RFC 9162, section 2.1.3.2."""
    if index >= size:
        raise NotVerified(f"leaf {index} is not in a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    for p in path:
        if sn == 0:
            raise NotVerified("the path is longer than the tree needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise NotVerified("the path does not lead from the event's leaf to the root")


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, path: list[bytes]
) -> None:
    """RFC 9162, section 2.1.4.2 (with an empty proof for equal sizes or an empty old tree)."""
    if old > new:
        raise NotVerified(f"a tree of {new} leaves cannot extend one of {old}")
    if old == new or old == 0:
        if path or (old == new and old_root != new_root):
            raise NotVerified("the trees differ where no proof can join them")
        return
    if not path:
        raise NotVerified("the proof is empty")
    if old & (old - 1) == 0:
        path = [old_root, *path]
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise NotVerified("the path is longer than the trees need")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise NotVerified("the later tree does not extend the earlier one")


def inclusion(proof: dict[str, Any], held: dict[str, Any] | None, keys: dict[str, Any]) -> str:
    if (proof.get("format"), proof.get("version")) != ("eventvault-inclusion-proof", 1):
        raise NotVerified("not an eventvault inclusion proof of version 1")
    event = proof.get("event")
    if not isinstance(event, dict):
        raise NotVerified("the proof names no event")
    size = integer(proof.get("tree_size"), "tree_size")
    root = proof.get("root_hash")
    same_checkpoint(held, proof.get("checkpoint"), size, str(root))
    checkpoint = signed(held, proof.get("checkpoint"), keys)
    position = integer(event.get("global_position"), "the event's global_position")
    leaf = position.to_bytes(8, "big") + digest(event.get("hash"), "the event's hash")
    path = [digest(h, "a path hash") for h in proof.get("path") or []]
    index = integer(proof.get("leaf_index"), "leaf_index")
    verify_inclusion(leaf, index, size, path, digest(root, "root_hash"))
    return (
        f"event {event.get('event_id')} ({event.get('stream_name')!r}@"
        f"{event.get('stream_position')}, global position {position}) is leaf {index} of the "
        f"tree of {size} leaves signed at {checkpoint['issued_at']} by key {checkpoint['key_id']}"
    )


def consistency(
    proof: dict[str, Any],
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    keys: dict[str, Any],
) -> str:
    if (proof.get("format"), proof.get("version")) != ("eventvault-consistency-proof", 1):
        raise NotVerified("not an eventvault consistency proof of version 1")
    old_size = integer(proof.get("old_size"), "old_size")
    new_size = integer(proof.get("new_size"), "new_size")
    old_root, new_root = str(proof.get("old_root")), str(proof.get("new_root"))
    same_checkpoint(old, proof.get("old_checkpoint"), old_size, old_root)
    same_checkpoint(new, proof.get("new_checkpoint"), new_size, new_root)
    first = signed(old, proof.get("old_checkpoint"), keys)
    second = signed(new, proof.get("new_checkpoint"), keys)
    if first.get("origin") != second.get("origin"):
        raise NotVerified("the two checkpoints sign the logs of two stores")
    path = [digest(h, "a path hash") for h in proof.get("path") or []]
    verify_consistency(
        old_size, new_size, digest(old_root, "old_root"), digest(new_root, "new_root"), path
    )
    return (
        f"the tree of {new_size} leaves signed at {second['issued_at']} extends the tree of "
        f"{old_size} leaves signed at {first['issued_at']}: nothing before it was changed, "
        "removed or reordered"
    )


def main(arguments: list[str]) -> str:
    if len(arguments) < 2 or arguments[0] not in ("checkpoint", "inclusion", "consistency"):
        raise SystemExit(__doc__)
    command, target, rest = arguments[0], arguments[1], arguments[2:]
    options: dict[str, list[str]] = {}
    while rest:
        if len(rest) < 2 or rest[0] not in ("--public-key", "--checkpoint", "--old", "--new"):
            raise SystemExit(__doc__)
        options.setdefault(rest[0], []).append(rest[1])
        rest = rest[2:]
    if not options.get("--public-key"):
        raise NotVerified("give the operator's public key (--public-key KEY.pub)")
    keys = dict(load_key(path) for path in options["--public-key"])

    def held(option: str) -> dict[str, Any] | None:
        paths = options.get(option)
        return load_json(paths[-1]) if paths else None

    document = load_json(target)
    if command == "checkpoint":
        verify_checkpoint(document, keys)
        return (
            f"checkpoint of {document['tree_size']} leaves, root {document['root_hash'][:16]}..., "
            f"signed at {document['issued_at']} by key {document['key_id']} for "
            f"{document['origin']}"
        )
    if command == "inclusion":
        return inclusion(document, held("--checkpoint"), keys)
    return consistency(document, held("--old"), held("--new"), keys)


if __name__ == "__main__":
    try:
        print("verified: " + main(sys.argv[1:]))
    except (NotVerified, OSError, ValueError, KeyError, TypeError) as exc:
        print(f"not verified: {exc}", file=sys.stderr)
        sys.exit(1)
