"""Fare tables, transfers, concessions and caps on worked examples (the default definition)."""

from __future__ import annotations

import pytest

from flashpay.transit.definition import (
    FareDefinitionError,
    FareDefinitionProblem,
    load_definition,
    parse_definition,
)
from flashpay.transit.fares import Leg, Network, Pricer, china_day

MIDNIGHT_NS = 1_794_931_200 * 1_000_000_000  # 2026-11-18 00:00 China time
MIN = 60 * 1_000_000_000


def at(hh: int, mm: int, day: int = 0) -> int:
    return MIDNIGHT_NS + ((day * 24 + hh) * 60 + mm) * MIN


@pytest.fixture(scope="module")
def pricer() -> Pricer:
    return Pricer(load_definition().fares)


def subway(a: str, b: str, when: int) -> Leg:
    return Leg(Network.SUBWAY, a, b, when)


def bus(line: str, when: int) -> Leg:
    return Leg(Network.BUS, line, None, when)


@pytest.mark.parametrize(
    ("leg", "fare"),
    [
        pytest.param(subway("S01", "S02", at(12, 0)), 300, id="same-zone"),
        pytest.param(subway("S01", "S03", at(12, 0)), 400, id="two-zones-off-peak"),
        pytest.param(subway("S01", "S03", at(8, 0)), 500, id="two-zones-peak-priority"),
        pytest.param(subway("S03", "S01", at(8, 0)), 400, id="peak-only-one-direction"),
        pytest.param(subway("S04", "S01", at(12, 0)), 700, id="airport-from-wildcard"),
        pytest.param(subway("S02", "S04", at(12, 0)), 700, id="airport-to-wildcard"),
        pytest.param(bus("B101", at(12, 0)), 200, id="bus-flat"),
        pytest.param(
            Leg(Network.SUBWAY, "S01", None, at(12, 0), incomplete=True),
            900,
            id="no-tap-out-max-fare",
        ),
    ],
)
def test_leg_fares(pricer: Pricer, leg: Leg, fare: int) -> None:
    [priced] = pricer.price_legs([leg])
    assert priced.fare_minor == fare == priced.base_minor


def test_transfer_discount_within_the_limit_only_once(pricer: Pricer) -> None:
    legs = [bus("B101", at(12, 0)), subway("S01", "S03", at(12, 30)), bus("B202", at(12, 50))]
    priced = pricer.price_legs(legs)
    assert [p.transfer_discount_minor for p in priced] == [0, 100, 0]
    assert [p.fare_minor for p in priced] == [200, 300, 200]
    late = pricer.price_legs([bus("B101", at(12, 0)), subway("S01", "S03", at(13, 1))])
    assert [p.fare_minor for p in late] == [200, 400]


def test_daily_cap_then_next_day(pricer: Pricer) -> None:
    legs = [subway("S01", "S04", at(9 + n, 0)) for n in range(4)]  # 4 × 700, cap 1500
    priced = pricer.price_legs(legs)
    assert [p.fare_minor for p in priced] == [700, 700, 100, 0]
    assert [p.cap_discount_minor for p in priced] == [0, 0, 600, 700]
    assert sum(p.fare_minor for p in priced) == 1500
    tomorrow = pricer.price_legs([*legs, subway("S01", "S02", at(9, 0, day=1))])
    assert tomorrow[-1].fare_minor == 300


def test_weekly_cap_counts_earlier_days(pricer: Pricer) -> None:
    day = china_day(MIDNIGHT_NS)  # 2026-11-18, a Wednesday
    spent = {day - 2: 1500, day - 1: 1500, day: 1400}  # Mon, Tue, today so far: 4400 of 6000
    priced = pricer.price_legs([subway("S01", "S04", at(20, 0))], spent_by_day=spent)
    assert priced[0].fare_minor == 100  # the daily cap binds first (1500 − 1400)
    spent = {day - 2: 1500, day - 1: 1500, day - 3: 1500, day - 4: 1500}  # Sun, Sat: last week
    later = pricer.price_legs([subway("S01", "S04", at(20, 0))], spent_by_day=spent)
    assert later[0].fare_minor == 700
    spent = {day - 2: 1500, day - 1: 1500, day: 1500}  # Mon–Wed at the daily cap: 4500
    priced = pricer.price_legs(
        [subway("S01", "S04", at(9 + h, 0, day=d)) for d, h in ((1, 0), (1, 1), (1, 2), (2, 0))],
        spent_by_day=spent,
    )  # Thursday reaches 6000, the weekly cap: Friday rides free
    assert [p.fare_minor for p in priced] == [700, 700, 100, 0]
    assert priced[-1].cap_discount_minor == 700


def test_concession_before_caps(pricer: Pricer) -> None:
    priced = pricer.price_legs([subway("S01", "S03", at(12, 0))], concession="student")
    assert (priced[0].concession_discount_minor, priced[0].fare_minor) == (200, 200)
    priced = pricer.price_legs([bus("B101", at(12, 0))], concession="senior")
    assert priced[0].fare_minor == 0


def test_midnight_trip_counts_on_its_departure_day(pricer: Pricer) -> None:
    legs = [subway("S01", "S04", at(h, 0)) for h in (20, 21, 22)] + [
        subway("S04", "S01", at(23, 59))
    ]
    priced = pricer.price_legs(legs)
    assert [p.fare_minor for p in priced] == [700, 700, 100, 0]
    after = pricer.price_legs([*legs[:3], subway("S04", "S01", at(0, 1, day=1))])
    assert after[-1].fare_minor == 700


BASE = {
    "caps": {"daily_fen": 1500, "weekly_fen": 6000},
    "max_fare": {"subway_fen": 900, "bus_fen": 200},
    "stations": [{"id": "S1", "name": "A", "line": "L1", "network": "subway", "area": "Z1"}],
}


P = FareDefinitionProblem


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"stations": [{"id": "S1"}]}, P.MISSING_FIELD),
        ({"leg_rules": [{"network": "tram", "fare_fen": 1}]}, P.UNKNOWN_NETWORK),
        ({"stations": BASE["stations"] * 2}, P.DUPLICATE_STATION),
        ({"timeframes": [{"name": "p", "start": "9:00", "end": "7:00"}]}, P.BAD_TIME),
        ({"leg_rules": [{"network": "bus", "fare_fen": -5}]}, P.BAD_AMOUNT),
        ({"leg_rules": [{"network": "bus", "fare_fen": 2.5}]}, P.BAD_AMOUNT),
        ({"leg_rules": [{"network": "subway", "from_area": "Z9", "fare_fen": 1}]}, P.UNKNOWN_AREA),
        (
            {"leg_rules": [{"network": "subway", "timeframe": "x", "fare_fen": 1}]},
            P.UNKNOWN_TIMEFRAME,
        ),
        (
            {
                "leg_rules": [
                    {"network": "subway", "from_area": "Z1", "fare_fen": 1},
                    {"network": "subway", "to_area": "Z1", "fare_fen": 2},
                ]
            },
            P.AMBIGUOUS_RULES,
        ),
        ({"caps": {"daily_fen": 7000, "weekly_fen": 6000}}, P.CAP_ORDER),
        ({"concessions": [{"name": "s", "discount_bps": 10001}]}, P.BAD_CONCESSION),
    ],
)
def test_named_definition_errors(change: dict[str, object], problem: FareDefinitionProblem) -> None:
    with pytest.raises(FareDefinitionError) as caught:
        parse_definition({**BASE, **change})
    assert caught.value.reason is problem
