"""Campaigns in the database, and taking budgets and caps atomically in the payment's transaction.

Every function takes a ``connection`` and runs inside the **caller's** transaction: the payment
stage opens one unit of work, calls ``take`` next to its own writes, and the discount commits or
rolls back with the payment. Nothing here commits.

**Why ``take`` never overspends.** Each counter is moved by one conditional UPDATE whose WHERE
clause is the limit itself::

    UPDATE promo_budgets SET spent_minor = spent_minor + :d, uses = uses + 1
     WHERE campaign_id = :c
       AND (money_minor IS NULL OR spent_minor + :d <= money_minor)
       AND (uses_max IS NULL OR uses + 1 <= uses_max)
       AND <the campaign is active>

On PostgreSQL (READ COMMITTED) a second transaction updating the same row waits for the first
and then re-evaluates the WHERE clause on the committed row, so two payments can never both fit
into the last unit; on SQLite the database's single writer serializes them. Caps work the same
way on ``promo_user_usage`` / ``promo_card_usage`` rows (created first by an INSERT that ignores
a conflict, then moved by ``uses < :cap``). There is no read-then-write anywhere, which is the
failure that let 150 redemptions through a limit of 100. CHECK constraints on ``promo_budgets``
restate the limits as a last line of defence.

Rows are always locked in the same order — by campaign id across all the choices of a batch,
and within a campaign its budget row first (which guards the campaign's usage rows), then user
keys sorted, card, coupon — so concurrent takes, batched or single, cannot deadlock.

A choice is taken whole or not at all: when a later step is refused, the earlier steps of the
same choice are undone by compensating UPDATEs in the same transaction (which still holds their
row locks, so nobody saw them). SAVEPOINTs would do the same, but pysqlite's savepoints are
unreliable without extra driver hooks; compensation is plain SQL on both databases.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flashpay.errors import invariant
from flashpay.promotions.benefits import smallest_discount_minor
from flashpay.promotions.campaigns import (
    TRANSITIONS,
    Campaign,
    CampaignSpec,
    CampaignState,
    Funder,
    FunderKind,
    Stacking,
)
from flashpay.promotions.choose import Applied, Choice
from flashpay.promotions.definition import to_definition
from flashpay.promotions.eligibility import could_clash
from flashpay.promotions.errors import PromotionError
from flashpay.promotions.errors import PromotionRefusal as R
from flashpay.promotions.index import narrowed, record, spec_of
from flashpay.promotions.models import (
    PAYMENT_REF_CHARS,
    TOTAL_DAY,
    USER_KEY_CHARS,
    promo_budgets,
    promo_campaigns,
    promo_card_usage,
    promo_coupons,
    promo_redemptions,
    promo_user_usage,
)
from flashpay.promotions.usage import BudgetState, Usage

CHOICES_MAX = 1_000  # choices in one take (a batch of payments)
REFS_MAX = 1_000  # payment refs in one give_back
TOP_UP_MAX_MINOR = 100_000_000_00

_ACTIVE = CampaignState.ACTIVE.value
_EXHAUSTED = CampaignState.EXHAUSTED.value


# -- campaigns ----------------------------------------------------------------------------------
def _campaign(row: Any) -> Campaign:  # a row with id, state, definition
    spec = spec_of(str(row.definition))  # parsed once per process: a definition never changes
    return Campaign(id=int(str(row.id)), state=CampaignState(row.state), spec=spec)


def create_campaign(connection: sa.Connection, *, spec: CampaignSpec, now_ns: int) -> Campaign:
    """Record a checked spec as a DRAFT campaign with its budget counters."""
    definition = json.dumps(to_definition(spec), sort_keys=True, ensure_ascii=False)
    campaign_id = connection.execute(
        promo_campaigns.insert()
        .values(
            name=spec.name,
            funder_kind=spec.funder.kind.value,
            funder_id=spec.funder.id,
            state=CampaignState.DRAFT.value,
            starts_at_ns=spec.starts_at_ns,
            ends_at_ns=spec.ends_at_ns,
            priority=spec.priority,
            stacking=spec.stacking.value,
            definition=definition,
            created_at_ns=now_ns,
            updated_at_ns=now_ns,
        )
        .returning(promo_campaigns.c.id)
    ).scalar_one()
    record(connection, campaign_id=int(campaign_id), spec=spec)
    connection.execute(
        promo_budgets.insert().values(
            campaign_id=campaign_id,
            money_minor=spec.budget.money_minor,
            uses_max=spec.budget.uses,
            spent_minor=0,
            uses=0,
            smallest_discount_minor=smallest_discount_minor(spec.benefit),
            coupons_max=None if spec.coupon is None else spec.coupon.coupons_max,
            coupons_issued=0,
        )
    )
    return Campaign(id=int(campaign_id), state=CampaignState.DRAFT, spec=spec)


def get_campaign(connection: sa.Connection, *, campaign_id: int) -> Campaign | None:
    row = connection.execute(
        sa.select(promo_campaigns).where(promo_campaigns.c.id == campaign_id)
    ).first()
    return None if row is None else _campaign(row)


def list_campaigns(
    connection: sa.Connection,
    *,
    states: Collection[CampaignState] = (),
    funder: Funder | None = None,
) -> list[Campaign]:
    """Campaigns by id, optionally only in ``states`` or of one ``funder``."""
    query = sa.select(promo_campaigns).order_by(promo_campaigns.c.id)
    if states:
        query = query.where(promo_campaigns.c.state.in_([s.value for s in states]))
    if funder is not None:
        query = query.where(
            promo_campaigns.c.funder_kind == funder.kind.value,
            promo_campaigns.c.funder_id == funder.id,
        )
    return [_campaign(row) for row in connection.execute(query)]


def active_campaigns(
    connection: sa.Connection,
    *,
    at_ns: int,
    scene: str | None = None,
    include_exhausted: bool = False,
    merchant_id: int | None = None,
    city: str | None = None,
) -> list[Campaign]:
    """ACTIVE campaigns whose period contains ``at_ns`` and that can apply to ``scene``,
    ``merchant_id`` and ``city`` (each when given), by the index (``flashpay.promotions.index``).

    The index only narrows: a campaign it leaves out could not apply (``eligibility.refusal``
    would refuse it for that scene, merchant or city), so ``choose`` over the narrowed list
    applies exactly what it would over all of them. ``include_exhausted`` adds the ones whose
    budget ran out, for the inquiry to say so.
    """
    states = [_ACTIVE, _EXHAUSTED] if include_exhausted else [_ACTIVE]
    c = promo_campaigns.c
    rows = connection.execute(
        sa.select(c.id, c.state, c.definition)
        .where(
            c.state.in_(states),
            c.starts_at_ns <= at_ns,
            c.ends_at_ns > at_ns,
            *narrowed(c.id, scene=scene, merchant_id=merchant_id, city=city),
        )
        .order_by(c.id)
    )
    return [_campaign(row) for row in rows]


def campaigns_by_id(connection: sa.Connection, *, campaign_ids: Collection[int]) -> list[Campaign]:
    """The campaigns among ``campaign_ids`` that exist, in any state, by id."""
    rows = connection.execute(
        sa.select(promo_campaigns.c.id, promo_campaigns.c.state, promo_campaigns.c.definition)
        .where(promo_campaigns.c.id.in_(sorted(set(campaign_ids))))
        .order_by(promo_campaigns.c.id)
    )
    return [_campaign(row) for row in rows]


def change_state(
    connection: sa.Connection,
    *,
    campaign_id: int,
    action: str,
    now_ns: int,
    funder: Funder | None = None,
) -> Campaign:
    """``activate``, ``pause`` or ``end`` a campaign; ``funder`` (when given) must own it.

    One conditional UPDATE from the allowed states, so two concurrent actions cannot both apply.
    Raises ``PromotionError``: ``CAMPAIGN_NOT_FOUND``, ``NOT_FUNDER``, ``OVERLAPPING_EXCLUSIVE``
    (activating an exclusive campaign while the same funder runs another exclusive one that could
    apply to the same payments), ``INVALID_TRANSITION``.
    """
    invariant(action in TRANSITIONS, f"unknown campaign action {action!r}")
    allowed, target = TRANSITIONS[action]
    campaign = _owned(connection, campaign_id=campaign_id, funder=funder)
    if action == "activate":
        _refuse_overlapping_exclusive(connection, campaign)
    moved = connection.execute(
        promo_campaigns.update()
        .where(
            promo_campaigns.c.id == campaign_id,
            promo_campaigns.c.state.in_([s.value for s in allowed]),
        )
        .values(state=target.value, updated_at_ns=now_ns)
    ).rowcount
    if moved != 1:
        raise PromotionError(
            R.INVALID_TRANSITION,
            f"cannot {action} campaign {campaign_id} from {campaign.state.value}",
            details={"campaign_id": campaign_id, "state": campaign.state.value},
        )
    return Campaign(id=campaign.id, state=target, spec=campaign.spec)


def _refuse_overlapping_exclusive(connection: sa.Connection, campaign: Campaign) -> None:
    """One funder, two exclusive campaigns on the same payments: which one wins would be an
    accident of the ranking, so the second is refused (a management check, not a race guard)."""
    if campaign.spec.stacking is not Stacking.EXCLUSIVE:
        return
    running = (CampaignState.ACTIVE, CampaignState.PAUSED, CampaignState.EXHAUSTED)
    for other in list_campaigns(connection, states=running, funder=campaign.spec.funder):
        if other.id == campaign.id or other.spec.stacking is not Stacking.EXCLUSIVE:
            continue
        if could_clash(campaign.spec, other.spec):
            raise PromotionError(
                R.OVERLAPPING_EXCLUSIVE,
                f"campaign {campaign.id} overlaps exclusive campaign {other.id} of the same funder",
                details={"campaign_id": campaign.id, "overlaps": other.id},
            )


def _owned(connection: sa.Connection, *, campaign_id: int, funder: Funder | None) -> Campaign:
    campaign = get_campaign(connection, campaign_id=campaign_id)
    if campaign is None:
        raise PromotionError(R.CAMPAIGN_NOT_FOUND, f"no campaign {campaign_id}")
    if funder is not None and campaign.spec.funder != funder:
        raise PromotionError(R.NOT_FUNDER, f"campaign {campaign_id} is not funded by {funder}")
    return campaign


def top_up(
    connection: sa.Connection,
    *,
    campaign_id: int,
    money_minor: int = 0,
    uses: int = 0,
    now_ns: int,
    funder: Funder | None = None,
) -> BudgetState:
    """Raise a campaign's budget; an EXHAUSTED campaign that can pay again becomes ACTIVE.

    A dimension the budget does not limit (``money_minor`` or ``uses`` None) stays unlimited.
    Raises ``PromotionError``: ``INVALID_BUDGET``, ``CAMPAIGN_NOT_FOUND``, ``NOT_FUNDER``.
    """
    if money_minor < 0 or uses < 0 or money_minor + uses == 0 or money_minor > TOP_UP_MAX_MINOR:
        raise PromotionError(R.INVALID_BUDGET, "a top-up adds money_minor and/or uses, above 0")
    _owned(connection, campaign_id=campaign_id, funder=funder)
    b = promo_budgets.c
    connection.execute(
        promo_budgets.update()
        .where(b.campaign_id == campaign_id)
        .values(
            money_minor=sa.case((b.money_minor.is_(None), None), else_=b.money_minor + money_minor),
            uses_max=sa.case((b.uses_max.is_(None), None), else_=b.uses_max + uses),
        )
    )
    _reactivate(connection, [campaign_id], now_ns=now_ns)
    return budgets(connection, campaign_ids=[campaign_id])[campaign_id]


def budgets(connection: sa.Connection, *, campaign_ids: Iterable[int]) -> dict[int, BudgetState]:
    rows = connection.execute(
        sa.select(promo_budgets).where(promo_budgets.c.campaign_id.in_(list(campaign_ids)))
    )
    return {
        int(row.campaign_id): BudgetState(
            money_minor=row.money_minor,
            uses_max=row.uses_max,
            spent_minor=int(row.spent_minor),
            uses=int(row.uses),
        )
        for row in rows
    }


def _nulls(*types: type[sa.types.TypeEngine[Any]]) -> list[sa.ColumnElement[Any]]:
    return [sa.cast(sa.null(), t) for t in types]


def usage_for(
    connection: sa.Connection,
    *,
    campaign_ids: Collection[int],
    user_keys: Collection[str],
    card_fingerprints: Collection[str],
    day: str,
    at_ns: int,
) -> Usage:
    """The counts ``choose`` and the inquiry check caps against, and the budgets: one statement
    (a UNION ALL of the four tables' reads, one round trip instead of four — issue 15).

    Every branch returns ``(kind, campaign_id, text_a, text_b, n1, n2, n3, n4)``: ``u`` a user
    usage row (key, day, uses), ``c`` a card's (fingerprint, uses), ``k`` a usable coupon (id,
    expiry; the one that expires soonest is the one offered, then the lowest id), ``b`` a budget
    (money, uses max, spent, uses)."""
    if not campaign_ids:
        return Usage()
    ids, keys, cards_in = list(campaign_ids), list(user_keys), list(card_fingerprints)
    u, c, k, b = promo_user_usage.c, promo_card_usage.c, promo_coupons.c, promo_budgets.c
    text, big = sa.String, sa.BigInteger
    branches = [
        sa.select(sa.literal("u", text), u.campaign_id, sa.cast(u.user_key, text),
                  sa.cast(u.day, text), sa.cast(u.uses, big), *_nulls(big, big, big))
        .where(u.campaign_id.in_(ids), u.user_key.in_(keys), u.day.in_([day, TOTAL_DAY])),
        sa.select(sa.literal("k", text), k.campaign_id, *_nulls(text, text),
                  sa.cast(k.id, big), k.expires_at_ns, *_nulls(big, big))
        .where(k.campaign_id.in_(ids), k.owner_key.in_(keys), k.state == "issued",
               k.expires_at_ns > at_ns),
        sa.select(sa.literal("b", text), b.campaign_id, *_nulls(text, text),
                  b.money_minor, b.uses_max, b.spent_minor, b.uses)
        .where(b.campaign_id.in_(ids)),
    ]  # fmt: skip
    if cards_in:
        branches.append(
            sa.select(sa.literal("c", text), c.campaign_id, sa.cast(c.card_fingerprint, text),
                      *_nulls(text), sa.cast(c.uses, big), *_nulls(big, big, big))
            .where(c.campaign_id.in_(ids), c.card_fingerprint.in_(cards_in))
        )  # fmt: skip
    today: dict[tuple[int, str], int] = {}
    total: dict[tuple[int, str], int] = {}
    cards: dict[tuple[int, str], int] = {}
    soonest: dict[int, tuple[int, int]] = {}  # campaign -> (expires, coupon id)
    found: dict[int, BudgetState] = {}
    for kind, cid, a, d, n1, n2, n3, n4 in connection.execute(sa.union_all(*branches)):
        cid = int(cid)
        if kind == "u":
            (total if d == TOTAL_DAY else today)[(cid, str(a))] = int(n1)
        elif kind == "c":
            cards[(cid, str(a))] = int(n1)
        elif kind == "k":
            candidate = (int(n2), int(n1))
            if cid not in soonest or candidate < soonest[cid]:
                soonest[cid] = candidate
        else:
            found[cid] = BudgetState(
                money_minor=None if n1 is None else int(n1),
                uses_max=None if n2 is None else int(n2),
                spent_minor=int(n3),
                uses=int(n4),
            )
    return Usage(
        budgets=found,
        user_today=today,
        user_total=total,
        card_total=cards,
        coupons={cid: coupon_id for cid, (_, coupon_id) in soonest.items()},
    )


# -- take and give back -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Taken:
    """The outcome of taking one choice: all its benefits, or none and the first refusal."""

    payment_ref: str
    refusal: R | None
    discount_minor: int

    @property
    def taken(self) -> bool:
        return self.refusal is None


def insert_ignoring_conflict(
    connection: sa.Connection, table: sa.Table, values: dict[str, object]
) -> int:
    """INSERT … ON CONFLICT DO NOTHING (both dialects): 1 when inserted, 0 when it existed.

    RETURNING says whether a row went in: SQLAlchemy reports no ``rowcount`` for an INSERT.
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    first_key = next(iter(table.primary_key.columns))
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing().returning(first_key)
    return len(connection.execute(statement).all())


