"""Alembic environment: runs every domain's migration branch against one database."""

from __future__ import annotations

from alembic import context

from flashpay.db import create_engine
from flashpay.errors import InvariantError

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise InvariantError("alembic runs with sqlalchemy.url set (flashpay.db.migrate sets it)")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()
