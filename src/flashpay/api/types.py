"""Field types shared by every router: ids and amounts, bounded where they are parsed.

Every id the API takes — in a path, a query, a body or a cursor — is a positive 63-bit integer
(the tables' ``BIGINT``); anything larger cannot name a row, and passed on it would overflow the
database driver (a 500). So ``IdPath``, ``IdQuery`` and ``IdField`` bound it at the edge, where a
bad id is a 422 ``validation_error`` like any malformed field. ``IdField`` is strict: a JSON
``true`` or ``"1"`` is not card 1. Amounts travel as decimal text (``"12.34"``) and go through
``amount_minor``, which bounds them by ``AMOUNT_MAX`` (the payments' own bound) and answers 422
``invalid_amount`` for anything else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

from flashpay.api.errors import ApiError
from flashpay.money import Money, MoneyError

ID_MAX = 2**63 - 1  # BIGINT
AMOUNT_MAX = 10**12  # minor units (¥10,000,000,000.00); as payments.receipts.AMOUNT_MAX

IdPath = Annotated[int, Path(ge=1, le=ID_MAX, description="A positive 63-bit id.")]
IdQuery = Annotated[int | None, Query(ge=1, le=ID_MAX, description="A positive 63-bit id.")]
IdField = Annotated[int, Field(strict=True, ge=1, le=ID_MAX, description="A positive 63-bit id.")]


def money(text: str, currency: str = "CNY") -> Money:
    """Decimal ``text`` in ``currency``; 422 ``invalid_amount`` when it is not an amount (or is
    negative, or the currency is unknown) or exceeds ``AMOUNT_MAX``."""
    try:
        parsed = Money.parse(text, currency)
    except MoneyError as exc:
        raise ApiError(status_code=422, code="invalid_amount", message=str(exc)) from exc
    if parsed.amount_minor > AMOUNT_MAX:
        most = Money.of(AMOUNT_MAX, parsed.currency).decimal_text()
        raise ApiError(
            status_code=422, code="invalid_amount", message=f"an amount is at most {most}"
        )
    return parsed


def amount_minor(text: str, currency: str = "CNY") -> int:
    """``money(text, currency)`` in minor units."""
    return money(text, currency).amount_minor
