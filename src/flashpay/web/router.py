"""The pages (``/wallet``, ``/pos``, ``/console``), their assets (``/static``) and the small
``/web`` API that opens sessions and serves what ``views`` computes.

Pages are shells rendered by Jinja2 in the reader's language; their scripts fill them from the
``/v1`` API with the session cookie (``flashpay.web.session``). Every page answers with a
Content-Security-Policy that allows only flashpay's own scripts, styles and images (no inline
script: the words a script needs travel as a JSON data block). Not part of the API: no ``/v1``,
not in the OpenAPI document.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from flashpay import config
from flashpay.api.deps import (
    CurrentNetworkAdmin,
    CurrentUser,
    OptionalPrincipal,
    ServicesDep,
)
from flashpay.api.errors import ApiError
from flashpay.api.security import CSRF_COOKIE, CSRF_HEADER, ActorKind, Authenticator, csrf_refused
from flashpay.api.types import IdPath
from flashpay.chain.deps import ChainLogDep
from flashpay.clock import NS_PER_SECOND
from flashpay.merchants.service import Scene
from flashpay.wallet.sessions import login, logout
from flashpay.web import i18n, session, views

AUDIT_KEYS_ENV = "FLASHPAY_AUDIT_KEYS"
CONSOLE_WINDOW_SECONDS = 60
_ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _load_assets() -> dict[str, tuple[bytes, str, str]]:
    """Every file of ``static``: (bytes, content type, a short content hash for the URL)."""
    folder = resources.files("flashpay.web").joinpath("static")
    found = {}
    for entry in folder.iterdir():
        suffix = Path(entry.name).suffix
        if suffix in _ASSET_TYPES:
            data = entry.read_bytes()
            found[entry.name] = (data, _ASSET_TYPES[suffix], hashlib.sha256(data).hexdigest()[:12])
    return found


_ASSETS = _load_assets()
_TEMPLATES = Environment(
    loader=PackageLoader("flashpay.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(include_in_schema=False)


def _asset_url(name: str) -> str:
    return f"/static/{name}?v={_ASSETS[name][2]}"


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    lang = i18n.language(request)
    words = i18n.words(lang)
    words_json = json.dumps(words, ensure_ascii=False).replace("<", "\\u003c")
    other = "en" if lang == "zh" else "zh"
    html = _TEMPLATES.get_template(template).render(
        t=words,
        lang=lang,
        other_lang=other,
        words_json=words_json,
        asset=_asset_url,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(html, headers=_PAGE_HEADERS)
    session.ensure_csrf(request, response)
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.LANG_COOKIE, lang, samesite="strict", max_age=365 * 86400)
    return response


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/wallet", status_code=303)


@router.get("/wallet", response_class=HTMLResponse)
async def wallet_page(request: Request) -> HTMLResponse:
    scenes = json.dumps([scene.value for scene in Scene])
    # Only a development server keeps one-time codes on its /dev page (decision 0015).
    development = config.environment() is config.Environment.DEVELOPMENT
    return _page(
        request, "wallet.html", title_key="wallet", script="wallet.js", scenes=scenes,
        development=development,
    )  # fmt: skip


@router.get("/wallet/receipts/{payment_id}", response_class=HTMLResponse)
async def receipt_page(request: Request, payment_id: IdPath) -> HTMLResponse:
    return _page(
        request, "receipt.html", title_key="receipt", script="receipt.js", payment_id=payment_id
    )


@router.get("/pos", response_class=HTMLResponse)
async def pos_page(request: Request) -> HTMLResponse:
    return _page(request, "pos.html", title_key="pos", script="pos.js")


@router.get("/console", response_class=HTMLResponse)
async def console_page(request: Request) -> HTMLResponse:
    return _page(request, "console.html", title_key="console", script="console.js")


@router.get("/static/{name}")
async def asset(name: str) -> Response:
    found = _ASSETS.get(name)
    if found is None:
        raise ApiError(status_code=404, code="not_found", message="no such asset")
    data, content_type, digest = found
    return Response(
        data,
        media_type=content_type,
        headers={"Cache-Control": "public, max-age=3600", "ETag": f'"{digest}"'},
    )


# -- sessions ------------------------------------------------------------------------------------
def _check_csrf(request: Request) -> None:
    """Logging in has no session cookie yet, so the kernel's check does not run: the same
    double-submit check here keeps another site from logging the browser into its account."""
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise csrf_refused()


LoginField = Annotated[str, Body(min_length=1, max_length=128)]


@router.post("/web/session")
async def open_user_session(
    request: Request, platform: ServicesDep, phone: LoginField, password: LoginField
) -> JSONResponse:
    """Log a wallet user in: the wallet's ``login`` (throttled per account and address), its
    token into the HttpOnly cookie; the token itself is not in the answer."""
    _check_csrf(request)
    source = request.client.host if request.client else None
    opened = await to_thread.run_sync(
        lambda: login(platform=platform, phone=phone, password=password, source=source)
    )
    now_ns = platform.clock.now_ns()
    expires = datetime.fromtimestamp(opened.expires_at_ns / NS_PER_SECOND, UTC)
    response = JSONResponse(
        {"user_id": opened.user_id, "expires_at": expires.isoformat()},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )
    max_age = (opened.expires_at_ns - now_ns) // NS_PER_SECOND
    session.open_session(request, response, value=f"user.{opened.token}", max_age=max_age)
    return response


_KEY_ROLES = {"merchant", "operator"}


@router.post("/web/session/key")
async def open_key_session(
    request: Request,
    api_key: Annotated[str, Body(min_length=1, max_length=512)],
    role: Annotated[str, Body(max_length=16)],
) -> JSONResponse:
    """Log a POS (a merchant's key) or the console (the operator's administration key) in."""
    _check_csrf(request)
    if role not in _KEY_ROLES:
        raise ApiError(
            status_code=422, code="validation_error", message="role is merchant|operator"
        )
    authenticator: Authenticator = request.app.state.authenticator
    principal = await to_thread.run_sync(authenticator.verify_api_key, api_key.strip())
    wanted = ActorKind.MERCHANT if role == "merchant" else ActorKind.INSTITUTION
    if principal is None:
        raise ApiError(status_code=401, code="invalid_credentials", message="unknown API key")
    if principal.kind is not wanted or (role == "operator" and not principal.network_admin):
        raise ApiError(status_code=403, code="forbidden", message=f"not a {role}'s key")
    response = JSONResponse(
        {"kind": principal.kind.value, "id": principal.id},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )
    session.open_session(
        request, response, value=f"key.{api_key.strip()}", max_age=session.KEY_SESSION_SECONDS
    )
    return response


@router.post("/web/logout", status_code=204)
async def close(request: Request, platform: ServicesDep) -> Response:
    _check_csrf(request)
    token = session.session_token(request)
    if token is not None:
        await to_thread.run_sync(lambda: logout(platform=platform, token=token))
    response = Response(status_code=204)
    session.close_session(request, response)
    return response


# -- what the pages read -------------------------------------------------------------------------
@router.post("/web/api/scan")
async def scan(
    user: CurrentUser,
    platform: ServicesDep,
    payload: Annotated[str, Body(embed=True, max_length=views.PAYLOAD_CHARS_MAX)],
) -> dict[str, Any]:
    """The merchant and amount of a code the wallet scanned, before paying it."""
    return await to_thread.run_sync(lambda: views.scan_preview(platform=platform, payload=payload))


def _signed_in(principal: Any) -> None:
    if principal is None:
        raise ApiError(
            status_code=401, code="authentication_required", message="this needs a session"
        )


@router.post("/web/api/decode")
async def decode(request: Request, principal: OptionalPrincipal) -> dict[str, str]:
    """The code in an uploaded picture (the request body is the image, PNG or JPEG)."""
    _signed_in(principal)
    image = await request.body()
    text = await to_thread.run_sync(views.decode_image, image)
    return {"text": text}


@router.post("/web/api/render")
async def render(
    principal: OptionalPrincipal,
    text: Annotated[str, Body(max_length=views.PAYLOAD_CHARS_MAX)],
    barcode: Annotated[bool, Body()] = False,
) -> Response:
    """A QR code (or a Code 128 barcode) of ``text`` as SVG, for a payment code the page holds."""
    _signed_in(principal)
    svg = await to_thread.run_sync(lambda: views.render_code(text, barcode=barcode))
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/web/api/console")
async def console(
    _admin: CurrentNetworkAdmin,
    platform: ServicesDep,
    log: ChainLogDep,
    window: Annotated[int, Query(ge=1, le=300)] = CONSOLE_WINDOW_SECONDS,
) -> dict[str, Any]:
    return await to_thread.run_sync(
        lambda: views.console(platform=platform, log=log, window_seconds=window)
    )


@router.get("/web/audit-keys.txt")
async def audit_keys() -> PlainTextResponse:
    """The audit log's published keys file (``$FLASHPAY_AUDIT_KEYS``, a path): the log key, the
    witnesses' keys and the quorum that the receipt page verifies against."""
    path = os.environ.get(AUDIT_KEYS_ENV)
    if not path or not Path(path).is_file():
        raise ApiError(status_code=404, code="not_found", message="no audit keys are published")
    return PlainTextResponse(Path(path).read_text(), headers={"Cache-Control": "no-cache"})
