"""Issuer enrolment (push provisioning): an issuer puts cards it issued into their holders'
wallets, in bulk, without a one-time code (decision 0012).

The wallet reads its own tables; the cards come from their owner (``cards.service.cards_by_id``)
and the network's token BIN from institutions (``institutions.service.network_token_bin``), both
on the enrolment's connection, inside its transaction. A card already in a wallet is one of the
requested cards of this issuer, so its wallet card is built from the ``wallet_cards`` row and
what was read already: the statements are the ones of the single join this used to be.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence, Set
from typing import TypeVar

import sqlalchemy as sa

from flashpay.cards.service import Card, CardStatus, cards_by_id, is_expired, record_tokens
from flashpay.institutions.service import Institution, network_token_bin
from flashpay.platform import Platform
from flashpay.wallet.cards import (
    B_USER_ID,
    WalletCard,
    WalletCardStatus,
    bound_card_rows,
    wallet_card_from,
)
from flashpay.wallet.errors import WalletError, WalletRefusal
from flashpay.wallet.models import wallet_bindings, wallet_cards, wallet_users
from flashpay.wallet.policy import CARDS_MAX
from flashpay.wallet.registration import mark_real_name_verified

_T = TypeVar("_T")

ENROL_BATCH_MAX = 5_000  # cards per enrol_cards call
IN_LIST_MAX = 500  # values per IN (...) list read by enrol_cards
ENROL_ATTEMPTS_MAX = 3  # a network token drawn twice fails the transaction; drawn again

_HOLDERS_BY_PHONE = sa.select(
    wallet_users.c.id,
    wallet_users.c.phone,
    wallet_users.c.name,
    wallet_users.c.id_fingerprint,
    wallet_users.c.real_name_verified,
).where(wallet_users.c.phone.in_(sa.bindparam("b_phones", expanding=True)))
_BUMP_USERS = (
    wallet_users.update()
    .where(wallet_users.c.id == B_USER_ID)
    .values(cards_version=wallet_users.c.cards_version + 1)
)
_INSERT_BINDINGS = wallet_bindings.insert()
# RETURNING the (unique) token to match ids to rows: SQLite cannot promise a multi-row INSERT's
# RETURNING order, and sort_by_parameter_order would make SQLAlchemy insert row by row.
_INSERT_WALLET_CARDS = wallet_cards.insert().returning(wallet_cards.c.id, wallet_cards.c.token)


def enrol_cards(
    *, platform: Platform, issuer: Institution, card_ids: Sequence[int]
) -> list[WalletCard]:
    """The issuer puts cards it issued into their holders' wallets, in bulk: one
    ``WalletCard`` per card id, in order.

    This is issuer enrolment (push provisioning): a bank enrolling the cards of customers who
    asked for it in its branch or banking app, or a campus card programme enrolling its
    students' cards. The issuer has authenticated its customer itself, so no one-time code is
    sent; the call is the issuer's word that the holder agreed. The network finds each card's
    wallet by the phone the issuer has on file (the phone a binding's code would go to), and
    checks what ``start_binding`` checks, in this order, per card:

    ``not_found`` (404: no such card, or another issuer's), ``card_expired``, ``card_closed``,
    ``wallet_not_found`` (404: no wallet with the card's phone), ``real_name_mismatch``,
    ``too_many_cards`` (counting the batch).

    All or nothing, like ``issue_cards``: the first refused card raises ``WalletError`` with
    its ``index`` and nothing is written. A card already in its holder's wallet (or twice in the
    batch) comes back as the wallet card it is, so an issuer may send its file again. The
    bindings (``channel`` ``issuer``, ``confirmed``), tokens and wallet cards are written with
    one statement each, in one transaction that first bumps every holder's row in id order — the
    lock ``confirm_binding`` takes, so the two cannot both add a sixteenth card.
    """
    if len(card_ids) > ENROL_BATCH_MAX:
        raise WalletError(
            WalletRefusal.BATCH_TOO_LARGE, f"at most {ENROL_BATCH_MAX} cards per batch"
        )
    if not card_ids:
        return []
    attempt = 1
    while True:
        try:
            return _enrol(platform, issuer, card_ids)
        except sa.exc.IntegrityError:  # a token drawn twice: all rolled back, draw again
            if attempt == ENROL_ATTEMPTS_MAX:
                raise
            attempt += 1


def _enrol(platform: Platform, issuer: Institution, card_ids: Sequence[int]) -> list[WalletCard]:
    now = platform.clock.now_ns()
    with platform.engine.begin() as connection:  # a refusal rolls everything back
        found = cards_by_id(connection=connection, card_ids=card_ids)
        phones = sorted({card.phone for card in found.values()})
        holders = {
            str(row.phone): row
            for chunk in _chunks(phones)
            for row in connection.execute(_HOLDERS_BY_PHONE, {"b_phones": chunk})
        }
        user_ids = sorted({int(row.id) for row in holders.values()})
        if user_ids:  # lock the holders' rows in id order, then read their wallets
            connection.execute(_BUMP_USERS, [{"b_user_id": u} for u in user_ids])
        in_wallets = [
            row for chunk in _chunks(user_ids) for row in bound_card_rows(connection, chunk)
        ]
        held = Counter(int(row.user_id) for row in in_wallets)
        # A requested card already in its holder's wallet is this issuer's (checked below) and
        # was read above: its wallet card needs no other read.
        in_wallet = {(int(row.user_id), int(row.card_id)): row for row in in_wallets}
        enrolled: dict[tuple[int, int], WalletCard] = {}
        wanted: list[tuple[int, int]] = []  # (holder, card) per requested card
        new: dict[tuple[int, int], Card] = {}  # the ones to bind, in batch order
        for index, card_id in enumerate(card_ids):
            card = found.get(card_id)
            if card is None or card.issuer_id != issuer.id:
                raise WalletError(WalletRefusal.NOT_FOUND, "no such card of yours", index=index)
            if is_expired(card.expiry, now):
                raise WalletError(WalletRefusal.CARD_EXPIRED, "the card has expired", index=index)
            if card.status is CardStatus.CLOSED:
                raise WalletError(WalletRefusal.CARD_CLOSED, "the card is closed", index=index)
            holder = holders.get(card.phone)
            if holder is None:
                message = "no wallet has this card's phone"
                raise WalletError(WalletRefusal.WALLET_NOT_FOUND, message, index=index)
            if (card.holder_name, card.holder_id_fingerprint) != (
                holder.name,
                bytes(holder.id_fingerprint),
            ):
                message = "the card holder is not the account holder"
                raise WalletError(WalletRefusal.REAL_NAME_MISMATCH, message, index=index)
            key = (int(holder.id), card.id)
            wanted.append(key)
            if key in in_wallet:  # in the wallet already
                enrolled[key] = wallet_card_from(in_wallet[key], card, issuer)
                continue
            if key in new:
                continue  # earlier in this batch
            held[key[0]] += 1
            if held[key[0]] > CARDS_MAX:
                message = f"a wallet holds at most {CARDS_MAX} cards"
                raise WalletError(WalletRefusal.TOO_MANY_CARDS, message, index=index)
            new[key] = card
        # The checks are done: from here on the batch is written.
        if new:
            with_default = {int(row.user_id) for row in in_wallets if row.is_default}
            unverified = sorted(
                {int(h.id) for h in holders.values() if not h.real_name_verified}
                & {user_id for user_id, _ in new}
            )
            enrolled.update(
                _write_enrolment(platform, connection, issuer, new, with_default, unverified, now)
            )
    return [enrolled[key] for key in wanted]


def _write_enrolment(
    platform: Platform,
    connection: sa.Connection,
    issuer: Institution,
    new: Mapping[tuple[int, int], Card],
    with_default: Set[int],
    unverified: Sequence[int],
    now: int,
) -> dict[tuple[int, int], WalletCard]:
    """Bind the ``(holder, card)`` pairs of ``new``: one statement each for the bindings, the
    tokens, the wallet cards and the real-name flags. A holder's first card becomes the default
    when the wallet has none."""
    pairs = list(new)
    tokens = record_tokens(
        platform=platform,
        connection=connection,
        card_ids=[card_id for _, card_id in pairs],
        token_bin=network_token_bin(connection=connection),
    )
    connection.execute(
        _INSERT_BINDINGS,
        [
            {
                "user_id": user_id,
                "card_id": card_id,
                "otp_hash": b"\0" * 32,  # no code was sent: the issuer vouched
                "attempts": 0,
                "status": "confirmed",
                "created_at_ns": now,
                "expires_at_ns": now,
                "channel": "issuer",
            }
            for user_id, card_id in pairs
        ],
    )
    defaults = []
    defaulted = set(with_default)
    for user_id, _ in pairs:
        defaults.append(user_id not in defaulted)
        defaulted.add(user_id)
    inserted = connection.execute(
        _INSERT_WALLET_CARDS,
        [
            {
                "user_id": user_id,
                "card_id": card_id,
                "token": token,
                "status": WalletCardStatus.ACTIVE.value,
                "is_default": is_default,
                "bound_at_ns": now,
                "unbound_at_ns": None,
            }
            for (user_id, card_id), token, is_default in zip(pairs, tokens, defaults, strict=True)
        ],
    )
    ids = {str(row.token): int(row.id) for row in inserted}
    mark_real_name_verified(connection, unverified)
    return {
        (user_id, card_id): WalletCard(
            id=ids[token],
            user_id=user_id,
            card=new[(user_id, card_id)],
            token=token,
            issuer_code=issuer.code,
            issuer_name=issuer.name,
            status=WalletCardStatus.ACTIVE,
            is_default=is_default,
            bound_at_ns=now,
        )
        for (user_id, card_id), token, is_default in zip(pairs, tokens, defaults, strict=True)
    }


def _chunks(values: Sequence[_T]) -> Iterator[list[_T]]:
    for start in range(0, len(values), IN_LIST_MAX):
        yield list(values[start : start + IN_LIST_MAX])
