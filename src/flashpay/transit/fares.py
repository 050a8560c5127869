"""Fares as data, after GTFS Fares v2, plus the fare capping GTFS only proposes.

The model (``FareTable``), in GTFS Fares v2 terms:

- **areas** (``areas.txt`` / ``stop_areas.txt``): every station or stop belongs to one area
  (a subway zone, a bus route's area); ``station_area`` maps them.
- **timeframes** (``timeframes.txt``): named windows of the China day in minutes (``peak`` is
  07:00–09:00 …), ``[start_minute, end_minute)``.
- **leg rules** (``fare_leg_rules.txt`` with ``rule_priority``): a fare for a leg on a network
  (``subway``, ``bus``) from an area to an area (``None`` = any area) departing in a timeframe
  (``None`` = any time). Of the rules that match a leg, the one with the highest ``priority``
  wins; among equal priorities the most specific (fewest wildcards); a table that still leaves
  two candidates is refused when loaded (``definition.py``).
- **transfer rules** (``fare_transfer_rules.txt`` with ``duration_limit``,
  ``duration_limit_type = 1``: departure of the previous leg to departure of this one): a
  discount on the next leg if it departs within ``duration_limit_seconds``; one transfer per
  discounted leg (a discounted leg does not discount the one after it: GTFS ``transfer_count`` 1).
- **caps** (the GTFS-Fares "fare capping" proposal): what a rider pays in one China day and in one
  ISO week is bounded; the leg that crosses the cap pays only up to it.
- **concessions** (GTFS ``rider_categories``): a rider category with a discount in basis points,
  applied to each leg before the caps, rounded down to the fen (in the rider's favour).
- **max fare** per network: what a subway trip with no tap-out (or no tap-in) costs.

Everything is an int of fen; pricing is pure (``price_legs``) so the batch pricer, the rider's
dispute and the tests all call the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

CHINA_OFFSET_SECONDS = 8 * 3600
SECONDS_PER_DAY = 86_400
NS_PER_SECOND = 1_000_000_000
BPS_DENOMINATOR = 10_000


class Network(StrEnum):
    SUBWAY = "subway"
    BUS = "bus"


@dataclass(frozen=True, slots=True)
class TimeFrame:
    name: str
    start_minute: int  # minutes after China midnight, inclusive
    end_minute: int  # exclusive; ≤ 1440

    def contains(self, minute: int) -> bool:
        return self.start_minute <= minute < self.end_minute


@dataclass(frozen=True, slots=True)
class LegRule:
    network: Network
    from_area: str | None
    to_area: str | None
    fare_minor: int
    timeframe: str | None = None
    priority: int = 0

    @property
    def wildcards(self) -> int:
        return (self.from_area is None) + (self.to_area is None) + (self.timeframe is None)


@dataclass(frozen=True, slots=True)
class TransferRule:
    from_network: Network
    to_network: Network
    duration_limit_seconds: int
    discount_minor: int


@dataclass(frozen=True, slots=True)
class Concession:
    name: str
    discount_bps: int


@dataclass(frozen=True, slots=True)
class FareTable:
    station_area: Mapping[str, str]
    timeframes: Mapping[str, TimeFrame]
    leg_rules: tuple[LegRule, ...]
    transfer_rules: tuple[TransferRule, ...]
    daily_cap_minor: int
    weekly_cap_minor: int
    max_fare_minor: Mapping[Network, int]
    concessions: Mapping[str, Concession]


@dataclass(frozen=True, slots=True)
class Leg:
    """One ride to price: ``to_station`` is ``None`` for a bus (one tap) and for an incomplete
    subway trip (``incomplete`` then says which end is missing; it costs the max fare)."""

    network: Network
    from_station: str | None
    to_station: str | None
    departed_at_ns: int
    incomplete: bool = False


@dataclass(frozen=True, slots=True)
class PricedLeg:
    base_minor: int  # the leg rule's fare (or the max fare)
    transfer_discount_minor: int
    concession_discount_minor: int
    cap_discount_minor: int
    fare_minor: int  # what the rider pays: base − the three discounts, ≥ 0
    day: int  # the China day number (days since 1970-01-01, China time) the cap counted in


def china_day(at_ns: int) -> int:
    return (at_ns // NS_PER_SECOND + CHINA_OFFSET_SECONDS) // SECONDS_PER_DAY


def china_minute(at_ns: int) -> int:
    return ((at_ns // NS_PER_SECOND + CHINA_OFFSET_SECONDS) % SECONDS_PER_DAY) // 60


def iso_week(day: int) -> int:
    """The week number of China day ``day`` (weeks start on Monday; 1970-01-01 was a Thursday)."""
    return (day + 3) // 7


class Pricer:
    """A fare table with its leg rules indexed by network, for pricing many legs quickly."""

    def __init__(self, table: FareTable) -> None:
        self.table = table
        by_network: dict[Network, list[LegRule]] = {}
        for rule in sorted(table.leg_rules, key=lambda r: (-r.priority, r.wildcards)):
            by_network.setdefault(rule.network, []).append(rule)
        self._rules = by_network
        self._transfers = {(r.from_network, r.to_network): r for r in table.transfer_rules}
        self._cache: dict[tuple[Network, str | None, str | None, int], int | None] = {}

    def leg_fare(self, leg: Leg) -> int | None:
        """The fare of the first matching leg rule (highest priority, most specific), ``None``
        when no rule matches (the table has a gap: the leg costs the max fare)."""
        if leg.incomplete:
            return self.table.max_fare_minor[leg.network]
        areas = self.table.station_area
        from_area = areas.get(leg.from_station) if leg.from_station is not None else None
        to_area = areas.get(leg.to_station) if leg.to_station is not None else None
        minute = china_minute(leg.departed_at_ns)
        key = (leg.network, from_area, to_area, minute)
        if key in self._cache:
            return self._cache[key]
        found: int | None = None
        for rule in self._rules.get(leg.network, ()):
            if rule.from_area is not None and rule.from_area != from_area:
                continue
            if rule.to_area is not None and rule.to_area != to_area:
                continue
            if rule.timeframe is not None and not self.table.timeframes[rule.timeframe].contains(
                minute
            ):
                continue
            found = rule.fare_minor
            break
        self._cache[key] = found
        return found

    def price_legs(
        self,
        legs: Sequence[Leg],
        *,
        concession: str | None = None,
        spent_by_day: Mapping[int, int] | None = None,
    ) -> list[PricedLeg]:
        """Price one rider's legs (in departure order): transfer discounts, the concession, then
        the daily and weekly caps (``spent_by_day``: what the rider already paid on earlier days
        or batches, by China day)."""
        table = self.table
        bps = table.concessions[concession].discount_bps if concession else 0
        spent_day: dict[int, int] = dict(spent_by_day or {})
        spent_week: dict[int, int] = {}
        for day, amount in spent_day.items():
            spent_week[iso_week(day)] = spent_week.get(iso_week(day), 0) + amount
        out: list[PricedLeg] = []
        previous: Leg | None = None
        previous_discounted = False
        for leg in legs:
            fare = self.leg_fare(leg)
            base = table.max_fare_minor[leg.network] if fare is None else fare
            transfer = 0
            if previous is not None and not previous_discounted and not leg.incomplete:
                rule = self._transfers.get((previous.network, leg.network))
                elapsed = (leg.departed_at_ns - previous.departed_at_ns) // NS_PER_SECOND
                if rule is not None and 0 <= elapsed <= rule.duration_limit_seconds:
                    transfer = min(base, rule.discount_minor)
            after_transfer = base - transfer
            concession_off = after_transfer * bps // BPS_DENOMINATOR
            due = after_transfer - concession_off
            day = china_day(leg.departed_at_ns)
            week = iso_week(day)
            room = min(
                table.daily_cap_minor - spent_day.get(day, 0),
                table.weekly_cap_minor - spent_week.get(week, 0),
            )
            paid = max(0, min(due, room))
            spent_day[day] = spent_day.get(day, 0) + paid
            spent_week[week] = spent_week.get(week, 0) + paid
            out.append(PricedLeg(base, transfer, concession_off, due - paid, paid, day))
            previous, previous_discounted = leg, transfer > 0
        return out
