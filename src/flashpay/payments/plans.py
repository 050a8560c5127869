"""What a later stage of the pipeline sees and answers (``flashpay.payments.stages`` has the
contract): the ``Plan`` of a payment going ahead, and the ``Adjustment`` a pricing stage
attaches to it — a discount in ``Share``s, one per funder's benefit.

They live apart from ``stages`` so that a stage (``flashpay.payments.promotion``) can import
them while ``stages`` imports the stage to install it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import sqlalchemy as sa

from flashpay.cards.service import Card
from flashpay.merchants.service import Merchant
from flashpay.platform import Platform

FUNDER_KINDS = ("issuer", "network", "acquirer", "merchant")


@dataclass(frozen=True, slots=True)
class Plan:
    """What a stage sees of one payment going ahead.

    The first five fields are every kind's; the rest are known for QR payments only (``None``
    for a P2P transfer): what a pricing stage needs to price the payment without reading the
    payer's or the merchant's tables again.
    """

    kind: str  # "mpm_static", "mpm_dynamic", "cpm" or "p2p"
    record_id: int  # the payment's or the transfer's id
    user_id: int | None  # the payer (None: a payment code whose card is unknown cannot go)
    card_id: int | None
    amount: int  # minor units, CNY
    card: Card | None = None  # the issuer's record of the paying card
    merchant: Merchant | None = None
    phone: str | None = None  # the payer's wallet phone
    ref: str | None = None  # the request's Idempotency-Key, as the app sent it
    at_ns: int = 0  # the batch's time
    two_phase: bool = False  # a hold (never adjusted)


@dataclass(frozen=True, slots=True)
class Share:
    """One funder's part of a payment's discount (one campaign's benefit)."""

    campaign_id: int
    funder_kind: str  # one of FUNDER_KINDS
    funder_id: int  # an institution id, or the merchant's id for a merchant
    discount_minor: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class Adjustment:
    """What a pricing stage changed of one plan: the shares of its discount, in the order the
    stage chose them (the payment record, the receipt and the legs keep that order)."""

    stage: str
    shares: tuple[Share, ...]

    @property
    def discount_minor(self) -> int:
        return sum(s.discount_minor for s in self.shares)


def shares_json(shares: Sequence[Share]) -> str | None:
    """The shares as the payment record keeps them (``payments.promotions``), None for none."""
    if not shares:
        return None
    return json.dumps(
        [
            {"campaign_id": s.campaign_id, "funder_kind": s.funder_kind, "funder_id": s.funder_id,
             "discount_minor": s.discount_minor, "name": s.name}
            for s in shares
        ],
        ensure_ascii=False, separators=(",", ":"),
    )  # fmt: skip


def shares_of(text: str | None) -> tuple[Share, ...]:
    """The shares of a payment record (``shares_json`` read back)."""
    if not text:
        return ()
    return tuple(
        Share(int(d["campaign_id"]), str(d["funder_kind"]), int(d["funder_id"]),
              int(d["discount_minor"]), str(d.get("name", "")))
        for d in json.loads(text)
    )  # fmt: skip


class Stage(Protocol):
    """A later stage of the pipeline that may decline plans (``stages`` has the contract)."""

    name: str

    def review(self, connection: sa.Connection, plans: Sequence[Plan]) -> Mapping[int, str]:
        """The plans this stage declines: refusal code by record id (empty: all go on)."""
        ...


@runtime_checkable
class PricingStage(Protocol):
    """A stage that may also attach an ``Adjustment`` (a discount) to a QR payment's plan."""

    name: str

    def review(self, connection: sa.Connection, plans: Sequence[Plan]) -> Mapping[int, str]:
        """As ``Stage.review``."""
        ...

    def adjust(
        self, platform: Platform, connection: sa.Connection, plans: Sequence[Plan]
    ) -> Mapping[int, Adjustment]:
        """The adjustments of the plans (single-phase QR payments whose claims held), by
        record id, taken in ``connection`` (the transaction that records them)."""
        ...

    def release(self, connection: sa.Connection, record_ids: Sequence[int], now_ns: int) -> None:
        """Give back what ``adjust`` took for records declined after it (once)."""
        ...

    def refunded(self, connection: sa.Connection, record_ids: Sequence[int], now_ns: int) -> None:
        """Give back what ``adjust`` took for payments refunded in full (once)."""
        ...
