"""`eventvault audit`: keys, signed checkpoints, proofs and verification of a store's log.

The private key stays with the operator (a file given by --key, read when signing, never stored);
checkpoints and proofs are JSON on stdout, for publishing anywhere. docs/audit.md is the guide,
docs/audit-format.md the format a third party checks them with (tools/verify_audit.py).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from eventvault.audit import (
    AuditLedger,
    Checkpoint,
    CheckpointPolicy,
    PublicKey,
    SigningKey,
    generate_key,
    load_public_key,
    load_signing_key,
    parse_checkpoint,
    verify_store,
)
from eventvault.audit.keys import PASSPHRASE_ENV
from eventvault.cli.errors import CommandLineError, reporting_errors
from eventvault.cli.options import JsonOutput, StoreURL
from eventvault.cli.render import stderr_console, stdout_console
from eventvault.cli.stores import DEFAULT_URL, open_existing_store, open_store
from eventvault.errors import AuditMismatchError
from eventvault.store.base import EventStore

__all__ = ["app"]

app = typer.Typer(
    name="audit",
    help=(
        "The audit ledger: a Merkle tree over the log, checkpoints signed with a key only the "
        "operator holds, and proofs anyone can check without eventvault."
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

KeyFile = Annotated[
    str,
    typer.Option(
        "--key",
        "-k",
        metavar="KEY",
        help=f"The private key file (from `eventvault audit keygen`); kept outside the store's "
        f"folder. A passphrase is read from {PASSPHRASE_ENV}.",
        show_default=False,
    ),
]
PublicKeys = Annotated[
    list[str] | None,
    typer.Option(
        "--public-key",
        "-p",
        metavar="KEY.pub",
        help="The operator's public key (repeat for keys in use over time): every checkpoint "
        "must be signed by one. Without it, signatures are checked against the keys the store "
        "records.",
        show_default=False,
    ),
]


ReadOnly = Annotated[
    bool,
    typer.Option(
        "--read-only",
        help="Open the store read-only (an auditor's role, a read-only mount): use the tree as "
        "it is, without catching it up with the log.",
    ),
]


@contextmanager
def _opened(url: str, read_only: bool) -> Iterator[EventStore]:
    if read_only:
        with open_store(url, read_only=True) as store:
            yield store
    else:
        with open_existing_store(url) as store:
            yield store


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def _note(message: str, style: str = "green") -> None:
    stderr_console().print(Text(message, style=style))


def _print_json(document: bytes) -> None:
    sys.stdout.buffer.write(document + b"\n")
    sys.stdout.buffer.flush()


def _signing_key(path: str) -> SigningKey:
    return load_signing_key(path, passphrase=_passphrase())


@app.command("keygen")
@reporting_errors
def keygen(
    path: Annotated[
        str,
        typer.Argument(
            metavar="KEY_FILE",
            help="Where to write the private key (KEY_FILE.pub gets the public key).",
        ),
    ],
) -> None:
    """Make the operator's Ed25519 signing key: KEY_FILE (private) and KEY_FILE.pub (public).

    Keep the private key where whoever can change the store cannot read it (another machine, a
    secrets manager); it is written readable by its owner only, encrypted when
    EVENTVAULT_AUDIT_KEY_PASSPHRASE is set. Publish the public key: auditors check checkpoints
    and proofs with it.

    Example:

        eventvault audit keygen /secrets/audit.pem
    \f
    Args:
        path: the private key's file.

    Raises:
        AuditKeyError: a file exists already or cannot be written.
    """
    key = generate_key(path, passphrase=_passphrase())
    _note(f"wrote the private key to {path!r} and the public key to {path + '.pub'!r}")
    stdout_console().print(f"key id {key.key_id}")


@app.command("checkpoint")
@reporting_errors
def checkpoint(key: KeyFile, url: StoreURL = DEFAULT_URL) -> None:
    """Catch the audit tree up with the log and sign its head: print the checkpoint (JSON).

    The checkpoint names the store, the number of events (in global order) the tree holds, its
    root hash and the time, signed with the operator's key. It is kept in the store, and printed
    for publishing: a file, a URL, another system. Anyone with the public key can later check
    that an event is in it (`prove`) and that the log since only grew (`consistency`).

    Example:

        eventvault audit checkpoint --key /secrets/audit.pem --url bank.db >> checkpoints.jsonl
    \f
    Args:
        key: the private key file.
        url: the store.

    Raises:
        AuditKeyError: the key cannot be read, or is kept beside the store.
    """
    signing = _signing_key(key)
    with open_existing_store(url) as store:
        signed = AuditLedger(store).checkpoint(signing)
    _print_json(signed.to_json())
    _note(f"signed the checkpoint of {signed.tree_size} events (key {signed.key_id})")


@app.command("checkpoints")
@reporting_errors
def checkpoints(json_output: JsonOutput = False, url: StoreURL = DEFAULT_URL) -> None:
    """List the checkpoints kept in the store.

    Example:

        eventvault audit checkpoints --json > published.jsonl
    \f
    Args:
        json_output: one checkpoint per line, as published.
        url: the store.
    """
    with open_store(url, read_only=True) as store:
        kept = AuditLedger(store).checkpoints()
    if json_output:
        for one in kept:
            _print_json(one.to_json())
        return
    if not kept:
        _note(
            "the store keeps no checkpoint; sign one with `eventvault audit checkpoint`", "yellow"
        )
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("tree size", "root hash", "issued at", "key"):
        table.add_column(column, justify="right" if column == "tree size" else "left")
    for one in kept:
        table.add_row(str(one.tree_size), one.root_hash[:16] + "...", one.issued_at, one.key_id)
    stdout_console().print(table)


@contextmanager
def _stopping() -> Iterator[threading.Event]:
    """An event set on SIGTERM or SIGINT, so a policy run ends after its current step."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command("run")
