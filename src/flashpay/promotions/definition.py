"""A campaign definition from TOML (the CLI) or JSON (the API later): checked, or refused by name.

``parse_campaign(mapping)`` returns a ``CampaignSpec`` or raises ``PromotionError`` whose reason
is the first failing check (in ``PromotionRefusal`` order) and whose ``details["path"]`` names
the field (``benefit.rate_bps``)::

    name = "Bank of China: ¥10 off ¥50 at supermarkets"
    funder = { kind = "issuer", id = 3 }
    starts_at = 2026-12-01T00:00:00+08:00        # TOML datetime, or an ISO 8601 string
    ends_at = 2027-01-01T00:00:00+08:00
    windows = [{ start = "11:00", end = "13:30" }]   # China time, optional
    priority = 10
    stacking = "exclusive"                       # or "stackable"

    [eligibility]                                # every list optional: empty means any
    scenes = ["supermarket"]
    merchant_ids = [], mccs = ["5411"], cities = ["Beijing"]
    issuer_ids = [3], bin_prefixes = ["621661"]
    card_kinds = ["debit"], modes = ["scan", "code"]
    new_user = "first_ever"                      # or "first_in_scene"
    min_amount_minor = 5000

    [benefit]                                    # kind = amount_off | percent_off | random_off
    kind = "amount_off"                          #        | fixed_price
    off_minor = 1000
    threshold_minor = 5000

    [caps]
    user_per_day = 1, user_per_campaign = 3, card_per_campaign = 3

    [budget]
    money_minor = 100000, uses = 100

    [coupon]                                     # optional: the benefit needs a coupon
    valid_seconds = 604800, claimable = true, coupons_max = 500
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

from flashpay.clock import NS_PER_SECOND
from flashpay.promotions.benefits import (
    AmountOff,
    Benefit,
    FixedPrice,
    PercentOff,
    RandomOff,
    invalid_reason,
)
from flashpay.promotions.campaigns import (
    LIST_ITEMS_MAX,
    MINUTES_PER_DAY,
    NAME_CHARS_MAX,
    PRIORITY_MAX,
    WINDOWS_MAX,
    Budget,
    CampaignSpec,
    Caps,
    CardKind,
    CouponPolicy,
    Eligibility,
    Funder,
    FunderKind,
    NewUser,
    PaymentMode,
    Stacking,
    Window,
    hhmm,
)
from flashpay.promotions.context import CHINA_TIME
from flashpay.promotions.errors import PromotionError
from flashpay.promotions.errors import PromotionRefusal as R

MCC = re.compile(r"^[0-9]{4}$")  # ISO 18245
BIN_PREFIX = re.compile(r"^[0-9]{2,8}$")
HHMM = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")
COUPON_SECONDS_MAX = 366 * 86_400
SCENES = (
    "supermarket",
    "convenience_store",
    "campus",
    "canteen",
    "bus",
    "subway",
    "food_market",
    "parking",
    "hospital",
    "vending",
)  # flashpay.merchants.service.Scene; plain strings here, the package imports no other domain
E = TypeVar("E")
CHINA_TZ = timezone(CHINA_TIME)


def _refuse(reason: R, path: str, message: str) -> PromotionError:
    return PromotionError(reason, f"{path}: {message}", details={"path": path})


def _get(data: Mapping[str, Any], key: str, kind: type, path: str, default: Any = ...) -> Any:
    if key not in data:
        if default is ...:
            raise _refuse(R.INVALID_DEFINITION, f"{path}{key}", "is required")
        return default
    value = data[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise _refuse(R.INVALID_DEFINITION, f"{path}{key}", "must be an integer")
    if not isinstance(value, kind):
        raise _refuse(R.INVALID_DEFINITION, f"{path}{key}", f"must be a {kind.__name__}")
    return value


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _get(data, key, dict, "", {})
    return value  # type: ignore[no-any-return]


def _enum(enum: type[E], value: object, path: str) -> E:
    try:
        return enum(value)  # type: ignore[call-arg]
    except ValueError as exc:
        raise _refuse(R.INVALID_DEFINITION, path, f"unknown value {value!r}") from exc


def _instant_ns(value: object, path: str) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise _refuse(R.INVALID_DEFINITION, path, "not an ISO 8601 date-time") from exc
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise _refuse(R.INVALID_DEFINITION, path, "must be a date-time with an offset")
    return int(value.timestamp()) * NS_PER_SECOND


def _minute(value: object, path: str) -> int:
    match = HHMM.match(value) if isinstance(value, str) else None
    if match is None:
        raise _refuse(R.INVALID_WINDOW, path, "must be HH:MM (00:00 to 24:00)")
    minute = int(match[1]) * 60 + int(match[2])
    if minute > MINUTES_PER_DAY:
        raise _refuse(R.INVALID_WINDOW, path, "must be at most 24:00")
    return minute


def _list(data: Mapping[str, Any], key: str, kind: type, path: str) -> tuple[Any, ...]:
    items = _get(data, key, list, path, [])
    if len(items) > LIST_ITEMS_MAX:
        raise _refuse(R.INVALID_DEFINITION, f"{path}{key}", f"at most {LIST_ITEMS_MAX} items")
    for index, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, kind):
            raise _refuse(
                R.INVALID_DEFINITION, f"{path}{key}[{index}]", f"must be a {kind.__name__}"
            )
    return tuple(items)


def _eligibility(data: Mapping[str, Any]) -> Eligibility:
    p = "eligibility."
    scenes = _list(data, "scenes", str, p)
    for index, scene in enumerate(scenes):
        if scene not in SCENES:
            raise _refuse(R.INVALID_DEFINITION, f"{p}scenes[{index}]", f"unknown scene {scene!r}")
    for key, pattern in (("mccs", MCC), ("bin_prefixes", BIN_PREFIX)):
        for index, value in enumerate(_list(data, key, str, p)):
            if not pattern.match(value):
                raise _refuse(R.INVALID_DEFINITION, f"{p}{key}[{index}]", f"bad value {value!r}")
    new_user = data.get("new_user")
    return Eligibility(
        scenes=scenes,
        merchant_ids=_list(data, "merchant_ids", int, p),
        mccs=_list(data, "mccs", str, p),
        cities=_list(data, "cities", str, p),
        issuer_ids=_list(data, "issuer_ids", int, p),
        bin_prefixes=_list(data, "bin_prefixes", str, p),
        card_kinds=tuple(
            _enum(CardKind, v, f"{p}card_kinds") for v in _list(data, "card_kinds", str, p)
        ),
        modes=tuple(_enum(PaymentMode, v, f"{p}modes") for v in _list(data, "modes", str, p)),
        new_user=None if new_user is None else _enum(NewUser, new_user, f"{p}new_user"),
        min_amount_minor=_get(data, "min_amount_minor", int, p, 0),
    )


def _benefit(data: Mapping[str, Any]) -> Benefit:
    p = "benefit."
    kind = _get(data, "kind", str, p)
    benefit: Benefit
    if kind == "amount_off":
        benefit = AmountOff(
            off_minor=_get(data, "off_minor", int, p),
            threshold_minor=_get(data, "threshold_minor", int, p, 0),
        )
    elif kind == "percent_off":
        benefit = PercentOff(
            rate_bps=_get(data, "rate_bps", int, p),
            cap_minor=_get(data, "cap_minor", int, p, None),
        )
    elif kind == "random_off":
        benefit = RandomOff(
            low_minor=_get(data, "low_minor", int, p), high_minor=_get(data, "high_minor", int, p)
        )
    elif kind == "fixed_price":
        benefit = FixedPrice(price_minor=_get(data, "price_minor", int, p))
    else:
        raise _refuse(R.INVALID_DEFINITION, f"{p}kind", f"unknown benefit kind {kind!r}")
    problem = invalid_reason(benefit)
    if problem is not None:
        raise _refuse(R.INVALID_BENEFIT, "benefit", problem)
    return benefit


def _positive(data: Mapping[str, Any], key: str, path: str, reason: R) -> int | None:
    value: int | None = _get(data, key, int, path, None)
    if value is not None and value < 1:
        raise _refuse(reason, f"{path}{key}", "must be at least 1")
    return value


def parse_campaign(data: Mapping[str, Any]) -> CampaignSpec:
    """Check a definition completely; raise ``PromotionError`` naming the first bad field."""
    name = _get(data, "name", str, "")
    if not 0 < len(name) <= NAME_CHARS_MAX:
        raise _refuse(R.INVALID_DEFINITION, "name", f"1 to {NAME_CHARS_MAX} characters")
    funder_data = _table(data, "funder")
    funder = Funder(
        kind=_enum(FunderKind, _get(funder_data, "kind", str, "funder."), "funder.kind"),
        id=_get(funder_data, "id", int, "funder."),
    )
    priority = _get(data, "priority", int, "", 0)
    if not 0 <= priority <= PRIORITY_MAX:
        raise _refuse(R.INVALID_DEFINITION, "priority", f"must be in 0..{PRIORITY_MAX}")
    stacking = _enum(Stacking, data.get("stacking", "exclusive"), "stacking")
    eligibility = _eligibility(_table(data, "eligibility"))
    if eligibility.min_amount_minor < 0:
        raise _refuse(R.INVALID_DEFINITION, "eligibility.min_amount_minor", "must not be negative")

    starts_at_ns = _instant_ns(_get(data, "starts_at", object, ""), "starts_at")
    ends_at_ns = _instant_ns(_get(data, "ends_at", object, ""), "ends_at")
    if ends_at_ns <= starts_at_ns:
        raise _refuse(R.INVALID_PERIOD, "ends_at", "must be after starts_at")
    windows_data = _get(data, "windows", list, "", [])
    if len(windows_data) > WINDOWS_MAX:
        raise _refuse(R.INVALID_WINDOW, "windows", f"at most {WINDOWS_MAX} windows")
    windows: list[Window] = []
    for index, item in enumerate(windows_data):
        path = f"windows[{index}]"
        if not isinstance(item, dict):
            raise _refuse(R.INVALID_WINDOW, path, "must be a table with start and end")
        window = Window(
            _minute(item.get("start"), f"{path}.start"), _minute(item.get("end"), f"{path}.end")
        )
        if window.end_minute <= window.start_minute:
            raise _refuse(R.INVALID_WINDOW, f"{path}.end", "must be after start (same day)")
        windows.append(window)

    benefit = _benefit(_table(data, "benefit"))
    caps_data = _table(data, "caps")
    caps = Caps(
        user_per_day=_positive(caps_data, "user_per_day", "caps.", R.INVALID_CAP),
        user_per_campaign=_positive(caps_data, "user_per_campaign", "caps.", R.INVALID_CAP),
        card_per_campaign=_positive(caps_data, "card_per_campaign", "caps.", R.INVALID_CAP),
    )
    budget_data = _table(data, "budget")
    budget = Budget(
        money_minor=_positive(budget_data, "money_minor", "budget.", R.INVALID_BUDGET),
        uses=_positive(budget_data, "uses", "budget.", R.INVALID_BUDGET),
    )
    if budget.money_minor is None and budget.uses is None:
        raise _refuse(R.INVALID_BUDGET, "budget", "set money_minor, uses or both")
    if stacking is Stacking.STACKABLE and isinstance(benefit, FixedPrice):
        raise _refuse(R.FIXED_PRICE_NOT_STACKABLE, "stacking", "a fixed price stands alone")

    coupon: CouponPolicy | None = None
    if "coupon" in data:
        coupon_data = _table(data, "coupon")
        valid_seconds = _get(coupon_data, "valid_seconds", int, "coupon.")
        if not 0 < valid_seconds <= COUPON_SECONDS_MAX:
            raise _refuse(R.INVALID_DEFINITION, "coupon.valid_seconds", f"1..{COUPON_SECONDS_MAX}")
        coupon = CouponPolicy(
            valid_seconds=valid_seconds,
            claimable=_get(coupon_data, "claimable", bool, "coupon.", True),
            coupons_max=_positive(coupon_data, "coupons_max", "coupon.", R.INVALID_DEFINITION),
        )
    return CampaignSpec(
        name=name,
        funder=funder,
        starts_at_ns=starts_at_ns,
        ends_at_ns=ends_at_ns,
        benefit=benefit,
        budget=budget,
        windows=tuple(windows),
        eligibility=eligibility,
        caps=caps,
        priority=priority,
        stacking=stacking,
        coupon=coupon,
    )


def _iso(at_ns: int) -> str:
    return datetime.fromtimestamp(at_ns // NS_PER_SECOND, CHINA_TZ).isoformat()


def _benefit_fields(benefit: Benefit) -> dict[str, Any]:
    match benefit:
        case AmountOff(off_minor=off, threshold_minor=threshold):
            return {"kind": "amount_off", "off_minor": off, "threshold_minor": threshold}
        case PercentOff(rate_bps=rate, cap_minor=cap):
            fields: dict[str, Any] = {"kind": "percent_off", "rate_bps": rate}
            return fields if cap is None else {**fields, "cap_minor": cap}
        case RandomOff(low_minor=low, high_minor=high):
            return {"kind": "random_off", "low_minor": low, "high_minor": high}
        case FixedPrice(price_minor=price):
            return {"kind": "fixed_price", "price_minor": price}


def _without_none(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def to_definition(spec: CampaignSpec) -> dict[str, Any]:
    """The definition ``parse_campaign`` reads back to an equal spec (storage keeps it as JSON)."""
    rules = spec.eligibility
    data: dict[str, Any] = {
        "name": spec.name,
        "funder": {"kind": spec.funder.kind.value, "id": spec.funder.id},
        "starts_at": _iso(spec.starts_at_ns),
        "ends_at": _iso(spec.ends_at_ns),
        "windows": [
            {"start": hhmm(w.start_minute), "end": hhmm(w.end_minute)} for w in spec.windows
        ],
        "priority": spec.priority,
        "stacking": spec.stacking.value,
        "eligibility": _without_none(
            {
                "scenes": list(rules.scenes),
                "merchant_ids": list(rules.merchant_ids),
                "mccs": list(rules.mccs),
                "cities": list(rules.cities),
                "issuer_ids": list(rules.issuer_ids),
                "bin_prefixes": list(rules.bin_prefixes),
                "card_kinds": [kind.value for kind in rules.card_kinds],
                "modes": [mode.value for mode in rules.modes],
                "new_user": None if rules.new_user is None else rules.new_user.value,
                "min_amount_minor": rules.min_amount_minor,
            }
        ),
        "benefit": _benefit_fields(spec.benefit),
        "caps": _without_none(
            {
                "user_per_day": spec.caps.user_per_day,
                "user_per_campaign": spec.caps.user_per_campaign,
                "card_per_campaign": spec.caps.card_per_campaign,
            }
        ),
        "budget": _without_none({"money_minor": spec.budget.money_minor, "uses": spec.budget.uses}),
    }
    if spec.coupon is not None:
        data["coupon"] = _without_none(
            {
                "valid_seconds": spec.coupon.valid_seconds,
                "claimable": spec.coupon.claimable,
                "coupons_max": spec.coupon.coupons_max,
            }
        )
    return data
