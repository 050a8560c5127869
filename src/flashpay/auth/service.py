"""Create, verify, list and revoke API keys.

Every function takes the runtime (``platform``: anything with an ``engine`` and a ``clock``, such
as ``flashpay.platform.Platform``) as its first keyword argument. Outcomes are values:
``verify_api_key`` returns the principal or ``None`` (unknown or revoked key — the caller answers
401 without saying which), ``revoke_api_key`` a ``RevokeOutcome``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from flashpay.auth.models import KEY_PREFIX_CHARS, api_keys
from flashpay.errors import RefusedError
from flashpay.idempotency import Effect, IdempotencyTag, bind_effects, find_effects
from flashpay.platform import Runtime  # what the auth service needs of a platform: engine, clock

API_KEY_PREFIX = "fpk_"
API_KEY_RANDOM_BYTES = 32
API_KEY_CHARS_MAX = 64  # "fpk_" + 43 Base64 characters; anything longer is not one of ours


class PrincipalKind(StrEnum):
    """Who an API key authenticates."""

    INSTITUTION = "institution"
    MERCHANT = "merchant"


class RevokeOutcome(StrEnum):
    """The result of ``revoke_api_key``, in check order."""

    REVOKED = "revoked"
    NOT_FOUND = "not_found"
    ALREADY_REVOKED = "already_revoked"


class AuthRefusal(StrEnum):
    """Why a request about API keys is refused (values are the API error codes)."""

    API_KEY_ALREADY_REVOKED = "api_key_already_revoked"


class AuthError(RefusedError):
    """A refused request about API keys (nothing changed)."""

    reason: AuthRefusal


@dataclass(frozen=True, slots=True)
class ApiKeyPrincipal:
    """The institution or merchant an API key belongs to."""

    key_id: int
    kind: PrincipalKind
    principal_id: int
    network_admin: bool = False


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    """A new key: ``key`` is the secret, shown once and never stored."""

    key_id: int
    key: str = field(repr=False)
    key_prefix: str
    kind: PrincipalKind
    principal_id: int
    network_admin: bool


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored key as listed (never the key itself)."""

    key_id: int
    key_prefix: str
    kind: PrincipalKind
    principal_id: int
    network_admin: bool
    created_at_ns: int
    revoked_at_ns: int | None


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def create_api_key(
    *, platform: Runtime, kind: PrincipalKind, principal_id: int, network_admin: bool = False
) -> CreatedApiKey:
    """Create a key for an institution or a merchant; the returned ``key`` is shown once.

    ``network_admin`` lets the key administer the network (API keys, the network definition); only
    institution keys (the network operator's) may carry it.
    """
    if principal_id <= 0:
        raise ValueError(f"principal_id must be positive, got {principal_id}")
    if network_admin and kind is not PrincipalKind.INSTITUTION:
        raise ValueError("only an institution key can administer the network")
    key = API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_RANDOM_BYTES)
    with platform.engine.begin() as connection:
        key_id = connection.execute(
            api_keys.insert()
            .values(
                key_hash=hash_api_key(key),
                key_prefix=key[:KEY_PREFIX_CHARS],
                principal_kind=kind.value,
                principal_id=principal_id,
                network_admin=network_admin,
                created_at_ns=platform.clock.now_ns(),
                revoked_at_ns=None,
            )
            .returning(api_keys.c.id)
        ).scalar_one()
    return CreatedApiKey(
        key_id=int(key_id),
        key=key,
        key_prefix=key[:KEY_PREFIX_CHARS],
        kind=kind,
        principal_id=principal_id,
        network_admin=network_admin,
    )


