"""The wallet: users, login, payment PIN, bound cards, balance inquiry.

Secrets at rest: passwords as Argon2id at the platform's ``PasswordPolicy`` (by default OWASP's
minimum: 19 MiB, 2 passes; ``login`` re-hashes a password whose hash is not at the current
policy — ``flashpay.passwords``, decision 0011); the six-digit
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

import dataclasses
import hashlib
import hmac
import re
import secrets
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

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
    record_tokens,
)
from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.errors import InvariantError
from flashpay.idempotency import Effect, IdempotencyTag, bind_effects, find_effects
from flashpay.institutions.definition import CardType, InstitutionKind
from flashpay.institutions.models import institution_bins, institutions
from flashpay.institutions.service import Institution
from flashpay.notify import Message, mask_phone
from flashpay.platform import Platform
from flashpay.wallet import throttle
from flashpay.wallet.models import wallet_bindings, wallet_cards, wallet_sessions, wallet_users

_T = TypeVar("_T")

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
    """A refused wallet request; ``code`` is the API error code, ``status`` its HTTP status.
    ``index`` is the refused card's position in an ``enrol_cards`` batch (else ``None``);
    ``retry_after_seconds`` says when a throttled request (a 429) may be tried again."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 422,
        *,
        index: int | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message if index is None else f"card_ids[{index}]: {message}")
        self.code = code
        self.status = status
        self.index = index
        self.retry_after_seconds = retry_after_seconds


_REFUSAL_MESSAGES = {
    throttle.ACCOUNT_LOCKED: "too many wrong passwords: the account is locked for a while",
    throttle.TOO_MANY_ATTEMPTS: "too many attempts: wait before trying again",
}


def _throttled(refusal: throttle.Refusal) -> WalletError:
    return WalletError(
        refusal.code,
        _REFUSAL_MESSAGES[refusal.code],
        status=429,
        retry_after_seconds=refusal.retry_after_seconds,
    )


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


def _charge(platform: Platform, scopes: Sequence[tuple[str, throttle.Policy]]) -> None:
    """Charge one password check to its scopes before the slow hash runs (``throttle``); a 429
    ``account_locked`` or ``too_many_attempts`` when no try is allowed now."""
    with platform.engine.begin() as connection:
        refusal = throttle.charge(connection, scopes=scopes, now_ns=_now(platform))
    if refusal is not None:
        raise _throttled(refusal)


def login(*, platform: Platform, phone: str, password: str, source: str | None = None) -> Session:
    """A session for the right phone and password. A password whose stored hash is not at the
    platform's current ``PasswordPolicy`` (an older or cheaper cost, e.g. a demo user's) is
    re-hashed at it (never down to a cheaper one) in the session's transaction: logging in is
    the one moment the platform holds the password, so it is when a raised policy reaches an
    account.

    Throttled per account (the phone, registered or not) and per ``source`` (the client's
    address), before the password is checked: 429 ``account_locked`` or ``too_many_attempts``
    (``flashpay.wallet.throttle``). A right password clears the account's counts."""
    account = throttle.account_scope(phone)
    from_source = None if source is None else throttle.source_scope(source)
    scopes = [(account, throttle.ACCOUNT)]
    if from_source is not None:
        scopes.append((from_source, throttle.SOURCE))
    _charge(platform, scopes)
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
    rehashed = hasher.hash(password) if platform.password_policy.raises(row.password_hash) else None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = _now(platform)
    expires = now + SESSION_SECONDS * NS_PER_SECOND
    with platform.engine.begin() as connection:
        throttle.cleared(connection, account=account, source=from_source)
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


_PASSWORD_OF = sa.select(wallet_users.c.phone, wallet_users.c.password_hash).where(
    wallet_users.c.id == sa.bindparam("b_user_id")
)
_SET_PIN = (
    wallet_users.update()
    .where(wallet_users.c.id == sa.bindparam("b_user_id"))
    .values(pin_hash=sa.bindparam("b_pin_hash"), pin_failures=0, pin_locked_until_ns=None)
)


def check_password(*, platform: Platform, user_id: int, password: str) -> None:
    """Refuse (403 ``wrong_password``) anything but the user's login password. Any stored hash
    verifies whatever the policy (an Argon2 hash names its own cost); only ``login`` re-hashes.

    The check counts against the account's login attempts (``throttle``), so a stolen session
    cannot guess the password here either: a wrong one is a failure, and while the account is
    locked or backing off the answer is the login's 429 ``account_locked`` or
    ``too_many_attempts``; a right one clears the counts."""
    with autocommit(platform.engine) as connection:
        row = connection.execute(_PASSWORD_OF, {"b_user_id": user_id}).one()
    account = throttle.account_scope(str(row.phone))
    _charge(platform, [(account, throttle.ACCOUNT)])
    try:
        platform.password_policy.hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        raise WalletError("wrong_password", "the password is wrong", status=403) from exc
    with autocommit(platform.engine) as connection:
        throttle.cleared(connection, account=account)


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


