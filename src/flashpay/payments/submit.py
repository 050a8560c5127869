"""The entry point of QR payments: a batch of scan-to-pay and payment-code requests, answered as if
one after another (group commit at the service level, decision 0010).
"""

from __future__ import annotations

from collections.abc import Sequence

from flashpay.idempotency import (
    EffectConflictError,
)
from flashpay.money import Money
from flashpay.payments.attempts import (
    EFFECT_PAYMENT,
    HOLD_SECONDS_DEFAULT,
    RERUNS_MAX,
    Attempt,
    CollectRequest,
    Payment,
    PaymentRequest,
    ScanRequest,
)
from flashpay.payments.errors import (
    PaymentError,
)
from flashpay.payments.fronts import (
    Lookups,
    collect,
    scan,
)
from flashpay.payments.records import (
    bound_payments,
    payments_by_id,
)
from flashpay.payments.recovery import (
    settle_created_payments,
)
from flashpay.payments.unit_of_work import (
    run_payments,
)
from flashpay.platform import Platform


def submit_payments(
    *, platform: Platform, requests: Sequence[PaymentRequest]
) -> list[Payment | PaymentError]:
    """Pay a batch of requests the way a switch handles concurrent ones, with one commit for
    all (group commit). The answers are those of the requests made one after another in this
    order — an earlier payment of the batch takes the balance, the limit, the order or the code
    a later one needed — but the batch costs the same few statements whatever its size: a few
    reads for the front ends (``fronts.Lookups``), one transaction recording every payment, one
    ledger batch and one transaction completing them (decision 0010). A request that cannot be
    carried out (nothing is recorded for it) answers its ``PaymentError`` in its place; the
    others go on.

    A request whose Idempotency-Key is bound already (a retry after a crash, or a twin) is
    answered with that payment, settled first if a crash left it ``created``; the others' keys
    are bound in the transaction that records their payments."""
    for run in range(RERUNS_MAX + 1):
        try:
            return _submit(platform, requests)
        except EffectConflictError:
            if run == RERUNS_MAX:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _submit(platform: Platform, requests: Sequence[PaymentRequest]) -> list[Payment | PaymentError]:
    bound = bound_payments(platform, [r.idempotency for r in requests], EFFECT_PAYMENT)
    if bound:
        settle_created_payments(platform, sorted(set(bound.values())))
        done = payments_by_id(platform, bound.values())
        fresh = [r for r in requests if r.idempotency not in bound]
        answers = iter(_submit(platform, fresh)) if fresh else iter(())
        return [
            done[bound[r.idempotency]] if r.idempotency in bound else next(answers)
            for r in requests
        ]
    lookups = Lookups.load(platform, requests)
    fronts: list[Attempt | PaymentError] = []
    for request in requests:
        try:
            if isinstance(request, ScanRequest):
                fronts.append(scan(platform, lookups, request))
            else:
                fronts.append(collect(platform, lookups, request))
        except PaymentError as exc:
            fronts.append(exc)
    paid = iter(run_payments(platform, [a for a in fronts if isinstance(a, Attempt)]))
    return [a if isinstance(a, PaymentError) else next(paid) for a in fronts]


def _one(answers: list[Payment | PaymentError]) -> Payment:
    [answer] = answers
    if isinstance(answer, PaymentError):
        raise answer
    return answer


def pay_scanned_code(
    *,
    platform: Platform,
    user_id: int,
    payload: str,
    wallet_card_id: int,
    amount: Money | None = None,
    pin: str | None = None,
) -> Payment:
    """Pay one ``ScanRequest`` (a batch of one)."""
    request = ScanRequest(user_id, payload, wallet_card_id, amount, pin)
    return _one(submit_payments(platform=platform, requests=[request]))


def collect_with_code(
    *,
    platform: Platform,
    merchant_id: int,
    code: str,
    amount: Money,
    terminal_code: str = "T0001",
    capture: bool = True,
    hold_seconds: int = HOLD_SECONDS_DEFAULT,
) -> Payment:
    """Collect one ``CollectRequest`` (a batch of one)."""
    request = CollectRequest(merchant_id, code, amount, terminal_code, capture, hold_seconds)
    return _one(submit_payments(platform=platform, requests=[request]))
