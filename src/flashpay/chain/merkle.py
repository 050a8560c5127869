"""RFC 9162 §2.1 Merkle trees: hashes, inclusion and consistency proofs, their verification.

The tree over leaves ``d[0:n]`` (raw data, any length) is the Merkle Tree Hash of RFC 9162
§2.1.1 (identical to RFC 6962 §2.1)::

    MTH({})       = SHA-256()
    MTH({d0})     = SHA-256(0x00 || d0)                         leaf hash
    MTH(D[0:n])   = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  k = largest power of 2 < n

Every subtree the definition names is either *perfect* (``2**level`` leaves starting at a multiple
of ``2**level``) or ends at the tree's right border; a border subtree's hash is a fold of the
perfect subtrees that tile it. So a proof can be described as a list of leaf ranges
(``inclusion_ranges``, ``consistency_ranges``) and computed from perfect-subtree hashes only
(``perfect_nodes``): that is how ``flashpay.chain.store`` answers proofs at any past tree size by
reading O(log n) stored nodes, which never change once written (the log is append-only).

The public functions take raw leaf data (``leaves``) and are the reference implementation; the
verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and raise ``ProofError`` on any
failure. Edge cases of consistency that the RFC's algorithm leaves out (``size1 == 0`` and
``size1 == size2``) are decided as Go's ``transparency-dev/merkle`` does: from the empty tree
every tree is consistent with an empty proof; equal sizes need equal roots and an empty proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from enum import StrEnum

from flashpay.errors import FlashpayError, RefusedError

HASH_BYTES = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
PROOF_HASHES_MAX = 128  # a tree of 2**63 leaves needs at most 2 * 63 proof hashes

_sha256 = hashlib.sha256

Range = tuple[int, int]  # leaves [start, end)
Node = tuple[int, int]  # (level, index): leaves [index * 2**level, (index + 1) * 2**level)


class ProofError(FlashpayError, ValueError):
    """A proof, index, size or root that does not verify (or is malformed)."""


class ChainRefusal(StrEnum):
    """Why a request for a proof is refused (values are the API error codes)."""

    INVALID_TREE_SIZE = "invalid_tree_size"


class TreeSizeError(RefusedError, ValueError):
    """A leaf index or tree size no proof exists for (a ``ValueError`` too: the tree's callers
    treat it as a bad argument)."""

    reason: ChainRefusal

    def __init__(self, message: str) -> None:
        super().__init__(ChainRefusal.INVALID_TREE_SIZE, message)


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


# -- proofs as leaf ranges -----------------------------------------------------------------------
def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes form the audit path of leaf ``index`` in a tree of ``size``
    leaves (RFC 9162 §2.1.3.1 ``PATH``), deepest first."""
    if not 0 <= index < size:
        raise TreeSizeError(f"leaf index {index} is not below tree size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[Range]:
    """The subtrees whose hashes form the consistency proof from ``size1`` to ``size2``
    (RFC 9162 §2.1.4.1 ``PROOF``/``SUBPROOF``), in proof order."""
    if not 0 <= size1 <= size2:
        raise TreeSizeError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == 0 or size1 == size2:
        return []
    ranges: list[Range] = []
    start, end, m, complete = 0, size2, size1, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def perfect_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees tiling leaves ``[start, end)`` left to right, where ``start`` is the
    start of a subtree named by the RFC's recursion (aligned to the largest power of two that
    fits): sizes follow the binary digits of ``end - start`` from the largest."""
    nodes: list[Node] = []
    width = end - start
    position = start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            if position % (1 << level):
                raise ValueError(f"range [{start}, {end}) is not tiled by aligned subtrees")
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def inclusion_nodes(index: int, size: int) -> list[list[Node]]:
    """``inclusion_ranges`` as perfect nodes, computed directly (the hot path of the stored
    log): one group per proof hash, a group of several nodes is a border subtree to ``fold``."""
    if not 0 <= index < size:
        raise TreeSizeError(f"leaf index {index} is not below tree size {size}")
    inner = (index ^ (size - 1)).bit_length()
    groups: list[list[Node]] = []
    for level in range(inner):
        sibling = (index >> level) ^ 1
        if (sibling + 1) << level <= size:
            groups.append([(level, sibling)])
        else:  # the one sibling that crosses the tree's right border
            groups.append(perfect_nodes(sibling << level, size))
    shifted = index >> inner
    level = inner
    while shifted:
        if shifted & 1:
            groups.append([(level, shifted ^ 1)])
        shifted >>= 1
        level += 1
    return groups


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a border subtree from its perfect subtrees' hashes (left to right)."""
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


# -- the reference functions over raw leaves -----------------------------------------------------
def _mth(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (iterative: pair up level by level, an odd last node rises)."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of ``leaves`` (raw data)."""
    return _mth([leaf_hash(d) for d in leaves])


def _size(leaves: Sequence[bytes], size: int | None) -> int:
    n = len(leaves) if size is None else size
    if not 0 <= n <= len(leaves):
        raise TreeSizeError(f"tree size {n} is not between 0 and {len(leaves)}")
    return n


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """The audit path of ``leaves[index]`` in the tree of the first ``size`` leaves."""
    n = _size(leaves, size)
    hashes = [leaf_hash(d) for d in leaves[:n]]
    return [_mth(hashes[a:b]) for a, b in inclusion_ranges(index, n)]


def consistency_proof(leaves: Sequence[bytes], size1: int, size2: int | None = None) -> list[bytes]:
    """The proof that the tree of ``size1`` leaves is a prefix of the tree of ``size2``."""
    n = _size(leaves, size2)
    hashes = [leaf_hash(d) for d in leaves[:n]]
    return [_mth(hashes[a:b]) for a, b in consistency_ranges(size1, n)]


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ---------------------------------------------
def _check_hashes(proof: Sequence[bytes], *named: bytes) -> None:
    if len(proof) > PROOF_HASHES_MAX:
        raise ProofError(f"proof has {len(proof)} hashes, more than {PROOF_HASHES_MAX}")
    for h in (*proof, *named):
        if len(h) != HASH_BYTES:
            raise ProofError(f"a hash is {len(h)} bytes, not {HASH_BYTES}")


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` leads to from ``leaf_hash`` at ``index`` (RFC 9162 §2.1.3.2)."""
    _check_hashes(proof, leaf_hash)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the path to the root")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf with ``leaf_hash`` is at ``index`` in the tree ``(size, root)``."""
    _check_hashes((), root)
    if root_from_inclusion_proof(leaf_hash, index, size, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree ``(size1, root1)`` is a prefix of ``(size2, root2)``."""
    _check_hashes(proof)
    if size1 < 0 or size2 < size1:
        raise ProofError(f"size {size2} is smaller than size {size1}: the log went backwards")
    if size1 == size2:
        if proof:
            raise ProofError("trees of equal size need an empty proof")
        if root1 != root2:
            raise ProofError(f"two different roots for tree size {size1}: a fork")
        return
    if size1 == 0:
        if proof:
            raise ProofError("the empty tree needs an empty proof")
        return
    _check_hashes((), root1, root2)
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to the root of size {size2}")
