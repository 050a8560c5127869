"""Accounts: creating them, reading them with their balances (the row plus its not yet compacted
deltas), and the per-process cache of their immutable fields that a batch plans with."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

from flashpay.ledger.engine import (
    plan_accounts,
)
from flashpay.ledger.errors import BatchTooLargeError
from flashpay.ledger.maintenance import Maintenance
from flashpay.ledger.storage import (
    ACCOUNT_COLUMNS,
    BATCH_EVENTS_MAX,
    QUERY_LIMIT_MAX,
    account_from_row,
    u128_bytes,
)
from flashpay.ledger.types import (
    Account,
    AccountFlags,
    CreateAccountResult,
)


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


class AccountStore(Maintenance):
    """Creating and reading accounts."""

    _static: dict[int, Account]  # immutable fields (ledger, code, flags, limit) by id
    _lock: threading.Lock  # guards ``_static`` and the batch counter

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
                        u128_bytes(a.user_data_128),
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

    def _select_accounts(self, conn: Any, ids: Sequence[int]) -> list[Account]:
        """Accounts with their balances: the row plus its not yet compacted deltas."""
        if not ids:
            return []
        ordered = sorted(ids)
        if not self.is_postgresql:
            where, params = self._in("id", ordered)
            rows = conn.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE {where}", params
            ).fetchall()
            return [account_from_row(r) for r in rows]
        rows = conn.execute(
            f"SELECT {ACCOUNT_COLUMNS}, d.dp, d.dpo, d.cp, d.cpo FROM ledger_accounts a "
            "LEFT JOIN (SELECT account_id, SUM(debits_pending) AS dp, SUM(debits_posted) AS dpo, "
            "SUM(credits_pending) AS cp, SUM(credits_posted) AS cpo FROM ledger_balance_deltas "
            "WHERE account_id = ANY(%s) GROUP BY account_id) d ON d.account_id = a.id "
            "WHERE a.id = ANY(%s)",
            [ordered, ordered],
        ).fetchall()
        return [_with_balances(account_from_row(r), [int(x or 0) for x in r[13:17]]) for r in rows]

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

    def _static_accounts(self, conn: Any, ids: set[int]) -> dict[int, Account]:
        """Accounts' immutable fields (ledger, code, flags, limit), cached per process."""
        missing = [i for i in ids if i not in self._static and 0 < i < 2**63]
        if missing:
            for account in self._select_accounts(conn, missing):
                with self._lock:
                    self._static[account.id] = account
        return {i: self._static[i] for i in ids if i in self._static}
