"""Money: an exact amount of one currency, as an ``int`` of minor units (ISO 4217).

``Money(amount_minor=2372, currency=CNY)`` is ¥23.72. There is no float anywhere: text is parsed
with ``Decimal`` at the edge (``Money.parse("23.72", "CNY")``) and checked against the currency's
minor-unit exponent; arithmetic stays in ints and refuses to mix currencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flashpay.errors import FlashpayError

__all__ = [
    "CNY",
    "CURRENCIES",
    "EUR",
    "HKD",
    "JPY",
    "USD",
    "Currency",
    "CurrencyMismatchError",
    "InvalidAmountError",
    "Money",
    "MoneyError",
    "NegativeAmountError",
    "TooManyDecimalsError",
    "UnknownCurrencyError",
    "currency",
]

AMOUNT_TEXT_CHARS_MAX = 32


class MoneyError(FlashpayError, ValueError):
    """Base of every error this module raises."""


class UnknownCurrencyError(MoneyError):
    """The code is not an ISO 4217 currency flashpay knows."""


class InvalidAmountError(MoneyError):
    """The text is not a decimal amount ("23.72")."""


class TooManyDecimalsError(MoneyError):
    """More decimal places than the currency's minor unit allows (e.g. "1.234" CNY, "1.5" JPY)."""


class NegativeAmountError(MoneyError):
    """A negative amount where only zero or more is allowed."""


class CurrencyMismatchError(MoneyError):
    """Arithmetic or comparison between two different currencies."""


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: alpha code, numeric code (the ledger id), minor-unit exponent."""

    code: str
    numeric: int
    exponent: int
    symbol: str

    def __str__(self) -> str:
        return self.code


CNY = Currency("CNY", 156, 2, "¥")
HKD = Currency("HKD", 344, 2, "HK$")
USD = Currency("USD", 840, 2, "$")
EUR = Currency("EUR", 978, 2, "€")
JPY = Currency("JPY", 392, 0, "JP¥")
GBP = Currency("GBP", 826, 2, "£")
SGD = Currency("SGD", 702, 2, "S$")
KRW = Currency("KRW", 410, 0, "₩")
MOP = Currency("MOP", 446, 2, "MOP$")

CURRENCIES: dict[str, Currency] = {c.code: c for c in (CNY, HKD, USD, EUR, JPY, GBP, SGD, KRW, MOP)}
_BY_NUMERIC: dict[int, Currency] = {c.numeric: c for c in CURRENCIES.values()}


def currency(code: str | int) -> Currency:
    """The currency for an alpha code ("CNY", any case) or a numeric code (156 or "156")."""
    if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
        found = _BY_NUMERIC.get(int(code))
    else:
        found = CURRENCIES.get(code.strip().upper())
    if found is None:
        raise UnknownCurrencyError(f"unknown currency {code!r}")
    return found


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount: ``amount_minor`` minor units (fen for CNY) of ``currency``."""

    amount_minor: int
    currency: Currency

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise InvalidAmountError(f"amount_minor must be an int, not {self.amount_minor!r}")

    @classmethod
    def parse(
        cls, text: str, currency_code: str | Currency, *, allow_negative: bool = False
    ) -> Money:
        """Parse "23.72" (or "23", "0.5") in ``currency_code``; exact, no float.

        Raises ``InvalidAmountError`` for anything but plain decimal digits with an optional sign
        and point, ``TooManyDecimalsError`` past the currency's exponent, ``NegativeAmountError``
        for a negative amount unless ``allow_negative``, ``UnknownCurrencyError``.
        """
        cur = currency_code if isinstance(currency_code, Currency) else currency(currency_code)
        raw = text.strip()
        if not raw or len(raw) > AMOUNT_TEXT_CHARS_MAX:
            raise InvalidAmountError(f"not an amount: {text!r}")
        body = raw[1:] if raw[0] in "+-" else raw
        whole, _, fraction = body.partition(".")
        if not (whole or fraction) or not (whole + fraction).isdigit() or not whole.isascii():
            raise InvalidAmountError(f"not an amount: {text!r}")
        if not (whole + fraction).isascii():
            raise InvalidAmountError(f"not an amount: {text!r}")
        if len(fraction.rstrip("0")) > cur.exponent:
            raise TooManyDecimalsError(
                f"{text!r} has more than {cur.exponent} decimal places for {cur.code}"
            )
        try:
            value = Decimal(raw)
        except InvalidOperation as exc:  # pragma: no cover - guarded by the checks above
            raise InvalidAmountError(f"not an amount: {text!r}") from exc
        minor = int(value.scaleb(cur.exponent))
        if minor < 0 and not allow_negative:
            raise NegativeAmountError(f"negative amount {text!r} not allowed")
        return cls(minor, cur)

    @classmethod
    def of(cls, amount_minor: int, currency_code: str | Currency = "CNY") -> Money:
        cur = currency_code if isinstance(currency_code, Currency) else currency(currency_code)
        return cls(amount_minor, cur)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(f"{self.currency.code} vs {other.currency.code}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor >= other.amount_minor

    def decimal_text(self) -> str:
        """The amount as plain decimal text with exactly the currency's decimals: "23.72"."""
        sign = "-" if self.amount_minor < 0 else ""
        digits = abs(self.amount_minor)
        exp = self.currency.exponent
        if exp == 0:
            return f"{sign}{digits}"
        whole, fraction = divmod(digits, 10**exp)
        return f"{sign}{whole}.{fraction:0{exp}d}"

    def format(self, *, symbol: bool = True, grouping: bool = True) -> str:
        """Display text: "¥1,234.50" (``symbol``) or "CNY 1,234.50"."""
        text = self.decimal_text()
        sign = "-" if text.startswith("-") else ""
        text = text.lstrip("-")
        if grouping:
            whole, dot, fraction = text.partition(".")
            text = f"{int(whole):,}{dot}{fraction}"
        return (
            f"{sign}{self.currency.symbol}{text}"
            if symbol
            else f"{sign}{self.currency.code} {text}"
        )

    def __str__(self) -> str:
        return self.format(symbol=False, grouping=False)
