"""The deriver: turns the ledger's committed chains (and lapsed holds) into event rows, with a
durable cursor of its own, and fans each new event out to its merchant's endpoints.

**Why not the outbox.** ``ledger_outbox`` is the audit log's queue: its publisher deletes what
it takes (``Ledger.drain_outbox``), so a second consumer would steal its rows. The deriver reads
``ledger_chains`` instead (``Ledger.iter_chains``, in chain id order) and keeps its position in
``webhook_cursors``.

**Why a low-water mark.** A chain's id is the ledger timestamp of its first transfer, given out
*before* its batch commits (on PostgreSQL in a transaction of its own), so chains may commit out
of id order: a cursor at the highest id seen could step over a chain that commits a moment later
with a lower id. The durable cursor is therefore a *low-water mark*: every chain at or below it
has been derived, and it never passes ``now - SETTLE_SECONDS`` (a batch commits within that of
taking its timestamps). Each pass reads after the highest id this process has seen (fast: new
chains within ``POLL_SECONDS``); every ``FULL_PASS_SECONDS`` it reads again from the low-water
mark and derives what a late commit left behind. Re-reading is harmless: event ids are derived
from the fact, the insert skips ids that exist, and the chains this process handled already are
remembered. After a crash a new process starts from the low-water mark: at least once, never
two ids for one fact (decision 0024).

**One deriver at a time.** The write transaction starts by updating the ledger cursor's row:
on PostgreSQL a row lock, on SQLite the write lock. So the events' ``seq`` (the feed's order) is
assigned and committed in order, and two derivers (every ``flashpay serve`` worker runs one, and
``flashpay webhooks deliver`` does) only ever wait for each other.

**Lapsed holds** have no chain (the ledger releases an expired hold without a posting). Their
cursor is a deadline: holds whose deadline is in ``(cursor, now - HOLD_GRACE_SECONDS]`` and that
are still authorized become ``hold.expired``; the grace lets a capture that raced the deadline
be recorded first (after the deadline the ledger refuses it anyway).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.clock import NS_PER_SECOND, to_datetime
from flashpay.ledger.types import CommittedChain
from flashpay.payments.attempts import Payment
from flashpay.payments.feeds import lapsed_holds, payments_of, refunds_of
from flashpay.platform import Platform
from flashpay.webhooks.events import (
    EventType,
    Fact,
    chain_payment_id,
    classify,
    event_body,
    names_its_payment,
)
from flashpay.webhooks.models import (
    inserted_id,
    webhook_cursors,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)

log = logging.getLogger(__name__)

SETTLE_SECONDS = 5
FULL_PASS_SECONDS = 1.0
POLL_SECONDS = 0.1
HOLD_GRACE_SECONDS = 5
CHAINS_PAGE = 1000
PAGES_PER_PASS_MAX = 20
LEDGER_CURSOR = "ledger"
HOLDS_CURSOR = "holds"
UNRESOLVED_GIVE_UP_NS = 60 * NS_PER_SECOND
SEEN_MAX = 1_000_000  # chain ids remembered above the low-water mark (a bound, not a goal)


def time_text(at_ns: int) -> str:
    """RFC 3339 UTC with microseconds, as every event body carries its times."""
    return to_datetime(at_ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class PassReport:
    chains: int
    events: int
    deliveries: int
    low_water: int


class Deriver:
    """Derive events from ``platform``'s ledger; ``run_once`` is one pass, ``run`` loops."""

    def __init__(
        self,
        platform: Platform,
        *,
        settle_seconds: float = SETTLE_SECONDS,
        hold_grace_seconds: float = HOLD_GRACE_SECONDS,
    ) -> None:
        self.platform = platform
        self.settle_ns = int(settle_seconds * NS_PER_SECOND)
        self.hold_grace_ns = int(hold_grace_seconds * NS_PER_SECOND)
        self._high = 0
        self._seen: set[int] = set()
        self._passes = 0

    def run_once(self, *, full: bool = True) -> PassReport:
        """One pass: read new chains (``full``: from the low-water mark), derive and record
        their events, move the cursors. Safe to run in many processes at once. Lapsed holds
        and the low-water mark move on full passes and on passes that found chains."""
        low = self._position(LEDGER_CURSOR)
        after = low if full else max(low, self._high)
        chains: list[CommittedChain] = []
        for _page in range(PAGES_PER_PASS_MAX):
            page = self.platform.ledger.iter_chains(after_chain_id=after, limit=CHAINS_PAGE)
            chains.extend(c for c in page if c.chain_id not in self._seen)
            if len(page) < CHAINS_PAGE:
                break
            after = page[-1].chain_id
        self._passes += 1
        if not chains and not full:  # an idle fast pass writes nothing (no lock, no commit)
            return PassReport(0, 0, 0, low)
        return self._record(chains, low)

    def run(self, stop: threading.Event, *, poll_seconds: float = POLL_SECONDS) -> None:
        """Pass every ``poll_seconds`` (a full pass every ``FULL_PASS_SECONDS``) until ``stop``;
        a failing pass is logged and tried again, never fatal."""
        every = max(1, round(FULL_PASS_SECONDS / max(poll_seconds, 0.001)))
        n = 0
        while not stop.is_set():
            try:
                self.run_once(full=n % every == 0)
            except Exception:  # a database hiccup: the next pass tries again
                log.exception("webhooks: a derivation pass failed")
            n += 1
            stop.wait(poll_seconds)

    # -- the write transaction -------------------------------------------------------------------
    def _record(self, chains: Sequence[CommittedChain], low: int) -> PassReport:
        now = self.platform.clock.now_ns()
        events = deliveries = 0
        unresolved: list[int] = []
        with self.platform.engine.begin() as connection:
            connection.execute(  # the deriver's lock (row lock / SQLite's write lock)
                webhook_cursors.update()
                .where(webhook_cursors.c.name == LEDGER_CURSOR)
                .values(updated_at_ns=now)
            )
            low = self._position(LEDGER_CURSOR, connection)
            pids = {p for c in chains if (p := chain_payment_id(c)) is not None}
            found = payments_of(connection, pids)
            refunds = refunds_of(connection, pids)
            facts: list[tuple[Fact, Payment]] = []
            for chain in chains:
                pid = chain_payment_id(chain)
                if pid is None:
                    continue
                payment = found.get(pid)
                fact = classify(chain, refunds.get(pid, ()))
                if payment is None and names_its_payment(chain, pid):
                    # a payment's chain whose record this read does not show: hold the
                    # low-water mark below it for a while, then give up loudly
                    if chain.chain_id > now - UNRESOLVED_GIVE_UP_NS:
                        unresolved.append(chain.chain_id)
                    else:
                        log.warning(
                            "webhooks: chain %d of payment %d is no event", chain.chain_id, pid
                        )
                    continue
                if fact is not None and payment is not None and payment.merchant_id is not None:
                    facts.append((fact, payment))
            facts.extend(self._lapsed_holds(connection, now))
            events, deliveries = insert_events(connection, facts, now_ns=now)
            high = max([self._high, *(c.chain_id for c in chains)])
            new_low = max(low, min(high, now - self.settle_ns))
            if unresolved:
                new_low = min(new_low, min(unresolved) - 1)
            new_low = max(new_low, low)
            connection.execute(
                webhook_cursors.update()
                .where(webhook_cursors.c.name == LEDGER_CURSOR)
                .values(position=new_low, updated_at_ns=now)
            )
        # after the commit: remember what is done, forget what the low-water mark covers
        self._high = high
        skip = set(unresolved)
        self._seen.update(c.chain_id for c in chains if c.chain_id not in skip)
        if len(self._seen) > SEEN_MAX or self._passes % 64 == 0:
            self._seen = {c for c in self._seen if c > new_low}
        return PassReport(len(chains), events, deliveries, new_low)

    def _lapsed_holds(self, connection: sa.Connection, now: int) -> list[tuple[Fact, Payment]]:
        after = self._position(HOLDS_CURSOR, connection)
        until = now - self.hold_grace_ns
        if until <= after:
            return []
        lapsed = lapsed_holds(connection, after_ns=after, until_ns=until)
        position = until
        if len(lapsed) >= 1000 and lapsed[-1].hold_expires_at_ns is not None:
            position = lapsed[-1].hold_expires_at_ns  # a full page: the rest next pass
            lapsed = [p for p in lapsed if p.hold_expires_at_ns != position]
            position -= 1
        connection.execute(
            webhook_cursors.update()
            .where(webhook_cursors.c.name == HOLDS_CURSOR)
            .values(position=position, updated_at_ns=now)
        )
        return [
            (Fact(EventType.HOLD_EXPIRED, p.id, 0, p.amount, p.hold_expires_at_ns or 0, p.id), p)
            for p in lapsed
            if p.merchant_id is not None
        ]

    def _position(self, name: str, connection: sa.Connection | None = None) -> int:
        if connection is None:
            with self.platform.engine.connect() as fresh:
                return self._position(name, fresh)
        value = connection.execute(
            sa.select(webhook_cursors.c.position).where(webhook_cursors.c.name == name)
        ).scalar()
        if value is None:
            raise RuntimeError(f"webhook cursor {name!r} missing: run `flashpay db upgrade`")
        return int(value)


