"""Linked chains, two-phase transfers, idempotent retries, history, queries and the outbox."""

from __future__ import annotations

import hashlib

import pytest

from flashpay.ledger import (
    Account,
    AccountFilter,
    AccountFlags,
    BatchTooLargeError,
    CreateAccountResult,
    CreateTransferResult,
    Transfer,
    TransferFlags,
    check,
    derive_id,
    new_id,
)

R = CreateTransferResult
F = TransferFlags
CNY = 156
SOURCE, SHOP, CARD = 1, 2, 3


@pytest.fixture
def books(ledger):
    assert (
        ledger.create_accounts(
            [
                Account(SOURCE, CNY, 1),
                Account(SHOP, CNY, 2),
                Account(
                    CARD,
                    CNY,
                    3,
                    flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.HISTORY,
                ),
            ]
        )
        == [CreateAccountResult.OK] * 3
    )
    assert ledger.create_transfers([Transfer(1, SOURCE, CARD, 10_000, CNY, 1)]) == [R.OK]
    return ledger


def balances(ledger, account_id):
    (a,) = ledger.lookup_accounts([account_id])
    return a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted


def test_linked_chain_fails_as_a_unit(books, database_url):
    results = books.create_transfers(
        [
            Transfer(10, CARD, SHOP, 6_000, CNY, 1, flags=F.LINKED),
            Transfer(11, CARD, SHOP, 6_000, CNY, 1),  # would overdraw: the chain fails
            Transfer(12, CARD, SHOP, 1_000, CNY, 1),  # unlinked: independent
        ]
    )
    assert results == [R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS, R.OK]
    assert books.lookup_transfers([10, 11]) == []
    assert balances(books, CARD) == (0, 1_000, 0, 10_000)
    assert check(database_url).ok


def test_plain_linked_chains_post_whole_with_history_or_fail_whole(books, database_url):
    """Chains of plain legs (a payment's) take the planner's fast path; a leg that fails later
    in the chain takes back the earlier ones, and the general path answers for the chain."""
    results = books.create_transfers(
        [
            Transfer(40, CARD, SHOP, 1_000, CNY, 1, flags=F.LINKED),
            Transfer(41, CARD, SOURCE, 2_000, CNY, 1, flags=F.LINKED),
            Transfer(42, SHOP, SOURCE, 500, CNY, 1),
            Transfer(43, CARD, SHOP, 3_000, CNY, 1, flags=F.LINKED),
            Transfer(44, SOURCE, SHOP, 1, CNY, 1, flags=F.LINKED),
            Transfer(45, CARD, SHOP, 4_001, CNY, 1),  # 10,000 − 3,000 − 3,000 − 4,001 < 0
            Transfer(46, CARD, SHOP, 4_000, CNY, 1, flags=F.LINKED),
            Transfer(46, CARD, SHOP, 4_000, CNY, 1),  # the same id twice in one chain
        ]
    )
    assert results[:3] == [R.OK] * 3
    assert results[3:6] == [R.LINKED_EVENT_FAILED, R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS]
    assert results[6] == R.LINKED_EVENT_FAILED
    assert results[7] not in (R.OK, R.EXISTS)
    assert [t.id for t in books.lookup_transfers([40, 41, 42, 43, 44, 45, 46])] == [40, 41, 42]
    assert balances(books, CARD) == (0, 3_000, 0, 10_000)
    history = books.get_account_balances(AccountFilter(account_id=CARD, limit=10))
    assert [h.debits_posted for h in history] == [0, 1_000, 3_000]
    assert check(database_url).ok


def test_linked_chain_left_open_fails(books):
    results = books.create_transfers(
        [
            Transfer(20, CARD, SHOP, 100, CNY, 1),
            Transfer(21, CARD, SHOP, 100, CNY, 1, flags=F.LINKED),
            Transfer(22, CARD, SHOP, 100, CNY, 1, flags=F.LINKED),
        ]
    )
    assert results == [R.OK, R.LINKED_EVENT_FAILED, R.LINKED_EVENT_CHAIN_OPEN]


def test_failure_after_chain_ends_does_not_undo_it(books):
    results = books.create_transfers(
        [
            Transfer(30, CARD, SHOP, 100, CNY, 1, flags=F.LINKED),
            Transfer(31, CARD, SHOP, 100, CNY, 1),
            Transfer(32, CARD, SHOP, 100_000, CNY, 1),
        ]
    )
    assert results == [R.OK, R.OK, R.EXCEEDS_CREDITS]
    assert balances(books, CARD)[1] == 200


