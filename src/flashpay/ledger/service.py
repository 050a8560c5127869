"""``Ledger``: the double-entry engine on SQL storage (SQLite or PostgreSQL).

One batch is one database transaction (concurrent calls from threads sharing a ``Ledger`` may be
merged into one batch: group commit, see ``create_transfers``):

1. allocate a contiguous range of timestamps (``ledger_clock``; on PostgreSQL in a tiny separate
   transaction with ``synchronous_commit off`` so the row lock is held for microseconds — safe,
   because any transfer that uses a timestamp commits durably after it);
2. read the batch's existing transfers (idempotency; skipped optimistically on PostgreSQL when
   the batch has no posts or voids), lock the referenced pending transfers, and lock its accounts
   in id order: ``FOR NO KEY UPDATE`` those whose limit a transfer could break (the debit side of
   a ``DEBITS_MUST_NOT_EXCEED_CREDITS`` account, the credit side of a
   ``CREDITS_MUST_NOT_EXCEED_DEBITS`` one, ``HISTORY`` accounts, balancing transfers),
   ``FOR UPDATE`` those a closing transfer closes or a void reopens, ``FOR KEY SHARE`` the rest;
3. apply the batch in memory (``engine.TransferBatch``: precedence-ordered checks, linked chains
   rolled back as a unit);
4. write transfers, pending states, balances, history, chains and outbox, and commit. On
   PostgreSQL steps 1–2 are one pipelined round trip in the common case and step 4 (one statement
   of data-modifying CTEs over ``unnest`` arrays, then COMMIT) the second.

Hot accounts (a big merchant, a clearing account) are credited by nearly every payment but
rarely have a limit on that side. On PostgreSQL such one-sided, limit-safe changes are appended
to ``ledger_balance_deltas`` instead of updating the account row, so concurrent payments do not
queue on its row lock; an account's balance is its row plus the sum of its deltas, and
``compact_balances`` folds deltas into rows. SQLite has one writer at a time (``BEGIN
IMMEDIATE``) and always updates rows. Deadlocks, serialization failures and a concurrent insert of
the same transfer id are retried inside (bounded), never surfaced. See
docs/decisions/0001-ledger-on-sql.md.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import errors as pg_errors

from flashpay import db
from flashpay.batching import GroupCommit
from flashpay.clock import Clock, SystemClock
from flashpay.ledger.engine import (
    AccountState,
    PendingRecord,
    TransferBatch,
    TransferPlan,
    plan_accounts,
)
from flashpay.ledger.errors import BatchTooLargeError, RetriesExhaustedError, invariant
from flashpay.ledger.types import (
    TRANSFER_RECORD_FIELDS,
    Account,
    AccountBalance,
    AccountFilter,
    AccountFlags,
    CommittedChain,
    CreateAccountResult,
    CreateTransferResult,
    PendingState,
    Transfer,
    TransferFlags,
    transfer_from_record,
    transfer_record,
)

BATCH_EVENTS_MAX = 8190
GROUP_IN_FLIGHT_MAX = 2  # batches one Ledger posts at once while other callers queue
RETRIES_MAX = 32
QUERY_LIMIT_MAX = 8190
EXPIRY_SWEEP_INTERVAL_NS = 1_000_000_000
EXPIRY_SWEEP_BATCH_MAX = 1000
COMPACTION_EVERY_BATCHES = 512
COMPACTION_DELTAS_MIN = 64
COMMITMENT_BYTES = 32

_ACCOUNT_COLUMNS = (
    "id, ledger, code, flags, credit_limit, user_data_128, user_data_64, user_data_32, "
    "debits_pending, debits_posted, credits_pending, credits_posted, timestamp"
)
_TRANSFER_COLUMNS = ", ".join(TRANSFER_RECORD_FIELDS)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
_BALANCING_DEBIT = int(TransferFlags.BALANCING_DEBIT)
_BALANCING_CREDIT = int(TransferFlags.BALANCING_CREDIT)
_CLOSING_DEBIT = int(TransferFlags.CLOSING_DEBIT)
_CLOSING_CREDIT = int(TransferFlags.CLOSING_CREDIT)
_DEBITS_MUST_NOT_EXCEED_CREDITS = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CREDITS_MUST_NOT_EXCEED_DEBITS = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
_HISTORY = int(AccountFlags.HISTORY)
_RETRYABLE_PG = (
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
    pg_errors.UniqueViolation,
    pg_errors.LockNotAvailable,
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Bulk:
    """A many-row write: ``sqlite`` for ``executemany``, ``postgresql`` over ``unnest`` arrays."""

    sqlite: str
    postgresql: str
    hex_columns: frozenset[int] = frozenset()


def _unnest(table: str, columns: str, types: str, select: str | None = None) -> str:
    names = [c.strip() for c in columns.split(",")]
    arrays = ", ".join(f"%s::{t}[]" for t in types.split())
    return (
        f"INSERT INTO {table} ({columns}) SELECT {select or ', '.join(names)} "
        f"FROM unnest({arrays}) AS r({', '.join(names)})"
    )


_USER_DATA_128 = TRANSFER_RECORD_FIELDS.index("user_data_128")
_INSERT_TRANSFERS = _Bulk(
    f"INSERT INTO ledger_transfers ({_TRANSFER_COLUMNS}, chain_id) "
    f"VALUES ({', '.join('?' * (len(TRANSFER_RECORD_FIELDS) + 1))})",
    _unnest(
        "ledger_transfers",
        f"{_TRANSFER_COLUMNS}, chain_id",
        # one array type per record field, then chain_id (user_data_128 travels as hex text)
        "int8 int8 int8 int8 int8 text int8 int8 int8 int4 int4 int4 int8 int8",
        select=", ".join(
            f"decode({c}, 'hex')" if c == "user_data_128" else c
            for c in (*TRANSFER_RECORD_FIELDS, "chain_id")
        ),
    ),
    frozenset({_USER_DATA_128}),
)
_INSERT_PENDING = _Bulk(
    "INSERT INTO ledger_pending (id, state, expires_at) VALUES (?, ?, ?)",
    _unnest("ledger_pending", "id, state, expires_at", "int8 int2 int8"),
)
_UPDATE_PENDING = _Bulk(
    "UPDATE ledger_pending SET state = ?2 WHERE id = ?1",
    "UPDATE ledger_pending p SET state = r.state FROM unnest(%s::int8[], %s::int2[]) "
    "AS r(id, state) WHERE p.id = r.id",
)
_UPDATE_BALANCES = _Bulk(
    "UPDATE ledger_accounts SET debits_pending = debits_pending + ?2, "
    "debits_posted = debits_posted + ?3, credits_pending = credits_pending + ?4, "
    "credits_posted = credits_posted + ?5 WHERE id = ?1",
    "UPDATE ledger_accounts a SET debits_pending = a.debits_pending + r.dp, "
    "debits_posted = a.debits_posted + r.dpo, credits_pending = a.credits_pending + r.cp, "
    "credits_posted = a.credits_posted + r.cpo "
    "FROM unnest(%s::int8[], %s::int8[], %s::int8[], %s::int8[], %s::int8[]) "
    "AS r(id, dp, dpo, cp, cpo) WHERE a.id = r.id",
)
_INSERT_DELTAS = _Bulk(
    "INSERT INTO ledger_balance_deltas (account_id, debits_pending, debits_posted, "
    "credits_pending, credits_posted) VALUES (?, ?, ?, ?, ?)",
    _unnest(
        "ledger_balance_deltas",
        "account_id, debits_pending, debits_posted, credits_pending, credits_posted",
        "int8 int8 int8 int8 int8",
    ),
)
_UPDATE_FLAGS = _Bulk(
    "UPDATE ledger_accounts SET flags = ?2 WHERE id = ?1",
    "UPDATE ledger_accounts a SET flags = r.flags FROM unnest(%s::int8[], %s::int4[]) "
    "AS r(id, flags) WHERE a.id = r.id",
)
_INSERT_HISTORY = _Bulk(
    "INSERT INTO ledger_account_history (account_id, timestamp, debits_pending, debits_posted, "
    "credits_pending, credits_posted) VALUES (?, ?, ?, ?, ?, ?)",
    _unnest(
        "ledger_account_history",
        "account_id, timestamp, debits_pending, debits_posted, credits_pending, credits_posted",
        "int8 int8 int8 int8 int8 int8",
    ),
)
_INSERT_CHAINS = _Bulk(
    "INSERT INTO ledger_chains (chain_id, commitment) VALUES (?, ?)",
    _unnest(
        "ledger_chains",
        "chain_id, commitment",
        "int8 text",
        select="chain_id, decode(commitment, 'hex')",
    ),
    frozenset({1}),
)
_INSERT_OUTBOX = _Bulk(
    "INSERT INTO ledger_outbox (chain_id) VALUES (?)",
    _unnest("ledger_outbox", "chain_id", "int8"),
)


def _array(values: Sequence[int]) -> str:
    """A PostgreSQL array literal of ints (``{1,2,3}``): parsed by the server in C, where
    psycopg would adapt a Python list element by element."""
    return "{" + ",".join(map(str, values)) + "}"


def _u128_bytes(value: int) -> bytes:
    return value.to_bytes(16, "big")


def _u128_int(value: bytes | memoryview) -> int:
    return int.from_bytes(bytes(value), "big")


def _account_from_row(row: Sequence[Any]) -> Account:
    return Account(
        id=row[0],
        ledger=row[1],
        code=row[2],
        flags=AccountFlags(row[3]),
        credit_limit=row[4],
        user_data_128=_u128_int(row[5]),
        user_data_64=row[6],
        user_data_32=row[7],
        debits_pending=row[8],
        debits_posted=row[9],
        credits_pending=row[10],
        credits_posted=row[11],
        timestamp=row[12],
    )


def _transfer_row(t: Transfer, chain_id: int) -> tuple[Any, ...]:
    return (*transfer_record(t), chain_id)


def _with_balances(account: Account, sums: Sequence[int]) -> Account:
    """The account with its not yet compacted balance deltas added."""
    if not any(sums):
        return account
    return dataclasses.replace(
        account,
        debits_pending=account.debits_pending + sums[0],
        debits_posted=account.debits_posted + sums[1],
        credits_pending=account.credits_pending + sums[2],
        credits_posted=account.credits_posted + sums[3],
    )


class Ledger:
    """The ledger over one database. Thread-safe; many processes may open the same database."""

    def __init__(self, url: str, *, clock: Clock | None = None, coalesce: bool = True) -> None:
        self.url = url
        self.coalesce = coalesce
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
        self._next_sweep_ns = 0
        self._batches = 0
        self._lock = threading.Lock()
        self._group: GroupCommit[_Request, list[CreateTransferResult]] = GroupCommit(
            self._post_group,
            batch_max=BATCH_EVENTS_MAX,
            in_flight_max=GROUP_IN_FLIGHT_MAX,
            weight=lambda request: len(request.transfers),
        )
        self._held: dict[int, list[tuple[str, list[str]]]] = {}  # per connection, see _bulk

    @classmethod
    def open(cls, url: str, *, clock: Clock | None = None, coalesce: bool = True) -> Ledger:
        """Open the ledger at ``url`` (``sqlite:///…`` or ``postgresql://…``), already migrated.

        ``coalesce``: concurrent ``create_transfers`` calls from this object's threads share
        database transactions (group commit; see ``create_transfers``)."""
        return cls(url, clock=clock, coalesce=coalesce)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

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

    # -- accounts ----------------------------------------------------------------------------
    def create_accounts(self, accounts: Sequence[Account]) -> list[CreateAccountResult]:
        """Create accounts; one result per event (``OK`` or the first failing check)."""
        if len(accounts) > BATCH_EVENTS_MAX:
            raise BatchTooLargeError(f"{len(accounts)} > {BATCH_EVENTS_MAX} events")
        if not accounts:
            return []

        def work(conn: Any) -> list[CreateAccountResult]:
            # PostgreSQL: timestamps from their own small transaction, then BEGIN (one trip)
            first = self._allocate_timestamps(conn, len(accounts))
            ids = sorted({a.id for a in accounts if 0 < a.id < 2**63})
            existing = {a.id: a for a in self._select_accounts(conn, ids)} if ids else {}
            results, created = plan_accounts(accounts, existing, first)
            if created:
                rows = [
                    (
                        a.id,
                        a.ledger,
                        a.code,
                        int(a.flags & ~AccountFlags.LINKED),
                        a.credit_limit,
                        _u128_bytes(a.user_data_128),
                        a.user_data_64,
                        a.user_data_32,
                        a.timestamp,
                    )
                    for a in created
                ]
                self._executemany(
                    conn,
                    "INSERT INTO ledger_accounts (id, ledger, code, flags, credit_limit, "
                    "user_data_128, user_data_64, user_data_32, timestamp, debits_pending, "
                    "debits_posted, credits_pending, credits_posted) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 0, 0, 0)",
                    rows,
                )
            return results

        results: list[CreateAccountResult] = self._retrying(work, begin=False)
        return results

    def _executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.is_postgresql:
            with conn.cursor() as cur:
                cur.executemany(sql, rows)
        else:
            conn.executemany(self._sql(sql), rows)

    def _select_accounts(self, conn: Any, ids: Sequence[int]) -> list[Account]:
        """Accounts with their balances: the row plus its not yet compacted deltas."""
        if not ids:
            return []
        ordered = sorted(ids)
        if not self.is_postgresql:
            where, params = self._in("id", ordered)
            rows = conn.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM ledger_accounts WHERE {where}", params
            ).fetchall()
            return [_account_from_row(r) for r in rows]
        rows = conn.execute(
            f"SELECT {_ACCOUNT_COLUMNS}, d.dp, d.dpo, d.cp, d.cpo FROM ledger_accounts a "
            "LEFT JOIN (SELECT account_id, SUM(debits_pending) AS dp, SUM(debits_posted) AS dpo, "
            "SUM(credits_pending) AS cp, SUM(credits_posted) AS cpo FROM ledger_balance_deltas "
            "WHERE account_id = ANY(%s) GROUP BY account_id) d ON d.account_id = a.id "
            "WHERE a.id = ANY(%s)",
            [ordered, ordered],
        ).fetchall()
        return [_with_balances(_account_from_row(r), [int(x or 0) for x in r[13:17]]) for r in rows]

    def _select_states(self, conn: Any, static: Mapping[int, Account]) -> Any:
        """A cursor over the batch's accounts' flags and balances (the row plus its not yet
        compacted deltas), for ``_states``. Read after locking: exact for the locked accounts;
        for the others a fresh value that only one-sided, limit-safe changes move (the overflow
        checks need it exact too)."""
        if not static:
            return None
        ordered = sorted(static)
        if self.is_postgresql:
            ids = _array(ordered)
            return conn.execute(
                "SELECT a.id, a.flags, "
                "(a.debits_pending + COALESCE(d.dp, 0))::int8, "
                "(a.debits_posted + COALESCE(d.dpo, 0))::int8, "
                "(a.credits_pending + COALESCE(d.cp, 0))::int8, "
                "(a.credits_posted + COALESCE(d.cpo, 0))::int8 FROM ledger_accounts a "
                "LEFT JOIN (SELECT account_id, SUM(debits_pending) AS dp, "
                "SUM(debits_posted) AS dpo, SUM(credits_pending) AS cp, "
                "SUM(credits_posted) AS cpo FROM ledger_balance_deltas "
                "WHERE account_id = ANY(%s::int8[]) GROUP BY account_id) d "
                "ON d.account_id = a.id WHERE a.id = ANY(%s::int8[])",
                [ids, ids],
            )
        where, params = self._in("id", ordered)
        return conn.execute(
            "SELECT id, flags, debits_pending, debits_posted, credits_pending, credits_posted "
            f"FROM ledger_accounts WHERE {where}",
            params,
        )

    def _lock_accounts(self, conn: Any, locks: _Locks) -> None:
        """Row-lock accounts in id order (PostgreSQL), so concurrent batches cannot deadlock.

        Three strengths: ``FOR UPDATE`` for an account a closing transfer closes or a void
        reopens (excludes everyone); ``FOR NO KEY UPDATE`` for an account whose limit a transfer
        could break (excludes the other limit-checkers, not one-sided writers); ``FOR KEY SHARE``
        for every other account (one-sided, limit-safe changes: shared, so a hot account never
        queues, yet a concurrent closing waits for them and they for it)."""
        if not self.is_postgresql:
            return
        for strength, ids in (
            ("UPDATE", locks.exclusive),
            ("NO KEY UPDATE", locks.limited - locks.exclusive),
            ("KEY SHARE", locks.shared - locks.limited - locks.exclusive),
        ):
            if ids:
                conn.execute(
                    "SELECT id FROM ledger_accounts WHERE id = ANY(%s::int8[]) "
                    f"ORDER BY id FOR {strength}",
                    [_array(sorted(ids))],
                )

    def lookup_accounts(self, ids: Sequence[int]) -> list[Account]:
        """The accounts that exist among ``ids``, in the order asked, with current balances."""
        if len(ids) > QUERY_LIMIT_MAX:
            raise BatchTooLargeError(f"{len(ids)} > {QUERY_LIMIT_MAX} ids")
        self._maybe_expire()
        wanted = [i for i in ids if 0 < i < 2**63]
        if not wanted:
            return []
        with self._connection() as conn:
            if self.is_postgresql:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            found = {a.id: a for a in self._select_accounts(conn, wanted)}
            if self.is_postgresql:
                conn.execute("COMMIT")
        return [found[i] for i in ids if i in found]

    # -- transfers ---------------------------------------------------------------------------
    def create_transfers(
        self,
        transfers: Sequence[Transfer],
        *,
        commitments: Mapping[int, bytes] | None = None,
    ) -> list[CreateTransferResult]:
        """Post a batch; one result per event. See the module docstring for the steps.

        ``commitments`` maps the id of a chain's first transfer to a 32-byte commitment to the
        business record, stored with the chain for the audit log.

        Group commit (``flashpay.batching.GroupCommit``): while ``GROUP_IN_FLIGHT_MAX`` batches
        of this ``Ledger`` are being posted, calls from other threads queue, and the next free
        caller posts the queued calls, in order and up to ``BATCH_EVENTS_MAX`` events, as one
        batch (one transaction, one commit), then hands each caller its own results. Each
        call's events stay contiguous and in order, and a call never ends inside another's chain
        (a call whose last event is ``LINKED`` is posted alone, as is every call with
        ``coalesce=False``), so the results are those of posting the calls one after another. A
        database error fails every call of the group with it, and no other call.
        """
        if len(transfers) > BATCH_EVENTS_MAX:
            raise BatchTooLargeError(f"{len(transfers)} > {BATCH_EVENTS_MAX} events")
        if not transfers:
            return []
        for value in (commitments or {}).values():
            if len(value) != COMMITMENT_BYTES:
                raise ValueError(f"a commitment is {COMMITMENT_BYTES} bytes, not {len(value)}")
        self._maybe_expire()
        if not self.coalesce or transfers[-1].flags & TransferFlags.LINKED:
            return self._post(transfers, commitments or {})
        return self._group.submit(_Request(transfers, commitments or {}))

    def _post_group(self, group: Sequence[_Request]) -> list[list[CreateTransferResult]]:
        """Post the calls of a group commit as one batch; each call's own results."""
        merged = [t for r in group for t in r.transfers]
        merged_commitments = {k: v for r in group for k, v in r.commitments.items()}
        results = self._post(merged, merged_commitments)
        answers = []
        offset = 0
        for r in group:
            answers.append(results[offset : offset + len(r.transfers)])
            offset += len(r.transfers)
        return answers

    def _post(
        self, transfers: Sequence[Transfer], commitments: Mapping[int, bytes]
    ) -> list[CreateTransferResult]:
        """Post one batch in one transaction (retried as a whole on contention)."""

        # A batch without posts or voids skips the idempotency read on PostgreSQL (one statement
        # less on every first attempt). Planned as if none of its ids existed, it is right unless
        # one does: then either the insert hits the primary key (the transaction is retried, and
        # the retry reads), or the event was rejected and inserted nothing (so when any event is
        # rejected the ids are read in the same transaction, and the batch planned again).
        resolves = any(t.flags & (_POST | _VOID) for t in transfers)
        read_existing = [resolves or not self.is_postgresql]

        def work(conn: Any) -> list[CreateTransferResult]:
            plan, lock_set, first = self._plan(
                conn, transfers, None, read_existing=read_existing[0]
            )
            if not read_existing[0] and any(r != CreateTransferResult.OK for r in plan.results):
                read_existing[0] = True
                if self._any_transfer_exists(conn, [t.id for t in transfers]):
                    plan, lock_set, _ = self._plan(conn, transfers, first)
            if not self.is_postgresql:
                self._write(conn, plan, lock_set, commitments or {})
                return plan.results
            try:
                with conn.pipeline():  # the writes (one statement) and COMMIT: one round trip
                    with self._writes_combined(conn):
                        self._write(conn, plan, lock_set, commitments or {})
                    conn.execute("COMMIT")
            except pg_errors.UniqueViolation:
                read_existing[0] = True
                raise
            return plan.results

        results: list[CreateTransferResult] = self._retrying(work, begin=False)
        self._after_batch()
        return results

    def _any_transfer_exists(self, conn: Any, ids: Sequence[int]) -> bool:
        wanted = sorted({i for i in ids if 0 < i < 2**63})
        if not wanted:
            return False
        where, params = self._in("id", wanted)
        sql = self._sql(f"SELECT 1 FROM ledger_transfers WHERE {where} LIMIT 1")
        return conn.execute(sql, params).fetchone() is not None

    def _static_accounts(self, conn: Any, ids: set[int]) -> dict[int, Account]:
        """Accounts' immutable fields (ledger, code, flags, limit), cached per process."""
        missing = [i for i in ids if i not in self._static and 0 < i < 2**63]
        if missing:
            for account in self._select_accounts(conn, missing):
                with self._lock:
                    self._static[account.id] = account
        return {i: self._static[i] for i in ids if i in self._static}

    def _plan(
        self,
        conn: Any,
        transfers: Sequence[Transfer],
        first_timestamp: int | None,
        *,
        read_existing: bool = True,
    ) -> tuple[TransferPlan, set[int], int]:
        """Read what the batch needs, lock, and plan it; returns the plan, the accounts written
        in place, and the first timestamp (allocated here unless given; on PostgreSQL the
        allocation also opens the batch's transaction).

        Common case on PostgreSQL (nothing to look up, every account's static fields cached):
        the timestamps, BEGIN, the locks and the balance read go in ONE pipelined round trip."""
        ids = {t.id for t in transfers if 0 < t.id < 2**63}
        pending_ids = {
            t.pending_id
            for t in transfers
            if t.flags & (TransferFlags.POST_PENDING_TRANSFER | TransferFlags.VOID_PENDING_TRANSFER)
            and 0 < t.pending_id < 2**63
        }
        existing: dict[int, Transfer] = {}
        lookup = sorted(ids | pending_ids if read_existing else pending_ids)
        if first_timestamp is None and self.is_postgresql and not lookup:
            touched = {t.debit_account_id for t in transfers}
            touched.update(t.credit_account_id for t in transfers)
            if touched <= self._static.keys():
                static = {i: self._static[i] for i in touched}
                locks = self._lock_set(transfers, static, {})
                with conn.pipeline():
                    clock = self._send_timestamps(conn, len(transfers))
                    self._lock_accounts(conn, locks)
                    cursor = self._select_states(conn, static)
                first = int(clock.fetchone()[0]) - len(transfers) + 1
                batch = TransferBatch(
                    accounts=_states(static, cursor.fetchall()),
                    existing=existing,
                    pendings={},
                    now_ns=self.clock.now_ns(),
                    first_timestamp=first,
                )
                return batch.plan(transfers), locks.limited | locks.exclusive, first
            # Static fields missing from the cache: fetched with the timestamps (one trip).
            with conn.pipeline():
                clock = self._send_timestamps(conn, len(transfers))
                rows = conn.execute(
                    f"SELECT {_ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = ANY(%s::int8[])",
                    [_array(sorted(touched - self._static.keys()))],
                )
            first_timestamp = int(clock.fetchone()[0]) - len(transfers) + 1
            with self._lock:
                for row in rows.fetchall():
                    account = _account_from_row(row)
                    self._static[account.id] = account
        if first_timestamp is None:
            first_timestamp = self._allocate_timestamps(conn, len(transfers))
        if lookup:
            where, params = self._in("id", lookup)
            for row in conn.execute(
                self._sql(f"SELECT {_TRANSFER_COLUMNS} FROM ledger_transfers WHERE {where}"),
                params,
            ).fetchall():
                transfer = transfer_from_record(row)
                existing[transfer.id] = transfer
        pendings: dict[int, PendingRecord] = {}
        in_db_pending = sorted(p for p in pending_ids if p in existing)
        if in_db_pending:
            where, params = self._in("id", in_db_pending)
            suffix = " ORDER BY id FOR UPDATE" if self.is_postgresql else ""
            for pid, state, expires_at in conn.execute(
                self._sql(
                    f"SELECT id, state, expires_at FROM ledger_pending WHERE {where}{suffix}"
                ),
                params,
            ).fetchall():
                pendings[pid] = PendingRecord(existing[pid], PendingState(state), expires_at)

        account_ids: set[int] = set()
        for t in transfers:
            account_ids.update((t.debit_account_id, t.credit_account_id))
        for record in pendings.values():
            account_ids.update(
                (record.transfer.debit_account_id, record.transfer.credit_account_id)
            )
        account_ids.discard(0)
        static = self._static_accounts(conn, account_ids)
        locks = self._lock_set(transfers, static, pendings)
        # Balances are read after locking: a later statement sees what the locks waited for.
        if self.is_postgresql:
            with conn.pipeline():  # the locks and the read in one round trip
                self._lock_accounts(conn, locks)
                cursor = self._select_states(conn, static)
        else:
            cursor = self._select_states(conn, static)
        states = _states(static, cursor.fetchall() if cursor is not None else [])
        batch = TransferBatch(
            accounts=states,
            existing=existing,
            pendings=pendings,
            now_ns=self.clock.now_ns(),
            first_timestamp=first_timestamp,
        )
        return batch.plan(transfers), locks.limited | locks.exclusive, first_timestamp

    def _lock_set(
        self,
        transfers: Sequence[Transfer],
        static: Mapping[int, Account],
        pendings: Mapping[int, PendingRecord],
    ) -> _Locks:
        """Which accounts the batch locks, and how (see ``_lock_accounts``). On SQLite the
        whole database is locked (``BEGIN IMMEDIATE``) and every account is written in place."""
        if not self.is_postgresql:
            return _Locks(limited=set(static), exclusive=set(), shared=set())
        limited: set[int] = set()
        exclusive: set[int] = set()
        flags_of = {aid: int(a.flags) for aid, a in static.items()}
        limited.update(aid for aid, f in flags_of.items() if f & _HISTORY)
        debit_limited = {aid for aid, f in flags_of.items() if f & _DEBITS_MUST_NOT_EXCEED_CREDITS}
        credit_limited = {aid for aid, f in flags_of.items() if f & _CREDITS_MUST_NOT_EXCEED_DEBITS}
        for t in transfers:
            flags = int(t.flags)
            if flags & (_POST | _VOID):
                # Posting or voiding never raises a total past a limit; voiding a closing
                # transfer reopens its account, and posting one must see whether it is closed.
                record = pendings.get(t.pending_id)
                if record is not None:
                    if record.transfer.flags & _CLOSING_DEBIT:
                        exclusive.add(record.transfer.debit_account_id)
                    if record.transfer.flags & _CLOSING_CREDIT:
                        exclusive.add(record.transfer.credit_account_id)
                continue
            if flags & _CLOSING_DEBIT:
                exclusive.add(t.debit_account_id)
            if flags & _CLOSING_CREDIT:
                exclusive.add(t.credit_account_id)
            if t.debit_account_id in debit_limited or flags & _BALANCING_DEBIT:
                limited.add(t.debit_account_id)
            if t.credit_account_id in credit_limited or flags & _BALANCING_CREDIT:
                limited.add(t.credit_account_id)
        limited &= set(static)
        exclusive &= set(static)
        return _Locks(limited=limited, exclusive=exclusive, shared=set(static))

    def _write(
        self,
        conn: Any,
        plan: TransferPlan,
        lock_set: set[int],
        commitments: Mapping[int, bytes],
    ) -> None:
        """Write the plan: one statement per table (PostgreSQL: ``unnest`` of array parameters,
        all sent in one pipelined round trip; SQLite: ``executemany``)."""
        chain_of: dict[int, int] = {}
        chain_rows: list[tuple[int, bytes | None]] = []
        for chain in plan.chains:
            chain_id = chain[0].timestamp
            chain_rows.append((chain_id, commitments.get(chain[0].id)))
            for transfer in chain:
                chain_of[transfer.id] = chain_id
        self._bulk(
            conn, _INSERT_TRANSFERS, [_transfer_row(t, chain_of[t.id]) for t in plan.created]
        )
        self._bulk(
            conn,
            _INSERT_PENDING,
            [
                (r.transfer.id, int(r.state), r.expires_at)
                for r in plan.new_pendings
                if r.state == PendingState.PENDING or r.transfer.id in chain_of
            ],
        )
        self._bulk(
            conn,
            _UPDATE_PENDING,
            [(pid, int(state)) for pid, state in sorted(plan.resolved_pendings.items())],
        )
        updates = []
        deltas = []
        for aid, d in sorted(plan.deltas.items()):
            if aid in lock_set:
                updates.append((aid, *d))
            else:
                deltas.append((aid, *d))
        self._bulk(conn, _UPDATE_BALANCES, updates)
        self._bulk(conn, _INSERT_DELTAS, deltas)
        self._bulk(conn, _UPDATE_FLAGS, sorted(plan.flag_updates.items()))
        self._bulk(conn, _INSERT_HISTORY, plan.history)
        self._bulk(conn, _INSERT_CHAINS, chain_rows)
        self._bulk(conn, _INSERT_OUTBOX, [(c,) for c, _ in chain_rows])

    def _bulk(self, conn: Any, statement: _Bulk, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many rows. PostgreSQL gets each column as one array literal
        (``{1,2,3}``; bytes as hex, decoded in SQL), which the server parses in C: far cheaper
        than one bound statement per row through the driver. Inside ``_writes_combined`` the
        statement is held and sent as part of one combined statement."""
        if not rows:
            return
        if not self.is_postgresql:
            conn.executemany(statement.sqlite, rows)
            return
        held = self._held.get(id(conn))
        if held is not None:
            held.append((statement.postgresql, _columns(statement, rows)))
            return
        conn.execute(statement.postgresql, _columns(statement, rows))

    @contextmanager
    def _writes_combined(self, conn: Any) -> Iterator[None]:
        """Send the ``_bulk`` writes made inside as ONE statement of data-modifying CTEs
        (``WITH w0 AS (INSERT …), w1 AS (UPDATE …) SELECT 1``): PostgreSQL runs every one of
        them, and client and server pay the per-statement cost once."""
        held: list[tuple[str, list[str]]] = []
        self._held[id(conn)] = held
        try:
            yield
        finally:
            del self._held[id(conn)]
        if held:
            sql = "WITH " + ", ".join(f"w{i} AS ({q})" for i, (q, _) in enumerate(held))
            conn.execute(sql + " SELECT 1", [p for _, params in held for p in params])

    def _after_batch(self) -> None:
        with self._lock:
            self._batches += 1
            due = self.is_postgresql and self._batches % COMPACTION_EVERY_BATCHES == 0
        if due:
            self.compact_balances()

    def lookup_transfers(self, ids: Sequence[int]) -> list[Transfer]:
        """The transfers that exist among ``ids``, in the order asked."""
        if len(ids) > QUERY_LIMIT_MAX:
            raise BatchTooLargeError(f"{len(ids)} > {QUERY_LIMIT_MAX} ids")
        wanted = sorted({i for i in ids if 0 < i < 2**63})
        if not wanted:
            return []
        where, params = self._in("id", wanted)
        with self._connection() as conn:
            rows = conn.execute(
                self._sql(f"SELECT {_TRANSFER_COLUMNS} FROM ledger_transfers WHERE {where}"),
                params,
            ).fetchall()
            _end_read(conn)
        found = {r[0]: transfer_from_record(r) for r in rows}
        return [found[i] for i in ids if i in found]

    def _window(self, f: AccountFilter) -> tuple[str, list[Any]]:
        clauses = []
        params: list[Any] = []
        if f.timestamp_min:
            clauses.append("timestamp >= %s")
            params.append(f.timestamp_min)
        if f.timestamp_max:
            clauses.append("timestamp <= %s")
            params.append(f.timestamp_max)
        return "".join(f" AND {c}" for c in clauses), params

    def get_account_transfers(self, f: AccountFilter) -> list[Transfer]:
        """The account's transfers in timestamp order (``reversed`` for newest first)."""
        limit = max(1, min(f.limit, QUERY_LIMIT_MAX))
        window, window_params = self._window(f)
        order = "DESC" if f.reversed else "ASC"
        parts = []
        params: list[Any] = []
        if f.debits:
            parts.append(
                f"SELECT {_TRANSFER_COLUMNS} FROM ledger_transfers "
                f"WHERE debit_account_id = %s{window}"
            )
            params += [f.account_id, *window_params]
        if f.credits:
            parts.append(
                f"SELECT {_TRANSFER_COLUMNS} FROM ledger_transfers "
                f"WHERE credit_account_id = %s{window}"
            )
            params += [f.account_id, *window_params]
        if not parts:
            return []
        sql = (
            f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS t ORDER BY timestamp {order} LIMIT %s"
        )
        with self._connection() as conn:
            rows = conn.execute(self._sql(sql), [*params, limit]).fetchall()
            _end_read(conn)
        return [transfer_from_record(r) for r in rows]

    def get_account_balances(self, f: AccountFilter) -> list[AccountBalance]:
        """Balances after each transfer of a ``HISTORY`` account, in timestamp order."""
        limit = max(1, min(f.limit, QUERY_LIMIT_MAX))
        window, window_params = self._window(f)
        order = "DESC" if f.reversed else "ASC"
        sql = (
            "SELECT timestamp, debits_pending, debits_posted, credits_pending, credits_posted "
            f"FROM ledger_account_history WHERE account_id = %s{window} "
            f"ORDER BY timestamp {order} LIMIT %s"
        )
        with self._connection() as conn:
            rows = conn.execute(self._sql(sql), [f.account_id, *window_params, limit]).fetchall()
            _end_read(conn)
        return [AccountBalance(*r) for r in rows]

    # -- expiry and compaction ------------------------------------------------------------------
    def _maybe_expire(self) -> None:
        now = self.clock.now_ns()
        if now < self._next_sweep_ns:
            return
        self._next_sweep_ns = now + EXPIRY_SWEEP_INTERVAL_NS
        self.expire_pending_transfers()

    def expire_pending_transfers(self) -> int:
        """Void every pending transfer whose timeout has passed; returns how many expired.

        Runs by itself at most once a second (of the ledger's clock) before reads and batches;
        a post or void of a transfer past its timeout is rejected ``PENDING_TRANSFER_EXPIRED``
        and expires it in the same batch, so expiry never waits for the sweep.
        """
        total = 0
        while True:
            count: int = self._retrying(self._expire_some)
            total += count
            if count < EXPIRY_SWEEP_BATCH_MAX:
                return total

    def _expire_some(self, conn: Any) -> int:
        now = self.clock.now_ns()
        lock = " FOR UPDATE OF p SKIP LOCKED" if self.is_postgresql else ""
        rows = conn.execute(
            self._sql(
                "SELECT p.id, t.debit_account_id, t.credit_account_id, t.amount, t.flags "
                "FROM ledger_pending p JOIN ledger_transfers t ON t.id = p.id "
                "WHERE p.state = %s AND p.expires_at > 0 AND p.expires_at <= %s "
                f"ORDER BY p.expires_at LIMIT %s{lock}"
            ),
            [int(PendingState.PENDING), now, EXPIRY_SWEEP_BATCH_MAX],
        ).fetchall()
        if not rows:
            return 0
        self._executemany(
            conn,
            "UPDATE ledger_pending SET state = %s WHERE id = %s",
            [(int(PendingState.EXPIRED), r[0]) for r in rows],
        )
        releases: dict[int, list[int]] = {}
        reopened: set[int] = set()
        for _pid, debit_id, credit_id, amount, flags in rows:
            releases.setdefault(debit_id, [0, 0, 0, 0])[0] -= amount
            releases.setdefault(credit_id, [0, 0, 0, 0])[2] -= amount
            if flags & TransferFlags.CLOSING_DEBIT:
                reopened.add(debit_id)
            if flags & TransferFlags.CLOSING_CREDIT:
                reopened.add(credit_id)
        if reopened:  # an expired closing transfer reopens its account, as a void does
            where, params = self._in("id", sorted(reopened))
            lock = " ORDER BY id FOR UPDATE" if self.is_postgresql else ""
            conn.execute(
                self._sql(f"SELECT id FROM ledger_accounts WHERE {where}{lock}"), params
            ).fetchall()
            conn.execute(
                self._sql(f"UPDATE ledger_accounts SET flags = flags & %s WHERE {where}"),
                [~int(AccountFlags.CLOSED) & 0x7FFFFFFF, *params],
            )
        if self.is_postgresql:  # releasing a hold never breaks a limit: append deltas
            self._executemany(
                conn,
                "INSERT INTO ledger_balance_deltas (account_id, debits_pending, debits_posted, "
                "credits_pending, credits_posted) VALUES (%s, %s, %s, %s, %s)",
                [(aid, *d) for aid, d in sorted(releases.items())],
            )
        else:
            self._executemany(
                conn,
                "UPDATE ledger_accounts SET debits_pending = debits_pending + %s, "
                "credits_pending = credits_pending + %s WHERE id = %s",
                [(d[0], d[2], aid) for aid, d in sorted(releases.items())],
            )
        return len(rows)

    def compact_balances(self, *, deltas_min: int = COMPACTION_DELTAS_MIN) -> int:
        """Fold balance deltas into account rows (PostgreSQL); returns accounts compacted."""
        if not self.is_postgresql:
            return 0
        with self._connection() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT account_id FROM ledger_balance_deltas GROUP BY account_id "
                    "HAVING COUNT(*) >= %s",
                    [deltas_min],
                ).fetchall()
            ]
        for account_id in ids:
            self._retrying(functools.partial(self._compact_one, account_id=account_id))
        return len(ids)

    def _compact_one(self, conn: Any, *, account_id: int) -> None:
        conn.execute("SELECT id FROM ledger_accounts WHERE id = %s FOR NO KEY UPDATE", [account_id])
        row = conn.execute(
            "WITH moved AS (DELETE FROM ledger_balance_deltas WHERE account_id = %s "
            "RETURNING debits_pending, debits_posted, credits_pending, credits_posted) "
            "SELECT COALESCE(SUM(debits_pending), 0), COALESCE(SUM(debits_posted), 0), "
            "COALESCE(SUM(credits_pending), 0), COALESCE(SUM(credits_posted), 0) FROM moved",
            [account_id],
        ).fetchone()
        conn.execute(
            "UPDATE ledger_accounts SET debits_pending = debits_pending + %s, "
            "debits_posted = debits_posted + %s, credits_pending = credits_pending + %s, "
            "credits_posted = credits_posted + %s WHERE id = %s",
            [*row, account_id],
        )

    # -- the outbox of committed chains (consumed by the audit log) ---------------------------
    def outbox_backlog(self) -> int:
        """How many committed chains wait in the outbox for the audit log (its lag, in chains)."""
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.text("SELECT count(*) FROM ledger_outbox")).scalar_one()
            )

    def drain_outbox(
        self,
        consume: Callable[[sa.Connection, Sequence[CommittedChain]], None],
        *,
        limit: int = 1000,
    ) -> int:
        """Hand up to ``limit`` committed, not yet consumed chains to ``consume`` and delete them
        from the outbox, all in one transaction; returns how many were consumed."""
        limit = max(1, min(limit, QUERY_LIMIT_MAX))
        with self.engine.begin() as connection:
            lock = " FOR UPDATE SKIP LOCKED" if self.is_postgresql else ""
            chain_ids = [
                r[0]
                for r in connection.execute(
                    sa.text(f"SELECT chain_id FROM ledger_outbox ORDER BY chain_id LIMIT :n{lock}"),
                    {"n": limit},
                )
            ]
            if not chain_ids:
                return 0
            chains = self._load_chains(connection, chain_ids)
            consume(connection, chains)
            connection.execute(
                sa.text("DELETE FROM ledger_outbox WHERE chain_id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": chain_ids},
            )
            return len(chains)

    def _load_chains(
        self, connection: sa.Connection, chain_ids: Sequence[int]
    ) -> list[CommittedChain]:
        if not chain_ids:
            return []
        expanding: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
        commitments = {
            r[0]: (bytes(r[1]) if r[1] is not None else None)
            for r in connection.execute(
                sa.text(
                    "SELECT chain_id, commitment FROM ledger_chains WHERE chain_id IN :ids"
                ).bindparams(expanding),
                {"ids": list(chain_ids)},
            )
        }
        members: dict[int, list[Transfer]] = {c: [] for c in commitments}
        for row in connection.execute(
            sa.text(
                f"SELECT {_TRANSFER_COLUMNS}, chain_id FROM ledger_transfers "
                "WHERE chain_id IN :ids ORDER BY timestamp"
            ).bindparams(expanding),
            {"ids": list(chain_ids)},
        ):
            members.setdefault(row[13], []).append(transfer_from_record(row))
        return [
            CommittedChain(chain_id=c, commitment=commitments.get(c), transfers=tuple(members[c]))
            for c in sorted(members)
        ]

    def iter_chains(self, *, after_chain_id: int = 0, limit: int = 1000) -> list[CommittedChain]:
        """Committed chains in chain_id order, after ``after_chain_id`` (for audits)."""
        limit = max(1, min(limit, QUERY_LIMIT_MAX))
        with self.engine.connect() as connection:
            ids = [
                r[0]
                for r in connection.execute(
                    sa.text(
                        "SELECT chain_id FROM ledger_chains WHERE chain_id > :after "
                        "ORDER BY chain_id LIMIT :n"
                    ),
                    {"after": after_chain_id, "n": limit},
                )
            ]
            return self._load_chains(connection, ids)

    def lookup_chains(self, chain_ids: Sequence[int]) -> list[CommittedChain]:
        """The committed chains among ``chain_ids`` (a chain with no row is left out)."""
        with self.engine.connect() as connection:
            return self._load_chains(connection, list(chain_ids))


