"""``flashpay demo``: build the demo network, run a day (or N days) of payments, prove the books.

The run is deterministic for a seed: ids are derived from the seed and an event number, the
clock is a ``FakeClock`` moved through the simulated day, and randomness is a seeded
``random.Random``. Everything is posted through the ledger's public API in linked chains (§4);
every chain is one payment, P2P transfer or parking hold, all or nothing.

What can go wrong does: cards run out of money or credit (declined), clients retry a submission
(answered ``exists``, never posted twice), parked cars that never leave let their holds expire.
"""

from __future__ import annotations

import itertools
import random
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashpay import db
from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.ledger import (
    Account,
    AccountFlags,
    CreateTransferResult,
    Ledger,
    Transfer,
    TransferFlags,
    check,
    derive_id,
)
from flashpay.sim.audit import AuditSummary, cosign
from flashpay.sim.books import (
    LEDGER_CNY,
    AccountCode,
    AcquirerBooks,
    FeeSplit,
    IssuerBooks,
    NetworkBooks,
    TransferCode,
    p2p_chain,
    purchase_chain,
)
from flashpay.sim.network import ACQUIRERS, ISSUERS, SCENES, DemoNetwork, build_network

DAY_START_NS = 1_767_225_600 * NS_PER_SECOND  # 2026-01-01 00:00 UTC
PAYMENTS_PER_USER_PER_DAY = 20
P2P_PERCENT = 4
RETRIED_BATCHES_PERCENT = 5
PARKING_HOLD_FEN = 6_000
PARKING_HOLD_SECONDS = 4 * 3600
PARKING_NEVER_LEAVES_PERCENT = 10
EVENTS_PER_BATCH = 200
ACCOUNT_BATCH_MAX = 8000
D = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
OK = CreateTransferResult.OK
EXISTS = CreateTransferResult.EXISTS


@dataclass(frozen=True, slots=True)
class DemoOptions:
    seed: int = 7
    users: int = 5_000
    merchants: int = 300
    days: int = 1


@dataclass(slots=True)
class _Event:
    at_s: int  # seconds since the start of the run
    kind: str  # purchase | p2p | parking_entry | parking_exit
    card: int
    amount_fen: int
    merchant: int = -1
    receiver: int = -1
    pending_id: int = 0


@dataclass(slots=True)
class Tally:
    count: int = 0
    volume_fen: int = 0

    def add(self, amount_fen: int) -> None:
        self.count += 1
        self.volume_fen += amount_fen


@dataclass(slots=True)
class DemoResult:
    summary: dict[str, Any]
    timing: dict[str, float] = field(default_factory=dict)
    audit: AuditSummary | None = None  # keys and signatures differ per run: not in ``summary``


class _Ids:
    """Account ids: institutions below 10,000, merchants from 10,000, cards from 1,000,000."""

    def __init__(self, network: DemoNetwork) -> None:
        self.issuers = [
            IssuerBooks(100 + 10 * i, 101 + 10 * i, 102 + 10 * i, 103 + 10 * i)
            for i in range(len(ISSUERS))
        ]
        n = len(ISSUERS)
        self.network = NetworkBooks(
            issuer_receivable={i: 1_000 + i for i in range(n)},
            issuer_payable={i: 1_100 + i for i in range(n)},
            acquirer_payable={a: 1_200 + a for a in range(len(ACQUIRERS))},
            fee_income=1_300,
        )
        self.acquirers = [
            AcquirerBooks(2_000 + 10 * a, 2_001 + 10 * a) for a in range(len(ACQUIRERS))
        ]
        self.merchant = [10_000 + m.index for m in network.merchants]
        self.card = [1_000_000 + c.index for c in network.cards]


