"""What a payment or a transfer leaves behind for its payer and for the audit log.

One recipe each, shared by every kind (scan-to-pay, payment codes, holds, refunds, P2P):

- ``voucher``: the receipt number, the Beijing day then the record id on 19 digits;
- ``commitment``: the salted SHA-256 the ledger keeps with a chain's first posting for the audit
  log (the business record itself — who paid whom — stays in our database). The fields are the
  kind's own, in its own order, so the bytes every existing receipt and audit-log leaf was
  built from stay exactly what they were (``PAYMENT_COMMITMENT`` / ``TRANSFER_COMMITMENT``);
- ``chain_timestamp``: a posted chain's audit-log key, the timestamp the ledger gave it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from flashpay.payments.plans import Share
from flashpay.platform import Platform

AMOUNT_MAX = 10**12  # minor units: anything larger is a malformed request, not a limit decline
PAYMENT_COMMITMENT = "flashpay.payment.v1"  # fields: id, what (purchase, capture, refundN), amount
# A discounted payment's chains (decision 0019): v1's fields, then the discount the chain moves
# and each share as ``campaign:funder_kind:funder_id:fen``, ``;``-separated. A chain without a
# discount keeps v1, so every receipt and leaf made before promotions stays what it was.
DISCOUNTED_COMMITMENT = "flashpay.payment.v2"
TRANSFER_COMMITMENT = "flashpay.p2p.v1"  # fields: id, amount, currency, voucher


def voucher(day: str, record_id: int) -> str:
    """The receipt number of a record completed on ``day`` (``YYYY-MM-DD``, Beijing)."""
    return day.replace("-", "") + f"{record_id:019d}"


def commitment(salt: bytes, recipe: str, *fields: object) -> bytes:
    """``sha256(salt + "recipe|field|field…")``: a commitment to the business record that
    reveals nothing without the salt (kept in our database with the record)."""
    record = "|".join((recipe, *map(str, fields))).encode()
    return hashlib.sha256(salt + record).digest()


def payment_commitment(
    salt: bytes, payment_id: int, what: str, amount: int, shares: Sequence[Share] = ()
) -> bytes:
    """The commitment of one of a payment's chains; ``shares``: the discount it moves (for a
    refund, the part of each share it takes back)."""
    if not any(s.discount_minor for s in shares):
        # the common case, written out: the same bytes as ``commitment`` makes of these fields
        record = f"{PAYMENT_COMMITMENT}|{payment_id}|{what}|{amount}|CNY".encode()
        return hashlib.sha256(salt + record).digest()
    parts = ";".join(
        f"{s.campaign_id}:{s.funder_kind}:{s.funder_id}:{s.discount_minor}" for s in shares
    )
    discount = sum(s.discount_minor for s in shares)
    return commitment(salt, DISCOUNTED_COMMITMENT, payment_id, what, amount, "CNY", discount, parts)


def transfer_commitment(salt: bytes, transfer_id: int, amount: int, voucher: str) -> bytes:
    return commitment(salt, TRANSFER_COMMITMENT, transfer_id, amount, "CNY", voucher)


def chain_timestamp(platform: Platform, ledger_ids: Sequence[int]) -> int | None:
    """The audit log's key of a chain: the earliest timestamp the ledger gave one of its
    postings, ``None`` when nothing of it was posted."""
    found = platform.ledger.lookup_transfers(list(ledger_ids))
    return min((t.timestamp for t in found), default=None)
