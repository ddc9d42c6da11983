"""The operator's Ed25519 keys that sign checkpoints: made, written and read as PEM files.

The private key lives in a file the operator holds, never in the store: a checkpoint signed with
it proves to anyone holding the public key that the operator saw the log as the checkpoint says,
and someone who can change the database cannot sign another. `generate_key` writes the private
key (PKCS#8, readable by its owner only, encrypted when given a passphrase) and the public key
(SubjectPublicKeyInfo) beside it as `NAME.pub`.

`cryptography` (the `audit` extra) is imported when a key is used, so that the rest of the audit
ledger (its tree and proofs) works without it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from eventvault.errors import AuditKeyError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "PASSPHRASE_ENV",
    "PublicKey",
    "SigningKey",
    "generate_key",
    "key_id_of",
    "load_public_key",
    "load_signing_key",
    "need_cryptography",
]

PASSPHRASE_ENV: Final = "EVENTVAULT_AUDIT_KEY_PASSPHRASE"
"""The environment variable the command line reads a key file's passphrase from."""


def need_cryptography(what: str) -> None:
    """Raise a clear error when `cryptography` (the `audit` extra) is missing.

    Raises:
        AuditKeyError: it is not installed.
    """
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise AuditKeyError(
            what,
            "signing and checking checkpoints and protecting personal data need the "
            "cryptography package: pip install 'eventvault[audit]'",
        ) from exc


def key_id_of(public_key: bytes) -> str:
    """A key's id: the first 8 bytes of the SHA-256 of its 32 raw public bytes, in hex."""
    return hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key that checks checkpoints.

    Attributes:
        raw: its 32 raw bytes.
        key_id: its id (`key_id_of`).
        source: where it was read from, for messages.
    """

    raw: bytes
    key_id: str
    source: str

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is this key's signature of `message`."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The operator's Ed25519 private key, read from its file.

    Attributes:
        path: the file it was read from.
        public: its public key.
    """

    path: str
    public: PublicKey
    _private: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        """The key's id."""
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        return self._private.sign(message)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write_new(path: str, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet, created with `mode` (never through a symlink)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise AuditKeyError(
            path, "it exists already: choose another name, or move the old key away first"
        ) from None
    except OSError as exc:
        raise AuditKeyError(path, f"it cannot be created ({exc.strerror})") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def generate_key(path: str, *, passphrase: bytes | None = None) -> SigningKey:
    """Make a new signing key and write it to `path`, and its public key to `path.pub`.

    Args:
        path: the private key's file; it must not exist.
        passphrase: encrypt the private key with it (None: unencrypted, readable by its owner
            only).

    Returns:
        The new key.

    Raises:
        AuditKeyError: a file exists already, cannot be written, or `cryptography` is missing.
    """
    need_cryptography(path)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if os.path.lexists(path + ".pub"):
        raise AuditKeyError(path + ".pub", "it exists already: choose another name for the key")
    _write_new(path, pem, 0o600)
    _write_new(path + ".pub", public_pem, 0o644)
    raw = _raw_public(private.public_key())
    return SigningKey(path, PublicKey(raw, key_id_of(raw), path + ".pub"), private)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise AuditKeyError(path, "it does not exist") from None
    except OSError as exc:
        raise AuditKeyError(path, f"it cannot be read ({exc.strerror})") from exc


def load_signing_key(path: str, *, passphrase: bytes | None = None) -> SigningKey:
    """Read a private key written by `generate_key` (or any PEM Ed25519 private key).

    Raises:
        AuditKeyError: the file is missing or unreadable, holds no Ed25519 private key, needs a
            passphrase that was not given (or another one), or `cryptography` is missing.
    """
    need_cryptography(path)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read(path)
    try:
        private = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:
        hint = f"set {PASSPHRASE_ENV}" if passphrase is None else "it takes no passphrase"
        raise AuditKeyError(path, f"{exc} ({hint})") from exc
    except ValueError as exc:
        raise AuditKeyError(path, f"it holds no private key this passphrase opens ({exc})") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise AuditKeyError(path, f"it holds a {type(private).__name__}, not an Ed25519 key")
    raw = _raw_public(private.public_key())
    return SigningKey(path, PublicKey(raw, key_id_of(raw), path), private)


def load_public_key(path: str) -> PublicKey:
    """Read a public key (`NAME.pub` of `generate_key`, PEM SubjectPublicKeyInfo).

    Raises:
        AuditKeyError: the file is missing or unreadable, holds no Ed25519 public key, or
            `cryptography` is missing.
    """
    need_cryptography(path)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read(path)
    try:
        public = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise AuditKeyError(path, f"it holds no PEM public key ({exc})") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise AuditKeyError(path, f"it holds a {type(public).__name__}, not an Ed25519 key")
    raw = _raw_public(public)
    return PublicKey(raw, key_id_of(raw), path)


def refuse_beside_store(key_path: str, store_file: str | None) -> None:
    """Refuse a signing key kept in the folder of the store file it signs for.

    A key beside the database is copied with it by every backup, and whoever can change the
    database can most likely read the folder: the checkpoints would prove nothing.

    Raises:
        AuditKeyError: the key's folder holds the store file (or lies inside that folder).
    """
    if store_file is None:
        return
    folder = os.path.dirname(os.path.realpath(store_file))
    key_folder = os.path.dirname(os.path.realpath(key_path))
    if key_folder == folder or key_folder.startswith(folder + os.sep):
        raise AuditKeyError(
            key_path,
            f"it is kept in the folder of the store it signs for ({folder}): keep the signing "
            "key where whoever can change the store cannot read it (another machine, a "
            "secrets manager, at least another folder)",
        )
