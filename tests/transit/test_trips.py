"""Tap matching: every edge case, clock skew of ±5 minutes, and pricing of matched trips."""

from __future__ import annotations

import itertools

import pytest

from flashpay.transit.definition import load_definition
from flashpay.transit.fares import Pricer
from flashpay.transit.trips import (
    SetAside,
    Tap,
    TapKind,
    TripStatus,
    match_trips,
    price_trips,
)

MIDNIGHT_NS = 1_794_931_200 * 1_000_000_000  # 2026-11-18 00:00 China time
MIN = 60 * 1_000_000_000
END_OF_DAY = MIDNIGHT_NS + 30 * 60 * MIN  # the batch closes the next morning
_seq = itertools.count(1)


def tap(
    kind: str,
    station: str,
    hh: int,
    mm: int,
    *,
    token: str = "T1",
    digest: bytes | None = None,
    gate: str | None = None,
    skew_minutes: float = 0,
) -> Tap:
    n = next(_seq)
    return Tap(
        token,
        MIDNIGHT_NS + (hh * 60 + mm) * MIN + int(skew_minutes * MIN),
        gate or f"G-{station}",
        n,
        station,
        TapKind(kind),
        digest or n.to_bytes(16, "big"),
    )


def statuses(taps: list[Tap]) -> list[tuple[TripStatus, str | None, str | None]]:
    return [
        (t.status, t.from_station, t.to_station)
        for t in match_trips(taps, closes_at_ns=END_OF_DAY).trips
    ]


C = TripStatus.COMPLETE


def test_in_out_and_bus() -> None:
    taps = [tap("in", "S01", 8, 0), tap("out", "S03", 8, 20), tap("board", "B101", 8, 40)]
    assert statuses(taps) == [(C, "S01", "S03"), (TripStatus.BUS, "B101", None)]


def test_tap_out_without_tap_in_and_missing_tap_out() -> None:
    taps = [
        tap("out", "S03", 8, 20),
        tap("in", "S01", 12, 0),
        tap("in", "S02", 18, 0),
        tap("out", "S01", 18, 30),
    ]
    assert statuses(taps) == [
        (TripStatus.NO_TAP_IN, None, "S03"),
        (TripStatus.NO_TAP_OUT, "S01", None),
        (C, "S02", "S01"),
    ]


def test_an_open_tap_in_waits_unless_the_batch_is_closed() -> None:
    taps = [tap("in", "S01", 23, 0)]
    matched = match_trips(taps, closes_at_ns=MIDNIGHT_NS + (23 * 60 + 30) * MIN)
    assert matched.trips == ()
    assert matched.set_aside[0][1] is SetAside.PENDING
    assert statuses(taps) == [(TripStatus.NO_TAP_OUT, "S01", None)]


def test_double_taps_count_once() -> None:
    taps = [
        tap("in", "S01", 8, 0),
        tap("in", "S01", 8, 1),
        tap("out", "S03", 8, 20),
        tap("out", "S03", 8, 20),
        tap("board", "B101", 9, 0),
        tap("board", "B101", 9, 1),
    ]
    matched = match_trips(taps, closes_at_ns=END_OF_DAY)
    assert [t.status for t in matched.trips] == [C, TripStatus.BUS]
    assert [why for _, why in matched.set_aside] == [SetAside.DOUBLE] * 3


def test_the_same_code_at_two_offline_gates_is_charged_once() -> None:
    code = b"same-code-digest"
    taps = [
        tap("in", "S01", 8, 0, digest=code, gate="G1"),
        tap("in", "S02", 8, 2, digest=code, gate="G2"),
        tap("out", "S03", 8, 20),
    ]
    matched = match_trips(taps, closes_at_ns=END_OF_DAY)
    assert [(t.status, t.from_station) for t in matched.trips] == [(C, "S01")]
    assert [(t.gate_id, why) for t, why in matched.set_aside] == [("G2", SetAside.REPLAY)]


def test_a_trip_across_midnight() -> None:
    taps = [tap("in", "S01", 23, 50), tap("out", "S04", 24, 15)]
    pricer = Pricer(load_definition().fares)
    [priced] = price_trips(pricer, match_trips(taps, closes_at_ns=END_OF_DAY).trips)
    assert priced.trip.status is C
    assert priced.price.fare_minor == 700
    assert priced.price.day == (MIDNIGHT_NS // 10**9 + 8 * 3600) // 86400  # the evening's day


@pytest.mark.parametrize("skew", [-5, -3, 0, 3, 5])
def test_gate_clock_skew_of_five_minutes(skew: int) -> None:
    # a 3-minute ride between two gates whose clocks disagree by `skew` minutes
    taps = [tap("in", "S01", 8, 0, skew_minutes=skew), tap("out", "S02", 8, 3)]
    assert statuses(taps) == [(C, "S01", "S02")]
    # and a normal day around it still matches
    day = [
        tap("in", "S03", 7, 0),
        tap("out", "S01", 7, 30),
        *taps,
        tap("in", "S02", 18, 0),
        tap("out", "S03", 18, 30, skew_minutes=-skew),
    ]
    assert [s for s, _, _ in statuses(day)] == [C, C, C]


def test_caps_over_matched_trips_two_riders() -> None:
    pricer = Pricer(load_definition().fares)
    taps = []
    for token in ("A", "B"):
        for h in (7, 10, 13, 16):
            taps += [tap("in", "S04", h, 0, token=token), tap("out", "S01", h, 40, token=token)]
    priced = price_trips(
        pricer, match_trips(taps, closes_at_ns=END_OF_DAY).trips, concession_of={"B": "student"}
    )
    by_rider = {t: [p.price.fare_minor for p in priced if p.trip.token == t] for t in "AB"}
    assert by_rider == {"A": [700, 700, 100, 0], "B": [350, 350, 350, 350]}
