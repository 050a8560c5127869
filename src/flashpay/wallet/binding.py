"""Binding a card to a wallet, in two steps the user drives from the app.

``start_binding`` checks the card against its issuer's record (the number routes to an issuer by
BIN and exists there, the expiry matches, the CVV for credit cards, the holder's real name and ID
number match the user's) and sends a one-time code to the phone the *issuer* has on file;
``confirm_binding`` checks the code and binds the card under a fresh network token. Every refusal
is a ``WalletError`` whose ``code`` is the API's error code.

Both run once per user and card, thousands of times when an operator brings a population on
board, so their statements are built once at import (``sa.bindparam``, so SQLAlchemy compiles each
once). The wallet reads only its own tables; what it needs from the card's and the BIN's owners
it asks them for on its own connection, inside its transaction: ``start_binding`` reads the BIN
match (institutions), the card (cards) and the user's real name with the wallet's room (wallet);
``confirm_binding`` reads the binding with the wallet's room and, once the code is right, the card
(cards), its issuer and the network's token BIN (institutions, two statements) — one statement
per owner more than the single join this used to be, and builds the wallet card it returns from
what it wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Row

from flashpay.cards.numbers import CardNumber
from flashpay.cards.service import (
    Card,
    CardError,
    CardStatus,
    cvv_matches,
    find_card,
    get_card,
    is_expired,
    pan_fingerprint,
    parse_expiry,
    record_token,
)
from flashpay.clock import NS_PER_SECOND
from flashpay.errors import InvariantError
from flashpay.idempotency import Effect, IdempotencyTag, bind_effects, find_effects
from flashpay.institutions.definition import CardType
from flashpay.institutions.service import bin_is_routed, institutions_by_id, network_token_bin
from flashpay.notify import Message, mask_phone
from flashpay.platform import Platform
from flashpay.wallet import throttle
from flashpay.wallet.cards import (
    B_USER_ID,
    BOUND,
    WalletCard,
    WalletCardStatus,
    check_room,
    read_wallet_card,
    room_columns,
)
from flashpay.wallet.errors import WalletError, WalletRefusal
from flashpay.wallet.models import wallet_bindings, wallet_cards, wallet_users
from flashpay.wallet.policy import OTP_SECONDS, OTP_TRIES_MAX
from flashpay.wallet.registration import mark_real_name_verified


@dataclass(frozen=True, slots=True)
class Binding:
    id: int
    phone_hint: str
    expires_at_ns: int


def _otp_hash(platform: Platform, binding_id: int, otp: str) -> bytes:
    key = platform.keys.fingerprint("otp", str(binding_id))
    return hmac.new(key, otp.encode(), hashlib.sha256).digest()


# start_binding's wallet read: the user's real name and ID fingerprint, and the wallet's room for
# the card (``b_card_id``: the issuer's card, or NULL when there is none).
_BINDING_CHECK: sa.Select[tuple[object, ...]] = sa.select(
    wallet_users.c.name.label("user_name"),
    wallet_users.c.id_fingerprint.label("user_id_fingerprint"),
    *room_columns(sa.bindparam("b_card_id", type_=sa.BigInteger)),
).where(wallet_users.c.id == B_USER_ID)
_INSERT_BINDING = wallet_bindings.insert().returning(wallet_bindings.c.id)
_SET_OTP = (
    wallet_bindings.update()
    .where(wallet_bindings.c.id == sa.bindparam("b_binding_id"))
    .values(otp_hash=sa.bindparam("b_otp_hash"))
)
_BOUND_BINDING = sa.select(
    wallet_bindings.c.id,
    wallet_bindings.c.status,
    wallet_bindings.c.expires_at_ns,
    wallet_bindings.c.card_id,
).where(wallet_bindings.c.id == sa.bindparam("b_binding_id"))


def _card_to_bind(
    platform: Platform,
    *,
    routed: bool,
    card: Card | None,
    row: Row[tuple[object, ...]],
    number: CardNumber,
    expiry_yymm: str,
    cvv: str | None,
) -> Card:
    """The issuer's card ``start_binding`` may bind, from its reads; else the refusal, in the
    order of the reference's table (wallet.md §3)."""
    if not routed:
        raise WalletError(
            WalletRefusal.UNKNOWN_BIN, "no issuer in the network owns this card's BIN"
        )
    if card is None or card.expiry != expiry_yymm:
        raise WalletError(
            WalletRefusal.CARD_NOT_RECOGNISED, "the issuer has no card with these details"
        )
    if is_expired(card.expiry, platform.clock.now_ns()):
        raise WalletError(WalletRefusal.CARD_EXPIRED, "the card has expired")
    if card.status is CardStatus.CLOSED:
        raise WalletError(WalletRefusal.CARD_CLOSED, "the issuer has closed this card")
    if card.card_type is CardType.CREDIT and not cvv:
        raise WalletError(WalletRefusal.CVV_REQUIRED, "a credit card is bound with its CVV")
    if cvv is not None and not cvv_matches(platform, number, card.expiry, cvv):
        raise WalletError(
            WalletRefusal.CARD_NOT_RECOGNISED, "the issuer has no card with these details"
        )
    if (card.holder_name, card.holder_id_fingerprint) != (
        row.user_name,
        bytes(row.user_id_fingerprint),
    ):
        raise WalletError(
            WalletRefusal.REAL_NAME_MISMATCH, "the card holder is not the account holder"
        )
    check_room(row)
    return card


