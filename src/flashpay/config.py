"""Where flashpay keeps its data, and how a database URL is chosen.

Precedence for the database: an explicit ``--db`` option, then ``FLASHPAY_DATABASE_URL``, then a
SQLite file ``flashpay.db`` in the data directory (``--data-dir``, ``FLASHPAY_DATA_DIR``, or
``./.flashpay``).
"""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_URL_ENV = "FLASHPAY_DATABASE_URL"
DATA_DIR_ENV = "FLASHPAY_DATA_DIR"
DEFAULT_DATA_DIR = Path(".flashpay")
DATABASE_FILE_NAME = "flashpay.db"


def data_dir(explicit: Path | None = None) -> Path:
    """The data directory: the explicit one, else ``$FLASHPAY_DATA_DIR``, else ``./.flashpay``."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(DATA_DIR_ENV)
    return Path(from_env) if from_env else DEFAULT_DATA_DIR


def database_url(explicit: str | None = None, *, data_directory: Path | None = None) -> str:
    """The database URL: ``--db``, else ``$FLASHPAY_DATABASE_URL``, else SQLite in the data dir."""
    if explicit:
        return explicit
    from_env = os.environ.get(DATABASE_URL_ENV)
    if from_env:
        return from_env
    path = data_dir(data_directory) / DATABASE_FILE_NAME
    return f"sqlite:///{path}"