def replace_api_keys(*, platform: Runtime, kind: PrincipalKind, principal_id: int) -> CreatedApiKey:
    """Revoke every live key of the principal and create one: the key of a retried onboarding's
    answer (the first answer was never stored: it carries a secret). The retry gets a fresh key,
    and the one its first try may have received stops working."""
    with platform.engine.begin() as connection:
        connection.execute(
            api_keys.update()
            .where(
                api_keys.c.principal_kind == kind.value,
                api_keys.c.principal_id == principal_id,
                api_keys.c.revoked_at_ns.is_(None),
            )
            .values(revoked_at_ns=platform.clock.now_ns())
        )
    return create_api_key(platform=platform, kind=kind, principal_id=principal_id)


def verify_api_key(*, platform: Runtime, key: str) -> ApiKeyPrincipal | None:
    """The principal of an active key; ``None`` for an unknown, malformed or revoked key."""
    if not key.startswith(API_KEY_PREFIX) or len(key) > API_KEY_CHARS_MAX:
        return None
    # One statement in autocommit mode: one round trip, no BEGIN/ROLLBACK around it.
    with platform.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        row = connection.execute(
            sa.select(
                api_keys.c.id,
                api_keys.c.principal_kind,
                api_keys.c.principal_id,
                api_keys.c.network_admin,
            ).where(api_keys.c.key_hash == hash_api_key(key), api_keys.c.revoked_at_ns.is_(None))
        ).first()
    if row is None:
        return None
    return ApiKeyPrincipal(
        key_id=int(row.id),
        kind=PrincipalKind(row.principal_kind),
        principal_id=row.principal_id,
        network_admin=bool(row.network_admin),
    )


def revoke_api_key(
    *, platform: Runtime, key_id: int, idempotency: IdempotencyTag | None = None
) -> RevokeOutcome:
    """Revoke a key by id; later requests with it get 401. A retry whose key is bound to this
    revocation (its first answer lost in a crash) is ``REVOKED`` again, not a second revoke."""
    with platform.engine.begin() as connection:
        if idempotency is not None and find_effects(connection, [idempotency]):
            return RevokeOutcome.REVOKED
        now = platform.clock.now_ns()
        revoked = connection.execute(
            api_keys.update()
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at_ns.is_(None))
            .values(revoked_at_ns=now)
        ).rowcount
        if revoked == 1:
            if idempotency is not None:
                bind_effects(connection, {idempotency: Effect("api_key_revocation", key_id)},
                             now_ns=now)  # fmt: skip
            return RevokeOutcome.REVOKED
        exists = connection.execute(sa.select(api_keys.c.id).where(api_keys.c.id == key_id)).first()
    return RevokeOutcome.NOT_FOUND if exists is None else RevokeOutcome.ALREADY_REVOKED


def get_api_key(*, platform: Runtime, key_id: int) -> ApiKeyRecord | None:
    """One stored key by id (prefix and owner only), ``None`` if there is no such key."""
    with platform.engine.connect() as connection:
        row = connection.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
    return None if row is None else _record(row)


def list_api_keys(
    *,
    platform: Runtime,
    kind: PrincipalKind | None = None,
    principal_id: int | None = None,
    after_key_id: int = 0,
    limit: int | None = None,
) -> tuple[ApiKeyRecord, ...]:
    """Stored keys (prefix and owner only) in id order, optionally for one principal or a page."""
    query = sa.select(api_keys).where(api_keys.c.id > after_key_id).order_by(api_keys.c.id)
    if limit is not None:
        query = query.limit(limit)
    if kind is not None:
        query = query.where(api_keys.c.principal_kind == kind.value)
    if principal_id is not None:
        query = query.where(api_keys.c.principal_id == principal_id)
    with platform.engine.connect() as connection:
        rows = connection.execute(query).all()
    return tuple(_record(row) for row in rows)


def _record(row: sa.Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=int(row.id),
        key_prefix=row.key_prefix,
        kind=PrincipalKind(row.principal_kind),
        principal_id=row.principal_id,
        network_admin=bool(row.network_admin),
        created_at_ns=row.created_at_ns,
        revoked_at_ns=row.revoked_at_ns,
    )