def start_binding(
    *,
    platform: Platform,
    user_id: int,
    card_number: CardNumber,
    expiry: str,
    cvv: str | None = None,
    idempotency: IdempotencyTag | None = None,
) -> Binding:
    """Check a card against its issuer's record and send a one-time code to the phone the
    issuer has on file (see the module docstring). A retry whose Idempotency-Key is bound (its
    first answer lost in a crash, perhaps before the code was sent) answers the binding it
    started and, while that binding is pending, sends it a fresh code in place of the first.

    Each start is counted per Beijing day — per card, per user and per phone the code goes to
    (``throttle.BINDING_STARTS_PER_*_MAX``) — before the card is checked, refused ones too (a
    start is also a CVV guess); over a limit it is a 429 ``binding_limit_reached`` and is not
    counted. The number arrives parsed (``CardNumber``): the caller refuses one that is not a
    card number (``invalid_card_number``)."""
    try:
        expiry_yymm = parse_expiry(expiry)
    except CardError as exc:  # the one refusal parse_expiry has: invalid_expiry
        raise WalletError(WalletRefusal.INVALID_EXPIRY, str(exc)) from exc
    otp = f"{secrets.randbelow(10**6):06d}"
    now = platform.clock.now_ns()
    expires = now + OTP_SECONDS * NS_PER_SECOND
    fingerprint = pan_fingerprint(platform, card_number)
    refusal: WalletError | None = None
    if idempotency is not None:
        again = _restart_bound_binding(platform, idempotency, otp, now)
        if again is not None:
            return again
    with platform.engine.begin() as connection:  # over a limit, nothing is written
        routed = bin_is_routed(connection=connection, prefixes=card_number.prefixes())
        found = find_card(platform=platform, card=card_number, connection=connection)
        row = connection.execute(
            _BINDING_CHECK,
            {"b_user_id": user_id, "b_card_id": None if found is None else found.id},
        ).one()
        _count_start(connection, user_id, fingerprint, None if found is None else found.phone, now)
        try:
            card = _card_to_bind(
                platform,
                routed=routed,
                card=found,
                row=row,
                number=card_number,
                expiry_yymm=expiry_yymm,
                cvv=cvv,
            )
        except WalletError as exc:  # counted, then refused once the count commits
            refusal = exc
        else:
            binding_id = _insert_binding(platform, connection, user_id, card.id, otp, now)
            if idempotency is not None:
                bind_effects(connection, {idempotency: Effect("card_binding", binding_id)},
                             now_ns=now)  # fmt: skip
    if refusal is not None:
        raise refusal
    platform.notifier.send(
        Message(
            phone=card.phone,
            purpose="card_binding",
            reference=str(binding_id),
            code=otp,
            text=f"flashpay: {otp} binds your card ending {card.last4}. Valid 5 minutes.",
        )
    )
    return Binding(int(binding_id), mask_phone(card.phone), expires)


