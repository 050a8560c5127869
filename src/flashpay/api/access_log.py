"""The access log without credentials: ``RedactCredentials``, a filter on uvicorn's access log.

Credentials travel only in headers (``flashpay.api.security``); a token in a query string is
refused — but uvicorn has already written the request line, query string and all, to its access
log. So ``flashpay serve`` runs uvicorn with ``log_config()``, whose access handler passes every
record through ``RedactCredentials``: the value of each query parameter whose name says it holds
a credential (``CREDENTIAL_PARAMS``, or any name containing one of ``CREDENTIAL_WORDS``) becomes
``REDACTED``. The path and the other parameters stay, so the log still says what was asked.
"""

from __future__ import annotations

import copy
import logging
from typing import Any
from urllib.parse import unquote_plus

from uvicorn.config import LOGGING_CONFIG

REDACTED = "REDACTED"
CREDENTIAL_PARAMS = frozenset({"auth", "authorization", "code", "key", "otp", "pin", "sig"})
CREDENTIAL_WORDS = ("token", "key", "secret", "password", "passwd", "session", "signature")
_TARGET_ARG = 2  # uvicorn's access record: (client, method, path with query, version, status)


def _is_credential(name: str) -> bool:
    clean = unquote_plus(name).strip().lower().replace("-", "_")
    return clean in CREDENTIAL_PARAMS or any(word in clean for word in CREDENTIAL_WORDS)


def redact_target(target: str) -> str:
    """``target`` (a path with its query string) with the credentials' values redacted."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    parts = []
    for part in query.split("&"):
        name, equals, _value = part.partition("=")
        parts.append(f"{name}={REDACTED}" if equals and _is_credential(name) else part)
    return f"{path}?{'&'.join(parts)}"


class RedactCredentials(logging.Filter):
    """Redacts credentials in the request target of uvicorn's access records."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > _TARGET_ARG:
            target = args[_TARGET_ARG]
            if isinstance(target, str):
                record.args = (*args[:_TARGET_ARG], redact_target(target), *args[_TARGET_ARG + 1 :])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, with ``RedactCredentials`` on the access handler
    (each worker process applies it when it starts)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_credentials"] = {"()": f"{__name__}.RedactCredentials"}
    config["handlers"]["access"]["filters"] = ["redact_credentials"]
    return config
