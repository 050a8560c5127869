"""The demo's transit day (issue 17, item 6): commuters ride the subway and buses with morning
and evening peaks through gates, after the day of payments.

The gates here are in-process objects that do what the gate process does (``verify_code``
offline against the trust they downloaded, a journal, uploads through ``record_taps``); the real
gate processes, over HTTP with their journals on disk, are tested in tests/transit. Some gates
are offline all morning (they upload just before the midday batch and download the new trust
only at 16:00); a midday settle prices the morning, and the next night's settle the rest.
Some riders hit the daily cap, some forget to tap out, and one rider, whose card was emptied
by a P2P transfer before the day, fails the midday debit: the token is deny-listed and
refused at the next gate that refreshed its trust.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from flashpay.cards.service import card_balance
from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.merchants.service import Merchant, Scene
from flashpay.money import Money
from flashpay.payments.transfer_records import P2PRequest
from flashpay.payments.transfers import create_transfers
from flashpay.platform import Platform
from flashpay.transit import codes
from flashpay.transit.credentials import issue_credential, register_operator
from flashpay.transit.debits import DebitStatus
from flashpay.transit.definition import TransitDefinition, load_definition
from flashpay.transit.denylist import gate_trust
from flashpay.transit.fares import Network
from flashpay.transit.settle import SettleReport, settle
from flashpay.transit.trips import TapKind
from flashpay.transit.uploads import UploadedTap, record_taps
from flashpay.transit.views import rider_trips
from flashpay.wallet.payers import bound_cards

HOUR_NS = 3600 * NS_PER_SECOND
CHINA_OFFSET_NS = 8 * HOUR_NS
RIDERS_MAX = 30
OFFLINE_STATIONS = frozenset({"S04", "B202"})  # offline: upload at noon, new trust at 16:00
LEFT_ON_POOR_CARD_FEN = 300
ROUTES = (("S01", "S03"), ("S02", "S04"), ("S03", "S01"), ("S01", "S02"))


@dataclass
class _Rider:
    token: str
    device: Ed25519PrivateKey
    credential: bytes
    counter: int = 0

    def code(self, at_s: int) -> bytes:
        self.counter += 1
        return codes.make_code(self.credential, self.device, at_s=at_s, counter=self.counter)


@dataclass
class _Gate:
    gate_id: str
    station: str
    kind: TapKind
    trust: codes.GateTrust
    seen: set[bytes] = field(default_factory=set)
    journal: list[UploadedTap] = field(default_factory=list)
    uploaded: int = 0


@dataclass
class _Day:
    platform: Platform
    clock: FakeClock
    gates: dict[tuple[str, TapKind], _Gate] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    taps: int = 0

    def tap(self, rider: _Rider, station: str, kind: TapKind, at_ns: int) -> bool:
        self.clock.set_ns(max(self.clock.now_ns(), at_ns))
        gate = self.gates[(station, kind)]
        now_s = at_ns // NS_PER_SECOND
        verdict = codes.verify_code(gate.trust, rider.code(now_s), now_s=now_s, seen=gate.seen)
        if isinstance(verdict, codes.Refused):
            self.refused[verdict.reason.value] += 1
            return False
        gate.seen.add(verdict.digest)
        gate.journal.append(
            UploadedTap(
                len(gate.journal) + 1,
                verdict.token,
                station,
                kind,
                at_ns,
                verdict.digest,
                gate.trust.deny_version,
            )
        )
        self.taps += 1
        return True

    def upload(self, *, offline_too: bool) -> None:
        for gate in self.gates.values():
            if gate.station in OFFLINE_STATIONS and not offline_too:
                continue
            if gate.uploaded < len(gate.journal):
                record_taps(
                    platform=self.platform,
                    gate_id=gate.gate_id,
                    gate_clock_ns=self.clock.now_ns(),
                    taps=gate.journal,
                )
                gate.uploaded = len(gate.journal)

    def refresh(self, *, offline_too: bool) -> None:
        trust = _trust(self.platform)
        for gate in self.gates.values():
            if offline_too or gate.station not in OFFLINE_STATIONS:
                gate.trust = trust


def _trust(platform: Platform) -> codes.GateTrust:
    snap = gate_trust(platform=platform)
    keys = {k: Ed25519PublicKey.from_public_bytes(v) for k, v in snap.network_keys.items()}
    return codes.GateTrust(
        snap.network_id,
        keys,
        frozenset(snap.revoked_serials),
        frozenset(snap.denied_tokens),
        snap.deny.version,
    )


def _operators(platform: Platform, merchants: Sequence[Merchant]) -> None:
    for network, scene in ((Network.SUBWAY, Scene.SUBWAY), (Network.BUS, Scene.BUS)):
        merchant = next(m for m in merchants if m.scene is scene)
        register_operator(platform=platform, network=network, merchant_id=merchant.id)


def _empty_poor_card(
    platform: Platform, wallet_cards: Sequence[int], pin: str, phones: dict[int, str]
) -> int | None:
    """The debit card with the least money sends all but ¥3 to a friend; its wallet card id."""
    with platform.engine.connect() as connection:
        bound = bound_cards(connection, wallet_card_ids=wallet_cards)
    debit = [
        (card_balance(platform=platform, card=b.card).available, b.wallet_card_id, b.user_id)
        for b in bound
        if b.card.card_type.value == "debit"
    ]
    if not debit:
        return None
    available, wallet_card_id, user_id = min(debit)
    to_phone = next(p for u, p in sorted(phones.items()) if u != user_id)
    if available > LEFT_ON_POOR_CARD_FEN:
        request = P2PRequest(
            from_wallet_card_id=wallet_card_id,
            pin=pin,
            to_phone=to_phone,
            amount=Money.of(available - LEFT_ON_POOR_CARD_FEN),
        )
        create_transfers(platform=platform, requests=[(user_id, request)])
    return wallet_card_id


def run_transit_day(
    platform: Platform,
    clock: FakeClock,
    merchants: Sequence[Merchant],
    wallet_cards: Sequence[int],
    *,
    seed: int,
    pin: str,
    phones: dict[int, str],
) -> dict[str, Any]:
    """A day of rides on the next China day after the clock; the ``transit`` summary."""
    rng = random.Random(seed * 31 + 17)
    definition: TransitDefinition = load_definition()
    _operators(platform, merchants)
    poor_card = _empty_poor_card(platform, wallet_cards, pin, phones)
    now = clock.now_ns()
    midnight = ((now + CHINA_OFFSET_NS) // (24 * HOUR_NS) + 1) * 24 * HOUR_NS - CHINA_OFFSET_NS
    clock.set_ns(midnight + 5 * HOUR_NS)
    with platform.engine.connect() as connection:
        bound = bound_cards(connection, wallet_card_ids=wallet_cards)
    by_user = {b.user_id: b for b in sorted(bound, key=lambda b: b.wallet_card_id)}
    chosen = list(by_user.values())[:RIDERS_MAX]
    poor = next((b for b in bound if b.wallet_card_id == poor_card), None)
    if poor is not None and poor not in chosen:
        chosen[-1] = poor
    riders: list[_Rider] = []
    for b in chosen:
        device = Ed25519PrivateKey.generate()
        issued = issue_credential(
            platform=platform,
            definition=definition,
            token=b.token,
            device_public_key=codes.public_bytes(device.public_key()),
            ride_credit_limit_minor=5000,
            user_id=b.user_id,
        )
        riders.append(_Rider(b.token, device, issued.credential))
    poor_rider = next((r for r in riders if poor is not None and r.token == poor.token), None)
    day = _Day(platform, clock)
    trust = _trust(platform)
    for station in ("S01", "S02", "S03", "S04"):
        for kind in (TapKind.IN, TapKind.OUT):
            day.gates[(station, kind)] = _Gate(f"G-{station}-{kind.value}", station, kind, trust)
    for bus in ("B101", "B202"):
        day.gates[(bus, TapKind.BOARD)] = _Gate(f"BUS-{bus}", bus, TapKind.BOARD, trust)
    plans = [(r, ROUTES[n % len(ROUTES)], n) for n, r in enumerate(riders)]

    def ride(rider: _Rider, start: str, end: str, at_ns: int, *, tap_out: bool = True) -> None:
        if day.tap(rider, start, TapKind.IN, at_ns) and tap_out:
            day.tap(rider, end, TapKind.OUT, at_ns + rng.randrange(20, 45) * 60 * NS_PER_SECOND)

    # the morning peak (a few take the bus to the subway: a transfer)
    morning = sorted(
        (midnight + 7 * HOUR_NS + rng.randrange(120) * 60 * NS_PER_SECOND, n) for _, _, n in plans
    )
    for at_ns, n in morning:
        rider, (home, work), _ = plans[n]
        if n % 4 == 1:
            day.tap(rider, "B101" if n % 8 == 1 else "B202", TapKind.BOARD, at_ns)
            at_ns += 15 * 60 * NS_PER_SECOND
        ride(rider, home, work, at_ns)
    # midday: the airport round trips of the travellers (and the poor rider): the daily cap
    travellers = [r for r, _, n in plans if n % 5 == 2 or r is poor_rider]
    for k, rider in enumerate(travellers):
        at_ns = midnight + 10 * HOUR_NS + k * 60 * NS_PER_SECOND
        ride(rider, "S01", "S04", at_ns)
        ride(rider, "S04", "S01", at_ns + HOUR_NS)
    day.upload(offline_too=False)
    clock.set_ns(midnight + 12 * HOUR_NS)
    day.upload(offline_too=True)  # the offline gates reconnect just before the midday batch
    reports = [settle(platform=platform, definition=definition)]
    day.refresh(offline_too=False)  # the online gates download the new deny list
    clock.set_ns(midnight + 16 * HOUR_NS)
    day.refresh(offline_too=True)  # the offline gates' next trust download
    evening = sorted(
        (midnight + 17 * HOUR_NS + rng.randrange(120) * 60 * NS_PER_SECOND, n) for _, _, n in plans
    )
    for at_ns, n in evening:
        rider, (home, work), _ = plans[n]
        ride(rider, work, home, at_ns, tap_out=n % 7 != 3)  # every seventh forgets to tap out
    day.upload(offline_too=True)
    clock.set_ns(midnight + 24 * HOUR_NS + 5 * HOUR_NS)  # open trips older than 4 h close
    reports.append(settle(platform=platform, definition=definition))
    return _summary(day, reports, [r.token for r in riders], platform)


def _summary(
    day: _Day, reports: list[SettleReport], tokens: list[str], platform: Platform
) -> dict[str, Any]:
    # a debit refused at noon is retried by the next batch: its last outcome counts
    debits = list({d.debit_id: d for r in reports for d in r.debits}.values())
    unpaid = [d for d in debits if d.status is DebitStatus.FAILED]
    set_aside: Counter[str] = Counter()
    for r in reports:
        set_aside.update(r.set_aside)
    statuses = Counter(
        t.status for token in tokens for t in rider_trips(platform=platform, tokens=[token])
    )
    return {
        "riders": len(tokens),
        "taps": day.taps,
        "taps_refused": dict(sorted(day.refused.items())),
        "trips": sum(r.trips for r in reports),
        "by_status": dict(sorted(statuses.items())),
        "set_aside": dict(sorted(set_aside.items())),
        "fares_fen": sum(r.fares_minor for r in reports),
        "caps_applied_fen": sum(r.cap_discount_minor for r in reports),
        "debits": len(debits),
        "debits_posted_fen": sum(d.amount_minor for d in debits if d not in unpaid),
        "unpaid": len(unpaid),
        "unpaid_fen": sum(d.amount_minor for d in unpaid),
        "deny_listed": len(gate_trust(platform=platform).denied_tokens),
        "offline_gates": sorted(
            g.gate_id for g in day.gates.values() if g.station in OFFLINE_STATIONS
        ),
    }
