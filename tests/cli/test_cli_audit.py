"""`eventvault audit ...`, the removal commands and `forget`: outputs, exit codes, what they
record; export and copy of a tampered store exit 5."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import msgspec
import pytest

import eventvault
from eventvault import NewEvent, StreamState
from eventvault.audit import (
    InclusionProof,
    SubjectKeys,
    load_public_key,
    parse_checkpoint,
    parse_proof,
)

from .cli_harness import SAMPLE, Cli, head, seed


@pytest.fixture
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture
def key_file(cli: Cli, keys: Path) -> str:
    path = str(keys / "audit.pem")
    result = cli("audit", "keygen", path)
    assert result.exit_code == 0, result.output
    assert "key id " in result.stdout
    return path


def test_keygen_refuses_to_overwrite_a_key(cli: Cli, key_file: str) -> None:
    result = cli("audit", "keygen", key_file)
    assert result.exit_code == 2
    assert "exists already" in result.stderr
    assert "hint: make a key with `eventvault audit keygen" in result.stderr


def test_checkpoint_prints_a_signed_checkpoint_to_publish(
    cli: Cli, seeded: str, key_file: str
) -> None:
    result = cli("audit", "checkpoint", "--key", key_file, "--url", seeded)
    assert result.exit_code == 0, result.output
    checkpoint = parse_checkpoint(result.stdout)
    assert checkpoint.tree_size == len(SAMPLE)
    assert "signed the checkpoint of 4 events" in result.stderr
    listed = cli("audit", "checkpoints", "--json", "--url", seeded)
    assert parse_checkpoint(listed.stdout.strip()) == checkpoint
    table = cli("audit", "checkpoints", "--url", seeded)
    assert checkpoint.issued_at in table.stdout


def test_checkpoint_with_a_key_beside_the_store_exits_2_and_signs_nothing(
    cli: Cli, seeded: str, tmp_path: Path
) -> None:
    assert cli("audit", "keygen", str(tmp_path / "k.pem")).exit_code == 0
    result = cli("audit", "checkpoint", "--key", str(tmp_path / "k.pem"), "--url", seeded)
    assert result.exit_code == 2
    assert "folder of the store" in result.stderr
    assert cli("audit", "checkpoints", "--json", "--url", seeded).stdout == ""


def test_commands_that_write_the_tree_do_not_make_a_store(cli: Cli, db: str, key_file: str) -> None:
    result = cli("audit", "checkpoint", "--key", key_file, "--url", db)
    assert result.exit_code == 4
    assert not Path(db).exists()
    assert cli("forget", "c-1", "--reason", "x", "--url", db).exit_code == 4
    assert not Path(db).exists()


def test_prove_prints_an_inclusion_proof_by_position_or_id(
    cli: Cli, seeded: str, key_file: str
) -> None:
    cli("audit", "checkpoint", "--key", key_file, "--url", seeded)
    result = cli("audit", "prove", "account-1@1", "--url", seeded)
    assert result.exit_code == 0, result.output
    proof = parse_proof(result.stdout)
    assert isinstance(proof, InclusionProof)
    proof.verify([load_public_key(key_file + ".pub")])
    assert len(result.stdout) < 2000
    by_id = cli("audit", "prove", proof.event.event_id, "--url", seeded)
    assert parse_proof(by_id.stdout) == proof
    missing = cli("audit", "prove", "account-1@9", "--url", seeded)
    assert missing.exit_code == 4
    assert "no event account-1@9" in missing.stderr
    bad = cli("audit", "prove", "nonsense", "--url", seeded)
    assert bad.exit_code == 2 and "STREAM@POSITION" in bad.stderr


def test_prove_says_when_no_checkpoint_signs_the_tree(cli: Cli, seeded: str) -> None:
    result = cli("audit", "prove", "order-7@0", "--url", seeded)
    assert result.exit_code == 0
    assert parse_proof(result.stdout).checkpoint is None  # type: ignore[union-attr]
    assert "no checkpoint signs this tree yet" in result.stderr


def test_consistency_between_checkpoint_files_and_sizes(
    cli: Cli, seeded: str, key_file: str, tmp_path: Path
) -> None:
    old = tmp_path / "old.json"
    old.write_text(cli("audit", "checkpoint", "--key", key_file, "--url", seeded).stdout)
    seed(seeded, SAMPLE)
    cli("audit", "checkpoint", "--key", key_file, "--url", seeded)
    result = cli("audit", "consistency", str(old), "--url", seeded)
    assert result.exit_code == 0, result.output
    proof = parse_proof(result.stdout)
    assert (proof.old_size, proof.new_size) == (4, 8)  # type: ignore[union-attr]
    proof.verify([load_public_key(key_file + ".pub")])
    sizes = cli("audit", "consistency", "2", "8", "--url", seeded)
    assert parse_proof(sizes.stdout).old_size == 2  # type: ignore[union-attr]
    backwards = cli("audit", "consistency", "8", "2", "--url", seeded)
    assert backwards.exit_code == 2 and "cannot precede" in backwards.stderr


def test_consistency_with_a_checkpoint_of_another_log_exits_5(
    cli: Cli, seeded: str, key_file: str, tmp_path: Path
) -> None:
    other = str(tmp_path / "other.db")
    seed(other, [("x-1", "X", {}), ("x-1", "X", {}), ("x-2", "X", {}), ("x-3", "X", {})])
    foreign = tmp_path / "foreign.json"
    foreign.write_text(cli("audit", "checkpoint", "--key", key_file, "--url", other).stdout)
    result = cli("audit", "consistency", str(foreign), "--url", seeded)
    assert result.exit_code == 5
    assert "is not this store's" in result.stderr


def test_verify_passes_a_sound_store_and_names_a_changed_event_with_exit_5(
    cli: Cli, seeded: str, key_file: str
) -> None:
    cli("audit", "checkpoint", "--key", key_file, "--url", seeded)
    sound = cli("audit", "verify", "--public-key", key_file + ".pub", "--url", seeded)
    assert sound.exit_code == 0, sound.output
    assert "verified: every stored byte" in sound.stderr
    assert "4" in sound.stdout
    unpinned = cli("audit", "verify", "--url", seeded)
    assert "pass --public-key" in unpinned.stderr
    with sqlite3.connect(seeded) as conn:
        conn.execute("UPDATE events SET hash = zeroblob(32) WHERE global_position = 3")
    conn.close()
    changed = cli("audit", "verify", "--public-key", key_file + ".pub", "--url", seeded)
    assert changed.exit_code == 5
    assert "'account-2'@0 (global position 3)" in changed.stderr
    assert "hint: the store was changed outside eventvault" in changed.stderr


def test_verify_with_another_key_exits_5(cli: Cli, seeded: str, key_file: str, keys: Path) -> None:
    cli("audit", "checkpoint", "--key", key_file, "--url", seeded)
    cli("audit", "keygen", str(keys / "other.pem"))
    result = cli("audit", "verify", "--public-key", str(keys / "other.pem.pub"), "--url", seeded)
    assert result.exit_code == 5
    assert "not among the keys" in result.stderr


def test_run_signs_by_policy_until_stopped(seeded: str, key_file: str) -> None:
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventvault.cli",
            "audit",
            "run",
            "--key",
            key_file,
            "--every-events",
            "2",
            "--poll-seconds",
            "0.05",
            "--url",
            seeded,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        first = parse_checkpoint(process.stdout.readline())
        assert first.tree_size == 4
        seed(seeded, SAMPLE[:2])
        second = parse_checkpoint(process.stdout.readline())
        assert second.tree_size == 6
    finally:
        time.sleep(0.1)
        process.terminate()
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert b"stopped after 2 checkpoints" in errors


def test_run_needs_a_policy(cli: Cli, seeded: str, key_file: str) -> None:
    result = cli("audit", "run", "--key", key_file, "--url", seeded)
    assert result.exit_code == 2
    assert "--every-events N, --every-seconds T" in result.stderr


# -- removal commands -----------------------------------------------------------------------------


def test_delete_and_truncate_record_who_and_why(cli: Cli, seeded: str) -> None:
    deleted = cli("delete", "account-2", "--reason", "closed", "--actor", "ops", "--url", seeded)
    assert deleted.exit_code == 0, deleted.output
    assert "hid (bytes kept) 1 events of 'account-2'" in deleted.stderr
    hard = cli("delete", "account-2", "--hard", "--reason", "gdpr", "--url", seeded)
    assert "erased 1 events" in hard.stderr
    again = cli("delete", "account-2", "--hard", "--reason", "gdpr", "--url", seeded)
    assert "nothing to remove" in again.stderr
    truncated = cli("truncate", "account-1", "--before", "1", "--reason", "r", "--url", seeded)
    assert truncated.exit_code == 0 and "positions 0 to 0" in truncated.stderr
    with eventvault.connect(seeded) as store:
        records = [e.data for e in store.read_stream("$removals")]
        assert [r["kind"] for r in records] == ["soft-delete", "hard-delete", "truncate"]
        assert records[0]["actor"] == "ops" and records[0]["reason"] == "closed"
        assert "@" in str(records[1]["actor"])
        assert [e.stream_position for e in store.read_stream("account-1")] == [1]
    streams = cli("streams", "--json", "--url", seeded)
    assert "account-2" not in streams.stdout


def test_delete_with_a_wrong_version_or_of_a_missing_stream_fails_plainly(
    cli: Cli, seeded: str
) -> None:
    wrong = cli("delete", "account-1", "-e", "0", "--reason", "r", "--url", seeded)
    assert wrong.exit_code == 3
    missing = cli("delete", "account-9", "--reason", "r", "--url", seeded)
    assert missing.exit_code == 4
    system = cli("delete", "$removals", "--reason", "r", "--url", seeded)
    assert system.exit_code == 2 and "system stream" in system.stderr
    past = cli("truncate", "account-1", "--before", "7", "--reason", "r", "--url", seeded)
    assert past.exit_code == 2 and "ends at version 1" in past.stderr
    assert head(seeded) == len(SAMPLE)


def test_retention_is_shown_set_and_applied(cli: Cli, seeded: str) -> None:
    shown = cli("retention", "account-1", "--url", seeded)
    assert "keep events of age any, count any" in shown.stdout
    refused = cli("retention", "account-1", "--max-count", "1", "--url", seeded)
    assert refused.exit_code == 2 and "--reason" in refused.stderr
    bad = cli("retention", "account-1", "--max-age", "soon", "--reason", "r", "--url", seeded)
    assert bad.exit_code == 2 and "not a duration" in bad.stderr
    set_ = cli(
        "retention", "account-1", "--max-count", "1", "--max-age", "30d", "-r", "p", "--url", seeded
    )
    assert set_.exit_code == 0, set_.output
    assert "count 1" in cli("retention", "account-1", "--url", seeded).stdout
    applied = cli("retain", "--url", seeded)
    assert applied.exit_code == 0 and "erased 1 events of 'account-1'" in applied.stderr
    assert "nothing was removed" in cli("retain", "--url", seeded).stderr
    cleared = cli("retention", "account-1", "--clear", "-r", "done", "--url", seeded)
    assert cleared.exit_code == 0
    assert "count any" in cli("retention", "account-1", "--url", seeded).stdout


def test_forget_erases_a_subjects_fields(cli: Cli, db: str) -> None:
    with eventvault.connect(db) as store:
        keys = SubjectKeys(store)
        keys.declare("Registered", {"email": "customer"})
        keys.append_to_stream(
            "customer-1",
            [NewEvent("Registered", {"customer": "c-1", "email": "ada@example.com"})],
            expected_version=StreamState.NO_STREAM,
        )
    result = cli("forget", "c-1", "--reason", "erasure request 7", "--url", db)
    assert result.exit_code == 0, result.output
    assert "forgot subject 'c-1'" in result.stderr and "'customer-1'" in result.stderr
    again = cli("forget", "c-1", "--reason", "again", "--url", db)
    assert again.exit_code == 0 and "forgotten already" in again.stderr
    unknown = cli("forget", "c-9", "--reason", "x", "--url", db)
    assert unknown.exit_code == 4
    assert "hint: check the subject's id" in unknown.stderr
    with eventvault.connect(db) as store:
        (event,) = list(store.read_stream("customer-1"))
        email = SubjectKeys(store).reveal(event).data["email"]
        assert isinstance(email, dict) and set(email) == {"$erased"}


# -- export and copy ------------------------------------------------------------------------------


def test_export_of_a_tampered_store_exits_5_and_keeps_no_file(
    cli: Cli, seeded: str, tmp_path: Path
) -> None:
    with sqlite3.connect(seeded) as conn:
        conn.execute(
            'UPDATE events SET data = CAST(\'{"owner":"Eve"}\' AS BLOB) WHERE global_position = 1'
        )
    conn.close()
    out = tmp_path / "backup.jsonl"
    result = cli("export", str(out), "--url", seeded)
    assert result.exit_code == 5
    assert "hash mismatch at 'account-1'@0" in result.stderr
    assert not out.exists()
    copied = cli("copy", seeded, str(tmp_path / "copy.db"))
    assert copied.exit_code == 5
    assert not (tmp_path / "copy.db").exists()


def test_export_of_a_store_whose_tree_sees_a_deleted_event_exits_5(
    cli: Cli, seeded: str, key_file: str, tmp_path: Path
) -> None:
    cli("audit", "checkpoint", "--key", key_file, "--url", seeded)
    with sqlite3.connect(seeded) as conn:
        conn.execute("DELETE FROM events WHERE global_position = 2")
    conn.close()
    result = cli("export", str(tmp_path / "b.jsonl"), "--url", seeded)
    assert result.exit_code == 5
    assert "global position 2" in result.stderr and "missing" in result.stderr


def test_copy_carries_the_subjects_keys(cli: Cli, db: str, tmp_path: Path) -> None:
    with eventvault.connect(db) as store:
        keys = SubjectKeys(store)
        keys.declare("Registered", {"email": "customer"})
        keys.append_to_stream(
            "customer-1",
            [NewEvent("Registered", {"customer": "c-1", "email": "ada@example.com"})],
            expected_version=StreamState.NO_STREAM,
        )
    target = str(tmp_path / "copy.db")
    result = cli("copy", db, target)
    assert result.exit_code == 0, result.output
    assert "and the keys of 1 subjects" in result.stderr
    with eventvault.connect(target) as copy:
        (event,) = list(copy.read_stream("customer-1"))
        assert SubjectKeys(copy).reveal(event).data["email"] == "ada@example.com"
    exported = tmp_path / "b.jsonl"
    assert cli("export", str(exported), "--url", db).exit_code == 0
    assert b"ada@example.com" not in exported.read_bytes()
    assert all(json.loads(line) for line in exported.read_text().splitlines())
    assert msgspec.json.decode(exported.read_text().splitlines()[0])["format_version"] == 4


def test_an_export_of_the_logs_tail_is_checked_from_its_first_event(
    cli: Cli, db: str, key_file: str, tmp_path: Path
) -> None:
    seed(db, [(f"account-{n % 3}", "Deposited", {"n": n}) for n in range(600)])
    cli("audit", "checkpoint", "--key", key_file, "--url", db)
    tail = tmp_path / "tail.jsonl"
    result = cli("export", str(tail), "--after", "300", "--url", db)
    assert result.exit_code == 0, result.output
    assert "exported 300 events" in result.stderr
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM events WHERE global_position = 450")
    conn.close()
    refused = cli("export", str(tmp_path / "t2.jsonl"), "--after", "300", "--url", db)
    assert refused.exit_code == 5
    assert "global position 450" in refused.stderr


def test_read_only_verify_and_prove_use_the_tree_as_it_is(
    cli: Cli, seeded: str, key_file: str
) -> None:
    cli("audit", "checkpoint", "--key", key_file, "--url", seeded)
    seed(seeded, SAMPLE[:1])
    verified = cli("audit", "verify", "--read-only", "-p", key_file + ".pub", "--url", seeded)
    assert verified.exit_code == 0, verified.output
    assert cli("audit", "checkpoints", "--json", "--url", seeded).stdout.count("\n") == 1
    proof = cli("audit", "prove", "account-1@0", "--read-only", "--url", seeded)
    assert proof.exit_code == 0 and parse_proof(proof.stdout).tree_size == 4  # type: ignore[union-attr]
    newest = cli("audit", "prove", "account-1@2", "--read-only", "--url", seeded)
    assert newest.exit_code == 2
    assert "global_position 5: no event at that position is in the audit tree" in newest.stderr
    with sqlite3.connect(seeded) as conn:
        tree = conn.execute("SELECT sum(leaf_count) FROM audit_tree_leaves").fetchone()
    conn.close()
    assert tree == (4,)
