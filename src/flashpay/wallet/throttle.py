"""Attempt limits: password guessing and card-binding starts (decision 0014).

**Password checks.** A counter is one row of ``wallet_attempts`` per *scope*: ``phone:<phone>``
for an account (whether or not it exists, so the answers do not tell who has an account) and
``ip:<address>`` for the source of a login. Each check of a password — a login, or the password
that authorizes a PIN or limits change — is *charged before the slow hash runs*: one short
transaction locks the scopes' rows (an upsert whose no-op ``DO UPDATE`` takes the row lock on
PostgreSQL, the write lock on SQLite, in scope order so concurrent charges never deadlock), asks
the pure ``plan_attempt`` whether a try is allowed now, and writes the counted failure back. So
concurrent guesses, from any number of worker processes, queue on the row and each sees the
ones before it: no interleaving lets more guesses through than the counts allow. A right password
then clears the account's counts (and gives the source back the one it was charged).

The numbers, per account: the first wrong password costs nothing (a typo, retyped at once);
after the k-th in a row (k ≥ 2) the next try waits ``ACCOUNT_BACKOFF_SECONDS · 2^(k-2)`` (1, 2,
4 s); the ``ACCOUNT_FAILURES_MAX``-th locks the account for ``ACCOUNT_LOCK_SECONDS`` (15 min),
doubled for each lock since the counts were last cleared, at most ``ACCOUNT_LOCK_SECONDS_MAX``
(a day). A lock ends on its own; a right password (once the lock has ended) clears everything;
counts are forgotten ``ACCOUNT_MEMORY_SECONDS`` after the last failure or the end of the last
lock. Per source: ``SOURCE_FAILURES_MAX`` failures (no back-off before them, so an address
shared by many honest users is not slowed) lock it for ``SOURCE_LOCK_SECONDS``, doubling up to
``SOURCE_LOCK_SECONDS_MAX``; forgotten after ``SOURCE_MEMORY_SECONDS`` without a failure.

**Card-binding starts.** Each start sends an SMS with a fresh one-time code (five guesses each),
so starts are counted per Beijing day in ``wallet_daily_counts``: per card (its keyed PAN
fingerprint), per user and per phone the code goes to. ``count_daily`` adds one to each counter
with an upsert that returns the new count (atomic on both databases) in the start's transaction;
a start over any limit is refused and its transaction rolled back.

A refusal is a value (``Refusal``): ``wallet.errors.throttled`` turns it into a ``WalletError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flashpay.cards.service import CHINA_TIME
from flashpay.clock import NS_PER_SECOND
from flashpay.wallet.models import wallet_attempts, wallet_daily_counts

ACCOUNT_FAILURES_MAX = 5  # wrong passwords in a row that lock the account
ACCOUNT_BACKOFF_SECONDS = 1  # the wait after the second failure; doubles with each one
ACCOUNT_LOCK_SECONDS = 15 * 60  # the first lock; doubles with each lock since the last clear
ACCOUNT_LOCK_SECONDS_MAX = 24 * 3600
ACCOUNT_MEMORY_SECONDS = 24 * 3600  # forgotten this long after the last failure or lock
SOURCE_FAILURES_MAX = 30  # failed logins from one address that lock the address
SOURCE_LOCK_SECONDS = 15 * 60
SOURCE_LOCK_SECONDS_MAX = 4 * 3600
SOURCE_MEMORY_SECONDS = 3600
# Card-binding starts per Beijing day. A wallet holds up to 15 cards (``CARDS_MAX``), all of them
# possibly on the holder's one phone: the user and phone limits leave room to fill it in a day.
BINDING_STARTS_PER_CARD_MAX = 5
BINDING_STARTS_PER_USER_MAX = 20
BINDING_STARTS_PER_PHONE_MAX = 20
_DOUBLINGS_MAX = 16  # 2**16 times the first lock is far past every _MAX: no huge exponent

ACCOUNT_LOCKED = "account_locked"
TOO_MANY_ATTEMPTS = "too_many_attempts"
BINDING_LIMIT_REACHED = "binding_limit_reached"


@dataclass(frozen=True, slots=True)
class Policy:
    """How one kind of scope is throttled (``ACCOUNT`` and ``SOURCE`` below)."""

    failures_max: int
    backoff_seconds: int  # 0: no back-off before the lock
    lock_seconds: int
    lock_seconds_max: int
    memory_seconds: int
    lock_code: str  # the refusal while locked

    def backoff_seconds_after(self, failures: int) -> int:
        """The wait after the ``failures``-th failure in a row (none after the first)."""
        if failures < 2 or not self.backoff_seconds:
            return 0
        return self.backoff_seconds << min(failures - 2, _DOUBLINGS_MAX)

    def lock_seconds_after(self, lockouts: int) -> int:
        """The length of the ``lockouts``-th lock in a row (1, 2, …)."""
        doublings = min(lockouts - 1, _DOUBLINGS_MAX)
        return min(self.lock_seconds << doublings, self.lock_seconds_max)


ACCOUNT = Policy(
    failures_max=ACCOUNT_FAILURES_MAX,
    backoff_seconds=ACCOUNT_BACKOFF_SECONDS,
    lock_seconds=ACCOUNT_LOCK_SECONDS,
    lock_seconds_max=ACCOUNT_LOCK_SECONDS_MAX,
    memory_seconds=ACCOUNT_MEMORY_SECONDS,
    lock_code=ACCOUNT_LOCKED,
)
SOURCE = Policy(
    failures_max=SOURCE_FAILURES_MAX,
    backoff_seconds=0,
    lock_seconds=SOURCE_LOCK_SECONDS,
    lock_seconds_max=SOURCE_LOCK_SECONDS_MAX,
    memory_seconds=SOURCE_MEMORY_SECONDS,
    lock_code=TOO_MANY_ATTEMPTS,  # an address is not an account
)


@dataclass(frozen=True, slots=True)
class AttemptState:
    """One scope's counts (a row of ``wallet_attempts``); times in ns, 0 for none."""

    failures: int = 0
    lockouts: int = 0
    next_attempt_ns: int = 0
    locked_until_ns: int = 0
    last_failure_ns: int = 0


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused try: the API error ``code`` (a 429) and when to try again."""

    code: str
    retry_after_seconds: int


def _seconds_until(until_ns: int, now_ns: int) -> int:
    return max(1, math.ceil((until_ns - now_ns) / NS_PER_SECOND))


def plan_attempt(policy: Policy, state: AttemptState, now_ns: int) -> AttemptState | Refusal:
    """The state after charging one try as a failure, or the refusal if no try is allowed now
    (checked in this order: the lock, then the back-off). The charged try is cleared again by
    ``cleared`` if the password was right."""
    if state.locked_until_ns > now_ns:
        return Refusal(policy.lock_code, _seconds_until(state.locked_until_ns, now_ns))
    if state.next_attempt_ns > now_ns:
        return Refusal(TOO_MANY_ATTEMPTS, _seconds_until(state.next_attempt_ns, now_ns))
    quiet_since = max(state.last_failure_ns, state.locked_until_ns)
    if now_ns - quiet_since >= policy.memory_seconds * NS_PER_SECOND:
        state = AttemptState()  # no failure or lock for long enough: forgotten
    failures = state.failures + 1
    if failures >= policy.failures_max:
        lockouts = state.lockouts + 1
        locked_until = now_ns + policy.lock_seconds_after(lockouts) * NS_PER_SECOND
        return AttemptState(0, lockouts, 0, locked_until, now_ns)
    backoff_seconds = policy.backoff_seconds_after(failures)
    next_attempt = now_ns + backoff_seconds * NS_PER_SECOND
    return AttemptState(failures, state.lockouts, next_attempt, 0, now_ns)


def account_scope(phone: str) -> str:
    return f"phone:{phone}"


def source_scope(address: str) -> str:
    return f"ip:{address}"


def _upsert(connection: sa.Connection, table: sa.Table) -> Any:
    """An INSERT of the connection's dialect, which has ``on_conflict_do_update``."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


