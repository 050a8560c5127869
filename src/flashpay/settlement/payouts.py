"""Merchant payouts (issue 18 item 5): per settled window and merchant, a statement and a payout.

Why per *settled* window: the acquirer pays its merchants out of what the network moved to it at
the settlement bank, so a merchant is paid only for a window whose settlement chain has posted.
The value date is T+1: the Beijing day after the window's cut-off.

The statement comes from the ledger, one ``GROUP BY chain_id`` over the window
(``flashpay.ledger.windows.window_chains``) on the merchants' accounts (``merchant_payable`` at
their acquirers) and the income accounts a purchase credits (MDR, interchange, network fee):

- ``payments`` / ``payments_fen``: purchase chains that credit the merchant, gross (what the
  merchant is credited plus the MDR the chain took);
- ``refunds`` / ``refunds_fen``: purchase-code chains that debit it (refunds), gross;
- ``fees_fen``: the MDR kept on the payments less the MDR returned on the refunds;
- ``net_fen``: the net credit on the merchant's account in the window (``payments_fen -
  refunds_fen - fees_fen``, less any discount the merchant funded itself).

A refund larger than the day's sales never makes a negative payout: ``payout_fen = max(0,
carried_in_fen + net_fen)`` and the rest (``carried_out_fen <= 0``) is carried into the
merchant's next payout. Idempotent: one row per (window, merchant), written in one transaction;
a rerun returns the stored rows and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from flashpay.clock import NS_PER_SECOND
from flashpay.institutions.chart import AccountCode, TransferCode, institution_account_id
from flashpay.institutions.definition import InstitutionKind
from flashpay.institutions.service import institution_code, list_institutions
from flashpay.ledger.windows import window_chains
from flashpay.merchants.service import list_merchants
from flashpay.platform import Platform
from flashpay.settlement.errors import SettlementError, SettlementRefusal
from flashpay.settlement.models import settlement_payouts
from flashpay.settlement.models import settlement_windows as w
from flashpay.settlement.queries import window_by_id
from flashpay.settlement.windows import BEIJING_OFFSET_NS

# The income accounts a purchase credits: together, the merchant's MDR.
_INCOME = {
    InstitutionKind.ACQUIRER: AccountCode.MDR_INCOME,
    InstitutionKind.ISSUER: AccountCode.INTERCHANGE_INCOME,
    InstitutionKind.NETWORK: AccountCode.FEE_INCOME,
}
_PURCHASE_CODES = (int(TransferCode.PURCHASE), int(TransferCode.PURCHASE_HOLD))


@dataclass(frozen=True, slots=True)
class Payout:
    window_id: int
    merchant_id: int
    acquirer: str
    value_date: str  # Beijing YYYY-MM-DD, the day after the window's cut-off
    payments: int
    payments_fen: int
    refunds: int
    refunds_fen: int
    fees_fen: int
    net_fen: int
    carried_in_fen: int
    payout_fen: int
    carried_out_fen: int


def value_date(end_ns: int) -> str:
    """T+1: the Beijing day after the one the window's cut-off falls in (a 24:00 cut-off is the
    next day's 00:00, so its window is paid the day after that)."""
    local = datetime.fromtimestamp((end_ns + BEIJING_OFFSET_NS) // NS_PER_SECOND, tz=UTC)
    return (local.date() + timedelta(days=1)).isoformat()


def _row(m: sa.RowMapping) -> Payout:
    fields = {k: int(v) for k, v in m.items() if k not in ("acquirer", "value_date")}
    return Payout(acquirer=str(m["acquirer"]), value_date=str(m["value_date"]), **fields)


def window_payouts(
    connection: sa.Connection,
    window_id: int,
    *,
    acquirer: str | None = None,
    merchant_id: int | None = None,
) -> list[Payout]:
    """The stored payouts of a window (optionally one acquirer's, or one merchant's)."""
    t = settlement_payouts.c
    query = sa.select(settlement_payouts).where(t.window_id == window_id)
    if acquirer is not None:
        query = query.where(t.acquirer == acquirer)
    if merchant_id is not None:
        query = query.where(t.merchant_id == merchant_id)
    return [_row(r._mapping) for r in connection.execute(query.order_by(t.merchant_id))]


def _carried(connection: sa.Connection, merchant_id: int, before_end_ns: int) -> int:
    """What the merchant's latest earlier payout carried out (0 when none)."""
    t = settlement_payouts.c
    row = connection.execute(
        sa.select(t.carried_out_fen)
        .join(w, w.c.id == t.window_id)
        .where(t.merchant_id == merchant_id, w.c.end_ns < before_end_ns)
        .order_by(w.c.end_ns.desc())
        .limit(1)
    ).first()
    return 0 if row is None else int(row[0])


def compute_payouts(*, platform: Platform, window_id: int) -> list[Payout]:
    """Every merchant's payout for a settled window: computed and stored once, then returned
    as stored (see the module docstring)."""
    with platform.engine.connect() as connection:
        window = window_by_id(connection, window_id)
        stored = window_payouts(connection, window_id)
    if window is None:
        raise SettlementError(SettlementRefusal.WINDOW_NOT_FOUND, f"no window {window_id}")
    if window.state != "settled":
        raise SettlementError(
            SettlementRefusal.WINDOW_NOT_SETTLED, f"window {window_id} is not settled yet"
        )
    if stored:
        return stored
    merchants = {m.ledger_account_id: m for m in list_merchants(platform=platform)}
    if not merchants:
        return []
    incomes: list[int] = []
    for inst in list_institutions(platform=platform):
        kind = _INCOME.get(inst.kind)
        if kind is not None:
            incomes.append(institution_account_id(inst.code, kind))
    figures: dict[int, list[int]] = {}  # merchant id: payments, fen, refunds, fen, fees, net
    # A connection of its own: window_chains streams (a server-side cursor on PostgreSQL).
    with platform.engine.connect() as reading:
        for row in window_chains(
            reading,
            chain_id_min=window.start_ns,
            chain_id_max=window.end_ns,
            groups=[sorted(merchants), incomes],
            exclude_codes=(int(TransferCode.SETTLEMENT),),
        ):
            account, merchant_net, income_net = int(row[3]), -int(row[4]), -int(row[6])
            merchant = merchants.get(account)
            if merchant is None:
                continue
            f = figures.setdefault(merchant.id, [0, 0, 0, 0, 0, 0])
            f[5] += merchant_net
            if int(row[2]) not in _PURCHASE_CODES:
                continue
            if merchant_net >= 0:
                f[0], f[1], f[4] = f[0] + 1, f[1] + merchant_net + income_net, f[4] + income_net
            else:  # a refund: the merchant and the incomes are debited
                f[2], f[3], f[4] = f[2] + 1, f[3] - merchant_net - income_net, f[4] + income_net
    out: list[Payout] = []
    with platform.engine.begin() as connection:
        for merchant_id in sorted(figures):
            merchant = next(m for m in merchants.values() if m.id == merchant_id)
            payments, payments_fen, refunds, refunds_fen, fees, net = figures[merchant_id]
            carried_in = _carried(connection, merchant_id, window.end_ns)
            total = carried_in + net
            out.append(
                Payout(
                    window_id=window_id, merchant_id=merchant_id,
                    acquirer=institution_code(platform=platform,
                                              institution_id=merchant.acquirer_id),
                    value_date=value_date(window.end_ns), payments=payments,
                    payments_fen=payments_fen, refunds=refunds, refunds_fen=refunds_fen,
                    fees_fen=fees, net_fen=net, carried_in_fen=carried_in,
                    payout_fen=max(0, total), carried_out_fen=min(0, total),
                )
            )  # fmt: skip
        if out:
            connection.execute(sa.insert(settlement_payouts), [_as_dict(p) for p in out])
    return out


def payouts(*, platform: Platform, window_id: int) -> list[Payout]:
    """A settled window's payouts, the earlier windows' first (oldest first, so each carries
    the right amount forward; refused while an earlier window is unsettled). Safe against a
    rival run: the primary key refuses the second writer's rows (its transaction rolls back
    whole), which then reads the first's."""
    with platform.engine.connect() as connection:
        target = window_by_id(connection, window_id)
        if target is None:
            raise SettlementError(SettlementRefusal.WINDOW_NOT_FOUND, f"no window {window_id}")
        earlier = connection.execute(
            sa.select(w.c.id, w.c.state)
            .where(w.c.end_ns < target.end_ns)
            .where(~sa.exists().where(settlement_payouts.c.window_id == w.c.id))
            .order_by(w.c.end_ns)
        ).all()
    for row in earlier:
        if row.state != "settled":
            raise SettlementError(
                SettlementRefusal.WINDOW_NOT_SETTLED,
                f"an earlier window {row.id} is not settled yet: its payouts come first",
            )
    for wid in [int(r.id) for r in earlier] + [window_id]:
        try:
            found = compute_payouts(platform=platform, window_id=wid)
        except sa.exc.IntegrityError:
            with platform.engine.connect() as connection:
                found = window_payouts(connection, wid)
    return found


def _as_dict(p: Payout) -> dict[str, object]:
    return {name: getattr(p, name) for name in Payout.__dataclass_fields__}
