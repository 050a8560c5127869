"""Taps into trips, and trips into fares: the network's batch, pure Python over sorted taps.

``match_trips`` takes a batch of taps (any order, any riders) and returns each rider's trips and
the taps it set aside. The rules, in the order they apply to one rider's taps sorted by time:

1. **Replays across gates**: the same code (by digest) used twice for the same kind of tap
   (two gates both offline both accepted it) counts once; the later tap is flagged ``replay``
   and charged nothing.
2. **Double taps**: a second tap of the same kind at the same station within
   ``DOUBLE_TAP_SECONDS`` (a rider who tapped again because the gate was slow) is ``double``.
3. **Clock drift**: gates' clocks drift by minutes, so a tap-out may sort *before* its tap-in
   when a trip is short. A tap-out with no open tap-in, followed within ``CLOCK_SKEW_SECONDS``
   by a tap-in at another station, is matched with that tap-in (the pair is swapped).
4. **Subway**: a tap-in and the next tap-out within ``TRIP_SECONDS_MAX`` make a trip; a tap-in
   followed by another tap-in, or left open when the batch closes (``closes_at_ns``), is
   ``no_tap_out``; a tap-out with no tap-in is ``no_tap_in``; both cost the max fare (the rider
   may dispute a forgotten tap-out). A tap-in still open and younger than the batch's close is
   left ``pending`` for the next batch.
5. **Bus**: one tap, one trip at the flat fare.

A trip counts toward the caps of the China day it started (a trip across midnight belongs to the
evening it began). ``price_trips`` prices each rider's trips in order with ``fares.Pricer``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from flashpay.transit.fares import Leg, Network, PricedLeg, Pricer

NS = 1_000_000_000
DOUBLE_TAP_SECONDS = 120
CLOCK_SKEW_SECONDS = 300
TRIP_SECONDS_MAX = 4 * 3600


class TapKind(StrEnum):
    IN = "in"
    OUT = "out"
    BOARD = "board"  # a bus: one tap


class TripStatus(StrEnum):
    COMPLETE = "complete"
    BUS = "bus"
    NO_TAP_OUT = "no_tap_out"
    NO_TAP_IN = "no_tap_in"


class SetAside(StrEnum):
    REPLAY = "replay"
    DOUBLE = "double"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Tap:
    token: str
    at_ns: int  # the network's time of the tap (the gate's clock, corrected at upload)
    gate_id: str
    seq: int
    station: str
    kind: TapKind
    digest: bytes  # the ride code's digest (codes.code_digest)


@dataclass(frozen=True, slots=True)
class Trip:
    token: str
    network: Network
    status: TripStatus
    from_station: str | None
    to_station: str | None
    started_at_ns: int
    taps: tuple[Tap, ...]

    def leg(self) -> Leg:
        incomplete = self.status in (TripStatus.NO_TAP_IN, TripStatus.NO_TAP_OUT)
        return Leg(self.network, self.from_station, self.to_station, self.started_at_ns, incomplete)


@dataclass(frozen=True, slots=True)
class Matched:
    trips: tuple[Trip, ...]
    set_aside: tuple[tuple[Tap, SetAside], ...]


def _sorted_by_rider(taps: Iterable[Tap]) -> dict[str, list[Tap]]:
    riders: dict[str, list[Tap]] = {}
    for tap in sorted(taps, key=lambda t: (t.token, t.at_ns, t.gate_id, t.seq)):
        riders.setdefault(tap.token, []).append(tap)
    return riders


def _match_rider(
    taps: list[Tap], closes_at_ns: int
) -> tuple[list[Trip], list[tuple[Tap, SetAside]]]:
    trips: list[Trip] = []
    aside: list[tuple[Tap, SetAside]] = []
    used: set[tuple[bytes, TapKind]] = set()
    kept: list[Tap] = []
    for tap in taps:
        key = (tap.digest, tap.kind)
        if key in used:
            aside.append((tap, SetAside.REPLAY))
            continue
        used.add(key)
        last = kept[-1] if kept else None
        if (
            last is not None
            and last.kind is tap.kind
            and last.station == tap.station
            and tap.at_ns - last.at_ns <= DOUBLE_TAP_SECONDS * NS
        ):
            aside.append((tap, SetAside.DOUBLE))
            continue
        kept.append(tap)
    open_in: Tap | None = None
    n = 0
    while n < len(kept):
        tap = kept[n]
        n += 1
        if tap.kind is TapKind.BOARD:
            trips.append(
                Trip(tap.token, Network.BUS, TripStatus.BUS, tap.station, None, tap.at_ns, (tap,))
            )
            continue
        if tap.kind is TapKind.IN:
            if open_in is not None:
                trips.append(_no_tap_out(open_in))
            open_in = tap
            continue
        # a tap-out
        if open_in is not None and tap.at_ns - open_in.at_ns <= TRIP_SECONDS_MAX * NS:
            trips.append(_complete(open_in, tap))
            open_in = None
            continue
        if open_in is not None:
            trips.append(_no_tap_out(open_in))
            open_in = None
        following = kept[n] if n < len(kept) else None
        if (
            following is not None
            and following.kind is TapKind.IN
            and following.station != tap.station
            and following.at_ns - tap.at_ns <= CLOCK_SKEW_SECONDS * NS
        ):
            trips.append(_complete(following, tap))
            n += 1
            continue
        trips.append(
            Trip(
                tap.token,
                Network.SUBWAY,
                TripStatus.NO_TAP_IN,
                None,
                tap.station,
                tap.at_ns,
                (tap,),
            )
        )
    if open_in is not None:
        if closes_at_ns - open_in.at_ns > TRIP_SECONDS_MAX * NS:
            trips.append(_no_tap_out(open_in))
        else:
            aside.append((open_in, SetAside.PENDING))
    return trips, aside


def _complete(tap_in: Tap, tap_out: Tap) -> Trip:
    return Trip(
        tap_in.token,
        Network.SUBWAY,
        TripStatus.COMPLETE,
        tap_in.station,
        tap_out.station,
        min(tap_in.at_ns, tap_out.at_ns),
        (tap_in, tap_out),
    )


def _no_tap_out(tap_in: Tap) -> Trip:
    return Trip(
        tap_in.token,
        Network.SUBWAY,
        TripStatus.NO_TAP_OUT,
        tap_in.station,
        None,
        tap_in.at_ns,
        (tap_in,),
    )


def match_trips(taps: Iterable[Tap], *, closes_at_ns: int) -> Matched:
    """Every rider's trips in this batch (by rider, in time order) and the taps set aside."""
    trips: list[Trip] = []
    aside: list[tuple[Tap, SetAside]] = []
    for rider_taps in _sorted_by_rider(taps).values():
        got, left = _match_rider(rider_taps, closes_at_ns)
        trips.extend(got)
        aside.extend(left)
    return Matched(tuple(trips), tuple(aside))


@dataclass(frozen=True, slots=True)
class PricedTrip:
    trip: Trip
    price: PricedLeg


def price_trips(
    pricer: Pricer,
    trips: Sequence[Trip],
    *,
    concession_of: Mapping[str, str | None] | None = None,
    spent_of: Mapping[str, Mapping[int, int]] | None = None,
) -> list[PricedTrip]:
    """Price the trips of ``match_trips`` (grouped by rider, each rider's in time order) with
    the rider's concession and what the rider already paid by day (for the caps)."""
    out: list[PricedTrip] = []
    concessions = concession_of or {}
    spent = spent_of or {}
    start = 0
    while start < len(trips):
        token = trips[start].token
        end = start
        while end < len(trips) and trips[end].token == token:
            end += 1
        rider = sorted(trips[start:end], key=lambda t: t.started_at_ns)
        priced = pricer.price_legs(
            [t.leg() for t in rider],
            concession=concessions.get(token),
            spent_by_day=spent.get(token),
        )
        out.extend(PricedTrip(t, p) for t, p in zip(rider, priced, strict=True))
        start = end
    return out
