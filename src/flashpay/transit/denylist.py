"""The deny list: tokens refused at every gate until their debt is paid, in numbered versions.

Every change (a token added after a failed debit, removed once paid) makes a new version whose
digest is ``SHA-256(previous digest ‖ version ‖ the sorted tokens, one per line)``: a hash chain,
so a version's digest pins the whole history. A gate reports the version it enforced with each
tap it uploads (``transit_taps.deny_version``), and each deferred debit's ledger chain commits to
the version in force when it was posted (its commitment, in the audit log's leaf): which list a
gate applied, and which the network charged under, can be proved afterwards.

``gate_trust`` is what a gate downloads when online: the network's id and public keys, the deny
list at its version and the revoked credential serials.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.institutions.service import network_code
from flashpay.platform import Platform
from flashpay.transit import codes
from flashpay.transit.models import transit_credentials, transit_deny, transit_deny_versions
from flashpay.transit.signing import public_keys

GENESIS_DIGEST = bytes(32)


@dataclass(frozen=True, slots=True)
class DenyVersion:
    version: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class TrustSnapshot:
    network_id: bytes
    network_keys: dict[int, bytes]
    deny: DenyVersion
    denied_tokens: tuple[str, ...]
    revoked_serials: tuple[int, ...]


def current_version(connection: sa.Connection) -> DenyVersion:
    row = connection.execute(
        sa.select(transit_deny_versions.c.version, transit_deny_versions.c.digest)
        .order_by(transit_deny_versions.c.version.desc())
        .limit(1)
    ).first()
    return (
        DenyVersion(0, GENESIS_DIGEST) if row is None else DenyVersion(int(row[0]), bytes(row[1]))
    )


def _new_version(connection: sa.Connection, now_ns: int) -> DenyVersion:
    previous = current_version(connection)
    tokens = sorted(str(t) for (t,) in connection.execute(sa.select(transit_deny.c.token)))
    version = previous.version + 1
    digest = hashlib.sha256(
        previous.digest + version.to_bytes(8, "big") + "".join(t + "\n" for t in tokens).encode()
    ).digest()
    connection.execute(
        transit_deny_versions.insert().values(
            version=version, digest=digest, tokens=len(tokens), created_at_ns=now_ns
        )
    )
    return DenyVersion(version, digest)


def deny_tokens(
    connection: sa.Connection, *, tokens: list[str], reason: str, now_ns: int
) -> DenyVersion | None:
    """Add tokens (in the caller's transaction); a new version if any was not listed yet."""
    listed = {
        str(t)
        for (t,) in connection.execute(
            sa.select(transit_deny.c.token).where(transit_deny.c.token.in_(sorted(set(tokens))))
        )
    }
    fresh = sorted(set(tokens) - listed)
    if not fresh:
        return None
    connection.execute(
        transit_deny.insert(), [{"token": t, "reason": reason, "since_ns": now_ns} for t in fresh]
    )
    return _new_version(connection, now_ns)


def allow_tokens(
    connection: sa.Connection, *, tokens: list[str], now_ns: int
) -> DenyVersion | None:
    """Remove tokens (their debt is paid); a new version if any was listed."""
    gone = connection.execute(
        transit_deny.delete().where(transit_deny.c.token.in_(sorted(set(tokens))))
    )
    return _new_version(connection, now_ns) if gone.rowcount else None


def gate_trust(*, platform: Platform) -> TrustSnapshot:
    now = platform.clock.now_ns()
    with platform.engine.connect() as connection:
        version = current_version(connection)
        tokens = tuple(
            sorted(str(t) for (t,) in connection.execute(sa.select(transit_deny.c.token)))
        )
        revoked = tuple(
            int(s)
            for (s,) in connection.execute(
                sa.select(transit_credentials.c.serial).where(
                    transit_credentials.c.revoked.is_(True),
                    transit_credentials.c.expires_at_ns > now - 3600 * 10**9,
                )
            )
        )
    keys = {k: codes.public_bytes(v) for k, v in public_keys(platform.keys).items()}
    return TrustSnapshot(
        codes.network_id(network_code(platform=platform)), keys, version, tokens, revoked
    )
