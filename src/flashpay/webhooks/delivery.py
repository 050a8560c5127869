"""The delivery worker: takes due deliveries, POSTs each event signed to its endpoint, logs
every attempt, and schedules retries with exponential backoff and jitter.

**Crash safety by lease.** Claiming a delivery is a commit of its own: the row's attempt count
goes up, its ``lease_until_ns`` is set ``lease_seconds`` ahead and an attempt row is written
``in_flight``. Only then is the request sent; its outcome is a second commit. A worker killed in
between (kill -9 mid-request) leaves the lease to lapse: the next claim marks that attempt
``interrupted`` and sends the event again. So every event is delivered at least once, with the
same ``Flashpay-Event-Id``: receivers deduplicate on it. A slow worker whose lease lapsed while
its request was in the air records only its attempt row, never the delivery's state (the
completion is conditional on the attempt number it claimed).

**Retries.** Any answer outside 2xx, a redirect, a timeout or a refused connection is a failure.
After failed attempt ``n`` the next is due in ``min(BASE * 2**(n-1), CAP)`` seconds, scaled by
a random factor in [0.5, 1] (jitter, so a receiver that comes back is not hit by every retry
at once); after ``ATTEMPTS_MAX`` the delivery is ``failed`` (a replay sends it again).
Time is the platform's clock and randomness a passed-in ``random.Random``: tests move a fake
clock instead of sleeping.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import sqlalchemy as sa

from flashpay.clock import NS_PER_SECOND
from flashpay.platform import Platform
from flashpay.webhooks.models import (
    inserted_id,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)
from flashpay.webhooks.signature import EVENT_ID_HEADER, SIGNATURE_HEADER, sign_header

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 5
BACKOFF_CAP_SECONDS = 6 * 3600
ATTEMPTS_MAX = 16
LEASE_SECONDS = 60
DELIVERY_TIMEOUT_SECONDS = 10.0
CLAIM_BATCH_MAX = 64
CONCURRENCY = 8
ERROR_CHARS_MAX = 200
POLL_SECONDS = 0.1
USER_AGENT = "flashpay-webhooks/1"


def backoff_seconds(attempt: int, rng: random.Random) -> float:
    """The wait after failed attempt ``attempt`` (1-based): capped exponential, jittered."""
    ceiling = min(BACKOFF_BASE_SECONDS * 2 ** min(attempt - 1, 32), BACKOFF_CAP_SECONDS)
    return float(ceiling) * (0.5 + 0.5 * rng.random())


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: int
    attempt: int
    event_id: str
    event_type: str
    body: bytes
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Outcome:
    succeeded: bool
    status_code: int | None
    latency_ms: int
    error: str | None


class Worker:
    """Deliver ``platform``'s due webhook deliveries; ``run_once`` is one round."""

    def __init__(
        self,
        platform: Platform,
        *,
        http: httpx.Client | None = None,
        rng: random.Random | None = None,
        lease_seconds: float = LEASE_SECONDS,
        concurrency: int = CONCURRENCY,
        timeout_seconds: float = DELIVERY_TIMEOUT_SECONDS,
    ) -> None:
        self.platform = platform
        self.http = http or httpx.Client(timeout=timeout_seconds, follow_redirects=False)
        self.rng = rng or random.Random()
        self.lease_ns = int(lease_seconds * NS_PER_SECOND)
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        self._lock = threading.Lock()  # the rng is shared by the pool's threads

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.http.close()

    def run_once(self, *, limit: int = CLAIM_BATCH_MAX) -> int:
        """Claim up to ``limit`` due deliveries, send them (in parallel), record the outcomes;
        returns how many were attempted."""
        claims = self.claim(limit=limit)
        if claims:
            list(self._pool.map(self._attempt, claims))
        return len(claims)

    def run(self, stop: threading.Event, *, poll_seconds: float = POLL_SECONDS) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # a database hiccup: the next round tries again
                log.exception("webhooks: a delivery round failed")
                busy = 0
            if not busy:
                stop.wait(poll_seconds)

    def _attempt(self, claim: Claim) -> Outcome:
        outcome = self.send(claim)
        self.complete(claim, outcome)
        return outcome

    # -- claiming ------------------------------------------------------------------------------
    def claim(self, *, limit: int = CLAIM_BATCH_MAX) -> list[Claim]:
        """Take due deliveries: attempt number up, lease set, attempt row ``in_flight``."""
        now = self.platform.clock.now_ns()
        d, e, ev = webhook_deliveries.c, webhook_endpoints.c, webhook_events.c
        query = (
            sa.select(d.id, d.attempts, d.lease_until_ns, ev.id.label("event_id"), ev.type,
                      ev.body, e.url, e.secret)
            .join(webhook_endpoints, e.id == d.endpoint_id)
            .join(webhook_events, ev.seq == d.event_seq)
            .where(d.state == "pending", d.next_attempt_at_ns <= now,
                   sa.or_(d.lease_until_ns.is_(None), d.lease_until_ns <= now),
                   e.status == "enabled")
            .order_by(d.next_attempt_at_ns, d.id)
            .limit(max(1, min(limit, CLAIM_BATCH_MAX)))
        )  # fmt: skip
        if self.platform.engine.dialect.name == "postgresql":
            query = query.with_for_update(of=webhook_deliveries, skip_locked=True)
        claims: list[Claim] = []
        with self.platform.engine.begin() as connection:
            for row in connection.execute(query).all():
                attempt = int(row.attempts) + 1
                if row.lease_until_ns is not None:  # its worker died or stalled mid-attempt
                    connection.execute(
                        webhook_attempts.update()
                        .where(webhook_attempts.c.delivery_id == row.id,
                               webhook_attempts.c.n == row.attempts,
                               webhook_attempts.c.outcome == "in_flight")
                        .values(outcome="interrupted", error="the worker stopped mid-attempt")
                    )  # fmt: skip
                connection.execute(
                    webhook_deliveries.update()
                    .where(d.id == row.id)
                    .values(attempts=attempt, lease_until_ns=now + self.lease_ns, updated_at_ns=now)
                )
                connection.execute(
                    webhook_attempts.insert().values(
                        delivery_id=row.id, n=attempt, started_at_ns=now, outcome="in_flight"
                    )
                )
                claims.append(
                    Claim(int(row.id), attempt, str(row.event_id), str(row.type),
                          str(row.body).encode(), str(row.url), str(row.secret))
                )  # fmt: skip
        return claims

    # -- sending -------------------------------------------------------------------------------
    def send(self, claim: Claim) -> Outcome:
        """POST the event to the endpoint, signed now; never raises for the receiver's faults."""
        timestamp = self.platform.clock.now_ns() // NS_PER_SECOND
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign_header([claim.secret], timestamp, claim.body),
            EVENT_ID_HEADER: claim.event_id,
            "Flashpay-Event-Type": claim.event_type,
            "Flashpay-Delivery-Attempt": str(claim.attempt),
        }
        started = time.perf_counter()
        try:
            response = self.http.post(claim.url, content=claim.body, headers=headers)
        except httpx.HTTPError as exc:
            latency = int((time.perf_counter() - started) * 1000)
            error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS_MAX]
            return Outcome(False, None, latency, error)
        latency = int((time.perf_counter() - started) * 1000)
        ok = 200 <= response.status_code < 300
        return Outcome(
            ok, response.status_code, latency, None if ok else f"HTTP {response.status_code}"
        )

    def complete(self, claim: Claim, outcome: Outcome) -> None:
        """Record the attempt, and — if the claim is still this worker's — the delivery's state:
        ``succeeded``, ``failed`` after the last attempt, else due again after the backoff."""
        now = self.platform.clock.now_ns()
        with self._lock:
            wait = backoff_seconds(claim.attempt, self.rng)
        if outcome.succeeded:
            values: dict[str, object] = {"state": "succeeded", "next_attempt_at_ns": None}
        elif claim.attempt >= ATTEMPTS_MAX:
            values = {"state": "failed", "next_attempt_at_ns": None}
        else:
            values = {"next_attempt_at_ns": now + int(wait * NS_PER_SECOND)}
        d, a = webhook_deliveries.c, webhook_attempts.c
        with self.platform.engine.begin() as connection:
            connection.execute(
                webhook_attempts.update()
                .where(a.delivery_id == claim.delivery_id, a.n == claim.attempt)
                .values(status_code=outcome.status_code, latency_ms=outcome.latency_ms,
                        error=outcome.error,
                        outcome="succeeded" if outcome.succeeded else "failed")
            )  # fmt: skip
            connection.execute(
                webhook_deliveries.update()
                .where(d.id == claim.delivery_id, d.attempts == claim.attempt, d.state == "pending")
                .values(lease_until_ns=None, updated_at_ns=now, **values)
            )


def replay(
    connection: sa.Connection,
    *,
    event_seq: int,
    merchant_id: int,
    endpoint_ids: Sequence[int],
    now_ns: int,
) -> list[int]:
    """A new round of deliveries of one event, to each of ``endpoint_ids``, due now; their ids."""
    d = webhook_deliveries.c
    ids = []
    for endpoint_id in sorted(set(endpoint_ids)):
        last = connection.execute(
            sa.select(sa.func.max(d.round)).where(
                d.event_seq == event_seq, d.endpoint_id == endpoint_id
            )
        ).scalar()
        new_id = inserted_id(connection.execute(
            webhook_deliveries.insert().values(
                event_seq=event_seq, endpoint_id=endpoint_id, merchant_id=merchant_id,
                round=1 if last is None else int(last) + 1, state="pending", attempts=0,
                next_attempt_at_ns=now_ns, lease_until_ns=None, created_at_ns=now_ns,
                updated_at_ns=now_ns,
            )
        ))  # fmt: skip
        ids.append(int(new_id))
    return ids
