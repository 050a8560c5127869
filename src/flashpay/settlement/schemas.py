"""API shapes of ``/v1/settlement``."""

from __future__ import annotations

from pydantic import BaseModel


class WindowOut(BaseModel):
    id: int
    start_ns: int
    end_ns: int
    state: str
    closed_at_ns: int
    settled_at_ns: int | None
    results_digest: str
    transactions: int
    settlement_chain_id: int | None


class PositionOut(BaseModel):
    member: str
    kind: str
    owes_fen: int
    owed_fen: int
    refunds_fen: int
    interchange_fen: int
    network_fee_fen: int
    mdr_fen: int
    other_fen: int
    promotion_fen: int
    net_fen: int
    books_net_fen: int
    transactions: int


class FileOut(BaseModel):
    member: str
    kind: str
    sha256: str
    size_bytes: int


class CloseIn(BaseModel):
    end_ns: int


class BreakOut(BaseModel):
    kind: str
    transaction_id: int
    field: str | None
    flashpay_value: str | None
    member_value: str | None


class ReconciliationIn(BaseModel):
    record_csv: str


class ReconciliationOut(BaseModel):
    window_id: int
    member: str
    breaks: list[BreakOut]


class PayoutOut(BaseModel):
    """A merchant's statement and payout for a settled window (docs/reference/settlement.md)."""

    window_id: int
    merchant_id: int
    acquirer: str
    value_date: str
    payments: int
    payments_fen: int
    refunds: int
    refunds_fen: int
    fees_fen: int
    net_fen: int
    carried_in_fen: int
    payout_fen: int
    carried_out_fen: int