def _accounts(network: DemoNetwork, ids: _Ids) -> list[Account]:
    c = AccountCode
    accounts: list[Account] = []
    for i, books in enumerate(ids.issuers):
        accounts += [
            Account(books.network_payable, LEDGER_CNY, c.NETWORK_PAYABLE, user_data_32=i),
            Account(books.network_receivable, LEDGER_CNY, c.NETWORK_RECEIVABLE, user_data_32=i),
            Account(books.interchange_income, LEDGER_CNY, c.INTERCHANGE_INCOME, user_data_32=i),
            Account(books.cash, LEDGER_CNY, c.CASH, user_data_32=i),
        ]
    nb = ids.network
    accounts += [Account(a, LEDGER_CNY, c.ISSUER_RECEIVABLE) for a in nb.issuer_receivable.values()]
    accounts += [Account(a, LEDGER_CNY, c.ISSUER_PAYABLE) for a in nb.issuer_payable.values()]
    accounts += [Account(a, LEDGER_CNY, c.ACQUIRER_PAYABLE) for a in nb.acquirer_payable.values()]
    accounts.append(Account(nb.fee_income, LEDGER_CNY, c.FEE_INCOME))
    for a, acquirer in enumerate(ids.acquirers):
        accounts += [
            Account(
                acquirer.network_receivable,
                LEDGER_CNY,
                c.ACQUIRER_NETWORK_RECEIVABLE,
                user_data_32=a,
            ),
            Account(acquirer.mdr_income, LEDGER_CNY, c.MDR_INCOME, user_data_32=a),
        ]
    for m in network.merchants:
        accounts.append(
            Account(ids.merchant[m.index], LEDGER_CNY, c.MERCHANT_PAYABLE, user_data_32=m.acquirer)
        )
    for card in network.cards:
        if card.credit:
            accounts.append(
                Account(
                    ids.card[card.index],
                    LEDGER_CNY,
                    c.CUSTOMER_CREDIT_LINE,
                    flags=D,
                    credit_limit=card.opening_fen,
                    user_data_32=card.issuer,
                )
            )
        else:
            accounts.append(
                Account(
                    ids.card[card.index],
                    LEDGER_CNY,
                    c.CUSTOMER_DEPOSIT,
                    flags=D,
                    user_data_32=card.issuer,
                )
            )
    return accounts


def _traffic(rng: random.Random, network: DemoNetwork, days: int) -> list[_Event]:
    by_scene: dict[str, list[int]] = defaultdict(list)
    for m in network.merchants:
        by_scene[m.scene].append(m.index)
    scenes = [s for s in SCENES if by_scene[s.name]]
    debit_cards = [c.index for c in network.cards if not c.credit]
    events: list[_Event] = []
    per_day = network.users * PAYMENTS_PER_USER_PER_DAY
    for day in range(days):
        for _ in range(per_day):
            card = rng.randrange(len(network.cards))
            if rng.randrange(100) < P2P_PERCENT and debit_cards:
                sender = rng.choice(debit_cards)
                at = day * 86_400 + rng.randrange(7 * 3600, 23 * 3600)
                amount = rng.randint(10, 500) * 100
                events.append(_Event(at, "p2p", sender, amount, receiver=card))
                continue
            scene = rng.choices(scenes, weights=[s.share for s in scenes])[0]
            hour = rng.choices(range(24), weights=scene.hour_weights)[0]
            at = day * 86_400 + hour * 3600 + rng.randrange(3600)
            merchant = rng.choice(by_scene[scene.name])
            low, high = scene.prices_fen
            r = rng.randint(0, 1_000)
            amount = low + (high - low) * r * r // 1_000_000  # skewed to small tickets
            if scene.name == "parking":
                events.append(_Event(at, "parking_entry", card, PARKING_HOLD_FEN, merchant))
                if rng.randrange(100) >= PARKING_NEVER_LEAVES_PERCENT:
                    leave = at + rng.randrange(600, PARKING_HOLD_SECONDS - 60)
                    events.append(_Event(leave, "parking_exit", card, amount, merchant))
            else:
                events.append(_Event(at, "purchase", card, amount, merchant))
    # stable order: by time, parking exits after their entries at equal times
    events.sort(key=lambda e: e.at_s)
    return events


