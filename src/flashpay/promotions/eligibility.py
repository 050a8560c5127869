"""Does a campaign apply to a payment, and if not, why not: the first failing check.

``refusal`` checks the campaign against what is known of the payment (``Facts``), in the order of
``PromotionRefusal``: state, period, daily window, scene, merchant, MCC, city, mode, issuer / BIN,
card kind, new user, minimum amount. A fact that is not known (``None``) passes its check — the
inquiry uses that to list what *could* apply before the amount or the merchant is known.

The funder's kind narrows eligibility by itself: a merchant funds discounts only at its own
merchant, an acquirer only at merchants it signed, an issuer only for its own cards. A funder
pays from its own books for its own business, so these are not options.

``cap_refusal`` checks the budget and the caps against a ``Usage`` snapshot for one discount.
"""

from __future__ import annotations

from collections.abc import Sequence

from flashpay.promotions.benefits import threshold_minor
from flashpay.promotions.campaigns import Campaign, CampaignState, FunderKind, NewUser
from flashpay.promotions.context import Facts, china_minute_of_day
from flashpay.promotions.errors import PromotionRefusal as R
from flashpay.promotions.usage import Usage


def _in(value: object, allowed: Sequence[object]) -> bool:
    """An unknown value, or no restriction, passes."""
    return value is None or not allowed or value in allowed


def _card_of_issuer(campaign: Campaign, facts: Facts) -> bool:
    rules, funder = campaign.spec.eligibility, campaign.spec.funder
    if funder.kind is FunderKind.ISSUER and facts.issuer_id not in (None, funder.id):
        return False
    if not rules.issuer_ids and not rules.bin_prefixes:
        return True
    by_issuer = facts.issuer_id is None or facts.issuer_id in rules.issuer_ids
    by_bin = facts.bin is None or any(facts.bin.startswith(p) for p in rules.bin_prefixes)
    return by_issuer or by_bin


def _merchant_allowed(campaign: Campaign, facts: Facts) -> bool:
    funder = campaign.spec.funder
    if funder.kind is FunderKind.MERCHANT and facts.merchant_id not in (None, funder.id):
        return False
    if funder.kind is FunderKind.ACQUIRER and facts.acquirer_id not in (None, funder.id):
        return False
    return _in(facts.merchant_id, campaign.spec.eligibility.merchant_ids)


def _new_user(rule: NewUser | None, facts: Facts) -> bool:
    if rule is NewUser.FIRST_EVER:
        return facts.first_payment_ever is not False
    if rule is NewUser.FIRST_IN_SCENE:
        return facts.first_in_scene is not False
    return True


def refusal(campaign: Campaign, facts: Facts) -> R | None:
    """The first reason ``campaign`` does not apply to a payment with ``facts``, or None."""
    spec, rules = campaign.spec, campaign.spec.eligibility
    if campaign.state is not CampaignState.ACTIVE:
        return R.NOT_ACTIVE
    if not spec.starts_at_ns <= facts.at_ns < spec.ends_at_ns:
        return R.OUTSIDE_PERIOD
    if spec.windows:
        minute = china_minute_of_day(facts.at_ns)
        if not any(window.contains(minute) for window in spec.windows):
            return R.OUTSIDE_WINDOW
    if not _in(facts.scene, rules.scenes):
        return R.WRONG_SCENE
    if not _merchant_allowed(campaign, facts):
        return R.WRONG_MERCHANT
    if not _in(facts.mcc, rules.mccs):
        return R.WRONG_MCC
    if not _in(facts.city, rules.cities):
        return R.WRONG_CITY
    if not _in(facts.mode, rules.modes):
        return R.WRONG_MODE
    if not _card_of_issuer(campaign, facts):
        return R.WRONG_ISSUER
    if not _in(facts.card_kind, rules.card_kinds):
        return R.WRONG_CARD_KIND
    if not _new_user(rules.new_user, facts):
        return R.NOT_NEW_USER
    minimum = max(rules.min_amount_minor, threshold_minor(spec.benefit))
    if facts.amount_minor is not None and facts.amount_minor < minimum:
        return R.BELOW_MINIMUM
    return None


def cap_refusal(
    campaign: Campaign,
    usage: Usage,
    *,
    user_keys: Sequence[str],
    card_fingerprint: str | None,
    discount_minor: int,
) -> R | None:
    """Why one more use of ``discount_minor`` does not fit the budget or a cap, or None.

    The card fingerprint is also one of the user keys, so the card counts for the user caps too.
    """
    caps = campaign.spec.caps
    if campaign.spec.coupon is not None and campaign.id not in usage.coupons:
        return R.NO_COUPON
    if not usage.budget(campaign).affords(discount_minor):
        return R.BUDGET_EXHAUSTED
    if caps.user_per_day is not None and (
        usage.most_today(campaign.id, user_keys) >= caps.user_per_day
    ):
        return R.USER_DAILY_CAP
    if caps.user_per_campaign is not None and (
        usage.most_total(campaign.id, user_keys) >= caps.user_per_campaign
    ):
        return R.USER_CAMPAIGN_CAP
    if caps.card_per_campaign is not None and (
        card_fingerprint is not None
        and usage.card_total.get((campaign.id, card_fingerprint), 0) >= caps.card_per_campaign
    ):
        return R.CARD_CAP
    return None