@dataclasses.dataclass(frozen=True, slots=True)
class _Request:
    """One caller's ``create_transfers`` in a group commit."""

    transfers: Sequence[Transfer]
    commitments: Mapping[int, bytes]


@dataclasses.dataclass(frozen=True, slots=True)
class _Locks:
    """Account ids a batch locks: ``limited`` (limit-checked), ``exclusive`` (closed or reopened),
    ``shared`` (every account the batch touches)."""

    limited: set[int]
    exclusive: set[int]
    shared: set[int]


def _columns(statement: _Bulk, rows: Sequence[Sequence[Any]]) -> list[str]:
    """Each column of ``rows`` as a PostgreSQL array literal (bytes as hex)."""
    columns = []
    for index, column in enumerate(zip(*rows, strict=True)):
        if index in statement.hex_columns:
            body = ",".join("NULL" if v is None else v.hex() for v in column)
        else:
            body = ",".join(map(str, column))
        columns.append("{" + body + "}")
    return columns


def _states(
    static: Mapping[int, Account], rows: Sequence[Sequence[Any]]
) -> dict[int, AccountState]:
    """Planner states from ``(id, flags, dp, dpo, cp, cpo)`` rows and the cached static fields."""
    return {r[0]: AccountState(static[r[0]], r[2], r[3], r[4], r[5], r[1]) for r in rows}


def _in_transaction(conn: Any) -> bool:
    if isinstance(conn, sqlite3.Connection):
        return conn.in_transaction
    return bool(conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


def _rollback_quietly(conn: Any) -> None:
    with suppress(psycopg.Error, sqlite3.Error):
        conn.execute("ROLLBACK")


def _end_read(conn: Any) -> None:
    """Reads run in autocommit mode on both drivers: nothing to close."""