class _Run:
    def __init__(self, *, ledger: Ledger, clock: FakeClock, network: DemoNetwork, seed: int):
        self.ledger = ledger
        self.clock = clock
        self.network = network
        self.seed = seed
        self.ids = _Ids(network)
        self.fees = FeeSplit()
        self.serial = itertools.count()
        self.by_scene: dict[str, Tally] = defaultdict(Tally)
        self.by_issuer: dict[str, Tally] = defaultdict(Tally)
        self.declines: Counter[str] = Counter()
        self.p2p = Tally()
        self.parking = Counter[str]()
        self.retries_absorbed = 0
        self.completed = Tally()
        self.pending_of: dict[tuple[int, int], list[int]] = defaultdict(list)  # (card, merchant)
        self.transfers_posted = 0

    def _new_ids(self, count: int) -> list[int]:
        n = next(self.serial)
        return [derive_id("demo", f"{self.seed}:{n}:{leg}") for leg in range(count)]

    def chain_for(self, event: _Event) -> list[Transfer]:
        card = self.network.cards[event.card]
        issuer = self.ids.issuers[card.issuer]
        card_account = self.ids.card[card.index]
        if event.kind == "p2p":
            receiver = self.network.cards[event.receiver]
            return p2p_chain(
                ids=self._new_ids(3),
                amount_minor=event.amount_fen,
                sender_account=card_account,
                sender_issuer=issuer,
                sender_index=card.issuer,
                receiver_account=self.ids.card[receiver.index],
                receiver_issuer=self.ids.issuers[receiver.issuer],
                receiver_index=receiver.issuer,
                network=self.ids.network,
            )
        merchant = self.network.merchants[event.merchant]
        if event.kind == "parking_entry":
            hold_id = self._new_ids(1)[0]
            self.pending_of[(event.card, event.merchant)].append(hold_id)
            event.pending_id = hold_id
            return [
                Transfer(
                    hold_id,
                    card_account,
                    issuer.network_payable,
                    event.amount_fen,
                    LEDGER_CNY,
                    TransferCode.PURCHASE_HOLD,
                    flags=TransferFlags.PENDING,
                    timeout_seconds=PARKING_HOLD_SECONDS,
                )
            ]
        chain = purchase_chain(
            ids=self._new_ids(6),
            amount_minor=event.amount_fen,
            card_account=card_account,
            issuer=issuer,
            issuer_index=card.issuer,
            network=self.ids.network,
            acquirer=self.ids.acquirers[merchant.acquirer],
            acquirer_index=merchant.acquirer,
            merchant_payable=self.ids.merchant[merchant.index],
            fees=self.fees,
        )
        if event.kind == "parking_exit":
            holds = self.pending_of.get((event.card, event.merchant))
            if not holds:
                return []
            event.pending_id = holds.pop(0)
            release = Transfer(
                self._new_ids(1)[0],
                0,
                0,
                0,
                0,
                0,
                flags=TransferFlags.VOID_PENDING_TRANSFER | TransferFlags.LINKED,
                pending_id=event.pending_id,
            )
            return [release, *chain]  # release the hold and charge the real fee, atomically
        return chain

    def record(self, event: _Event, results: list[CreateTransferResult]) -> None:
        card = self.network.cards[event.card]
        ok = all(r == OK for r in results)
        if event.kind == "parking_entry":
            self.parking["holds_placed" if ok else "holds_declined"] += 1
            if not ok:  # the car was turned away: there is no hold for its exit to release
                holds = self.pending_of.get((event.card, event.merchant), [])
                if event.pending_id in holds:
                    holds.remove(event.pending_id)
        if (
            event.kind == "parking_exit"
            and CreateTransferResult.PENDING_TRANSFER_NOT_FOUND in results
        ):
            self.parking["exits_without_hold"] += 1  # its entry was declined in the same batch
            return
        if not ok:
            self.declines[self._reason(card.credit, results)] += 1
            return
        self.transfers_posted += len(results)
        if event.kind == "parking_entry":
            return
        if event.kind == "parking_exit":
            self.parking["exits_charged"] += 1
        issuer = ISSUERS[card.issuer][0]
        if event.kind == "p2p":
            self.p2p.add(event.amount_fen)
            return
        self.completed.add(event.amount_fen)
        self.by_scene[self.network.merchants[event.merchant].scene].add(event.amount_fen)
        self.by_issuer[issuer].add(event.amount_fen)

    @staticmethod
    def _reason(credit: bool, results: list[CreateTransferResult]) -> str:
        rejected = [r for r in results if r not in (OK, CreateTransferResult.LINKED_EVENT_FAILED)]
        first = rejected[0] if rejected else CreateTransferResult.LINKED_EVENT_FAILED
        if first == CreateTransferResult.EXCEEDS_CREDITS:
            return "credit_limit_exceeded" if credit else "insufficient_funds"
        if first == CreateTransferResult.PENDING_TRANSFER_EXPIRED:
            return "parking_hold_expired"
        return str(first)


