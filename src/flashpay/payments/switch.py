"""The HTTP workers' payment switch: group commit of concurrent payment and P2P requests.

A web worker answers each HTTP request on its own thread. Through a switch (a
``flashpay.batching.GroupCommit``) the payment requests that meet in a worker go to
``submit.submit_payments`` together — one record transaction, one ledger batch and one
completion for all of them (decision 0010) — instead of one each. No request waits for a timer:
a request that finds no batch running runs at once (alone, if it is alone), and the ones that
come meanwhile form the next batch. Each caller gets its own answer (a refusal, a
``PaymentError``, is an answer returned to its own caller only), as if the requests had been
made one after another in their order of arrival; a database error fails its batch's callers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flashpay.batching import GroupCommit
from flashpay.payments.attempts import Payment, PaymentRequest
from flashpay.payments.errors import PaymentError
from flashpay.payments.submit import submit_payments
from flashpay.payments.transfer_records import P2PRequest, P2PTransfer
from flashpay.payments.transfers import create_transfers
from flashpay.platform import Platform

BATCH_MAX = 512
IN_FLIGHT_MAX = 2  # batches processed at once: one in the database while the next is prepared

PaymentSwitch = GroupCommit["PaymentRequest", "Payment | PaymentError"]
BatchRecorder = Callable[[int], None]
"""Told each batch's size (the composition root hands in the metrics' recorder)."""
DeclineRecorder = Callable[[str], None]
"""Told the reason of each payment or transfer recorded as declined."""


def _report_declines(answers: Sequence[object], on_decline: DeclineRecorder | None) -> None:
    if on_decline is None:
        return
    for answer in answers:
        reason = getattr(answer, "decline_reason", None)
        if reason is not None:
            on_decline(str(reason))


def payment_switch(
    platform: Platform,
    *,
    on_batch: BatchRecorder | None = None,
    on_decline: DeclineRecorder | None = None,
) -> PaymentSwitch:
    """A switch that pays its batches with ``submit.submit_payments`` on ``platform``.
    (Refusals — ``PaymentError`` answers — are counted where the API answers them; a payment
    recorded as declined is a success for HTTP, so its reason is reported here.)"""

    def process(requests: Sequence[PaymentRequest]) -> list[Payment | PaymentError]:
        answers = submit_payments(platform=platform, requests=requests)
        _report_declines(answers, on_decline)
        return answers

    return GroupCommit(process, batch_max=BATCH_MAX, in_flight_max=IN_FLIGHT_MAX, on_batch=on_batch)


TransferSwitch = GroupCommit["tuple[int, P2PRequest]", "P2PTransfer | PaymentError"]


def transfer_switch(
    platform: Platform,
    *,
    on_batch: BatchRecorder | None = None,
    on_decline: DeclineRecorder | None = None,
) -> TransferSwitch:
    """A switch that posts its batches of (user id, request) with
    ``transfers.create_transfers``."""

    def process(requests: Sequence[tuple[int, P2PRequest]]) -> list[P2PTransfer | PaymentError]:
        answers = create_transfers(platform=platform, requests=requests)
        _report_declines(answers, on_decline)
        return answers

    return GroupCommit(process, batch_max=BATCH_MAX, in_flight_max=IN_FLIGHT_MAX, on_batch=on_batch)
