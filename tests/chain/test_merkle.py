"""RFC 9162 / RFC 6962 reference vectors and properties of flashpay.chain.merkle.

The vectors are those of the 8-leaf reference tree used by Certificate Transparency and
transparency-dev/merkle (proof/verify_test.go, rfc6962/rfc6962_test.go); the corrupted-proof
probes are the same families that suite applies.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from flashpay.chain import merkle
from flashpay.chain.merkle import ProofError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]
ROOTS = [  # roots of the first 1..8 leaves
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
INCLUSION = {  # (leaf index, tree size) -> audit path
    (0, 8): [
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    (5, 8): [
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ],
    (2, 3): [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")],
    (1, 5): [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ],
    (0, 1): [],
}
CONSISTENCY = {  # (size1, size2) -> proof
    (1, 1): [],
    (1, 8): [
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    (6, 8): [
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ],
    (2, 5): [
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ],
    (6, 7): [
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ],
}
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_TREE = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def test_hash_vectors() -> None:
    assert merkle.root_hash([]) == EMPTY_TREE
    assert merkle.leaf_hash(b"") == ROOTS[0]
    assert merkle.leaf_hash(b"L123456") == h(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert merkle.node_hash(b"N123", b"N456") == h(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_roots(size: int) -> None:
    assert merkle.root_hash(LEAVES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_reference_inclusion_proofs(index: int, size: int) -> None:
    proof = merkle.inclusion_proof(LEAVES, index, size)
    assert proof == INCLUSION[(index, size)]
    merkle.verify_inclusion(merkle.leaf_hash(LEAVES[index]), index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("size1", "size2"), sorted(CONSISTENCY))
def test_reference_consistency_proofs(size1: int, size2: int) -> None:
    proof = merkle.consistency_proof(LEAVES, size1, size2)
    assert proof == CONSISTENCY[(size1, size2)]
    merkle.verify_consistency(size1, size2, proof, ROOTS[size1 - 1], ROOTS[size2 - 1])


def flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    changed = list(proof)
    changed[i] = bytes([changed[i][0] ^ bit]) + changed[i][1:]
    return changed


def inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> dict[str, tuple[int, int, list[bytes], bytes, bytes]]:
    """The corrupted-proof families of transparency-dev/merkle's verify_test.go."""
    probes = {
        "index - 1": (index - 1, size, proof, root, leaf),
        "index + 1": (index + 1, size, proof, root, leaf),
        "index ^ 2": (index ^ 2, size, proof, root, leaf),
        "size * 2": (index, size * 2, proof, root, leaf),
        "size / 2": (index, size // 2, proof, root, leaf),
        "wrong leaf": (index, size, proof, root, b"WrongLeaf"),
        "empty root": (index, size, proof, EMPTY_TREE, leaf),
        "random root": (index, size, proof, SOME_HASH, leaf),
        "trailing garbage": (index, size, [*proof, b""], root, leaf),
        "trailing root": (index, size, [*proof, root], root, leaf),
        "preceding garbage": (index, size, [b"", *proof], root, leaf),
        "preceding root": (index, size, [root, *proof], root, leaf),
    }
    for i in range(len(proof)):
        probes[f"modified proof[{i}] bit 3"] = (index, size, flip(proof, i, 8), root, leaf)
    if proof:
        probes["removed component"] = (index, size, proof[:-1], root, leaf)
    if len(proof) > 1:
        probes["inserted component"] = (
            index, size, [proof[0], SOME_HASH, *proof[1:]], root, leaf)  # fmt: skip
    return probes


@pytest.mark.parametrize(("index", "size"), [k for k in sorted(INCLUSION) if k[1] > 1])
def test_corrupted_inclusion_proofs_fail(index: int, size: int) -> None:
    leaf = merkle.leaf_hash(LEAVES[index])
    probes = inclusion_probes(index, size, INCLUSION[(index, size)], ROOTS[size - 1], leaf)
    verified = []
    for name, (i, n, proof, root, lh) in probes.items():
        try:
            merkle.verify_inclusion(lh, i, n, proof, root)
        except ProofError:
            continue
        verified.append(name)
    assert verified == []


@pytest.mark.parametrize(("size1", "size2"), [k for k in sorted(CONSISTENCY) if CONSISTENCY[k]])
def test_corrupted_consistency_proofs_fail(size1: int, size2: int) -> None:
    proof = CONSISTENCY[(size1, size2)]
    r1, r2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    probes = {
        "size1 - 1": (size1 - 1, size2, r1, r2, proof),
        "size1 + 1": (size1 + 1, size2, r1, r2, proof),
        "size1 ^ 2": (size1 ^ 2, size2, r1, r2, proof),
        "size2 * 2": (size1, size2 * 2, r1, r2, proof),
        "size2 / 2": (size1, size2 // 2, r1, r2, proof),
        "wrong root1": (size1, size2, b"WrongRoot", r2, proof),
        "wrong root2": (size1, size2, r1, b"WrongRoot", proof),
        "swapped roots": (size1, size2, r2, r1, proof),
        "empty proof": (size1, size2, r1, r2, []),
        "trailing garbage": (size1, size2, r1, r2, [*proof, b""]),
        "trailing root1": (size1, size2, r1, r2, [*proof, r1]),
        "trailing root2": (size1, size2, r1, r2, [*proof, r2]),
        "preceding garbage": (size1, size2, r1, r2, [b"", *proof]),
        "preceding root1": (size1, size2, r1, r2, [r1, *proof]),
        "preceding root2": (size1, size2, r1, r2, [r2, *proof]),
        "preceding proof[0]": (size1, size2, r1, r2, [proof[0], *proof]),
        "truncated proof": (size1, size2, r1, r2, proof[:-1]),
    }
    for i in range(len(proof)):
        probes[f"modified proof[{i}] bit 4"] = (size1, size2, r1, r2, flip(proof, i, 16))
    verified = []
    for name, (s1, s2, a, b, p) in probes.items():
        try:
            merkle.verify_consistency(s1, s2, p, a, b)
        except ProofError:
            continue
        verified.append(name)
    assert verified == []


def test_single_leaf_inclusion() -> None:
    leaf = merkle.leaf_hash(b"data")
    merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    for root, lh in [(leaf, b""), (b"", leaf), (b"", b"")]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(lh, 0, 1, [], root)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_rejects_bad_roots_and_sizes(index: int, size: int) -> None:
    for leaf, root in [(SOME_HASH, b""), (b"", EMPTY_TREE), (SOME_HASH, EMPTY_TREE)]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaf, index, size, [], root)


CARE1, CARE2 = b"1" * 32, b"2" * 32


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    [
        (0, 0, CARE1, CARE2, [], False),
        (1, 1, CARE1, CARE2, [], False),
        (0, 0, CARE1, CARE1, [], True),  # sizes that are always consistent
        (0, 1, CARE1, CARE2, [], True),
        (1, 1, CARE2, CARE2, [], True),
        (1, 0, CARE1, CARE2, [], False),  # time travel to the past
        (2, 1, CARE1, CARE2, [], False),
        (1, 2, CARE1, CARE2, [], False),  # empty proof
        (0, 0, EMPTY_TREE, CARE2, [], False),  # roots differ
        (1, 1, EMPTY_TREE, CARE2, [], False),
        (0, 0, EMPTY_TREE, EMPTY_TREE, [EMPTY_TREE], False),  # equal roots, non-empty proof
        (0, 1, EMPTY_TREE, EMPTY_TREE, [EMPTY_TREE], False),
        (1, 1, EMPTY_TREE, EMPTY_TREE, [EMPTY_TREE], False),
    ],
)
def test_consistency_edge_cases(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        merkle.verify_consistency(size1, size2, proof, root1, root2)
    else:
        with pytest.raises(ProofError):
            merkle.verify_consistency(size1, size2, proof, root1, root2)


trees = st.lists(st.binary(max_size=12), min_size=1, max_size=70)


# A verifier learns (size, root) together from a signed checkpoint: a proof is only ever checked
# against the root of the size it claims. So a mutated size comes with that size's true root
# (or is out of range), and a mutation that yields another valid proof (duplicate leaves make
# that possible) is not a forgery and is skipped.


@settings(max_examples=200, deadline=None)
@given(leaves=trees, data=st.data())
def test_every_inclusion_proof_verifies_and_mutations_fail(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = merkle.inclusion_proof(leaves, index, size)
    root = merkle.root_hash(leaves[:size])
    leaf = merkle.leaf_hash(leaves[index])
    merkle.verify_inclusion(leaf, index, size, proof, root)
    mutation = data.draw(st.sampled_from(["proof", "index", "size", "root", "leaf", "length"]))
    if mutation == "proof" and proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        proof = flip(proof, i, 1 << data.draw(st.integers(0, 7)))
    elif mutation == "length" or mutation == "proof":
        proof = data.draw(st.sampled_from([[*proof, SOME_HASH], [SOME_HASH, *proof], proof[:-1]]))
        if proof == merkle.inclusion_proof(leaves, index, size):
            return
    elif mutation == "index":
        other = data.draw(st.integers(0, size).filter(lambda x: x != index))
        if (
            other < size
            and merkle.leaf_hash(leaves[other]) == leaf
            and merkle.inclusion_proof(leaves, other, size) == proof
        ):
            return
        index = other
    elif mutation == "size":
        other = data.draw(st.integers(0, len(leaves)).filter(lambda x: x != size))
        if other > index:
            root = merkle.root_hash(leaves[:other])
            if merkle.inclusion_proof(leaves, index, other) == proof:
                return
        size = other
    elif mutation == "root":
        root = data.draw(st.binary(min_size=32, max_size=32).filter(lambda r: r != root))
    else:
        leaf = data.draw(st.binary(min_size=32, max_size=32).filter(lambda r: r != leaf))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=200, deadline=None)
@given(leaves=trees, data=st.data())
def test_every_consistency_proof_verifies_and_mutations_fail(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size2 = data.draw(st.integers(1, len(leaves)), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    proof = merkle.consistency_proof(leaves, size1, size2)
    root1, root2 = merkle.root_hash(leaves[:size1]), merkle.root_hash(leaves[:size2])
    merkle.verify_consistency(size1, size2, proof, root1, root2)
    if size1 == size2:
        return  # nothing to mutate but the roots, covered by the edge cases
    mutation = data.draw(st.sampled_from(["proof", "size1", "size2", "root1", "root2"]))
    if mutation == "proof":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof = flip(proof, i, 1 << data.draw(st.integers(0, 7)))
    elif mutation == "size1":
        other = data.draw(st.integers(1, size2).filter(lambda x: x != size1))
        root1 = merkle.root_hash(leaves[:other])
        if merkle.consistency_proof(leaves, other, size2) == proof:
            return
        size1 = other
    elif mutation == "size2":
        other = data.draw(st.integers(size1, len(leaves)).filter(lambda x: x != size2))
        root2 = merkle.root_hash(leaves[:other])
        if merkle.consistency_proof(leaves, size1, other) == proof:
            return
        size2 = other
    elif mutation == "root1":
        root1 = data.draw(st.binary(min_size=32, max_size=32).filter(lambda r: r != root1))
    else:
        root2 = data.draw(st.binary(min_size=32, max_size=32).filter(lambda r: r != root2))
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, proof, root1, root2)


@given(size=st.integers(1, 5000), data=st.data())
def test_direct_inclusion_nodes_match_the_rfc_recursion(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    expected = [merkle.perfect_nodes(a, b) for a, b in merkle.inclusion_ranges(index, size)]
    assert merkle.inclusion_nodes(index, size) == expected
