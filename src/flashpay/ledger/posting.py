"""Posting one batch of transfers: read what it needs, lock its accounts, plan it in memory
(``engine.TransferBatch``) and write it (``writes``), all in one transaction retried as a whole.
The steps and the lock strengths are described in ``service``'s docstring."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import errors as pg_errors

from flashpay.ledger.accounts import AccountStore
from flashpay.ledger.engine import (  # the plain-int flag bits are the engine's
    _BALANCING_CREDIT,
    _BALANCING_DEBIT,
    _C_LIMIT,
    _CLOSING_CREDIT,
    _CLOSING_DEBIT,
    _D_LIMIT,
    _HISTORY,
    _POST,
    _VOID,
    AccountState,
    PendingRecord,
    TransferBatch,
    TransferPlan,
)
from flashpay.ledger.storage import (
    ACCOUNT_COLUMNS,
    TRANSFER_COLUMNS,
    account_from_row,
    int_array,
)
from flashpay.ledger.types import (
    Account,
    CreateTransferResult,
    PendingState,
    Transfer,
    TransferFlags,
    transfer_from_record,
)
from flashpay.ledger.writes import Writes

COMPACTION_EVERY_BATCHES = 512


class Posting(AccountStore, Writes):
    """Planning and posting a batch of transfers."""

    _batches: int  # batches posted by this object (compaction runs every few hundred)

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
                    f"SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = ANY(%s::int8[])",
                    [int_array(sorted(touched - self._static.keys()))],
                )
            first_timestamp = int(clock.fetchone()[0]) - len(transfers) + 1
            with self._lock:
                for row in rows.fetchall():
                    account = account_from_row(row)
                    self._static[account.id] = account
        if first_timestamp is None:
            first_timestamp = self._allocate_timestamps(conn, len(transfers))
        if lookup:
            where, params = self._in("id", lookup)
            for row in conn.execute(
                self._sql(f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE {where}"),
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
        debit_limited = {aid for aid, f in flags_of.items() if f & _D_LIMIT}
        credit_limited = {aid for aid, f in flags_of.items() if f & _C_LIMIT}
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

    def _select_states(self, conn: Any, static: Mapping[int, Account]) -> Any:
        """A cursor over the batch's accounts' flags and balances (the row plus its not yet
        compacted deltas), for ``_states``. Read after locking: exact for the locked accounts;
        for the others a fresh value that only one-sided, limit-safe changes move (the overflow
        checks need it exact too)."""
        if not static:
            return None
        ordered = sorted(static)
        if self.is_postgresql:
            ids = int_array(ordered)
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
                    [int_array(sorted(ids))],
                )

    def _after_batch(self) -> None:
        with self._lock:
            self._batches += 1
            due = self.is_postgresql and self._batches % COMPACTION_EVERY_BATCHES == 0
        if due:
            self.compact_balances()


@dataclasses.dataclass(frozen=True, slots=True)
class _Locks:
    """Account ids a batch locks: ``limited`` (limit-checked), ``exclusive`` (closed or reopened),
    ``shared`` (every account the batch touches)."""

    limited: set[int]
    exclusive: set[int]
    shared: set[int]


def _states(
    static: Mapping[int, Account], rows: Sequence[Sequence[Any]]
) -> dict[int, AccountState]:
    """Planner states from ``(id, flags, dp, dpo, cp, cpo)`` rows and the cached static fields."""
    return {r[0]: AccountState(static[r[0]], r[2], r[3], r[4], r[5], r[1]) for r in rows}