_Undo = Callable[[], None]


def _take_budget(connection: sa.Connection, item: Applied) -> R | None:
    b = promo_budgets.c
    active = sa.exists().where(
        promo_campaigns.c.id == item.campaign_id, promo_campaigns.c.state == _ACTIVE
    )
    moved = connection.execute(
        promo_budgets.update()
        .where(
            b.campaign_id == item.campaign_id,
            sa.or_(b.money_minor.is_(None), b.spent_minor + item.discount_minor <= b.money_minor),
            sa.or_(b.uses_max.is_(None), b.uses + 1 <= b.uses_max),
            active,
        )
        .values(spent_minor=b.spent_minor + item.discount_minor, uses=b.uses + 1)
    ).rowcount
    if moved == 1:
        return None
    state = connection.execute(
        sa.select(promo_campaigns.c.state).where(promo_campaigns.c.id == item.campaign_id)
    ).scalar_one_or_none()
    return R.BUDGET_EXHAUSTED if state in (_ACTIVE, _EXHAUSTED) else R.NOT_ACTIVE


def _give_budget(connection: sa.Connection, campaign_id: int, discount_minor: int) -> None:
    b = promo_budgets.c
    connection.execute(
        promo_budgets.update()
        .where(b.campaign_id == campaign_id)
        .values(spent_minor=b.spent_minor - discount_minor, uses=b.uses - 1)
    )


