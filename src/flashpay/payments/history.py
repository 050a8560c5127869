"""Has a wallet user paid before, and in which scenes: the new-user facts of a payment.

The promotion stage (``flashpay.payments.promotion``) reads them for a batch to decide
``first_payment_ever`` and ``first_in_scene``; the quote (``flashpay.promotions_api``) must decide
them the same way, or a new user's quote for a "first payment ever" campaign would disagree with
what the payment applies. Both read them here, from the payments' own table, in the caller's
connection. The quote sits in a sibling layer and may not import payments, so the composition root
hands it ``new_user_facts`` (``app.state.new_user_facts``).

A payment counts as "paid before" in the states the stage counts (``PAID``): completed, partly or
fully refunded, authorized, created — a declined attempt does not make a user old.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.merchants.service import get_merchants
from flashpay.payments.models import payments
from flashpay.platform import Platform

PAID = ("completed", "partially_refunded", "refunded", "authorized", "created")


def paid_before(
    platform: Platform, connection: sa.Connection, user_ids: Sequence[int], scenes: bool
) -> tuple[set[int], dict[int, set[str]]]:
    """The users (of ``user_ids``) with a payment before, and (when ``scenes``) the scenes they
    paid in, by their merchants' scene."""
    if not user_ids:
        return set(), {}
    rows = connection.execute(
        sa.select(payments.c.user_id, payments.c.merchant_id)
        .where(payments.c.user_id.in_(sorted(set(user_ids))), payments.c.status.in_(PAID))
        .distinct()
    ).all()
    paid = {int(r.user_id) for r in rows}
    if not scenes:
        return paid, {}
    shops = get_merchants(
        platform=platform, merchant_ids={int(r.merchant_id) for r in rows if r.merchant_id}
    )
    seen: dict[int, set[str]] = {}
    for r in rows:
        if r.merchant_id is not None and int(r.merchant_id) in shops:
            seen.setdefault(int(r.user_id), set()).add(shops[int(r.merchant_id)].scene.value)
    return paid, seen


@dataclass(frozen=True, slots=True)
class NewUserFacts:
    first_payment_ever: bool
    first_in_scene: bool


def new_user_facts(
    platform: Platform, connection: sa.Connection, *, user_id: int, scene: str
) -> NewUserFacts:
    """Whether a payment by ``user_id`` in ``scene`` now would be the user's first ever and the
    first in the scene, exactly as the promotion stage decides it for a lone payment."""
    paid, seen = paid_before(platform, connection, [user_id], scenes=True)
    return NewUserFacts(
        first_payment_ever=user_id not in paid,
        first_in_scene=scene not in seen.get(user_id, set()),
    )
