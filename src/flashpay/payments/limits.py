"""Daily limits that hold exactly under concurrency: reserve before posting, release on decline.

A counter is one row per (scope, Beijing day). ``reserve_in`` adds an amount only if the new
total stays within the limit, in one conditional upsert in the payment's own transaction — the
database's row lock makes concurrent reservations queue, so no interleaving can pass the limit.
A payment the ledger then declines gives its reservation back. A process that dies between
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


def reserve_in(
    connection: sa.Connection, *, day: str, amount: int, limits: Sequence[tuple[str, int]]
) -> bool:
    """Reserve ``amount`` inside the caller's transaction, in one statement: an upsert that adds
    ``amount`` to each counter only where the total stays within its limit. If any counter
    refuses, the ones that took it are given back at once (same transaction), and the answer is
    ``False``. Rows are written in sorted order, so concurrent reservations never deadlock."""
    ordered = sorted(limits)
    if any(amount > limit for _, limit in ordered):
        return False  # a first row of the day is inserted unchecked, so refuse it here
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(limit_usage).values(
        [{"scope": scope, "day": day, "used": amount} for scope, _ in ordered]
    )
    cap = sa.case(dict(ordered), value=limit_usage.c.scope)
    statement = statement.on_conflict_do_update(
        index_elements=[limit_usage.c.scope, limit_usage.c.day],
        set_={"used": limit_usage.c.used + statement.excluded.used},
        where=limit_usage.c.used + statement.excluded.used <= cap,
    ).returning(limit_usage.c.scope)
    taken = [str(scope) for scope in connection.execute(statement).scalars()]
    if len(taken) == len(ordered):
        return True
    if taken:
        connection.execute(
            limit_usage.update()
            .where(limit_usage.c.scope.in_(taken), limit_usage.c.day == day)
            .values(used=limit_usage.c.used - amount)
        )
    return False


@dataclass(frozen=True, slots=True)
class Reservation:
    """One payment's claim on its daily counters: ``amount`` against each (scope, limit)."""

    amount: int
    limits: tuple[tuple[str, int], ...]


class Counters:
    """A batch's daily counters, locked for the caller's transaction: ``take`` decides one
    reservation at a time against the running totals (all or nothing), ``write`` stores the
    totals that changed. Locking creates the day's missing counters first (a write, so on
    SQLite the transaction holds the database's write lock from there on) and reads them
    ``FOR UPDATE`` on PostgreSQL in scope order, like ``reserve_in``, so batches and single
    reservations never deadlock. Three statements whatever the batch size."""

    def __init__(self, connection: sa.Connection, *, day: str, scopes: Iterable[str]) -> None:
        self._connection = connection
        self._day = day
        ordered = sorted(set(scopes))
        self._used: dict[str, int] = {}
        if ordered:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            connection.execute(
                dialect.insert(limit_usage).on_conflict_do_nothing(),
                [{"scope": scope, "day": day, "used": 0} for scope in ordered],
            )
            rows = connection.execute(
                sa.select(limit_usage.c.scope, limit_usage.c.used)
                .where(limit_usage.c.day == day, limit_usage.c.scope.in_(ordered))
                .order_by(limit_usage.c.scope)
                .with_for_update()
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


def reserve_many(
    connection: sa.Connection, *, day: str, wants: Sequence[Reservation]
) -> list[bool]:
    """Reserve for a batch of payments inside the caller's transaction, each in order against
    the running totals (see ``Counters``): ``True`` where all of a reservation's counters took
    its amount."""
    counters = Counters(connection, day=day, scopes=(s for w in wants for s, _ in w.limits))
    taken = [counters.take(want) for want in wants]
    counters.write()
    return taken


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


def release_in(connection: sa.Connection, *, day: str, amount: int, scopes: Sequence[str]) -> None:
    """Give a reservation back, in the caller's transaction."""
    connection.execute(
        limit_usage.update()
        .where(limit_usage.c.scope.in_(sorted(scopes)), limit_usage.c.day == day)
        .values(used=limit_usage.c.used - amount)
    )


def used(*, platform: Platform, scope: str, day: str) -> int:
    with platform.engine.connect() as connection:
        value = connection.execute(
            sa.select(limit_usage.c.used).where(
                limit_usage.c.scope == scope, limit_usage.c.day == day
            )
        ).scalar()
    return int(value or 0)
