"""The payment PIN: set it (the login password authorizes it), check it, count wrong tries.

The six-digit PIN is stored as Argon2id of an HMAC of the PIN under the network's key: a PIN has
only a million values, so what stops an offline search is the key, which the database does not
hold; the hash cost is kept low enough for a PIN check on every payment (decision 0008).

Payments check the PIN inside their own reads and transactions, so the check is split in three:
``pin_state_columns`` (what to read with the payment's data), ``check_pin`` (the verdict, nothing
written) and ``record_pin_check`` (its consequence, in the payment's transaction);
``pin_state_after`` lets a batch count tries in order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.platform import Platform
from flashpay.wallet import throttle
from flashpay.wallet.errors import WalletError, WalletRefusal
from flashpay.wallet.models import wallet_users
from flashpay.wallet.policy import PIN, PIN_LOCK_SECONDS, PIN_TRIES_MAX
from flashpay.wallet.sessions import charge_password_check

_pins = PasswordHasher(time_cost=1, memory_cost=2_048, parallelism=1)  # ~1 ms; decision 0008


class PinCheck(StrEnum):
    OK = "ok"
    NOT_SET = "pin_not_set"
    LOCKED = "pin_locked"
    WRONG = "wrong_pin"


@dataclass(frozen=True, slots=True)
class PinState:
    """What a PIN check needs from the user's row (read with the rest of a payment's data)."""

    user_id: int
    pin_hash: str | None
    pin_failures: int
    pin_locked_until_ns: int | None


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
    charge_password_check(platform, [(account, throttle.ACCOUNT)])
    try:
        platform.password_policy.hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        raise WalletError(WalletRefusal.WRONG_PASSWORD, "the password is wrong") from exc
    with autocommit(platform.engine) as connection:
        throttle.cleared(connection, account=account)


def set_pin(*, platform: Platform, user_id: int, pin: str, password: str) -> None:
    """Set or change the payment PIN; the login password authorizes it. Clears a lock."""
    if not PIN.match(pin):
        raise WalletError(WalletRefusal.INVALID_PIN, "a payment PIN is six digits")
    if len(set(pin)) == 1 or pin in ("123456", "654321"):
        raise WalletError(
            WalletRefusal.WEAK_PIN, "choose a PIN that is not all one digit or a sequence"
        )
    check_password(platform=platform, user_id=user_id, password=password)
    pin_hash = _pins.hash(_peppered(platform, user_id, pin))
    with autocommit(platform.engine) as connection:  # one statement: atomic on its own
        connection.execute(_SET_PIN, {"b_user_id": user_id, "b_pin_hash": pin_hash})


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
    locked_until = state.pin_locked_until_ns
    if locked_until is not None and locked_until > platform.clock.now_ns():
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
        locked_until = platform.clock.now_ns() + PIN_LOCK_SECONDS * NS_PER_SECOND
        connection.execute(
            wallet_users.update()
            .where(wallet_users.c.id == state.user_id)
            .values(pin_failures=0, pin_locked_until_ns=locked_until)
        )
    return verdict
