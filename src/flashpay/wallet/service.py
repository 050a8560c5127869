"""The wallet: users, login, payment PIN, bound cards, balance inquiry.

Secrets at rest: passwords as Argon2id at the platform's ``PasswordPolicy`` (by default OWASP's
minimum: 19 MiB, 2 passes; ``login`` re-hashes a password whose hash is not at the current
policy — ``flashpay.passwords``, decision 0010); the six-digit
payment PIN as Argon2id of an HMAC of the PIN under the network's key (a PIN has only a million
values, so what stops an offline search is the key, which the database does not hold; the hash
cost is kept low enough for a PIN check on every payment — decision 0008); ID numbers as keyed
fingerprints; one-time codes as keyed hashes; session tokens as SHA-256 (they have 256 bits).

A card is bound in two steps: ``start_binding`` checks the card against its issuer's record (the
number routes to an issuer by BIN and exists there, the expiry matches, the CVV for credit cards,
the holder's real name and ID number match the user's) and sends a one-time code to the phone
the *issuer* has on file; ``confirm_binding`` checks the code and binds the card under a fresh
network token. Every refusal is a ``WalletError`` whose ``code`` is the API's error code.

The onboarding calls (``register``, ``set_pin``, ``start_binding``, ``confirm_binding``) run once
per user and card, thousands of times when an operator brings a population on board, so their SQL
is built once at import (``sa.bindparam``, so SQLAlchemy compiles each statement once) and each
reads what it needs in one query: ``start_binding`` reads the BIN match, the card, the user's
real name and the wallet's room together; ``confirm_binding`` reads the binding with its card,
issuer and the wallet's room, and builds the wallet card it returns from what it wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Row

from flashpay.cards.models import cards
from flashpay.cards.numbers import CardNumber, CardNumberError
from flashpay.cards.service import (
    Card,
    CardBalance,
    CardError,
    CardStatus,
    card_balance,
    card_from_row,
    cvv_matches,
    id_fingerprint,
    is_expired,
    parse_expiry,
    record_token,
)
from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.institutions.definition import CardType, InstitutionKind
from flashpay.institutions.models import institution_bins, institutions
from flashpay.notify import Message, mask_phone
from flashpay.platform import Platform
from flashpay.wallet.models import wallet_bindings, wallet_cards, wallet_sessions, wallet_users

CARDS_MAX = 15
YUAN = 100
# People's Bank of China barcode payment rules (2018), in fen: password-free payments up to a
# threshold the user sets (at most ¥1,000 a day in all), with the PIN up to ¥5,000 a day unless
# the user agreed another limit, static codes at most ¥500 a day.
FREE_PER_PAYMENT_DEFAULT = 1_000 * YUAN
FREE_DAILY_MAX = 1_000 * YUAN
QR_DAILY_DEFAULT = 5_000 * YUAN
QR_DAILY_MAX = 50_000 * YUAN
STATIC_DAILY_MAX = 500 * YUAN
PIN_TRIES_MAX = 5
PIN_LOCK_SECONDS = 30 * 60
SESSION_SECONDS = 24 * 3600
OTP_SECONDS = 5 * 60
OTP_TRIES_MAX = 5
PASSWORD_CHARS_MIN = 8
PASSWORD_CHARS_MAX = 128
TOKEN_PREFIX = "fps_"
PHONE = re.compile(r"^1[3-9][0-9]{9}$")  # mainland China mobile numbers
ID_NUMBER = re.compile(r"^[0-9]{17}[0-9X]$")  # resident identity card, 18 characters
PIN = re.compile(r"^[0-9]{6}$")

_pins = PasswordHasher(time_cost=1, memory_cost=2_048, parallelism=1)  # ~1 ms; decision 0008


class WalletError(ValueError):
    """A refused wallet request; ``code`` is the API error code, ``status`` its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class WalletCardStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    UNBOUND = "unbound"


class PinCheck(StrEnum):
    OK = "ok"
    NOT_SET = "pin_not_set"
    LOCKED = "pin_locked"
    WRONG = "wrong_pin"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    phone: str
    name: str
    real_name_verified: bool
    pin_set: bool


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    user_id: int
    expires_at_ns: int


@dataclass(frozen=True, slots=True)
class Binding:
    id: int
    phone_hint: str
    expires_at_ns: int


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


def _now(platform: Platform) -> int:
    return platform.clock.now_ns()


