"""The audit ledger: a log anyone can verify, and removals the law requires that keep it so.

- A Merkle tree over the global log in the shape of Certificate Transparency (RFC 9162), kept
  beside the events (`AuditTree`), whose heads the operator signs with an Ed25519 key kept
  outside the database (`AuditLedger.checkpoint`, `CheckpointPolicy`).
- Inclusion and consistency proofs a third party checks without eventvault
  (`AuditLedger.prove`, `AuditLedger.consistency`, docs/audit-format.md, tools/verify_audit.py).
- `verify_store`: every chain, the tree and every checkpoint, naming the first event that differs.
- Crypto-shredding: personal fields encrypted under per-subject keys (`SubjectKeys`, `Personal`);
  forgetting a subject erases its fields and every hash still verifies.

::

    from eventvault.audit import AuditLedger, load_signing_key, verify_store

    ledger = AuditLedger(store)
    checkpoint = ledger.checkpoint(load_signing_key("/secrets/audit.pem"))
    print(checkpoint.to_json().decode())            # publish it
    proof = ledger.prove(stream_name="account-42", stream_position=0)
    verify_store(store, public_keys=[load_public_key("audit.pem.pub")])

Signing, checking signatures and encrypting need the `audit` extra (`cryptography`).
"""

from eventvault.audit.checkpoints import Checkpoint, parse_checkpoint
from eventvault.audit.keys import (
    PublicKey,
    SigningKey,
    generate_key,
    load_public_key,
    load_signing_key,
)
from eventvault.audit.ledger import AuditLedger, CheckpointPolicy
from eventvault.audit.personal import (
    AUDIT_KEYS,
    Erased,
    Forgotten,
    Personal,
    SubjectKeys,
    copy_subject_keys,
)
from eventvault.audit.proofs import ConsistencyProof, InclusionProof, ProvenEvent, parse_proof
from eventvault.audit.tree import AUDIT_TREE, AuditTree
from eventvault.audit.verify import VerificationReport, tree_check, verify_store

__all__ = [
    "AUDIT_KEYS",
    "AUDIT_TREE",
    "AuditLedger",
    "AuditTree",
    "Checkpoint",
    "CheckpointPolicy",
    "ConsistencyProof",
    "Erased",
    "Forgotten",
    "InclusionProof",
    "Personal",
    "ProvenEvent",
    "PublicKey",
    "SigningKey",
    "SubjectKeys",
    "VerificationReport",
    "copy_subject_keys",
    "generate_key",
    "load_public_key",
    "load_signing_key",
    "parse_checkpoint",
    "parse_proof",
    "tree_check",
    "verify_store",
]
