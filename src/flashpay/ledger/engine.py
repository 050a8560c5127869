"""The pure part of the ledger: apply a batch of events to an in-memory view, no I/O.

Storage reads what a batch needs (accounts, existing transfers, referenced pending transfers),
hands it to ``plan_transfers`` / ``plan_accounts``, and writes the returned plan in one
transaction. Keeping the rules here, free of SQL, makes them easy to read, to test against a
reference model, and identical on SQLite and PostgreSQL.

Linked chains: every change is recorded in an undo log; when an event of a chain fails, the log
is unwound to the chain's start, the failing event gets its own result and every other event of
the chain ``LINKED_EVENT_FAILED``. A chain left open at the end of the batch fails as a whole
(``LINKED_EVENT_CHAIN_OPEN`` on its last event).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from flashpay.ledger.types import (
    INT64_MAX,
    UINT32_MAX,
    UINT128_MAX,
    Account,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    PendingState,
    Transfer,
    TransferFlags,
)

R = CreateTransferResult
A = CreateAccountResult
NS_PER_SECOND = 1_000_000_000


# Plain-int flag bits: IntFlag arithmetic costs microseconds per operation on the hot path.
_LINKED = int(TransferFlags.LINKED)
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
_BALANCING_DEBIT = int(TransferFlags.BALANCING_DEBIT)
_BALANCING_CREDIT = int(TransferFlags.BALANCING_CREDIT)
_CLOSING_DEBIT = int(TransferFlags.CLOSING_DEBIT)
_CLOSING_CREDIT = int(TransferFlags.CLOSING_CREDIT)
_D_LIMIT = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_C_LIMIT = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
_HISTORY = int(AccountFlags.HISTORY)
_CLOSED = int(AccountFlags.CLOSED)

_BALANCE_FIELDS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")


@dataclass(slots=True)
class AccountState:
    """An account's static fields and its balances as the batch changes them."""

    account: Account
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    flags: int = 0

    @classmethod
    def of(cls, account: Account) -> AccountState:
        return cls(
            account,
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
            int(account.flags),
        )


@dataclass(slots=True)
class PendingRecord:
    """A pending transfer and what became of it."""

    transfer: Transfer
    state: PendingState
    expires_at: int  # ns; 0 = never


@dataclass(slots=True)
class TransferPlan:
    results: list[CreateTransferResult]
    created: list[Transfer] = field(default_factory=list)
    new_pendings: list[PendingRecord] = field(default_factory=list)
    resolved_pendings: dict[int, PendingState] = field(default_factory=dict)
    # account id -> (debits_pending, debits_posted, credits_pending, credits_posted) deltas
    deltas: dict[int, list[int]] = field(default_factory=dict)
    history: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    chains: list[list[Transfer]] = field(default_factory=list)
    # account id -> its new flags, for accounts a closing transfer closed or a void reopened
    flag_updates: dict[int, int] = field(default_factory=dict)


def _exists_result(new: Transfer, old: Transfer) -> CreateTransferResult:
    if new.flags != old.flags:
        return R.EXISTS_WITH_DIFFERENT_FLAGS
    if new.pending_id != old.pending_id:
        return R.EXISTS_WITH_DIFFERENT_PENDING_ID
    if new.timeout_seconds != old.timeout_seconds:
        return R.EXISTS_WITH_DIFFERENT_TIMEOUT
    post_or_void = new.flags & (
        TransferFlags.POST_PENDING_TRANSFER | TransferFlags.VOID_PENDING_TRANSFER
    )
    # A post/void may leave accounts, amount, ledger and code at 0 ("as the pending transfer").
    if new.debit_account_id != old.debit_account_id and not (
        post_or_void and new.debit_account_id == 0
    ):
        return R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
    if new.credit_account_id != old.credit_account_id and not (
        post_or_void and new.credit_account_id == 0
    ):
        return R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
    balancing = new.flags & (TransferFlags.BALANCING_DEBIT | TransferFlags.BALANCING_CREDIT)
    if (
        new.amount != old.amount
        and not (post_or_void and new.amount == 0)
        and not (balancing and old.amount <= new.amount)
    ):
        return R.EXISTS_WITH_DIFFERENT_AMOUNT
    if new.user_data_128 != old.user_data_128:
        return R.EXISTS_WITH_DIFFERENT_USER_DATA_128
    if new.user_data_64 != old.user_data_64:
        return R.EXISTS_WITH_DIFFERENT_USER_DATA_64
    if new.user_data_32 != old.user_data_32:
        return R.EXISTS_WITH_DIFFERENT_USER_DATA_32
    if new.ledger != old.ledger and not (post_or_void and new.ledger == 0):
        return R.EXISTS_WITH_DIFFERENT_LEDGER
    if new.code != old.code and not (post_or_void and new.code == 0):
        return R.EXISTS_WITH_DIFFERENT_CODE
    return R.EXISTS