_ATTEMPT_COLUMNS = (
    wallet_attempts.c.scope,
    wallet_attempts.c.failures,
    wallet_attempts.c.lockouts,
    wallet_attempts.c.next_attempt_ns,
    wallet_attempts.c.locked_until_ns,
    wallet_attempts.c.last_failure_ns,
)
_SET_ATTEMPT = (
    wallet_attempts.update()
    .where(wallet_attempts.c.scope == sa.bindparam("b_scope"))
    .values(
        failures=sa.bindparam("b_failures"),
        lockouts=sa.bindparam("b_lockouts"),
        next_attempt_ns=sa.bindparam("b_next_attempt_ns"),
        locked_until_ns=sa.bindparam("b_locked_until_ns"),
        last_failure_ns=sa.bindparam("b_last_failure_ns"),
    )
)
_CLEAR_ACCOUNT = (
    wallet_attempts.update()
    .where(wallet_attempts.c.scope == sa.bindparam("b_scope"))
    .values(failures=0, lockouts=0, next_attempt_ns=0, locked_until_ns=0)
)
_GIVE_BACK = (
    wallet_attempts.update()
    .where(wallet_attempts.c.scope == sa.bindparam("b_scope"), wallet_attempts.c.failures > 0)
    .values(failures=wallet_attempts.c.failures - 1)
)


