"""The ledger's data model: accounts, transfers, flags and result codes (TigerBeetle's model).

An ``Account`` holds four balances: ``debits_pending``, ``debits_posted``, ``credits_pending``,
``credits_posted``. A ``Transfer`` moves ``amount`` from its debit account to its credit account,
either at once (posted) or in two phases (``PENDING``, later ``POST_PENDING_TRANSFER`` for all or
part, or ``VOID_PENDING_TRANSFER``, or expiry after ``timeout_seconds``). Transfers are immutable;
a correction is a new transfer. ``LINKED`` chains events: all succeed or none does.

Result enums list ``OK`` first, then every rejection in the order the engine checks it, so the
first failing check names the outcome (TigerBeetle's precedence rule).

Width: ids, amounts and balances are stored as SQL ``BIGINT``, so they are ints below 2**63
(``INT64_MAX``); ``user_data_128`` is kept as 16 bytes. Timestamps are nanoseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag, StrEnum
from typing import Any

INT64_MAX = 2**63 - 1
UINT128_MAX = 2**128 - 1
UINT32_MAX = 2**32 - 1


class AccountFlags(IntFlag):
    NONE = 0
    LINKED = 1
    DEBITS_MUST_NOT_EXCEED_CREDITS = 2
    CREDITS_MUST_NOT_EXCEED_DEBITS = 4
    HISTORY = 8
    CLOSED = 16


class TransferFlags(IntFlag):
    NONE = 0
    LINKED = 1
    PENDING = 2
    POST_PENDING_TRANSFER = 4
    VOID_PENDING_TRANSFER = 8
    BALANCING_DEBIT = 16
    BALANCING_CREDIT = 32
    CLOSING_DEBIT = 64  # a pending transfer that closes its debit account (void/expiry reopens)
    CLOSING_CREDIT = 128  # likewise its credit account


class PendingState(IntEnum):
    """What became of a pending transfer (stored in ``ledger_pending.state``)."""

    PENDING = 1
    POSTED = 2
    VOIDED = 3
    EXPIRED = 4


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    ledger: int
    code: int
    flags: AccountFlags = AccountFlags.NONE
    credit_limit: int = 0
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    timestamp: int = 0

    @property
    def debit_balance(self) -> int:
        """Posted debits minus posted credits (the balance of a debit-normal account)."""
        return self.debits_posted - self.credits_posted

    @property
    def credit_balance(self) -> int:
        """Posted credits minus posted debits (the balance of a credit-normal account)."""
        return self.credits_posted - self.debits_posted


@dataclass(frozen=True, slots=True)
class Transfer:
    id: int
    debit_account_id: int
    credit_account_id: int
    amount: int
    ledger: int
    code: int
    flags: TransferFlags = TransferFlags.NONE
    pending_id: int = 0
    timeout_seconds: int = 0
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    timestamp: int = 0


# A transfer's record: its fields in the one order its stored forms share, the columns of
# ``ledger_transfers`` and the transfer entries of the audit log's leaf (``chain.leaf``), with
# ``user_data_128`` as 16 big-endian bytes. ``transfer_record`` and ``transfer_from_record``
# write and read it; keep the three together.
TRANSFER_RECORD_FIELDS = (
    "id",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "pending_id",
    "user_data_128",
    "user_data_64",
    "user_data_32",
    "timeout_seconds",
    "ledger",
    "code",
    "flags",
    "timestamp",
)


def transfer_record(t: Transfer) -> tuple[Any, ...]:
    """``t`` as a record in ``TRANSFER_RECORD_FIELDS`` order."""
    return (
        t.id,
        t.debit_account_id,
        t.credit_account_id,
        t.amount,
        t.pending_id,
        t.user_data_128.to_bytes(16, "big"),
        t.user_data_64,
        t.user_data_32,
        t.timeout_seconds,
        t.ledger,
        t.code,
        int(t.flags),
        t.timestamp,
    )


def transfer_from_record(r: Sequence[Any]) -> Transfer:
    """The transfer a record holds (extra trailing values are ignored)."""
    return Transfer(
        id=r[0],
        debit_account_id=r[1],
        credit_account_id=r[2],
        amount=r[3],
        pending_id=r[4],
        user_data_128=int.from_bytes(bytes(r[5]), "big"),
        user_data_64=r[6],
        user_data_32=r[7],
        timeout_seconds=r[8],
        ledger=r[9],
        code=r[10],
        flags=TransferFlags(r[11]),
        timestamp=r[12],
    )


class CreateAccountResult(StrEnum):
    OK = "ok"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    TIMESTAMP_MUST_BE_ZERO = "timestamp_must_be_zero"
    ID_MUST_NOT_BE_ZERO = "id_must_not_be_zero"
    ID_OUT_OF_RANGE = "id_out_of_range"
    EXISTS_WITH_DIFFERENT_FLAGS = "exists_with_different_flags"
    EXISTS_WITH_DIFFERENT_CREDIT_LIMIT = "exists_with_different_credit_limit"
    EXISTS_WITH_DIFFERENT_USER_DATA_128 = "exists_with_different_user_data_128"
    EXISTS_WITH_DIFFERENT_USER_DATA_64 = "exists_with_different_user_data_64"
    EXISTS_WITH_DIFFERENT_USER_DATA_32 = "exists_with_different_user_data_32"
    EXISTS_WITH_DIFFERENT_LEDGER = "exists_with_different_ledger"
    EXISTS_WITH_DIFFERENT_CODE = "exists_with_different_code"
    EXISTS = "exists"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    DEBITS_PENDING_MUST_BE_ZERO = "debits_pending_must_be_zero"
    DEBITS_POSTED_MUST_BE_ZERO = "debits_posted_must_be_zero"
    CREDITS_PENDING_MUST_BE_ZERO = "credits_pending_must_be_zero"
    CREDITS_POSTED_MUST_BE_ZERO = "credits_posted_must_be_zero"
    CREDIT_LIMIT_OUT_OF_RANGE = "credit_limit_out_of_range"
    USER_DATA_OUT_OF_RANGE = "user_data_out_of_range"
    LEDGER_MUST_NOT_BE_ZERO = "ledger_must_not_be_zero"
    CODE_MUST_NOT_BE_ZERO = "code_must_not_be_zero"


class CreateTransferResult(StrEnum):
    OK = "ok"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    TIMESTAMP_MUST_BE_ZERO = "timestamp_must_be_zero"
    ID_MUST_NOT_BE_ZERO = "id_must_not_be_zero"
    ID_OUT_OF_RANGE = "id_out_of_range"
    # A retry is recognised before anything else about the event is judged.
    EXISTS_WITH_DIFFERENT_FLAGS = "exists_with_different_flags"
    EXISTS_WITH_DIFFERENT_PENDING_ID = "exists_with_different_pending_id"
    EXISTS_WITH_DIFFERENT_TIMEOUT = "exists_with_different_timeout"
    EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID = "exists_with_different_debit_account_id"
    EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID = "exists_with_different_credit_account_id"
    EXISTS_WITH_DIFFERENT_AMOUNT = "exists_with_different_amount"
    EXISTS_WITH_DIFFERENT_USER_DATA_128 = "exists_with_different_user_data_128"
    EXISTS_WITH_DIFFERENT_USER_DATA_64 = "exists_with_different_user_data_64"
    EXISTS_WITH_DIFFERENT_USER_DATA_32 = "exists_with_different_user_data_32"
    EXISTS_WITH_DIFFERENT_LEDGER = "exists_with_different_ledger"
    EXISTS_WITH_DIFFERENT_CODE = "exists_with_different_code"
    EXISTS = "exists"
    # The event's own shape.
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = "debit_account_id_must_not_be_zero"
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = "credit_account_id_must_not_be_zero"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    PENDING_ID_MUST_BE_ZERO = "pending_id_must_be_zero"
    PENDING_ID_MUST_NOT_BE_ZERO = "pending_id_must_not_be_zero"
    PENDING_ID_MUST_BE_DIFFERENT = "pending_id_must_be_different"
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = "timeout_reserved_for_pending_transfer"
    CLOSING_TRANSFER_MUST_BE_PENDING = "closing_transfer_must_be_pending"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    AMOUNT_MUST_NOT_BE_ZERO = "amount_must_not_be_zero"
    USER_DATA_OUT_OF_RANGE = "user_data_out_of_range"
    LEDGER_MUST_NOT_BE_ZERO = "ledger_must_not_be_zero"
    CODE_MUST_NOT_BE_ZERO = "code_must_not_be_zero"
    # Against the stored accounts and pending transfers.
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER = "accounts_must_have_the_same_ledger"
    TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS = (
        "transfer_must_have_the_same_ledger_as_accounts"
    )
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = (
        "pending_transfer_has_different_debit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = (
        "pending_transfer_has_different_credit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_LEDGER = "pending_transfer_has_different_ledger"
    PENDING_TRANSFER_HAS_DIFFERENT_CODE = "pending_transfer_has_different_code"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = "pending_transfer_has_different_amount"
    # Balances and account state.
    OVERFLOWS_DEBITS = "overflows_debits"
    OVERFLOWS_CREDITS = "overflows_credits"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"
    DEBIT_ACCOUNT_CLOSED = "debit_account_closed"
    CREDIT_ACCOUNT_CLOSED = "credit_account_closed"


@dataclass(frozen=True, slots=True)
class AccountFilter:
    """Which of an account's transfers (or balances) to read: a time window, paginated."""

    account_id: int
    timestamp_min: int = 0
    timestamp_max: int = 0
    limit: int = 100
    debits: bool = True
    credits: bool = True
    reversed: bool = False


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """An account's balances right after the transfer with ``timestamp`` (HISTORY accounts)."""

    timestamp: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int


@dataclass(frozen=True, slots=True)
class CommittedChain:
    """One committed linked chain (a single unlinked transfer is a chain of one)."""

    chain_id: int
    commitment: bytes | None
    transfers: tuple[Transfer, ...]
