"""What riders and operators see: a rider's trips (taps, fare, discounts, the debit), a dispute
of a forgotten tap-out, and an operator's ridership and revenue per line, station and hour.

A dispute names the station the rider left at; the trip is priced again as the complete trip
it was (never above the max fare it was charged) and the difference goes back to the card as a
reversing chain of the debit's legs (``payments.legs.purchase_legs`` of the difference, debits
and credits swapped), with ledger ids derived from the trip, so a retried dispute refunds once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.cards.service import get_card
from flashpay.errors import InvariantError
from flashpay.institutions.chart import LEDGER_CNY, TransferCode
from flashpay.ledger import Transfer, TransferFlags
from flashpay.ledger.ids import derive_id
from flashpay.merchants.service import get_merchant
from flashpay.payments.legs import chain_refusal, post_chains, purchase_legs
from flashpay.payments.receipts import commitment
from flashpay.platform import Platform
from flashpay.transit.debits import DebitStatus
from flashpay.transit.definition import TransitDefinition
from flashpay.transit.errors import TransitError, TransitRefusal
from flashpay.transit.fares import CHINA_OFFSET_SECONDS, Leg, Network, Pricer
from flashpay.transit.models import transit_debits, transit_taps, transit_trips
from flashpay.transit.trips import TripStatus
from flashpay.wallet.payers import bound_cards

TRIPS_PAGE_MAX = 200
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class TripView:
    id: int
    network: str
    status: str
    from_station: str | None
    to_station: str | None
    started_at_ns: int
    base_minor: int
    transfer_discount_minor: int
    concession_discount_minor: int
    cap_discount_minor: int
    fare_minor: int
    disputed: bool
    debit_status: str | None
    taps: tuple[tuple[str, int, str, str, int], ...]  # gate, seq, station, kind, at_ns


def rider_trips(*, platform: Platform, tokens: list[str], limit: int = 50) -> list[TripView]:
    """The latest trips of the rider's tokens, newest first, with their taps and debit."""
    with platform.engine.connect() as connection:
        trips = list(
            connection.execute(
                sa.select(transit_trips, transit_debits.c.status.label("debit_status"))
                .outerjoin(transit_debits, transit_debits.c.id == transit_trips.c.debit_id)
                .where(transit_trips.c.token.in_(tokens))
                .order_by(transit_trips.c.started_at_ns.desc())
                .limit(min(limit, TRIPS_PAGE_MAX))
            )
        )
        taps: dict[int, list[tuple[str, int, str, str, int]]] = defaultdict(list)
        for r in connection.execute(
            sa.select(transit_taps).where(transit_taps.c.trip_id.in_([int(t.id) for t in trips]))
        ):
            taps[int(r.trip_id)].append(
                (str(r.gate_id), int(r.seq), str(r.station), str(r.kind), int(r.corrected_at_ns))
            )
    return [
        TripView(
            int(t.id),
            t.network,
            t.status,
            t.from_station,
            t.to_station,
            int(t.started_at_ns),
            int(t.base_minor),
            int(t.transfer_discount_minor),
            int(t.concession_discount_minor),
            int(t.cap_discount_minor),
            int(t.fare_minor),
            bool(t.disputed),
            t.debit_status,
            tuple(sorted(taps[int(t.id)], key=lambda x: x[4])),
        )
        for t in trips
    ]


def tokens_of_user(*, platform: Platform, user_id: int, wallet_card_ids: list[int]) -> list[str]:
    with platform.engine.connect() as connection:
        bound = bound_cards(connection, wallet_card_ids=wallet_card_ids)
    return [b.token for b in bound if b.user_id == user_id]