def _restart_bound_binding(
    platform: Platform, idempotency: IdempotencyTag, otp: str, now: int
) -> Binding | None:
    """The binding a first try with this key started, if any; still pending, it gets ``otp`` in
    place of its code (the first may never have been sent), texted to the same phone (the
    card's, read from cards in this transaction)."""
    with platform.engine.begin() as connection:
        found = find_effects(connection, [idempotency]).get(idempotency)
        if found is None:
            return None
        row = connection.execute(_BOUND_BINDING, {"b_binding_id": found.effect_id}).one()
        card = get_card(platform=platform, card_id=int(row.card_id), connection=connection)
        if card is None:
            raise InvariantError("a binding's card is recorded")
        pending = row.status == "pending" and row.expires_at_ns > now
        if pending:
            connection.execute(
                _SET_OTP,
                {"b_binding_id": row.id, "b_otp_hash": _otp_hash(platform, int(row.id), otp)},
            )
    if pending:
        platform.notifier.send(
            Message(
                phone=card.phone,
                purpose="card_binding",
                reference=str(row.id),
                code=otp,
                text=f"flashpay: {otp} binds your card ending {card.last4}. Valid 5 minutes.",
            )
        )
    return Binding(int(row.id), mask_phone(card.phone), int(row.expires_at_ns))


def _insert_binding(
    platform: Platform, connection: sa.Connection, user_id: int, card_id: int, otp: str, now: int
) -> int:
    """A pending binding with the code's hash, keyed by the binding's id (so it is written once
    the id exists)."""
    binding_id = connection.execute(
        _INSERT_BINDING,
        {
            "user_id": user_id,
            "card_id": card_id,
            "otp_hash": b"\0" * 32,
            "attempts": 0,
            "status": "pending",
            "created_at_ns": now,
            "expires_at_ns": now + OTP_SECONDS * NS_PER_SECOND,
            "channel": "app",
        },
    ).scalar_one()
    connection.execute(
        _SET_OTP,
        {"b_binding_id": binding_id, "b_otp_hash": _otp_hash(platform, int(binding_id), otp)},
    )
    return int(binding_id)


def _count_start(
    connection: sa.Connection, user_id: int, fingerprint: bytes, phone: str | None, now: int
) -> None:
    """Count a binding start per card, user and phone (the card's, when the issuer knows it) in
    the start's transaction; 429 ``binding_limit_reached`` over a day's limit."""
    scopes = [
        (f"card:{fingerprint.hex()}", throttle.BINDING_STARTS_PER_CARD_MAX),
        (f"user:{user_id}", throttle.BINDING_STARTS_PER_USER_MAX),
    ]
    if phone is not None:
        scopes.append((f"phone:{phone}", throttle.BINDING_STARTS_PER_PHONE_MAX))
    over = throttle.count_daily(connection, day=throttle.beijing_day(now), scopes=scopes)
    if over is not None:
        kind = over.partition(":")[0]
        raise WalletError(
            WalletRefusal.BINDING_LIMIT_REACHED,
            f"too many card bindings started today for this {kind}; try again tomorrow",
            retry_after_seconds=throttle.seconds_to_next_beijing_day(now),
        )


# Bumping the user's row first serialises this user's bindings (a row lock on PostgreSQL, the
# write lock on SQLite), so two confirmations cannot both be card 15.
_BUMP_USER = (
    wallet_users.update()
    .where(wallet_users.c.id == B_USER_ID)
    .values(cards_version=wallet_users.c.cards_version + 1)
    .returning(wallet_users.c.real_name_verified)
)
# confirm_binding's wallet read: the binding, the wallet's room for its card and its default.
_BINDING_TO_CONFIRM: sa.Select[tuple[object, ...]] = sa.select(
    wallet_bindings.c.card_id,
    wallet_bindings.c.status.label("binding_status"),
    wallet_bindings.c.expires_at_ns.label("binding_expires_at_ns"),
    wallet_bindings.c.otp_hash,
    wallet_bindings.c.attempts,
    *room_columns(wallet_bindings.c.card_id),
    sa.exists()
    .where(wallet_cards.c.user_id == B_USER_ID, wallet_cards.c.is_default.is_(True), BOUND)
    .label("has_default"),
).where(
    wallet_bindings.c.id == sa.bindparam("b_binding_id"),
    wallet_bindings.c.user_id == B_USER_ID,
)
_SET_BINDING = (
    wallet_bindings.update()
    .where(wallet_bindings.c.id == sa.bindparam("b_binding_id"))
    .values(status=sa.bindparam("b_status"), attempts=sa.bindparam("b_attempts"))
)
_INSERT_WALLET_CARD = wallet_cards.insert().returning(wallet_cards.c.id)


