"""Reconciliation: a member's own record of a window against flashpay's clearing file.

The member submits its record in the clearing CSV layout (its clearing file back, or an export
of its books in the same columns). Every break is reported with the transaction and the field,
in this order of kinds:

- ``duplicate``: a transaction id twice in the member's record;
- ``missing_in_member``: in flashpay's file, not in the record;
- ``missing_in_flashpay``: in the record, not in flashpay's file;
- ``amount_mismatch``: ``gross_fen`` or ``net_fen`` differ;
- ``fee_mismatch``: ``interchange_fen`` or ``network_fee_fen`` differ.

A clean record gives no break. Pure over the two texts; ``reconcile_window`` reads flashpay's
file (whose digest is in the audit log) from the window's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa

from flashpay.settlement.clearing import COLUMNS, read_clearing_csv
from flashpay.settlement.errors import SettlementError, SettlementRefusal
from flashpay.settlement.queries import window_files

RECORD_ROWS_MAX = 2_000_000
AMOUNT_FIELDS = ("gross_fen", "net_fen")
FEE_FIELDS = ("interchange_fen", "network_fee_fen")


class BreakKind(StrEnum):
    DUPLICATE = "duplicate"
    MISSING_IN_MEMBER = "missing_in_member"
    MISSING_IN_FLASHPAY = "missing_in_flashpay"
    AMOUNT_MISMATCH = "amount_mismatch"
    FEE_MISMATCH = "fee_mismatch"


@dataclass(frozen=True, slots=True)
class Break:
    kind: BreakKind
    transaction_id: int
    field: str | None = None
    flashpay_value: str | None = None
    member_value: str | None = None


def _parse(text: str, who: str) -> list[dict[str, str]]:
    rows = read_clearing_csv(text)
    header = text.splitlines()[0].strip().split(",") if text.strip() else list(COLUMNS)
    if tuple(header) != COLUMNS:
        raise SettlementError(SettlementRefusal.INVALID_RECORD,
                              f"{who}: the header is not {','.join(COLUMNS)}")  # fmt: skip
    if len(rows) > RECORD_ROWS_MAX:
        raise SettlementError(SettlementRefusal.INVALID_RECORD, f"more than {RECORD_ROWS_MAX}")
    for n, row in enumerate(rows, start=2):
        if not row.get("transaction_id", "").isdigit():
            raise SettlementError(SettlementRefusal.INVALID_RECORD,
                                  f"{who}: line {n}: transaction_id is not a number")  # fmt: skip
    return rows


def compare(ours_text: str, theirs_text: str) -> list[Break]:
    """Every break between flashpay's clearing CSV and the member's record."""
    ours = {int(r["transaction_id"]): r for r in _parse(ours_text, "flashpay")}
    theirs: dict[int, dict[str, str]] = {}
    breaks: list[Break] = []
    for row in _parse(theirs_text, "record"):
        tid = int(row["transaction_id"])
        if tid in theirs:
            breaks.append(Break(BreakKind.DUPLICATE, tid))
            continue
        theirs[tid] = row
    breaks += [Break(BreakKind.MISSING_IN_MEMBER, t) for t in sorted(set(ours) - set(theirs))]
    breaks += [Break(BreakKind.MISSING_IN_FLASHPAY, t) for t in sorted(set(theirs) - set(ours))]
    for tid in sorted(set(ours) & set(theirs)):
        for kind, fields in ((BreakKind.AMOUNT_MISMATCH, AMOUNT_FIELDS),
                             (BreakKind.FEE_MISMATCH, FEE_FIELDS)):  # fmt: skip
            for f in fields:
                a, b = ours[tid].get(f), theirs[tid].get(f)
                if a != b:
                    breaks.append(Break(kind, tid, f, a, b))
    return breaks


def reconcile_window(
    connection: sa.Connection, *, window_id: int, member: str, record: str
) -> list[Break]:
    """``compare`` against the member's stored clearing file for the window."""
    found = [f for f in window_files(connection, window_id)
             if f.member == member and f.kind == "clearing_csv"]  # fmt: skip
    if not found:
        raise SettlementError(SettlementRefusal.WINDOW_NOT_FOUND,
                              f"no clearing file of {member} for window {window_id}")  # fmt: skip
    return compare(Path(found[0].path).read_text(encoding="utf-8"), record)