def charge(
    connection: sa.Connection, *, scopes: Sequence[tuple[str, Policy]], now_ns: int
) -> Refusal | None:
    """Charge one try to each scope, in the caller's transaction, or refuse it (writing nothing):
    the first refused scope in the order given, waiting for the longest of the refused ones.
    Locks the scopes' rows (created if missing) in scope order."""
    policies = dict(scopes)
    statement = _upsert(connection, wallet_attempts)
    statement = statement.on_conflict_do_update(
        index_elements=[wallet_attempts.c.scope],
        set_={"failures": wallet_attempts.c.failures},
    ).returning(*_ATTEMPT_COLUMNS)
    rows = connection.execute(
        statement,
        [
            {"scope": scope, "failures": 0, "lockouts": 0, "next_attempt_ns": 0,
             "locked_until_ns": 0, "last_failure_ns": 0}
            for scope in sorted(policies)
        ],
    )  # fmt: skip
    states = {
        str(row.scope): AttemptState(
            int(row.failures),
            int(row.lockouts),
            int(row.next_attempt_ns),
            int(row.locked_until_ns),
            int(row.last_failure_ns),
        )
        for row in rows
    }
    plans = {scope: plan_attempt(policy, states[scope], now_ns) for scope, policy in scopes}
    refusals = [plan for plan in plans.values() if isinstance(plan, Refusal)]
    if refusals:
        wait = max(r.retry_after_seconds for r in refusals)
        return Refusal(refusals[0].code, wait)
    connection.execute(
        _SET_ATTEMPT,
        [
            {"b_scope": scope, "b_failures": s.failures, "b_lockouts": s.lockouts,
             "b_next_attempt_ns": s.next_attempt_ns, "b_locked_until_ns": s.locked_until_ns,
             "b_last_failure_ns": s.last_failure_ns}
            for scope, s in plans.items()
            if isinstance(s, AttemptState)
        ],
    )  # fmt: skip
    return None


def cleared(connection: sa.Connection, *, account: str, source: str | None = None) -> None:
    """A right password, in the caller's transaction: the account's counts are cleared (lock,
    back-off, lockouts), and the source gets back the one failure it was charged."""
    connection.execute(_CLEAR_ACCOUNT, {"b_scope": account})
    if source is not None:
        connection.execute(_GIVE_BACK, {"b_scope": source})


# -- daily counts -------------------------------------------------------------------------------
def beijing_day(now_ns: int) -> str:
    """The calendar day in Beijing (UTC+8), YYYY-MM-DD."""
    return (datetime.fromtimestamp(now_ns // NS_PER_SECOND, UTC) + CHINA_TIME).date().isoformat()


def seconds_to_next_beijing_day(now_ns: int) -> int:
    local = datetime.fromtimestamp(now_ns // NS_PER_SECOND, UTC) + CHINA_TIME
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, math.ceil((midnight - local).total_seconds()))


def count_daily(
    connection: sa.Connection, *, day: str, scopes: Sequence[tuple[str, int]]
) -> str | None:
    """Add one to each ``(scope, limit)``'s count of ``day``, in the caller's transaction (an
    upsert per scope, in scope order, returning the new count); the first scope whose count is
    now over its limit, or ``None``. On a refusal the caller rolls the transaction back."""
    limits = dict(scopes)
    statement = _upsert(connection, wallet_daily_counts)
    statement = statement.on_conflict_do_update(
        index_elements=[wallet_daily_counts.c.scope, wallet_daily_counts.c.day],
        set_={"count": wallet_daily_counts.c.count + 1},
    ).returning(wallet_daily_counts.c.scope, wallet_daily_counts.c.count)
    rows = connection.execute(
        statement, [{"scope": scope, "day": day, "count": 1} for scope in sorted(limits)]
    )
    counts = {str(scope): int(count) for scope, count in rows}
    for scope, limit in scopes:
        if counts[scope] > limit:
            return scope
    return None
