"""The paying card of a transfer or a payment: the wallet's bound card with its user's PIN
state and QR limits and the issuer's card record, read for a batch in one statement
(``flashpay.wallet.payers.bound_cards``, which joins the cards' published view)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from flashpay.cards.service import Card
from flashpay.db import autocommit
from flashpay.platform import Platform
from flashpay.wallet.cards import WalletCardStatus
from flashpay.wallet.payers import bound_cards
from flashpay.wallet.pin import PinState


@dataclass(frozen=True, slots=True)
class Payer:
    user_id: int
    wallet_card_id: int
    wallet_status: WalletCardStatus
    card: Card
    pin: PinState
    free_per_payment: int
    qr_daily_limit: int
    token: str  # the network token the card is bound under
    phone: str = ""  # the user's wallet phone


def payers(
    *, platform: Platform, wallet_card_ids: Collection[int] = (), tokens: Collection[str] = ()
) -> tuple[dict[int, Payer], dict[str, Payer]]:
    """Bound cards by wallet card id and by network token, for a batch (one statement)."""
    if not wallet_card_ids and not tokens:
        return {}, {}
    with autocommit(platform.engine) as connection:
        bound = bound_cards(connection, wallet_card_ids=wallet_card_ids, tokens=tokens)
    found = [
        Payer(
            user_id=b.user_id,
            wallet_card_id=b.wallet_card_id,
            wallet_status=b.status,
            card=b.card,
            pin=b.pin,
            free_per_payment=b.free_per_payment,
            qr_daily_limit=b.qr_daily_limit,
            token=b.token,
            phone=b.phone,
        )
        for b in bound
    ]
    return {p.wallet_card_id: p for p in found}, {p.token: p for p in found}
