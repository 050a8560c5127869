"""Database fixtures: every storage test runs on SQLite and on a real PostgreSQL.

``database_url`` is parametrized ``[sqlite, postgresql]``. Each test gets a fresh, fully migrated
database: a copy of a per-worker SQLite template file, or ``CREATE DATABASE … TEMPLATE`` of a
per-worker PostgreSQL template (both migrated once per session through Alembic, like production).

PostgreSQL comes from ``$FLASHPAY_TEST_POSTGRES_URL`` (default the local server). When it cannot
be reached the PostgreSQL cases are skipped on a developer's machine, and fail under ``CI=true``:
CI must never pass by skipping them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from flashpay import db
from flashpay.books import check_books
from flashpay.clock import FakeClock
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import load_network
from flashpay.keys import KeyRing
from flashpay.ledger.check import check
from flashpay.notify import RecordingNotifier
from flashpay.platform import Platform

POSTGRES_URL_ENV = "FLASHPAY_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_counter = itertools.count()


def _admin_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def _worker_id(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.config, "workerinput", {}).get("workerid", "main"))


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A superuser URL for creating test databases; fails under CI=true when unreachable."""
    url = _admin_url()
    try:
        with psycopg.connect(url, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        message = f"PostgreSQL unreachable at {url}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


def _create_database(admin_url: str, name: str, template: str | None = None) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        connection.execute(f'CREATE DATABASE "{name}"{suffix}')


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _postgres_template(postgres_admin_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"flashpay_tpl_{_worker_id(request)}_{os.getpid()}"
    _create_database(postgres_admin_url, name)
    db.upgrade(_with_database(postgres_admin_url, name))
    yield name
    _drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite database file."""
    path = tmp_path / "flashpay.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(
    postgres_admin_url: str, _postgres_template: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped after the test."""
    name = f"flashpay_t_{_worker_id(request)}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    _create_database(postgres_admin_url, name, template=_postgres_template)
    yield _with_database(postgres_admin_url, name)
    _drop_database(postgres_admin_url, name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database: once on SQLite, once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


SERVICE_START_NS = 1_795_000_000 * 1_000_000_000  # 2026-11-18, Beijing afternoon


@pytest.fixture
def service_clock() -> FakeClock:
    return FakeClock(SERVICE_START_NS)


@pytest.fixture
def service_platform(database_url: str, service_clock: FakeClock) -> Iterator[Platform]:
    """A platform over the default network on a fresh database (SQLite and PostgreSQL), with
    fresh keys and a ``RecordingNotifier``, for service-level tests; after the test the ledger's
    invariants hold and every institution's books balance."""
    opened = Platform.open(
        database_url, clock=service_clock, keys=KeyRing.generate(), notifier=RecordingNotifier()
    )
    load_network(platform=opened, definition=default_definition())
    yield opened
    report = check(database_url)
    assert report.ok, [str(p) for p in report.problems]
    assert check_books(platform=opened) == []
    opened.close()