def insert_events(
    connection: sa.Connection, facts: Sequence[tuple[Fact, Payment]], *, now_ns: int
) -> tuple[int, int]:
    """Insert the facts whose ids are not recorded yet, in order, and one delivery per enabled
    endpoint of the merchant that takes the type; returns (events, deliveries) inserted."""
    if not facts:
        return 0, 0
    wanted = list({f.id: (f, p) for f, p in facts}.values())
    existing = {
        str(r[0])
        for r in connection.execute(
            sa.select(webhook_events.c.id).where(webhook_events.c.id.in_([f.id for f, _ in wanted]))
        )
    }
    fresh = [(f, p) for f, p in wanted if f.id not in existing]
    if not fresh:
        return 0, 0
    merchants = {int(p.merchant_id) for _, p in fresh if p.merchant_id is not None}
    e = webhook_endpoints.c
    endpoints: dict[int, list[tuple[int, frozenset[str]]]] = {}
    for row in connection.execute(
        sa.select(e.id, e.merchant_id, e.event_types).where(
            e.merchant_id.in_(sorted(merchants)), e.status == "enabled"
        )
    ):
        types = frozenset(str(row.event_types).split(","))
        endpoints.setdefault(int(row.merchant_id), []).append((int(row.id), types))
    deliveries = 0
    for fact, payment in fresh:
        merchant_id = int(payment.merchant_id or 0)
        body = event_body(fact, payment, created_at=time_text(fact.created_at_ns))
        seq = inserted_id(connection.execute(
            webhook_events.insert().values(
                id=fact.id, merchant_id=merchant_id, type=fact.type.value,
                created_at_ns=fact.created_at_ns, derived_at_ns=now_ns, source=fact.source,
                body=json.dumps(body, separators=(",", ":"), sort_keys=True),
            )
        ))  # fmt: skip
        rows = [
            {"event_seq": int(seq), "endpoint_id": endpoint_id, "merchant_id": merchant_id,
             "round": 0, "state": "pending", "attempts": 0, "next_attempt_at_ns": now_ns,
             "lease_until_ns": None, "created_at_ns": now_ns, "updated_at_ns": now_ns}
            for endpoint_id, types in endpoints.get(merchant_id, [])
            if fact.type.value in types
        ]  # fmt: skip
        if rows:
            connection.execute(webhook_deliveries.insert(), rows)
            deliveries += len(rows)
    return len(fresh), deliveries