def test_retry_returns_exists_and_posts_once(books, database_url):
    batch = [Transfer(40, CARD, SHOP, 700, CNY, 1), Transfer(41, CARD, SHOP, 300, CNY, 1)]
    assert books.create_transfers(batch) == [R.OK, R.OK]
    assert books.create_transfers(batch) == [R.EXISTS, R.EXISTS]
    assert balances(books, CARD)[1] == 1_000
    # the same id twice in one batch: the second is a retry of the first
    assert books.create_transfers(
        [Transfer(42, CARD, SHOP, 5, CNY, 1), Transfer(42, CARD, SHOP, 5, CNY, 1)]
    ) == [R.OK, R.EXISTS]
    assert check(database_url).ok


def test_two_phase_post_partial_releases_the_rest(books, database_url):
    assert books.create_transfers(
        [Transfer(50, CARD, SHOP, 4_000, CNY, 1, flags=F.PENDING, timeout_seconds=900)]
    ) == [R.OK]
    assert balances(books, CARD) == (4_000, 0, 0, 10_000)
    # the hold counts against the balance: 6,001 more would overdraw
    assert books.create_transfers([Transfer(51, CARD, SHOP, 6_001, CNY, 1)]) == [R.EXCEEDS_CREDITS]
    post = Transfer(52, 0, 0, 2_500, 0, 0, flags=F.POST_PENDING_TRANSFER, pending_id=50)
    assert books.create_transfers([post]) == [R.OK]
    assert balances(books, CARD) == (0, 2_500, 0, 10_000)
    assert balances(books, SHOP) == (0, 0, 0, 2_500)
    assert books.create_transfers([post]) == [R.EXISTS]
    again = Transfer(53, 0, 0, 0, 0, 0, flags=F.VOID_PENDING_TRANSFER, pending_id=50)
    assert books.create_transfers([again]) == [R.PENDING_TRANSFER_ALREADY_POSTED]
    (stored,) = books.lookup_transfers([52])
    assert (stored.debit_account_id, stored.credit_account_id, stored.amount) == (CARD, SHOP, 2_500)
    assert check(database_url).ok


def test_pending_expires_after_timeout(books, clock, database_url):
    assert books.create_transfers(
        [Transfer(60, CARD, SHOP, 9_000, CNY, 1, flags=F.PENDING, timeout_seconds=30)]
    ) == [R.OK]
    clock.advance(29.9)
    assert books.expire_pending_transfers() == 0
    clock.advance(0.2)
    assert books.expire_pending_transfers() == 1
    assert balances(books, CARD) == (0, 0, 0, 10_000)
    post = Transfer(61, 0, 0, 0, 0, 0, flags=F.POST_PENDING_TRANSFER, pending_id=60)
    assert books.create_transfers([post]) == [R.PENDING_TRANSFER_EXPIRED]
    assert check(database_url).ok


def test_post_after_timeout_expires_without_a_sweep(books, clock, database_url):
    assert books.create_transfers(
        [Transfer(70, CARD, SHOP, 9_000, CNY, 1, flags=F.PENDING, timeout_seconds=5)]
    ) == [R.OK]
    clock.advance(5.001)
    books._next_sweep_ns = clock.now_ns() + 10**12  # no sweep: the batch itself must expire it
    post = Transfer(71, 0, 0, 0, 0, 0, flags=F.POST_PENDING_TRANSFER, pending_id=70)
    assert books.create_transfers([post]) == [R.PENDING_TRANSFER_EXPIRED]
    assert balances(books, CARD) == (0, 0, 0, 10_000)
    assert check(database_url).ok


def test_credit_line_overdraws_up_to_its_limit(ledger, database_url):
    line = Account(5, CNY, 4, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS, credit_limit=500)
    assert ledger.create_accounts([line, Account(6, CNY, 2)]) == [CreateAccountResult.OK] * 2
    assert ledger.create_transfers(
        [Transfer(80, 5, 6, 300, CNY, 1), Transfer(81, 5, 6, 201, CNY, 1)]
    ) == [R.OK, R.EXCEEDS_CREDITS]
    assert ledger.create_transfers([Transfer(82, 5, 6, 200, CNY, 1)]) == [R.OK]
    assert check(database_url).ok


