"""The per-campaign report: uses, discount spent, budget left, payment volume; by day, scene, bank.

Read from ``promo_redemptions`` (only benefits still ``taken``: a given-back one counts nowhere)
and ``promo_budgets``, by GROUP BY in the database. Volume is the full amount of the payments
that got the benefit. Days are China days.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.promotions.errors import PromotionError
from flashpay.promotions.errors import PromotionRefusal as R
from flashpay.promotions.models import promo_redemptions
from flashpay.promotions.storage import budgets, get_campaign


@dataclass(frozen=True, slots=True)
class ReportLine:
    key: str  # a day (YYYY-MM-DD), a scene, or an issuer id
    uses: int
    discount_minor: int
    volume_minor: int


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign_id: int
    name: str
    state: str
    uses: int
    discount_minor: int
    volume_minor: int
    money_left_minor: int | None
    uses_left: int | None
    by_day: tuple[ReportLine, ...]
    by_scene: tuple[ReportLine, ...]
    by_issuer: tuple[ReportLine, ...]


def _lines(
    connection: sa.Connection, campaign_id: int, column: sa.Column[object]
) -> tuple[ReportLine, ...]:
    r = promo_redemptions.c
    rows = connection.execute(
        sa.select(
            column,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(r.discount_minor), 0),
            sa.func.coalesce(sa.func.sum(r.amount_minor), 0),
        )
        .where(r.campaign_id == campaign_id, r.state == "taken")
        .group_by(column)
        .order_by(column)
    )
    return tuple(
        ReportLine(str(key), int(uses), int(off), int(volume)) for key, uses, off, volume in rows
    )


def campaign_report(connection: sa.Connection, *, campaign_id: int) -> CampaignReport:
    """The report of one campaign; raises ``PromotionError(CAMPAIGN_NOT_FOUND)``."""
    campaign = get_campaign(connection, campaign_id=campaign_id)
    if campaign is None:
        raise PromotionError(R.CAMPAIGN_NOT_FOUND, f"no campaign {campaign_id}")
    budget = budgets(connection, campaign_ids=[campaign_id])[campaign_id]
    r = promo_redemptions.c
    by_day = _lines(connection, campaign_id, r.day)
    return CampaignReport(
        campaign_id=campaign_id,
        name=campaign.spec.name,
        state=campaign.state.value,
        uses=sum(line.uses for line in by_day),
        discount_minor=sum(line.discount_minor for line in by_day),
        volume_minor=sum(line.volume_minor for line in by_day),
        money_left_minor=budget.money_left_minor,
        uses_left=budget.uses_left,
        by_day=by_day,
        by_scene=_lines(connection, campaign_id, r.scene),
        by_issuer=_lines(connection, campaign_id, r.issuer_id),
    )
