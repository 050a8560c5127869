"""Wallet users: register one (the phone is the login), read one, mark one real-name verified.

The ID number is stored only as the vault's keyed fingerprint (``cards.service.id_fingerprint``,
the one recipe the issuers' card records use too, so a card's holder can be matched to a user)
and the password as Argon2id at the platform's ``PasswordPolicy`` (decision 0011).
``register`` runs once per user, thousands of times when an operator brings a population on
board, so its statement is built once at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.cards.service import id_fingerprint
from flashpay.db import autocommit
from flashpay.errors import InvariantError
from flashpay.idempotency import Effect, IdempotencyTag, bind_effects, find_effects
from flashpay.platform import Platform
from flashpay.wallet.errors import WalletError, WalletRefusal
from flashpay.wallet.models import wallet_users
from flashpay.wallet.policy import (
    FREE_PER_PAYMENT_DEFAULT,
    ID_NUMBER,
    PASSWORD_CHARS_MAX,
    PASSWORD_CHARS_MIN,
    PHONE,
    QR_DAILY_DEFAULT,
)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    phone: str
    name: str
    real_name_verified: bool
    pin_set: bool


_INSERT_USER = wallet_users.insert().returning(wallet_users.c.id)
_SET_VERIFIED = (
    wallet_users.update()
    .where(wallet_users.c.id == sa.bindparam("b_user_id", type_=sa.BigInteger))
    .values(real_name_verified=True)
)


def register(
    *,
    platform: Platform,
    phone: str,
    name: str,
    id_number: str,
    password: str,
    idempotency: IdempotencyTag | None = None,
) -> User:
    """A wallet user; the phone is the login. A retry whose Idempotency-Key is bound answers the
    user it registered (not ``phone_already_registered``)."""
    if not PHONE.match(phone):
        raise WalletError(
            WalletRefusal.INVALID_PHONE, "a mobile number is 11 digits starting with 1"
        )
    if not ID_NUMBER.match(id_number.strip().upper()):
        raise WalletError(
            WalletRefusal.INVALID_ID_NUMBER, "an ID number is 17 digits and a digit or X"
        )
    if not 1 <= len(name.strip()) <= 64:
        raise WalletError(WalletRefusal.INVALID_NAME, "the real name is 1–64 characters")
    if not PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX:
        raise WalletError(
            WalletRefusal.WEAK_PASSWORD,
            f"a password is {PASSWORD_CHARS_MIN}–{PASSWORD_CHARS_MAX} characters",
        )
    clean_name = name.strip()
    values = {
        "phone": phone,
        "name": clean_name,
        "id_fingerprint": id_fingerprint(platform, id_number),
        "password_hash": platform.password_policy.hasher.hash(password),
        "pin_hash": None,
        "pin_failures": 0,
        "pin_locked_until_ns": None,
        "real_name_verified": False,
        "cards_version": 0,
        "free_per_payment": FREE_PER_PAYMENT_DEFAULT,
        "qr_daily_limit": QR_DAILY_DEFAULT,
        "created_at_ns": platform.clock.now_ns(),
    }
    try:
        with (
            autocommit(platform.engine) if idempotency is None else platform.engine.begin() as (
                connection
            )
        ):
            if idempotency is not None and (found := find_effects(connection, [idempotency])):
                registered = get_user(platform=platform, user_id=found[idempotency].effect_id)
                if registered is None:
                    raise InvariantError("a registered user exists")
                return registered
            user_id = connection.execute(_INSERT_USER, values).scalar_one()
            if idempotency is not None:
                bind_effects(connection, {idempotency: Effect("user", int(user_id))},
                             now_ns=platform.clock.now_ns())  # fmt: skip
    except sa.exc.IntegrityError as exc:
        raise WalletError(
            WalletRefusal.PHONE_ALREADY_REGISTERED, "this phone number has an account"
        ) from exc
    return User(int(user_id), phone, clean_name, False, False)


def get_user(*, platform: Platform, user_id: int) -> User | None:
    with platform.engine.connect() as connection:
        row = connection.execute(
            sa.select(wallet_users).where(wallet_users.c.id == user_id)
        ).first()
    if row is None:
        return None
    return User(row.id, row.phone, row.name, bool(row.real_name_verified), row.pin_hash is not None)


def mark_real_name_verified(connection: sa.Connection, user_ids: Sequence[int]) -> None:
    """Mark users real-name verified in the caller's transaction: a card whose issuer's holder
    record matched the user's name and ID number was bound (one statement for all of them)."""
    if user_ids:
        connection.execute(_SET_VERIFIED, [{"b_user_id": user_id} for user_id in user_ids])
