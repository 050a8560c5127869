"""Ids for accounts and transfers: time-ordered random ids, and deterministic derived ids.

A transfer id is its idempotency key: a client that retries must send the same id. ``new_id``
gives a fresh id whose high bits are milliseconds (so ids sort roughly by creation, which keeps
B-tree inserts local); ``derive_id`` gives the same id for the same (namespace, key) every time,
so a payment can derive its transfers' ids from its own id and a retry can never post twice.
Both fit a signed 64-bit ``BIGINT`` (1 .. 2**63-1).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

_RANDOM_BITS = 22
_MASK_63 = (1 << 63) - 1
_last = 0
_last_lock = threading.Lock()


def new_id() -> int:
    """A fresh id: 41 bits of milliseconds since the epoch, 22 random bits — and within one
    process always greater than the last one (the next value when the random draw is not), so
    a batch that takes a thousand ids in one millisecond cannot draw the same one twice (22
    random bits alone collide within a thousand draws about once in nine)."""
    global _last
    millis = time.time_ns() // 1_000_000
    value = ((millis << _RANDOM_BITS) | secrets.randbits(_RANDOM_BITS)) & _MASK_63
    with _last_lock:
        if value <= _last:
            value = _last + 1
        _last = value
    return value or 1


def derive_id(namespace: bytes | str, key: str) -> int:
    """The same 63-bit id for the same (namespace, key), never 0.

    ``namespace`` names the kind of record the ids are derived from (``b"payment"``); a ``str``
    namespace is the same as its UTF-8 bytes. The id is the first 8 bytes of
    SHA-256(namespace || 0x00 || key), big-endian, with the top bit cleared."""
    prefix = namespace.encode() if isinstance(namespace, str) else bytes(namespace)
    digest = hashlib.sha256(prefix + b"\x00" + key.encode()).digest()
    value = int.from_bytes(digest[:8], "big") & _MASK_63
    return value or 1
