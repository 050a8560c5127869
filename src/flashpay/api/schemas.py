"""What every domain's request and response shapes share: the ``Strict`` request base and the
decimal text of an amount.

The shapes themselves live beside their domains (``flashpay.wallet.schemas``,
``flashpay.payments.schemas``, ``flashpay.cards.schemas``, ...), so this module knows no domain
(the HTTP kernel imports none; docs/reference/architecture.md). The conventions hold for all of
them: money is a decimal *string* in requests and responses (``"12.34"``) with its currency, plus
the integer minor units in responses (``amount_minor``): never a JSON number, which clients would
read as a float. Card numbers appear only masked; a request field that carries one is named
``card_number`` and is never echoed, logged or stored in clear.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from flashpay.money import Money


class Strict(BaseModel):
    """A request body: unknown fields refused, and every field only its own JSON type (strict:
    no ``true`` for an int, no ``"1"`` for an id, no number for a decimal-text amount)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


def money_text(amount_minor: int, currency: str = "CNY") -> str:
    return Money.of(amount_minor, currency).decimal_text()
