"""Each institution's books in the ledger, and the §4 posting chains between them.

Chart of accounts (the ``code`` of a ledger account names its kind):

- issuer: ``customer_deposit`` (one per debit card; credit-normal, must not go negative),
  ``customer_credit_line`` (one per credit card; debit-normal, outstanding ≤ the credit limit),
  ``network_payable``, ``network_receivable``, ``interchange_income``, ``cash`` (the
  asset side of the money customers brought in: the counter-entry of opening deposits);
- network: ``issuer_receivable[member]``, ``issuer_payable[member]``, ``acquirer_payable[member]``,
  ``fee_income``;
- acquirer: ``network_receivable``, ``merchant_payable`` (one per merchant), ``mdr_income``.

Every chain below keeps each institution's books balanced on their own, and every mirrored pair
(issuer ``network_payable`` / network ``issuer_receivable[issuer]``, network
``issuer_payable[issuer]`` / issuer ``network_receivable``, network ``acquirer_payable[acquirer]``
/ acquirer ``network_receivable``) equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from flashpay.institutions.chart import LEDGER_CNY as LEDGER_CNY
from flashpay.institutions.chart import AccountCode as AccountCode
from flashpay.institutions.chart import TransferCode as TransferCode
from flashpay.ledger import Transfer, TransferFlags

BPS_DENOMINATOR = 10_000
LINKED = TransferFlags.LINKED


def round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounding halves up (amounts are never negative here)."""
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True, slots=True)
class FeeSplit:
    """The merchant discount rate and its split, in hundredths of a basis point (1e-6)."""

    mdr_ppm: int = 6_000  # 0.60 %
    interchange_ppm: int = 4_500  # 0.45 %
    network_fee_ppm: int = 650  # 0.065 %

    def split(self, amount_minor: int) -> tuple[int, int, int, int]:
        """(interchange, network fee, acquirer income, merchant net) for ``amount_minor``."""
        mdr = round_half_up(amount_minor * self.mdr_ppm, 1_000_000)
        interchange = round_half_up(amount_minor * self.interchange_ppm, 1_000_000)
        network_fee = round_half_up(amount_minor * self.network_fee_ppm, 1_000_000)
        acquirer = mdr - interchange - network_fee
        return interchange, network_fee, acquirer, amount_minor - mdr


@dataclass(frozen=True, slots=True)
class IssuerBooks:
    network_payable: int
    network_receivable: int
    interchange_income: int
    cash: int


@dataclass(frozen=True, slots=True)
class NetworkBooks:
    issuer_receivable: dict[int, int]  # issuer index -> account id
    issuer_payable: dict[int, int]
    acquirer_payable: dict[int, int]
    fee_income: int


@dataclass(frozen=True, slots=True)
class AcquirerBooks:
    network_receivable: int
    mdr_income: int


def purchase_chain(
    *,
    ids: list[int],
    amount_minor: int,
    card_account: int,
    issuer: IssuerBooks,
    issuer_index: int,
    network: NetworkBooks,
    acquirer: AcquirerBooks,
    acquirer_index: int,
    merchant_payable: int,
    fees: FeeSplit,
) -> list[Transfer]:
    """The six linked transfers of one purchase (ARCHITECTURE.md §4), to the fen."""
    interchange, network_fee, acquirer_income, merchant_net = fees.split(amount_minor)
    to_network = amount_minor - interchange
    legs = [
        (card_account, issuer.interchange_income, interchange),
        (card_account, issuer.network_payable, to_network),
        (
            network.issuer_receivable[issuer_index],
            network.acquirer_payable[acquirer_index],
            to_network - network_fee,
        ),
        (network.issuer_receivable[issuer_index], network.fee_income, network_fee),
        (acquirer.network_receivable, merchant_payable, merchant_net),
        (acquirer.network_receivable, acquirer.mdr_income, acquirer_income),
    ]
    legs = [leg for leg in legs if leg[2] > 0]
    return [
        Transfer(
            ids[n],
            debit,
            credit,
            amount,
            LEDGER_CNY,
            TransferCode.PURCHASE,
            flags=LINKED if n < len(legs) - 1 else TransferFlags.NONE,
        )
        for n, (debit, credit, amount) in enumerate(legs)
    ]


def p2p_chain(
    *,
    ids: list[int],
    amount_minor: int,
    sender_account: int,
    sender_issuer: IssuerBooks,
    sender_index: int,
    receiver_account: int,
    receiver_issuer: IssuerBooks,
    receiver_index: int,
    network: NetworkBooks,
) -> list[Transfer]:
    """A transfer between two cardholders; cross-bank it runs through the network (§4)."""
    code = TransferCode.P2P
    if sender_index == receiver_index:
        return [Transfer(ids[0], sender_account, receiver_account, amount_minor, LEDGER_CNY, code)]
    return [
        Transfer(
            ids[0],
            sender_account,
            sender_issuer.network_payable,
            amount_minor,
            LEDGER_CNY,
            code,
            flags=LINKED,
        ),
        Transfer(
            ids[1],
            network.issuer_receivable[sender_index],
            network.issuer_payable[receiver_index],
            amount_minor,
            LEDGER_CNY,
            code,
            flags=LINKED,
        ),
        Transfer(
            ids[2],
            receiver_issuer.network_receivable,
            receiver_account,
            amount_minor,
            LEDGER_CNY,
            code,
        ),
    ]
