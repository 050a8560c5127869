"""Where flashpay keeps its data, and how a database URL is chosen.

Precedence for the database: an explicit ``--db`` option, then ``FLASHPAY_DATABASE_URL``, then a
SQLite file ``flashpay.db`` in the data directory (``--data-dir``, ``FLASHPAY_DATA_DIR``, or
``./.flashpay``).

Whether the process is a development or a production one comes from ``FLASHPAY_ENV``
(``environment()``): it decides where one-time codes go (``flashpay.notify``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

from flashpay.errors import FlashpayError

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


# -- development or production ------------------------------------------------------------------
ENVIRONMENT_ENV = "FLASHPAY_ENV"


class Environment(StrEnum):
    """What a flashpay process is for (``$FLASHPAY_ENV``; decision 0015).

    ``development`` (the default, so a plain ``flashpay serve`` works on a laptop): one-time codes
    go to the development outbox, readable with ``flashpay dev messages`` and ``GET
    /dev/messages``. ``production``: codes go only to a real SMS gateway, the process refuses to
    start without one (``FLASHPAY_SMS_GATEWAY_URL``), and nothing under ``/dev`` exists.
    """

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ConfigError(FlashpayError, ValueError):
    """A setting holds a value flashpay cannot run with; the message names the setting."""


def environment(environ: Mapping[str, str] | None = None) -> Environment:
    """``$FLASHPAY_ENV`` (default ``development``); any other value than the two is refused."""
    text = (os.environ if environ is None else environ).get(ENVIRONMENT_ENV, "").strip().lower()
    if not text:
        return Environment.DEVELOPMENT
    try:
        return Environment(text)
    except ValueError:
        choices = " or ".join(e.value for e in Environment)
        raise ConfigError(f"{ENVIRONMENT_ENV} must be {choices}, not {text!r}") from None
