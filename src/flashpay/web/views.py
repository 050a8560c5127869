"""The few reads the pages need that the ``/v1`` API has no route for.

- ``scan_preview``: what a scanned merchant code says, resolved to the merchant (its id for the
  promotions quote, its name and the order's amount), *before* paying — the API's scan-to-pay
  decodes the payload only when it pays (``flashpay.payments.fronts``).
- ``decode_image``: the one QR code or barcode in an uploaded picture (``flashpay.qr.images``,
  zxing-cpp), so a phone without camera access can still scan.
- ``render_code``: a QR or a barcode as SVG, for a payment code the page holds (a secret: it is
  POSTed, never put in a URL that a log could keep).
- ``console``: the operator's view: payments per second and declines by reason
  (``flashpay.payments.activity``), each member's net position (``flashpay.institutions``) and
  the audit log's checkpoints with each witness's cosignature (``flashpay.chain``).
"""

from __future__ import annotations

from typing import Any

from flashpay.api.errors import ApiError
from flashpay.chain import note
from flashpay.chain.service import ChainLog
from flashpay.clock import to_datetime
from flashpay.institutions.service import net_positions
from flashpay.merchants.service import merchant_terminals
from flashpay.money import Money, MoneyError
from flashpay.payments.activity import recent_activity
from flashpay.platform import Platform
from flashpay.qr.images import read_code, render_barcode, render_qr
from flashpay.qr.merchant_codes import read_flashpay_code
from flashpay.qr.mpm import PAYLOAD_CHARS_MAX, QrError

IMAGE_BYTES_MAX = 4 * 1024 * 1024
CHECKPOINTS_SHOWN_MAX = 10


def _unreadable(message: str) -> ApiError:
    return ApiError(status_code=422, code="invalid_code", message=message)


def scan_preview(*, platform: Platform, payload: str) -> dict[str, Any]:
    """The merchant and amount of a scanned flashpay code; 422 ``invalid_code`` for anything
    else, 404 ``not_found`` for a merchant the network does not know."""
    text = payload.strip()
    if not text or len(text) > PAYLOAD_CHARS_MAX:
        raise _unreadable("the code is empty or too long")
    try:
        code = read_flashpay_code(text)
    except (QrError, MoneyError) as exc:
        raise _unreadable(f"not a merchant code: {exc}") from exc
    if code is None:
        raise _unreadable("another network's code: flashpay cannot pay it")
    by_code, _ = merchant_terminals(
        platform=platform, by_code=[(code.merchant_id, code.terminal_id)]
    )
    merchant, _terminal = by_code.get((code.merchant_id, code.terminal_id), (None, None))
    if merchant is None:
        raise ApiError(status_code=404, code="not_found", message="no such merchant")
    amount: Money | None = code.amount
    return {
        "merchant_id": merchant.id,
        "merchant": merchant.display_name,
        "city": merchant.city,
        "scene": merchant.scene.value,
        "terminal": code.terminal_id,
        "dynamic": code.dynamic,
        "amount": None if amount is None else amount.decimal_text(),
        "bill_number": code.bill_number,
    }


def decode_image(image: bytes) -> str:
    if not image or len(image) > IMAGE_BYTES_MAX:
        raise _unreadable(f"the image must be 1 byte to {IMAGE_BYTES_MAX} bytes")
    try:
        return read_code(image)
    except QrError as exc:
        raise _unreadable(str(exc)) from exc


def render_code(text: str, *, barcode: bool) -> bytes:
    if not text or len(text) > PAYLOAD_CHARS_MAX:
        raise _unreadable("nothing to render")
    try:
        return render_barcode(text, "svg") if barcode else render_qr(text, "svg", scale=6)
    except QrError as exc:
        raise _unreadable(str(exc)) from exc


def _checkpoints(log: ChainLog) -> list[dict[str, Any]]:
    shown = log.checkpoints()[-CHECKPOINTS_SHOWN_MAX:]
    out = []
    for checkpoint in reversed(shown):
        cosignatures = []
        for witness, line in checkpoint.cosignatures:
            _, sigs = note.split(checkpoint.note + line)
            stamp = sigs[-1].timestamp
            cosignatures.append(
                {"witness": witness, "timestamp": stamp, "signature": sigs[-1].base64}
            )
        out.append(
            {
                "tree_size": checkpoint.size,
                "root_hash": checkpoint.root_hash.hex(),
                "created_at": to_datetime(checkpoint.created_at_ns).isoformat(),
                "final": checkpoint.final_at_ns is not None,
                "cosignatures": cosignatures,
            }
        )
    return out


def console(*, platform: Platform, log: ChainLog, window_seconds: int) -> dict[str, Any]:
    activity = recent_activity(platform=platform, window_seconds=window_seconds)
    return {
        "window_seconds": activity.window_seconds,
        "per_second": list(activity.per_second),
        "payments": activity.total,
        "declines": [{"reason": r, "count": n} for r, n in activity.declines],
        "positions": [
            {
                "code": p.code,
                "name": p.name,
                "kind": p.kind.value,
                "net": Money.of(p.net).decimal_text(),
                "income": Money.of(p.income).decimal_text(),
            }
            for p in net_positions(platform=platform)
        ],
        "log_size": log.size(),
        "checkpoints": _checkpoints(log),
    }
