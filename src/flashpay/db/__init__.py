"""Database engines and schema migrations for SQLite (embedded default) and PostgreSQL.

URLs are given the short way (``sqlite:///path``, ``postgresql://user@host/db``); this module maps
them to SQLAlchemy dialects (``postgresql+psycopg``) and sets SQLite up for concurrent use (WAL,
a busy timeout, foreign keys). The schema comes only from Alembic migrations: each domain package
owns one migration branch (``branch_labels=("<domain>",)``) under ``db/migrations/versions``, and
``upgrade`` applies every head.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from flashpay.errors import FlashpayError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UnsupportedDatabaseError(FlashpayError, ValueError):
    """The URL names a database flashpay does not run on (only SQLite and PostgreSQL)."""


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def is_postgresql(url: str) -> bool:
    return url.startswith("postgresql") or url.startswith("postgres://")


def sqlalchemy_url(url: str) -> str:
    """Map a short URL to the SQLAlchemy dialect flashpay uses (psycopg 3 for PostgreSQL)."""
    if is_sqlite(url):
        return url
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise UnsupportedDatabaseError(
        f"unsupported database URL {url!r}: use sqlite:/// or postgresql://"
    )


def libpq_url(url: str) -> str:
    """The plain ``postgresql://`` form that psycopg and libpq accept."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///path`` URL, or None for an in-memory database."""
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    return Path(rest) if rest and rest != ":memory:" else None


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a short URL; creates the SQLite file's directory when it is missing."""
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sqlalchemy_url(url), **kwargs)
        sa.event.listen(engine, "connect", _configure_sqlite)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(sqlalchemy_url(url), **kwargs)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the schema at ``url`` to the newest revision of every domain branch."""
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "heads")


def current_heads(url: str) -> set[str]:
    """The revisions the database at ``url`` is at."""
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


@contextmanager
def autocommit(engine: Engine) -> Iterator[sa.Connection]:
    """A connection whose every statement commits on its own: one round trip per statement.

    For single reads and single-statement writes on hot paths. A plain ``engine.connect()`` on
    PostgreSQL costs BEGIN + statement + ROLLBACK (three round trips) and ``engine.begin()``
    BEGIN + statement + COMMIT; a statement that is atomic on its own needs neither.

    SQLite has no round trips to save, and switching a pooled connection to AUTOCOMMIT and back
    costs a ``PRAGMA`` each time: about twice the CPU of the statement itself. There the block is
    an ordinary transaction (the driver begins one only before a write, and it commits at the
    end), which is the same thing for the one statement this is meant for."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


@contextmanager
def raw_connection(engine: Engine) -> Iterator[Any]:
    """A DBAPI connection (``sqlite3`` or ``psycopg``) from ``engine``'s pool, in autocommit
    mode: no transaction is open, the caller issues ``BEGIN``/``COMMIT`` itself.

    For the ledger's and the audit log's hot paths, which talk to the driver directly (psycopg
    pipelines, ``BEGIN IMMEDIATE``) rather than through SQLAlchemy. On the way out the
    connection is handed back to the pool as SQLAlchemy expects it (any open transaction
    rolled back, the driver's transaction mode restored), since other code checks the same
    pool out through the engine; a broken connection is invalidated instead, never pooled."""
    proxy = engine.raw_connection()
    raw: Any = proxy.driver_connection
    try:
        if isinstance(raw, sqlite3.Connection):
            raw.isolation_level = None  # the caller issues BEGIN IMMEDIATE / COMMIT
        else:
            raw.autocommit = True  # likewise BEGIN / COMMIT
        yield raw
    finally:
        if isinstance(raw, sqlite3.Connection):
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raw.isolation_level = "DEFERRED"
            proxy.close()
        elif raw.broken or raw.closed:
            proxy.invalidate()
        else:
            if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                raw.execute("ROLLBACK")
            raw.autocommit = False
            proxy.close()


def driver_connection(connection: sa.Connection) -> Any:
    """The DBAPI connection under a SQLAlchemy ``connection``, inside its transaction (for
    driver-level statements that must commit with the caller's)."""
    return connection.connection.driver_connection
