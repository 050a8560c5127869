"""Fixtures for the HTTP API tests (async tests run on asyncio through anyio's pytest plugin).

``leak_guard`` enforces ARCHITECTURE.md §7 invariant 7 for the HTTP layer: after a test, no full
card number used by the API tests (``TEST_CARD_NUMBERS``) and no API key secret it registered
appears in any response it recorded, in the captured logs, or in a dump of the database.
"""

from __future__ import annotations

import logging

import httpx
import pytest
import sqlalchemy as sa

# Luhn-valid numbers on real BINs (Bank of China 621661, ICBC 622202); sent in request bodies.
TEST_CARD_NUMBERS = ("6216610200016587", "6222020200112233440")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def dump_database(engine: sa.Engine) -> bytes:
    """Every row of every table, text and bytes, as one blob to search for secrets."""
    parts: list[bytes] = []
    with engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                for value in row:
                    parts.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(parts)


class LeakGuard:
    def __init__(self) -> None:
        self.secrets: list[str] = list(TEST_CARD_NUMBERS)
        self.responses: list[bytes] = []
        self.engines: list[sa.Engine] = []

    async def record(self, response: httpx.Response) -> None:
        """An httpx response hook: keep the status line, headers and body."""
        await response.aread()
        self.responses.append(
            f"{response.status_code} {response.headers!r}".encode() + b"\n" + response.content
        )

    def check(self, log_text: str) -> None:
        haystacks = {
            "responses": b"\n".join(self.responses),
            "logs": log_text.encode(),
            "database": b"\n".join(dump_database(engine) for engine in self.engines),
        }
        for where, haystack in haystacks.items():
            for secret in self.secrets:
                assert secret.encode() not in haystack, f"a secret leaked into the {where}"


@pytest.fixture
def leak_guard(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    guard = LeakGuard()
    yield guard
    guard.check(caplog.text)
