"""A window's figures from the ledger's pair sums: pure functions, no I/O.

``positions(chart, sums)`` gives, per member: what it owes and is owed gross, the refunds in
that, interchange, network fees and MDR, the promotion funding (a discount's legs, transfer codes
12 and 13), anything else (adjustments, codes settlement does not know), and the multilateral net
position (positive: it receives). ``moves`` gives each cleared account's net debit: the
settlement chain reverses exactly these.

The net position comes from the network's books (credits less debits on the network's mirror of
the member); ``books_net_fen`` is the same figure from the member's own books (debits less
credits on its mirror of the network). They agree, and the positions sum to zero, when every
chain of the window balances within each institution's books; ``close`` checks both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flashpay.institutions.chart import TransferCode
from flashpay.institutions.definition import InstitutionKind
from flashpay.ledger.windows import PairSum
from flashpay.settlement.chart import SettlementChart

_KNOWN_CODES = {int(TransferCode.PURCHASE), int(TransferCode.PURCHASE_HOLD), int(TransferCode.P2P)}
# A discount's legs (decision 0019): the card's credit and the funder's legs through the network.
_PROMOTION_CODES = {int(TransferCode.PROMOTION), int(TransferCode.PROMOTION_FUNDING)}


@dataclass(frozen=True, slots=True)
class Position:
    member: str
    kind: str
    owes_fen: int
    owed_fen: int
    refunds_fen: int
    interchange_fen: int
    network_fee_fen: int
    mdr_fen: int
    other_fen: int
    net_fen: int
    books_net_fen: int
    transactions: int = 0
    promotion_fen: int = 0  # the discount legs on the member's side (positive: it is paid)


def net_debits(sums: Sequence[PairSum]) -> dict[int, int]:
    """Each key's debits less credits over ``sums`` (key 0, the accounts outside, left out)."""
    out: dict[int, int] = defaultdict(int)
    for s in sums:
        out[s.debit_key] += s.amount
        out[s.credit_key] -= s.amount
    out.pop(0, None)
    return dict(out)


def moves(chart: SettlementChart, sums: Sequence[PairSum]) -> dict[int, int]:
    """Each cleared account's non-zero net debit in the window."""
    nets = net_debits(sums)
    return {a: nets[a] for a in sorted(chart.cleared) if nets.get(a, 0) != 0}


def positions(
    chart: SettlementChart, sums: Sequence[PairSum], transactions: Mapping[str, int]
) -> list[Position]:
    """Every member's figures (the network first), see the module docstring."""
    nets = net_debits(sums)
    debits: dict[int, int] = defaultdict(int)
    credits: dict[int, int] = defaultdict(int)
    refunds: dict[int, int] = defaultdict(int)
    other: dict[int, int] = defaultdict(int)
    promotion: dict[int, int] = defaultdict(int)
    acquirer_side = {a for m in chart.members if m.kind is InstitutionKind.ACQUIRER
                     for a in m.network_side}  # fmt: skip
    issuer_receivable = {m.network_side[0] for m in chart.members
                         if m.kind is InstitutionKind.ISSUER}  # fmt: skip
    fee_income = chart.members[0].income
    fee_by_issuer: dict[int, int] = defaultdict(int)
    for s in sums:
        debits[s.debit_key] += s.amount
        credits[s.credit_key] += s.amount
        if s.code in _PROMOTION_CODES:
            promotion[s.debit_key] -= s.amount
            promotion[s.credit_key] += s.amount
        elif s.code not in _KNOWN_CODES:
            other[s.debit_key] -= s.amount
            other[s.credit_key] += s.amount
        # A refund reverses a purchase: acquirer_payable[Y] is debited, issuer_receivable[X]
        # credited (and the fee comes back from fee_income).
        if s.debit_key in acquirer_side and s.credit_key in issuer_receivable:
            refunds[s.debit_key] += s.amount
            refunds[s.credit_key] += s.amount
        if s.credit_key == fee_income:
            fee_by_issuer[s.debit_key] += s.amount
        if s.debit_key == fee_income:
            fee_by_issuer[s.credit_key] -= s.amount
    out: list[Position] = []
    for m in chart.members:
        side = m.network_side if m.kind is not InstitutionKind.NETWORK else m.own_side
        if m.kind is InstitutionKind.NETWORK:
            net = sum(nets.get(a, 0) for a in m.own_side)
            books = -nets.get(m.income, 0)  # its fee income: what its mirrors leave it
            owes, owed = sum(credits[a] for a in side), sum(debits[a] for a in side)
        else:
            net = -sum(nets.get(a, 0) for a in m.network_side)
            books = sum(nets.get(a, 0) for a in m.own_side)
            owes, owed = sum(debits[a] for a in side), sum(credits[a] for a in side)
        income = -nets.get(m.income, 0)
        out.append(
            Position(
                member=m.code,
                kind=m.kind.value,
                owes_fen=owes,
                owed_fen=owed,
                refunds_fen=sum(refunds[a] for a in m.network_side),
                interchange_fen=income if m.kind is InstitutionKind.ISSUER else 0,
                network_fee_fen=(
                    income
                    if m.kind is InstitutionKind.NETWORK
                    else sum(fee_by_issuer[a] for a in m.network_side)
                ),
                mdr_fen=income if m.kind is InstitutionKind.ACQUIRER else 0,
                other_fen=sum(other[a] for a in side),
                net_fen=net,
                books_net_fen=books,
                transactions=transactions.get(m.code, 0),
                # The network's sign follows its net (debits on its mirrors: it receives).
                promotion_fen=(-1 if m.kind is InstitutionKind.NETWORK else 1)
                * sum(promotion[a] for a in side),
            )
        )
    return out