def validate_transfer_id(t: Transfer) -> CreateTransferResult | None:
    """The checks before the idempotency look-up: the event must name a valid id."""
    if t.timestamp != 0:
        return R.TIMESTAMP_MUST_BE_ZERO
    if t.id == 0:
        return R.ID_MUST_NOT_BE_ZERO
    if not 0 < t.id <= INT64_MAX:
        return R.ID_OUT_OF_RANGE
    return None


def validate_transfer_shape(t: Transfer) -> CreateTransferResult | None:
    """Checks that need nothing but the event itself (after the id and the retry checks)."""
    flags = int(t.flags)
    post = bool(flags & _POST)
    void = bool(flags & _VOID)
    pending = bool(flags & _PENDING)
    balancing = bool(flags & (_BALANCING_DEBIT | _BALANCING_CREDIT))
    if (pending + post + void) > 1 or (balancing and (post or void)):
        return R.FLAGS_ARE_MUTUALLY_EXCLUSIVE
    if not (post or void):
        if t.debit_account_id == 0:
            return R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
        if t.credit_account_id == 0:
            return R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
    if t.debit_account_id != 0 and t.debit_account_id == t.credit_account_id:
        return R.ACCOUNTS_MUST_BE_DIFFERENT
    if post or void:
        if t.pending_id == 0:
            return R.PENDING_ID_MUST_NOT_BE_ZERO
        if t.pending_id == t.id:
            return R.PENDING_ID_MUST_BE_DIFFERENT
    elif t.pending_id != 0:
        return R.PENDING_ID_MUST_BE_ZERO
    if t.timeout_seconds != 0 and not pending:
        return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
    if not 0 <= t.timeout_seconds <= UINT32_MAX:
        return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
    closing = bool(flags & (_CLOSING_DEBIT | _CLOSING_CREDIT))
    if closing and not pending:
        return R.CLOSING_TRANSFER_MUST_BE_PENDING
    if not 0 <= t.amount <= INT64_MAX:
        return R.AMOUNT_OUT_OF_RANGE
    if t.amount == 0 and not (post or void or balancing or closing):
        return R.AMOUNT_MUST_NOT_BE_ZERO
    if not (
        0 <= t.user_data_128 <= UINT128_MAX
        and 0 <= t.user_data_64 <= INT64_MAX
        and 0 <= t.user_data_32 <= UINT32_MAX
    ):
        return R.USER_DATA_OUT_OF_RANGE
    if t.ledger == 0 and not (post or void):
        return R.LEDGER_MUST_NOT_BE_ZERO
    if t.code == 0 and not (post or void):
        return R.CODE_MUST_NOT_BE_ZERO
    return None


