"""Every rejection reason, in precedence order, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from flashpay.ledger import (
    Account,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    Transfer,
    TransferFlags,
    check,
)

R = CreateTransferResult
F = TransferFlags
CNY, USD = 156, 840
INT64_MAX = 2**63 - 1
PLAIN, PROTECTED, OTHER, CAPPED, DOLLARS, CLOSED, BIG, BIG2, CREDIT_LINE, CLOSED2 = range(1, 11)


def _setup(ledger, clock):
    D = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    C = AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    assert (
        ledger.create_accounts(
            [
                Account(PLAIN, CNY, 1),
                Account(PROTECTED, CNY, 1, flags=D),
                Account(OTHER, CNY, 1),
                Account(CAPPED, CNY, 1, flags=C),
                Account(DOLLARS, USD, 1),
                Account(CLOSED, CNY, 1, flags=AccountFlags.CLOSED),
                Account(BIG, CNY, 1),
                Account(BIG2, CNY, 1),
                Account(CREDIT_LINE, CNY, 1, flags=D, credit_limit=1_000),
                Account(CLOSED2, CNY, 1, flags=AccountFlags.CLOSED),
            ]
        )
        == [CreateAccountResult.OK] * 10
    )
    assert (
        ledger.create_transfers(
            [
                Transfer(1, PLAIN, PROTECTED, 1_000, CNY, 1),
                Transfer(2, PLAIN, OTHER, 500, CNY, 1, flags=F.PENDING),
                Transfer(3, PLAIN, OTHER, 500, CNY, 1, flags=F.PENDING),
                Transfer(4, 0, 0, 0, 0, 0, flags=F.POST_PENDING_TRANSFER, pending_id=3),
                Transfer(5, PLAIN, OTHER, 500, CNY, 1, flags=F.PENDING),
                Transfer(6, 0, 0, 0, 0, 0, flags=F.VOID_PENDING_TRANSFER, pending_id=5),
                Transfer(7, PLAIN, OTHER, 500, CNY, 1, flags=F.PENDING, timeout_seconds=60),
                Transfer(8, BIG, BIG2, INT64_MAX, CNY, 1),
                Transfer(9, PLAIN, OTHER, 100, CNY, 1, user_data_64=7),
            ]
        )
        == [R.OK] * 9
    )
    clock.advance(61)  # transfer 7 is now past its timeout


def T(tid=100, dr=PLAIN, cr=OTHER, amount=10, ledger=CNY, code=1, **kw):
    return Transfer(tid, dr, cr, amount, ledger, code, **kw)


# (name, transfer, expected): ordered like the enum; each case also breaks later checks where
# that is possible, so the test proves precedence.
CASES = [
    ("timestamp_must_be_zero", T(timestamp=5, dr=0), R.TIMESTAMP_MUST_BE_ZERO),
    ("id_must_not_be_zero", T(tid=0, dr=PLAIN, cr=PLAIN), R.ID_MUST_NOT_BE_ZERO),
    ("id_out_of_range", T(tid=2**63, cr=PLAIN), R.ID_OUT_OF_RANGE),
    (
        "exists_with_different_flags",
        T(tid=1, flags=F.PENDING | F.VOID_PENDING_TRANSFER, dr=0),
        R.EXISTS_WITH_DIFFERENT_FLAGS,
    ),
    (
        "exists_with_different_pending_id",
        T(tid=4, flags=F.POST_PENDING_TRANSFER, pending_id=2, amount=0, dr=0, cr=0, code=9),
        R.EXISTS_WITH_DIFFERENT_PENDING_ID,
    ),
    (
        "exists_with_different_timeout",
        T(tid=2, flags=F.PENDING, amount=500, timeout_seconds=9, dr=OTHER),
        R.EXISTS_WITH_DIFFERENT_TIMEOUT,
    ),
    (
        "exists_with_different_debit_account_id",
        T(tid=1, dr=OTHER, cr=OTHER, amount=1),
        R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID,
    ),
    (
        "exists_with_different_credit_account_id",
        T(tid=1, cr=OTHER, amount=1),
        R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID,
    ),
    (
        "exists_with_different_amount",
        T(tid=1, cr=PROTECTED, amount=999, user_data_32=3),
        R.EXISTS_WITH_DIFFERENT_AMOUNT,
    ),
    (
        "exists_with_different_user_data_128",
        T(tid=1, cr=PROTECTED, amount=1_000, user_data_128=1, user_data_32=3),
        R.EXISTS_WITH_DIFFERENT_USER_DATA_128,
    ),
    (
        "exists_with_different_user_data_64",
        T(tid=9, amount=100, code=2),
        R.EXISTS_WITH_DIFFERENT_USER_DATA_64,
    ),
    (
        "exists_with_different_user_data_32",
        T(tid=1, cr=PROTECTED, amount=1_000, user_data_32=3, ledger=USD),
        R.EXISTS_WITH_DIFFERENT_USER_DATA_32,
    ),
    (
        "exists_with_different_ledger",
        T(tid=1, cr=PROTECTED, amount=1_000, ledger=USD, code=2),
        R.EXISTS_WITH_DIFFERENT_LEDGER,
    ),
    (
        "exists_with_different_code",
        T(tid=1, cr=PROTECTED, amount=1_000, code=2),
        R.EXISTS_WITH_DIFFERENT_CODE,
    ),
    ("exists", T(tid=1, cr=PROTECTED, amount=1_000), R.EXISTS),
    (
        "flags_are_mutually_exclusive",
        T(flags=F.PENDING | F.VOID_PENDING_TRANSFER, dr=0),
        R.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
    ),
    ("debit_account_id_must_not_be_zero", T(dr=0, cr=0), R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO),
    ("credit_account_id_must_not_be_zero", T(cr=0, amount=0), R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO),
    ("accounts_must_be_different", T(cr=PLAIN, amount=0), R.ACCOUNTS_MUST_BE_DIFFERENT),
    ("pending_id_must_be_zero", T(pending_id=2, amount=0), R.PENDING_ID_MUST_BE_ZERO),
    (
        "pending_id_must_not_be_zero",
        T(flags=F.POST_PENDING_TRANSFER, amount=0),
        R.PENDING_ID_MUST_NOT_BE_ZERO,
    ),
    (
        "pending_id_must_be_different",
        T(flags=F.VOID_PENDING_TRANSFER, pending_id=100),
        R.PENDING_ID_MUST_BE_DIFFERENT,
    ),
    (
        "timeout_reserved_for_pending_transfer",
        T(timeout_seconds=5, amount=0),
        R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER,
    ),
    (
        "closing_transfer_must_be_pending",
        T(flags=F.CLOSING_DEBIT, amount=-1),
        R.CLOSING_TRANSFER_MUST_BE_PENDING,
    ),
    ("amount_out_of_range", T(amount=-1, ledger=0), R.AMOUNT_OUT_OF_RANGE),
    ("amount_must_not_be_zero", T(amount=0, ledger=0), R.AMOUNT_MUST_NOT_BE_ZERO),
    ("user_data_out_of_range", T(user_data_32=2**32, ledger=0), R.USER_DATA_OUT_OF_RANGE),
    ("ledger_must_not_be_zero", T(ledger=0, code=0), R.LEDGER_MUST_NOT_BE_ZERO),
    ("code_must_not_be_zero", T(code=0, dr=99), R.CODE_MUST_NOT_BE_ZERO),
    ("debit_account_not_found", T(dr=99, cr=98), R.DEBIT_ACCOUNT_NOT_FOUND),
    ("credit_account_not_found", T(cr=98, ledger=USD), R.CREDIT_ACCOUNT_NOT_FOUND),
    (
        "accounts_must_have_the_same_ledger",
        T(cr=DOLLARS, ledger=USD),
        R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER,
    ),
    (
        "transfer_must_have_the_same_ledger_as_accounts",
        T(dr=CLOSED, ledger=USD),
        R.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS,
    ),
    (
        "pending_transfer_not_found",
        T(flags=F.POST_PENDING_TRANSFER, pending_id=777, dr=0, cr=0),
        R.PENDING_TRANSFER_NOT_FOUND,
    ),
    (
        "pending_transfer_not_pending",
        T(flags=F.POST_PENDING_TRANSFER, pending_id=1, dr=0, cr=0),
        R.PENDING_TRANSFER_NOT_PENDING,
    ),
    (
        "pending_transfer_has_different_debit_account_id",
        T(flags=F.POST_PENDING_TRANSFER, pending_id=2, dr=OTHER, cr=PROTECTED),
        R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID,
    ),
    (
        "pending_transfer_has_different_credit_account_id",
        T(flags=F.POST_PENDING_TRANSFER, pending_id=2, dr=0, cr=PROTECTED, ledger=USD),
        R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID,
    ),
    (
        "pending_transfer_has_different_ledger",
        T(flags=F.POST_PENDING_TRANSFER, pending_id=2, dr=0, cr=0, ledger=USD, code=5),
        R.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER,
    ),
    (
        "pending_transfer_has_different_code",
        T(flags=F.POST_PENDING_TRANSFER, pending_id=3, dr=0, cr=0, code=5, amount=501),
        R.PENDING_TRANSFER_HAS_DIFFERENT_CODE,
    ),
    (
        "pending_transfer_already_posted",
        T(flags=F.VOID_PENDING_TRANSFER, pending_id=3, dr=0, cr=0, amount=499),
        R.PENDING_TRANSFER_ALREADY_POSTED,
    ),
    (
        "pending_transfer_already_voided",
        T(flags=F.POST_PENDING_TRANSFER, pending_id=5, dr=0, cr=0, amount=501),
        R.PENDING_TRANSFER_ALREADY_VOIDED,
    ),
    (
        "pending_transfer_expired",
        T(flags=F.POST_PENDING_TRANSFER, pending_id=7, dr=0, cr=0, amount=501),
        R.PENDING_TRANSFER_EXPIRED,
    ),
    (
        "exceeds_pending_transfer_amount",
        T(flags=F.POST_PENDING_TRANSFER, pending_id=2, dr=0, cr=0, amount=501),
        R.EXCEEDS_PENDING_TRANSFER_AMOUNT,
    ),
    (
        "pending_transfer_has_different_amount",
        T(flags=F.VOID_PENDING_TRANSFER, pending_id=2, dr=0, cr=0, amount=499),
        R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT,
    ),
    ("overflows_debits", T(dr=BIG, cr=CLOSED, amount=1), R.OVERFLOWS_DEBITS),
    ("overflows_credits", T(dr=CLOSED, cr=BIG2, amount=1), R.OVERFLOWS_CREDITS),
    ("exceeds_credits", T(dr=PROTECTED, cr=CAPPED, amount=1_001), R.EXCEEDS_CREDITS),
    ("exceeds_credits_past_credit_limit", T(dr=CREDIT_LINE, amount=1_001), R.EXCEEDS_CREDITS),
    ("exceeds_debits", T(dr=CLOSED, cr=CAPPED, amount=1), R.EXCEEDS_DEBITS),
    ("debit_account_closed", T(dr=CLOSED, cr=CLOSED2), R.DEBIT_ACCOUNT_CLOSED),
    ("credit_account_closed", T(cr=CLOSED), R.CREDIT_ACCOUNT_CLOSED),
    ("within_credit_limit", T(dr=CREDIT_LINE, amount=1_000), R.OK),
    ("balancing_debit_clamps", T(dr=PROTECTED, amount=5_000, flags=F.BALANCING_DEBIT), R.OK),
]


def test_every_rejection_has_a_case():
    covered = {expected for _, _, expected in CASES}
    missing = (
        set(CreateTransferResult)
        - covered
        - {R.LINKED_EVENT_FAILED, R.LINKED_EVENT_CHAIN_OPEN}  # tested in test_ledger.py
    )
    assert not missing


def test_cases_follow_precedence_order():
    order = list(CreateTransferResult)
    positions = [order.index(e) for _, _, e in CASES if e != R.OK]
    # Each case's rejection comes no earlier in the enum than the previous case's, and each case
    # also breaks later checks: together they prove the precedence order.
    assert positions == sorted(positions)


@pytest.mark.parametrize(("name", "transfer", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rejection(ledger, clock, database_url, name, transfer, expected):
    _setup(ledger, clock)
    before = {a.id: a for a in ledger.lookup_accounts(list(range(1, 11)))}
    assert ledger.create_transfers([transfer]) == [expected]
    after = {a.id: a for a in ledger.lookup_accounts(list(range(1, 11)))}
    if expected != R.OK and expected != R.PENDING_TRANSFER_EXPIRED:
        assert after == before  # a rejected event changes nothing
    if name == "balancing_debit_clamps":
        (stored,) = ledger.lookup_transfers([100])
        assert stored.amount == 1_000  # clamped to what PROTECTED holds
    assert check(database_url).ok


def test_expired_pending_released_its_hold(ledger, clock, database_url):
    _setup(ledger, clock)
    ledger.expire_pending_transfers()
    other = ledger.lookup_accounts([OTHER])[0]
    assert other.credits_pending == 500  # only transfer 2 still holds; 7 expired
    assert check(database_url).ok


ACCOUNT_CASES = [
    (Account(1, CNY, 1, timestamp=1, credit_limit=-1), CreateAccountResult.TIMESTAMP_MUST_BE_ZERO),
    (Account(0, CNY, 0), CreateAccountResult.ID_MUST_NOT_BE_ZERO),
    (Account(2**63, CNY, 1, debits_posted=1), CreateAccountResult.ID_OUT_OF_RANGE),
    (
        Account(7, CNY, 1, flags=AccountFlags.HISTORY, credit_limit=5),
        CreateAccountResult.EXISTS_WITH_DIFFERENT_FLAGS,
    ),
    (
        Account(7, CNY, 1, credit_limit=5, user_data_64=1),
        CreateAccountResult.EXISTS_WITH_DIFFERENT_CREDIT_LIMIT,
    ),
    (Account(7, CNY, 1, user_data_128=1), CreateAccountResult.EXISTS_WITH_DIFFERENT_USER_DATA_128),
    (Account(7, CNY, 1, user_data_64=1), CreateAccountResult.EXISTS_WITH_DIFFERENT_USER_DATA_64),
    (Account(7, CNY, 1, user_data_32=1), CreateAccountResult.EXISTS_WITH_DIFFERENT_USER_DATA_32),
    (Account(7, USD, 1), CreateAccountResult.EXISTS_WITH_DIFFERENT_LEDGER),
    (Account(7, CNY, 2), CreateAccountResult.EXISTS_WITH_DIFFERENT_CODE),
    (Account(7, CNY, 1), CreateAccountResult.EXISTS),
    (
        Account(
            1,
            CNY,
            1,
            flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
            | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS,
            debits_pending=1,
        ),
        CreateAccountResult.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
    ),
    (Account(1, CNY, 1, debits_pending=1), CreateAccountResult.DEBITS_PENDING_MUST_BE_ZERO),
    (Account(1, CNY, 1, debits_posted=1), CreateAccountResult.DEBITS_POSTED_MUST_BE_ZERO),
    (Account(1, CNY, 1, credits_pending=1), CreateAccountResult.CREDITS_PENDING_MUST_BE_ZERO),
    (Account(1, CNY, 1, credits_posted=1), CreateAccountResult.CREDITS_POSTED_MUST_BE_ZERO),
    (Account(1, CNY, 1, credit_limit=-1), CreateAccountResult.CREDIT_LIMIT_OUT_OF_RANGE),
    (Account(1, 0, 1, user_data_64=-1), CreateAccountResult.USER_DATA_OUT_OF_RANGE),
    (Account(1, 0, 0), CreateAccountResult.LEDGER_MUST_NOT_BE_ZERO),
    (Account(1, CNY, 0), CreateAccountResult.CODE_MUST_NOT_BE_ZERO),
]


def test_account_cases_follow_precedence_order():
    order = list(CreateAccountResult)
    positions = [order.index(e) for _, e in ACCOUNT_CASES]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("account", "expected"), ACCOUNT_CASES, ids=[c[1].value for c in ACCOUNT_CASES]
)
def test_account_rejection(ledger, account, expected):
    assert ledger.create_accounts([Account(7, CNY, 1)]) == [CreateAccountResult.OK]
    assert ledger.create_accounts([account]) == [expected]


def test_every_account_rejection_has_a_case():
    covered = {e for _, e in ACCOUNT_CASES}
    assert set(CreateAccountResult) - covered == {
        CreateAccountResult.OK,
        CreateAccountResult.LINKED_EVENT_FAILED,
        CreateAccountResult.LINKED_EVENT_CHAIN_OPEN,
    }
