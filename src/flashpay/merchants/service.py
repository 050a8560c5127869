"""Merchants: onboarding by an acquirer, terminals, static codes, dynamic QR orders, fees.

A merchant belongs to one acquirer and one of the ten scenes, has an MCC (ISO 18245), a display
name of at most 25 characters and a city of at most 15 (the EMVCo limits of IDs 59 and 60), and a
``merchant_payable`` account in its acquirer's books. Its code in the QR is a 15-character
merchant ID in UnionPay's layout: the acquirer IIN's first 3 digits, the MCC, 8 digits of id.

A dynamic order (amount, bill number, expiry ≤ 15 minutes) is created by the merchant's POS and is
payable once: the payment marks it ``paid`` with a conditional UPDATE, so two concurrent payers
cannot both pay it.

This module is the merchants domain's face: onboarding, merchants and terminals, read one by one
or for a batch; it re-exports what the domain's other modules define so that callers import one
place. The records and refusals are ``records``, the QR codes ``codes``, the dynamic orders
``orders``, the payments' claims on orders ``order_claims``.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from flashpay.db import autocommit
from flashpay.errors import InvariantError
from flashpay.idempotency import (
    IdempotencyTag,
    once,
)
from flashpay.institutions.chart import LEDGER_CNY, AccountCode
from flashpay.institutions.definition import InstitutionKind
from flashpay.institutions.service import Institution
from flashpay.ledger import Account, CreateAccountResult
from flashpay.ledger.ids import derive_id, new_id
from flashpay.merchants.codes import order_payload, static_payload
from flashpay.merchants.models import merchants, terminals
from flashpay.merchants.orders import (
    OrderRequest,
    create_order,
    create_orders,
    get_order,
    orders_by_bill,
)
from flashpay.merchants.records import (
    CITY_MAX,
    DISPLAY_NAME_MAX,
    ORDER_SECONDS_MAX,
    Merchant,
    MerchantAndTerminal,
    MerchantError,
    MerchantRefusal,
    Order,
    Scene,
    Terminal,
    merchant_from_row,
    parse_scene,
)
from flashpay.platform import Platform

__all__ = [
    "CITY_MAX",
    "DISPLAY_NAME_MAX",
    "ORDER_SECONDS_MAX",
    "Merchant",
    "MerchantAndTerminal",
    "MerchantError",
    "MerchantRefusal",
    "Order",
    "OrderRequest",
    "Scene",
    "Terminal",
    "add_terminal",
    "create_order",
    "create_orders",
    "get_merchant",
    "get_merchants",
    "get_order",
    "list_merchants",
    "list_terminals",
    "merchant_terminals",
    "onboard_merchant",
    "order_payload",
    "orders_by_bill",
    "parse_scene",
    "static_payload",
    "terminal_by_code",
]


def onboard_merchant(
    *,
    platform: Platform,
    acquirer: Institution,
    legal_name: str,
    display_name: str,
    city: str,
    mcc: str,
    scene: Scene,
    idempotency: IdempotencyTag | None = None,
) -> Merchant:
    """Sign a merchant: its record, a first terminal ``T0001`` and its ledger account. With an
    Idempotency-Key already bound (a retry), the merchant it signed, its account made sure of."""
    if acquirer.kind is not InstitutionKind.ACQUIRER:
        raise MerchantError(MerchantRefusal.FORBIDDEN, "only an acquirer signs merchants")
    if not 1 <= len(display_name) <= DISPLAY_NAME_MAX:
        raise MerchantError(
            MerchantRefusal.INVALID_DISPLAY_NAME, "a display name is 1–25 characters"
        )
    if not 1 <= len(city) <= CITY_MAX:
        raise MerchantError(MerchantRefusal.INVALID_CITY, "a city is 1–15 characters")
    if not (len(mcc) == 4 and mcc.isdigit()):
        raise MerchantError(MerchantRefusal.INVALID_MCC, "an MCC is 4 digits (ISO 18245)")
    if not 1 <= len(legal_name) <= 100:
        raise MerchantError(MerchantRefusal.INVALID_LEGAL_NAME, "a legal name is 1–100 characters")
    now = platform.clock.now_ns()

    def create(connection: sa.Connection) -> tuple[int, int]:
        """The merchant's record and terminal ``T0001``: (its id, its id)."""
        placeholder = new_id()  # the code and account derive from the row id, known after insert
        merchant_id = connection.execute(
            merchants.insert()
            .values(
                acquirer_id=acquirer.id,
                code=f"P{placeholder % 10**14:014d}",
                legal_name=legal_name,
                display_name=display_name,
                city=city,
                mcc=mcc,
                scene=scene.value,
                ledger_account_id=-placeholder,
                status="active",
                created_at_ns=now,
            )
            .returning(merchants.c.id)
        ).scalar_one()
        code = f"{acquirer.iin[:3]}{mcc}{int(merchant_id):08d}"
        account_id = derive_id("flashpay.merchant-account", code)
        connection.execute(
            merchants.update()
            .where(merchants.c.id == merchant_id)
            .values(code=code, ledger_account_id=account_id)
        )
        connection.execute(
            terminals.insert().values(merchant_id=merchant_id, code="T0001", created_at_ns=now)
        )
        return int(merchant_id), int(merchant_id)

    merchant_id = once(
        platform.engine, idempotency, kind="merchant", now_ns=platform.clock.now_ns,
        create=create, load=lambda _connection, effect_id: effect_id,
    )  # fmt: skip
    found = get_merchant(platform=platform, merchant_id=merchant_id)
    if found is None:
        raise InvariantError("a signed merchant exists")
    [opened] = platform.ledger.create_accounts(
        [Account(found.ledger_account_id, LEDGER_CNY, AccountCode.MERCHANT_PAYABLE,
                 user_data_64=found.acquirer_id)]
    )  # fmt: skip
    if opened not in (CreateAccountResult.OK, CreateAccountResult.EXISTS):
        raise RuntimeError(f"the ledger refused the merchant's account: {opened}")
    return found


