from __future__ import annotations

from collections.abc import Iterator

import pytest

from flashpay.clock import FakeClock
from flashpay.ledger import Ledger


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(database_url: str, clock: FakeClock) -> Iterator[Ledger]:
    opened = Ledger.open(database_url, clock=clock)
    yield opened
    opened.close()
