"""A planned batch's writes: one statement per table (PostgreSQL: ``unnest`` over array
parameters, all combined into one statement of data-modifying CTEs; SQLite: ``executemany``).

The statements are data (``_Bulk``: each dialect's text); ``Writes._write`` turns a
``TransferPlan`` into their rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from flashpay.ledger.engine import (
    TransferPlan,
)
from flashpay.ledger.storage import (
    TRANSFER_COLUMNS,
    Storage,
)
from flashpay.ledger.types import (
    TRANSFER_RECORD_FIELDS,
    PendingState,
    transfer_record,
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
    f"INSERT INTO ledger_transfers ({TRANSFER_COLUMNS}, chain_id) "
    f"VALUES ({', '.join('?' * (len(TRANSFER_RECORD_FIELDS) + 1))})",
    _unnest(
        "ledger_transfers",
        f"{TRANSFER_COLUMNS}, chain_id",
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


class Writes(Storage):
    """Writing a plan."""

    _held: dict[int, list[tuple[str, list[str]]]]  # per connection, see _bulk

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
            conn, _INSERT_TRANSFERS, [(*transfer_record(t), chain_of[t.id]) for t in plan.created]
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