def test_history_and_account_transfers(books):
    for i in range(5):
        assert books.create_transfers([Transfer(90 + i, CARD, SHOP, 100, CNY, 1)]) == [R.OK]
    history = books.get_account_balances(AccountFilter(account_id=CARD, limit=10))
    assert [h.debits_posted for h in history] == [0, 100, 200, 300, 400, 500]
    transfers = books.get_account_transfers(AccountFilter(account_id=CARD, limit=3))
    assert [t.id for t in transfers] == [1, 90, 91]
    newest = books.get_account_transfers(AccountFilter(account_id=CARD, limit=2, reversed=True))
    assert [t.id for t in newest] == [94, 93]
    page_two = books.get_account_transfers(
        AccountFilter(account_id=CARD, limit=10, timestamp_min=transfers[-1].timestamp + 1)
    )
    assert [t.id for t in page_two] == [92, 93, 94]
    debits_only = books.get_account_transfers(AccountFilter(account_id=CARD, credits=False))
    assert 1 not in [t.id for t in debits_only]


def test_outbox_hands_each_chain_once_with_its_commitment(books):
    commitment = hashlib.sha256(b"payment 1").digest()
    assert books.create_transfers(
        [
            Transfer(100, CARD, SHOP, 100, CNY, 1, flags=F.LINKED),
            Transfer(101, SOURCE, SHOP, 50, CNY, 1),
        ],
        commitments={100: commitment},
    ) == [R.OK, R.OK]
    seen = []
    assert books.drain_outbox(lambda _conn, chains: seen.extend(chains)) == 2
    assert books.drain_outbox(lambda _conn, chains: seen.extend(chains)) == 0
    assert [len(c.transfers) for c in seen] == [1, 2]  # funding transfer, then the chain
    assert seen[1].commitment == commitment
    assert [t.id for t in seen[1].transfers] == [100, 101]
    assert books.lookup_chains([seen[1].chain_id]) == [seen[1]]
    assert [c.chain_id for c in books.iter_chains()] == [c.chain_id for c in seen]


def test_failed_consumer_leaves_the_outbox_intact(books):
    def explode(_conn, _chains):
        raise RuntimeError("consumer crashed")

    with pytest.raises(RuntimeError):
        books.drain_outbox(explode)
    assert books.drain_outbox(lambda _c, chains: None) == 1


def test_batch_limit(ledger):
    with pytest.raises(BatchTooLargeError):
        ledger.create_transfers([Transfer(i + 1, 1, 2, 1, CNY, 1) for i in range(8191)])


def test_ids():
    assert derive_id("payment", "abc") == derive_id("payment", "abc")
    assert derive_id("payment", "abc") != derive_id("payment", "abd")
    # A batch takes thousands of ids within a millisecond: 22 random bits alone would repeat.
    ids = [new_id() for _ in range(100_000)]
    assert ids == sorted(set(ids))
    assert all(0 < i < 2**63 for i in ids)


def test_hot_account_deltas_compact_to_the_same_balance(ledger, database_url):
    assert (
        ledger.create_accounts([Account(7, CNY, 1), Account(8, CNY, 2)])
        == [CreateAccountResult.OK] * 2
    )
    for i in range(100):
        assert ledger.create_transfers([Transfer(1000 + i, 7, 8, 10, CNY, 1)]) == [R.OK]
    before = ledger.lookup_accounts([7, 8])
    ledger.compact_balances(deltas_min=1)
    assert ledger.lookup_accounts([7, 8]) == before
    assert before[1].credits_posted == 1_000
    assert check(database_url).ok


def test_retrying_a_committed_chain_answers_exists_for_each_event(books, database_url):
    chain = [
        Transfer(110, CARD, SHOP, 100, CNY, 1, flags=F.LINKED),
        Transfer(111, CARD, SHOP, 200, CNY, 1, flags=F.LINKED),
        Transfer(112, SOURCE, SHOP, 300, CNY, 1),
    ]
    assert books.create_transfers(chain) == [R.OK, R.OK, R.OK]
    assert books.create_transfers(chain) == [R.EXISTS, R.EXISTS, R.EXISTS]
    assert balances(books, SHOP)[3] == 600
    assert check(database_url).ok


