"""Why settlement refuses a request, in check order (values are the API error codes)."""

from __future__ import annotations

from enum import StrEnum

from flashpay.errors import RefusedError


class SettlementRefusal(StrEnum):
    NO_SETTLEMENT_BANK = "no_settlement_bank"  # the loaded network names none
    WINDOW_NOT_DUE = "window_not_due"  # the cut-off plus the close delay has not passed
    WINDOW_NOT_FOUND = "window_not_found"
    WINDOW_NOT_SETTLED = "window_not_settled"  # a payout waits for the window's settlement
    SETTLEMENT_REFUSED = "settlement_refused"  # the ledger refused the settlement chain
    INVALID_RECORD = "invalid_record"  # a reconciliation record that does not parse


class SettlementError(RefusedError):
    reason: SettlementRefusal
