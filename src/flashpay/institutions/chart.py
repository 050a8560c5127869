"""The chart of accounts: what each institution's ledger accounts are (ARCHITECTURE.md §4).

A ledger account's ``code`` names its kind; ``user_data_64`` holds the institution id that owns it
(the counterpart institution for a mirrored account goes in ``user_data_32``). The ids of an
institution's own accounts are derived from (institution code, kind, counterpart code), so they are
the same in every process and every run, and loading a network definition twice creates nothing
twice.

- issuer: ``customer_deposit`` (one per debit card; credit-normal, must not go negative),
  ``customer_credit_line`` (one per credit card; debit-normal, outstanding ≤ the credit limit),
  ``network_payable``, ``network_receivable``, ``interchange_income``, ``cash`` (the asset side of
  the money customers brought in: the counter-entry of opening deposits);
- network: ``issuer_receivable[issuer]``, ``issuer_payable[issuer]``,
  ``acquirer_payable[acquirer]``, ``fee_income``;
- acquirer: ``network_receivable``, ``merchant_payable`` (one per merchant), ``mdr_income``;
- every institution but the settlement bank: ``promotion_expense`` (what its campaigns' discounts
  cost it; the legs are ``flashpay.payments.legs.discount_legs``, decision 0019);
- every member, when the definition names a settlement bank: ``settlement_deposit`` (its money
  at the bank), mirrored by the bank's ``settlement_account[member]``; the bank also has
  ``settlement_clearing`` (see ``flashpay.settlement``).
"""

from __future__ import annotations

import functools
from enum import IntEnum

from flashpay.ledger.ids import derive_id

LEDGER_CNY = 156  # one ledger per currency: ISO 4217 numeric code


class AccountCode(IntEnum):
    CUSTOMER_DEPOSIT = 101
    CUSTOMER_CREDIT_LINE = 102
    NETWORK_PAYABLE = 103
    NETWORK_RECEIVABLE = 104
    INTERCHANGE_INCOME = 105
    CASH = 106
    PROMOTION_EXPENSE = 107  # any institution that funds campaigns, not only issuers
    SETTLEMENT_DEPOSIT = 108  # any member: its money at the settlement bank (debit-normal)
    ISSUER_RECEIVABLE = 201
    ISSUER_PAYABLE = 202
    ACQUIRER_PAYABLE = 203
    FEE_INCOME = 204
    ACQUIRER_NETWORK_RECEIVABLE = 301
    MERCHANT_PAYABLE = 302
    MDR_INCOME = 303
    SETTLEMENT_ACCOUNT = 401  # settlement bank: settlement_account[member] (credit-normal)
    SETTLEMENT_CLEARING = 402  # settlement bank: the account net amounts pass through


class TransferCode(IntEnum):
    OPENING_DEPOSIT = 1
    PURCHASE = 10
    PURCHASE_HOLD = 11
    PROMOTION = 12  # a discount's leg to (a refund's: from) the card (decision 0019)
    PROMOTION_FUNDING = 13  # a discount's legs from its funder through the network
    P2P = 20
    SETTLEMENT = 60  # a window's settlement chain (flashpay.settlement)
    FENCE = 90  # recovery's claim on a record's ledger ids (flashpay.payments.fence)


@functools.lru_cache(maxsize=4096)  # a few hundred accounts, asked for six times a payment
def institution_account_id(institution: str, kind: AccountCode, counterpart: str = "") -> int:
    """The ledger id of institution ``institution``'s account of ``kind`` (with ``counterpart``
    for a mirrored account such as the network's ``issuer_receivable[BOC]``)."""
    return derive_id("flashpay.books", f"{institution}|{kind.name}|{counterpart}")