# -- users and sessions -----------------------------------------------------------------------
_INSERT_USER = wallet_users.insert().returning(wallet_users.c.id)
_LOGIN_READ = sa.select(wallet_users.c.id, wallet_users.c.password_hash).where(
    wallet_users.c.phone == sa.bindparam("b_phone")
)
# Compare-and-set: a password changed meanwhile is not overwritten by the old one's re-hash.
_REHASH = (
    wallet_users.update()
    .where(
        wallet_users.c.id == sa.bindparam("b_user_id"),
        wallet_users.c.password_hash == sa.bindparam("b_old_hash"),
    )
    .values(password_hash=sa.bindparam("b_new_hash"))
)
_INSERT_SESSION = wallet_sessions.insert()


def register(*, platform: Platform, phone: str, name: str, id_number: str, password: str) -> User:
    if not PHONE.match(phone):
        raise WalletError("invalid_phone", "a mobile number is 11 digits starting with 1")
    if not ID_NUMBER.match(id_number.strip().upper()):
        raise WalletError("invalid_id_number", "an ID number is 17 digits and a digit or X")
    if not 1 <= len(name.strip()) <= 64:
        raise WalletError("invalid_name", "the real name is 1–64 characters")
    if not PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX:
        raise WalletError(
            "weak_password", f"a password is {PASSWORD_CHARS_MIN}–{PASSWORD_CHARS_MAX} characters"
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
        "created_at_ns": _now(platform),
    }
    try:
        with autocommit(platform.engine) as connection:
            user_id = connection.execute(_INSERT_USER, values).scalar_one()
    except sa.exc.IntegrityError as exc:
        raise WalletError(
            "phone_already_registered", "this phone number has an account", status=409
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


def login(*, platform: Platform, phone: str, password: str) -> Session:
    """A session for the right phone and password. A password whose stored hash is not at the
    platform's current ``PasswordPolicy`` (an older or cheaper cost, e.g. a demo user's) is
    re-hashed at it in the session's transaction: logging in is the one moment the platform
    holds the password, so it is when a raised policy reaches an account."""
    hasher = platform.password_policy.hasher
    with autocommit(platform.engine) as connection:
        row = connection.execute(_LOGIN_READ, {"b_phone": phone}).first()
    try:
        if row is None:
            # Spend the same time as for a real account, so timing does not tell who exists.
            hasher.verify(platform.password_policy.dummy_hash(), password)
            raise VerificationError
        hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        raise WalletError("invalid_login", "wrong phone number or password", status=401) from exc
    rehashed = hasher.hash(password) if hasher.check_needs_rehash(row.password_hash) else None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = _now(platform)
    expires = now + SESSION_SECONDS * NS_PER_SECOND
    with platform.engine.begin() as connection:
        if rehashed is not None:
            connection.execute(
                _REHASH,
                {"b_user_id": row.id, "b_old_hash": row.password_hash, "b_new_hash": rehashed},
            )
        connection.execute(
            _INSERT_SESSION,
            {
                "token_hash": hashlib.sha256(token.encode()).digest(),
                "user_id": row.id,
                "created_at_ns": now,
                "expires_at_ns": expires,
            },
        )
    return Session(token, int(row.id), expires)


def authenticate(*, platform: Platform, token: str) -> int | None:
    """The user id of a valid, unexpired session token (``create_app``'s token verifier)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with platform.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        row = connection.execute(
            sa.select(wallet_sessions.c.user_id, wallet_sessions.c.expires_at_ns).where(
                wallet_sessions.c.token_hash == hashlib.sha256(token.encode()).digest()
            )
        ).first()
    if row is None or row.expires_at_ns <= _now(platform):
        return None
    return int(row.user_id)


def logout(*, platform: Platform, token: str) -> None:
    with platform.engine.begin() as connection:
        connection.execute(
            wallet_sessions.delete().where(
                wallet_sessions.c.token_hash == hashlib.sha256(token.encode()).digest()
            )
        )


# -- the payment PIN --------------------------------------------------------------------------
def _peppered(platform: Platform, user_id: int, pin: str) -> str:
    key = platform.keys.fingerprint("pin", str(user_id))
    return hmac.new(key, pin.encode(), hashlib.sha256).hexdigest()


_PASSWORD_OF = sa.select(wallet_users.c.password_hash).where(
    wallet_users.c.id == sa.bindparam("b_user_id")
)
_SET_PIN = (
    wallet_users.update()
    .where(wallet_users.c.id == sa.bindparam("b_user_id"))
    .values(pin_hash=sa.bindparam("b_pin_hash"), pin_failures=0, pin_locked_until_ns=None)
)


def check_password(*, platform: Platform, user_id: int, password: str) -> None:
    """Refuse (403 ``wrong_password``) anything but the user's login password. Any stored hash
    verifies whatever the policy (an Argon2 hash names its own cost); only ``login`` re-hashes."""
    with autocommit(platform.engine) as connection:
        stored = connection.execute(_PASSWORD_OF, {"b_user_id": user_id}).scalar_one()
    try:
        platform.password_policy.hasher.verify(stored, password)
    except (VerificationError, InvalidHashError) as exc:
        raise WalletError("wrong_password", "the password is wrong", status=403) from exc


def set_pin(*, platform: Platform, user_id: int, pin: str, password: str) -> None:
    """Set or change the payment PIN; the login password authorizes it. Clears a lock."""
    if not PIN.match(pin):
        raise WalletError("invalid_pin", "a payment PIN is six digits")
    if len(set(pin)) == 1 or pin in ("123456", "654321"):
        raise WalletError("weak_pin", "choose a PIN that is not all one digit or a sequence")
    check_password(platform=platform, user_id=user_id, password=password)
    pin_hash = _pins.hash(_peppered(platform, user_id, pin))
    with autocommit(platform.engine) as connection:  # one statement: atomic on its own
        connection.execute(_SET_PIN, {"b_user_id": user_id, "b_pin_hash": pin_hash})


@dataclass(frozen=True, slots=True)
class PinState:
    """What a PIN check needs from the user's row (read with the rest of a payment's data)."""

    user_id: int
    pin_hash: str | None
    pin_failures: int
    pin_locked_until_ns: int | None


def pin_state_columns() -> list[sa.ColumnElement[object]]:
    """The columns a ``PinState`` is read from, for joins in other domains' queries."""
    return [
        wallet_users.c.pin_hash,
        wallet_users.c.pin_failures,
        wallet_users.c.pin_locked_until_ns,
    ]


