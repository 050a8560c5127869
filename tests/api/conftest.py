"""Fixtures for the HTTP API tests (async tests run on asyncio through anyio's pytest plugin).

``leak_guard`` enforces ARCHITECTURE.md §7 invariant 7 for the HTTP layer: after a test, no full
card number used by the API tests (``TEST_CARD_NUMBERS``) and no API key secret it registered
appears in any response it recorded, in the captured logs, or in a dump of the database.
"""

from __future__ import annotations

import logging

import pytest
from api_testkit import LeakGuard
from world import checked_world


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def leak_guard(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    guard = LeakGuard()
    yield guard
    guard.check(caplog.text)


@pytest.fixture
async def world(database_url, leak_guard):
    """A world over SQLite and PostgreSQL whose books are proven after the test."""
    async with checked_world(database_url, leak_guard) as opened:
        yield opened