class _ExistsSignal(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The event was already applied with the same fields: a retry, answered ``EXISTS``.

    Unlike TigerBeetle, ``EXISTS`` does not fail a linked chain: retrying a whole committed
    chain answers ``EXISTS`` for each event, so a client can retry chains blindly."""


class _RejectedError(Exception):
    def __init__(self, result: CreateTransferResult) -> None:
        self.result = result


class TransferBatch:
    """Applies one batch of transfers to the view read from storage, producing a plan."""

    def __init__(
        self,
        *,
        accounts: dict[int, AccountState],
        existing: dict[int, Transfer],
        pendings: dict[int, PendingRecord],
        now_ns: int,
        first_timestamp: int,
    ) -> None:
        self.accounts = accounts
        self.existing = existing
        self.pendings = pendings
        self.now_ns = now_ns
        self.first_timestamp = first_timestamp
        self._undo: list[Callable[[], object]] = []

    # -- helpers that record their own undo ------------------------------------------------
    def _add(self, state: AccountState, name: str, delta: int) -> None:
        old = getattr(state, name)
        setattr(state, name, old + delta)
        self._undo.append(lambda: setattr(state, name, old))

    def _set_flags(self, state: AccountState, flags: int) -> None:
        old = state.flags
        state.flags = flags
        self._undo.append(lambda: setattr(state, "flags", old))

    def _set_pending(self, record: PendingRecord, new_state: PendingState) -> None:
        old = record.state
        record.state = new_state
        self._undo.append(lambda: setattr(record, "state", old))

    def _remember(self, transfer: Transfer) -> None:
        self.existing[transfer.id] = transfer
        self._undo.append(lambda: self.existing.pop(transfer.id, None))

    def _rollback_to(self, mark: int) -> None:
        while len(self._undo) > mark:
            self._undo.pop()()

    # -- one event ---------------------------------------------------------------------------
    def _apply(self, t: Transfer, timestamp: int, plan: TransferPlan) -> Transfer:
        """Apply one event or raise ``_RejectedError``; returns the transfer as stored."""
        invalid = validate_transfer_id(t)
        if invalid is not None:
            raise _RejectedError(invalid)
        old = self.existing.get(t.id)
        if old is not None:
            result = _exists_result(t, old)
            if result == R.EXISTS:
                raise _ExistsSignal
            raise _RejectedError(result)
        invalid = validate_transfer_shape(t)
        if invalid is not None:
            raise _RejectedError(invalid)
        flags = int(t.flags)
        if flags & (_POST | _VOID):
            return self._apply_post_or_void(t, timestamp, plan)
        dr = self.accounts.get(t.debit_account_id)
        if dr is None:
            raise _RejectedError(R.DEBIT_ACCOUNT_NOT_FOUND)
        cr = self.accounts.get(t.credit_account_id)
        if cr is None:
            raise _RejectedError(R.CREDIT_ACCOUNT_NOT_FOUND)
        if dr.account.ledger != cr.account.ledger:
            raise _RejectedError(R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER)
        if t.ledger != dr.account.ledger:
            raise _RejectedError(R.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS)
        amount = t.amount
        if flags & _BALANCING_DEBIT:
            available = (
                dr.credits_posted + dr.account.credit_limit - dr.debits_posted - dr.debits_pending
            )
            amount = min(amount, max(0, available))
        if flags & _BALANCING_CREDIT:
            available = (
                cr.debits_posted + cr.account.credit_limit - cr.credits_posted - cr.credits_pending
            )
            amount = min(amount, max(0, available))
        pending = bool(flags & _PENDING)
        dr_field = "debits_pending" if pending else "debits_posted"
        cr_field = "credits_pending" if pending else "credits_posted"
        if dr.debits_pending + dr.debits_posted + amount > INT64_MAX:
            raise _RejectedError(R.OVERFLOWS_DEBITS)
        if cr.credits_pending + cr.credits_posted + amount > INT64_MAX:
            raise _RejectedError(R.OVERFLOWS_CREDITS)
        if dr.flags & _D_LIMIT and (
            dr.debits_pending + dr.debits_posted + amount
            > dr.credits_posted + dr.account.credit_limit
        ):
            raise _RejectedError(R.EXCEEDS_CREDITS)
        if cr.flags & _C_LIMIT and (
            cr.credits_pending + cr.credits_posted + amount
            > cr.debits_posted + cr.account.credit_limit
        ):
            raise _RejectedError(R.EXCEEDS_DEBITS)
        if dr.flags & _CLOSED:
            raise _RejectedError(R.DEBIT_ACCOUNT_CLOSED)
        if cr.flags & _CLOSED:
            raise _RejectedError(R.CREDIT_ACCOUNT_CLOSED)
        self._add(dr, dr_field, amount)
        self._add(cr, cr_field, amount)
        if flags & _CLOSING_DEBIT:
            self._set_flags(dr, dr.flags | _CLOSED)
        if flags & _CLOSING_CREDIT:
            self._set_flags(cr, cr.flags | _CLOSED)
        stored = Transfer(
            t.id,
            t.debit_account_id,
            t.credit_account_id,
            amount,
            t.ledger,
            t.code,
            t.flags,
            t.pending_id,
            t.timeout_seconds,
            t.user_data_128,
            t.user_data_64,
            t.user_data_32,
            timestamp,
        )
        if pending:
            expires_at = timestamp + t.timeout_seconds * NS_PER_SECOND if t.timeout_seconds else 0
            record = PendingRecord(stored, PendingState.PENDING, expires_at)
            self.pendings[stored.id] = record
            self._undo.append(lambda: self.pendings.pop(stored.id, None))
        self._remember(stored)
        return stored

    def _apply_plain(self, t: Transfer, timestamp: int) -> Transfer | None:
        """A standalone posted transfer with no flags, applied without an undo log when every
        check passes at once; ``None`` when any check might fail, and ``_apply`` then decides
        (the same checks in precedence order, so the result never differs). Before a change
        is made nothing can fail, so nothing needs undoing."""
        tid = t.id
        if t.timestamp or not 0 < tid <= INT64_MAX or tid in self.existing:
            return None
        amount = t.amount
        dr = self.accounts.get(t.debit_account_id)
        cr = self.accounts.get(t.credit_account_id)
        ledger = t.ledger
        if (
            dr is None
            or cr is None
            or dr is cr
            or t.pending_id
            or t.timeout_seconds
            or not 0 < amount <= INT64_MAX
            or not t.code
            or not 0 <= t.user_data_128 <= UINT128_MAX
            or not 0 <= t.user_data_64 <= INT64_MAX
            or not 0 <= t.user_data_32 <= UINT32_MAX
            or ledger != dr.account.ledger
            or ledger != cr.account.ledger
            or (dr.flags | cr.flags) & _CLOSED
        ):
            return None
        debits = dr.debits_pending + dr.debits_posted + amount
        credits = cr.credits_pending + cr.credits_posted + amount
        if (
            debits > INT64_MAX
            or credits > INT64_MAX
            or (dr.flags & _D_LIMIT and debits > dr.credits_posted + dr.account.credit_limit)
            or (cr.flags & _C_LIMIT and credits > cr.debits_posted + cr.account.credit_limit)
        ):
            return None
        # Commit point of this event: nothing below can fail.
        dr.debits_posted += amount
        cr.credits_posted += amount
        stored = Transfer(
            tid,
            t.debit_account_id,
            t.credit_account_id,
            amount,
            ledger,
            t.code,
            t.flags,
            0,
            0,
            t.user_data_128,
            t.user_data_64,
            t.user_data_32,
            timestamp,
        )
        self.existing[tid] = stored
        return stored

    def _apply_plain_chain(
        self, transfers: Sequence[Transfer], start: int, history_ids: set[int]
    ) -> tuple[list[Transfer], list[tuple[int, int, int, int, int, int]]] | None:
        """A linked chain of plain posted transfers (``LINKED`` alone on all but the last, no
        flags on the last — a payment's six legs), applied event by event with
        ``_apply_plain``; when any event might fail, what was applied is taken back and
        ``None`` returned, and the general path decides the whole chain (same checks, same
        results). The stored chain and its balance-history rows."""
        end = start
        while end < len(transfers) and transfers[end].flags == _LINKED:
            end += 1
        if end == len(transfers) or transfers[end].flags != 0:
            return None  # not such a chain (or left open: the general path answers that)
        stored_chain: list[Transfer] = []
        rows: list[tuple[int, int, int, int, int, int]] = []
        for index in range(start, end + 1):
            stored = self._apply_plain(transfers[index], self.first_timestamp + index)
            if stored is None:
                for done in stored_chain:  # nothing else was changed: take these back
                    self.accounts[done.debit_account_id].debits_posted -= done.amount
                    self.accounts[done.credit_account_id].credits_posted -= done.amount
                    del self.existing[done.id]
                return None
            stored_chain.append(stored)
            for aid in (stored.debit_account_id, stored.credit_account_id):
                if aid in history_ids:
                    rows.append((aid, stored.timestamp, *_balances(self.accounts[aid])))
        return stored_chain, rows

    def _apply_post_or_void(self, t: Transfer, timestamp: int, plan: TransferPlan) -> Transfer:
        record = self.pendings.get(t.pending_id)
        if record is None:
            if t.pending_id in self.existing:
                raise _RejectedError(R.PENDING_TRANSFER_NOT_PENDING)
            raise _RejectedError(R.PENDING_TRANSFER_NOT_FOUND)
        p = record.transfer
        if t.debit_account_id not in (0, p.debit_account_id):
            raise _RejectedError(R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID)
        if t.credit_account_id not in (0, p.credit_account_id):
            raise _RejectedError(R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID)
        if t.ledger not in (0, p.ledger):
            raise _RejectedError(R.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER)
        if t.code not in (0, p.code):
            raise _RejectedError(R.PENDING_TRANSFER_HAS_DIFFERENT_CODE)
        post = bool(int(t.flags) & _POST)
        if record.state == PendingState.POSTED:
            raise _RejectedError(R.PENDING_TRANSFER_ALREADY_POSTED)
        if record.state == PendingState.VOIDED:
            raise _RejectedError(R.PENDING_TRANSFER_ALREADY_VOIDED)
        if record.state == PendingState.EXPIRED:
            raise _RejectedError(R.PENDING_TRANSFER_EXPIRED)
        if record.expires_at and record.expires_at <= self.now_ns:
            self._expire(record)
            raise _RejectedError(R.PENDING_TRANSFER_EXPIRED)
        amount = t.amount if (post and t.amount) else p.amount
        if amount > p.amount:
            raise _RejectedError(R.EXCEEDS_PENDING_TRANSFER_AMOUNT)
        if not post and t.amount not in (0, p.amount):
            raise _RejectedError(R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT)
        dr = self.accounts[p.debit_account_id]
        cr = self.accounts[p.credit_account_id]
        pending_flags = int(p.flags)
        if post:  # a void always goes through: it only releases a hold (and reopens)
            if dr.flags & _CLOSED and not pending_flags & _CLOSING_DEBIT:
                raise _RejectedError(R.DEBIT_ACCOUNT_CLOSED)
            if cr.flags & _CLOSED and not pending_flags & _CLOSING_CREDIT:
                raise _RejectedError(R.CREDIT_ACCOUNT_CLOSED)
        self._add(dr, "debits_pending", -p.amount)
        self._add(cr, "credits_pending", -p.amount)
        if post:
            self._add(dr, "debits_posted", amount)
            self._add(cr, "credits_posted", amount)
        else:
            if pending_flags & _CLOSING_DEBIT:
                self._set_flags(dr, dr.flags & ~_CLOSED)
            if pending_flags & _CLOSING_CREDIT:
                self._set_flags(cr, cr.flags & ~_CLOSED)
        self._set_pending(record, PendingState.POSTED if post else PendingState.VOIDED)
        stored = replace(
            t,
            debit_account_id=p.debit_account_id,
            credit_account_id=p.credit_account_id,
            ledger=p.ledger,
            code=p.code,
            amount=amount,
            timestamp=timestamp,
        )
        self._remember(stored)
        return stored

    def _expire(self, record: PendingRecord) -> None:
        """Release a pending transfer past its timeout. Not undone by a failing chain: expiry
        is a fact of time, not part of the chain."""
        p = record.transfer
        dr = self.accounts[p.debit_account_id]
        cr = self.accounts[p.credit_account_id]
        dr.debits_pending -= p.amount
        cr.credits_pending -= p.amount
        if int(p.flags) & _CLOSING_DEBIT:
            dr.flags &= ~_CLOSED
        if int(p.flags) & _CLOSING_CREDIT:
            cr.flags &= ~_CLOSED
        record.state = PendingState.EXPIRED

    # -- the batch ---------------------------------------------------------------------------
    def plan(self, transfers: Sequence[Transfer]) -> TransferPlan:
        plan = TransferPlan(results=[R.OK] * len(transfers))
        before = {aid: _balances(s) for aid, s in self.accounts.items()}
        flags_before = {aid: s.flags for aid, s in self.accounts.items()}
        pending_before = {pid: r.state for pid, r in self.pendings.items()}
        chain_start = 0
        chain_mark = len(self._undo)
        chain_stored: list[tuple[int, Transfer]] = []
        failed_chain = False
        committed: list[tuple[int, Transfer]] = []
        history: list[tuple[int, int, int, int, int, int]] = []
        chain_history: list[tuple[int, int, int, int, int, int]] = []
        history_ids = {aid for aid, state in self.accounts.items() if state.flags & _HISTORY}
        skip_to = 0
        for index, transfer in enumerate(transfers):
            if index < skip_to:  # applied with its chain by _apply_plain_chain
                continue
            if transfer.flags == _LINKED and chain_start == index:
                applied = self._apply_plain_chain(transfers, index, history_ids)
                if applied is not None:
                    stored_chain, chain_history_fast = applied
                    committed.extend(enumerate(stored_chain, start=index))
                    plan.chains.append(stored_chain)
                    history.extend(chain_history_fast)
                    skip_to = chain_start = index + len(stored_chain)
                    chain_mark = len(self._undo)
                    continue
            if transfer.flags == 0 and chain_start == index:  # the common case, see _apply_plain
                stored = self._apply_plain(transfer, self.first_timestamp + index)
                if stored is not None:
                    committed.append((index, stored))
                    plan.chains.append([stored])
                    for aid in (stored.debit_account_id, stored.credit_account_id):
                        if aid in history_ids:
                            history.append((aid, stored.timestamp, *_balances(self.accounts[aid])))
                    chain_start = index + 1
                    continue
            linked = bool(int(transfer.flags) & _LINKED)
            timestamp = self.first_timestamp + index
            if not failed_chain:
                try:
                    if linked and index == len(transfers) - 1:
                        raise _RejectedError(R.LINKED_EVENT_CHAIN_OPEN)
                    try:
                        stored = self._apply(transfer, timestamp, plan)
                    except _ExistsSignal:
                        plan.results[index] = R.EXISTS
                        stored = None
                    if stored is not None:
                        chain_stored.append((index, stored))
                    for aid in (
                        (stored.debit_account_id, stored.credit_account_id) if stored else ()
                    ):
                        state = self.accounts[aid]
                        if state.flags & _HISTORY:
                            chain_history.append((aid, timestamp, *_balances(state)))
                except _RejectedError as failure:
                    plan.results[index] = failure.result
                    self._rollback_to(chain_mark)
                    for earlier in range(chain_start, index):
                        if plan.results[earlier] != R.EXISTS:
                            plan.results[earlier] = R.LINKED_EVENT_FAILED
                    chain_stored.clear()
                    chain_history.clear()
                    failed_chain = linked
            else:
                plan.results[index] = R.LINKED_EVENT_FAILED
            if not linked:  # the chain ends with this event
                if chain_stored:
                    committed.extend(chain_stored)
                    plan.chains.append([s for _, s in chain_stored])
                    history.extend(chain_history)
                chain_stored = []
                chain_history = []
                failed_chain = False
                chain_start = index + 1
                chain_mark = len(self._undo)
        self._undo.clear()
        plan.created = [s for _, s in committed]
        plan.history = history
        for aid, state in self.accounts.items():
            after = _balances(state)
            old = before[aid]
            if after != old:
                plan.deltas[aid] = [a - b for a, b in zip(after, old, strict=True)]
            if state.flags != flags_before[aid]:
                plan.flag_updates[aid] = state.flags
        for pid, record in self.pendings.items():
            if pid not in pending_before:
                plan.new_pendings.append(record)
            elif record.state != pending_before[pid]:
                plan.resolved_pendings[pid] = record.state
        return plan


def _balances(state: AccountState) -> tuple[int, int, int, int]:
    return (state.debits_pending, state.debits_posted, state.credits_pending, state.credits_posted)


def validate_account_id(a: Account) -> CreateAccountResult | None:
    """The checks before the idempotency look-up."""
    if a.timestamp != 0:
        return A.TIMESTAMP_MUST_BE_ZERO
    if a.id == 0:
        return A.ID_MUST_NOT_BE_ZERO
    if not 0 < a.id <= INT64_MAX:
        return A.ID_OUT_OF_RANGE
    return None


def validate_account(a: Account) -> CreateAccountResult | None:
    """The account's own shape (after the id and the retry checks)."""
    both = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    if a.flags & both == both:
        return A.FLAGS_ARE_MUTUALLY_EXCLUSIVE
    for name, result in zip(
        _BALANCE_FIELDS,
        (
            A.DEBITS_PENDING_MUST_BE_ZERO,
            A.DEBITS_POSTED_MUST_BE_ZERO,
            A.CREDITS_PENDING_MUST_BE_ZERO,
            A.CREDITS_POSTED_MUST_BE_ZERO,
        ),
        strict=True,
    ):
        if getattr(a, name) != 0:
            return result
    if not 0 <= a.credit_limit <= INT64_MAX:
        return A.CREDIT_LIMIT_OUT_OF_RANGE
    if not (
        0 <= a.user_data_128 <= UINT128_MAX
        and 0 <= a.user_data_64 <= INT64_MAX
        and 0 <= a.user_data_32 <= UINT32_MAX
    ):
        return A.USER_DATA_OUT_OF_RANGE
    if a.ledger == 0:
        return A.LEDGER_MUST_NOT_BE_ZERO
    if a.code == 0:
        return A.CODE_MUST_NOT_BE_ZERO
    return None


def account_exists_result(new: Account, old: Account) -> CreateAccountResult:
    if new.flags & ~AccountFlags.LINKED != old.flags & ~AccountFlags.LINKED:
        return A.EXISTS_WITH_DIFFERENT_FLAGS
    if new.credit_limit != old.credit_limit:
        return A.EXISTS_WITH_DIFFERENT_CREDIT_LIMIT
    if new.user_data_128 != old.user_data_128:
        return A.EXISTS_WITH_DIFFERENT_USER_DATA_128
    if new.user_data_64 != old.user_data_64:
        return A.EXISTS_WITH_DIFFERENT_USER_DATA_64
    if new.user_data_32 != old.user_data_32:
        return A.EXISTS_WITH_DIFFERENT_USER_DATA_32
    if new.ledger != old.ledger:
        return A.EXISTS_WITH_DIFFERENT_LEDGER
    if new.code != old.code:
        return A.EXISTS_WITH_DIFFERENT_CODE
    return A.EXISTS


def plan_accounts(
    accounts: Sequence[Account], existing: dict[int, Account], first_timestamp: int
) -> tuple[list[CreateAccountResult], list[Account]]:
    """Results per event and the accounts to insert (linked chains all-or-nothing)."""
    results = [A.OK] * len(accounts)
    created: list[Account] = []
    seen = dict(existing)
    chain: list[tuple[int, Account]] = []
    chain_start = 0
    failed = False
    for index, account in enumerate(accounts):
        linked = bool(account.flags & AccountFlags.LINKED)
        if not failed:
            result = A.LINKED_EVENT_CHAIN_OPEN if linked and index == len(accounts) - 1 else None
            if result is None:
                result = validate_account_id(account)
            if result is None and account.id in seen:
                result = account_exists_result(account, seen[account.id])
            if result is None:
                result = validate_account(account)
            if result == A.EXISTS:  # a retry: answered, and the chain goes on
                results[index] = result
            elif result is None:
                stored = replace(account, timestamp=first_timestamp + index)
                seen[account.id] = stored
                chain.append((index, stored))
            else:
                results[index] = result
                for earlier in range(chain_start, index):
                    if results[earlier] != A.EXISTS:
                        results[earlier] = A.LINKED_EVENT_FAILED
                for _, undone in chain:
                    seen.pop(undone.id, None)
                chain = []
                failed = linked
        else:
            results[index] = A.LINKED_EVENT_FAILED
        if not linked:
            created.extend(a for _, a in chain)
            chain = []
            failed = False
            chain_start = index + 1
    return results, created