def run_demo(
    url: str,
    options: DemoOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
    audit_directory: Path | None = None,
) -> DemoResult:
    """Build the network and run the traffic on a migrated, empty database at ``url``; with
    ``audit_directory``, then append every chain to the audit log and have it co-signed by
    witness processes (``flashpay.sim.audit``)."""
    timing: dict[str, float] = {}
    started = time.perf_counter()
    tracemalloc.start()
    db.upgrade(url)
    clock = FakeClock(DAY_START_NS)
    ledger = Ledger.open(url, clock=clock)
    try:
        if ledger.lookup_accounts([100]):
            raise ValueError(f"{url} already holds a demo: use an empty database")
        network = build_network(seed=options.seed, users=options.users, merchants=options.merchants)
        run = _Run(ledger=ledger, clock=clock, network=network, seed=options.seed)
        accounts = _accounts(network, run.ids)
        for start in range(0, len(accounts), ACCOUNT_BATCH_MAX):
            opened = ledger.create_accounts(accounts[start : start + ACCOUNT_BATCH_MAX])
            if set(opened) != {"ok"}:
                raise RuntimeError(f"opening accounts failed: {Counter(opened)}")
        deposits = [
            Transfer(
                derive_id("demo-opening", f"{options.seed}:{card.index}"),
                run.ids.issuers[card.issuer].cash,
                run.ids.card[card.index],
                card.opening_fen,
                LEDGER_CNY,
                TransferCode.OPENING_DEPOSIT,
            )
            for card in network.cards
            if not card.credit
        ]
        for start in range(0, len(deposits), ACCOUNT_BATCH_MAX):
            ledger.create_transfers(deposits[start : start + ACCOUNT_BATCH_MAX])
        timing["setup_seconds"] = time.perf_counter() - started
        rng = random.Random(options.seed)
        events = _traffic(rng, network, options.days)
        traffic_started = time.perf_counter()
        for start in range(0, len(events), EVENTS_PER_BATCH):
            window = events[start : start + EVENTS_PER_BATCH]
            clock.set_ns(max(clock.now_ns(), DAY_START_NS + window[0].at_s * NS_PER_SECOND))
            chains = [(event, run.chain_for(event)) for event in window]
            batch = [t for _, chain in chains for t in chain]
            results = ledger.create_transfers(batch)
            offset = 0
            for event, chain in chains:
                if chain:
                    run.record(event, list(results[offset : offset + len(chain)]))
                offset += len(chain)
            if rng.randrange(100) < RETRIED_BATCHES_PERCENT and batch:  # a client retries
                again = ledger.create_transfers(batch)
                ok_before = [t.id for t, r in zip(batch, results, strict=True) if r == OK]
                absorbed = [t.id for t, r in zip(batch, again, strict=True) if r == EXISTS]
                if not set(ok_before) <= set(absorbed):
                    raise RuntimeError("a retried submission posted twice")
                run.retries_absorbed += len(ok_before)
            if progress is not None:
                progress(min(start + EVENTS_PER_BATCH, len(events)), len(events))
        clock.set_ns(DAY_START_NS + options.days * 86_400 * NS_PER_SECOND + NS_PER_SECOND)
        run.parking["holds_expired"] = ledger.expire_pending_transfers()
        timing["traffic_seconds"] = time.perf_counter() - traffic_started
        summary = _summary(url, run, options, len(events))
        audit = None
        if audit_directory is not None:
            audit = cosign(url, ledger, audit_directory)
            timing["audit_seconds"] = audit.seconds
    finally:
        ledger.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    timing["total_seconds"] = time.perf_counter() - started
    timing["python_peak_mib"] = peak / 2**20
    timing["payments_per_second"] = summary["payments"]["attempted"] / max(
        timing["traffic_seconds"], 1e-9
    )
    return DemoResult(summary, timing, audit)


