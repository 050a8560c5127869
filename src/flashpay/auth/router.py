"""``/v1/admin/api-keys``: the network operator lists and revokes API keys.

Keys are created only from the command line (``flashpay apikey create``), where the secret is
printed once: an HTTP response holding it would be stored by the idempotency layer for replay.
"""

from __future__ import annotations

from fastapi import APIRouter

from flashpay.api.deps import CurrentNetworkAdmin, IdempotencyDep, PlatformDep
from flashpay.api.errors import not_found
from flashpay.api.pagination import CursorQuery, LimitQuery, Page, after_id, encode_cursor
from flashpay.api.types import IdPath, IdQuery
from flashpay.auth.schemas import ApiKeyOut
from flashpay.auth.service import (
    AuthError,
    AuthRefusal,
    PrincipalKind,
    RevokeOutcome,
    get_api_key,
    list_api_keys,
    revoke_api_key,
)
from flashpay.errors import InvariantError

router = APIRouter(prefix="/v1/admin/api-keys", tags=["admin"])


@router.get("", response_model=Page[ApiKeyOut])
def list_keys(
    platform: PlatformDep,
    _admin: CurrentNetworkAdmin,
    principal_kind: PrincipalKind | None = None,
    principal_id: IdQuery = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[ApiKeyOut]:
    """API keys in creation order, optionally of one institution or merchant."""
    records = list_api_keys(
        platform=platform,
        kind=principal_kind,
        principal_id=principal_id,
        after_key_id=after_id(cursor),
        limit=limit + 1,
    )
    page = records[:limit]
    more = len(records) > limit
    return Page[ApiKeyOut](
        items=[ApiKeyOut.of(record) for record in page],
        next_cursor=encode_cursor({"after": page[-1].key_id}) if more else None,
    )


@router.post("/{key_id}/revoke", response_model=ApiKeyOut)
def revoke_key(
    key_id: IdPath, platform: PlatformDep, _admin: CurrentNetworkAdmin, idempotency: IdempotencyDep
) -> ApiKeyOut:
    """Revoke a key; requests with it get 401 from now on. A second revoke is 409 (a retry
    with the first one's Idempotency-Key is answered as the first)."""
    outcome = revoke_api_key(platform=platform, key_id=key_id, idempotency=idempotency)
    if outcome is RevokeOutcome.NOT_FOUND:
        raise not_found("API key")
    if outcome is RevokeOutcome.ALREADY_REVOKED:
        raise AuthError(AuthRefusal.API_KEY_ALREADY_REVOKED, "the key is already revoked")
    record = get_api_key(platform=platform, key_id=key_id)
    if record is None:  # just revoked; keys are never deleted
        raise InvariantError(f"API key {key_id} vanished after its revoke")
    return ApiKeyOut.of(record)