def closed(ledger, account_id):
    (a,) = ledger.lookup_accounts([account_id])
    return bool(a.flags & AccountFlags.CLOSED)


def test_closing_transfer_closes_and_posting_it_keeps_the_account_closed(books, database_url):
    close = Transfer(20, SHOP, SOURCE, 0, CNY, 1, flags=F.PENDING | F.CLOSING_DEBIT)
    assert books.create_transfers([close]) == [R.OK]
    assert closed(books, SHOP)
    assert not closed(books, SOURCE)
    assert books.create_transfers(
        [Transfer(21, SHOP, SOURCE, 5, CNY, 1), Transfer(22, CARD, SHOP, 5, CNY, 1)]
    ) == [R.DEBIT_ACCOUNT_CLOSED, R.CREDIT_ACCOUNT_CLOSED]
    post = Transfer(23, 0, 0, 0, 0, 0, flags=F.POST_PENDING_TRANSFER, pending_id=20)
    assert books.create_transfers([post]) == [R.OK]
    assert closed(books, SHOP)
    assert books.create_transfers([Transfer(24, CARD, SHOP, 5, CNY, 1)]) == [
        R.CREDIT_ACCOUNT_CLOSED
    ]
    assert check(database_url).ok


def test_voiding_a_closing_transfer_reopens_the_account(books, database_url):
    close = Transfer(30, SOURCE, SHOP, 7, CNY, 1, flags=F.PENDING | F.CLOSING_CREDIT)
    assert books.create_transfers([close]) == [R.OK]
    assert closed(books, SHOP)
    void = Transfer(31, 0, 0, 0, 0, 0, flags=F.VOID_PENDING_TRANSFER, pending_id=30)
    assert books.create_transfers([void]) == [R.OK]
    assert not closed(books, SHOP)
    assert books.create_transfers([Transfer(32, CARD, SHOP, 5, CNY, 1)]) == [R.OK]
    assert check(database_url).ok


def test_a_failing_chain_undoes_its_closing(books, database_url):
    results = books.create_transfers(
        [
            Transfer(40, SHOP, SOURCE, 0, CNY, 1, flags=F.PENDING | F.CLOSING_DEBIT | F.LINKED),
            Transfer(41, CARD, SOURCE, 99_999, CNY, 1),
        ]
    )
    assert results == [R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS]
    assert not closed(books, SHOP)
    assert check(database_url).ok


def test_an_expired_closing_transfer_reopens_the_account(books, clock, database_url):
    close = Transfer(
        50, SHOP, SOURCE, 0, CNY, 1, flags=F.PENDING | F.CLOSING_DEBIT, timeout_seconds=5
    )
    assert books.create_transfers([close]) == [R.OK]
    assert closed(books, SHOP)
    clock.advance(6)
    assert books.expire_pending_transfers() == 1
    assert not closed(books, SHOP)
    assert books.create_transfers([Transfer(51, SHOP, SOURCE, 5, CNY, 1)]) == [R.OK]
    assert check(database_url).ok


def test_derive_id_bytes_and_str_namespaces_agree():
    assert derive_id(b"payment", "abc") == derive_id("payment", "abc")
    assert derive_id(b"payment", "abc") != derive_id(b"refund", "abc")
    assert 0 < derive_id(b"payment", "abc") < 2**63


def test_a_retry_that_would_now_be_declined_still_answers_exists(books, database_url):
    spend_all = Transfer(60, CARD, SHOP, 10_000, CNY, 1)
    assert books.create_transfers([spend_all]) == [R.OK]
    # Planned afresh, the retry would exceed CARD's credits; it must be recognised first.
    assert books.create_transfers([spend_all]) == [R.EXISTS]
    assert books.create_transfers([Transfer(61, CARD, SHOP, 1, CNY, 1), spend_all]) == [
        R.EXCEEDS_CREDITS,
        R.EXISTS,
    ]
    # A retry that would still go through hits the primary key and is answered EXISTS too.
    fund = Transfer(62, SOURCE, SHOP, 5, CNY, 1)
    assert books.create_transfers([fund]) == [R.OK]
    assert books.create_transfers([fund]) == [R.EXISTS]
    assert balances(books, SHOP)[3] == 10_005
    assert check(database_url).ok
