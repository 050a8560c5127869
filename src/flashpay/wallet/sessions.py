"""Sessions: log in with phone and password, authenticate a bearer token, log out.

Passwords are Argon2id at the platform's ``PasswordPolicy`` (by default OWASP's minimum: 19 MiB,
2 passes); ``login`` re-hashes a password whose hash is not at the current policy
(``flashpay.passwords``, decision 0011). Session tokens are stored as SHA-256 (they have 256 bits,
so a fast hash is enough). Every password check is charged to the throttle before the slow hash
runs (``flashpay.wallet.throttle``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from argon2.exceptions import InvalidHashError, VerificationError

from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.platform import Platform
from flashpay.wallet import throttle
from flashpay.wallet.errors import WalletError, WalletRefusal, throttled
from flashpay.wallet.models import wallet_sessions, wallet_users
from flashpay.wallet.policy import SESSION_SECONDS, TOKEN_PREFIX


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    user_id: int
    expires_at_ns: int


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


def charge_password_check(
    platform: Platform, scopes: Sequence[tuple[str, throttle.Policy]]
) -> None:
    """Charge one password check to its scopes before the slow hash runs (``throttle``); a 429
    ``account_locked`` or ``too_many_attempts`` when no try is allowed now."""
    with platform.engine.begin() as connection:
        refusal = throttle.charge(connection, scopes=scopes, now_ns=platform.clock.now_ns())
    if refusal is not None:
        raise throttled(refusal)


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
    charge_password_check(platform, scopes)
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
        message = "wrong phone number or password"
        raise WalletError(WalletRefusal.INVALID_LOGIN, message) from exc
    rehashed = hasher.hash(password) if platform.password_policy.raises(row.password_hash) else None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = platform.clock.now_ns()
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
    if row is None or row.expires_at_ns <= platform.clock.now_ns():
        return None
    return int(row.user_id)


def logout(*, platform: Platform, token: str) -> None:
    with platform.engine.begin() as connection:
        connection.execute(
            wallet_sessions.delete().where(
                wallet_sessions.c.token_hash == hashlib.sha256(token.encode()).digest()
            )
        )
