"""Why a promotion is refused: one closed ``StrEnum``, in the order the checks run.

Three groups, each listed in its own check order:

1. a campaign definition or a management request refused (``parse_campaign``, state changes,
   top-ups, coupon issue): nothing is recorded;
2. a campaign that does not apply to a payment (``eligibility.refusal``): the inquiry shows the
   first one as the "why not", and ``choose`` skips the campaign;
3. a chosen benefit that ``storage.take`` cannot take under concurrency (budget spent by another
   payment in the meantime, a cap reached, a coupon redeemed from another device).

A value is the error code an API answers; it never changes once published.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from flashpay.errors import RefusedError


class PromotionRefusal(StrEnum):
    # 1. definitions (parse_campaign checks field by field and names the field) and management
    INVALID_DEFINITION = "promo_invalid_definition"  # a field missing, of the wrong type, unknown
    INVALID_PERIOD = "promo_invalid_period"  # ends at or before it starts
    INVALID_WINDOW = "promo_invalid_window"  # a daily window ending at or before it starts
    INVALID_BENEFIT = "promo_invalid_benefit"  # zero or negative discount, percentage > 100 %, …
    INVALID_CAP = "promo_invalid_cap"  # a cap below 1
    INVALID_BUDGET = "promo_invalid_budget"  # no budget at all, or one below 1
    FIXED_PRICE_NOT_STACKABLE = "promo_fixed_price_not_stackable"
    CAMPAIGN_NOT_FOUND = "promo_campaign_not_found"
    INVALID_TRANSITION = "promo_invalid_transition"  # e.g. activate an ended campaign
    OVERLAPPING_EXCLUSIVE = "promo_overlapping_exclusive"  # the funder runs one that could clash
    NOT_FUNDER = "promo_not_funder"  # a funder may manage only its own campaigns
    COUPONS_NOT_OFFERED = "promo_coupons_not_offered"  # the campaign issues no coupons
    COUPON_NOT_CLAIMABLE = "promo_coupon_not_claimable"  # pushed only, not claimed by the user
    COUPONS_ALL_ISSUED = "promo_coupons_all_issued"
    COUPON_ALREADY_HELD = "promo_coupon_already_held"  # one coupon per user and campaign
    UNKNOWN_USER = "promo_unknown_user"  # a coupon pushed to a phone or user id with no account
    INVALID_CODE = "promo_invalid_code"  # a scanned payload that is not a flashpay merchant code
    AMOUNT_REQUIRED = "promo_amount_required"  # a static code quoted without an amount
    AMOUNT_MISMATCH = "promo_amount_mismatch"  # an amount given for a dynamic code, not its own

    # 2. eligibility, in the order eligibility.refusal checks it (cheap and general first)
    NOT_ACTIVE = "promo_not_active"  # draft, paused, ended or exhausted
    OUTSIDE_PERIOD = "promo_outside_period"
    OUTSIDE_WINDOW = "promo_outside_window"
    WRONG_SCENE = "promo_wrong_scene"
    WRONG_MERCHANT = "promo_wrong_merchant"
    WRONG_MCC = "promo_wrong_mcc"
    WRONG_CITY = "promo_wrong_city"
    WRONG_MODE = "promo_wrong_mode"
    WRONG_ISSUER = "promo_wrong_issuer"  # card not of that bank (issuer id or BIN prefix)
    WRONG_CARD_KIND = "promo_wrong_card_kind"
    NOT_NEW_USER = "promo_not_new_user"
    BELOW_MINIMUM = "promo_below_minimum"  # amount below the minimum or the benefit's threshold
    NO_DISCOUNT = "promo_no_discount"  # the benefit is worth nothing here (fixed price ≥ amount)
    NO_COUPON = "promo_no_coupon"  # a coupon campaign and the user holds no usable coupon
    BUDGET_EXHAUSTED = "promo_budget_exhausted"  # money or uses left below this discount
    USER_DAILY_CAP = "promo_user_daily_cap"  # any of the user's keys reached today's cap
    USER_CAMPAIGN_CAP = "promo_user_campaign_cap"
    CARD_CAP = "promo_card_cap"

    # 3. taking (only storage.take; the eligibility reasons above may also come back from it)
    ALREADY_TAKEN = "promo_already_taken"  # this payment already took this campaign
    COUPON_UNAVAILABLE = "promo_coupon_unavailable"  # redeemed elsewhere, expired or not the user's


class PromotionError(RefusedError):
    """A promotion request refused for ``reason`` (a ``PromotionRefusal``); nothing recorded."""

    reason: PromotionRefusal

    def __init__(
        self, reason: PromotionRefusal, message: str, *, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(reason, message, details=details)
