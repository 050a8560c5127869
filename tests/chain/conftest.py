"""Fixtures for the audit log: a ledger with a few accounts, chains posted, keys."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from flashpay.chain import note
from flashpay.chain.service import DEFAULT_ORIGIN, ChainLog
from flashpay.clock import FakeClock
from flashpay.ledger import Ledger
from flashpay.ledger.types import Account, AccountFlags, Transfer, TransferFlags

ACCOUNTS = (1, 2, 3, 4)


def commitment(chain_id: int) -> bytes:
    return hashlib.sha256(b"salt|payment|%d" % chain_id).digest()


@dataclass(frozen=True, slots=True)
class Posted:
    chain_id: int  # the ledger's chain id: the timestamp of the chain's first transfer
    transfer_id: int  # the first transfer's id (the second is transfer_id + 1)


def post_chains(ledger: Ledger, count: int, *, first_id: int = 100) -> list[Posted]:
    """Post ``count`` chains of two linked transfers each (amounts 1000+n and 10+n)."""
    posted = []
    for n in range(count):
        tid = first_id + 2 * n
        transfers = [
            Transfer(
                id=tid,
                debit_account_id=1,
                credit_account_id=2,
                amount=1000 + n,
                ledger=156,
                code=1,
                flags=TransferFlags.LINKED,
            ),
            Transfer(
                id=tid + 1,
                debit_account_id=2,
                credit_account_id=3,
                amount=10 + n,
                ledger=156,
                code=2,
            ),
        ]
        results = ledger.create_transfers(transfers, commitments={tid: commitment(tid)})
        assert all(r == "ok" for r in results), results
        (first,) = ledger.lookup_transfers([tid])
        posted.append(Posted(chain_id=first.timestamp, transfer_id=tid))
    return posted


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(database_url: str, clock: FakeClock) -> Iterator[Ledger]:
    opened = Ledger.open(database_url, clock=clock)
    results = opened.create_accounts(
        [Account(id=i, ledger=156, code=10, flags=AccountFlags.NONE) for i in ACCOUNTS]
    )
    assert all(r == "ok" for r in results)
    yield opened
    opened.close()


@pytest.fixture
def log(database_url: str, clock: FakeClock) -> Iterator[ChainLog]:
    opened = ChainLog.open(database_url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def log_keys() -> tuple[str, str]:
    return note.generate_key(DEFAULT_ORIGIN)