def check_pin(*, platform: Platform, state: PinState, pin: str) -> PinCheck:
    """The verdict on ``pin`` without writing anything (the slow hash runs here)."""
    if state.pin_hash is None:
        return PinCheck.NOT_SET
    if state.pin_locked_until_ns is not None and state.pin_locked_until_ns > _now(platform):
        return PinCheck.LOCKED
    if not PIN.match(pin):
        return PinCheck.WRONG
    try:
        _pins.verify(state.pin_hash, _peppered(platform, state.user_id, pin))
    except (VerificationError, InvalidHashError):
        return PinCheck.WRONG
    return PinCheck.OK


def record_pin_check(
    *, platform: Platform, connection: sa.Connection, state: PinState, verdict: PinCheck
) -> PinCheck:
    """Write the consequence of ``verdict`` in the caller's transaction: a wrong PIN counts one
    failure (in one UPDATE, so concurrent wrong tries cannot slip past the count) and the fifth
    in a row locks the PIN for 30 minutes; a right one clears the count. Returns the verdict."""
    if verdict is PinCheck.OK and state.pin_failures:
        connection.execute(
            wallet_users.update().where(wallet_users.c.id == state.user_id).values(pin_failures=0)
        )
    if verdict is not PinCheck.WRONG:
        return verdict
    failures = connection.execute(
        wallet_users.update()
        .where(wallet_users.c.id == state.user_id)
        .values(pin_failures=wallet_users.c.pin_failures + 1)
        .returning(wallet_users.c.pin_failures)
    ).scalar_one()
    if failures >= PIN_TRIES_MAX:
        locked_until = _now(platform) + PIN_LOCK_SECONDS * NS_PER_SECOND
        connection.execute(
            wallet_users.update()
            .where(wallet_users.c.id == state.user_id)
            .values(pin_failures=0, pin_locked_until_ns=locked_until)
        )
    return verdict


def verify_pin(*, platform: Platform, user_id: int, pin: str) -> PinCheck:
    """Check the payment PIN and record the outcome (five wrong tries lock it for 30 min)."""
    with platform.engine.connect() as connection:
        row = connection.execute(
            sa.select(*pin_state_columns()).where(wallet_users.c.id == user_id)
        ).one()
    state = PinState(user_id, row.pin_hash, int(row.pin_failures), row.pin_locked_until_ns)
    verdict = check_pin(platform=platform, state=state, pin=pin)
    with platform.engine.begin() as connection:
        return record_pin_check(
            platform=platform, connection=connection, state=state, verdict=verdict
        )


