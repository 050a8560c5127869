"""flashpay's double-entry ledger: TigerBeetle's data model on SQLite and PostgreSQL.

Public API (other packages and outside checks call it; extend it, don't rename it)::

    ledger = Ledger.open("sqlite:///path.db" | "postgresql://…", clock=...)
    ledger.create_accounts([Account(...), ...])   -> [CreateAccountResult, ...]
    ledger.create_transfers([Transfer(...), ...]) -> [CreateTransferResult, ...]
    ledger.lookup_accounts(ids), ledger.lookup_transfers(ids)
    ledger.get_account_transfers(AccountFilter(...)), ledger.get_account_balances(...)
    ledger.expire_pending_transfers(), ledger.compact_balances()
    ledger.drain_outbox(consume), ledger.iter_chains(...), ledger.lookup_chains(...)
    check(url) -> CheckReport            # invariants 1–5 of ARCHITECTURE.md §7

See ``types`` for the data model, ``engine`` for the rules, ``service`` for storage.
"""

from flashpay.ledger.check import CheckReport, Problem, check
from flashpay.ledger.errors import (
    BatchTooLargeError,
    InvariantError,
    LedgerError,
    RetriesExhaustedError,
)
from flashpay.ledger.ids import derive_id, new_id
from flashpay.ledger.service import BATCH_EVENTS_MAX, Ledger
from flashpay.ledger.types import (
    Account,
    AccountBalance,
    AccountFilter,
    AccountFlags,
    CommittedChain,
    CreateAccountResult,
    CreateTransferResult,
    PendingState,
    Transfer,
    TransferFlags,
)

__all__ = [
    "BATCH_EVENTS_MAX",
    "Account",
    "AccountBalance",
    "AccountFilter",
    "AccountFlags",
    "BatchTooLargeError",
    "CheckReport",
    "CommittedChain",
    "CreateAccountResult",
    "CreateTransferResult",
    "InvariantError",
    "Ledger",
    "LedgerError",
    "PendingState",
    "Problem",
    "RetriesExhaustedError",
    "Transfer",
    "TransferFlags",
    "check",
    "derive_id",
    "new_id",
]
