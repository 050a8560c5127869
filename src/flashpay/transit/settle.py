"""The network's transit batch: uploaded taps → trips → fares → deferred debits.

``settle`` reads every tap not yet matched (and those left pending by the last batch), matches
and prices them (``trips``), records the trips and, per rider, China day and operator, one
pending debit, all in one transaction (commit point: after it the taps are matched exactly
once); then it posts the debits (``debits.post_debits``), which is idempotent and is also
retried for any debit a crash left pending.

The caps count what a rider paid earlier: the fares of the rider's recorded trips of the last
seven days go in as ``spent_by_day``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.platform import Platform
from flashpay.transit.credentials import operators, riders
from flashpay.transit.debits import DebitOutcome, post_debits, record_debits, unsettled_debits
from flashpay.transit.definition import TransitDefinition
from flashpay.transit.errors import TransitError, TransitRefusal
from flashpay.transit.fares import Network, Pricer, china_day
from flashpay.transit.models import transit_taps, transit_trips
from flashpay.transit.trips import SetAside, Tap, TapKind, match_trips, price_trips

SETTLE_TAPS_MAX = 2_000_000


@dataclass(frozen=True, slots=True)
class SettleReport:
    taps: int  # read this batch (replays of earlier batches included)
    trips: int
    set_aside: dict[str, int]
    fares_minor: int
    cap_discount_minor: int
    debits: tuple[DebitOutcome, ...]


def _already_matched(connection: sa.Connection, taps: list[Tap]) -> set[tuple[bytes, TapKind]]:
    digests = sorted({t.digest for t in taps})
    found: set[tuple[bytes, TapKind]] = set()
    for start in range(0, len(digests), 1000):
        for digest, kind in connection.execute(
            sa.select(transit_taps.c.digest, transit_taps.c.kind).where(
                transit_taps.c.digest.in_(digests[start : start + 1000]),
                transit_taps.c.trip_id.is_not(None),
            )
        ):
            found.add((bytes(digest), TapKind(kind)))
    return found


def settle(*, platform: Platform, definition: TransitDefinition) -> SettleReport:
    now = platform.clock.now_ns()
    pricer = Pricer(definition.fares)
    with platform.engine.begin() as connection:
        rows = list(
            connection.execute(
                sa.select(transit_taps)
                .where(
                    transit_taps.c.trip_id.is_(None),
                    sa.or_(
                        transit_taps.c.set_aside.is_(None),
                        transit_taps.c.set_aside == SetAside.PENDING.value,
                    ),
                )
                .limit(SETTLE_TAPS_MAX)
            )
        )
        taps = [
            Tap(
                str(r.token),
                int(r.corrected_at_ns),
                str(r.gate_id),
                int(r.seq),
                str(r.station),
                TapKind(r.kind),
                bytes(r.digest),
            )
            for r in rows
        ]
        # a code already charged in an earlier batch (a replay uploaded late) counts not again
        charged = _already_matched(connection, taps)
        replays = [t for t in taps if (t.digest, t.kind) in charged]
        taps = [t for t in taps if (t.digest, t.kind) not in charged]
        matched = match_trips(taps, closes_at_ns=now)
        matched = dataclasses.replace(
            matched, set_aside=matched.set_aside + tuple((t, SetAside.REPLAY) for t in replays)
        )
        tokens = sorted({t.token for t in taps})
        known = riders(connection, tokens)
        first_day = min((china_day(t.at_ns) for t in taps), default=0) - 7
        spent: dict[str, dict[int, int]] = defaultdict(dict)
        for token, day, fare in connection.execute(
            sa.select(
                transit_trips.c.token, transit_trips.c.day, sa.func.sum(transit_trips.c.fare_minor)
            )
            .where(transit_trips.c.token.in_(tokens), transit_trips.c.day >= first_day)
            .group_by(transit_trips.c.token, transit_trips.c.day)
        ):
            spent[str(token)][int(day)] = int(fare)
        priced = price_trips(
            pricer,
            [t for t in matched.trips if t.token in known],
            concession_of={k: v[1] for k, v in known.items()},
            spent_of=spent,
        )
        ops = operators(connection)
        for network in {p.trip.network for p in priced}:
            if network not in ops:
                raise TransitError(TransitRefusal.NO_OPERATOR, f"no operator for {network}")
        first_id = (
            int(
                connection.execute(
                    sa.select(sa.func.coalesce(sa.func.max(transit_trips.c.id), 0))
                ).scalar_one()
            )
            + 1
        )
        groups: dict[tuple[str, int, Network], list[int]] = defaultdict(list)
        trip_rows, tap_updates = [], []
        for n, p in enumerate(priced):
            trip_id = first_id + n
            trip, price = p.trip, p.price
            trip_rows.append(
                {
                    "id": trip_id,
                    "token": trip.token,
                    "network": trip.network.value,
                    "status": trip.status.value,
                    "from_station": trip.from_station,
                    "to_station": trip.to_station,
                    "started_at_ns": trip.started_at_ns,
                    "day": price.day,
                    "base_minor": price.base_minor,
                    "transfer_discount_minor": price.transfer_discount_minor,
                    "concession_discount_minor": price.concession_discount_minor,
                    "cap_discount_minor": price.cap_discount_minor,
                    "fare_minor": price.fare_minor,
                    "disputed": False,
                    "debit_id": None,
                }
            )
            tap_updates += [
                {"b_gate": t.gate_id, "b_seq": t.seq, "b_trip": trip_id, "b_aside": None}
                for t in trip.taps
            ]
            groups[(trip.token, price.day, trip.network)].append(n)
        tap_updates += [
            {"b_gate": t.gate_id, "b_seq": t.seq, "b_trip": None, "b_aside": why.value}
            for t, why in matched.set_aside
        ]
        if trip_rows:
            connection.execute(transit_trips.insert(), trip_rows)
        if tap_updates:
            connection.execute(
                transit_taps.update()
                .where(
                    transit_taps.c.gate_id == sa.bindparam("b_gate"),
                    transit_taps.c.seq == sa.bindparam("b_seq"),
                )
                .values(trip_id=sa.bindparam("b_trip"), set_aside=sa.bindparam("b_aside")),
                tap_updates,
            )
        keys = [k for k in groups if sum(priced[n].price.fare_minor for n in groups[k]) > 0]
        debit_ids = record_debits(
            connection,
            groups=[
                (
                    token,
                    known[token][0],
                    ops[network],
                    day,
                    sum(priced[n].price.fare_minor for n in groups[(token, day, network)]),
                )
                for token, day, network in keys
            ],
            now_ns=now,
        )
        for key, debit_id in zip(keys, debit_ids, strict=True):
            connection.execute(
                transit_trips.update()
                .where(transit_trips.c.id.in_([first_id + n for n in groups[key]]))
                .values(debit_id=debit_id)
            )
    # commit point: the taps are matched and the debits recorded; posting is idempotent
    outcomes = post_debits(platform=platform, debit_ids=unsettled_debits(platform=platform))
    aside: dict[str, int] = defaultdict(int)
    for _, why in matched.set_aside:
        aside[why.value] += 1
    return SettleReport(
        taps=len(rows),
        trips=len(priced),
        set_aside=dict(aside),
        fares_minor=sum(p.price.fare_minor for p in priced),
        cap_discount_minor=sum(p.price.cap_discount_minor for p in priced),
        debits=tuple(outcomes),
    )