def confirm_binding(
    *,
    platform: Platform,
    user_id: int,
    binding_id: int,
    otp: str,
    idempotency: IdempotencyTag | None = None,
) -> WalletCard:
    """Check the one-time code and bind the card: the binding, a fresh network token and the
    wallet card commit together, under the user's row lock. The wallet card returned is built
    from what was written, not read back. A retry whose Idempotency-Key is bound answers the
    card it bound (not ``binding_closed``)."""
    now = platform.clock.now_ns()
    refusal: WalletError | None = None
    keys = {"b_user_id": user_id, "b_binding_id": binding_id}
    with platform.engine.begin() as connection:
        if idempotency is not None and (found := find_effects(connection, [idempotency])):
            bound = read_wallet_card(connection, user_id, found[idempotency].effect_id)
            if bound is None:
                raise WalletError(WalletRefusal.NOT_FOUND, "the card is no longer bound")
            return bound
        verified = connection.execute(_BUMP_USER, keys).scalar()
        row = connection.execute(_BINDING_TO_CONFIRM, keys).first()
        if row is None:
            raise WalletError(WalletRefusal.NOT_FOUND, "no such card binding")
        if row.binding_status != "pending":
            raise WalletError(WalletRefusal.BINDING_CLOSED, f"this binding is {row.binding_status}")
        if row.binding_expires_at_ns <= now:
            # Recorded, then refused: the refusal is raised after this transaction commits.
            connection.execute(
                _SET_BINDING, {**keys, "b_status": "expired", "b_attempts": row.attempts}
            )
            refusal = WalletError(
                WalletRefusal.OTP_EXPIRED, "the one-time code has expired; start again"
            )
        elif not hmac.compare_digest(_otp_hash(platform, binding_id, otp.strip()), row.otp_hash):
            attempts = row.attempts + 1
            status = "failed" if attempts >= OTP_TRIES_MAX else "pending"
            connection.execute(_SET_BINDING, {**keys, "b_status": status, "b_attempts": attempts})
            reason = (
                WalletRefusal.OTP_ATTEMPTS_EXCEEDED
                if status == "failed"
                else WalletRefusal.WRONG_OTP
            )
            refusal = WalletError(reason, "the one-time code is wrong")
        else:
            bound_card = _bind(
                platform,
                connection,
                row,
                user_id=user_id,
                binding_id=binding_id,
                verified=bool(verified),
                idempotency=idempotency,
                now=now,
            )
    if refusal is not None:
        raise refusal
    return bound_card


def _bind(
    platform: Platform,
    connection: sa.Connection,
    row: Row[tuple[object, ...]],
    *,
    user_id: int,
    binding_id: int,
    verified: bool,
    idempotency: IdempotencyTag | None,
    now: int,
) -> WalletCard:
    """The code is right: confirm the binding, draw the card's network token and write the
    wallet card, in the caller's transaction, and build the wallet card from what was written.
    The room is checked again here, under the user's row lock: two bindings of one card started
    before either was confirmed would otherwise both bind it."""
    check_room(row)
    connection.execute(
        _SET_BINDING,
        {"b_binding_id": binding_id, "b_status": "confirmed", "b_attempts": row.attempts},
    )
    card = get_card(platform=platform, card_id=int(row.card_id), connection=connection)
    if card is None:
        raise InvariantError("a binding's card is recorded")
    issuer = institutions_by_id(connection=connection, institution_ids=[card.issuer_id]).get(
        card.issuer_id
    )
    if issuer is None:
        raise InvariantError("a recorded card's issuer exists")
    token = record_token(
        platform=platform,
        connection=connection,
        card_id=card.id,
        token_bin=network_token_bin(connection=connection),
    )
    is_default = not row.has_default
    wallet_card_id = connection.execute(
        _INSERT_WALLET_CARD,
        {
            "user_id": user_id,
            "card_id": card.id,
            "token": token,
            "status": WalletCardStatus.ACTIVE.value,
            "is_default": is_default,
            "bound_at_ns": now,
            "unbound_at_ns": None,
        },
    ).scalar_one()
    if not verified:
        mark_real_name_verified(connection, [user_id])
    if idempotency is not None:
        bind_effects(connection, {idempotency: Effect("wallet_card", int(wallet_card_id))},
                     now_ns=now)  # fmt: skip
    return WalletCard(
        id=int(wallet_card_id),
        user_id=user_id,
        card=card,
        token=token,
        issuer_code=issuer.code,
        issuer_name=issuer.name,
        status=WalletCardStatus.ACTIVE,
        is_default=is_default,
        bound_at_ns=now,
    )
