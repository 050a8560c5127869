"""Fixtures of the payments service tests: a platform over the default network, on both databases,
whose books are checked after every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flashpay.clock import FakeClock
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import check_books, load_network
from flashpay.keys import KeyRing
from flashpay.ledger.check import check
from flashpay.notify import RecordingNotifier
from flashpay.platform import Platform

START_NS = 1_795_000_000 * 1_000_000_000  # 2026-11-18, Beijing afternoon


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START_NS)


@pytest.fixture
def platform(database_url: str, clock: FakeClock) -> Iterator[Platform]:
    opened = Platform.open(
        database_url, clock=clock, keys=KeyRing.generate(), notifier=RecordingNotifier()
    )
    load_network(platform=opened, definition=default_definition())
    yield opened
    report = check(database_url)
    assert report.ok, [str(p) for p in report.problems]
    assert check_books(platform=opened) == []
    opened.close()
