"""Opening and closing a page's session: the ``fp_session`` and ``fp_csrf`` cookies.

A wallet user logs in with phone and password (the wallet's own ``login``, throttled as for an
app); the cookie then carries ``user.<session token>`` and lives as long as the session. A
merchant (POS) or the network operator (console) logs in with an API key once; the cookie carries
``key.<api key>`` (decision 0023: the key is verified at login and on every request, exactly as
the header would be, and JavaScript never sees it again). ``flashpay.api.security`` reads the
cookie; this module only writes it.

The CSRF token is random per browser, in a cookie JavaScript may read (not HttpOnly) and sends
back in ``X-CSRF-Token``: a page of another origin can neither read it nor set the header.
"""

from __future__ import annotations

import secrets

from fastapi import Request, Response

from flashpay.api.security import CSRF_COOKIE, SESSION_COOKIE

KEY_SESSION_SECONDS = 12 * 3600
CSRF_TOKEN_BYTES = 24


def secure(request: Request) -> bool:
    """Cookies are ``Secure`` whenever the page came over HTTPS."""
    return request.url.scheme == "https"


def ensure_csrf(request: Request, response: Response) -> str:
    """The browser's CSRF token, set when it has none yet."""
    token = request.cookies.get(CSRF_COOKIE)
    if token and 16 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum():
        return token
    token = secrets.token_urlsafe(CSRF_TOKEN_BYTES)
    response.set_cookie(
        CSRF_COOKIE, token, samesite="strict", secure=secure(request), httponly=False, path="/"
    )
    return token


def open_session(request: Request, response: Response, *, value: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max(1, max_age),
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/",
    )


def close_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="strict", secure=secure(request), path="/"
    )


def session_token(request: Request) -> str | None:
    """The wallet session token of the request's cookie, if it is a user's."""
    kind, _, value = request.cookies.get(SESSION_COOKIE, "").partition(".")
    return value if kind == "user" and value else None