def _count_user(connection: sa.Connection, campaign_id: int, key: str, day: str, cap: int) -> bool:
    u = promo_user_usage.c
    insert_ignoring_conflict(
        connection,
        promo_user_usage,
        {"campaign_id": campaign_id, "user_key": key, "day": day, "uses": 0},
    )
    where = (u.campaign_id == campaign_id, u.user_key == key, u.day == day)
    moved = connection.execute(
        promo_user_usage.update().where(*where, u.uses < cap).values(uses=u.uses + 1)
    ).rowcount
    return moved == 1


def _uncount_user(connection: sa.Connection, campaign_id: int, key: str, day: str) -> None:
    u = promo_user_usage.c
    connection.execute(
        promo_user_usage.update()
        .where(u.campaign_id == campaign_id, u.user_key == key, u.day == day, u.uses > 0)
        .values(uses=u.uses - 1)
    )


def _count_card(connection: sa.Connection, campaign_id: int, card: str, cap: int) -> bool:
    c = promo_card_usage.c
    insert_ignoring_conflict(
        connection,
        promo_card_usage,
        {"campaign_id": campaign_id, "card_fingerprint": card, "uses": 0},
    )
    moved = connection.execute(
        promo_card_usage.update()
        .where(c.campaign_id == campaign_id, c.card_fingerprint == card, c.uses < cap)
        .values(uses=c.uses + 1)
    ).rowcount
    return moved == 1


