"""``GET /dev/messages``: the development outbox as a page a person reads (and as JSON).

Mounted only in a development process (``create_app_from_environment`` with ``FLASHPAY_ENV``
unset or ``development``; decision 0015); a production app has no ``/dev`` routes at all, so the
paths are a plain 404 there. The page shows one-time codes, which are secrets, so even in
development it answers only clients on the loopback interface (``127.0.0.1``, ``::1``); anyone
else gets the same 404. It is not part of the API: no ``/v1``, not in the OpenAPI document.

The page is plain server-rendered HTML with its own inline CSS (nothing loaded from elsewhere), a
banner saying it is not an SMS gateway, a filter by phone, and a refresh every few seconds so the
code appears while the person waits. ``GET /dev/messages.json`` is the same list for scripts.
"""

from __future__ import annotations

import html
import ipaddress
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from flashpay.api.deps import PlatformDep
from flashpay.api.errors import ApiError
from flashpay.clock import to_datetime
from flashpay.notify.models import PHONE_CHARS_MAX
from flashpay.notify.outbox import LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, OutboxMessage, list_messages

REFRESH_SECONDS = 5
_NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}

router = APIRouter(prefix="/dev", tags=["development"], include_in_schema=False)

PhoneQuery = Annotated[str | None, Query(max_length=PHONE_CHARS_MAX, pattern=r"^\+?[0-9]{1,20}$")]
LimitQuery = Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)]


class OutboxMessageOut(BaseModel):
    id: int
    sent_at: str
    phone: str
    purpose: str
    reference: str
    code: str
    text: str

    @classmethod
    def of(cls, message: OutboxMessage) -> OutboxMessageOut:
        return cls(
            id=message.id,
            sent_at=to_datetime(message.sent_at_ns).isoformat(),
            phone=message.phone,
            purpose=message.purpose,
            reference=message.reference,
            code=message.code,
            text=message.text,
        )


class OutboxOut(BaseModel):
    development_only: bool = True
    notice: str = "development only — not an SMS gateway; off in production"
    messages: list[OutboxMessageOut]


def _require_loopback(request: Request) -> None:
    host = request.client.host if request.client is not None else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ApiError(status_code=404, code="not_found", message="no such page")


@router.get("/messages.json")
def messages_json(
    request: Request,
    platform: PlatformDep,
    phone: PhoneQuery = None,
    limit: LimitQuery = LIST_LIMIT_DEFAULT,
) -> JSONResponse:
    """The newest messages of the development outbox, newest first."""
    _require_loopback(request)
    found = list_messages(engine=platform.engine, phone=phone, limit=limit)
    body = OutboxOut(messages=[OutboxMessageOut.of(m) for m in found])
    return JSONResponse(body.model_dump(), headers=_NO_STORE)


@router.get("/messages", response_class=HTMLResponse)
def messages_page(
    request: Request,
    platform: PlatformDep,
    phone: PhoneQuery = None,
    limit: LimitQuery = LIST_LIMIT_DEFAULT,
) -> HTMLResponse:
    """The newest messages of the development outbox as a page."""
    _require_loopback(request)
    found = list_messages(engine=platform.engine, phone=phone, limit=limit)
    return HTMLResponse(render_page(found, phone=phone, limit=limit), headers=_NO_STORE)


def mount(app: FastAPI) -> None:
    """Add the ``/dev`` pages to a development app (never call this in production)."""
    app.include_router(router)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #fafafa; }
.banner { background: #b00020; color: #fff; padding: 1.2rem 2rem; font-size: 1.6rem;
          font-weight: 700; letter-spacing: .02em; }
.banner small { display: block; font-size: .95rem; font-weight: 400; margin-top: .4rem; }
main { padding: 1rem 2rem; }
form { margin: 1rem 0; }
input { font: inherit; padding: .25rem .4rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border-bottom: 1px solid #ddd; padding: .5rem .6rem; text-align: left;
         vertical-align: top; }
th { background: #eee; }
td.code { font-family: ui-monospace, monospace; font-size: 1.5rem; font-weight: 700;
          letter-spacing: .15em; }
.empty { color: #666; font-style: italic; }
"""


def render_page(messages: list[OutboxMessage], *, phone: str | None, limit: int) -> str:
    """The outbox page (every value escaped)."""
    rows = "\n".join(
        "<tr>"
        f"<td>{html.escape(to_datetime(m.sent_at_ns).strftime('%Y-%m-%d %H:%M:%S'))} UTC</td>"
        f"<td>{html.escape(m.phone)}</td>"
        f"<td>{html.escape(m.purpose)} {html.escape(m.reference)}</td>"
        f'<td class="code">{html.escape(m.code)}</td>'
        f"<td>{html.escape(m.text)}</td>"
        "</tr>"
        for m in messages
    )
    if not messages:
        rows = '<tr><td colspan="5" class="empty">no messages yet</td></tr>'
    shown = f" to {html.escape(phone)}" if phone else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>DEVELOPMENT ONLY — flashpay messages</title>
<style>{_CSS}</style>
</head>
<body>
<div class="banner" role="alert">DEVELOPMENT ONLY — not an SMS gateway
<small>The messages this flashpay would have sent by SMS, with their one-time codes. This page
exists only when FLASHPAY_ENV is development and answers only on 127.0.0.1; in production
(FLASHPAY_ENV=production) codes go to the SMS gateway and /dev does not exist.</small></div>
<main>
<form method="get" action="/dev/messages">
<label>Phone <input name="phone" value="{html.escape(phone or "")}" maxlength="20"></label>
<label>Show <input name="limit" type="number" min="1" max="{LIST_LIMIT_MAX}"
value="{limit}"></label>
<button type="submit">Filter</button>
</form>
<p>Newest first{shown}; refreshed every {REFRESH_SECONDS} seconds.</p>
<table>
<thead><tr><th>sent</th><th>to</th><th>for</th><th>code</th><th>text</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</main>
</body>
</html>
"""
