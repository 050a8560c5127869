"""The idempotency request-hash key of ``flashpay serve``.

(The per-worker pool size, once here too, is the platform's: ``flashpay.platform.POOL_SIZE``.)

The idempotency request-hash key (HMAC-SHA256, 32 bytes) must be the same in every worker and every
machine serving one database, or a retry landing on another worker would look like a reused key.
It comes from ``$FLASHPAY_API_HASH_KEY`` (64 hex digits; set it in production), else from the file
``api-request-hash.key`` in the data directory, created (mode 0600) on first start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flashpay import config

HASH_KEY_ENV = "FLASHPAY_API_HASH_KEY"
HASH_KEY_FILE_NAME = "api-request-hash.key"
HASH_KEY_BYTES = 32


def request_hash_key(data_directory: Path | None = None) -> bytes:
    """The shared idempotency hash key: ``$FLASHPAY_API_HASH_KEY``, else the data dir's key file."""
    from_env = os.environ.get(HASH_KEY_ENV)
    if from_env:
        key = bytes.fromhex(from_env)
        if len(key) != HASH_KEY_BYTES:
            raise ValueError(f"{HASH_KEY_ENV} must be {HASH_KEY_BYTES * 2} hex digits")
        return key
    path = config.data_dir(data_directory) / HASH_KEY_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(HASH_KEY_BYTES))
    key = bytes.fromhex(path.read_text().strip())
    if len(key) != HASH_KEY_BYTES:
        raise ValueError(f"{path} does not hold a {HASH_KEY_BYTES}-byte hex key")
    return key
