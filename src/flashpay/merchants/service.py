"""Merchants: onboarding by an acquirer, terminals, static codes, dynamic QR orders, fees.

A merchant belongs to one acquirer and one of the ten scenes, has an MCC (ISO 18245), a display
name of at most 25 characters and a city of at most 15 (the EMVCo limits of IDs 59 and 60), and a
``merchant_payable`` account in its acquirer's books. Its code in the QR is a 15-character
merchant ID in UnionPay's layout: the acquirer IIN's first 3 digits, the MCC, 8 digits of id.

A dynamic order (amount, bill number, expiry ≤ 15 minutes) is created by the merchant's POS and is
payable once: the payment marks it ``paid`` with a conditional UPDATE, so two concurrent payers
cannot both pay it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.errors import InvariantError, RefusedError
from flashpay.idempotency import (
    Effect,
    EffectConflictError,
    IdempotencyTag,
    bind_effects,
    find_effects,
    once,
)
from flashpay.institutions.chart import LEDGER_CNY, AccountCode
from flashpay.institutions.definition import InstitutionKind
from flashpay.institutions.service import Institution, institution_iin
from flashpay.ledger import Account, CreateAccountResult
from flashpay.ledger.ids import derive_id, new_id
from flashpay.merchants.fees import FeeSplit
from flashpay.merchants.models import merchants, qr_orders, terminals
from flashpay.money import Money
from flashpay.platform import Platform
from flashpay.qr.merchant_codes import MerchantCodeFields, dynamic_code, static_code

ORDER_SECONDS_MAX = 15 * 60
DISPLAY_NAME_MAX = 25
CITY_MAX = 15


class Scene(StrEnum):
    SUPERMARKET = "supermarket"
    CONVENIENCE_STORE = "convenience_store"
    CAMPUS = "campus"
    CANTEEN = "canteen"
    BUS = "bus"
    SUBWAY = "subway"
    FOOD_MARKET = "food_market"
    PARKING = "parking"
    HOSPITAL = "hospital"
    VENDING = "vending"


# The merchant discount rate and its split per scene, in millionths (FeeSplit): lower for
# public transport, campuses and hospitals, as UnionPay's preferential rates are.
SCENE_FEES: dict[Scene, FeeSplit] = {
    Scene.SUPERMARKET: FeeSplit(6_000, 4_500, 650),
    Scene.CONVENIENCE_STORE: FeeSplit(6_000, 4_500, 650),
    Scene.FOOD_MARKET: FeeSplit(3_800, 2_800, 450),
    Scene.CANTEEN: FeeSplit(3_800, 2_800, 450),
    Scene.CAMPUS: FeeSplit(2_000, 1_400, 300),
    Scene.BUS: FeeSplit(2_000, 1_400, 300),
    Scene.SUBWAY: FeeSplit(2_000, 1_400, 300),
    Scene.PARKING: FeeSplit(6_000, 4_500, 650),
    Scene.HOSPITAL: FeeSplit(2_000, 1_400, 300),
    Scene.VENDING: FeeSplit(6_000, 4_500, 650),
}


class MerchantRefusal(StrEnum):
    """Why a merchant request is refused, in check order (values are the API error codes)."""

    INVALID_SCENE = "invalid_scene"
    FORBIDDEN = "forbidden"
    INVALID_DISPLAY_NAME = "invalid_display_name"
    INVALID_CITY = "invalid_city"
    INVALID_MCC = "invalid_mcc"
    INVALID_LEGAL_NAME = "invalid_legal_name"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_EXPIRY = "invalid_expiry"
    INVALID_BILL_NUMBER = "invalid_bill_number"
    DUPLICATE_BILL_NUMBER = "duplicate_bill_number"


class MerchantError(RefusedError, ValueError):
    """A refused merchant request (nothing recorded). A ``ValueError`` too: the batch callers
    and the simulator tell a refusal from an order by type."""

    reason: MerchantRefusal


def parse_scene(text: str) -> Scene:
    """The scene named ``text``, or an ``invalid_scene`` refusal listing the ten."""
    try:
        return Scene(text)
    except ValueError:
        scenes = ", ".join(s.value for s in Scene)
        raise MerchantError(MerchantRefusal.INVALID_SCENE, f"scene is one of {scenes}") from None


@dataclass(frozen=True, slots=True)
class Merchant:
    id: int
    acquirer_id: int
    code: str
    legal_name: str
    display_name: str
    city: str
    mcc: str
    scene: Scene
    ledger_account_id: int
    status: str

    @property
    def fees(self) -> FeeSplit:
        return SCENE_FEES[self.scene]


@dataclass(frozen=True, slots=True)
class Terminal:
    id: int
    merchant_id: int
    code: str


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    merchant_id: int
    terminal_id: int | None
    bill_number: str
    amount: int
    currency: str
    status: str
    payment_id: int | None
    created_at_ns: int
    expires_at_ns: int


def _merchant(row: sa.Row[tuple[object, ...]]) -> Merchant:
    m = row._mapping
    return Merchant(
        id=int(m["id"]),
        acquirer_id=int(m["acquirer_id"]),
        code=str(m["code"]),
        legal_name=str(m["legal_name"]),
        display_name=str(m["display_name"]),
        city=str(m["city"]),
        mcc=str(m["mcc"]),
        scene=Scene(m["scene"]),
        ledger_account_id=int(m["ledger_account_id"]),
        status=str(m["status"]),
    )


def _order(row: sa.Row[tuple[object, ...]] | Mapping[str, Any]) -> Order:
    m = row if isinstance(row, Mapping) else row._mapping
    return Order(
        id=int(m["id"]),
        merchant_id=int(m["merchant_id"]),
        terminal_id=None if m["terminal_id"] is None else int(m["terminal_id"]),
        bill_number=str(m["bill_number"]),
        amount=int(m["amount"]),
        currency=str(m["currency"]),
        status=str(m["status"]),
        payment_id=None if m["payment_id"] is None else int(m["payment_id"]),
        created_at_ns=int(m["created_at_ns"]),
        expires_at_ns=int(m["expires_at_ns"]),
    )


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
        return {merchant.id: merchant for merchant in map(_merchant, rows)}


def get_merchant(*, platform: Platform, merchant_id: int) -> Merchant | None:
    return get_merchants(platform=platform, merchant_ids=[merchant_id]).get(merchant_id)


MerchantAndTerminal = tuple[Merchant | None, Terminal | None]


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
            merchant = found.setdefault(int(row.id), _merchant(row))
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
        return [_merchant(r) for r in connection.execute(query)]


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


def _fields(platform: Platform, merchant: Merchant, terminal: Terminal) -> MerchantCodeFields:
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
    return static_code(_fields(platform, merchant, terminal))


@dataclass(frozen=True, slots=True)
class OrderRequest:
    merchant: Merchant
    terminal: Terminal
    amount: int  # fen
    bill_number: str
    expires_in_seconds: int = ORDER_SECONDS_MAX
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the order


def _order_refusal(request: OrderRequest) -> MerchantError | None:
    if request.amount <= 0:
        return MerchantError(MerchantRefusal.INVALID_AMOUNT, "an order's amount is positive")
    if not 1 <= request.expires_in_seconds <= ORDER_SECONDS_MAX:
        return MerchantError(
            MerchantRefusal.INVALID_EXPIRY, "an order expires within 1 s to 15 minutes"
        )
    bill = request.bill_number
    if not (1 <= len(bill) <= 25 and bill.isprintable()):
        return MerchantError(
            MerchantRefusal.INVALID_BILL_NUMBER, "a bill number is 1–25 characters"
        )
    return None


def create_orders(
    *, platform: Platform, requests: Sequence[OrderRequest]
) -> list[tuple[Order, str] | MerchantError]:
    """Dynamic orders and their QR payloads for a batch of tills' requests, in one transaction
    and one statement: each answer in its request's place, a refused request (a bad amount,
    expiry or bill number, or a bill number the merchant has used — 409) as its
    ``MerchantError`` while the others go on. A request whose Idempotency-Key is bound already
    is answered with the order it created."""
    for run in range(2):
        try:
            return _create_orders(platform, requests)
        except EffectConflictError:
            if run:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _create_orders(
    platform: Platform, requests: Sequence[OrderRequest]
) -> list[tuple[Order, str] | MerchantError]:
    tags = [r.idempotency for r in requests]
    bound: dict[IdempotencyTag, Effect] = {}
    if any(tags):
        with autocommit(platform.engine) as connection:
            bound = find_effects(connection, tags)
    if bound:
        fresh = [r for r in requests if r.idempotency not in bound]
        rest = iter(_create_orders(platform, fresh)) if fresh else iter(())
        with autocommit(platform.engine) as connection:
            made = {o.id: o for o in map(_order, connection.execute(sa.select(qr_orders).where(
                qr_orders.c.id.in_(sorted(e.effect_id for e in bound.values()))
            )))}  # fmt: skip
        out: list[tuple[Order, str] | MerchantError] = []
        for r in requests:
            if r.idempotency not in bound:
                out.append(next(rest))
                continue
            order = made[bound[r.idempotency].effect_id]
            out.append((order, order_payload(platform=platform, merchant=r.merchant,
                                             order=order)))  # fmt: skip
        return out
    now = platform.clock.now_ns()
    answers: list[tuple[Order, str] | MerchantError | None] = [None] * len(requests)
    rows: dict[tuple[int, str], tuple[int, dict[str, object]]] = {}
    for n, request in enumerate(requests):
        key = (request.merchant.id, request.bill_number)
        refusal = _order_refusal(request) or (_duplicate_bill() if key in rows else None)
        if refusal is not None:
            answers[n] = refusal
            continue
        rows[key] = (n, {
            "merchant_id": request.merchant.id, "terminal_id": request.terminal.id,
            "bill_number": request.bill_number, "amount": request.amount, "currency": "CNY",
            "status": "open", "payment_id": None, "created_at_ns": now,
            "expires_at_ns": now + request.expires_in_seconds * NS_PER_SECOND,
        })  # fmt: skip
    inserted: dict[tuple[int, str], int] = {}
    if rows:
        values = [row for _, row in rows.values()]
        with platform.engine.begin() as connection:
            insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert
            statement = (
                insert(qr_orders)
                .on_conflict_do_nothing()
                .returning(qr_orders.c.id, qr_orders.c.merchant_id, qr_orders.c.bill_number)
            )
            # executemany of one cached statement (SQLAlchemy's insertmanyvalues): a multi-row
            # VALUES would be compiled anew for every batch size.
            for order_id, merchant_id, bill in connection.execute(statement, values):
                inserted[(int(merchant_id), str(bill))] = int(order_id)
            tagged = {
                (n, tag): key
                for key, (n, _) in rows.items()
                if key in inserted and (tag := requests[n].idempotency) is not None
            }
            bind_effects(connection, {
                tag: Effect("order", inserted[key]) for (_, tag), key in tagged.items()
            }, now_ns=now)  # fmt: skip
    for key, (n, row) in rows.items():
        if key not in inserted:
            answers[n] = _duplicate_bill()
            continue
        request = requests[n]
        order = _order({**row, "id": inserted[key]})
        payload = dynamic_code(
            _fields(platform, request.merchant, request.terminal),
            amount=Money.of(request.amount, "CNY"),
            bill_number=request.bill_number,
            reference=f"O{order.id}",
        )
        answers[n] = (order, payload)
    return [answer for answer in answers if answer is not None]


def _duplicate_bill() -> MerchantError:
    return MerchantError(MerchantRefusal.DUPLICATE_BILL_NUMBER, "this bill number exists")


def create_order(
    *,
    platform: Platform,
    merchant: Merchant,
    terminal: Terminal,
    amount: int,
    bill_number: str,
    expires_in_seconds: int = ORDER_SECONDS_MAX,
    idempotency: IdempotencyTag | None = None,
) -> tuple[Order, str]:
    """A dynamic order and its QR payload; the same bill number twice is a 409."""
    request = OrderRequest(merchant, terminal, amount, bill_number, expires_in_seconds,
                           idempotency)  # fmt: skip
    [answer] = create_orders(platform=platform, requests=[request])
    if isinstance(answer, MerchantError):
        raise answer
    return answer


def get_order(*, platform: Platform, merchant_id: int, order_id: int) -> Order | None:
    with autocommit(platform.engine) as connection:
        row = connection.execute(
            sa.select(qr_orders).where(
                qr_orders.c.id == order_id, qr_orders.c.merchant_id == merchant_id
            )
        ).first()
    return None if row is None else _order(row)


def orders_by_bill(
    *, platform: Platform, keys: Collection[tuple[int, str]]
) -> dict[tuple[int, str], Order]:
    """Orders by (merchant id, bill number), for a batch, in one query."""
    if not keys:
        return {}
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(qr_orders).where(
                sa.tuple_(qr_orders.c.merchant_id, qr_orders.c.bill_number).in_(sorted(keys))
            )
        )
        return {(order.merchant_id, order.bill_number): order for order in map(_order, rows)}


def order_payload(*, platform: Platform, merchant: Merchant, order: Order) -> str:
    with autocommit(platform.engine) as connection:
        row = connection.execute(
            sa.select(terminals).where(terminals.c.id == order.terminal_id)
        ).one()
    terminal = Terminal(int(row.id), int(row.merchant_id), str(row.code))
    return dynamic_code(
        _fields(platform, merchant, terminal),
        amount=Money.of(order.amount, order.currency),
        bill_number=order.bill_number,
        reference=f"O{order.id}",
    )
