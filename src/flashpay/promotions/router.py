"""``/v1/promotions/campaigns``: a funder manages its own campaigns (issue 15, item 6).

The caller is the funder: an institution API key funds as its kind (issuer, network, acquirer;
``Funder(kind, institution id)``), a merchant API key as that merchant. A campaign of another
funder is 404 ``promo_campaign_not_found`` (never 403: whether it exists is not the caller's
business); a definition naming another funder is 403 ``promo_not_funder`` — a funder funds only
from its own books.

Exactly once (decision 0013): create, activate, pause, end and top up each run in one
transaction that also binds the Idempotency-Key (``flashpay.idempotency.once``), so a retry whose
first answer was lost answers the campaign as it now is instead of creating it twice, moving it
twice or adding the top-up twice.

The user's side (the inquiry, quote, coupons) needs the user's cards and the merchant, owned by
domains above this one: it is ``flashpay.promotions_api``, which also mounts this router.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends

from flashpay.api.deps import (
    IdempotencyDep,
    OptionalPrincipal,
    ServicesDep,
    require_institution,
)
from flashpay.api.pagination import CursorQuery, LimitQuery, Page, after_id, encode_cursor
from flashpay.api.security import ActorKind, Principal
from flashpay.api.types import IdPath, amount_minor
from flashpay.errors import InvariantError
from flashpay.idempotency import IdempotencyTag, once
from flashpay.institutions.service import get_institution
from flashpay.platform import Platform
from flashpay.promotions.campaigns import Campaign, Funder, FunderKind
from flashpay.promotions.definition import parse_campaign
from flashpay.promotions.errors import PromotionError
from flashpay.promotions.errors import PromotionRefusal as R
from flashpay.promotions.report import campaign_report
from flashpay.promotions.schemas import CampaignOut, ReportOut, TopUpIn
from flashpay.promotions.storage import (
    budgets,
    change_state,
    create_campaign,
    get_campaign,
    list_campaigns,
    top_up,
)

router = APIRouter(prefix="/v1/promotions/campaigns", tags=["promotions"])


async def require_funder(principal: OptionalPrincipal) -> Principal:
    """An institution or a merchant key; anything else is 401/403 as for institutions."""
    if principal is not None and principal.kind is ActorKind.MERCHANT:
        return principal
    return await require_institution(principal)


FunderCaller = Annotated[Principal, Depends(require_funder)]


def funder_of(platform: Platform, caller: Principal) -> Funder:
    """The funder the caller is: a merchant, or its institution by the institution's kind."""
    if caller.kind is ActorKind.MERCHANT:
        return Funder(FunderKind.MERCHANT, caller.id)
    institution = get_institution(platform=platform, institution_id=caller.id)
    if institution is None:
        raise InvariantError("an authenticated institution exists")
    return Funder(FunderKind(institution.kind.value), institution.id)


def _not_found(campaign_id: int) -> PromotionError:
    return PromotionError(R.CAMPAIGN_NOT_FOUND, f"no campaign {campaign_id}")


def _owned(connection: sa.Connection, campaign_id: int, funder: Funder) -> Campaign:
    """The caller's campaign; another funder's is "not found", exactly like a missing one."""
    campaign = get_campaign(connection, campaign_id=campaign_id)
    if campaign is None or campaign.spec.funder != funder:
        raise _not_found(campaign_id)
    return campaign


owned_campaign = _owned  # for the user-facing module's funder routes (coupon pushes)


def _out(connection: sa.Connection, campaign: Campaign) -> CampaignOut:
    return CampaignOut.of(campaign, budgets(connection, campaign_ids=[campaign.id])[campaign.id])


def _load(funder: Funder) -> Callable[[sa.Connection, int], CampaignOut]:
    def load(connection: sa.Connection, campaign_id: int) -> CampaignOut:
        return _out(connection, _owned(connection, campaign_id, funder))

    return load


@router.post("", status_code=201, response_model=CampaignOut)
def create(
    body: Annotated[dict[str, Any], Body(description="A campaign definition (the TOML fields).")],
    caller: FunderCaller,
    platform: ServicesDep,
    idempotency: IdempotencyDep,
) -> CampaignOut:
    """Create a DRAFT campaign from a definition; ``funder`` may be left out (it is the caller)."""
    funder = funder_of(platform, caller)
    spec = parse_campaign({"funder": {"kind": funder.kind.value, "id": funder.id}, **body})
    if spec.funder != funder:
        raise PromotionError(R.NOT_FUNDER, f"the caller is {funder}, not {spec.funder}")

    def create_(connection: sa.Connection) -> tuple[int, CampaignOut]:
        campaign = create_campaign(connection, spec=spec, now_ns=platform.clock.now_ns())
        return campaign.id, _out(connection, campaign)

    return once(
        platform.engine,
        idempotency,
        kind="promo_campaign",
        now_ns=platform.clock.now_ns,
        create=create_,
        load=_load(funder),
    )