def _uncount_card(connection: sa.Connection, campaign_id: int, card: str) -> None:
    c = promo_card_usage.c
    connection.execute(
        promo_card_usage.update()
        .where(c.campaign_id == campaign_id, c.card_fingerprint == card, c.uses > 0)
        .values(uses=c.uses - 1)
    )


def _redeem_coupon(
    connection: sa.Connection, choice: Choice, item: Applied, coupon_id: int
) -> bool:
    k = promo_coupons.c
    moved = connection.execute(
        promo_coupons.update()
        .where(
            k.id == coupon_id,
            k.campaign_id == item.campaign_id,
            k.owner_key.in_(list(choice.user_keys)),
            k.state == "issued",
            k.expires_at_ns > choice.at_ns,
        )
        .values(state="redeemed", payment_ref=choice.payment_ref, redeemed_at_ns=choice.at_ns)
    ).rowcount
    return moved == 1


def _restore_coupon(connection: sa.Connection, coupon_id: int, payment_ref: str) -> None:
    k = promo_coupons.c
    connection.execute(
        promo_coupons.update()
        .where(k.id == coupon_id, k.state == "redeemed", k.payment_ref == payment_ref)
        .values(state="issued", payment_ref=None, redeemed_at_ns=None)
    )


def _delete_redemption(connection: sa.Connection, payment_ref: str, campaign_id: int) -> None:
    r = promo_redemptions.c
    connection.execute(
        promo_redemptions.delete().where(r.payment_ref == payment_ref, r.campaign_id == campaign_id)
    )


