"""The RFC 9162 tree: roots against published vectors, proofs against a naive reference."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventvault.audit.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_ranges,
    inclusion_ranges,
    leaf_bytes,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# The leaf inputs and roots of the RFC 6962 test vectors that Certificate Transparency
# implementations share (the tree hashing of RFC 9162 is the same).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def mth(hashes: list[bytes]) -> bytes:
    """The root by the recursive definition of RFC 9162, as written there."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def path_of(ranges: list[tuple[int, int]], hashes: list[bytes]) -> list[bytes]:
    return [mth(hashes[start:end]) for start, end in ranges]


def leaves(count: int) -> list[bytes]:
    return [
        leaf_hash(leaf_bytes(i + 1, hashlib.sha256(str(i).encode()).digest())) for i in range(count)
    ]


def test_roots_match_the_published_vectors() -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES]
    for size, expected in enumerate(ROOTS):
        assert root_of(hashes[:size]).hex() == expected
        assert mth(hashes[:size]).hex() == expected
    assert EMPTY_ROOT.hex() == ROOTS[0]


def test_a_leaf_is_its_position_then_its_hash() -> None:
    digest = bytes(range(32))
    assert leaf_bytes(258, digest) == b"\x00" * 6 + b"\x01\x02" + digest
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


def test_the_inclusion_proofs_of_the_published_vectors() -> None:
    # RFC 6962's vectors: leaf 0 of 8, leaf 5 of 8, leaf 2 of 3, leaf 1 of 5.
    hashes = [leaf_hash(leaf) for leaf in LEAVES]
    expected = {
        (0, 8): [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        (5, 8): [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
        (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        (1, 5): [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    }
    for (index, size), path in expected.items():
        made = path_of(inclusion_ranges(index, size), hashes[:size])
        assert [h.hex() for h in made] == path
        verify_inclusion(hashes[index], index, size, made, bytes.fromhex(ROOTS[size]))


def test_the_consistency_proofs_of_the_published_vectors() -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES]
    expected = {
        (1, 8): [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        (6, 8): [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
        (2, 5): [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    }
    for (old, new), path in expected.items():
        made = path_of(consistency_ranges(old, new), hashes[:new])
        assert [h.hex() for h in made] == path
        verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), made)


@given(st.integers(1, 300), st.data())
def test_every_inclusion_proof_verifies_and_no_other_leaf_fits(
    size: int, data: st.DataObject
) -> None:
    hashes = leaves(size)
    root = root_of(hashes)
    index = data.draw(st.integers(0, size - 1))
    path = path_of(inclusion_ranges(index, size), hashes)
    verify_inclusion(hashes[index], index, size, path, root)
    assert len(path) <= size.bit_length()
    other = data.draw(st.integers(0, size - 1))
    if other != index:
        with pytest.raises(ProofError):
            verify_inclusion(hashes[other], index, size, path, root)
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index], other, size, path, root)
    if path:
        bent = [*path[:-1], bytes(32)]
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index], index, size, bent, root)
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index], index, size, path[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(hashes[index], index, size, [*path, bytes(32)], root)


@given(st.integers(1, 300), st.data())
def test_every_consistency_proof_verifies_and_a_changed_leaf_fails(
    new: int, data: st.DataObject
) -> None:
    hashes = leaves(new)
    old = data.draw(st.integers(0, new))
    path = path_of(consistency_ranges(old, new), hashes)
    old_root, new_root = root_of(hashes[:old]), root_of(hashes)
    verify_consistency(old, new, old_root, new_root, path)
    assert len(path) <= 2 * new.bit_length()
    if old > 0:
        changed = list(hashes)
        changed[data.draw(st.integers(0, old - 1))] = bytes(32)
        with pytest.raises(ProofError):
            verify_consistency(
                old,
                new,
                root_of(changed[:old]),
                new_root,
                path_of(consistency_ranges(old, new), changed),
            )
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, root_of(changed), path)
    if path:
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, path[:-1])


def test_proof_sizes_are_logarithmic() -> None:
    assert len(inclusion_ranges(123_456, 1_000_000)) == 20
    assert len(consistency_ranges(999_999, 1_000_000)) <= 40


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="leaf 5 is not in a tree of 5 leaves"):
        inclusion_ranges(5, 5)
    with pytest.raises(ValueError, match="from a tree of 6 to one of 5"):
        consistency_ranges(6, 5)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(b"short", 0, 1, [], bytes(32))
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(3, 3, bytes(32), b"\x01" * 32, [])