# -- binding cards ----------------------------------------------------------------------------
def _otp_hash(platform: Platform, binding_id: int, otp: str) -> bytes:
    key = platform.keys.fingerprint("otp", str(binding_id))
    return hmac.new(key, otp.encode(), hashlib.sha256).digest()


_B_USER_ID: sa.BindParameter[int] = sa.bindparam("b_user_id", type_=sa.BigInteger)
_BOUND = wallet_cards.c.status != WalletCardStatus.UNBOUND.value
_network = institutions.alias("network")


def _room_columns(card_id: sa.ColumnElement[int]) -> list[sa.ColumnElement[Any]]:
    """What the room check needs, as columns of a larger read: how many cards the wallet holds
    and whether ``card_id`` is one of them."""
    held = (
        sa.select(sa.func.count())
        .select_from(wallet_cards)
        .where(wallet_cards.c.user_id == _B_USER_ID, _BOUND)
        .scalar_subquery()
    )
    bound = sa.exists().where(
        wallet_cards.c.user_id == _B_USER_ID, wallet_cards.c.card_id == card_id, _BOUND
    )
    return [held.label("cards_held"), bound.label("card_bound")]


def _check_room(row: Row[tuple[object, ...]]) -> None:
    """Refuse a card already in this wallet, or a sixteenth card (from ``_room_columns``)."""
    if row.card_bound:
        raise WalletError("card_already_bound", "this card is bound already", status=409)
    if int(row.cards_held) >= CARDS_MAX:
        raise WalletError("too_many_cards", f"a wallet holds at most {CARDS_MAX} cards")


# start_binding's one read: is the BIN routed, the issuer's card (if any), the user's real name
# and ID fingerprint, and the wallet's room for that card.
_BINDING_CHECK: sa.Select[tuple[object, ...]] = (
    sa.select(
        sa.exists()
        .where(
            institution_bins.c.prefix.in_(
                [sa.bindparam("b_prefix8"), sa.bindparam("b_prefix7"), sa.bindparam("b_prefix6")]
            )
        )
        .label("routed"),
        wallet_users.c.name.label("user_name"),
        wallet_users.c.id_fingerprint.label("user_id_fingerprint"),
        *_room_columns(cards.c.id),
        cards,
    )
    .select_from(
        wallet_users.outerjoin(cards, cards.c.pan_fingerprint == sa.bindparam("b_fingerprint"))
    )
    .where(wallet_users.c.id == _B_USER_ID)
)
_INSERT_BINDING = wallet_bindings.insert().returning(wallet_bindings.c.id)
_SET_OTP = (
    wallet_bindings.update()
    .where(wallet_bindings.c.id == sa.bindparam("b_binding_id"))
    .values(otp_hash=sa.bindparam("b_otp_hash"))
)


def _card_to_bind(
    platform: Platform,
    row: Row[tuple[object, ...]],
    number: CardNumber,
    expiry_yymm: str,
    cvv: str | None,
) -> Card:
    """The issuer's card ``start_binding`` may bind, from its one read; else the refusal, in the
    order of the reference's table (wallet.md §3)."""
    if not row.routed:
        raise WalletError("unknown_bin", "no issuer in the network owns this card's BIN")
    card = None if row.id is None else card_from_row(row)
    if card is None or card.expiry != expiry_yymm:
        raise WalletError("card_not_recognised", "the issuer has no card with these details")
    if is_expired(card.expiry, _now(platform)):
        raise WalletError("card_expired", "the card has expired")
    if card.status is CardStatus.CLOSED:
        raise WalletError("card_closed", "the issuer has closed this card")
    if card.card_type is CardType.CREDIT and not cvv:
        raise WalletError("cvv_required", "a credit card is bound with its CVV")
    if cvv is not None and not cvv_matches(platform, number, card.expiry, cvv):
        raise WalletError("card_not_recognised", "the issuer has no card with these details")
    if (card.holder_name, card.holder_id_fingerprint) != (
        row.user_name,
        bytes(row.user_id_fingerprint),
    ):
        raise WalletError(
            "real_name_mismatch", "the card holder is not the account holder", status=422
        )
    _check_room(row)
    return card