def _balance(accounts: dict[int, Account], account_id: int, *, credit_normal: bool) -> int:
    a = accounts[account_id]
    return a.credit_balance if credit_normal else a.debit_balance


def _summary(url: str, run: _Run, options: DemoOptions, events: int) -> dict[str, Any]:
    ids = run.ids
    wanted = [b.network_payable for b in ids.issuers] + [b.network_receivable for b in ids.issuers]
    wanted += list(ids.network.issuer_receivable.values()) + list(
        ids.network.issuer_payable.values()
    )
    wanted += [*ids.network.acquirer_payable.values(), ids.network.fee_income]
    wanted += [b.network_receivable for b in ids.acquirers] + [b.mdr_income for b in ids.acquirers]
    wanted += [b.interchange_income for b in ids.issuers]
    accounts = {a.id: a for a in run.ledger.lookup_accounts(wanted)}
    positions = []
    mirror_problems = []
    for i, (name, _bin) in enumerate(ISSUERS):
        owes = _balance(accounts, ids.issuers[i].network_payable, credit_normal=True)
        owed = _balance(accounts, ids.issuers[i].network_receivable, credit_normal=False)
        net_receivable = _balance(accounts, ids.network.issuer_receivable[i], credit_normal=False)
        net_payable = _balance(accounts, ids.network.issuer_payable[i], credit_normal=True)
        if owes != net_receivable or owed != net_payable:
            mirror_problems.append(name)
        positions.append({"institution": name, "role": "issuer", "net_fen": owed - owes})
    for a, name in enumerate(ACQUIRERS):
        owed = _balance(accounts, ids.acquirers[a].network_receivable, credit_normal=False)
        if owed != _balance(accounts, ids.network.acquirer_payable[a], credit_normal=True):
            mirror_problems.append(name)
        positions.append({"institution": name, "role": "acquirer", "net_fen": owed})
    fee_income = _balance(accounts, ids.network.fee_income, credit_normal=True)
    positions.append({"institution": "China UnionPay", "role": "network", "net_fen": fee_income})
    report = check(url)
    return {
        "seed": options.seed,
        "users": options.users,
        "cards": len(run.network.cards),
        "merchants": len(run.network.merchants),
        "days": options.days,
        "events": events,
        "payments": {
            "attempted": run.completed.count + sum(run.declines.values()),
            "completed": run.completed.count,
            "volume_fen": run.completed.volume_fen,
        },
        "declines": dict(sorted(run.declines.items())),
        "by_scene": {k: [v.count, v.volume_fen] for k, v in sorted(run.by_scene.items())},
        "by_issuer": {k: [v.count, v.volume_fen] for k, v in sorted(run.by_issuer.items())},
        "p2p": [run.p2p.count, run.p2p.volume_fen],
        "parking": dict(sorted(run.parking.items())),
        "retries_absorbed": run.retries_absorbed,
        "transfers_posted": run.transfers_posted,
        "net_positions": positions,
        "mirrors_agree": not mirror_problems,
        "fees_fen": {
            "interchange": sum(
                _balance(accounts, b.interchange_income, credit_normal=True) for b in ids.issuers
            ),
            "network": fee_income,
            "acquirer": sum(
                _balance(accounts, b.mdr_income, credit_normal=True) for b in ids.acquirers
            ),
        },
        "ledger_check": {
            "ok": report.ok,
            "accounts": report.accounts,
            "transfers": report.transfers,
            "problems": [str(p) for p in report.problems[:20]],
        },
    }
