"""``/v1/transit``: rider credentials (wallet users), gate trust and tap uploads (operators'
gates, with the operator merchant's API key), trips and disputes (riders), ridership (operators)
and the settle batch (the network's admin).

A tap upload carries no Idempotency-Key: it is idempotent by itself, per (gate, seq), and a
gate's retry carries its clock at the retry (a different body under the same key would be
refused).
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Path, Query

from flashpay.api.deps import CurrentMerchant, CurrentNetworkAdmin, CurrentUser, ServicesDep
from flashpay.platform import Platform
from flashpay.transit import credentials, denylist, settle, uploads, views
from flashpay.transit.debits import DebitStatus
from flashpay.transit.definition import TransitDefinition, load_definition
from flashpay.transit.errors import TransitError, TransitRefusal
from flashpay.transit.fares import Network
from flashpay.transit.schemas import (
    CredentialIn,
    CredentialOut,
    DisputeIn,
    RidershipOut,
    SettleOut,
    TapOut,
    TripOut,
    TrustOut,
    UploadIn,
    UploadOut,
)
from flashpay.transit.trips import TapKind

router = APIRouter(prefix="/v1/transit", tags=["transit"])
GateId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]


@functools.lru_cache(maxsize=1)
def definition() -> TransitDefinition:
    return load_definition()


def _operated(platform: Platform, merchant_id: int) -> Network:
    with platform.engine.connect() as connection:
        ops = credentials.operators(connection)
    for network, operator in ops.items():
        if operator == merchant_id:
            return network
    raise TransitError(TransitRefusal.NOT_OPERATOR, "the caller operates no transit network")


@router.post("/credentials", status_code=201, response_model=CredentialOut)
def issue(body: CredentialIn, caller: CurrentUser, platform: ServicesDep) -> CredentialOut:
    """A rider credential for one of the caller's bound cards and the app's device key."""
    tokens = views.tokens_of_user(
        platform=platform, user_id=caller.id, wallet_card_ids=[body.wallet_card_id]
    )
    if not tokens:
        raise TransitError(TransitRefusal.UNKNOWN_TOKEN, "no such card of yours")
    issued = credentials.issue_credential(
        platform=platform,
        definition=definition(),
        token=tokens[0],
        device_public_key=bytes.fromhex(body.device_public_key),
        ride_credit_limit_minor=body.ride_credit_limit_minor,
        user_id=caller.id,
        concession=body.concession,
    )
    return CredentialOut(
        serial=issued.serial, credential=issued.credential.hex(), expires_at_s=issued.expires_at_s
    )


@router.get("/gate-trust", response_model=TrustOut)
def trust(caller: CurrentMerchant, platform: ServicesDep) -> TrustOut:
    """What a gate needs to verify ride codes offline (refreshed whenever it is online)."""
    _operated(platform, caller.id)
    snap = denylist.gate_trust(platform=platform)
    return TrustOut(
        network_id=snap.network_id.hex(),
        network_keys={k: v.hex() for k, v in snap.network_keys.items()},
        deny_version=snap.deny.version,
        deny_digest=snap.deny.digest.hex(),
        denied_tokens=list(snap.denied_tokens),
        revoked_serials=list(snap.revoked_serials),
    )


@router.post("/gates/{gate_id}/taps", response_model=UploadOut)
def upload(
    gate_id: GateId, body: UploadIn, caller: CurrentMerchant, platform: ServicesDep
) -> UploadOut:
    """A batch of a gate's journal; a tap already uploaded is not counted again."""
    _operated(platform, caller.id)
    taps = [
        uploads.UploadedTap(
            t.seq,
            t.token,
            t.station,
            TapKind(t.kind),
            t.at_ns,
            bytes.fromhex(t.digest),
            t.deny_version,
        )
        for t in body.taps
    ]
    result = uploads.record_taps(
        platform=platform, gate_id=gate_id, gate_clock_ns=body.gate_clock_ns, taps=taps
    )
    return UploadOut(received=result.received, new=result.new)


def _trip_out(view: views.TripView) -> TripOut:
    return TripOut(
        **{k: getattr(view, k) for k in TripOut.model_fields if k != "taps"},
        taps=[
            TapOut(gate_id=g, seq=s, station=st, kind=k, at_ns=a) for g, s, st, k, a in view.taps
        ],
    )


@router.get("/trips", response_model=list[TripOut])
def my_trips(
    caller: CurrentUser,
    platform: ServicesDep,
    wallet_card_id: Annotated[int, Query(ge=1)],
    limit: Annotated[int, Query(ge=1, le=views.TRIPS_PAGE_MAX)] = 50,
) -> list[TripOut]:
    """The caller's trips on one card, newest first: taps, fare, discounts, debit."""
    tokens = views.tokens_of_user(
        platform=platform, user_id=caller.id, wallet_card_ids=[wallet_card_id]
    )
    if not tokens:  # someone else's card is a 404, as at /credentials (not an empty list)
        raise TransitError(TransitRefusal.UNKNOWN_TOKEN, "no such card of yours")
    return [_trip_out(v) for v in views.rider_trips(platform=platform, tokens=tokens, limit=limit)]


@router.post("/trips/{trip_id}/dispute", response_model=TripOut)
def dispute(
    trip_id: Annotated[int, Path(ge=1)],
    body: DisputeIn,
    caller: CurrentUser,
    platform: ServicesDep,
    wallet_card_id: Annotated[int, Query(ge=1)],
) -> TripOut:
    """A forgotten tap-out: the trip priced as ending at ``to_station``, the difference refunded."""
    tokens = views.tokens_of_user(
        platform=platform, user_id=caller.id, wallet_card_ids=[wallet_card_id]
    )
    view = views.dispute_trip(
        platform=platform,
        definition=definition(),
        tokens=tokens,
        trip_id=trip_id,
        to_station=body.to_station,
    )
    return _trip_out(view)


@router.get("/operator/ridership", response_model=list[RidershipOut])
def ridership(caller: CurrentMerchant, platform: ServicesDep) -> list[RidershipOut]:
    """The caller's network: trips and revenue per line, station and hour."""
    network = _operated(platform, caller.id)
    rows = views.operator_report(platform=platform, definition=definition(), network=network)
    return [
        RidershipOut(
            line=r.line,
            station=r.station,
            hour=r.hour,
            trips=r.trips,
            revenue_minor=r.revenue_minor,
        )
        for r in rows
    ]


@router.post("/settle", response_model=SettleOut)
def run_settle(caller: CurrentNetworkAdmin, platform: ServicesDep) -> SettleOut:
    """Match and price the uploaded taps, post the deferred debits (the network's batch)."""
    del caller
    report = settle.settle(platform=platform, definition=definition())
    return SettleOut(
        taps=report.taps,
        trips=report.trips,
        set_aside=report.set_aside,
        fares_minor=report.fares_minor,
        cap_discount_minor=report.cap_discount_minor,
        debits_posted=sum(d.status is DebitStatus.POSTED for d in report.debits),
        debits_failed=sum(d.status is DebitStatus.FAILED for d in report.debits),
    )
