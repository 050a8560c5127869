"""Which ledger accounts settlement clears, per member (the chart of accounts, ARCHITECTURE §4).

For each member the *network side* is the network's mirror of it (``issuer_receivable[X]``,
``issuer_payable[X]``, ``acquirer_payable[Y]``) and the *own side* is the member's mirror of the
network (an issuer's ``network_payable`` and ``network_receivable``, an acquirer's
``network_receivable``). A member's position is the credits less the debits on its network side
(positive: the network owes it); its own books must show the same figure as debits less credits
on its own side. The network's own side is all the mirrors; its position is what they leave (its
fees). Income accounts (interchange, MDR, fee income) are read for the reports, never cleared.
"""

from __future__ import annotations

from dataclasses import dataclass

from flashpay.institutions.chart import AccountCode, institution_account_id
from flashpay.institutions.definition import InstitutionKind
from flashpay.institutions.service import list_institutions
from flashpay.platform import Platform
from flashpay.settlement.errors import SettlementError, SettlementRefusal


@dataclass(frozen=True, slots=True)
class MemberAccounts:
    code: str
    kind: InstitutionKind
    network_side: tuple[int, ...]
    own_side: tuple[int, ...]
    income: int  # interchange_income, mdr_income or fee_income
    deposit: int  # the member's settlement_deposit (its own books)
    bank_account: int  # the bank's settlement_account[member]


@dataclass(frozen=True, slots=True)
class SettlementChart:
    network: str
    bank: str
    clearing: int  # the bank's settlement_clearing
    members: tuple[MemberAccounts, ...]  # the network first, then issuers, then acquirers

    def member(self, code: str) -> MemberAccounts:
        return next(m for m in self.members if m.code == code)

    @property
    def cleared(self) -> dict[int, str]:
        """Every account a settlement clears, with the member whose books hold it."""
        out: dict[int, str] = {}
        for m in self.members:
            for a in m.own_side:
                out[a] = m.code
        return out

    @property
    def read(self) -> list[int]:
        """Every account whose window sums the close reads."""
        ids = {a for m in self.members for a in (*m.network_side, *m.own_side, m.income)}
        return sorted(ids)

    def owner(self) -> dict[int, str]:
        """Each account of ``read`` with the member it is *about* (the network's mirror of X is
        about X; income accounts about their owner)."""
        out: dict[int, str] = {}
        for m in self.members:
            for a in (*m.network_side, m.income):
                out[a] = m.code
            if m.kind is not InstitutionKind.NETWORK:
                for a in m.own_side:
                    out[a] = m.code
        return out


def settlement_chart(*, platform: Platform) -> SettlementChart:
    """The chart of the loaded network; refused when it names no settlement bank."""
    institutions = list_institutions(platform=platform)
    bank = next((i for i in institutions if i.kind is InstitutionKind.SETTLEMENT_BANK), None)
    network = next((i for i in institutions if i.kind is InstitutionKind.NETWORK), None)
    if bank is None or network is None:
        raise SettlementError(
            SettlementRefusal.NO_SETTLEMENT_BANK,
            "the loaded network definition names no settlement bank",
        )
    c = AccountCode
    n = network.code

    def acct(code: str, kind: AccountCode, counterpart: str = "") -> int:
        return institution_account_id(code, kind, counterpart)

    members: list[MemberAccounts] = []
    mirrors: list[int] = []
    issuers = [i for i in institutions if i.kind is InstitutionKind.ISSUER]
    acquirers = [i for i in institutions if i.kind is InstitutionKind.ACQUIRER]
    for i in issuers:
        side = (acct(n, c.ISSUER_RECEIVABLE, i.code), acct(n, c.ISSUER_PAYABLE, i.code))
        mirrors += side
        members.append(
            MemberAccounts(
                i.code, i.kind, side,
                (acct(i.code, c.NETWORK_PAYABLE), acct(i.code, c.NETWORK_RECEIVABLE)),
                acct(i.code, c.INTERCHANGE_INCOME), acct(i.code, c.SETTLEMENT_DEPOSIT),
                acct(bank.code, c.SETTLEMENT_ACCOUNT, i.code),
            )
        )  # fmt: skip
    for a in acquirers:
        payable: tuple[int, ...] = (acct(n, c.ACQUIRER_PAYABLE, a.code),)
        mirrors += payable
        members.append(
            MemberAccounts(
                a.code, a.kind, payable, (acct(a.code, c.ACQUIRER_NETWORK_RECEIVABLE),),
                acct(a.code, c.MDR_INCOME), acct(a.code, c.SETTLEMENT_DEPOSIT),
                acct(bank.code, c.SETTLEMENT_ACCOUNT, a.code),
            )
        )  # fmt: skip
    network_member = MemberAccounts(
        n, InstitutionKind.NETWORK, (), tuple(mirrors), acct(n, c.FEE_INCOME),
        acct(n, c.SETTLEMENT_DEPOSIT), acct(bank.code, c.SETTLEMENT_ACCOUNT, n),
    )  # fmt: skip
    return SettlementChart(
        network=n,
        bank=bank.code,
        clearing=acct(bank.code, c.SETTLEMENT_CLEARING),
        members=(network_member, *members),
    )
