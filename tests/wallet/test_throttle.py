"""``plan_attempt`` on its own: the back-off, the lock, its growth to the bound, and forgetting
(a day after the last lock ended)."""

from __future__ import annotations

from flashpay.clock import NS_PER_SECOND
from flashpay.wallet.throttle import (
    ACCOUNT,
    ACCOUNT_FAILURES_MAX,
    ACCOUNT_LOCK_SECONDS,
    ACCOUNT_LOCK_SECONDS_MAX,
    ACCOUNT_MEMORY_SECONDS,
    SOURCE,
    SOURCE_FAILURES_MAX,
    AttemptState,
    Refusal,
    plan_attempt,
)

NOW = 1_795_000_000 * NS_PER_SECOND


def _fail_until_locked(state: AttemptState, now: int) -> tuple[AttemptState, int]:
    """Charge failures, waiting out each back-off, until the account locks: (state, now)."""
    while True:
        planned = plan_attempt(ACCOUNT, state, now)
        assert isinstance(planned, AttemptState)
        state = planned
        if state.locked_until_ns:
            return state, now
        now = max(now, state.next_attempt_ns)


def test_the_back_off_doubles_after_the_free_first_failure():
    waits = [ACCOUNT.backoff_seconds_after(k) for k in range(1, ACCOUNT_FAILURES_MAX)]
    assert waits == [0, 1, 2, 4]
    assert [SOURCE.backoff_seconds_after(k) for k in range(1, SOURCE_FAILURES_MAX)] == [0] * (
        SOURCE_FAILURES_MAX - 1
    )


def test_locks_grow_to_the_bound_and_end_on_their_own():
    state, now = AttemptState(), NOW
    lengths = []
    for _ in range(12):
        state, now = _fail_until_locked(state, now)
        lengths.append((state.locked_until_ns - now) // NS_PER_SECOND)
        refused = plan_attempt(ACCOUNT, state, state.locked_until_ns - 1)
        assert isinstance(refused, Refusal)
        assert refused.code == "account_locked"
        now = state.locked_until_ns
    assert lengths[:3] == [ACCOUNT_LOCK_SECONDS, 2 * ACCOUNT_LOCK_SECONDS, 4 * ACCOUNT_LOCK_SECONDS]
    assert max(lengths) == lengths[-1] == ACCOUNT_LOCK_SECONDS_MAX


def test_quiet_counts_are_forgotten():
    state, _ = _fail_until_locked(AttemptState(), NOW)
    later = state.locked_until_ns + ACCOUNT_MEMORY_SECONDS * NS_PER_SECOND
    assert plan_attempt(ACCOUNT, state, later) == AttemptState(1, 0, later, 0, later)