def _take_one(
    connection: sa.Connection, choice: Choice, item: Applied, undo: list[_Undo]
) -> R | None:
    """Take one benefit of a choice, pushing how to undo each step; the first refusal or None."""
    cid, ref = item.campaign_id, choice.payment_ref
    invariant(item.discount_minor > 0, f"a benefit of {item.discount_minor} fen to take")
    invariant(len(ref) <= PAYMENT_REF_CHARS, "payment ref longer than promo_redemptions keeps")
    invariant(
        all(len(key) <= USER_KEY_CHARS for key in choice.user_keys), "user key too long to count"
    )
    inserted = insert_ignoring_conflict(
        connection,
        promo_redemptions,
        {
            "payment_ref": ref,
            "campaign_id": cid,
            "funder_kind": item.funder.kind.value,
            "funder_id": item.funder.id,
            "discount_minor": item.discount_minor,
            "coupon_id": item.coupon_id,
            "user_keys": json.dumps(list(choice.user_keys)),
            "card_fingerprint": choice.card_fingerprint,
            "day": choice.day,
            "amount_minor": choice.amount_minor,
            "scene": choice.scene,
            "issuer_id": choice.issuer_id,
            "state": "taken",
            "taken_at_ns": choice.at_ns,
        },
    )
    if inserted != 1:
        return R.ALREADY_TAKEN
    undo.append(partial(_delete_redemption, connection, ref, cid))
    refused = _take_budget(connection, item)
    if refused is not None:
        return refused
    undo.append(partial(_give_budget, connection, cid, item.discount_minor))
    per_user = (
        (choice.day, item.caps.user_per_day, R.USER_DAILY_CAP),
        (TOTAL_DAY, item.caps.user_per_campaign, R.USER_CAMPAIGN_CAP),
    )
    for day, cap, reason in per_user:
        if cap is None:
            continue
        for key in choice.user_keys:
            if not _count_user(connection, cid, key, day, cap):
                return reason
            undo.append(partial(_uncount_user, connection, cid, key, day))
    card, card_cap = choice.card_fingerprint, item.caps.card_per_campaign
    if card is not None and card_cap is not None:
        if not _count_card(connection, cid, card, card_cap):
            return R.CARD_CAP
        undo.append(partial(_uncount_card, connection, cid, card))
    if item.coupon_id is not None:
        coupon_id = item.coupon_id
        if not _redeem_coupon(connection, choice, item, coupon_id):
            return R.COUPON_UNAVAILABLE
        undo.append(partial(_restore_coupon, connection, coupon_id, ref))
    return None


