"""The wallet's cards: list and read them, choose the default, unbind, freeze, ask a balance.

A wallet card is the wallet's row (``wallet_cards``: token, status, default) over an issuer's
card record, which the cards domain owns, and the issuer's name, which institutions own. Wallet
reads its own rows, then asks each owner on the same connection (``cards.service.cards_by_id``,
``institutions.service.institutions_by_id``): three statements where one join was, each reading
one domain's tables (enrolment, which holds the cards and their issuer already, reads only the
wallet's rows: ``bound_card_rows``). ``room_columns`` and ``check_room`` are the "room for one
more card" rule that binding and enrolment share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from flashpay.cards.service import Card, CardBalance, card_balance, cards_by_id
from flashpay.db import autocommit
from flashpay.errors import InvariantError
from flashpay.institutions.service import Institution, institutions_by_id
from flashpay.platform import Platform
from flashpay.wallet.errors import WalletError, WalletRefusal
from flashpay.wallet.models import wallet_cards
from flashpay.wallet.policy import CARDS_MAX


class WalletCardStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    UNBOUND = "unbound"


@dataclass(frozen=True, slots=True)
class WalletCard:
    id: int
    user_id: int
    card: Card
    token: str
    issuer_code: str
    issuer_name: str
    status: WalletCardStatus
    is_default: bool
    bound_at_ns: int


B_USER_ID: sa.BindParameter[int] = sa.bindparam("b_user_id", type_=sa.BigInteger)
"""The user a wallet statement is about (``b_user_id``), shared so statements combine."""
BOUND = wallet_cards.c.status != WalletCardStatus.UNBOUND.value
"""A wallet card still in the wallet (active or frozen)."""

_BOUND_CARDS = sa.select(wallet_cards).where(BOUND)
_WALLET_CARDS = _BOUND_CARDS.where(wallet_cards.c.user_id == B_USER_ID)
_WALLET_CARDS_OF_USER = _WALLET_CARDS.order_by(wallet_cards.c.id)
_WALLET_CARD = _WALLET_CARDS.where(wallet_cards.c.id == sa.bindparam("b_wallet_card_id"))
_BOUND_CARDS_OF_USERS = _BOUND_CARDS.where(
    wallet_cards.c.user_id.in_(sa.bindparam("b_user_ids", expanding=True))
).order_by(wallet_cards.c.id)


def room_columns(card_id: sa.ColumnElement[int]) -> list[sa.ColumnElement[Any]]:
    """What the room check needs, as columns of a larger read: how many cards the wallet of
    ``B_USER_ID`` holds and whether ``card_id`` is one of them."""
    held = (
        sa.select(sa.func.count())
        .select_from(wallet_cards)
        .where(wallet_cards.c.user_id == B_USER_ID, BOUND)
        .scalar_subquery()
    )
    bound = sa.exists().where(
        wallet_cards.c.user_id == B_USER_ID, wallet_cards.c.card_id == card_id, BOUND
    )
    return [held.label("cards_held"), bound.label("card_bound")]


def check_room(row: Row[tuple[object, ...]]) -> None:
    """Refuse a card already in this wallet, or a sixteenth card (from ``room_columns``)."""
    if row.card_bound:
        raise WalletError(WalletRefusal.CARD_ALREADY_BOUND, "this card is bound already")
    if int(row.cards_held) >= CARDS_MAX:
        raise WalletError(WalletRefusal.TOO_MANY_CARDS, f"a wallet holds at most {CARDS_MAX} cards")


def wallet_card_from(row: Row[Any], card: Card, issuer: Institution) -> WalletCard:
    """The wallet card of a ``wallet_cards`` row, its card record and the card's issuer."""
    return WalletCard(
        id=int(row.id),
        user_id=int(row.user_id),
        card=card,
        token=str(row.token),
        issuer_code=issuer.code,
        issuer_name=issuer.name,
        status=WalletCardStatus(row.status),
        is_default=bool(row.is_default),
        bound_at_ns=int(row.bound_at_ns),
    )


