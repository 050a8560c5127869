"""The demo's traffic model: what the users of a ``DemoNetwork`` do in a day, as events.

Deterministic for a seed (a seeded ``random.Random``). ``flashpay.sim.live`` plays the events
through the services; analytics and risk scoring can read the same events (with the ground truth
the demo writes beside its summary).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from flashpay.clock import NS_PER_SECOND
from flashpay.sim.network import SCENES, DemoNetwork

DAY_START_NS = 1_767_225_600 * NS_PER_SECOND  # 2026-01-01 00:00 UTC
PAYMENTS_PER_USER_PER_DAY = 20
P2P_PERCENT = 4
PARKING_HOLD_FEN = 6_000
PARKING_HOLD_SECONDS = 4 * 3600
PARKING_NEVER_LEAVES_PERCENT = 10


@dataclass(frozen=True, slots=True)
class Event:
    at_s: int  # seconds since the start of the run
    kind: str  # purchase | p2p | parking_entry | parking_exit
    card: int  # index into the network's cards
    amount_fen: int
    merchant: int = -1
    receiver: int = -1  # a P2P transfer's receiving card


def day_of_traffic(rng: random.Random, network: DemoNetwork, days: int) -> list[Event]:
    """``days`` of activity, sorted by time: ``PAYMENTS_PER_USER_PER_DAY`` events per user a
    day, ``P2P_PERCENT`` of them P2P transfers from debit cards between 7:00 and 23:00, the rest
    purchases in a scene drawn by its share, at an hour drawn from the scene's time-of-day curve,
    at a merchant of that scene, for an amount skewed to the scene's small tickets; a parking
    stay is an entry (a hold) and, for most cars, an exit within the hold's four hours."""
    by_scene: dict[str, list[int]] = defaultdict(list)
    for m in network.merchants:
        by_scene[m.scene].append(m.index)
    scenes = [s for s in SCENES if by_scene[s.name]]
    debit_cards = [c.index for c in network.cards if not c.credit]
    events: list[Event] = []
    per_day = network.users * PAYMENTS_PER_USER_PER_DAY
    for day in range(days):
        for _ in range(per_day):
            card = rng.randrange(len(network.cards))
            if rng.randrange(100) < P2P_PERCENT and debit_cards:
                sender = rng.choice(debit_cards)
                at = day * 86_400 + rng.randrange(7 * 3600, 23 * 3600)
                amount = rng.randint(10, 500) * 100
                events.append(Event(at, "p2p", sender, amount, receiver=card))
                continue
            scene = rng.choices(scenes, weights=[s.share for s in scenes])[0]
            hour = rng.choices(range(24), weights=scene.hour_weights)[0]
            at = day * 86_400 + hour * 3600 + rng.randrange(3600)
            merchant = rng.choice(by_scene[scene.name])
            low, high = scene.prices_fen
            r = rng.randint(0, 1_000)
            amount = low + (high - low) * r * r // 1_000_000  # skewed to small tickets
            if scene.name == "parking":
                events.append(Event(at, "parking_entry", card, PARKING_HOLD_FEN, merchant))
                if rng.randrange(100) >= PARKING_NEVER_LEAVES_PERCENT:
                    leave = at + rng.randrange(600, PARKING_HOLD_SECONDS - 60)
                    events.append(Event(leave, "parking_exit", card, amount, merchant))
            else:
                events.append(Event(at, "purchase", card, amount, merchant))
    # stable order: by time, parking exits after their entries at equal times
    events.sort(key=lambda e: e.at_s)
    return events
