"""The audit log's leaf: one committed ledger chain in a canonical, versioned binary encoding.

Version 1, all integers unsigned big-endian (docs/reference/chain.md has the byte table)::

    offset  size  field
    0       1     version = 0x01
    1       8     leaf_index        position of this leaf in the log (binds the order)
    9       8     chain_id          the ledger's chain id (its first transfer's timestamp)
    17      1     commitment flag   0x00 none, 0x01 present
    18      32    commitment        salted SHA-256 commitment to the business record, or 32 zeros
    50      2     transfer count    1..8190, in the ledger's commit order (timestamps ascending)
    52      92×n  transfers, each:
                  8 id, 8 debit_account_id, 8 credit_account_id, 8 amount, 8 pending_id,
                  16 user_data_128, 8 user_data_64, 4 user_data_32, 4 timeout_seconds,
                  4 ledger, 4 code, 4 flags, 8 timestamp
                  (the ledger's transfer record, ``ledger.types.TRANSFER_RECORD_FIELDS``)

Version 2 (decision 0019) is the leaf of a chain that moves a promotion's discount — one with a
transfer of code ``TransferCode.PROMOTION`` (the legs to, or on a refund from, the card). It is
version 1 with ``version = 0x02`` and one trailing field after the transfers::

    52+92×n  8    discount          the sum of the chain's PROMOTION transfers (minor units)

A chain without a discount is encoded as version 1, byte for byte as before, so every leaf
already in the log re-derives unchanged and old receipts stay verifiable; ``decode`` reads both.

Every field of the ledger's immutable transfer record is encoded, so any change to a posted
transfer changes the leaf. No card number or personal data is ever in a leaf: the business record
(payment, merchant, user) is bound only by the 32-byte commitment, whose salt stays with the
network and the parties. The leaf hash is RFC 9162's ``SHA-256(0x00 || leaf)``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from flashpay.errors import FlashpayError
from flashpay.institutions.chart import TransferCode
from flashpay.ledger.types import (
    CommittedChain,
    Transfer,
    transfer_from_record,
    transfer_record,
)

LEAF_VERSION = 1
LEAF_VERSION_DISCOUNT = 2
_DISCOUNT = struct.Struct(">Q")
COMMITMENT_BYTES = 32
TRANSFERS_MAX = 8190
_HEADER = struct.Struct(">BQQB32sH")
_TRANSFER = struct.Struct(">QQQQQ16sQIIIIIQ")
_NO_COMMITMENT = bytes(COMMITMENT_BYTES)


class LeafError(FlashpayError, ValueError):
    """Bytes that are not a well-formed leaf of a known version, or a chain that cannot be one."""


@dataclass(frozen=True, slots=True)
class Leaf:
    """A decoded leaf."""

    leaf_index: int
    chain_id: int
    commitment: bytes | None
    transfers: tuple[Transfer, ...]
    discount_minor: int | None = None  # version 2 only: the discount the chain moves
    version: int = LEAF_VERSION


def chain_discount(chain: CommittedChain) -> int | None:
    """The discount a chain moves (its PROMOTION transfers' sum), ``None`` for a chain with none."""
    legs = [t.amount for t in chain.transfers if t.code == TransferCode.PROMOTION]
    return sum(legs) if legs else None


def encode(leaf_index: int, chain: CommittedChain) -> bytes:
    """The leaf of ``chain`` at ``leaf_index``: version 2 when it moves a discount, else 1."""
    if not 1 <= len(chain.transfers) <= TRANSFERS_MAX:
        raise LeafError(f"chain {chain.chain_id} has {len(chain.transfers)} transfers")
    commitment = chain.commitment
    if commitment is not None and len(commitment) != COMMITMENT_BYTES:
        raise LeafError(f"chain {chain.chain_id}: commitment of {len(commitment)} bytes")
    discount = chain_discount(chain)
    parts = [
        _HEADER.pack(
            LEAF_VERSION if discount is None else LEAF_VERSION_DISCOUNT,
            leaf_index,
            chain.chain_id,
            0 if commitment is None else 1,
            commitment or _NO_COMMITMENT,
            len(chain.transfers),
        )
    ]
    try:
        parts.extend(_TRANSFER.pack(*transfer_record(t)) for t in chain.transfers)
        if discount is not None:
            parts.append(_DISCOUNT.pack(discount))
    except (struct.error, OverflowError) as exc:
        raise LeafError(f"chain {chain.chain_id}: a field does not fit its width") from exc
    return b"".join(parts)


def decode(data: bytes) -> Leaf:
    """Parse a leaf; raises ``LeafError`` naming the byte offset of what is wrong."""
    if len(data) < _HEADER.size:
        raise LeafError(f"leaf of {len(data)} bytes is shorter than its {_HEADER.size}-byte header")
    version, index, chain_id, flag, commitment, count = _HEADER.unpack_from(data, 0)
    if version not in (LEAF_VERSION, LEAF_VERSION_DISCOUNT):
        raise LeafError(f"offset 0: unknown leaf version {version}")
    if flag not in (0, 1) or (flag == 0 and commitment != _NO_COMMITMENT):
        raise LeafError("offset 17: bad commitment flag")
    if not 1 <= count <= TRANSFERS_MAX:
        raise LeafError(f"offset 50: transfer count {count}")
    body = _HEADER.size + count * _TRANSFER.size
    expected = body + (_DISCOUNT.size if version == LEAF_VERSION_DISCOUNT else 0)
    if len(data) != expected:
        raise LeafError(f"leaf is {len(data)} bytes, its count says {expected}")
    transfers = [
        transfer_from_record(_TRANSFER.unpack_from(data, _HEADER.size + i * _TRANSFER.size))
        for i in range(count)
    ]
    discount = None
    if version == LEAF_VERSION_DISCOUNT:
        (discount,) = _DISCOUNT.unpack_from(data, body)
        promoted = sum(t.amount for t in transfers if t.code == TransferCode.PROMOTION)
        if discount != promoted:
            raise LeafError(f"offset {body}: discount {discount} != its transfers' {promoted}")
    return Leaf(
        leaf_index=index,
        chain_id=chain_id,
        commitment=commitment if flag else None,
        transfers=tuple(transfers),
        discount_minor=discount,
        version=version,
    )