def _assembled(connection: sa.Connection, rows: Sequence[Row[Any]]) -> list[WalletCard]:
    """Wallet cards from ``wallet_cards`` rows, in their order, with their card records and
    issuers read from the owners on ``connection`` (one query each)."""
    found = cards_by_id(connection=connection, card_ids=[int(row.card_id) for row in rows])
    issuers = institutions_by_id(
        connection=connection, institution_ids=[card.issuer_id for card in found.values()]
    )
    assembled = []
    for row in rows:
        card = found.get(int(row.card_id))
        issuer = None if card is None else issuers.get(card.issuer_id)
        if card is None or issuer is None:
            raise InvariantError("a wallet card's card and its issuer are recorded")
        assembled.append(wallet_card_from(row, card, issuer))
    return assembled


def read_wallet_card(
    connection: sa.Connection, user_id: int, wallet_card_id: int
) -> WalletCard | None:
    """The user's bound card, read on the caller's connection (``None`` if not in the wallet)."""
    rows = connection.execute(
        _WALLET_CARD, {"b_user_id": user_id, "b_wallet_card_id": wallet_card_id}
    ).all()
    return next(iter(_assembled(connection, rows)), None)


def bound_card_rows(connection: sa.Connection, user_ids: Sequence[int]) -> list[Row[Any]]:
    """The ``wallet_cards`` rows of these users' bound cards (an IN list's worth), in wallet
    card order, read on the caller's connection; ``wallet_card_from`` makes wallet cards of
    them when the caller holds their card records already."""
    return list(connection.execute(_BOUND_CARDS_OF_USERS, {"b_user_ids": list(user_ids)}).all())


def list_wallet_cards(*, platform: Platform, user_id: int) -> list[WalletCard]:
    with autocommit(platform.engine) as connection:
        rows = connection.execute(_WALLET_CARDS_OF_USER, {"b_user_id": user_id}).all()
        return _assembled(connection, rows)


def get_wallet_card(*, platform: Platform, user_id: int, wallet_card_id: int) -> WalletCard | None:
    """The user's bound card, or ``None`` — also when it is someone else's (the API says 404)."""
    with autocommit(platform.engine) as connection:
        return read_wallet_card(connection, user_id, wallet_card_id)


def _require(platform: Platform, user_id: int, wallet_card_id: int) -> WalletCard:
    found = get_wallet_card(platform=platform, user_id=user_id, wallet_card_id=wallet_card_id)
    if found is None:
        raise WalletError(WalletRefusal.NOT_FOUND, "no such card in this wallet")
    return found


def set_default_card(*, platform: Platform, user_id: int, wallet_card_id: int) -> WalletCard:
    _require(platform, user_id, wallet_card_id)
    with platform.engine.begin() as connection:
        connection.execute(
            wallet_cards.update()
            .where(wallet_cards.c.user_id == user_id)
            .values(is_default=wallet_cards.c.id == wallet_card_id)
        )
    return _require(platform, user_id, wallet_card_id)


def unbind_card(*, platform: Platform, user_id: int, wallet_card_id: int) -> None:
    found = _require(platform, user_id, wallet_card_id)
    with platform.engine.begin() as connection:
        connection.execute(
            wallet_cards.update()
            .where(wallet_cards.c.id == wallet_card_id)
            .values(
                status=WalletCardStatus.UNBOUND.value,
                is_default=False,
                unbound_at_ns=platform.clock.now_ns(),
            )
        )
        if found.is_default:
            successor = connection.execute(
                sa.select(wallet_cards.c.id)
                .where(
                    wallet_cards.c.user_id == user_id,
                    wallet_cards.c.status != WalletCardStatus.UNBOUND.value,
                )
                .order_by(wallet_cards.c.id)
            ).first()
            if successor is not None:
                connection.execute(
                    wallet_cards.update()
                    .where(wallet_cards.c.id == successor.id)
                    .values(is_default=True)
                )


def set_card_frozen(
    *, platform: Platform, user_id: int, wallet_card_id: int, frozen: bool
) -> WalletCard:
    """The user freezes (or unfreezes) a card in the wallet: no payment or transfer from it."""
    _require(platform, user_id, wallet_card_id)
    status = WalletCardStatus.FROZEN if frozen else WalletCardStatus.ACTIVE
    with platform.engine.begin() as connection:
        connection.execute(
            wallet_cards.update()
            .where(wallet_cards.c.id == wallet_card_id)
            .values(status=status.value)
        )
    return _require(platform, user_id, wallet_card_id)


def wallet_card_balance(*, platform: Platform, user_id: int, wallet_card_id: int) -> CardBalance:
    found = _require(platform, user_id, wallet_card_id)
    return card_balance(platform=platform, card=found.card)