@router.get("", response_model=Page[CampaignOut])
def list_(
    caller: FunderCaller,
    platform: ServicesDep,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[CampaignOut]:
    """The caller's campaigns, oldest first."""
    funder, after = funder_of(platform, caller), after_id(cursor)
    with platform.engine.connect() as connection:
        mine = [c for c in list_campaigns(connection, funder=funder) if c.id > after]
        page = mine[:limit]
        spent = budgets(connection, campaign_ids=[c.id for c in page])
    return Page[CampaignOut](
        items=[CampaignOut.of(c, spent[c.id]) for c in page],
        next_cursor=encode_cursor({"after": page[-1].id}) if len(mine) > limit else None,
    )


@router.get("/{campaign_id}", response_model=CampaignOut)
def get(campaign_id: IdPath, caller: FunderCaller, platform: ServicesDep) -> CampaignOut:
    funder = funder_of(platform, caller)
    with platform.engine.connect() as connection:
        return _out(connection, _owned(connection, campaign_id, funder))


def _change(
    platform: Platform,
    caller: Principal,
    idempotency: IdempotencyTag | None,
    campaign_id: int,
    action: str,
) -> CampaignOut:
    funder = funder_of(platform, caller)

    def create_(connection: sa.Connection) -> tuple[int, CampaignOut]:
        _owned(connection, campaign_id, funder)
        campaign = change_state(
            connection,
            campaign_id=campaign_id,
            action=action,
            now_ns=platform.clock.now_ns(),
            funder=funder,
        )
        return campaign.id, _out(connection, campaign)

    return once(
        platform.engine,
        idempotency,
        kind=f"promo_{action}",
        now_ns=platform.clock.now_ns,
        create=create_,
        load=_load(funder),
    )


@router.post("/{campaign_id}/activate", response_model=CampaignOut)
def activate(
    campaign_id: IdPath, caller: FunderCaller, platform: ServicesDep, idempotency: IdempotencyDep
) -> CampaignOut:
    """DRAFT or PAUSED → ACTIVE (409 ``promo_overlapping_exclusive`` when it would clash with
    another exclusive campaign of the same funder)."""
    return _change(platform, caller, idempotency, campaign_id, "activate")


@router.post("/{campaign_id}/pause", response_model=CampaignOut)
def pause(
    campaign_id: IdPath, caller: FunderCaller, platform: ServicesDep, idempotency: IdempotencyDep
) -> CampaignOut:
    """ACTIVE or EXHAUSTED → PAUSED."""
    return _change(platform, caller, idempotency, campaign_id, "pause")


@router.post("/{campaign_id}/end", response_model=CampaignOut)
def end(
    campaign_id: IdPath, caller: FunderCaller, platform: ServicesDep, idempotency: IdempotencyDep
) -> CampaignOut:
    """Any state but ENDED → ENDED, for good."""
    return _change(platform, caller, idempotency, campaign_id, "end")


@router.post("/{campaign_id}/top-ups", response_model=CampaignOut)
def top_up_(
    campaign_id: IdPath,
    body: TopUpIn,
    caller: FunderCaller,
    platform: ServicesDep,
    idempotency: IdempotencyDep,
) -> CampaignOut:
    """Add money and/or uses to the budget; an EXHAUSTED campaign that can pay again is ACTIVE."""
    funder = funder_of(platform, caller)
    money = 0 if body.amount is None else amount_minor(body.amount)

    def create_(connection: sa.Connection) -> tuple[int, CampaignOut]:
        _owned(connection, campaign_id, funder)
        top_up(
            connection,
            campaign_id=campaign_id,
            money_minor=money,
            uses=body.uses,
            now_ns=platform.clock.now_ns(),
            funder=funder,
        )
        return campaign_id, _out(connection, _owned(connection, campaign_id, funder))

    return once(
        platform.engine,
        idempotency,
        kind="promo_top_up",
        now_ns=platform.clock.now_ns,
        create=create_,
        load=_load(funder),
    )


@router.get("/{campaign_id}/report", response_model=ReportOut)
def report(campaign_id: IdPath, caller: FunderCaller, platform: ServicesDep) -> ReportOut:
    """Uses, discount spent, budget left and volume, by China day, scene and issuing bank."""
    funder = funder_of(platform, caller)
    with platform.engine.connect() as connection:
        _owned(connection, campaign_id, funder)
        return ReportOut.of(campaign_report(connection, campaign_id=campaign_id))