def start_binding(
    *,
    platform: Platform,
    user_id: int,
    card_number: str,
    expiry: str,
    cvv: str | None = None,
) -> Binding:
    """Check a card against its issuer's record and send a one-time code to the phone the
    issuer has on file (see the module docstring)."""
    try:
        number = CardNumber.parse(card_number)
    except CardNumberError as exc:
        raise WalletError("invalid_card_number", str(exc)) from exc
    try:
        expiry_yymm = parse_expiry(expiry)
    except CardError as exc:
        raise WalletError(exc.code, str(exc)) from exc
    prefix8, prefix7, prefix6 = number.prefixes()
    otp = f"{secrets.randbelow(10**6):06d}"
    now = _now(platform)
    expires = now + OTP_SECONDS * NS_PER_SECOND
    with platform.engine.begin() as connection:  # a refusal below writes nothing
        row = connection.execute(
            _BINDING_CHECK,
            {
                "b_user_id": user_id,
                "b_fingerprint": platform.keys.fingerprint("pan", number.reveal()),
                "b_prefix8": prefix8,
                "b_prefix7": prefix7,
                "b_prefix6": prefix6,
            },
        ).one()
        card = _card_to_bind(platform, row, number, expiry_yymm, cvv)
        # The code's hash is keyed by the binding's id, so it is written once the id exists.
        binding_id = connection.execute(
            _INSERT_BINDING,
            {
                "user_id": user_id,
                "card_id": card.id,
                "otp_hash": b"\0" * 32,
                "attempts": 0,
                "status": "pending",
                "created_at_ns": now,
                "expires_at_ns": expires,
            },
        ).scalar_one()
        connection.execute(
            _SET_OTP,
            {"b_binding_id": binding_id, "b_otp_hash": _otp_hash(platform, int(binding_id), otp)},
        )
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


# Bumping the user's row first serialises this user's bindings (a row lock on PostgreSQL, the
# write lock on SQLite), so two confirmations cannot both be card 15.
_BUMP_USER = (
    wallet_users.update()
    .where(wallet_users.c.id == _B_USER_ID)
    .values(cards_version=wallet_users.c.cards_version + 1)
    .returning(wallet_users.c.real_name_verified)
)
# confirm_binding's one read: the binding, its card and issuer, the wallet's room and default,
# and the network's token BIN.
_BINDING_TO_CONFIRM: sa.Select[tuple[object, ...]] = (
    sa.select(
        wallet_bindings.c.status.label("binding_status"),
        wallet_bindings.c.expires_at_ns.label("binding_expires_at_ns"),
        wallet_bindings.c.otp_hash,
        wallet_bindings.c.attempts,
        institutions.c.code.label("issuer_code"),
        institutions.c.name.label("issuer_name"),
        *_room_columns(wallet_bindings.c.card_id),
        sa.exists()
        .where(wallet_cards.c.user_id == _B_USER_ID, wallet_cards.c.is_default.is_(True), _BOUND)
        .label("has_default"),
        sa.select(_network.c.token_bin)
        .where(_network.c.kind == InstitutionKind.NETWORK.value)
        .limit(1)
        .scalar_subquery()
        .label("token_bin"),
        cards,
    )
    .select_from(
        wallet_bindings.join(cards, cards.c.id == wallet_bindings.c.card_id).join(
            institutions, institutions.c.id == cards.c.issuer_id
        )
    )
    .where(
        wallet_bindings.c.id == sa.bindparam("b_binding_id"),
        wallet_bindings.c.user_id == _B_USER_ID,
    )
)
_SET_BINDING = (
    wallet_bindings.update()
    .where(wallet_bindings.c.id == sa.bindparam("b_binding_id"))
    .values(status=sa.bindparam("b_status"), attempts=sa.bindparam("b_attempts"))
)
_INSERT_WALLET_CARD = wallet_cards.insert().returning(wallet_cards.c.id)
_SET_VERIFIED = (
    wallet_users.update().where(wallet_users.c.id == _B_USER_ID).values(real_name_verified=True)
)


