"""API keys as the HTTP layer's callers: ``api_key_verifier(platform)`` answers a key with the
``Principal`` it authenticates.

The HTTP kernel (``flashpay.api.security``) knows callers, not key tables; the composition root
(``flashpay.app``) hands it this verifier, so the kernel imports no domain and the auth domain
keeps its table to itself.
"""

from __future__ import annotations

from flashpay.api.security import ActorKind, ApiKeyVerifier, Principal
from flashpay.auth.service import PrincipalKind, verify_api_key
from flashpay.platform import Runtime


def api_key_verifier(platform: Runtime) -> ApiKeyVerifier:
    """Verify API keys against ``platform``'s key table."""

    def verify(key: str) -> Principal | None:
        found = verify_api_key(platform=platform, key=key)
        if found is None:
            return None
        kind = (
            ActorKind.INSTITUTION if found.kind is PrincipalKind.INSTITUTION else ActorKind.MERCHANT
        )
        return Principal(kind=kind, id=found.principal_id, network_admin=found.network_admin)

    return verify
