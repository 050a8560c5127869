"""Campaign definitions: a good one reads back equal; each bad one is a clear, named rejection."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from flashpay.promotions import (
    AmountOff,
    CardKind,
    FunderKind,
    PromotionError,
    PromotionRefusal,
    RandomOff,
    Stacking,
    Window,
    parse_campaign,
    to_definition,
)

R = PromotionRefusal

GOOD = tomllib.loads(
    """
name = "Bank of China: ¥10 off ¥50 at supermarkets"
funder = { kind = "issuer", id = 3 }
starts_at = 2026-12-01T00:00:00+08:00
ends_at = 2027-01-01T00:00:00+08:00
windows = [{ start = "11:00", end = "13:30" }]
priority = 10

[eligibility]
scenes = ["supermarket"]
card_kinds = ["debit"]
bin_prefixes = ["621661"]

[benefit]
kind = "amount_off"
off_minor = 1000
threshold_minor = 5000

[caps]
user_per_day = 1

[budget]
money_minor = 100000
uses = 100

[coupon]
valid_seconds = 86400
"""
)


def test_a_good_definition() -> None:
    spec = parse_campaign(GOOD)
    assert spec.funder.kind is FunderKind.ISSUER
    assert spec.funder.id == 3
    assert spec.benefit == AmountOff(1000, 5000)
    assert spec.windows == (Window(660, 810),)
    assert spec.eligibility.card_kinds == (CardKind.DEBIT,)
    assert spec.stacking is Stacking.EXCLUSIVE
    assert spec.ends_at_ns - spec.starts_at_ns == 31 * 86_400 * 1_000_000_000
    assert parse_campaign(to_definition(spec)) == spec


def with_(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target.setdefault(key, {})
    if value is None:
        target.pop(last, None)
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "reason", "field"),
    [
        ("name", None, R.INVALID_DEFINITION, "name"),
        ("funder.kind", "bank", R.INVALID_DEFINITION, "funder.kind"),
        ("eligibility.scenes", ["casino"], R.INVALID_DEFINITION, "eligibility.scenes[0]"),
        ("ends_at", "2026-11-30T00:00:00+08:00", R.INVALID_PERIOD, "ends_at"),
        ("windows", [{"start": "13:30", "end": "11:00"}], R.INVALID_WINDOW, "windows[0].end"),
        ("windows", [{"start": "25:00", "end": "26:00"}], R.INVALID_WINDOW, "windows[0].start"),
        ("benefit.off_minor", 0, R.INVALID_BENEFIT, "benefit"),
        ("benefit.off_minor", -100, R.INVALID_BENEFIT, "benefit"),
        ("benefit", {"kind": "percent_off", "rate_bps": 10_001}, R.INVALID_BENEFIT, "benefit"),
        (
            "benefit",
            {"kind": "random_off", "low_minor": 500, "high_minor": 100},
            R.INVALID_BENEFIT,
            "benefit",
        ),
        ("benefit", {"kind": "cashback"}, R.INVALID_DEFINITION, "benefit.kind"),
        ("caps.user_per_day", 0, R.INVALID_CAP, "caps.user_per_day"),
        ("budget", {}, R.INVALID_BUDGET, "budget"),
        ("budget.money_minor", -1, R.INVALID_BUDGET, "budget.money_minor"),
        ("benefit.off_minor", "10", R.INVALID_DEFINITION, "benefit.off_minor"),
        ("eligibility.bin_prefixes", ["62x"], R.INVALID_DEFINITION, "eligibility.bin_prefixes[0]"),
        ("eligibility.card_kinds", "debit", R.INVALID_DEFINITION, "eligibility.card_kinds"),
        ("windows", [{"start": "11:00"}], R.INVALID_WINDOW, "windows[0].end"),
    ],
)
def test_bad_definitions_are_named(path: str, value: Any, reason: R, field: str) -> None:
    with pytest.raises(PromotionError) as refused:
        parse_campaign(with_(path, value))
    assert refused.value.reason is reason
    assert refused.value.code == reason.value
    assert refused.value.details["path"] == field


def test_a_fixed_price_cannot_stack() -> None:
    data = with_("benefit", {"kind": "fixed_price", "price_minor": 100})
    data["stacking"] = "stackable"
    with pytest.raises(PromotionError) as refused:
        parse_campaign(data)
    assert refused.value.reason is R.FIXED_PRICE_NOT_STACKABLE


def test_a_random_benefit_reads_back() -> None:
    spec = parse_campaign(
        with_("benefit", {"kind": "random_off", "low_minor": 100, "high_minor": 500})
    )
    assert spec.benefit == RandomOff(100, 500)
    assert parse_campaign(to_definition(spec)) == spec
