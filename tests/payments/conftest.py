"""Fixtures of the payments service tests: a platform over the default network, on both databases,
whose books are checked after every test."""

from __future__ import annotations

import pytest

from flashpay.clock import FakeClock
from flashpay.platform import Platform


@pytest.fixture
def clock(service_clock: FakeClock) -> FakeClock:
    return service_clock


@pytest.fixture
def platform(service_platform: Platform) -> Platform:
    """``service_platform`` (tests/conftest.py): the default network on SQLite and PostgreSQL,
    ledger and books checked after the test."""
    return service_platform
