"""The demo's theme month (issue 15, item 7): four campaigns of three kinds of funder, with
budgets small enough that some run out during the simulated day, and their summary for
``demo-summary.json``. Budgets grow with the network, ``k`` = one per 40 users:

- Bank of China cards: ¥10 off ¥50 at supermarkets, once a day per user (the issuer; 10·k uses);
- the network: a random ¥1–5 off at campus canteens at lunch, 11:00–13:30 (¥20·k);
- the network: a ¥1 subway ride for new users — their first payment ever (8·k uses);
- one supermarket's own coupon, ¥5 off ¥20, pushed to the first 60 users (the merchant; ¥50).

The campaigns are made through the promotions package's owner functions (what the HTTP routes
call), before the day starts; the payments then meet them in the pipeline like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flashpay.clock import NS_PER_SECOND, to_datetime
from flashpay.institutions.service import get_institution, network_institution
from flashpay.merchants.service import Merchant, Scene
from flashpay.platform import Platform
from flashpay.promotions import (
    campaign_report,
    change_state,
    create_campaign,
    parse_campaign,
    push_coupons,
)
from flashpay.promotions.storage import budgets

DAY_NS = 86_400 * NS_PER_SECOND
COUPON_USERS = 60


def _definitions(
    platform: Platform, merchants: Sequence[Merchant], start_ns: int, k: int
) -> list[dict[str, Any]]:
    boc = get_institution(platform=platform, code="BOC")
    network = network_institution(platform=platform)
    period = {"starts_at": to_datetime(start_ns - DAY_NS).isoformat(),
              "ends_at": to_datetime(start_ns + 30 * DAY_NS).isoformat()}  # fmt: skip
    shop = next(m for m in merchants if m.scene is Scene.SUPERMARKET)
    out: list[dict[str, Any]] = []
    if boc is not None:
        out.append({
            "name": "Bank of China: ¥10 off ¥50 at supermarkets", **period,
            "funder": {"kind": "issuer", "id": boc.id},
            "eligibility": {"scenes": ["supermarket"], "issuer_ids": [boc.id]},
            "benefit": {"kind": "amount_off", "off_minor": 1000, "threshold_minor": 5000},
            "caps": {"user_per_day": 1}, "budget": {"uses": 10 * k},
        })  # fmt: skip
    out += [
        {"name": "UnionPay: random ¥1–5 off at canteens at lunch", **period,
         "funder": {"kind": "network", "id": network.id},
         "windows": [{"start": "11:00", "end": "13:30"}],
         "eligibility": {"scenes": ["canteen", "campus"]},
         "benefit": {"kind": "random_off", "low_minor": 100, "high_minor": 500},
         "budget": {"money_minor": 2_000 * k}, "stacking": "stackable"},
        {"name": "UnionPay: ¥1 subway ride for new users", **period,
         "funder": {"kind": "network", "id": network.id},
         "eligibility": {"scenes": ["subway"], "new_user": "first_ever"},
         "benefit": {"kind": "fixed_price", "price_minor": 100}, "budget": {"uses": 8 * k}},
        {"name": f"{shop.display_name}: ¥5 off ¥20 coupon", **period,
         "funder": {"kind": "merchant", "id": shop.id},
         "eligibility": {"merchant_ids": [shop.id], "min_amount_minor": 2000},
         "benefit": {"kind": "amount_off", "off_minor": 500},
         "coupon": {"valid_seconds": 7 * 86_400, "claimable": False,
                    "coupons_max": COUPON_USERS},
         "budget": {"money_minor": 5_000}, "stacking": "stackable"},
    ]  # fmt: skip
    return out


def start_theme_month(
    platform: Platform, merchants: Sequence[Merchant], phones: Sequence[str], start_ns: int
) -> list[int]:
    """Create and activate the theme month's campaigns and push the merchant's coupons; their
    ids."""
    ids: list[int] = []
    now = platform.clock.now_ns()
    with platform.engine.begin() as connection:
        k = max(1, len(phones) // 40)
        for definition in _definitions(platform, merchants, start_ns, k):
            made = create_campaign(connection, spec=parse_campaign(definition), now_ns=now)
            change_state(connection, campaign_id=made.id, action="activate", now_ns=now)
            if made.spec.coupon is not None:
                push_coupons(
                    connection, campaign_id=made.id, now_ns=now,
                    owner_keys=[f"phone:{p}" for p in phones[:COUPON_USERS]],
                )  # fmt: skip
            ids.append(made.id)
    return ids


def theme_summary(platform: Platform, campaign_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Per campaign: its budget, what was spent, the uses, whether it ran out."""
    out = []
    with platform.engine.connect() as connection:
        state = budgets(connection, campaign_ids=campaign_ids)
        for campaign_id in campaign_ids:
            report = campaign_report(connection, campaign_id=campaign_id)
            budget = state[campaign_id]
            out.append({
                "campaign_id": campaign_id, "name": report.name, "state": report.state,
                "budget_fen": budget.money_minor, "budget_uses": budget.uses_max,
                "spent_fen": report.discount_minor, "uses": report.uses,
                "volume_fen": report.volume_minor,
                "exhausted": report.state == "exhausted",
            })  # fmt: skip
    return out
