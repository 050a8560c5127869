"""Group commit for concurrent requests: the requests that arrive while a batch is being
processed wait, and the next caller processes all of them as one batch.

A web worker answers each HTTP request on its own thread. Through ``GroupCommit`` the payment
requests that meet in a worker go to ``qr.submit_payments`` together — one record transaction,
one ledger batch and one completion for all of them (decision 0010) — instead of one each. No
request waits for a timer: a request that finds no batch running runs at once (alone, if it is
alone), and the ones that come meanwhile form the next batch. Each caller gets its own answer,
as if the requests had been made one after another in their order of arrival.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from flashpay.payments.p2p import P2PRequest, P2PTransfer, create_transfers
from flashpay.payments.qr import (
    Payment,
    PaymentError,
    PaymentRequest,
    submit_payments,
)
from flashpay.platform import Platform
from flashpay.wallet.errors import WalletError

Request = TypeVar("Request")
Answer = TypeVar("Answer")

BATCH_MAX = 512
IN_FLIGHT_MAX = 2  # batches processed at once: one in the database while the next is prepared


class _Slot(Generic[Request, Answer]):
    __slots__ = ("answer", "done", "error", "request")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.done = False
        self.answer: Answer | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Request, Answer]):
    """Run ``process`` over the requests of concurrent ``submit`` calls in batches of at most
    ``batch_max``, at most ``in_flight_max`` batches at once; ``process`` answers each request
    of a batch, in order. An exception from ``process`` is raised in every caller of that
    batch."""

    def __init__(
        self,
        process: Callable[[Sequence[Request]], Sequence[Answer]],
        *,
        batch_max: int = BATCH_MAX,
        in_flight_max: int = IN_FLIGHT_MAX,
    ) -> None:
        self._process = process
        self._batch_max = batch_max
        self._in_flight_max = in_flight_max
        self._queue: list[_Slot[Request, Answer]] = []
        self._running = 0
        self._changed = threading.Condition()
        self.batches = 0  # how many batches ran, for tests and metrics
        self.requests = 0

    def submit(self, request: Request) -> Answer:
        slot: _Slot[Request, Answer] = _Slot(request)
        with self._changed:
            self._queue.append(slot)
        while True:
            with self._changed:
                while not slot.done and (
                    self._running >= self._in_flight_max or slot not in self._queue
                ):
                    self._changed.wait()
                if slot.done:
                    return self._result(slot)
                # Room for a batch: this caller runs the next one (its own request is in it
                # unless more than ``batch_max`` came before; then it goes round again).
                self._running += 1
                batch = self._queue[: self._batch_max]
                del self._queue[: len(batch)]
            self._run(batch)

    def _run(self, batch: list[_Slot[Request, Answer]]) -> None:
        try:
            answers = self._process([s.request for s in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for {len(batch)} requests")
            for s, answer in zip(batch, answers, strict=True):
                s.answer = answer
        except BaseException as exc:
            for s in batch:
                s.error = exc
        with self._changed:
            for s in batch:
                s.done = True
            self._running -= 1
            self.batches += 1
            self.requests += len(batch)
            self._changed.notify_all()

    @staticmethod
    def _result(slot: _Slot[Request, Answer]) -> Answer:
        if slot.error is not None:
            raise slot.error
        assert slot.answer is not None
        return slot.answer


PaymentSwitch = GroupCommit["PaymentRequest", "Payment | PaymentError"]


def payment_switch(platform: Platform) -> PaymentSwitch:
    """A switch that pays its batches with ``qr.submit_payments`` on ``platform``."""

    def process(requests: Sequence[PaymentRequest]) -> list[Payment | PaymentError]:
        return submit_payments(platform=platform, requests=requests)

    return GroupCommit(process)


TransferSwitch = GroupCommit["tuple[int, P2PRequest]", "P2PTransfer | WalletError"]


def transfer_switch(platform: Platform) -> TransferSwitch:
    """A switch that posts its batches of (user id, request) with ``p2p.create_transfers``."""

    def process(requests: Sequence[tuple[int, P2PRequest]]) -> list[P2PTransfer | WalletError]:
        return create_transfers(platform=platform, requests=requests)

    return GroupCommit(process)
