"""Reads of settlement's own tables (windows, positions, moves, files)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.settlement.models import (
    settlement_files,
    settlement_moves,
    settlement_positions,
    settlement_windows,
)
from flashpay.settlement.positions import Position

WINDOWS_PAGE_MAX = 200


@dataclass(frozen=True, slots=True)
class Window:
    id: int
    start_ns: int
    end_ns: int
    state: str  # closed, settled
    closed_at_ns: int
    settled_at_ns: int | None
    results_digest: str
    transactions: int
    settlement_chain_id: int | None


@dataclass(frozen=True, slots=True)
class StoredFile:
    member: str
    kind: str
    path: str
    sha256: str
    size_bytes: int


def _window(row: sa.Row[tuple[object, ...]]) -> Window:
    m = row._mapping
    return Window(
        id=int(m["id"]), start_ns=int(m["start_ns"]), end_ns=int(m["end_ns"]),
        state=str(m["state"]), closed_at_ns=int(m["closed_at_ns"]),
        settled_at_ns=None if m["settled_at_ns"] is None else int(m["settled_at_ns"]),
        results_digest=str(m["results_digest"]), transactions=int(m["transactions"]),
        settlement_chain_id=(
            None if m["settlement_chain_id"] is None else int(m["settlement_chain_id"])
        ),
    )  # fmt: skip


def last_window(connection: sa.Connection) -> Window | None:
    row = connection.execute(
        sa.select(settlement_windows).order_by(settlement_windows.c.end_ns.desc()).limit(1)
    ).first()
    return None if row is None else _window(row)


def window_by_id(connection: sa.Connection, window_id: int) -> Window | None:
    row = connection.execute(
        sa.select(settlement_windows).where(settlement_windows.c.id == window_id)
    ).first()
    return None if row is None else _window(row)


def list_windows(connection: sa.Connection, *, limit: int = WINDOWS_PAGE_MAX) -> list[Window]:
    rows = connection.execute(
        sa.select(settlement_windows)
        .order_by(settlement_windows.c.end_ns)
        .limit(min(limit, WINDOWS_PAGE_MAX))
    ).all()
    return [_window(r) for r in rows]


def window_positions(connection: sa.Connection, window_id: int) -> list[Position]:
    rows = connection.execute(
        sa.select(settlement_positions).where(settlement_positions.c.window_id == window_id)
    ).all()
    fields = Position.__dataclass_fields__
    out = [Position(**{k: v for k, v in r._mapping.items() if k in fields}) for r in rows]
    order = {"network": 0, "issuer": 1, "acquirer": 2}
    return sorted(out, key=lambda p: (order.get(p.kind, 3), p.member))


def window_moves(connection: sa.Connection, window_id: int) -> list[tuple[int, str, int]]:
    rows = connection.execute(
        sa.select(settlement_moves)
        .where(settlement_moves.c.window_id == window_id)
        .order_by(settlement_moves.c.account_id)
    ).all()
    return [(int(r.account_id), str(r.member), int(r.net_debit_fen)) for r in rows]


def window_files(connection: sa.Connection, window_id: int) -> list[StoredFile]:
    rows = connection.execute(
        sa.select(settlement_files)
        .where(settlement_files.c.window_id == window_id)
        .order_by(settlement_files.c.member, settlement_files.c.kind)
    ).all()
    return [StoredFile(str(r.member), str(r.kind), str(r.path), str(r.sha256), int(r.bytes))
            for r in rows]  # fmt: skip
