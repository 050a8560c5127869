"""A Jepsen-style bank test and a crash test: real OS processes against a real database.

Bank: 8 processes post thousands of random transfers among 24 accounts (overdraft-protected
ones, one credit line, one hot account everybody credits), retrying some requests with the same
id. Afterwards money is conserved, no protected balance is below its limit, every retried id was
posted once, and the checker finds nothing wrong.

Crash: a child posting batches is killed with SIGKILL mid-way; the books still balance, and
re-running the same batches posts each transfer exactly once.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time

import pytest

from flashpay.ledger import (
    Account,
    AccountFlags,
    CreateTransferResult,
    Ledger,
    Transfer,
    check,
)

CNY = 156
BANK = 1  # the source of all money; unprotected
HOT = 2  # a big merchant every transfer may credit
CREDIT_LINE = 3
PROTECTED = list(range(10, 30))
PROCESSES = 8
TRANSFERS_PER_PROCESS = 400
CREDIT_LIMIT = 5_000
OPENING = 10_000


def _open_bank(url: str) -> None:
    ledger = Ledger.open(url)
    d = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    accounts = [Account(BANK, CNY, 1), Account(HOT, CNY, 2)]
    accounts.append(Account(CREDIT_LINE, CNY, 3, flags=d, credit_limit=CREDIT_LIMIT))
    accounts += [Account(a, CNY, 4, flags=d) for a in PROTECTED]
    assert set(ledger.create_accounts(accounts)) == {"ok"}
    funding = [Transfer(a, BANK, a, OPENING, CNY, 1) for a in PROTECTED]
    assert set(ledger.create_transfers(funding)) == {"ok"}
    ledger.close()


def _worker(url: str, worker: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ledger = Ledger.open(url)
    rng = random.Random(worker)
    posted: dict[int, int] = {}
    retried: list[int] = []
    sources = [*PROTECTED, CREDIT_LINE]
    for n in range(TRANSFERS_PER_PROCESS):
        transfer_id = 1_000_000 * (worker + 1) + n
        debit = rng.choice(sources)
        credit = HOT if rng.random() < 0.5 else rng.choice([*PROTECTED, CREDIT_LINE])
        if credit == debit:
            credit = HOT
        amount = rng.randint(1, 3_000)
        transfer = Transfer(transfer_id, debit, credit, amount, CNY, 7)
        batch = [transfer]
        if rng.random() < 0.2:  # a linked pair: both or neither
            batch = [
                Transfer(transfer_id, debit, credit, amount, CNY, 7, flags=1),
                Transfer(transfer_id + 500_000, debit, HOT, 1, CNY, 7),
            ]
        results = ledger.create_transfers(batch)
        for t, r in zip(batch, results, strict=True):
            if r == CreateTransferResult.OK:
                posted[t.id] = t.amount
        if rng.random() < 0.1:  # the client timed out and retries with the same ids
            again = ledger.create_transfers(batch)
            for t, first, second in zip(batch, results, again, strict=True):
                if first == CreateTransferResult.OK:
                    assert second == CreateTransferResult.EXISTS, (t.id, second)
                    retried.append(t.id)
                elif second == CreateTransferResult.OK:  # declined before, funds arrived since
                    posted[t.id] = t.amount
    ledger.close()
    queue.put((posted, retried))


@pytest.mark.slow
def test_bank_many_processes(postgres_url):
    _open_bank(postgres_url)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_worker, args=(postgres_url, w, queue)) for w in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    outcomes = [queue.get(timeout=240) for _ in workers]
    for process in workers:
        process.join(timeout=30)
        assert process.exitcode == 0
    posted = {tid: amount for p, _ in outcomes for tid, amount in p.items()}
    retried = [tid for _, r in outcomes for tid in r]
    ledger = Ledger.open(postgres_url)
    stored = {t.id: t for t in ledger.lookup_transfers(list(posted))}
    assert set(stored) == set(posted)
    assert all(stored[tid].amount == amount for tid, amount in posted.items())
    assert len(retried) > 0
    assert all(tid in stored for tid in retried)
    accounts = {a.id: a for a in ledger.lookup_accounts([BANK, HOT, CREDIT_LINE, *PROTECTED])}
    total_debits = sum(a.debits_posted for a in accounts.values())
    total_credits = sum(a.credits_posted for a in accounts.values())
    assert total_debits == total_credits  # money is conserved
    for account_id in PROTECTED:
        assert accounts[account_id].credit_balance >= 0
    assert accounts[CREDIT_LINE].debit_balance <= CREDIT_LIMIT
    assert accounts[HOT].credits_posted == sum(
        t.amount for t in stored.values() if t.credit_account_id == HOT
    )
    ledger.compact_balances(deltas_min=1)
    assert ledger.lookup_accounts(list(accounts)) == list(accounts.values())
    ledger.close()
    report = check(postgres_url)
    assert report.ok, report.problems[:5]


CRASH_BATCHES = 40
CRASH_BATCH_SIZE = 200


def _crash_batches() -> list[list[Transfer]]:
    rng = random.Random(7)
    batches = []
    for b in range(CRASH_BATCHES):
        batch = []
        for i in range(CRASH_BATCH_SIZE):
            debit = rng.choice(PROTECTED)
            linked = 1 if i % 4 == 0 and i < CRASH_BATCH_SIZE - 1 else 0
            batch.append(
                Transfer(
                    10_000_000 + b * 1_000 + i, debit, HOT, rng.randint(1, 50), CNY, 3, flags=linked
                )
            )
        batches.append(batch)
    return batches


def _post_batches(url: str) -> None:
    ledger = Ledger.open(url)
    for batch in _crash_batches():
        ledger.create_transfers(batch)
    ledger.close()


@pytest.mark.slow
def test_sigkill_mid_batch_leaves_books_balanced(database_url):
    _open_bank(database_url)
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_post_batches, args=(database_url,))
    child.start()
    ledger = Ledger.open(database_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until it is part-way through
        accounts = ledger.lookup_accounts([HOT])
        if accounts and accounts[0].credits_posted > 0:
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    report = check(database_url)
    assert report.ok, report.problems[:5]
    # re-run every batch: each transfer ends up posted exactly once
    everything = [t for batch in _crash_batches() for t in batch]
    first_results = [r for batch in _crash_batches() for r in ledger.create_transfers(batch)]
    assert CreateTransferResult.EXISTS in first_results  # some had committed before the kill
    assert CreateTransferResult.OK in first_results  # and some had not
    stored = {t.id: t for t in ledger.lookup_transfers([t.id for t in everything])}
    for transfer, result in zip(everything, first_results, strict=True):
        if result in (CreateTransferResult.OK, CreateTransferResult.EXISTS):
            assert stored[transfer.id].amount == transfer.amount
        else:
            assert transfer.id not in stored
    (hot,) = ledger.lookup_accounts([HOT])
    assert hot.credits_posted == sum(t.amount for t in stored.values())
    second = [r for batch in _crash_batches() for r in ledger.create_transfers(batch)]
    assert CreateTransferResult.OK not in second  # nothing posts twice
    ledger.close()
    assert check(database_url).ok


def test_same_transfer_from_many_threads_posts_once(postgres_url):
    from concurrent.futures import ThreadPoolExecutor

    _open_bank(postgres_url)
    ledger = Ledger.open(postgres_url)
    chain = [
        Transfer(42, PROTECTED[0], HOT, 100, CNY, 1, flags=1),
        Transfer(43, PROTECTED[1], HOT, 100, CNY, 1),
    ]
    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(lambda _: ledger.create_transfers(chain), range(10)))
    assert outcomes.count([CreateTransferResult.OK] * 2) == 1
    assert outcomes.count([CreateTransferResult.EXISTS] * 2) == 9
    (hot,) = ledger.lookup_accounts([HOT])
    assert hot.credits_posted == 200
    ledger.close()
    assert check(postgres_url).ok


GROUP_THREADS = 8
GROUP_CALLS_PER_THREAD = 60


def test_group_commit_from_threads_matches_serial_semantics(database_url):
    """8 threads share one Ledger: their calls are merged into shared transactions, yet each
    call gets the results of posting it alone: duplicates across threads post once, overdrafts
    are declined, an open chain fails by itself, and the books check out."""
    from concurrent.futures import ThreadPoolExecutor

    _open_bank(database_url)
    ledger = Ledger.open(database_url)
    batches_before = ledger._batches

    def client(worker: int) -> list[tuple[list[Transfer], list[CreateTransferResult]]]:
        rng = random.Random(worker)
        calls = []
        for n in range(GROUP_CALLS_PER_THREAD):
            # every id is also sent by the neighbouring thread: one of the two posts it
            transfer_id = 50_000_000 + ((worker // 2) * 1_000 + n)
            debit = PROTECTED[(worker // 2 * 7 + n) % len(PROTECTED)]
            batch = [Transfer(transfer_id, debit, HOT, 900 + (n % 7) * 100, CNY, 5)]
            if n % 15 == 14:  # a chain left open: rejected on its own, never merged
                batch = [Transfer(transfer_id, debit, HOT, 1, CNY, 5, flags=1)]
            calls.append((batch, ledger.create_transfers(batch)))
            if rng.random() < 0.3:
                time.sleep(0.001)
        return calls

    with ThreadPoolExecutor(GROUP_THREADS) as pool:
        outcomes = [call for calls in pool.map(client, range(GROUP_THREADS)) for call in calls]
    calls = len(outcomes)
    assert ledger._batches - batches_before < calls  # some calls shared a transaction
    posted: dict[int, int] = {}
    for batch, results in outcomes:
        (transfer,) = batch
        (result,) = results
        if transfer.flags:
            assert result == CreateTransferResult.LINKED_EVENT_CHAIN_OPEN
        elif result == CreateTransferResult.OK:
            assert transfer.id not in posted  # only one of the two senders posts it
            posted[transfer.id] = transfer.amount
        else:
            assert result in (CreateTransferResult.EXISTS, CreateTransferResult.EXCEEDS_CREDITS)
    stored = {t.id: t for t in ledger.lookup_transfers(list(range(50_000_000, 50_004_000)))}
    assert {tid: t.amount for tid, t in stored.items()} == posted
    accounts = ledger.lookup_accounts(PROTECTED)
    assert all(a.credit_balance >= 0 for a in accounts)
    assert any(a.credit_balance < 900 for a in accounts)  # the overdraft checks were reached
    ledger.close()
    assert check(database_url).ok