def _exhaust(connection: sa.Connection, campaign_ids: Sequence[int], *, now_ns: int) -> None:
    """ACTIVE → EXHAUSTED for campaigns whose budget left cannot pay their smallest discount."""
    b = promo_budgets.c
    spent = sa.exists().where(
        b.campaign_id == promo_campaigns.c.id,
        sa.or_(
            sa.and_(
                b.money_minor.is_not(None),
                b.money_minor - b.spent_minor < b.smallest_discount_minor,
            ),
            sa.and_(b.uses_max.is_not(None), b.uses >= b.uses_max),
        ),
    )
    connection.execute(
        promo_campaigns.update()
        .where(
            promo_campaigns.c.id.in_(list(campaign_ids)), promo_campaigns.c.state == _ACTIVE, spent
        )
        .values(state=_EXHAUSTED, updated_at_ns=now_ns)
    )


def _reactivate(connection: sa.Connection, campaign_ids: Sequence[int], *, now_ns: int) -> None:
    """EXHAUSTED → ACTIVE for campaigns whose budget can pay again (a give-back or a top-up)."""
    b = promo_budgets.c
    affords = sa.exists().where(
        b.campaign_id == promo_campaigns.c.id,
        sa.or_(b.money_minor.is_(None), b.money_minor - b.spent_minor >= b.smallest_discount_minor),
        sa.or_(b.uses_max.is_(None), b.uses < b.uses_max),
    )
    connection.execute(
        promo_campaigns.update()
        .where(
            promo_campaigns.c.id.in_(list(campaign_ids)),
            promo_campaigns.c.state == _EXHAUSTED,
            affords,
        )
        .values(state=_ACTIVE, updated_at_ns=now_ns)
    )


