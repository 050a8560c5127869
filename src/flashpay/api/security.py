"""Who is calling: users by bearer token, institutions and merchants by API key.

Credentials come in one of three headers:

- ``Authorization: Bearer <token>`` — a wallet user; the token is issued by the wallet's login and
  verified by the wallet service (the ``verify_user_token`` function given to ``create_app``).
- ``X-Api-Key: <key>`` or ``Authorization: ApiKey <key>`` — an institution or a merchant; the
  key is verified by ``flashpay.auth`` (the ``verify_api_key`` function the composition root,
  ``flashpay.app``, gives the ``Authenticator``).

Pages in a browser (``flashpay.web``) carry the same credentials in a cookie instead: the
``fp_session`` cookie (HttpOnly, SameSite=Strict) holds ``user.<token>`` or ``key.<api key>``
and is read only when no credential header is present. A request that changes something
(any method but GET, HEAD, OPTIONS) with the cookie must also send the ``fp_csrf`` cookie's
value in the ``X-CSRF-Token`` header (double submit), else 403 ``csrf_token_invalid``: another
site can make the browser send the cookie, but cannot read it to copy it into a header.

Both verifiers are functions handed in, not imports: this module is part of the HTTP kernel, which
imports no domain (docs/reference/architecture.md).

No credentials at all is *anonymous* (``None``); credentials that are present but malformed,
unknown or revoked are a 401 ``invalid_credentials`` — never silently anonymous. The resolved
principal is cached in the request scope, so the idempotency middleware and the route dependencies
authenticate a request once.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from flashpay.api.errors import ApiError
from flashpay.errors import InvariantError

_SCOPE_KEY = "flashpay.principal"
UNRESOLVED: Final = object()
TOKEN_CHARS_MAX = 512


class ActorKind(StrEnum):
    USER = "user"
    INSTITUTION = "institution"
    MERCHANT = "merchant"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    kind: ActorKind
    id: int
    network_admin: bool = False

    @property
    def scope(self) -> str:
        """The namespace of this caller's idempotency keys, e.g. ``user:42``."""
        return f"{self.kind.value}:{self.id}"


def invalid_credentials() -> ApiError:
    return ApiError(
        status_code=401,
        code="invalid_credentials",
        message="the credentials are malformed, unknown, expired or revoked",
        headers={"WWW-Authenticate": 'Bearer realm="flashpay", ApiKey realm="flashpay"'},
    )


def _credentials(headers: Headers) -> tuple[str, str] | None:
    api_key = headers.get("x-api-key")
    authorization = headers.get("authorization")
    if api_key is not None:
        if authorization is not None:
            raise invalid_credentials()  # two credentials: refuse rather than pick one
        return "apikey", api_key.strip()
    if authorization is None:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("bearer", "apikey") or not value.strip():
        raise invalid_credentials()
    return scheme, value.strip()


SESSION_COOKIE = "fp_session"
CSRF_COOKIE = "fp_csrf"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_COOKIE_SCHEMES = {"user": "bearer", "key": "apikey"}


def csrf_refused() -> ApiError:
    return ApiError(
        status_code=403,
        code="csrf_token_invalid",
        message="a page's request must send the fp_csrf cookie's value in X-CSRF-Token",
    )


def _cookie_credentials(headers: Headers, method: str) -> tuple[str, str] | None:
    """The session cookie's credentials (see the module docstring), CSRF-checked."""
    cookies = cookie_parser(headers.get("cookie", ""))
    session = cookies.get(SESSION_COOKIE)
    if not session:
        return None
    kind, _, value = session.partition(".")
    scheme = _COOKIE_SCHEMES.get(kind)
    if scheme is None or not value:
        raise invalid_credentials()
    if method.upper() not in _SAFE_METHODS:
        expected = cookies.get(CSRF_COOKIE, "")
        sent = headers.get(CSRF_HEADER, "")
        if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
            raise csrf_refused()
    return scheme, value


UserTokenVerifier = Callable[[str], int | None]
"""Maps a wallet bearer token to its user id, ``None`` when the token is not valid."""


def no_user_tokens(_token: str) -> int | None:
    """The verifier when no wallet is wired into the app: no bearer token is valid."""
    return None


ApiKeyVerifier = Callable[[str], Principal | None]
"""Maps an API key to the institution or merchant it authenticates, ``None`` when the key is
unknown or revoked (``flashpay.auth.principals.api_key_verifier``)."""


def no_api_keys(_key: str) -> Principal | None:
    """The verifier when no key store is wired into the app: no API key is valid."""
    return None


@dataclass(frozen=True, slots=True)
class Authenticator:
    """Resolves a request's caller: API keys through ``verify_api_key`` (``flashpay.auth``'s),
    bearer tokens through the wallet's verifier (``verify_user_token``, given to ``create_app``)."""

    verify_api_key: ApiKeyVerifier = no_api_keys
    verify_user_token: UserTokenVerifier = no_user_tokens

    def authenticate(self, headers: Headers, method: str = "GET") -> Principal | None:
        """The caller: a principal, ``None`` when anonymous; raises 401 when invalid (403 for a
        cookie without its CSRF token on a ``method`` that changes something)."""
        credentials = _credentials(headers)
        if credentials is None:
            credentials = _cookie_credentials(headers, method)
        if credentials is None:
            return None
        scheme, value = credentials
        if len(value) > TOKEN_CHARS_MAX:
            raise invalid_credentials()
        if scheme == "bearer":
            user_id = self.verify_user_token(value)
            if user_id is None:
                raise invalid_credentials()
            return Principal(kind=ActorKind.USER, id=user_id)
        principal = self.verify_api_key(value)
        if principal is None:
            raise invalid_credentials()
        return principal

    def cached(self, scope: MutableMapping[str, Any]) -> Principal | None:
        """``authenticate`` once per request, remembering the answer (or the 401) in the scope."""
        state = scope.setdefault("state", {})
        cached = state.get(_SCOPE_KEY, UNRESOLVED)
        if cached is UNRESOLVED:
            try:
                cached = self.authenticate(Headers(scope=scope), str(scope.get("method", "GET")))
            except ApiError as error:
                cached = error
            state[_SCOPE_KEY] = cached
        if isinstance(cached, ApiError):
            raise cached
        if cached is not None and not isinstance(cached, Principal):
            raise InvariantError(f"the request's principal cache holds a {type(cached).__name__}")
        return cached


def resolved_principal(scope: MutableMapping[str, Any]) -> tuple[bool, Principal | None]:
    """``(True, principal)`` if this request was authenticated already; re-raises a cached 401."""
    cached = scope.get("state", {}).get(_SCOPE_KEY, UNRESOLVED)
    if cached is UNRESOLVED:
        return False, None
    if isinstance(cached, ApiError):
        raise cached
    if cached is not None and not isinstance(cached, Principal):
        raise InvariantError(f"the request's principal cache holds a {type(cached).__name__}")
    return True, cached
