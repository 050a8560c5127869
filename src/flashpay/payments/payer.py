"""The paying card of a transfer or a payment, read in one query: the wallet card, the issuer's
card record and the user's PIN state and QR limits (one round trip on the hot path)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.cards.models import cards
from flashpay.cards.service import Card, card_from_row
from flashpay.db import autocommit
from flashpay.platform import Platform
from flashpay.wallet.cards import WalletCardStatus
from flashpay.wallet.models import wallet_cards, wallet_users
from flashpay.wallet.pin import PinState, pin_state_columns


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


def _query() -> sa.Select[tuple[object, ...]]:
    return (
        sa.select(
            cards,
            wallet_cards.c.id.label("wallet_card_id"),
            wallet_cards.c.user_id,
            wallet_cards.c.status.label("wallet_status"),
            wallet_cards.c.token,
            wallet_users.c.free_per_payment,
            wallet_users.c.qr_daily_limit,
            *pin_state_columns(),
        )
        .join(wallet_cards, wallet_cards.c.card_id == cards.c.id)
        .join(wallet_users, wallet_users.c.id == wallet_cards.c.user_id)
        .where(wallet_cards.c.status != WalletCardStatus.UNBOUND.value)
    )


def _payer(row: sa.Row[tuple[object, ...]]) -> Payer:
    pin = PinState(int(row.user_id), row.pin_hash, int(row.pin_failures), row.pin_locked_until_ns)
    return Payer(
        user_id=int(row.user_id),
        wallet_card_id=int(row.wallet_card_id),
        wallet_status=WalletCardStatus(row.wallet_status),
        card=card_from_row(row),
        pin=pin,
        free_per_payment=int(row.free_per_payment),
        qr_daily_limit=int(row.qr_daily_limit),
        token=str(row.token),
    )


def payers(
    *, platform: Platform, wallet_card_ids: Collection[int] = (), tokens: Collection[str] = ()
) -> tuple[dict[int, Payer], dict[str, Payer]]:
    """Bound cards by wallet card id and by network token, for a batch, in one query."""
    if not wallet_card_ids and not tokens:
        return {}, {}
    wanted = sa.or_(
        wallet_cards.c.id.in_(sorted(wallet_card_ids)), wallet_cards.c.token.in_(sorted(tokens))
    )
    with autocommit(platform.engine) as connection:
        found = [_payer(row) for row in connection.execute(_query().where(wanted))]
    return {p.wallet_card_id: p for p in found}, {p.token: p for p in found}
