"""Does a campaign apply to a payment, and if not, why not: the first failing check.

``refusal`` checks the campaign against what is known of the payment (``Facts``), in the order of
``PromotionRefusal``: state, period, daily window, scene, merchant, MCC, city, mode, issuer / BIN,
card kind, new user, minimum amount. A fact that is not known (``None``) passes its check — the
inquiry uses that to list what *could* apply before the amount or the merchant is known.

The funder's kind narrows eligibility by itself: a merchant funds discounts only at its own
merchant, an acquirer only at merchants it signed, an issuer only for its own cards. A funder
pays from its own books for its own business, so these are not options.

``cap_refusal`` checks the budget and the caps against a ``Usage`` snapshot for one discount.

``could_clash`` tells whether two campaigns could both apply to one payment (for the check that a
funder does not run two exclusive campaigns over the same payments).
"""

from __future__ import annotations

from collections.abc import Sequence

from flashpay.promotions.benefits import threshold_minor
from flashpay.promotions.campaigns import (
    Campaign,
    CampaignSpec,
    CampaignState,
    FunderKind,
    NewUser,
)
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
    if campaign.state is CampaignState.EXHAUSTED:
        return R.BUDGET_EXHAUSTED  # what the user needs to hear: it ran out
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


def _meet(left: Sequence[object], right: Sequence[object]) -> bool:
    """Two allow-lists admit a common value (an empty list admits everything)."""
    return not left or not right or bool(set(left) & set(right))


def _prefixes_meet(left: Sequence[str], right: Sequence[str]) -> bool:
    if not left or not right:
        return True
    return any(a.startswith(b) or b.startswith(a) for a in left for b in right)


def could_clash(a: CampaignSpec, b: CampaignSpec) -> bool:
    """Whether one payment could be eligible for both ``a`` and ``b``.

    Conservative on the card: issuer ids and BIN prefixes are compared dimension by dimension
    (``True`` when either could admit the same card). Exact on the period, the daily windows and
    every list dimension.
    """
    if not (a.starts_at_ns < b.ends_at_ns and b.starts_at_ns < a.ends_at_ns):
        return False
    if (
        a.windows
        and b.windows
        and not any(
            x.start_minute < y.end_minute and y.start_minute < x.end_minute
            for x in a.windows
            for y in b.windows
        )
    ):
        return False
    ra, rb = a.eligibility, b.eligibility
    lists = (
        (ra.scenes, rb.scenes),
        (ra.merchant_ids, rb.merchant_ids),
        (ra.mccs, rb.mccs),
        (ra.cities, rb.cities),
        (ra.card_kinds, rb.card_kinds),
        (ra.modes, rb.modes),
    )
    if not all(_meet(left, right) for left, right in lists):
        return False
    return _cards_meet(ra.issuer_ids, ra.bin_prefixes, rb.issuer_ids, rb.bin_prefixes)


def _cards_meet(
    issuers_a: Sequence[int], bins_a: Sequence[str], issuers_b: Sequence[int], bins_b: Sequence[str]
) -> bool:
    """Could one card pass both card rules? A rule admits a card by issuer *or* by BIN prefix.

    A BIN's issuer is not known here, so an issuer list against a BIN list counts as meeting.
    """
    if not (issuers_a or bins_a) or not (issuers_b or bins_b):
        return True
    if set(issuers_a) & set(issuers_b):
        return True
    if bins_a and bins_b and _prefixes_meet(bins_a, bins_b):
        return True
    return bool((issuers_a and bins_b) or (bins_a and issuers_b))