def take(connection: sa.Connection, choices: Sequence[Choice]) -> list[Taken]:
    """Take every choice's benefits, each choice whole or not at all, in the caller's transaction.

    The caps come with the choice (``Applied.caps``, copied by ``choose`` from the campaign,
    whose definition never changes); the budget's limits and the campaign's state are read by
    the UPDATEs themselves. Returns one ``Taken`` per choice, in order (a choice without
    benefits is taken with a 0 discount). A refused choice leaves nothing behind; the
    payment stage then pays full price or chooses again with a fresh ``usage_for``. Refusals:
    ``ALREADY_TAKEN`` (this payment already took the campaign), ``NOT_ACTIVE``,
    ``BUDGET_EXHAUSTED``, ``USER_DAILY_CAP``, ``USER_CAMPAIGN_CAP``, ``CARD_CAP``,
    ``COUPON_UNAVAILABLE``.
    """
    invariant(len(choices) <= CHOICES_MAX, f"at most {CHOICES_MAX} choices in one take")
    # One lock order for the whole batch: by campaign id, whatever choice a benefit belongs to.
    # A campaign's budget row is taken first and guards its usage rows, so two batches (or a
    # batch and single payments) touching the same campaigns always queue in the same order.
    steps = sorted(
        (
            (item.campaign_id, n, item)
            for n, choice in enumerate(choices)
            for item in choice.applied
        ),
        key=lambda step: (step[0], step[1]),
    )
    undo: dict[int, list[_Undo]] = {n: [] for n in range(len(choices))}
    refused: dict[int, R] = {}
    for _, n, item in steps:
        if n in refused:
            continue
        reason = _take_one(connection, choices[n], item, undo[n])
        if reason is not None:
            refused[n] = reason
            for step in reversed(undo[n]):  # rows this transaction already holds: no new lock
                step()
    taken_ids = sorted({cid for cid, n, _ in steps if n not in refused})
    if taken_ids:
        _exhaust(connection, taken_ids, now_ns=max(choice.at_ns for choice in choices))
    return [
        Taken(choice.payment_ref, refused[n], 0)
        if n in refused
        else Taken(choice.payment_ref, None, choice.discount_minor)
        for n, choice in enumerate(choices)
    ]


@dataclass(frozen=True, slots=True)
class GivenBack:
    payment_ref: str
    campaign_id: int
    funder: Funder
    discount_minor: int


def give_back(
    connection: sa.Connection, *, payment_refs: Sequence[str], now_ns: int
) -> list[GivenBack]:
    """Return everything the payments took (declined or fully refunded): budget, caps, coupons.

    Each redemption goes back at most once (a conditional UPDATE ``taken → given_back``), so a
    retried give-back returns nothing the second time. Returns what was given back.
    """
    invariant(len(payment_refs) <= REFS_MAX, f"at most {REFS_MAX} payment refs in one give_back")
    if not payment_refs:
        return []
    r = promo_redemptions.c
    rows = connection.execute(
        promo_redemptions.update()
        .where(r.payment_ref.in_(list(payment_refs)), r.state == "taken")
        .values(state="given_back", given_back_at_ns=now_ns)
        .returning(
            r.payment_ref,
            r.campaign_id,
            r.funder_kind,
            r.funder_id,
            r.discount_minor,
            r.coupon_id,
            r.user_keys,
            r.card_fingerprint,
            r.day,
        )
    ).all()
    given: list[GivenBack] = []
    for row in sorted(rows, key=lambda row: (int(row.campaign_id), str(row.payment_ref))):
        cid, discount = int(row.campaign_id), int(row.discount_minor)
        _give_budget(connection, cid, discount)
        for key in json.loads(row.user_keys):
            _uncount_user(connection, cid, key, row.day)
            _uncount_user(connection, cid, key, TOTAL_DAY)
        if row.card_fingerprint is not None:
            _uncount_card(connection, cid, row.card_fingerprint)
        if row.coupon_id is not None:
            _restore_coupon(connection, int(row.coupon_id), row.payment_ref)
        given.append(
            GivenBack(
                payment_ref=row.payment_ref,
                campaign_id=cid,
                funder=Funder(FunderKind(row.funder_kind), int(row.funder_id)),
                discount_minor=discount,
            )
        )
    _reactivate(connection, sorted({g.campaign_id for g in given}), now_ns=now_ns)
    return given
