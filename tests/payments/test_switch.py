"""Group commit: concurrent requests go to the processor together, each caller gets its own
answer, and a failure reaches every caller of its batch and no other."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from flashpay.payments.switch import GroupCommit


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


def test_concurrent_callers_share_batches_and_get_their_own_answers() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def process(batch: Sequence[int]) -> list[int]:
        gate.wait(timeout=5)  # the first batch holds the others back: they queue up
        sizes.append(len(batch))
        return [n * 10 for n in batch]

    switch = GroupCommit(process, batch_max=8)
    timer = threading.Timer(0.2, gate.set)
    timer.start()
    answers = _race(switch, list(range(40)))
    timer.cancel()
    assert answers == [n * 10 for n in range(40)]
    assert sum(sizes) == switch.requests == 40
    assert max(sizes) <= 8
    assert switch.batches < 40  # batched: fewer calls than requests


def test_a_lone_request_runs_at_once() -> None:
    switch = GroupCommit(lambda batch: [n + 1 for n in batch])
    assert switch.submit(41) == 42
    assert (switch.batches, switch.requests) == (1, 1)


def test_a_failure_reaches_the_callers_of_its_batch_only() -> None:
    def process(batch: Sequence[int]) -> list[int]:
        if 13 in batch:
            raise RuntimeError("the database went away")
        return list(batch)

    switch = GroupCommit(process, batch_max=1)  # one request a batch: failures stay apart
    answers = _race(switch, [1, 13, 2])
    assert answers[0] == 1
    assert answers[2] == 2
    assert isinstance(answers[1], RuntimeError)
    with pytest.raises(RuntimeError, match="went away"):
        switch.submit(13)
    assert switch.submit(5) == 5  # and it goes on


def test_a_processor_that_loses_an_answer_fails_its_batch() -> None:
    switch = GroupCommit(lambda batch: list(batch)[1:])
    with pytest.raises(RuntimeError, match="0 answers for 1 requests"):
        switch.submit(1)
