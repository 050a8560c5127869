"""API keys for institutions and merchants (``auth_api_keys``).

Institutions (the network operator, issuers, acquirers) and merchants call the HTTP API with an API
key, sent as ``X-Api-Key: <key>`` or ``Authorization: ApiKey <key>``. A key is 32 random bytes,
URL-safe Base64 with a ``fpk_`` prefix so it is recognisable in a leaked-secret scan. Only the
SHA-256 of the key is stored (a key has 256 bits of entropy, so a fast hash is enough: there is no
dictionary to brute-force, unlike a password), together with the principal it authenticates
(``institution`` or ``merchant`` and its id), whether it may administer the network (only a key
of the network operator, granted from the command line), when it was created and when it was
revoked. The key
itself is shown once, when created (``flashpay apikey create``), and cannot be recovered.
"""

from flashpay.auth.service import (
    API_KEY_PREFIX,
    ApiKeyPrincipal,
    ApiKeyRecord,
    CreatedApiKey,
    PrincipalKind,
    RevokeOutcome,
    create_api_key,
    get_api_key,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)

__all__ = [
    "API_KEY_PREFIX",
    "ApiKeyPrincipal",
    "ApiKeyRecord",
    "CreatedApiKey",
    "PrincipalKind",
    "RevokeOutcome",
    "create_api_key",
    "get_api_key",
    "list_api_keys",
    "revoke_api_key",
    "verify_api_key",
]
