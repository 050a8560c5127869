"""Reads of transfers and balance history: by id, by account, in timestamp order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flashpay.ledger.errors import BatchTooLargeError
from flashpay.ledger.storage import (
    QUERY_LIMIT_MAX,
    TRANSFER_COLUMNS,
    Storage,
    end_read,
)
from flashpay.ledger.types import (
    AccountBalance,
    AccountFilter,
    Transfer,
    transfer_from_record,
)


class Queries(Storage):
    """The ledger's read-only look-ups of transfers and history."""

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
                self._sql(f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE {where}"),
                params,
            ).fetchall()
            end_read(conn)
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
                f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers "
                f"WHERE debit_account_id = %s{window}"
            )
            params += [f.account_id, *window_params]
        if f.credits:
            parts.append(
                f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers "
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
            end_read(conn)
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
            end_read(conn)
        return [AccountBalance(*r) for r in rows]
