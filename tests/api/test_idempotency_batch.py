"""The batched idempotency store: a batch of claims is one INSERT, and it claims each (caller, key)
once — a twin in the same batch, or a key taken before, goes the ordinary way and sees the claim."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from flashpay.api.idempotency import ClaimOutcome, StoredResponse
from flashpay.api.idempotency_batch import BatchedIdempotencyStore, _ClaimRequest, _Completion
from flashpay.clock import SystemClock
from flashpay.db import create_engine


class _Runtime:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.clock = SystemClock()


@pytest.fixture
def store(database_url):
    runtime = _Runtime(database_url)
    yield BatchedIdempotencyStore(runtime)
    runtime.engine.dispose()


def test_a_batch_claims_each_key_once(store):
    taken = store.claim(principal="user:1", key="old", request_hash=b"h" * 32)
    assert taken.outcome is ClaimOutcome.CLAIMED
    batch = [
        _ClaimRequest("user:1", "a", b"1" * 32),
        _ClaimRequest("user:1", "a", b"1" * 32),  # a twin in the same batch
        _ClaimRequest("user:2", "a", b"2" * 32),  # the same key, another caller
        _ClaimRequest("user:1", "old", b"h" * 32),  # taken before
    ]
    assert store._insert_claims(batch) == [True, False, True, False]
    # The losers' ordinary path sees the winners' claims.
    assert store.claim(principal="user:1", key="a", request_hash=b"1" * 32).outcome is (
        ClaimOutcome.IN_PROGRESS
    )
    assert store.claim(principal="user:1", key="a", request_hash=b"x" * 32).outcome is (
        ClaimOutcome.KEY_REUSED
    )
    store._store_answers(
        [
            _Completion("user:1", "a", StoredResponse(201, "application/json", b'{"a":1}')),
            _Completion("user:2", "a", StoredResponse(200, None, b"two")),
        ]
    )
    replay = store.claim(principal="user:1", key="a", request_hash=b"1" * 32)
    assert replay.outcome is ClaimOutcome.COMPLETED
    assert replay.response == StoredResponse(201, "application/json", b'{"a":1}')
    other = store.claim(principal="user:2", key="a", request_hash=b"2" * 32)
    assert other.response == StoredResponse(200, None, b"two")


def test_concurrent_twins_one_claim(store):
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(
            pool.map(
                lambda _: store.claim(principal="user:9", key="k", request_hash=b"9" * 32).outcome,
                range(32),
            )
        )
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1
    assert set(outcomes) == {ClaimOutcome.CLAIMED, ClaimOutcome.IN_PROGRESS}
