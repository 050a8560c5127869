"""Pending transfers' expiry and the balance deltas' compaction: the ledger's upkeep.

A sweep voids every pending transfer past its timeout (by itself at most once a second of the
ledger's clock, before reads and batches); compaction folds ``ledger_balance_deltas`` (the
hot accounts' appended changes on PostgreSQL, see ``service``) into the account rows.
"""

from __future__ import annotations

import functools
from typing import Any

from flashpay.ledger.storage import (
    Storage,
)
from flashpay.ledger.types import (
    AccountFlags,
    PendingState,
    TransferFlags,
)

EXPIRY_SWEEP_INTERVAL_NS = 1_000_000_000
EXPIRY_SWEEP_BATCH_MAX = 1000
COMPACTION_DELTAS_MIN = 64


class Maintenance(Storage):
    """Expiry and compaction over the ledger's storage."""

    _next_sweep_ns: int  # the ledger's clock time of the next expiry sweep

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
