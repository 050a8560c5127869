"""Coupons: a campaign's benefit, held by one user, single use, until it expires.

A campaign with a ``coupon`` policy applies only to a user holding an unused, unexpired coupon of
it. A user *claims* one from the app (when the policy is ``claimable``), or the funder *pushes*
coupons to a list of users; either way at most one per user key and campaign (a UNIQUE
constraint), and at most ``coupons_max`` in total (a conditional UPDATE of the campaign's
``coupons_issued``, as budgets are taken). A coupon's owner is one user key (``phone:…``); it is
redeemed by a payment whose user keys include it.

Redemption is a step of ``storage.take`` (``issued → redeemed``, conditional on the state and the
expiry), so one coupon used from two devices at once is redeemed once; ``give_back`` restores it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.clock import NS_PER_SECOND
from flashpay.errors import invariant
from flashpay.promotions.benefits import describe
from flashpay.promotions.campaigns import Campaign, CampaignState, CouponPolicy, Funder
from flashpay.promotions.definition import parse_campaign
from flashpay.promotions.errors import PromotionError
from flashpay.promotions.errors import PromotionRefusal as R
from flashpay.promotions.models import promo_budgets, promo_campaigns, promo_coupons
from flashpay.promotions.storage import get_campaign, insert_ignoring_conflict

PUSH_USERS_MAX = 1_000
WALLET_COUPONS_MAX = 200


@dataclass(frozen=True, slots=True)
class Coupon:
    id: int
    campaign_id: int
    campaign_name: str
    owner_key: str
    state: str  # issued | redeemed
    expires_at_ns: int
    description_zh: str
    description_en: str


def _issuable(
    campaign: Campaign | None, campaign_id: int, *, claim: bool
) -> tuple[Campaign, CouponPolicy]:
    if campaign is None:
        raise PromotionError(R.CAMPAIGN_NOT_FOUND, f"no campaign {campaign_id}")
    policy = campaign.spec.coupon
    if policy is None:
        raise PromotionError(R.COUPONS_NOT_OFFERED, f"campaign {campaign_id} issues no coupons")
    if claim and not policy.claimable:
        raise PromotionError(R.COUPON_NOT_CLAIMABLE, f"campaign {campaign_id} only pushes coupons")
    allowed = (
        {CampaignState.ACTIVE}
        if claim
        else {CampaignState.DRAFT, CampaignState.ACTIVE, CampaignState.PAUSED}
    )
    if not claim and campaign.state is CampaignState.EXHAUSTED:
        raise PromotionError(R.BUDGET_EXHAUSTED, f"campaign {campaign_id} has spent its budget")
    if campaign.state not in allowed:
        raise PromotionError(R.NOT_ACTIVE, f"campaign {campaign_id} is {campaign.state.value}")
    return campaign, policy


def _take_coupon_slot(connection: sa.Connection, campaign_id: int) -> bool:
    b = promo_budgets.c
    return (
        connection.execute(
            promo_budgets.update()
            .where(
                b.campaign_id == campaign_id,
                sa.or_(b.coupons_max.is_(None), b.coupons_issued < b.coupons_max),
            )
            .values(coupons_issued=b.coupons_issued + 1)
        ).rowcount
        == 1
    )


def _issue(
    connection: sa.Connection,
    campaign: Campaign,
    policy: CouponPolicy,
    owner_key: str,
    now_ns: int,
) -> R | None:
    """One coupon for ``owner_key``: ``None`` when issued, else why not (nothing recorded)."""
    expires_at_ns = min(now_ns + policy.valid_seconds * NS_PER_SECOND, campaign.spec.ends_at_ns)
    inserted = insert_ignoring_conflict(
        connection,
        promo_coupons,
        {
            "campaign_id": campaign.id,
            "owner_key": owner_key,
            "state": "issued",
            "issued_at_ns": now_ns,
            "expires_at_ns": expires_at_ns,
        },
    )
    if inserted != 1:
        return R.COUPON_ALREADY_HELD
    if not _take_coupon_slot(connection, campaign.id):
        k = promo_coupons.c
        connection.execute(
            promo_coupons.delete().where(
                k.campaign_id == campaign.id, k.owner_key == owner_key, k.state == "issued"
            )
        )
        return R.COUPONS_ALL_ISSUED
    return None


def claim_coupon(
    connection: sa.Connection, *, campaign_id: int, owner_key: str, now_ns: int
) -> int:
    """The user claims a coupon from the app; returns its id.

    Raises ``PromotionError``: ``CAMPAIGN_NOT_FOUND``, ``COUPONS_NOT_OFFERED``,
    ``COUPON_NOT_CLAIMABLE``, ``NOT_ACTIVE``, ``COUPON_ALREADY_HELD``, ``COUPONS_ALL_ISSUED``.
    """
    found = get_campaign(connection, campaign_id=campaign_id)
    campaign, policy = _issuable(found, campaign_id, claim=True)
    refused = _issue(connection, campaign, policy, owner_key, now_ns)
    if refused is not None:
        raise PromotionError(refused, f"no coupon of campaign {campaign_id}: {refused.value}")
    k = promo_coupons.c
    return int(
        connection.execute(
            sa.select(k.id).where(k.campaign_id == campaign_id, k.owner_key == owner_key)
        ).scalar_one()
    )


def push_coupons(
    connection: sa.Connection,
    *,
    campaign_id: int,
    owner_keys: Sequence[str],
    now_ns: int,
    funder: Funder | None = None,
) -> dict[str, R | None]:
    """The funder pushes coupons to a list of users: per owner key, ``None`` (issued) or why not.

    A user who already holds one is refused ``COUPON_ALREADY_HELD``; once ``coupons_max`` is
    reached the rest are refused ``COUPONS_ALL_ISSUED``. Raises ``PromotionError`` for the
    campaign itself (not found, no coupons, ended, ``NOT_FUNDER``).
    """
    invariant(len(owner_keys) <= PUSH_USERS_MAX, f"at most {PUSH_USERS_MAX} users per push")
    found = get_campaign(connection, campaign_id=campaign_id)
    campaign, policy = _issuable(found, campaign_id, claim=False)
    if funder is not None and campaign.spec.funder != funder:
        raise PromotionError(R.NOT_FUNDER, f"campaign {campaign_id} is not funded by {funder}")
    unique_keys = dict.fromkeys(owner_keys)  # in order, each once
    return {key: _issue(connection, campaign, policy, key, now_ns) for key in unique_keys}


def held_coupons(
    connection: sa.Connection, *, campaign_id: int, owner_keys: Collection[str]
) -> dict[str, int]:
    """The coupon of the campaign each owner key holds (issued or redeemed), by owner key."""
    k = promo_coupons.c
    rows = connection.execute(
        sa.select(k.owner_key, k.id).where(
            k.campaign_id == campaign_id, k.owner_key.in_(sorted(set(owner_keys)))
        )
    )
    return {str(row.owner_key): int(row.id) for row in rows}


def coupon_wallet(
    connection: sa.Connection, *, owner_keys: Collection[str], at_ns: int
) -> list[Coupon]:
    """The user's unused, unexpired coupons, soonest to expire first."""
    k, c = promo_coupons.c, promo_campaigns.c
    rows = connection.execute(
        sa.select(k.id, k.campaign_id, k.owner_key, k.state, k.expires_at_ns, c.definition)
        .join(promo_campaigns, c.id == k.campaign_id)
        .where(k.owner_key.in_(list(owner_keys)), k.state == "issued", k.expires_at_ns > at_ns)
        .order_by(k.expires_at_ns, k.id)
        .limit(WALLET_COUPONS_MAX)
    ).all()
    coupons = []
    for row in rows:
        spec = parse_campaign(json.loads(row.definition))
        zh, en = describe(spec.benefit)
        coupons.append(
            Coupon(
                id=int(row.id),
                campaign_id=int(row.campaign_id),
                campaign_name=spec.name,
                owner_key=str(row.owner_key),
                state=str(row.state),
                expires_at_ns=int(row.expires_at_ns),
                description_zh=zh,
                description_en=en,
            )
        )
    return coupons
