"""Money: exact parsing and formatting, and the errors for bad input."""

from __future__ import annotations

import pytest

from flashpay.money import (
    CNY,
    JPY,
    USD,
    CurrencyMismatchError,
    InvalidAmountError,
    Money,
    NegativeAmountError,
    TooManyDecimalsError,
    UnknownCurrencyError,
    currency,
)


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [
        ("23.72", "CNY", 2372),
        ("23.7", "CNY", 2370),
        ("23", "CNY", 2300),
        ("0.01", "CNY", 1),
        ("1000000.00", "HKD", 100_000_000),
        ("1500", "JPY", 1500),
        ("1500.0", "JPY", 1500),
        (" 5.5 ", "usd", 550),
        ("0.10", "EUR", 10),
        (".5", "CNY", 50),
    ],
)
def test_parse(text, code, minor):
    assert Money.parse(text, code).amount_minor == minor


@pytest.mark.parametrize(
    ("text", "code", "error"),
    [
        ("1.234", "CNY", TooManyDecimalsError),
        ("1.5", "JPY", TooManyDecimalsError),
        ("-1.00", "CNY", NegativeAmountError),
        ("abc", "CNY", InvalidAmountError),
        ("", "CNY", InvalidAmountError),
        ("1e5", "CNY", InvalidAmountError),
        ("1,000", "CNY", InvalidAmountError),
        ("NaN", "CNY", InvalidAmountError),
        ("١٢", "CNY", InvalidAmountError),
        ("1.00", "XYZ", UnknownCurrencyError),
        ("9" * 40, "CNY", InvalidAmountError),
    ],
)
def test_parse_rejects(text, code, error):
    with pytest.raises(error):
        Money.parse(text, code)


def test_negative_allowed_when_asked():
    assert Money.parse("-1.50", "CNY", allow_negative=True).amount_minor == -150


def test_format():
    assert Money(123456, CNY).format() == "¥1,234.56"
    assert Money(123456, CNY).format(symbol=False) == "CNY 1,234.56"
    assert str(Money(5, CNY)) == "CNY 0.05"
    assert Money(-5, CNY).format() == "-¥0.05"
    assert Money(1500, JPY).format() == "JP¥1,500"


def test_arithmetic_refuses_mixed_currencies():
    assert Money(100, CNY) + Money(50, CNY) == Money(150, CNY)
    with pytest.raises(CurrencyMismatchError):
        _ = Money(100, CNY) + Money(1, USD)
    with pytest.raises(CurrencyMismatchError):
        _ = Money(100, CNY) < Money(1, USD)


def test_no_float_amounts():
    with pytest.raises(InvalidAmountError):
        Money(1.5, CNY)  # type: ignore[arg-type]


def test_currency_lookup():
    assert currency("cny") is CNY
    assert currency(156) is CNY
    assert currency("392") is JPY
    with pytest.raises(UnknownCurrencyError):
        currency(999)
