"""``flashpay promo``: create campaigns from TOML, list them, change their state, top them up,
push coupons, report, inquire.

Management here is the operator's: no funder check (the API passes the caller's funder). A push
from here goes to ``phone:`` keys as given: this package may not read the wallet, so it cannot
tell an unknown phone (the HTTP push can, and refuses it ``promo_unknown_user``).
Refusals print one line ``refused: <code>: <message>`` and exit 1; a bad file exits 2.
"""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flashpay.cli.common import DataDirOption, DbOption, console, err_console, resolve_db
from flashpay.clock import NS_PER_SECOND, SystemClock
from flashpay.db import create_engine
from flashpay.promotions.benefits import describe
from flashpay.promotions.campaigns import CampaignState
from flashpay.promotions.context import CHINA_TIME, UserKeys
from flashpay.promotions.coupons import PUSH_USERS_MAX, push_coupons
from flashpay.promotions.definition import parse_campaign
from flashpay.promotions.errors import PromotionError
from flashpay.promotions.inquiry import InquiryContext, discounts_for
from flashpay.promotions.report import campaign_report
from flashpay.promotions.storage import (
    budgets,
    change_state,
    create_campaign,
    list_campaigns,
    top_up,
)

app = typer.Typer(
    help="Promotion campaigns: create, list, activate, inquire.", no_args_is_help=True
)
CHINA_TZ = timezone(CHINA_TIME)


