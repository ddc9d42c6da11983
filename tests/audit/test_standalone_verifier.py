"""tools/verify_audit.py: the verifier a third party runs without eventvault.

It checks real checkpoints and proofs, refuses changed or foreign ones, and agrees with the
examples of docs/audit-format.md. The slow test runs it in a virtualenv of its own, with nothing
installed but `cryptography` from the package registry, to prove it needs no eventvault.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

import eventvault
from eventvault import EventStore
from eventvault.audit import AuditLedger, SigningKey, generate_key

from .conftest import fill

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "tools" / "verify_audit.py"
SPEC = ROOT / "docs" / "audit-format.md"


def run(python: str | Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), str(VERIFIER), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def published(key: SigningKey, tmp_path: Path) -> Iterator[Path]:
    """Two checkpoints and proofs of a store, written as an operator publishes them."""
    with eventvault.connect(str(tmp_path / "store.db")) as store:
        yield _publish(store, key, tmp_path)


def _publish(store: EventStore, key: SigningKey, tmp_path: Path) -> Path:
    fill(store, 300)
    ledger = AuditLedger(store)
    (tmp_path / "old.json").write_bytes(ledger.checkpoint(key).to_json())
    fill(store, 57)
    store.truncate_stream("account-1", before=10, actor="ops", reason="retention")
    (tmp_path / "new.json").write_bytes(ledger.checkpoint(key).to_json())
    removed = ledger.prove(stream_name="account-1", stream_position=3)
    assert removed.event.removed_by is not None
    (tmp_path / "removed.json").write_bytes(removed.to_json())
    (tmp_path / "inclusion.json").write_bytes(
        ledger.prove(stream_name="account-2", stream_position=7).to_json()
    )
    (tmp_path / "consistency.json").write_bytes(ledger.consistency(300).to_json())
    (tmp_path / "key.pub").write_bytes(Path(key.public.source).read_bytes())
    return tmp_path


def check_published(python: str | Path, files: Path) -> None:
    key = files / "key.pub"
    for args in (
        ("checkpoint", files / "old.json"),
        ("checkpoint", files / "new.json"),
        ("inclusion", files / "inclusion.json"),
        ("inclusion", files / "inclusion.json", "--checkpoint", files / "new.json"),
        ("inclusion", files / "removed.json"),
        ("consistency", files / "consistency.json", "--old", files / "old.json"),
    ):
        result = run(python, *args, "--public-key", key)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.startswith("verified: ")


def test_the_verifier_accepts_real_checkpoints_and_proofs(published: Path) -> None:
    check_published(sys.executable, published)


def _changed(path: Path, change: dict[str, object], target: Path) -> Path:
    document = json.loads(path.read_text())
    for dotted, value in change.items():
        node = document
        *parents, last = dotted.split(".")
        for name in parents:
            node = node[name]
        node[last] = value
    target.write_text(json.dumps(document))
    return target


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        ("new.json", {"tree_size": 356}, "does not verify"),
        ("new.json", {"root_hash": "00" * 32}, "does not verify"),
        ("new.json", {"issued_at": "2099-01-01T00:00:00.000000Z"}, "does not verify"),
        ("inclusion.json", {"event.hash": "00" * 32}, "does not lead"),
        ("inclusion.json", {"leaf_index": 8}, "does not lead"),
        ("inclusion.json", {"root_hash": "00" * 32}, "checkpoint signs"),
        ("consistency.json", {"old_root": "00" * 32}, "checkpoint signs"),
    ],
)
def test_the_verifier_refuses_a_changed_document(
    published: Path, file: str, change: dict[str, object], message: str
) -> None:
    target = _changed(published / file, change, published / "changed.json")
    kind = file.split(".")[0] if file != "new.json" else "checkpoint"
    result = run(sys.executable, kind, target, "--public-key", published / "key.pub")
    assert result.returncode == 1
    assert message in result.stderr


def test_the_verifier_refuses_another_key_and_a_proof_of_another_tree(
    published: Path, keys_folder: Path
) -> None:
    other = generate_key(str(keys_folder / "other.pem"))
    result = run(
        sys.executable, "checkpoint", published / "new.json", "--public-key", other.public.source
    )
    assert result.returncode == 1 and "not among the public keys" in result.stderr
    held = run(
        sys.executable,
        "inclusion",
        published / "inclusion.json",
        "--checkpoint",
        published / "old.json",
        "--public-key",
        published / "key.pub",
    )
    assert held.returncode == 1 and "the checkpoint signs 300 leaves" in held.stderr
    missing = run(sys.executable, "inclusion", published / "inclusion.json")
    assert missing.returncode == 1 and "--public-key" in missing.stderr


def _spec_blocks() -> dict[str, str]:
    text = SPEC.read_text(encoding="utf-8")
    found = re.findall(r"```(?:json|pem) (audit-example-[a-z]+)\n(.*?)```", text, re.S)
    return {str(name): str(body) for name, body in found}


def test_the_examples_of_the_spec_verify(tmp_path: Path) -> None:
    blocks = _spec_blocks()
    assert set(blocks) == {
        "audit-example-key",
        "audit-example-old",
        "audit-example-new",
        "audit-example-inclusion",
        "audit-example-consistency",
    }
    for name, body in blocks.items():
        (tmp_path / f"{name}.txt").write_text(body)
    key = tmp_path / "audit-example-key.txt"
    for args in (
        ("checkpoint", tmp_path / "audit-example-new.txt"),
        (
            "inclusion",
            tmp_path / "audit-example-inclusion.txt",
            "--checkpoint",
            tmp_path / "audit-example-new.txt",
        ),
        (
            "consistency",
            tmp_path / "audit-example-consistency.txt",
            "--old",
            tmp_path / "audit-example-old.txt",
        ),
    ):
        result = run(sys.executable, *args, "--public-key", key)
        assert result.returncode == 0, result.stderr
    inclusion = msgspec.json.decode((tmp_path / "audit-example-inclusion.txt").read_text())
    leaf = "0000000000000001066382375b0d1dceca1ea776800fe4dfe32ea96b3b640fecc65f74c6c6fe1bb7"
    assert inclusion["path"][0] == hashlib.sha256(b"\x00" + bytes.fromhex(leaf)).hexdigest()
    assert leaf in SPEC.read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_verifier_runs_in_a_virtualenv_without_eventvault(
    published: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("verifier-venv")
    venv.create(folder, with_pip=True, clear=True)
    python = folder / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "cryptography"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    alone = subprocess.run(
        [str(python), "-I", "-c", "import eventvault"], capture_output=True, text=True, check=False
    )
    assert alone.returncode != 0 and "No module named 'eventvault'" in alone.stderr
    check_published(python, published)
