"""API shapes of API keys (the key itself never appears: only its prefix)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from flashpay.auth.service import ApiKeyRecord, PrincipalKind
from flashpay.clock import to_datetime


class ApiKeyOut(BaseModel):
    id: int
    key_prefix: str
    principal_kind: PrincipalKind
    principal_id: int
    network_admin: bool
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKeyOut:
        return cls(
            id=record.key_id,
            key_prefix=record.key_prefix,
            principal_kind=record.kind,
            principal_id=record.principal_id,
            network_admin=record.network_admin,
            created_at=to_datetime(record.created_at_ns),
            revoked_at=None if record.revoked_at_ns is None else to_datetime(record.revoked_at_ns),
        )