def _china(at_ns: int) -> str:
    return datetime.fromtimestamp(at_ns // NS_PER_SECOND, CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def _yuan(amount_minor: int | None) -> str:
    return "—" if amount_minor is None else f"{amount_minor // 100}.{amount_minor % 100:02d}"


def _refused(exc: PromotionError) -> typer.Exit:
    err_console.print(f"refused: {exc.code}: {exc.message}", highlight=False)
    return typer.Exit(1)


@app.command("create")
def create(
    definition: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A campaign definition (TOML).")
    ],
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a campaign (as a draft) from a TOML definition; prints its id."""
    try:
        spec = parse_campaign(tomllib.loads(definition.read_text(encoding="utf-8")))
    except tomllib.TOMLDecodeError as exc:
        err_console.print(f"invalid TOML: {exc}", highlight=False)
        raise typer.Exit(2) from exc
    except PromotionError as exc:
        err_console.print(f"invalid campaign: {exc.code}: {exc.message}", highlight=False)
        raise typer.Exit(2) from exc
    engine = create_engine(resolve_db(db, data_dir))
    try:
        with engine.begin() as connection:
            campaign = create_campaign(connection, spec=spec, now_ns=SystemClock().now_ns())
    finally:
        engine.dispose()
    console.print(f"created campaign {campaign.id} (draft): {spec.name}", soft_wrap=True)


@app.command("list")
def list_(
    state: Annotated[
        CampaignState | None, typer.Option(help="Only campaigns in this state.")
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List campaigns with their benefit, period and budget spent."""
    engine = create_engine(resolve_db(db, data_dir))
    try:
        with engine.connect() as connection:
            campaigns = list_campaigns(connection, states=[state] if state else [])
            spent = budgets(connection, campaign_ids=[c.id for c in campaigns])
    finally:
        engine.dispose()
    table = Table("id", "name", "funder", "state", "benefit", "period (China)", "spent ¥", "uses")
    for campaign in campaigns:
        budget = spent[campaign.id]
        table.add_row(
            str(campaign.id),
            campaign.spec.name,
            str(campaign.spec.funder),
            campaign.state.value,
            describe(campaign.spec.benefit)[1],
            f"{_china(campaign.spec.starts_at_ns)} → {_china(campaign.spec.ends_at_ns)}",
            f"{_yuan(budget.spent_minor)} / {_yuan(budget.money_minor)}",
            f"{budget.uses} / {'—' if budget.uses_max is None else budget.uses_max}",
        )
    console.print(table)


def _change(campaign_id: int, action: str, db: str | None, data_dir: Path | None) -> None:
    engine = create_engine(resolve_db(db, data_dir))
    try:
        with engine.begin() as connection:
            campaign = change_state(
                connection, campaign_id=campaign_id, action=action, now_ns=SystemClock().now_ns()
            )
    except PromotionError as exc:
        raise _refused(exc) from exc
    finally:
        engine.dispose()
    console.print(f"campaign {campaign.id} is {campaign.state.value}")


CampaignId = Annotated[int, typer.Argument(help="The campaign id (see `flashpay promo list`).")]


@app.command("activate")
def activate(campaign_id: CampaignId, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Activate a draft or paused campaign."""
    _change(campaign_id, "activate", db, data_dir)


@app.command("pause")
def pause(campaign_id: CampaignId, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Pause an active campaign."""
    _change(campaign_id, "pause", db, data_dir)


@app.command("end")
def end(campaign_id: CampaignId, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """End a campaign for good."""
    _change(campaign_id, "end", db, data_dir)


@app.command("top-up")
def top_up_(
    campaign_id: CampaignId,
    amount_minor: Annotated[int, typer.Option(help="Money to add, in fen.")] = 0,
    uses: Annotated[int, typer.Option(help="Uses to add.")] = 0,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add money and/or uses to a campaign's budget (an exhausted one that can pay is active)."""
    engine = create_engine(resolve_db(db, data_dir))
    try:
        with engine.begin() as connection:
            budget = top_up(connection, campaign_id=campaign_id, money_minor=amount_minor,
                            uses=uses, now_ns=SystemClock().now_ns())  # fmt: skip
    except PromotionError as exc:
        raise _refused(exc) from exc
    finally:
        engine.dispose()
    console.print(
        f"campaign {campaign_id}: budget ¥{_yuan(budget.money_minor)}, "
        f"{'—' if budget.uses_max is None else budget.uses_max} uses "
        f"(spent ¥{_yuan(budget.spent_minor)}, {budget.uses} uses)",
        highlight=False,
    )


@app.command("push-coupons")
def push_coupons_(
    campaign_id: CampaignId,
    phone: Annotated[list[str] | None, typer.Option(help="A user's phone (repeatable).")] = None,
    phones_file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Phones, one a line.")
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Push the campaign's coupon to users by phone (at most 1,000 at once); prints each one's
    outcome: issued, or why not."""
    phones = list(phone or [])
    if phones_file is not None:
        phones += [x.strip() for x in phones_file.read_text().splitlines() if x.strip()]
    if not phones or len(set(phones)) > PUSH_USERS_MAX:
        err_console.print(f"give 1 to {PUSH_USERS_MAX} phones", highlight=False)
        raise typer.Exit(2)
    engine = create_engine(resolve_db(db, data_dir))
    try:
        with engine.begin() as connection:
            outcomes = push_coupons(connection, campaign_id=campaign_id,
                                    owner_keys=[f"phone:{p}" for p in phones],
                                    now_ns=SystemClock().now_ns())  # fmt: skip
    except PromotionError as exc:
        raise _refused(exc) from exc
    finally:
        engine.dispose()
    for key, refused in outcomes.items():
        console.print(f"{key}: {'issued' if refused is None else refused.value}", highlight=False)
    issued = sum(1 for r in outcomes.values() if r is None)
    console.print(f"{issued} coupon(s) issued of campaign {campaign_id}", highlight=False)


@app.command("report")
def report(campaign_id: CampaignId, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """A campaign's uses, discount spent, budget left and volume, by day, scene and bank."""
    engine = create_engine(resolve_db(db, data_dir))
    try:
        with engine.connect() as connection:
            found = campaign_report(connection, campaign_id=campaign_id)
    except PromotionError as exc:
        raise _refused(exc) from exc
    finally:
        engine.dispose()
    console.print(
        f"campaign {found.campaign_id} ({found.state}): {found.name} — {found.uses} uses, "
        f"¥{_yuan(found.discount_minor)} off ¥{_yuan(found.volume_minor)} of payments; "
        f"left ¥{_yuan(found.money_left_minor)}, "
        f"{'—' if found.uses_left is None else found.uses_left} uses",
        soft_wrap=True,
        highlight=False,
    )
    for title, lines in (
        ("day", found.by_day),
        ("scene", found.by_scene),
        ("issuer", found.by_issuer),
    ):
        table = Table(title, "uses", "discount ¥", "volume ¥")
        for line in lines:
            table.add_row(
                line.key, str(line.uses), _yuan(line.discount_minor), _yuan(line.volume_minor)
            )
        console.print(table)


@app.command("inquiry")
def inquiry(
    phone: Annotated[str, typer.Option(help="The user's phone number.")],
    scene: Annotated[str | None, typer.Option(help="Only campaigns for this scene.")] = None,
    city: Annotated[str | None, typer.Option(help="The user's city.")] = None,
    amount_minor: Annotated[int | None, typer.Option(help="A prospective amount, in fen.")] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """What discounts a user can get now, and why not for the others."""
    engine = create_engine(resolve_db(db, data_dir))
    try:
        with engine.connect() as connection:
            offers = discounts_for(
                connection,
                inquiry=InquiryContext(
                    user=UserKeys(phone=phone), cards=(), city=city, amount_minor=amount_minor
                ),
                at_ns=SystemClock().now_ns(),
                scene=scene,
            )
    finally:
        engine.dispose()
    table = Table(
        "id", "campaign", "优惠", "benefit", "left ¥", "uses left", "yours today", "why not"
    )
    for offer in offers:
        table.add_row(
            str(offer.campaign_id),
            offer.name,
            offer.description_zh,
            offer.description_en,
            _yuan(offer.money_left_minor),
            "—" if offer.uses_left is None else str(offer.uses_left),
            "—" if offer.user_uses_left_today is None else str(offer.user_uses_left_today),
            "" if offer.why_not is None else offer.why_not.value,
        )
    console.print(table)
