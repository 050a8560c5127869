"""Group commit: concurrent callers' requests processed together, each caller answered alone.

A database commit costs about the same for one request as for hundreds, so the requests that
threads make at the same moment are worth processing as one batch. ``GroupCommit`` does that
without a timer: a caller that finds room (fewer than ``in_flight_max`` batches running) processes
the queue at once, its own request alone if it is alone; the callers that arrive meanwhile
queue, and the next one to find room processes the front of the queue, up to ``batch_max``, as
the next batch. Batches are taken in order of arrival, and each caller gets the answer to its own
request, as if the requests had been made one after another.

Two users, each with its own limits (decision 0010): the ledger merges concurrent
``Ledger.create_transfers`` calls into one database transaction (``batch_max`` counted in
events), and the HTTP workers' payment switch sends concurrent QR payments and P2P transfers to
the payment services as one batch (``flashpay.payments.switch``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

from flashpay.errors import invariant

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class Failure:
    """What ``process`` answers for a request that must raise ``error`` in its own caller only
    (the other callers of the batch get their answers)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Slot(Generic[Request, Answer]):
    """One caller's request: queued until a batch takes it, done once its batch has run."""

    __slots__ = ("answer", "done", "error", "queued", "request", "weight")

    def __init__(self, request: Request, weight: int) -> None:
        self.request = request
        self.weight = weight
        self.queued = True
        self.done = False
        self.answer: Answer | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Request, Answer]):
    """Run ``process`` over the requests of concurrent ``submit`` calls, in batches.

    ``process`` gets a batch in order of arrival and returns one outcome per request, in the
    same order: an answer, or a ``Failure`` to raise in that request's caller. An exception
    raised by ``process`` is raised in every caller of that batch and in no other.

    A batch weighs at most ``batch_max`` (each request weighs ``weight(request)``, 1 unless
    given; a request heavier than ``batch_max`` on its own is processed alone), and at most
    ``in_flight_max`` batches run at once: with two, one can be in the database while the next
    is being prepared.
    """

    def __init__(
        self,
        process: Callable[[Sequence[Request]], Sequence[Answer | Failure]],
        *,
        batch_max: int,
        in_flight_max: int,
        weight: Callable[[Request], int] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        invariant(batch_max >= 1 and in_flight_max >= 1, "group commit limits must be ≥ 1")
        self._process = process
        self._batch_max = batch_max
        self._in_flight_max = in_flight_max
        self._weight = weight
        self._on_batch = on_batch  # told each batch's size (the metrics' batch histogram)
        self._queue: deque[_Slot[Request, Answer]] = deque()
        self._running = 0
        self._changed = threading.Condition()
        self.batches = 0  # how many batches ran, for tests and metrics
        self.requests = 0

    @property
    def waiting(self) -> int:
        """How many requests are queued for a batch (for tests and metrics)."""
        with self._changed:
            return len(self._queue)

    def submit(self, request: Request) -> Answer:
        """The answer to ``request``, processed in a batch with the requests made meanwhile."""
        slot: _Slot[Request, Answer] = _Slot(request, self._weight(request) if self._weight else 1)
        with self._changed:
            self._queue.append(slot)
        while True:
            with self._changed:
                while not slot.done and (self._running >= self._in_flight_max or not slot.queued):
                    self._changed.wait()
                if slot.done:
                    break
                # Room for a batch: this caller runs the front of the queue (its own request
                # is in it unless more than a batch came before; then it goes round again).
                self._running += 1
                batch = self._take()
            self._run(batch)
        if slot.error is not None:
            raise slot.error
        return cast(Answer, slot.answer)  # set by _run when it set no error

    def _take(self) -> list[_Slot[Request, Answer]]:
        """Dequeue the next batch: the longest prefix of the queue within ``batch_max`` (at
        least one request). Called with the lock held."""
        first = self._queue.popleft()
        batch = [first]
        total = first.weight
        while self._queue and total + self._queue[0].weight <= self._batch_max:
            slot = self._queue.popleft()
            batch.append(slot)
            total += slot.weight
        for slot in batch:
            slot.queued = False
        return batch

    def _run(self, batch: list[_Slot[Request, Answer]]) -> None:
        """Process ``batch`` outside the lock, then hand every caller its outcome."""
        if self._on_batch is not None:
            self._on_batch(len(batch))
        try:
            outcomes = self._process([s.request for s in batch])
            invariant(
                len(outcomes) == len(batch),
                f"{len(outcomes)} answers for {len(batch)} requests",
            )
            for s, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, Failure):
                    s.error = outcome.error
                else:
                    s.answer = outcome
        except BaseException as exc:  # handed to every caller of the batch, re-raised there
            for s in batch:
                s.error = exc
        with self._changed:
            for s in batch:
                s.done = True
            self._running -= 1
            self.batches += 1
            self.requests += len(batch)
            self._changed.notify_all()
