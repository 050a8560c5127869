"""Promotions: campaigns funded by an issuer, the network, an acquirer or a merchant, their
benefits, budgets, caps and coupons, the deterministic choice of a payment's benefits, and the
discount inquiry (``docs/reference/promotions.md``; why: ``docs/decisions/0018``).

The package is self-contained: it takes plain values (``PaymentContext``) and imports no other
domain's tables or services. The payment stage calls, inside its own transaction::

    campaigns = active_campaigns(connection, at_ns=..., scene=...)
    usage = usage_for(connection, campaign_ids=..., user_keys=..., ...)
    choice = choose(context, campaigns, usage, draw_key=...)      # pure
    [taken] = take(connection, [choice])                          # atomic, conditional UPDATEs
    ...                                                           # post the payment
    give_back(connection, payment_refs=[...], now_ns=...)         # declined or fully refunded

Modules: ``campaigns`` (the model), ``benefits`` (arithmetic, the random draw), ``context`` (the
payment as plain values), ``eligibility`` (the checks), ``usage`` (counts snapshot), ``choose``
(the rule), ``definition`` (TOML/JSON in and out), ``models`` (tables), ``storage`` (campaigns,
``take``, ``give_back``), ``index`` (the inquiry's index by scene, merchant and city, and the
parsed-definition cache: decision 0020), ``coupons``, ``inquiry``, ``report`` (per campaign),
``errors``, ``cli``.
"""

from __future__ import annotations

from flashpay.promotions.benefits import (
    AmountOff,
    Benefit,
    FixedPrice,
    PercentOff,
    RandomOff,
    describe,
    discount_minor,
    refund_share_minor,
)
from flashpay.promotions.campaigns import (
    Budget,
    Campaign,
    CampaignSpec,
    CampaignState,
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
)
from flashpay.promotions.choose import Applied, Choice, choose
from flashpay.promotions.context import PaymentContext, UserKeys
from flashpay.promotions.coupons import Coupon, claim_coupon, coupon_wallet, push_coupons
from flashpay.promotions.definition import parse_campaign, to_definition
from flashpay.promotions.errors import PromotionError, PromotionRefusal
from flashpay.promotions.inquiry import (
    CardQuote,
    InquiryCard,
    InquiryContext,
    Left,
    Offer,
    discounts_for,
    quote,
    quote_cards,
)
from flashpay.promotions.report import CampaignReport, ReportLine, campaign_report
from flashpay.promotions.storage import (
    GivenBack,
    Taken,
    active_campaigns,
    change_state,
    create_campaign,
    get_campaign,
    give_back,
    list_campaigns,
    take,
    top_up,
    usage_for,
)
from flashpay.promotions.usage import BudgetState, Usage

__all__ = [
    "AmountOff",
    "Applied",
    "Benefit",
    "Budget",
    "BudgetState",
    "Campaign",
    "CampaignReport",
    "CampaignSpec",
    "CampaignState",
    "Caps",
    "CardKind",
    "CardQuote",
    "Choice",
    "Coupon",
    "CouponPolicy",
    "Eligibility",
    "FixedPrice",
    "Funder",
    "FunderKind",
    "GivenBack",
    "InquiryCard",
    "InquiryContext",
    "Left",
    "NewUser",
    "Offer",
    "PaymentContext",
    "PaymentMode",
    "PercentOff",
    "PromotionError",
    "PromotionRefusal",
    "RandomOff",
    "ReportLine",
    "Stacking",
    "Taken",
    "Usage",
    "UserKeys",
    "Window",
    "active_campaigns",
    "campaign_report",
    "change_state",
    "choose",
    "claim_coupon",
    "coupon_wallet",
    "create_campaign",
    "describe",
    "discount_minor",
    "discounts_for",
    "get_campaign",
    "give_back",
    "list_campaigns",
    "parse_campaign",
    "push_coupons",
    "quote",
    "quote_cards",
    "refund_share_minor",
    "take",
    "to_definition",
    "top_up",
    "usage_for",
]
