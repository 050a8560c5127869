"""Cursor pagination: an opaque cursor and a bounded page size.

A list endpoint takes ``limit`` (1..``PAGE_SIZE_MAX``, default ``PAGE_SIZE_DEFAULT``) and
``cursor`` (from the previous page's ``next_cursor``) and returns ``{"items": [...],
"next_cursor": "..." | null}``. The cursor is URL-safe Base64 of a small JSON object holding the
position after the last item (e.g. ``{"after": 1234}``, a keyset on a unique, ordered id); clients
must treat it as opaque. A cursor does not grant access: every page query filters by the caller
again, so a forged cursor can only skip within the caller's own data.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from flashpay.api.errors import ApiError
from flashpay.api.types import ID_MAX

PAGE_SIZE_MAX = 100
PAGE_SIZE_DEFAULT = 20
CURSOR_CHARS_MAX = 200

LimitQuery = Annotated[
    int, Query(ge=1, le=PAGE_SIZE_MAX, description=f"Page size, at most {PAGE_SIZE_MAX}.")
]
CursorQuery = Annotated[
    str | None,
    Query(max_length=CURSOR_CHARS_MAX, description="The previous page's next_cursor."),
]

ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None


def encode_cursor(position: dict[str, int | str]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position in a cursor, ``None`` for the first page; 422 ``invalid_cursor`` if garbled."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _invalid_cursor() from exc
    if not isinstance(position, dict):
        raise _invalid_cursor()
    return position


def after_id(cursor: str | None) -> int:
    """The keyset position of a cursor made by ``encode_cursor({"after": id})``; 0 for page one.
    An id is a 63-bit integer: anything else is 422 ``invalid_cursor``."""
    position = decode_cursor(cursor)
    if position is None:
        return 0
    after = position.get("after")
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= ID_MAX:
        raise _invalid_cursor()
    return after


def before_id(cursor: str | None) -> int | None:
    """The keyset position of a cursor made by ``encode_cursor({"before": id})`` (newest-first
    lists); ``None`` for page one. An id is a positive 63-bit integer: anything else is 422
    ``invalid_cursor``."""
    position = decode_cursor(cursor)
    before = position.get("before") if position else None
    if before is None:
        return None
    if not isinstance(before, int) or isinstance(before, bool) or not 1 <= before <= ID_MAX:
        raise _invalid_cursor()
    return before


def _invalid_cursor() -> ApiError:
    return ApiError(status_code=422, code="invalid_cursor", message="the cursor is not valid")
