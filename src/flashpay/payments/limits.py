"""Daily limits that hold exactly under concurrency: reserve before posting, release on decline.

A counter is one row per (scope, Beijing day). A batch of payments locks its counters
(``Counters``) in its record's transaction — created if missing, then read ``FOR UPDATE`` in
scope order, so concurrent batches queue and cannot deadlock — takes each payment's amount in
order only where every total stays within its limit, and writes the new totals back before it
commits: no interleaving can pass a limit. A payment the ledger then declines gives its
reservation back (``release_many``). A process that dies between
reserving and posting leaves the reservation in place (on the safe side: the user can spend
less, never more) until recovery declines the record and gives it back — once, from whichever
process settles the ``created`` record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flashpay.cards.service import CHINA_TIME
from flashpay.payments.models import limit_usage
from flashpay.platform import Platform

YUAN = 100
PER_TRANSFER_MAX = 50_000 * YUAN
DAILY_PER_USER_MAX = 100_000 * YUAN
DAILY_PER_CARD_MAX = 50_000 * YUAN


def beijing_day(now_ns: int) -> str:
    return (datetime.fromtimestamp(now_ns // 1_000_000_000, UTC) + CHINA_TIME).date().isoformat()


@dataclass(frozen=True, slots=True)
class Reservation:
    """One payment's claim on its daily counters: ``amount`` against each (scope, limit)."""

    amount: int
    limits: tuple[tuple[str, int], ...]


class Counters:
    """A batch's daily counters, locked for the caller's transaction: ``take`` decides one
    reservation at a time against the running totals (all or nothing), ``write`` stores the
    totals that changed. Locking is one upsert that creates the day's missing counters and
    locks and reads them all, in scope order, so concurrent batches never deadlock (on SQLite
    it is a write: the transaction holds the database's write lock from there on). Two
    statements whatever the batch size."""

    def __init__(self, connection: sa.Connection, *, day: str, scopes: Iterable[str]) -> None:
        self._connection = connection
        self._day = day
        ordered = sorted(set(scopes))
        self._used: dict[str, int] = {}
        if ordered:
            insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert
            # One upsert creates the missing counters and locks and reads them all: the no-op
            # DO UPDATE takes each row's lock (the write lock on SQLite), in scope order, and
            # RETURNING answers its total. An executemany of one cached statement.
            statement = insert(limit_usage)
            statement = statement.on_conflict_do_update(
                index_elements=[limit_usage.c.scope, limit_usage.c.day],
                set_={"used": limit_usage.c.used},
            ).returning(limit_usage.c.scope, limit_usage.c.used)
            rows = connection.execute(
                statement, [{"scope": scope, "day": day, "used": 0} for scope in ordered]
            )
            self._used = {str(scope): int(used) for scope, used in rows}
        self._before = dict(self._used)

    def take(self, want: Reservation) -> bool:
        if not all(self._used[s] + want.amount <= limit for s, limit in want.limits):
            return False
        for scope, _ in want.limits:
            self._used[scope] += want.amount
        return True

    def write(self) -> None:
        changed = [
            {"s": scope, "d": self._day, "u": used}
            for scope, used in self._used.items()
            if used != self._before[scope]
        ]
        if changed:
            self._connection.execute(_SET_USED, changed)
        self._before = dict(self._used)


_SET_USED = (
    limit_usage.update()
    .where(limit_usage.c.scope == sa.bindparam("s"), limit_usage.c.day == sa.bindparam("d"))
    .values(used=sa.bindparam("u"))
)
_GIVE_BACK = (
    limit_usage.update()
    .where(limit_usage.c.scope == sa.bindparam("s"), limit_usage.c.day == sa.bindparam("d"))
    .values(used=limit_usage.c.used - sa.bindparam("a"))
)


def release_many(
    connection: sa.Connection, *, day: str, given_back: Sequence[tuple[int, Sequence[str]]]
) -> None:
    """Give reservations back, in the caller's transaction: (amount, scopes) each, summed per
    counter into one executemany."""
    totals: dict[str, int] = defaultdict(int)
    for amount, scopes in given_back:
        for scope in scopes:
            totals[scope] += amount
    if totals:
        connection.execute(_GIVE_BACK, [{"s": s, "d": day, "a": totals[s]} for s in sorted(totals)])


def used(*, platform: Platform, scope: str, day: str) -> int:
    with platform.engine.connect() as connection:
        value = connection.execute(
            sa.select(limit_usage.c.used).where(
                limit_usage.c.scope == scope, limit_usage.c.day == day
            )
        ).scalar()
    return int(value or 0)
