"""A merchant's QR codes: the static code of a terminal (the payer types the amount) and the
dynamic code of an order (amount and bill number in it), both from the merchant's fields in
EMVCo's layout (``qr.merchant_codes``)."""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import autocommit
from flashpay.institutions.service import institution_iin
from flashpay.merchants.models import terminals
from flashpay.merchants.records import Merchant, Order, Terminal
from flashpay.money import Money
from flashpay.platform import Platform
from flashpay.qr.merchant_codes import MerchantCodeFields, dynamic_code, static_code


def merchant_code_fields(
    platform: Platform, merchant: Merchant, terminal: Terminal
) -> MerchantCodeFields:
    return MerchantCodeFields(
        merchant_id=merchant.code,
        terminal_id=terminal.code,
        name=merchant.display_name,
        city=merchant.city,
        mcc=merchant.mcc,
        acquirer_iin=institution_iin(platform=platform, institution_id=merchant.acquirer_id),
        forwarding_iin=institution_iin(platform=platform, institution_id=None),
    )


def static_payload(*, platform: Platform, merchant: Merchant, terminal: Terminal) -> str:
    """The static code of a merchant's terminal (the payer types the amount)."""
    return static_code(merchant_code_fields(platform, merchant, terminal))


def order_payload(*, platform: Platform, merchant: Merchant, order: Order) -> str:
    with autocommit(platform.engine) as connection:
        row = connection.execute(
            sa.select(terminals).where(terminals.c.id == order.terminal_id)
        ).one()
    terminal = Terminal(int(row.id), int(row.merchant_id), str(row.code))
    return dynamic_code(
        merchant_code_fields(platform, merchant, terminal),
        amount=Money.of(order.amount, order.currency),
        bill_number=order.bill_number,
        reference=f"O{order.id}",
    )
