"""Receipts: a chain's leaf, index and inclusion proof to a final, cosigned checkpoint.

A receipt is JSON that anyone can verify offline with the public keys alone
(``verify_receipt``; ``flashpay chain verify-receipt receipt.json --keys keys.txt``)::

    {"format": "flashpay-receipt/v1", "chain_id": 7, "leaf_index": 3,
     "leaf": "<base64 leaf, flashpay.chain.leaf v1>", "tree_size": 8,
     "inclusion_proof": ["<base64 hash>", ...],
     "checkpoint": "<the checkpoint note: log signature and witness cosignatures>"}

The keys file (``parse_trust``) lists one verifier key per line — exactly one log key (type 0x01,
named as the log's origin) and the witnesses' keys (type 0x04) — and optionally ``quorum <k>``
(default: a majority of the witnesses). ``#`` starts a comment.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from flashpay.chain import leaf as leaf_codec
from flashpay.chain import merkle, note
from flashpay.chain.checkpoint import Checkpoint, CheckpointError
from flashpay.chain.checkpoint import parse as parse_checkpoint
from flashpay.chain.service import ChainLog
from flashpay.errors import FlashpayError

RECEIPT_FORMAT = "flashpay-receipt/v1"
RECEIPT_BYTES_MAX = 4 * 1024 * 1024


class ReceiptError(FlashpayError, ValueError):
    """A receipt that does not verify, with the reason."""


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    log: note.Verifier
    witnesses: tuple[note.Verifier, ...]
    quorum: int

    def keys_text(self) -> str:
        lines = [self.log.key_string(), *(w.key_string() for w in self.witnesses)]
        return "\n".join([*lines, f"quorum {self.quorum}"]) + "\n"


def parse_trust(text: str) -> TrustPolicy:
    """Parse a keys file (see the module docstring)."""
    logs: list[note.Verifier] = []
    witnesses: list[note.Verifier] = []
    quorum: int | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("quorum "):
            quorum = int(line.split()[1])
            continue
        verifier = note.parse_verifier(line)
        (logs if verifier.key_type == note.ED25519 else witnesses).append(verifier)
    if len(logs) != 1:
        raise ValueError(f"a keys file names exactly one log key, not {len(logs)}")
    if quorum is None:
        quorum = len(witnesses) // 2 + 1 if witnesses else 0
    if not 0 <= quorum <= len(witnesses):
        raise ValueError(f"quorum {quorum} is not between 0 and {len(witnesses)}")
    return TrustPolicy(log=logs[0], witnesses=tuple(witnesses), quorum=quorum)


def verify_checkpoint(note_text: str, trust: TrustPolicy) -> tuple[Checkpoint, list[str]]:
    """Check the log's signature and ``quorum`` witness cosignatures; returns the checkpoint and
    the names of the witnesses whose cosignature verified."""
    try:
        opened = note.verify(note_text, [trust.log, *trust.witnesses])
    except note.NoteError as exc:
        raise ReceiptError(f"checkpoint signatures: {exc}") from exc
    names = {(s.name, s.key_hash) for s in opened.sigs}
    if (trust.log.name, trust.log.key_hash) not in names:
        raise ReceiptError("checkpoint is not signed by the log key")
    cosigners = sorted({w.name for w in trust.witnesses if (w.name, w.key_hash) in names})
    if len(cosigners) < trust.quorum:
        raise ReceiptError(
            f"checkpoint has {len(cosigners)} witness cosignature(s), the policy needs "
            f"{trust.quorum}"
        )
    try:
        checkpoint = parse_checkpoint(opened.text)
    except CheckpointError as exc:
        raise ReceiptError(f"checkpoint body: {exc}") from exc
    if checkpoint.origin != trust.log.name:
        raise ReceiptError(f"checkpoint is of log {checkpoint.origin!r}")
    return checkpoint, cosigners


def build_receipt(log: ChainLog, chain_id: int) -> dict[str, Any] | None:
    """The receipt of ledger chain ``chain_id``, or None until it is in a final checkpoint."""
    index = log.index_of_chain(chain_id)
    if index is None:
        return None
    checkpoint = log.final_checkpoint_covering(index)
    if checkpoint is None:
        return None
    (_, _, data) = log.leaves(index, 1)[0]
    proof = log.inclusion_proof(index, checkpoint.size)
    return {
        "format": RECEIPT_FORMAT,
        "chain_id": chain_id,
        "leaf_index": index,
        "leaf": base64.b64encode(data).decode(),
        "tree_size": checkpoint.size,
        "inclusion_proof": [base64.b64encode(h).decode() for h in proof],
        "checkpoint": checkpoint.cosigned_note(),
    }


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    leaf: leaf_codec.Leaf
    checkpoint: Checkpoint
    cosigners: tuple[str, ...]


def verify_receipt(receipt: dict[str, Any], trust: TrustPolicy) -> VerifiedReceipt:
    """Verify a receipt offline; raises ``ReceiptError`` naming the first failing check."""
    try:
        if receipt.get("format") != RECEIPT_FORMAT:
            raise ReceiptError(f"unknown receipt format {receipt.get('format')!r}")
        index = int(receipt["leaf_index"])
        size = int(receipt["tree_size"])
        data = base64.b64decode(receipt["leaf"], validate=True)
        proof = [base64.b64decode(h, validate=True) for h in receipt["inclusion_proof"]]
        chain_id = int(receipt["chain_id"])
        note_text = str(receipt["checkpoint"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        if isinstance(exc, ReceiptError):
            raise
        raise ReceiptError(f"malformed receipt: {exc}") from exc
    checkpoint, cosigners = verify_checkpoint(note_text, trust)
    if checkpoint.size != size:
        raise ReceiptError(f"receipt says tree size {size}, the checkpoint {checkpoint.size}")
    try:
        decoded = leaf_codec.decode(data)
    except leaf_codec.LeafError as exc:
        raise ReceiptError(f"leaf: {exc}") from exc
    if decoded.leaf_index != index or decoded.chain_id != chain_id:
        raise ReceiptError("leaf is for another index or chain than the receipt says")
    try:
        merkle.verify_inclusion(merkle.leaf_hash(data), index, size, proof, checkpoint.root_hash)
    except merkle.ProofError as exc:
        raise ReceiptError(f"inclusion proof: {exc}") from exc
    return VerifiedReceipt(leaf=decoded, checkpoint=checkpoint, cosigners=tuple(cosigners))


def load_receipt(text: str) -> dict[str, Any]:
    if len(text) > RECEIPT_BYTES_MAX:
        raise ReceiptError("receipt too large")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReceiptError(f"receipt is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ReceiptError("receipt is not a JSON object")
    return value
