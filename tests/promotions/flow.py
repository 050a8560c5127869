"""The payment stage's calls, as the tests make them: choose and take in one transaction."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flashpay.promotions import (
    Campaign,
    CampaignSpec,
    Choice,
    PaymentContext,
    Taken,
    active_campaigns,
    change_state,
    choose,
    create_campaign,
    take,
    usage_for,
)

from .builders import DRAW_KEY, NOON_NS


def launch(engine: Engine, spec: CampaignSpec) -> Campaign:
    """Create and activate a campaign."""
    with engine.begin() as connection:
        created = create_campaign(connection, spec=spec, now_ns=NOON_NS)
        return change_state(connection, campaign_id=created.id, action="activate", now_ns=NOON_NS)


def choose_in(connection: sa.Connection, context: PaymentContext) -> Choice:
    campaigns = active_campaigns(connection, at_ns=context.at_ns, scene=context.scene)
    card = context.user.card_fingerprint
    usage = usage_for(
        connection,
        campaign_ids=[c.id for c in campaigns],
        user_keys=context.user.keys(),
        card_fingerprints=[] if card is None else [card],
        day=context.day,
        at_ns=context.at_ns,
    )
    return choose(context, campaigns, usage, draw_key=DRAW_KEY)


def pay(engine: Engine, context: PaymentContext) -> tuple[Choice, Taken]:
    """Choose and take in one transaction, as the payment stage will."""
    with engine.begin() as connection:
        choice = choose_in(connection, context)
        [taken] = take(connection, [choice])
        return choice, taken
