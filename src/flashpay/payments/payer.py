"""The paying card of a transfer or a payment: the wallet's bound card with its user's PIN
state and QR limits and the issuer's card record, read for a batch in one statement
(``flashpay.wallet.payers.bound_cards``, which joins the cards' published view)."""

from __future__ import annotations

from collections.abc import Collection

from flashpay.db import autocommit
from flashpay.platform import Platform
from flashpay.wallet.payers import BoundCard, bound_cards

Payer = BoundCard
"""The paying card: the wallet's own bound-card row, carried as it is (one object per row, no
copy into a look-alike class of ours)."""


def payers(
    *, platform: Platform, wallet_card_ids: Collection[int] = (), tokens: Collection[str] = ()
) -> tuple[dict[int, Payer], dict[str, Payer]]:
    """Bound cards by wallet card id and by network token, for a batch (one statement)."""
    if not wallet_card_ids and not tokens:
        return {}, {}
    with autocommit(platform.engine) as connection:
        bound = bound_cards(connection, wallet_card_ids=wallet_card_ids, tokens=tokens)
    return {b.wallet_card_id: b for b in bound}, {b.token: b for b in bound}
