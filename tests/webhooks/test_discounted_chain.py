"""A discounted purchase's chain opens with its PROMOTION legs (the card is credited the
discount first, decision 0019); the deriver must still name it by its purchase legs, or a
promoted payment would never reach the merchant's feed (nor the POS page's live "paid")."""

from __future__ import annotations

from flashpay.institutions.chart import TransferCode
from flashpay.ledger.types import CommittedChain
from flashpay.payments.legs import DISCOUNT_SLOTS, ledger_ids, priced_chain
from flashpay.payments.plans import Share
from flashpay.webhooks.events import EventType, chain_payment_id, classify

PAYMENT_ID = 7_534_285_478_611_139_213


def _chain() -> CommittedChain:
    purchase = [(1, 2, 2350), (2, 3, 2350), (3, 4, 2350), (4, 5, 2350), (5, 6, 10), (6, 7, 5)]
    share = Share(campaign_id=9, funder_kind="merchant", funder_id=1, discount_minor=500, name="x")
    discount = [(8, 1, 500), (9, 10, 500), (10, 11, 500)]
    ids = ledger_ids(PAYMENT_ID, "purchase", 6 + DISCOUNT_SLOTS)
    transfers = priced_chain(purchase, [(share, discount)], ids, TransferCode.PURCHASE, PAYMENT_ID)
    return CommittedChain(chain_id=1_796_000_000_000_000_001, commitment=None,
                          transfers=tuple(transfers))  # fmt: skip


def test_a_discounted_purchase_is_named_by_its_purchase_legs() -> None:
    chain = _chain()
    assert chain.transfers[0].code == TransferCode.PROMOTION  # the shape that hid it before
    assert chain_payment_id(chain) == PAYMENT_ID
    fact = classify(chain, [])
    assert fact is not None
    assert fact.type == EventType.PAYMENT_COMPLETED
    assert fact.payment_id == PAYMENT_ID
