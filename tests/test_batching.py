"""Group commit (``flashpay.batching``): concurrent requests go to the processor together, in
order of arrival, each caller gets its own answer or its own exception, a failure reaches every
caller of its batch and no other, and the size and in-flight limits hold."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest

from flashpay.batching import Failure, GroupCommit
from flashpay.errors import InvariantError


def _race(switch: GroupCommit[int, int], requests: list[int]) -> list[int | BaseException]:
    start = threading.Barrier(len(requests))
    answers: list[int | BaseException] = [0] * len(requests)

    def call(n: int) -> None:
        start.wait(timeout=10)
        try:
            answers[n] = switch.submit(requests[n])
        except BaseException as exc:  # handed to the test
            answers[n] = exc

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def _held(switch: GroupCommit[int, int], first: int, started: threading.Event) -> threading.Thread:
    """A caller whose batch (``first`` alone) is in flight: its processor sets ``started`` and
    holds it there until the test lets it go."""
    thread = threading.Thread(target=switch.submit, args=(first,))
    thread.start()
    started.wait(timeout=5)
    return thread


def test_concurrent_callers_share_batches_and_get_their_own_answers() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def process(batch: Sequence[int]) -> list[int]:
        gate.wait(timeout=5)  # the first batch holds the others back: they queue up
        sizes.append(len(batch))
        return [n * 10 for n in batch]

    switch = GroupCommit(process, batch_max=8, in_flight_max=2)
    timer = threading.Timer(0.2, gate.set)
    timer.start()
    answers = _race(switch, list(range(40)))
    timer.cancel()
    assert answers == [n * 10 for n in range(40)]
    assert sum(sizes) == switch.requests == 40
    assert max(sizes) <= 8
    assert switch.batches < 40  # batched: fewer calls than requests


def test_a_lone_request_runs_at_once() -> None:
    switch = GroupCommit(lambda batch: [n + 1 for n in batch], batch_max=8, in_flight_max=2)
    assert switch.submit(41) == 42
    assert (switch.batches, switch.requests) == (1, 1)


def test_queued_requests_form_one_batch_in_order_of_arrival() -> None:
    gate, started = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def process(batch: Sequence[int]) -> list[int]:
        if batch[0] == 0:
            started.set()
            gate.wait(timeout=5)
        batches.append(list(batch))
        return list(batch)

    switch = GroupCommit(process, batch_max=100, in_flight_max=1)
    first = _held(switch, 0, started)
    callers = []
    for n in range(1, 6):  # one by one, so their order of arrival is known
        thread = threading.Thread(target=switch.submit, args=(n,))
        thread.start()
        callers.append(thread)
        _wait_for(lambda n=n: switch.waiting == n)
    gate.set()
    for thread in [first, *callers]:
        thread.join(timeout=10)
    assert batches == [[0], [1, 2, 3, 4, 5]]


def test_a_failure_reaches_the_callers_of_its_batch_only() -> None:
    def process(batch: Sequence[int]) -> list[int]:
        if 13 in batch:
            raise RuntimeError("the database went away")
        return list(batch)

    # one request a batch: failures stay apart
    switch = GroupCommit(process, batch_max=1, in_flight_max=2)
    answers = _race(switch, [1, 13, 2])
    assert answers[0] == 1
    assert answers[2] == 2
    assert isinstance(answers[1], RuntimeError)
    with pytest.raises(RuntimeError, match="went away"):
        switch.submit(13)
    assert switch.submit(5) == 5  # and it goes on


def test_a_failing_batch_fails_all_its_callers_and_no_later_batch() -> None:
    gate, started = threading.Event(), threading.Event()

    def process(batch: Sequence[int]) -> list[int]:
        if batch[0] == 0:
            started.set()
            gate.wait(timeout=5)
        if 13 in batch:
            raise RuntimeError("the database went away")
        return list(batch)

    switch = GroupCommit(process, batch_max=3, in_flight_max=1)
    first = _held(switch, 0, started)
    answers: dict[int, int | BaseException] = {}

    def call(n: int) -> None:
        try:
            answers[n] = switch.submit(n)
        except BaseException as exc:  # handed to the test
            answers[n] = exc

    callers = []
    for n in (11, 12, 13, 21, 22):  # batches [11, 12, 13] (fails) and [21, 22]
        thread = threading.Thread(target=call, args=(n,))
        thread.start()
        callers.append(thread)
        _wait_for(lambda k=len(callers): switch.waiting == k)
    gate.set()
    for thread in [first, *callers]:
        thread.join(timeout=10)
    assert all(isinstance(answers[n], RuntimeError) for n in (11, 12, 13))
    assert (answers[21], answers[22]) == (21, 22)


def test_a_failure_answer_raises_in_its_own_caller_only() -> None:
    def process(batch: Sequence[int]) -> list[int | Failure]:
        return [Failure(ValueError(f"no {n}")) if n % 2 else n for n in batch]

    switch = GroupCommit(process, batch_max=64, in_flight_max=2)
    answers = _race(switch, list(range(20)))
    for n, answer in enumerate(answers):
        if n % 2:
            assert isinstance(answer, ValueError)
            assert str(answer) == f"no {n}"
        else:
            assert answer == n


def test_batches_keep_to_the_size_limit_by_weight() -> None:
    gate, started = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def process(batch: Sequence[int]) -> list[int]:
        started.set()
        gate.wait(timeout=5)
        batches.append(list(batch))
        return list(batch)

    # each request weighs its value: 4 + 5 fit in 10, 3 would not; 12 is alone
    switch = GroupCommit(process, batch_max=10, in_flight_max=1, weight=lambda n: n)
    first = _held(switch, 1, started)
    callers = []
    for k, n in enumerate((4, 5, 3, 12, 2), start=1):
        thread = threading.Thread(target=switch.submit, args=(n,))
        thread.start()
        callers.append(thread)
        _wait_for(lambda k=k: switch.waiting == k)
    gate.set()
    for thread in [first, *callers]:
        thread.join(timeout=10)
    assert batches == [[1], [4, 5], [3], [12], [2]]


def test_no_more_batches_in_flight_than_the_limit() -> None:
    lock = threading.Lock()
    running = [0, 0]  # now, most

    def process(batch: Sequence[int]) -> list[int]:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return list(batch)

    switch = GroupCommit(process, batch_max=2, in_flight_max=3)
    answers = _race(switch, list(range(48)))
    assert answers == list(range(48))
    assert running[1] == 3  # reached with 48 callers, never passed
    assert switch.batches >= 24


def test_a_processor_that_loses_an_answer_fails_its_batch() -> None:
    switch = GroupCommit(lambda batch: list(batch)[1:], batch_max=8, in_flight_max=2)
    with pytest.raises(InvariantError, match="0 answers for 1 requests"):
        switch.submit(1)


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.001)
