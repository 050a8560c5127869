"""Request and response shapes of ``/v1/transit``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flashpay.api.schemas import Strict
from flashpay.transit.uploads import UPLOAD_TAPS_MAX


class CredentialIn(Strict):
    wallet_card_id: int = Field(ge=1)
    device_public_key: str = Field(min_length=64, max_length=64, description="hex, 32 bytes")
    ride_credit_limit_minor: int = Field(ge=0, le=100_000)
    concession: str | None = Field(default=None, max_length=20)


class CredentialOut(BaseModel):
    serial: int
    credential: str  # hex, 132 bytes
    expires_at_s: int


class TrustOut(BaseModel):
    network_id: str
    network_keys: dict[int, str]
    deny_version: int
    deny_digest: str
    denied_tokens: list[str]
    revoked_serials: list[int]


class TapIn(Strict):
    seq: int = Field(ge=1)
    token: str = Field(min_length=13, max_length=19, pattern=r"^[0-9]+$")
    station: str = Field(min_length=1, max_length=16)
    kind: Literal["in", "out", "board"]  # a TapKind (strict bodies take no enum from text)
    at_ns: int = Field(ge=0)
    digest: str = Field(min_length=32, max_length=32, pattern=r"^[0-9a-f]+$")
    deny_version: int = Field(ge=0)


class UploadIn(Strict):
    gate_clock_ns: int = Field(ge=0)
    taps: list[TapIn] = Field(max_length=UPLOAD_TAPS_MAX)


class UploadOut(BaseModel):
    received: int
    new: int


class TapOut(BaseModel):
    gate_id: str
    seq: int
    station: str
    kind: str
    at_ns: int


class TripOut(BaseModel):
    id: int
    network: str
    status: str
    from_station: str | None
    to_station: str | None
    started_at_ns: int
    base_minor: int
    transfer_discount_minor: int
    concession_discount_minor: int
    cap_discount_minor: int
    fare_minor: int
    disputed: bool
    debit_status: str | None
    taps: list[TapOut]


class DisputeIn(Strict):
    to_station: str = Field(min_length=1, max_length=16)


class RidershipOut(BaseModel):
    line: str
    station: str
    hour: int
    trips: int
    revenue_minor: int


class SettleOut(BaseModel):
    taps: int
    trips: int
    set_aside: dict[str, int]
    fares_minor: int
    cap_discount_minor: int
    debits_posted: int
    debits_failed: int
