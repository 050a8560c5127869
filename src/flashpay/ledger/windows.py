"""Set-based reads of a range of committed chains: what settlement clears for a window.

A settlement window is a range of chain ids (a chain's id is the timestamp the ledger gave its
first transfer, so a whole chain falls in one window, never split at a cut-off). Both reads are
one ``GROUP BY`` statement over ``ledger_transfers`` in the caller's connection — no Python loop
over transfers — and count only what moved posted balances: pending transfers and voids are left
out (a hold counts when it is posted, by its post). Accounts outside ``account_ids`` (cards,
merchants) fold into key 0, so the answer's size depends on the institutions, not the traffic.

- ``window_pair_sums``: per (debit key, credit key, code) the sum and count of amounts;
- ``window_chains``: per chain, each of the given account groups' net debit (debits minus
  credits) and the group's account (the one of the group that the chain touched), in chain order,
  as plain rows (``ChainRow``).

The account ids are ints the caller took from the chart of accounts; they are inlined as SQL
literals (``int`` checked), which both SQLite and PostgreSQL plan as a constant set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.ledger.types import TransferFlags

_NOT_POSTED = int(TransferFlags.PENDING | TransferFlags.VOID_PENDING_TRANSFER)
CHAINS_FETCH_ROWS = 20_000  # rows fetched from the cursor at a time by window_chains
# A window of a million payments groups six million transfers: with PostgreSQL's default 4 MB of
# work memory the aggregate spills to disk and the time grows faster than the window. The reads
# raise it for their own transaction only (SET LOCAL).
WORK_MEM_MB = 256


def _tune(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM_MB}MB'"))


@dataclass(frozen=True, slots=True)
class PairSum:
    """Posted amounts between two keys (an account id of the given set, or 0 for any other)."""

    debit_key: int
    credit_key: int
    code: int
    amount: int
    transfers: int


def _id_list(ids: Sequence[int]) -> str:
    values = sorted({int(i) for i in ids})
    return ",".join(str(v) for v in values) if values else "0"


def _range_where(chain_id_min: int, chain_id_max: int, exclude_codes: Sequence[int]) -> str:
    codes = _id_list(exclude_codes) if exclude_codes else "-1"
    return (
        f"chain_id >= {int(chain_id_min)} AND chain_id < {int(chain_id_max)} "
        f"AND (flags & {_NOT_POSTED}) = 0 AND code NOT IN ({codes})"
    )


def window_pair_sums(
    connection: sa.Connection,
    *,
    chain_id_min: int,
    chain_id_max: int,
    account_ids: Sequence[int],
    exclude_codes: Sequence[int] = (),
) -> list[PairSum]:
    """Posted sums of the chains with ``chain_id_min <= chain_id < chain_id_max`` (see the
    module docstring), leaving out the transfers whose code is in ``exclude_codes``."""
    _tune(connection)
    ids = _id_list(account_ids)
    sql = (
        f"SELECT CASE WHEN debit_account_id IN ({ids}) THEN debit_account_id ELSE 0 END AS d, "
        f"CASE WHEN credit_account_id IN ({ids}) THEN credit_account_id ELSE 0 END AS c, "
        "code, SUM(amount), COUNT(*) FROM ledger_transfers "
        f"WHERE {_range_where(chain_id_min, chain_id_max, exclude_codes)} "
        "GROUP BY 1, 2, code ORDER BY 1, 2, code"
    )
    return [
        PairSum(int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]))
        for r in connection.execute(sa.text(sql))
    ]


ChainRow = Sequence[int]
"""One chain of a window, as the row the database returns (no object per row: a window has
millions): ``(chain_id, record_id, code, account_0, net_debit_0, account_1, net_debit_1, …)`` —
the record is ``user_data_64`` of its transfers, and per account group the group's account the
chain touched (0: none) and the chain's net debit on it."""


def window_chains(
    connection: sa.Connection,
    *,
    chain_id_min: int,
    chain_id_max: int,
    groups: Sequence[Sequence[int]],
    exclude_codes: Sequence[int] = (),
) -> Iterator[ChainRow]:
    """Each chain of the range that touches an account of ``groups``, in chain order (one
    ``GROUP BY chain_id``; rows stream from a server-side cursor), as ``ChainRow``s."""
    columns: list[str] = []
    touched: list[str] = []
    for group in groups:
        ids = _id_list(group)
        columns.append(
            f"MAX(CASE WHEN debit_account_id IN ({ids}) THEN debit_account_id "
            f"WHEN credit_account_id IN ({ids}) THEN credit_account_id ELSE 0 END)"
        )
        columns.append(
            f"CAST(SUM(CASE WHEN debit_account_id IN ({ids}) THEN amount "
            f"WHEN credit_account_id IN ({ids}) THEN -amount ELSE 0 END) AS BIGINT)"
        )
        touched.append(f"debit_account_id IN ({ids}) OR credit_account_id IN ({ids})")
    sql = (
        f"SELECT chain_id, MIN(user_data_64), MIN(code), {', '.join(columns)} "
        f"FROM ledger_transfers WHERE {_range_where(chain_id_min, chain_id_max, exclude_codes)} "
        f"GROUP BY chain_id HAVING MAX(CASE WHEN {' OR '.join(touched)} THEN 1 ELSE 0 END) = 1 "
        "ORDER BY chain_id"
    )
    _tune(connection)
    result = connection.execution_options(stream_results=True, yield_per=CHAINS_FETCH_ROWS)
    for partition in result.execute(sa.text(sql)).partitions():
        yield from partition


def chain_timestamps(
    connection: sa.Connection, *, transfer_ids: Sequence[int]
) -> Mapping[int, int]:
    """The timestamp of each of these transfers that exists, by id."""
    ids = _id_list(transfer_ids)
    rows = connection.execute(
        sa.text(f"SELECT id, timestamp FROM ledger_transfers WHERE id IN ({ids})")
    )
    return {int(r[0]): int(r[1]) for r in rows}
