"""The network side of ride codes: operators, issuing and revoking rider credentials.

A credential is issued to a wallet for one bound card (by its network token) and one device key,
for ``CREDENTIAL_SECONDS`` (a day). The ride-credit limit must cover the daily cap: a rider whose
debit fails is deny-listed and gets no new credential, so what a rider can owe unpaid is what one
credential's day of riding costs, at most the daily cap, at most the limit (decision 0022).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from flashpay.institutions.service import network_code
from flashpay.merchants.service import Merchant, Scene, get_merchant
from flashpay.platform import Platform
from flashpay.transit import codes
from flashpay.transit.definition import TransitDefinition
from flashpay.transit.errors import TransitError, TransitRefusal
from flashpay.transit.fares import Network
from flashpay.transit.models import transit_credentials, transit_deny, transit_operators
from flashpay.transit.signing import ACTIVE_KEY_ID, signing_key
from flashpay.wallet.payers import bound_cards

CREDENTIAL_SECONDS = 86_400
RIDE_CREDIT_LIMIT_MAX = 100_000  # ¥1,000
NS = 1_000_000_000
_SCENES = {Network.SUBWAY: Scene.SUBWAY, Network.BUS: Scene.BUS}


def register_operator(*, platform: Platform, network: Network, merchant_id: int) -> Merchant:
    """Make a merchant (of the bus or subway scene) the operator of ``network``."""
    merchant = get_merchant(platform=platform, merchant_id=merchant_id)
    if merchant is None or merchant.scene is not _SCENES[network]:
        raise TransitError(TransitRefusal.NO_OPERATOR, f"merchant {merchant_id} is no {network}")
    with platform.engine.begin() as connection:
        connection.execute(transit_operators.delete().where(transit_operators.c.network == network))
        connection.execute(
            transit_operators.insert().values(network=network, merchant_id=merchant_id)
        )
    return merchant


def operators(connection: sa.Connection) -> dict[Network, int]:
    rows = connection.execute(sa.select(transit_operators))
    return {Network(r.network): int(r.merchant_id) for r in rows}


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    serial: int
    credential: bytes  # the 132 bytes the wallet keeps and puts in every ride code
    expires_at_s: int


def issue_credential(
    *,
    platform: Platform,
    definition: TransitDefinition,
    token: str,
    device_public_key: bytes,
    ride_credit_limit_minor: int,
    user_id: int | None = None,
    concession: str | None = None,
) -> IssuedCredential:
    """Sign a credential for the card bound under ``token`` (the user's, when ``user_id`` is
    given). Refusals: ``TransitRefusal`` in check order."""
    with platform.engine.begin() as connection:
        bound = bound_cards(connection, tokens=[token])
        if not bound or (user_id is not None and bound[0].user_id != user_id):
            raise TransitError(TransitRefusal.UNKNOWN_TOKEN, "no card of yours has this token")
        try:
            Ed25519PublicKey.from_public_bytes(device_public_key)
        except ValueError:
            raise TransitError(TransitRefusal.BAD_DEVICE_KEY, "an Ed25519 public key") from None
        cap = definition.fares.daily_cap_minor
        if not cap <= ride_credit_limit_minor <= RIDE_CREDIT_LIMIT_MAX:
            raise TransitError(
                TransitRefusal.BAD_CREDIT_LIMIT,
                f"a ride-credit limit is {cap}–{RIDE_CREDIT_LIMIT_MAX}",
            )
        names = list(definition.fares.concessions)
        if concession is not None and concession not in names:
            raise TransitError(TransitRefusal.UNKNOWN_CONCESSION, f"{concession!r}")
        denied = connection.execute(
            sa.select(transit_deny.c.token).where(transit_deny.c.token == token)
        ).first()
        if denied is not None:
            raise TransitError(TransitRefusal.TOKEN_DENY_LISTED, "an unpaid ride debit")
        now_s = platform.clock.now_ns() // NS
        serial = secrets.randbits(62) + 1
        fields = codes.Credential(
            network_id=codes.network_id(network_code(platform=platform)),
            key_id=ACTIVE_KEY_ID,
            serial=serial,
            token=token,
            device_public_key=device_public_key,
            ride_credit_limit_minor=ride_credit_limit_minor,
            issued_at_s=now_s,
            expires_at_s=now_s + CREDENTIAL_SECONDS,
            concession=0 if concession is None else names.index(concession) + 1,
        )
        connection.execute(
            transit_credentials.insert().values(
                serial=serial,
                token=token,
                card_id=bound[0].card.id,
                device_public_key=device_public_key,
                ride_credit_limit_minor=ride_credit_limit_minor,
                concession=concession,
                issued_at_ns=now_s * NS,
                expires_at_ns=(now_s + CREDENTIAL_SECONDS) * NS,
                revoked=False,
            )
        )
    signed = codes.sign_credential(fields, signing_key(platform.keys))
    return IssuedCredential(serial, signed, fields.expires_at_s)


def revoke_credential(*, platform: Platform, serial: int) -> bool:
    """Revoke a credential (a lost phone): gates refuse its codes after their next refresh."""
    with platform.engine.begin() as connection:
        done = connection.execute(
            transit_credentials.update()
            .where(transit_credentials.c.serial == serial)
            .values(revoked=True)
        )
    return done.rowcount == 1


def riders(connection: sa.Connection, tokens: list[str]) -> dict[str, tuple[int, str | None, int]]:
    """Each token's (card id, concession, ride-credit limit) from its latest credential."""
    rows = connection.execute(
        sa.select(transit_credentials)
        .where(transit_credentials.c.token.in_(sorted(set(tokens))))
        .order_by(transit_credentials.c.issued_at_ns)
    )
    return {
        str(r.token): (int(r.card_id), r.concession, int(r.ride_credit_limit_minor)) for r in rows
    }