def confirm_binding(*, platform: Platform, user_id: int, binding_id: int, otp: str) -> WalletCard:
    """Check the one-time code and bind the card: the binding, a fresh network token and the
    wallet card commit together, under the user's row lock. The wallet card returned is built
    from what was written, not read back."""
    now = _now(platform)
    refusal: WalletError | None = None
    keys = {"b_user_id": user_id, "b_binding_id": binding_id}
    with platform.engine.begin() as connection:
        verified = connection.execute(_BUMP_USER, keys).scalar()
        row = connection.execute(_BINDING_TO_CONFIRM, keys).first()
        if row is None:
            raise WalletError("not_found", "no such card binding", status=404)
        if row.binding_status != "pending":
            raise WalletError("binding_closed", f"this binding is {row.binding_status}", status=409)
        if row.binding_expires_at_ns <= now:
            # Recorded, then refused: the refusal is raised after this transaction commits.
            connection.execute(
                _SET_BINDING, {**keys, "b_status": "expired", "b_attempts": row.attempts}
            )
            refusal = WalletError("otp_expired", "the one-time code has expired; start again")
        elif not hmac.compare_digest(_otp_hash(platform, binding_id, otp.strip()), row.otp_hash):
            attempts = row.attempts + 1
            status = "failed" if attempts >= OTP_TRIES_MAX else "pending"
            connection.execute(_SET_BINDING, {**keys, "b_status": status, "b_attempts": attempts})
            code = "otp_attempts_exceeded" if status == "failed" else "wrong_otp"
            refusal = WalletError(code, "the one-time code is wrong")
        else:
            # The code is right: the binding, the token and the wallet card commit together.
            # Checked again here, under the user's row lock: two bindings of one card started
            # before either was confirmed would otherwise both bind it.
            _check_room(row)
            connection.execute(
                _SET_BINDING, {**keys, "b_status": "confirmed", "b_attempts": row.attempts}
            )
            card = card_from_row(row)
            token = record_token(
                platform=platform,
                connection=connection,
                card_id=card.id,
                token_bin=row.token_bin,
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
                connection.execute(_SET_VERIFIED, keys)
    if refusal is not None:
        raise refusal
    return WalletCard(
        id=int(wallet_card_id),
        user_id=user_id,
        card=card,
        token=token,
        issuer_code=str(row.issuer_code),
        issuer_name=str(row.issuer_name),
        status=WalletCardStatus.ACTIVE,
        is_default=is_default,
        bound_at_ns=now,
    )


# -- the wallet's cards -----------------------------------------------------------------------
# A bound card with its issuer's record and the issuer's name, in one query.
_WALLET_CARDS: sa.Select[tuple[object, ...]] = (
    sa.select(
        cards,
        wallet_cards.c.id.label("wallet_card_id"),
        wallet_cards.c.user_id,
        wallet_cards.c.token,
        wallet_cards.c.status.label("wallet_status"),
        wallet_cards.c.is_default,
        wallet_cards.c.bound_at_ns,
        institutions.c.code.label("issuer_code"),
        institutions.c.name.label("issuer_name"),
    )
    .select_from(
        wallet_cards.join(cards, cards.c.id == wallet_cards.c.card_id).join(
            institutions, institutions.c.id == cards.c.issuer_id
        )
    )
    .where(wallet_cards.c.user_id == _B_USER_ID, _BOUND)
)
_WALLET_CARDS_OF_USER = _WALLET_CARDS.order_by(wallet_cards.c.id)
_WALLET_CARD = _WALLET_CARDS.where(wallet_cards.c.id == sa.bindparam("b_wallet_card_id"))


def _wallet_card(row: Row[tuple[object, ...]]) -> WalletCard:
    return WalletCard(
        id=int(row.wallet_card_id),
        user_id=int(row.user_id),
        card=card_from_row(row),
        token=str(row.token),
        issuer_code=str(row.issuer_code),
        issuer_name=str(row.issuer_name),
        status=WalletCardStatus(row.wallet_status),
        is_default=bool(row.is_default),
        bound_at_ns=int(row.bound_at_ns),
    )


def list_wallet_cards(*, platform: Platform, user_id: int) -> list[WalletCard]:
    with autocommit(platform.engine) as connection:
        rows = connection.execute(_WALLET_CARDS_OF_USER, {"b_user_id": user_id}).all()
    return [_wallet_card(r) for r in rows]


def get_wallet_card(*, platform: Platform, user_id: int, wallet_card_id: int) -> WalletCard | None:
    """The user's bound card, or ``None`` — also when it is someone else's (the API says 404)."""
    with autocommit(platform.engine) as connection:
        row = connection.execute(
            _WALLET_CARD, {"b_user_id": user_id, "b_wallet_card_id": wallet_card_id}
        ).first()
    return None if row is None else _wallet_card(row)


def _require(platform: Platform, user_id: int, wallet_card_id: int) -> WalletCard:
    found = get_wallet_card(platform=platform, user_id=user_id, wallet_card_id=wallet_card_id)
    if found is None:
        raise WalletError("not_found", "no such card in this wallet", status=404)
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
                unbound_at_ns=_now(platform),
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