def get_merchants(*, platform: Platform, merchant_ids: Collection[int]) -> dict[int, Merchant]:
    """Merchants by id, for a batch, in one query."""
    if not merchant_ids:
        return {}
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(merchants).where(merchants.c.id.in_(sorted(merchant_ids)))
        )
        return {merchant.id: merchant for merchant in map(merchant_from_row, rows)}


def get_merchant(*, platform: Platform, merchant_id: int) -> Merchant | None:
    return get_merchants(platform=platform, merchant_ids=[merchant_id]).get(merchant_id)


def merchant_terminals(
    *,
    platform: Platform,
    by_code: Collection[tuple[str, str]] = (),
    by_id: Collection[tuple[int, str]] = (),
) -> tuple[dict[tuple[str, str], MerchantAndTerminal], dict[tuple[int, str], MerchantAndTerminal]]:
    """Merchants (by QR merchant code or by id) with one of their terminals each, for a batch,
    in one query: ``(merchant, terminal)`` per asked pair, ``(None, None)`` for an unknown
    merchant and ``(merchant, None)`` for an unknown terminal."""
    if not by_code and not by_id:
        return {}, {}
    terminal_codes = sorted({t for _, t in by_code} | {t for _, t in by_id})
    query = (
        sa.select(merchants, terminals.c.id.label("terminal_id"), terminals.c.code.label("tcode"))
        .outerjoin(
            terminals,
            sa.and_(
                terminals.c.merchant_id == merchants.c.id, terminals.c.code.in_(terminal_codes)
            ),
        )
        .where(
            sa.or_(
                merchants.c.code.in_(sorted({m for m, _ in by_code})),
                merchants.c.id.in_(sorted({m for m, _ in by_id})),
            )
        )
    )
    found: dict[int, Merchant] = {}
    found_terminals: dict[tuple[int, str], Terminal] = {}
    with autocommit(platform.engine) as connection:
        for row in connection.execute(query):
            merchant = found.setdefault(int(row.id), merchant_from_row(row))
            if row.terminal_id is not None:
                key = (merchant.id, str(row.tcode))
                found_terminals[key] = Terminal(int(row.terminal_id), merchant.id, str(row.tcode))
    by_merchant_code = {m.code: m for m in found.values()}

    def pair(merchant: Merchant | None, terminal_code: str) -> MerchantAndTerminal:
        if merchant is None:
            return None, None
        return merchant, found_terminals.get((merchant.id, terminal_code))

    return (
        {(m, t): pair(by_merchant_code.get(m), t) for m, t in by_code},
        {(m, t): pair(found.get(m), t) for m, t in by_id},
    )


def list_merchants(*, platform: Platform, acquirer_id: int | None = None) -> list[Merchant]:
    query = sa.select(merchants).order_by(merchants.c.id)
    if acquirer_id is not None:
        query = query.where(merchants.c.acquirer_id == acquirer_id)
    with autocommit(platform.engine) as connection:
        return [merchant_from_row(r) for r in connection.execute(query)]


def add_terminal(
    *, platform: Platform, merchant_id: int, idempotency: IdempotencyTag | None = None
) -> Terminal:
    """The merchant's next terminal (``T0002``, …); a retry with a bound key answers the one it
    added."""

    def load(connection: sa.Connection, terminal_id: int) -> Terminal:
        row = connection.execute(sa.select(terminals).where(terminals.c.id == terminal_id)).one()
        return Terminal(int(row.id), int(row.merchant_id), str(row.code))

    def create(connection: sa.Connection) -> tuple[int, Terminal]:
        count = connection.execute(
            sa.select(sa.func.count())
            .select_from(terminals)
            .where(terminals.c.merchant_id == merchant_id)
        ).scalar_one()
        code = f"T{int(count) + 1:04d}"
        terminal_id = connection.execute(
            terminals.insert()
            .values(merchant_id=merchant_id, code=code, created_at_ns=platform.clock.now_ns())
            .returning(terminals.c.id)
        ).scalar_one()
        return int(terminal_id), Terminal(int(terminal_id), merchant_id, code)

    return once(platform.engine, idempotency, kind="terminal", now_ns=platform.clock.now_ns,
                create=create, load=load)  # fmt: skip


def list_terminals(*, platform: Platform, merchant_id: int) -> list[Terminal]:
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(terminals)
            .where(terminals.c.merchant_id == merchant_id)
            .order_by(terminals.c.id)
        ).all()
    return [Terminal(int(r.id), int(r.merchant_id), str(r.code)) for r in rows]


def terminal_by_code(*, platform: Platform, merchant_id: int, code: str) -> Terminal | None:
    with autocommit(platform.engine) as connection:
        row = connection.execute(
            sa.select(terminals).where(
                terminals.c.merchant_id == merchant_id, terminals.c.code == code
            )
        ).first()
    return None if row is None else Terminal(int(row.id), int(row.merchant_id), str(row.code))
