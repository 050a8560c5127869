"""The platform: everything a flashpay process opens once and hands to every service call.

``Platform`` holds the database engine (SQLAlchemy Core, for the domain tables), the ledger (its own
engine and group commit), the clock, the key ring and the notifier. Services take it as their
first keyword argument (``platform=``), so a test can open one over SQLite or PostgreSQL with a
``FakeClock``, fresh keys and a ``RecordingNotifier``. It also carries settings that are policy
rather than infrastructure: the cost of login password hashes (``password_policy``, see
``flashpay.passwords``; only the demo opens its platform with a cheap one).

``Runtime`` is the part of it that the HTTP kernel (``flashpay.api``) and ``flashpay.auth`` need:
an engine and a clock. It lives here, below both, so the kernel names it without importing a
domain, and a test can hand either a two-field stand-in instead of a whole platform.

On PostgreSQL each process opens a pool of ``POOL_SIZE`` connections (plus ``POOL_OVERFLOW_MAX``
under load), with no pre-ping on checkout (one more round trip per request, 10 % of a POST's time
in the profile of docs/benchmarks.md): a connection broken by a database restart fails one request
with a 500 instead, which the idempotency layer does not store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Engine

from flashpay.clock import Clock, SystemClock
from flashpay.db import create_engine, is_sqlite
from flashpay.keys import KeyRing
from flashpay.ledger import Ledger
from flashpay.notify import LogNotifier, Notifier
from flashpay.passwords import DEFAULT_PASSWORD_POLICY, PasswordPolicy

POOL_SIZE = 10  # per process (a uvicorn worker); PostgreSQL allows 100 connections on this machine
POOL_OVERFLOW_MAX = 10


class Runtime(Protocol):
    """What the HTTP kernel and the auth service need from a ``Platform``: its engine and clock."""

    @property
    def engine(self) -> Engine: ...

    @property
    def clock(self) -> Clock: ...


@dataclass(frozen=True, slots=True)
class Platform:
    database_url: str
    engine: Engine
    ledger: Ledger
    clock: Clock
    keys: KeyRing
    notifier: Notifier
    password_policy: PasswordPolicy = DEFAULT_PASSWORD_POLICY

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        keys: KeyRing | None = None,
        notifier: Notifier | None = None,
        data_directory: Path | None = None,
        password_policy: PasswordPolicy = DEFAULT_PASSWORD_POLICY,
    ) -> Platform:
        """Open a migrated database (run ``flashpay db upgrade`` or ``flashpay.db.upgrade``)."""
        clock = clock or SystemClock()
        engine = (
            create_engine(url)
            if is_sqlite(url)
            else create_engine(
                url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW_MAX, pool_pre_ping=False
            )
        )
        return cls(
            database_url=url,
            engine=engine,
            ledger=Ledger.open(url, clock=clock),
            clock=clock,
            keys=keys or KeyRing.load(data_directory),
            notifier=notifier or LogNotifier(),
            password_policy=password_policy,
        )

    def close(self) -> None:
        self.ledger.close()
        self.engine.dispose()