def pin_state_after(state: PinState, verdict: PinCheck, now_ns: int) -> PinState:
    """The PIN state ``record_pin_check`` leaves after ``verdict``: what the user's next try
    sees — a right PIN clears the count, a wrong one counts, and the ``PIN_TRIES_MAX``-th in a
    row locks the PIN for ``PIN_LOCK_SECONDS``. Batches use it to count tries in order."""
    if verdict is PinCheck.OK:
        return dataclasses.replace(state, pin_failures=0)
    if verdict is not PinCheck.WRONG:
        return state
    failures = state.pin_failures + 1
    if failures < PIN_TRIES_MAX:
        return dataclasses.replace(state, pin_failures=failures)
    locked_until = now_ns + PIN_LOCK_SECONDS * NS_PER_SECOND
    return dataclasses.replace(state, pin_failures=0, pin_locked_until_ns=locked_until)


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
    idempotency: IdempotencyTag | None = None,
) -> Binding:
    """Check a card against its issuer's record and send a one-time code to the phone the
    issuer has on file (see the module docstring). A retry whose Idempotency-Key is bound (its
    first answer lost in a crash, perhaps before the code was sent) answers the binding it
    started and, while that binding is pending, sends it a fresh code in place of the first.

    Each start is counted per Beijing day — per card, per user and per phone the code goes to
    (``throttle.BINDING_STARTS_PER_*_MAX``) — before the card is checked, refused ones too (a
    start is also a CVV guess); over a limit it is a 429 ``binding_limit_reached`` and is not
    counted."""
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
    fingerprint = platform.keys.fingerprint("pan", number.reveal())
    refusal: WalletError | None = None
    if idempotency is not None:
        again = _restart_bound_binding(platform, idempotency, otp, now)
        if again is not None:
            return again
    with platform.engine.begin() as connection:  # over a limit, nothing is written
        row = connection.execute(
            _BINDING_CHECK,
            {
                "b_user_id": user_id,
                "b_fingerprint": fingerprint,
                "b_prefix8": prefix8,
                "b_prefix7": prefix7,
                "b_prefix6": prefix6,
            },
        ).one()
        _count_start(connection, user_id, fingerprint, row.phone, now)
        try:
            card = _card_to_bind(platform, row, number, expiry_yymm, cvv)
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
    place of its code (the first may never have been sent), texted to the same phone."""
    with platform.engine.begin() as connection:
        found = find_effects(connection, [idempotency]).get(idempotency)
        if found is None:
            return None
        row = connection.execute(
            sa.select(wallet_bindings.c.id, wallet_bindings.c.status,
                      wallet_bindings.c.expires_at_ns, cards.c.phone, cards.c.pan_last4)
            .join(cards, cards.c.id == wallet_bindings.c.card_id)
            .where(wallet_bindings.c.id == found.effect_id)
        ).one()  # fmt: skip
        pending = row.status == "pending" and row.expires_at_ns > now
        if pending:
            connection.execute(
                _SET_OTP,
                {"b_binding_id": row.id, "b_otp_hash": _otp_hash(platform, int(row.id), otp)},
            )
    if pending:
        platform.notifier.send(
            Message(
                phone=str(row.phone),
                purpose="card_binding",
                reference=str(row.id),
                code=otp,
                text=f"flashpay: {otp} binds your card ending {row.pan_last4}. Valid 5 minutes.",
            )
        )
    return Binding(int(row.id), mask_phone(str(row.phone)), int(row.expires_at_ns))


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
            throttle.BINDING_LIMIT_REACHED,
            f"too many card bindings started today for this {kind}; try again tomorrow",
            status=429,
            retry_after_seconds=throttle.seconds_to_next_beijing_day(now),
        )


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
    now = _now(platform)
    refusal: WalletError | None = None
    keys = {"b_user_id": user_id, "b_binding_id": binding_id}
    with platform.engine.begin() as connection:
        if idempotency is not None and (found := find_effects(connection, [idempotency])):
            bound = connection.execute(
                _WALLET_CARD,
                {"b_user_id": user_id, "b_wallet_card_id": found[idempotency].effect_id},
            ).first()
            if bound is None:
                raise WalletError("not_found", "the card is no longer bound", status=404)
            return _wallet_card(bound)
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
            if idempotency is not None:
                bind_effects(connection, {idempotency: Effect("wallet_card", int(wallet_card_id))},
                             now_ns=now)  # fmt: skip
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
# Bound cards with their issuer's records and the issuers' names, in one query.
_BOUND_CARDS: sa.Select[tuple[object, ...]] = (
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
    .where(_BOUND)
)
_WALLET_CARDS = _BOUND_CARDS.where(wallet_cards.c.user_id == _B_USER_ID)
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


# -- issuer enrolment -------------------------------------------------------------------------
ENROL_BATCH_MAX = 5_000  # cards per enrol_cards call
IN_LIST_MAX = 500  # values per IN (...) list read by enrol_cards
ENROL_ATTEMPTS_MAX = 3  # a network token drawn twice fails the transaction; drawn again

_CARDS_BY_ID = sa.select(cards).where(cards.c.id.in_(sa.bindparam("b_card_ids", expanding=True)))
_HOLDERS_BY_PHONE = sa.select(
    wallet_users.c.id,
    wallet_users.c.phone,
    wallet_users.c.name,
    wallet_users.c.id_fingerprint,
    wallet_users.c.real_name_verified,
).where(wallet_users.c.phone.in_(sa.bindparam("b_phones", expanding=True)))
_BUMP_USERS = (
    wallet_users.update()
    .where(wallet_users.c.id == _B_USER_ID)
    .values(cards_version=wallet_users.c.cards_version + 1)
)
_BOUND_CARDS_OF_USERS = _BOUND_CARDS.where(
    wallet_cards.c.user_id.in_(sa.bindparam("b_user_ids", expanding=True))
).order_by(wallet_cards.c.id)
_NETWORK_TOKEN_BIN = sa.select(institutions.c.token_bin).where(
    institutions.c.kind == InstitutionKind.NETWORK.value
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
        raise WalletError("batch_too_large", f"at most {ENROL_BATCH_MAX} cards per batch")
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
    now = _now(platform)
    with platform.engine.begin() as connection:  # a refusal rolls everything back
        found = {
            int(row.id): card_from_row(row)
            for chunk in _chunks(sorted(set(card_ids)))
            for row in connection.execute(_CARDS_BY_ID, {"b_card_ids": chunk})
        }
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
            _wallet_card(row)
            for chunk in _chunks(user_ids)
            for row in connection.execute(_BOUND_CARDS_OF_USERS, {"b_user_ids": chunk})
        ]
        held = Counter(c.user_id for c in in_wallets)
        enrolled = {(c.user_id, c.card.id): c for c in in_wallets}
        wanted: list[tuple[int, int]] = []  # (holder, card) per requested card
        new: dict[tuple[int, int], Card] = {}  # the ones to bind, in batch order
        for index, card_id in enumerate(card_ids):
            card = found.get(card_id)
            if card is None or card.issuer_id != issuer.id:
                raise WalletError("not_found", "no such card of yours", status=404, index=index)
            if is_expired(card.expiry, now):
                raise WalletError("card_expired", "the card has expired", index=index)
            if card.status is CardStatus.CLOSED:
                raise WalletError("card_closed", "the card is closed", index=index)
            holder = holders.get(card.phone)
            if holder is None:
                message = "no wallet has this card's phone"
                raise WalletError("wallet_not_found", message, status=404, index=index)
            if (card.holder_name, card.holder_id_fingerprint) != (
                holder.name,
                bytes(holder.id_fingerprint),
            ):
                message = "the card holder is not the account holder"
                raise WalletError("real_name_mismatch", message, index=index)
            key = (int(holder.id), card.id)
            wanted.append(key)
            if key in enrolled or key in new:
                continue  # in the wallet already, or earlier in this batch
            held[key[0]] += 1
            if held[key[0]] > CARDS_MAX:
                message = f"a wallet holds at most {CARDS_MAX} cards"
                raise WalletError("too_many_cards", message, index=index)
            new[key] = card
        # The checks are done: from here on the batch is written.
        if new:
            with_default = {c.user_id for c in in_wallets if c.is_default}
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
    token_bin = connection.execute(_NETWORK_TOKEN_BIN).scalar()
    tokens = record_tokens(
        platform=platform,
        connection=connection,
        card_ids=[card_id for _, card_id in pairs],
        token_bin=token_bin,
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
    if unverified:
        connection.execute(_SET_VERIFIED, [{"b_user_id": u} for u in unverified])
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
