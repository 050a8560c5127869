"""The ledger's storage layer: raw DBAPI connections (psycopg or sqlite3), the two SQL dialects,
the retry loop every transaction runs in, and the timestamp allocation every batch starts with.

``Storage`` is the base of every part of ``Ledger`` (accounts, posting, writes, queries,
maintenance, the outbox): each part is a class over it, and ``service.Ledger`` joins them, so a
part holds one job and the connection handling is written once. Nothing here knows what a
transfer means; the rules are ``engine``'s.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, suppress
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from flashpay import db
from flashpay.clock import Clock, SystemClock
from flashpay.ledger.errors import RetriesExhaustedError, invariant
from flashpay.ledger.types import (
    TRANSFER_RECORD_FIELDS,
    Account,
    AccountFlags,
)

BATCH_EVENTS_MAX = 8190
RETRIES_MAX = 32
QUERY_LIMIT_MAX = 8190

ACCOUNT_COLUMNS = (
    "id, ledger, code, flags, credit_limit, user_data_128, user_data_64, user_data_32, "
    "debits_pending, debits_posted, credits_pending, credits_posted, timestamp"
)
TRANSFER_COLUMNS = ", ".join(TRANSFER_RECORD_FIELDS)
_RETRYABLE_PG = (
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
    pg_errors.UniqueViolation,
    pg_errors.LockNotAvailable,
)


def int_array(values: Sequence[int]) -> str:
    """A PostgreSQL array literal of ints (``{1,2,3}``): parsed by the server in C, where
    psycopg would adapt a Python list element by element."""
    return "{" + ",".join(map(str, values)) + "}"


def u128_bytes(value: int) -> bytes:
    return value.to_bytes(16, "big")


def u128_int(value: bytes | memoryview) -> int:
    return int.from_bytes(bytes(value), "big")


def account_from_row(row: Sequence[Any]) -> Account:
    return Account(
        id=row[0],
        ledger=row[1],
        code=row[2],
        flags=AccountFlags(row[3]),
        credit_limit=row[4],
        user_data_128=u128_int(row[5]),
        user_data_64=row[6],
        user_data_32=row[7],
        debits_pending=row[8],
        debits_posted=row[9],
        credits_pending=row[10],
        credits_posted=row[11],
        timestamp=row[12],
    )


class Storage:
    """A ledger's database: its engine, its dialect and its transactions (see the module
    docstring). ``service.Ledger`` is the one concrete subclass."""

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = url
        self.clock: Clock = clock or SystemClock()
        self.is_postgresql = db.is_postgresql(url)
        # Every ledger call ends its own transaction, so the pool need not ping or roll back on
        # each checkout: two round trips saved per call (retries cover a dropped connection).
        # No server-side prepared statements: psycopg forgets its cache on ROLLBACK and flushes
        # the server's later, which in pipeline mode can drop a statement it has just prepared
        # ("prepared statement _pg3_N does not exist" on the next batch after a retry).
        pool: dict[str, Any] = (
            {
                "pool_size": 16,
                "max_overflow": 16,
                "pool_pre_ping": False,
                "connect_args": {"prepare_threshold": None},
            }
            if self.is_postgresql
            else {}
        )
        self.engine = db.create_engine(url, pool_reset_on_return=None, **pool)
        self._static: dict[int, Account] = {}

    # -- connections -------------------------------------------------------------------------
    def _connection(self) -> AbstractContextManager[Any]:
        """A raw DBAPI connection (psycopg or sqlite3) with no transaction open."""
        return db.raw_connection(self.engine)

    def _sql(self, text: str) -> str:
        return text if self.is_postgresql else text.replace("%s", "?")

    def _in(self, column: str, values: Sequence[int]) -> tuple[str, list[Any]]:
        """``column = ANY(%s)`` on PostgreSQL, ``column IN (?, …)`` on SQLite."""
        if self.is_postgresql:
            return f"{column} = ANY(%s)", [list(values)]
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def _begin(self, conn: Any) -> None:
        if self.is_postgresql:
            conn.execute("BEGIN")
        else:
            conn.execute("BEGIN IMMEDIATE")

    def _retrying(self, work: Callable[[Any], Any], *, begin: bool = True) -> Any:
        """Run ``work(conn)`` in a transaction, retrying on deadlock / serialization / races.

        With ``begin=False`` on PostgreSQL, ``work`` opens the transaction itself (after
        allocating timestamps in their own short transaction)."""
        for attempt in range(RETRIES_MAX):
            with self._connection() as conn:
                try:
                    if begin or not self.is_postgresql:
                        self._begin(conn)
                    result = work(conn)
                    if _in_transaction(conn):  # unless work committed in its last round trip
                        conn.execute("COMMIT")
                    return result
                except _RETRYABLE_PG:
                    conn.execute("ROLLBACK")
                except psycopg.OperationalError:
                    if not conn.broken:  # a dropped connection is retried on a fresh one
                        raise
                except sqlite3.OperationalError as exc:
                    _rollback_quietly(conn)
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                except BaseException:
                    _rollback_quietly(conn)
                    raise
            time.sleep(random.uniform(0, 0.002 * (2 ** min(attempt, 8))))
        raise RetriesExhaustedError(f"gave up after {RETRIES_MAX} attempts")

    def _allocate_timestamps(self, conn: Any, count: int) -> int:
        """The first of ``count`` fresh, unique, increasing timestamps (≥ the clock).

        On PostgreSQL the same round trip then opens the batch's own transaction (``BEGIN``)."""
        now = self.clock.now_ns()
        if self.is_postgresql:
            cur = conn.execute(
                "BEGIN; SET LOCAL synchronous_commit TO OFF; "
                f"UPDATE ledger_clock SET last_timestamp = GREATEST(last_timestamp + {count:d}, "
                f"{now:d} + {count - 1:d}) WHERE id = 1 RETURNING last_timestamp; COMMIT; BEGIN;"
            )
            last = None
            while True:
                if cur.description is not None:
                    last = cur.fetchone()[0]
                if not cur.nextset():
                    break
            invariant(last is not None, "ledger_clock row missing")
            return int(last or 0) - count + 1
        row = conn.execute("SELECT last_timestamp FROM ledger_clock WHERE id = 1").fetchone()
        first = max(now, row[0] + 1)
        conn.execute(
            "UPDATE ledger_clock SET last_timestamp = ? WHERE id = 1", (first + count - 1,)
        )
        return int(first)

    def _send_timestamps(self, conn: Any, count: int) -> Any:
        """``_allocate_timestamps`` for a pipeline (PostgreSQL): queue the clock's own short
        transaction and the batch's BEGIN; returns the cursor holding the last timestamp."""
        now = self.clock.now_ns()
        conn.execute("BEGIN")
        conn.execute("SET LOCAL synchronous_commit TO OFF")
        cursor = conn.execute(
            "UPDATE ledger_clock SET last_timestamp = GREATEST(last_timestamp + %s, %s) "
            "WHERE id = 1 RETURNING last_timestamp",
            [count, now + count - 1],
        )
        conn.execute("COMMIT")
        conn.execute("BEGIN")
        return cursor

    def _executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.is_postgresql:
            with conn.cursor() as cur:
                cur.executemany(sql, rows)
        else:
            conn.executemany(self._sql(sql), rows)


def _in_transaction(conn: Any) -> bool:
    if isinstance(conn, sqlite3.Connection):
        return conn.in_transaction
    return bool(conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


def _rollback_quietly(conn: Any) -> None:
    with suppress(psycopg.Error, sqlite3.Error):
        conn.execute("ROLLBACK")


def end_read(conn: Any) -> None:
    """Reads run in autocommit mode on both drivers: nothing to close."""
