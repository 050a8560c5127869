"""Credentials, uploads, trips, debits and the deny list at the service level (SQLite and
PostgreSQL): fares posted to the fen, a failed debit deny-listed and refused at the gate."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from flashpay.cards.service import card_balance, get_card
from flashpay.transit import codes
from flashpay.transit.codes import GateTrust, RideRefusal, verify_code
from flashpay.transit.credentials import issue_credential, revoke_credential
from flashpay.transit.debits import DebitStatus, post_debits, unsettled_debits
from flashpay.transit.denylist import gate_trust
from flashpay.transit.errors import TransitError, TransitRefusal
from flashpay.transit.settle import settle
from flashpay.transit.trips import TapKind
from flashpay.transit.uploads import UploadedTap, record_taps

from .conftest import Rider, TransitWorld

NS = 1_000_000_000


def trust_of(world: TransitWorld) -> GateTrust:
    snap = gate_trust(platform=world.platform)
    return GateTrust(
        snap.network_id,
        {k: Ed25519PublicKey.from_public_bytes(v) for k, v in snap.network_keys.items()},
        frozenset(snap.revoked_serials),
        frozenset(snap.denied_tokens),
        snap.deny.version,
    )


class Gate:
    def __init__(self, world: TransitWorld, gate_id: str, station: str, kind: TapKind) -> None:
        self.world, self.gate_id, self.station, self.kind = world, gate_id, station, kind
        self.trust = trust_of(world)
        self.seen: set[bytes] = set()
        self.journal: list[UploadedTap] = []

    def tap(self, rider: Rider) -> RideRefusal | None:
        now_ns = self.world.clock.now_ns()
        verdict = verify_code(
            self.trust, rider.code(now_ns // NS), now_s=now_ns // NS, seen=self.seen
        )
        if isinstance(verdict, codes.Refused):
            return verdict.reason
        self.seen.add(verdict.digest)
        self.journal.append(
            UploadedTap(
                len(self.journal) + 1,
                verdict.token,
                self.station,
                self.kind,
                now_ns,
                verdict.digest,
                self.trust.deny_version,
            )
        )
        return None

    def upload(self) -> int:
        return record_taps(
            platform=self.world.platform,
            gate_id=self.gate_id,
            gate_clock_ns=self.world.clock.now_ns(),
            taps=self.journal,
        ).new


def balance(world: TransitWorld, rider: Rider) -> int:
    card = get_card(platform=world.platform, card_id=rider.card_id)
    assert card is not None
    return card_balance(platform=world.platform, card=card).available


def test_a_day_of_rides_priced_and_debited_to_the_fen(world: TransitWorld) -> None:
    alice = world.rider(1, balance=10_000)
    student = world.rider(2, balance=10_000, concession="student")
    central = Gate(world, "G-S01", "S01", TapKind.IN)
    airport = Gate(world, "G-S04", "S04", TapKind.OUT)
    bus = Gate(world, "BUS-101", "B101", TapKind.BOARD)
    for _ in range(3):  # three airport trips: 700 + 700 + 100 (the daily cap of 1500)
        assert central.tap(alice) is None
        assert central.tap(student) is None
        world.clock.advance(40 * 60)
        assert airport.tap(alice) is None
        assert airport.tap(student) is None
        world.clock.advance(30 * 60)
    assert bus.tap(alice) is None  # capped: free
    assert central.upload() == 6
    assert airport.upload() == 6
    assert bus.upload() == 1
    assert central.upload() == 0  # the same batch again adds nothing
    world.clock.advance(5 * 3600)
    report = settle(platform=world.platform, definition=world.definition)
    assert (report.taps, report.trips) == (13, 7)
    assert report.fares_minor == 1500 + 3 * 350
    assert {d.status for d in report.debits} == {DebitStatus.POSTED}
    assert balance(world, alice) == 10_000 - 1500
    assert balance(world, student) == 10_000 - 1050
    again = settle(platform=world.platform, definition=world.definition)
    assert (again.taps, again.trips, again.debits) == (0, 0, ())
    assert balance(world, alice) == 10_000 - 1500


def test_a_failed_debit_deny_lists_until_paid(world: TransitWorld) -> None:
    poor = world.rider(3, balance=100)
    central = Gate(world, "G-S01", "S01", TapKind.IN)
    airport = Gate(world, "G-S04", "S04", TapKind.OUT)
    assert central.tap(poor) is None
    world.clock.advance(30 * 60)
    assert airport.tap(poor) is None
    central.upload(), airport.upload()
    report = settle(platform=world.platform, definition=world.definition)
    assert [(d.amount_minor, d.status) for d in report.debits] == [(700, DebitStatus.FAILED)]
    assert balance(world, poor) == 100
    # the gate refuses the rider after its next refresh, not before
    assert central.tap(poor) is None
    central.trust = trust_of(world)
    assert central.tap(poor) is RideRefusal.DENY_LISTED
    with pytest.raises(TransitError) as caught:
        issue_credential(
            platform=world.platform,
            definition=world.definition,
            token=poor.token,
            device_public_key=codes.public_bytes(poor.device.public_key()),
            ride_credit_limit_minor=5000,
        )
    assert caught.value.reason is TransitRefusal.TOKEN_DENY_LISTED
    # the rider tops up; the retry posts and the token leaves the deny list
    from flashpay.institutions.chart import (
        LEDGER_CNY,
        AccountCode,
        TransferCode,
        institution_account_id,
    )
    from flashpay.ledger import Transfer

    card = get_card(platform=world.platform, card_id=poor.card_id)
    assert card is not None
    world.platform.ledger.create_transfers(
        [
            Transfer(
                987654321,
                institution_account_id("BOC", AccountCode.CASH),
                card.ledger_account_id,
                5000,
                LEDGER_CNY,
                TransferCode.OPENING_DEPOSIT,
            )
        ]
    )
    outcomes = post_debits(
        platform=world.platform, debit_ids=unsettled_debits(platform=world.platform)
    )
    assert [(o.amount_minor, o.status) for o in outcomes] == [(700, DebitStatus.POSTED)]
    assert balance(world, poor) == 5100 - 700
    assert gate_trust(platform=world.platform).denied_tokens == ()
    assert gate_trust(platform=world.platform).deny.version == 2


def test_revoked_credential_refused_after_refresh(world: TransitWorld) -> None:
    rider = world.rider(4, balance=1000)
    gate = Gate(world, "G-S01", "S01", TapKind.IN)
    serial = codes.parse_credential(rider.credential).serial
    assert revoke_credential(platform=world.platform, serial=serial)
    gate.trust = trust_of(world)
    assert gate.tap(rider) is RideRefusal.REVOKED


def test_one_code_at_two_offline_gates_charged_once(world: TransitWorld) -> None:
    rider = world.rider(5, balance=10_000)
    now_s = world.clock.now_ns() // NS
    code = rider.code(now_s)
    gates = [Gate(world, f"G{n}", f"S0{n}", TapKind.IN) for n in (1, 2)]
    for gate in gates:  # both offline: each accepts (neither has seen it)
        verdict = verify_code(gate.trust, code, now_s=now_s, seen=gate.seen)
        assert isinstance(verdict, codes.Accepted)
        gate.journal.append(
            UploadedTap(
                1, verdict.token, gate.station, TapKind.IN, world.clock.now_ns(), verdict.digest, 0
            )
        )
    world.clock.advance(20 * 60)
    out = Gate(world, "G-S03", "S03", TapKind.OUT)
    assert out.tap(rider) is None
    for gate in [*gates, out]:
        gate.upload()
    report = settle(platform=world.platform, definition=world.definition)
    assert report.set_aside == {"replay": 1}
    assert report.trips == 1
    assert balance(world, rider) == 10_000 - 400


def test_rider_view_dispute_and_operator_ridership(world: TransitWorld) -> None:
    from flashpay.transit.fares import Network
    from flashpay.transit.views import dispute_trip, operator_report, rider_trips

    rider = world.rider(6, balance=10_000)
    central = Gate(world, "G-S01", "S01", TapKind.IN)
    museum = Gate(world, "G-S02", "S02", TapKind.OUT)
    assert central.tap(rider) is None  # forgets to tap out
    world.clock.advance(5 * 3600)
    assert central.tap(rider) is None
    world.clock.advance(20 * 60)
    assert museum.tap(rider) is None
    central.upload(), museum.upload()
    world.clock.advance(5 * 3600)
    settle(platform=world.platform, definition=world.definition)
    assert balance(world, rider) == 10_000 - 900 - 300
    trips = rider_trips(platform=world.platform, tokens=[rider.token])
    assert [(t.status, t.fare_minor, t.debit_status, len(t.taps)) for t in trips] == [
        ("complete", 300, "posted", 2),
        ("no_tap_out", 900, "posted", 1),
    ]
    forgotten = trips[1]
    with pytest.raises(TransitError) as caught:
        dispute_trip(
            platform=world.platform,
            definition=world.definition,
            tokens=[rider.token],
            trip_id=trips[0].id,
            to_station="S02",
        )
    assert caught.value.reason is TransitRefusal.NOT_DISPUTABLE
    with pytest.raises(TransitError) as caught:
        dispute_trip(
            platform=world.platform,
            definition=world.definition,
            tokens=["0" * 19],
            trip_id=forgotten.id,
            to_station="S02",
        )
    assert caught.value.reason is TransitRefusal.TRIP_NOT_FOUND
    adjusted = dispute_trip(
        platform=world.platform,
        definition=world.definition,
        tokens=[rider.token],
        trip_id=forgotten.id,
        to_station="S03",
    )
    assert (adjusted.fare_minor, adjusted.to_station, adjusted.disputed) == (400, "S03", True)
    assert balance(world, rider) == 10_000 - 400 - 300  # 500 back to the card
    rows = operator_report(
        platform=world.platform, definition=world.definition, network=Network.SUBWAY
    )
    assert sum(r.trips for r in rows) == 2
    assert sum(r.revenue_minor for r in rows) == 700
    assert {(r.line, r.station) for r in rows} == {("L1", "S01")}
    # grouped in SQL by the China hour of each trip's start (5 h apart: two rows)
    china_hours = sorted(((t.started_at_ns // NS + 8 * 3600) // 3600) % 24 for t in trips)
    assert sorted(r.hour for r in rows) == china_hours
    assert len(rows) == 2


def test_a_replay_uploaded_after_the_settle_is_not_charged(world: TransitWorld) -> None:
    rider = world.rider(7, balance=10_000)
    now_s = world.clock.now_ns() // NS
    code = rider.code(now_s)
    early, late = Gate(world, "G1", "S01", TapKind.IN), Gate(world, "G2", "S02", TapKind.IN)
    for gate in (early, late):
        verdict = verify_code(gate.trust, code, now_s=now_s, seen=gate.seen)
        assert isinstance(verdict, codes.Accepted)
        gate.journal.append(
            UploadedTap(
                1, verdict.token, gate.station, TapKind.IN, world.clock.now_ns(), verdict.digest, 0
            )
        )
    world.clock.advance(20 * 60)
    out = Gate(world, "G-S03", "S03", TapKind.OUT)
    assert out.tap(rider) is None
    early.upload(), out.upload()
    world.clock.advance(5 * 3600)
    assert settle(platform=world.platform, definition=world.definition).trips == 1
    late.upload()  # the second gate was offline until now
    world.clock.advance(5 * 3600)
    report = settle(platform=world.platform, definition=world.definition)
    assert (report.trips, report.set_aside) == (0, {"replay": 1})
    assert balance(world, rider) == 10_000 - 400