def dispute_trip(
    *,
    platform: Platform,
    definition: TransitDefinition,
    tokens: list[str],
    trip_id: int,
    to_station: str,
) -> TripView:
    """Re-price a trip without a tap-out as ending at ``to_station``; refund the difference."""
    if to_station not in definition.stations:
        raise TransitError(TransitRefusal.UNKNOWN_STATION, to_station)
    with platform.engine.connect() as connection:
        trip = connection.execute(
            sa.select(
                transit_trips,
                transit_debits.c.status.label("debit_status"),
                transit_debits.c.merchant_id,
                transit_debits.c.card_id,
                transit_debits.c.salt,
            )
            .outerjoin(transit_debits, transit_debits.c.id == transit_trips.c.debit_id)
            .where(transit_trips.c.id == trip_id, transit_trips.c.token.in_(tokens))
        ).first()
    if trip is None:
        raise TransitError(TransitRefusal.TRIP_NOT_FOUND, "no such trip of yours")
    if trip.status != TripStatus.NO_TAP_OUT.value or trip.disputed:
        raise TransitError(TransitRefusal.NOT_DISPUTABLE, "only a trip without a tap-out")
    leg = Leg(Network.SUBWAY, trip.from_station, to_station, int(trip.started_at_ns))
    fare = Pricer(definition.fares).leg_fare(leg)
    fair = min(int(trip.fare_minor), int(trip.base_minor) if fare is None else fare)
    refund = int(trip.fare_minor) - fair
    if refund > 0 and trip.debit_status == DebitStatus.POSTED.value:
        # the refund first (its ids derive from the trip: a retry posts it once), then the trip
        _refund(
            platform, trip_id, int(trip.card_id), int(trip.merchant_id), bytes(trip.salt), refund
        )
    with platform.engine.begin() as connection:
        connection.execute(
            transit_trips.update()
            .where(transit_trips.c.id == trip_id)
            .values(to_station=to_station, fare_minor=fair, disputed=True)
        )
    [view] = [
        v
        for v in rider_trips(platform=platform, tokens=tokens, limit=TRIPS_PAGE_MAX)
        if v.id == trip_id
    ]
    return view


def _refund(
    platform: Platform, trip_id: int, card_id: int, merchant_id: int, salt: bytes, refund: int
) -> None:
    card = get_card(platform=platform, card_id=card_id)
    merchant = get_merchant(platform=platform, merchant_id=merchant_id)
    if card is None or merchant is None:
        raise InvariantError("a debited trip's card and operator exist")
    kept = [leg for leg in purchase_legs(platform, card, merchant, refund) if leg[2] > 0]
    chain = [
        Transfer(
            derive_id("flashpay.transit.dispute", f"{trip_id}:{n}"),
            credit,
            debit,
            amount,
            LEDGER_CNY,
            TransferCode.PURCHASE,
            flags=TransferFlags.LINKED if n < len(kept) - 1 else TransferFlags.NONE,
            user_data_64=trip_id,
        )
        for n, (debit, credit, amount) in enumerate(kept)
    ]
    marker = commitment(salt, "flashpay.transit.dispute.v1", trip_id, refund)
    [result] = post_chains(platform, [chain], {chain[0].id: marker})
    if chain_refusal(result) is not None:
        raise InvariantError(f"the refund of trip {trip_id} was refused: {result}")


@dataclass(frozen=True, slots=True)
class RidershipRow:
    line: str
    station: str
    hour: int  # China time, 0–23
    trips: int
    revenue_minor: int


def operator_report(
    *, platform: Platform, definition: TransitDefinition, network: Network
) -> list[RidershipRow]:
    """Trips and fares by the line and station they started at, and the hour (China time).

    The database groups (one row per station and hour, however many trips); only the line, a
    property of the station in the fare definition, is looked up here."""
    station = sa.func.coalesce(transit_trips.c.from_station, transit_trips.c.to_station)
    hour = ((transit_trips.c.started_at_ns + CHINA_OFFSET_SECONDS * NS) // (3600 * NS)) % 24
    buckets: dict[tuple[str, str, int], list[int]] = {}
    with platform.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                station.label("station"),
                hour.label("hour"),
                sa.func.count(),
                sa.func.sum(transit_trips.c.fare_minor),
            )
            .where(transit_trips.c.network == network.value)
            .group_by(station, hour)
        )
        for name, at_hour, trips, revenue in rows:
            key = str(name)
            line = definition.stations[key].line if key in definition.stations else "?"
            buckets[(line, key, int(at_hour))] = [int(trips), int(revenue or 0)]
    return [RidershipRow(k[0], k[1], k[2], v[0], v[1]) for k, v in sorted(buckets.items())]
