"""Card numbers (PANs): parsing, the Luhn check, masking, generation.

``CardNumber`` holds the digits but never prints them: ``str()``, ``repr()`` and f-strings show the
masked form (first 6, last 4), so a card number that reaches a log line, an exception message or
a debugger is masked by construction. The digits are read only through ``.reveal()``, which is
easy to search for in review.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum

from flashpay.errors import RefusedError

PAN_DIGITS_MIN = 13
PAN_DIGITS_MAX = 19


class CardNumberRefusal(StrEnum):
    """Why a text is not a card number, in the order ``CardNumber.parse`` checks."""

    NOT_DIGITS = "not_digits"
    BAD_LENGTH = "bad_length"
    LUHN = "luhn"


class CardNumberError(RefusedError):
    """Not a card number: ``reason`` says which check failed. The API answers every one as
    ``invalid_card_number`` (a 422) with this message: the reason is for the caller's logs and
    tests, the API code names the field."""

    reason: CardNumberRefusal


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload`` + digit pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(digits: str) -> bool:
    return len(digits) >= 2 and luhn_check_digit(digits[:-1]) == digits[-1]


@dataclass(frozen=True, slots=True)
class CardNumber:
    _digits: str

    @classmethod
    def parse(cls, text: str) -> CardNumber:
        """Digits with optional spaces or dashes between groups; 13–19 digits; Luhn-valid."""
        digits = text.replace(" ", "").replace("-", "")
        if not (digits.isascii() and digits.isdigit()):
            raise CardNumberError(CardNumberRefusal.NOT_DIGITS, "a card number is digits only")
        if not PAN_DIGITS_MIN <= len(digits) <= PAN_DIGITS_MAX:
            raise CardNumberError(
                CardNumberRefusal.BAD_LENGTH,
                f"a card number has {PAN_DIGITS_MIN}–{PAN_DIGITS_MAX} digits",
            )
        if not luhn_ok(digits):
            raise CardNumberError(CardNumberRefusal.LUHN, "the card number fails the Luhn check")
        return cls(digits)

    def reveal(self) -> str:
        """The full digits, for encryption and for the issuer's own checks only."""
        return self._digits

    @property
    def first6(self) -> str:
        return self._digits[:6]

    @property
    def last4(self) -> str:
        return self._digits[-4:]

    @property
    def masked(self) -> str:
        return f"{self.first6}{'*' * (len(self._digits) - 10)}{self.last4}"

    def prefixes(self) -> list[str]:
        """The 8-, 7- and 6-digit prefixes, longest first (BIN routing is longest-prefix)."""
        return [self._digits[:n] for n in (8, 7, 6)]

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"CardNumber({self.masked})"


def generate_card_number(prefix: str, length: int = 16) -> CardNumber:
    """A random Luhn-valid number in the range ``prefix`` (for issuers and network tokens)."""
    if not PAN_DIGITS_MIN <= length <= PAN_DIGITS_MAX or len(prefix) >= length:
        raise ValueError("bad length for a card number")
    digits = length - len(prefix) - 1  # drawn at random, then the Luhn check digit
    drawn = f"{secrets.randbelow(10**digits):0{digits}d}" if digits else ""  # uniform
    body = prefix + drawn
    return CardNumber(body + luhn_check_digit(body))
