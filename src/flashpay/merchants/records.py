"""A merchant, its terminals and its dynamic orders as records, their refusals, and the one
reading of each row (``merchant_from_row``, ``order_from_row``). The scenes a merchant can be in
are a closed list (``Scene``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from flashpay.errors import RefusedError
from flashpay.merchants.fees import FeeSplit

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


def merchant_from_row(row: sa.Row[tuple[object, ...]]) -> Merchant:
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


def order_from_row(row: sa.Row[tuple[object, ...]] | Mapping[str, Any]) -> Order:
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


MerchantAndTerminal = tuple[Merchant | None, Terminal | None]
