"""The wallet's view of a payer, for payments: bound cards with their user's PIN state and QR
limits, the default card behind a phone number, and the user's own QR limits.

Every function takes the caller's ``connection`` (one statement each), so payments reads a
batch's payers in its own connection without touching the wallet's tables. The card itself is
the cards domain's: ``bound_cards`` joins the cards' published view (``cards.lookups.card_view``)
so that a batch's payers stay one statement, and the cards domain alone says what a card row is.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.cards.lookups import card_from_view, card_view
from flashpay.cards.service import Card
from flashpay.wallet.cards import WalletCardStatus
from flashpay.wallet.models import wallet_cards, wallet_users
from flashpay.wallet.pin import PinState, pin_state_columns


@dataclass(frozen=True, slots=True)
class BoundCard:
    """A card bound in a wallet (not unbound), with what a payment checks of its user."""

    wallet_card_id: int
    user_id: int
    card: Card  # the issuer's record of the card
    status: WalletCardStatus
    token: str  # the network token the card is bound under
    pin: PinState
    free_per_payment: int  # minor units: the password-free threshold
    qr_daily_limit: int  # minor units: the user's daily total of QR payments
    phone: str = ""  # the user's wallet phone (what promotions count a user by)


def bound_cards(
    connection: sa.Connection,
    *,
    wallet_card_ids: Collection[int] = (),
    tokens: Collection[str] = (),
) -> list[BoundCard]:
    """The bound cards with one of ``wallet_card_ids`` or ``tokens``, each with its issued card,
    in one query."""
    if not wallet_card_ids and not tokens:
        return []
    wanted = sa.or_(
        wallet_cards.c.id.in_(sorted(wallet_card_ids)), wallet_cards.c.token.in_(sorted(tokens))
    )
    issued = card_view()
    rows = connection.execute(
        sa.select(
            wallet_cards.c.id,
            wallet_cards.c.user_id,
            wallet_cards.c.status,
            wallet_cards.c.token,
            wallet_users.c.free_per_payment,
            wallet_users.c.qr_daily_limit,
            wallet_users.c.phone.label("user_phone"),
            *pin_state_columns(),
            *issued.c,
        )
        .join(wallet_users, wallet_users.c.id == wallet_cards.c.user_id)
        .join(issued, issued.c.card_id == wallet_cards.c.card_id)
        .where(wanted, wallet_cards.c.status != WalletCardStatus.UNBOUND.value)
    )
    # Read by name through the row's mapping: a Row's attribute access costs several times a
    # mapping look-up, and a batch reads thousands of payers (the demo's CPU per payment).
    return [
        BoundCard(
            wallet_card_id=int(m["id"]),
            user_id=int(m["user_id"]),
            card=card_from_view(row),
            status=WalletCardStatus(m["status"]),
            token=str(m["token"]),
            pin=PinState(
                int(m["user_id"]), m["pin_hash"], int(m["pin_failures"]), m["pin_locked_until_ns"]
            ),
            free_per_payment=int(m["free_per_payment"]),
            qr_daily_limit=int(m["qr_daily_limit"]),
            phone=str(m["user_phone"]),
        )
        for row in rows
        for m in (row._mapping,)
    ]


def default_card_ids_by_phone(connection: sa.Connection, phones: Collection[str]) -> dict[str, int]:
    """The card id of each wallet user's default bound card, by the user's phone, in one
    query (a phone without one is left out)."""
    if not phones:
        return {}
    rows = connection.execute(
        sa.select(wallet_users.c.phone, wallet_cards.c.card_id)
        .join(wallet_cards, wallet_cards.c.user_id == wallet_users.c.id)
        .where(
            wallet_users.c.phone.in_(sorted(set(phones))),
            wallet_cards.c.is_default.is_(True),
            wallet_cards.c.status != WalletCardStatus.UNBOUND.value,
        )
    )
    found: dict[str, int] = {}
    for phone, card_id in rows:
        found.setdefault(str(phone), int(card_id))
    return found


def phones_of_users(
    connection: sa.Connection, *, phones: Collection[str], user_ids: Collection[int]
) -> tuple[set[str], dict[int, str]]:
    """Which of ``phones`` have a wallet account, and the phone of each of ``user_ids`` that
    exists, in one query (for a funder pushing coupons to a list of users)."""
    if not phones and not user_ids:
        return set(), {}
    u = wallet_users.c
    rows = connection.execute(
        sa.select(u.id, u.phone).where(
            sa.or_(u.phone.in_(sorted(set(phones))), u.id.in_(sorted(set(user_ids))))
        )
    )
    found_phones: set[str] = set()
    by_id: dict[int, str] = {}
    for user_id, phone in rows:
        found_phones.add(str(phone))
        by_id[int(user_id)] = str(phone)
    return found_phones & set(phones), {i: p for i, p in by_id.items() if i in set(user_ids)}


def card_ids_by_token(connection: sa.Connection, tokens: Collection[str]) -> dict[str, int]:
    """The card bound under each network token (bound or since unbound), in one query."""
    if not tokens:
        return {}
    rows = connection.execute(
        sa.select(wallet_cards.c.token, wallet_cards.c.card_id).where(
            wallet_cards.c.token.in_(sorted(set(tokens)))
        )
    )
    return {str(token): int(card_id) for token, card_id in rows}


def set_qr_limits(
    connection: sa.Connection, *, user_id: int, free_per_payment: int, qr_daily_limit: int
) -> None:
    """Write the user's own QR limits (validated by the caller) in the caller's transaction."""
    connection.execute(
        wallet_users.update()
        .where(wallet_users.c.id == user_id)
        .values(free_per_payment=free_per_payment, qr_daily_limit=qr_daily_limit)
    )