@reporting_errors
def run(
    key: KeyFile,
    every_events: Annotated[
        int | None,
        typer.Option("--every-events", min=1, help="Sign once the log grew by this many events."),
    ] = None,
    every_seconds: Annotated[
        float | None,
        typer.Option(
            "--every-seconds",
            min=0.001,
            help="Sign once this long passed since the last checkpoint, when the log grew.",
        ),
    ] = None,
    poll_seconds: Annotated[
        float, typer.Option("--poll-seconds", min=0.001, help="How often to look at the log.")
    ] = 1.0,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Keep signing checkpoints by a policy, until stopped (SIGTERM or Ctrl-C).

    A process of its own beside the application: only it reads the key. It catches the tree up
    with the log at every poll and signs a checkpoint every N events or T seconds (whichever
    comes first), printing each as a JSON line. A store that cannot be reached for a while is
    waited out.

    Example:

        eventvault audit run --key /secrets/audit.pem --every-events 10000 --every-seconds 300 --url postgresql://audit@db/bank >> checkpoints.jsonl
    \f
    Args:
        key: the private key file.
        every_events: events between checkpoints.
        every_seconds: seconds between checkpoints.
        poll_seconds: seconds between looks at the log.
        url: the store.

    Raises:
        CommandLineError: neither --every-events nor --every-seconds.
    """
    if every_events is None and every_seconds is None:
        raise CommandLineError(
            "--every-events", "give --every-events N, --every-seconds T, or both"
        )
    policy = CheckpointPolicy(every_events, every_seconds, poll_seconds)
    signing = _signing_key(key)
    with open_existing_store(url) as store, _stopping() as stop:
        ledger = AuditLedger(store)
        _note(f"signing checkpoints of {store.url!r} with key {signing.key_id}; stop with Ctrl-C")
        count = policy.run(ledger, signing, stop, lambda cp: _print_json(cp.to_json()))
    _note(f"stopped after {count} checkpoints")


def _event_reference(reference: str) -> tuple[uuid.UUID | None, str | None, int | None]:
    try:
        return uuid.UUID(reference), None, None
    except ValueError:
        pass
    stream, at, position = reference.rpartition("@")
    if not at or not stream or not position.isdigit():
        raise CommandLineError(
            "EVENT",
            f"{reference!r} is neither an event id nor STREAM@POSITION",
            hint="name the event by its id (a UUID) or as account-42@3",
        )
    return None, stream, int(position)


@app.command("prove")
@reporting_errors
def prove(
    event: Annotated[
        str,
        typer.Argument(metavar="EVENT", help="The event: its id, or STREAM@POSITION."),
    ],
    tree_size: Annotated[
        int | None,
        typer.Option(
            "--tree-size",
            min=1,
            help="Prove it in the tree of this size (a checkpoint's); default: the latest "
            "checkpoint that holds it.",
        ),
    ] = None,
    read_only: ReadOnly = False,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Print the inclusion proof of an event (JSON): its place in a signed tree.

    The proof holds the event's position and hash, its leaf index, the path of hashes to the
    tree's root (about log2 of the log's size of them), and the checkpoint that signs that root.
    Removed events are proven too (their hashes are kept). Check it with tools/verify_audit.py.

    Example:

        eventvault audit prove account-42@0 > proof.json

        eventvault audit prove 018f2b6e-56c1-7b7e-9d4a-0c3d2e1f0a9b
    \f
    Args:
        event: the event.
        tree_size: the tree to prove it in.
        read_only: open the store read-only.
        url: the store.

    Raises:
        EventNotFoundError: no such event.
        LeafIndexError: the tree of that size does not hold it.
    """
    event_id, stream, position = _event_reference(event)
    with _opened(url, read_only) as store:
        proof = AuditLedger(store).prove(
            event_id, stream_name=stream, stream_position=position, tree_size=tree_size
        )
    _print_json(proof.to_json())
    if proof.checkpoint is None:
        _note(
            "no checkpoint signs this tree yet: sign one (`eventvault audit checkpoint`) to make "
            "the proof checkable against a signed root",
            "yellow",
        )


def _tree_size(reference: str, argument: str) -> tuple[int, Checkpoint | None]:
    if reference.isdigit():
        return int(reference), None
    try:
        with open(reference, "rb") as file:
            held = parse_checkpoint(file.read(), reference)
    except FileNotFoundError:
        raise CommandLineError(
            argument, f"{reference!r} is neither a tree size nor a checkpoint file"
        ) from None
    return held.tree_size, held


@app.command("consistency")
@reporting_errors
def consistency(
    old: Annotated[
        str,
        typer.Argument(metavar="OLD", help="The earlier tree: a size, or a checkpoint file."),
    ],
    new: Annotated[
        str | None,
        typer.Argument(
            metavar="NEW", help="The later tree: a size or a checkpoint file; default: the latest."
        ),
    ] = None,
    read_only: ReadOnly = False,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Print the consistency proof between two trees (JSON): the later one extends the earlier.

    It shows that nothing recorded before the earlier checkpoint was changed, removed or
    reordered since: the log only grew. Give checkpoint files you hold (published earlier) or
    tree sizes; the store's own checkpoints of those sizes are included.

    Example:

        eventvault audit consistency published/2026-04-01.json > consistency.json

        eventvault audit consistency 1000 250000
    \f
    Args:
        old: the earlier tree.
        new: the later tree.
        read_only: open the store read-only.
        url: the store.

    Raises:
        LeafIndexError: a size the tree does not hold, or OLD larger than NEW.
        AuditMismatchError: a checkpoint file whose root is not this store's at its size.
    """
    old_size, old_held = _tree_size(old, "OLD")
    new_size, new_held = (None, None) if new is None else _tree_size(new, "NEW")
    with _opened(url, read_only) as store:
        proof = AuditLedger(store).consistency(old_size, new_size)
    for held, root, what in (
        (old_held, proof.old_root, "OLD"),
        (new_held, proof.new_root, "NEW"),
    ):
        if held is not None and held.root_hash != root:
            raise AuditMismatchError(
                f"the checkpoint {what} signs the root {held.root_hash[:16]}... of a tree of "
                f"{held.tree_size} events; this store's tree of that size has the root "
                f"{root[:16]}...: the log it signed is not this store's, or was changed"
            )
    _print_json(proof.to_json())


@app.command("verify")
@reporting_errors
def verify(
    public_key: PublicKeys = None, read_only: ReadOnly = False, url: StoreURL = DEFAULT_URL
) -> None:
    """Check every stored byte of the store: hash chains, the audit tree, every checkpoint.

    One pass over the log in global order checks each event against the leaf the tree recorded
    for it (catching an event changed, deleted, inserted or moved after the tree covered it,
    even with its hash chain rewritten), its hash chain and positions, and the record of each
    removal; then the stored tree's hashes and the root and signature of every checkpoint.
    The first difference is named (exit 5). The tree is caught up first, unless --read-only.

    Example:

        eventvault audit verify --public-key audit.pem.pub --url bank.db
    \f
    Args:
        public_key: the operator's public key files.
        read_only: open the store read-only.
        url: the store.

    Raises:
        AuditMismatchError, HashChainError, CorruptEventError: the first event that differs.
        CheckpointSignatureError: a checkpoint's signature does not verify.
    """
    keys: list[PublicKey] = [load_public_key(path) for path in public_key or []]
    with _opened(url, read_only) as store:
        report = verify_store(store, public_keys=keys)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("events checked (hash chains, positions)", str(report.events))
    table.add_row("of which removed (hashes kept)", str(report.removed))
    table.add_row("audit tree leaves checked", str(report.tree_size))
    table.add_row("stored subtree hashes checked", str(report.nodes))
    table.add_row("checkpoints checked (roots, signatures)", str(report.checkpoints))
    stdout_console().print(table)
    if report.keys == "stored" and report.checkpoints:
        _note(
            "signatures were checked against the keys the store records; pass --public-key "
            "to check them against yours",
            "yellow",
        )
    _note("verified: every stored byte is what was recorded")
