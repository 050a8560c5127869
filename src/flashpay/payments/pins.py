"""PIN checks of a batch, one strategy for every payment kind.

The slow hash (Argon2id) releases the GIL, so a batch's checks run on a small thread pool —
below ``PIN_POOL_REQUESTS_MIN`` requests serially, where starting threads costs more than it
saves. The verdicts are then replayed in request order per user, so the answers are those of
the requests made one after another: a right PIN after the fifth wrong one of the same batch
is ``pin_locked`` (``check_pin`` depends only on the hash and the lock, which the replay
follows with ``pin_state_after``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from flashpay.platform import Platform
from flashpay.wallet.pin import PinCheck, PinState, check_pin, pin_state_after

PIN_THREADS = 2  # Argon2id releases the GIL: one thread per core of the 2-core target machine
PIN_POOL_REQUESTS_MIN = 4  # below this, handing the checks to threads costs more than it saves


def pin_verdicts(
    platform: Platform, now_ns: int, asks: Sequence[tuple[PinState, str]]
) -> list[tuple[PinState, PinCheck]]:
    """``check_pin`` for each (state read with the payer, PIN), as if one after another.
    Returns each request's (state to record against, verdict)."""

    def check(ask: tuple[PinState, str]) -> PinCheck:
        return check_pin(platform=platform, state=ask[0], pin=ask[1])

    if len(asks) < PIN_POOL_REQUESTS_MIN:
        hashed = [check(ask) for ask in asks]
    else:
        # A pool per batch: two thread starts (~0.1 ms) against milliseconds of hashing, and no
        # module-level pool that a fork would leave without its threads.
        with ThreadPoolExecutor(PIN_THREADS, thread_name_prefix="payments-pin") as pool:
            hashed = list(pool.map(check, asks))
    states: dict[int, PinState] = {}
    out = []
    for (read, pin), verdict in zip(asks, hashed, strict=True):
        state = states.get(read.user_id, read)
        if state.pin_locked_until_ns != read.pin_locked_until_ns:
            verdict = check((state, pin))  # locked earlier in this batch: answered without a hash
        out.append((state, verdict))
        states[read.user_id] = pin_state_after(state, verdict, now_ns)
    return out
