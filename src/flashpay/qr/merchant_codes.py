"""flashpay's own merchant-presented codes: static (one per merchant or terminal) and dynamic
(one per order, with its amount and bill number).

Layout (all EMVCo MPM v1.1):

- ``00`` = ``01``; ``01`` = ``11`` static or ``12`` dynamic;
- ``15`` UnionPay's primitive merchant account: acquirer IIN (8 digits) + forwarding IIN
  (8 digits) + merchant ID (15 characters);
- ``26`` the flashpay template: ``00`` GUI ``COM.FLASHPAY``, ``01`` merchant id, ``02`` terminal id;
- ``52`` MCC, ``53`` currency (numeric), ``54`` amount (dynamic only), ``58`` ``CN``,
  ``59`` display name (≤ 25), ``60`` city (≤ 15);
- ``62``: ``01`` bill number and ``05`` reference label (dynamic), ``07`` terminal label.
"""

from __future__ import annotations

from dataclasses import dataclass

from flashpay.money import Money
from flashpay.qr.mpm import MpmPayload, QrError, decode_mpm, encode_mpm

FLASHPAY_GUI = "COM.FLASHPAY"
FLASHPAY_TEMPLATE_ID = "26"
UNIONPAY_ACCOUNT_ID = "15"
NAME_CHARS_MAX = 25
CITY_CHARS_MAX = 15
MERCHANT_ID_CHARS = 15


@dataclass(frozen=True, slots=True)
class MerchantCodeFields:
    merchant_id: str
    terminal_id: str
    name: str
    city: str
    mcc: str
    acquirer_iin: str
    forwarding_iin: str
    country: str = "CN"


@dataclass(frozen=True, slots=True)
class FlashpayCode:
    """What a flashpay merchant code tells the wallet."""

    merchant_id: str
    terminal_id: str
    dynamic: bool
    amount: Money | None
    bill_number: str | None
    reference: str | None


def _check(fields: MerchantCodeFields) -> None:
    if not 1 <= len(fields.name) <= NAME_CHARS_MAX:
        raise QrError(f"merchant name must be 1–{NAME_CHARS_MAX} characters")
    if not 1 <= len(fields.city) <= CITY_CHARS_MAX:
        raise QrError(f"merchant city must be 1–{CITY_CHARS_MAX} characters")
    if not (len(fields.mcc) == 4 and fields.mcc.isdigit()):
        raise QrError("MCC must be 4 digits (ISO 18245)")
    for iin in (fields.acquirer_iin, fields.forwarding_iin):
        if not (len(iin) == 8 and iin.isdigit()):
            raise QrError("an IIN is 8 digits")
    if len(fields.merchant_id) != MERCHANT_ID_CHARS:
        raise QrError(f"the merchant ID is {MERCHANT_ID_CHARS} characters")


def _objects(fields: MerchantCodeFields, initiation: str) -> list[tuple[str, object]]:
    return [
        ("00", "01"),
        ("01", initiation),
        (UNIONPAY_ACCOUNT_ID, fields.acquirer_iin + fields.forwarding_iin + fields.merchant_id),
        (
            FLASHPAY_TEMPLATE_ID,
            [("00", FLASHPAY_GUI), ("01", fields.merchant_id), ("02", fields.terminal_id)],
        ),
        ("52", fields.mcc),
    ]


def static_code(fields: MerchantCodeFields, *, currency_numeric: str = "156") -> str:
    """A static code (point of initiation 11, no amount): the payer types the amount."""
    _check(fields)
    objects = _objects(fields, "11")
    objects += [
        ("53", currency_numeric),
        ("58", fields.country),
        ("59", fields.name),
        ("60", fields.city),
        ("62", [("07", fields.terminal_id)]),
    ]
    return encode_mpm(objects)


def dynamic_code(
    fields: MerchantCodeFields, *, amount: Money, bill_number: str, reference: str
) -> str:
    """A dynamic code for one order (point of initiation 12) with its amount and bill number."""
    _check(fields)
    if amount.amount_minor <= 0:
        raise QrError("a dynamic code's amount must be positive")
    if not (1 <= len(bill_number) <= 25 and 1 <= len(reference) <= 25):
        raise QrError("bill number and reference are 1–25 characters")
    objects = _objects(fields, "12")
    objects += [
        ("53", f"{amount.currency.numeric:03d}"),
        ("54", amount.decimal_text()),
        ("58", fields.country),
        ("59", fields.name),
        ("60", fields.city),
        ("62", [("01", bill_number), ("05", reference), ("07", fields.terminal_id)]),
    ]
    return encode_mpm(objects)


def read_flashpay_code(payload: MpmPayload | str) -> FlashpayCode | None:
    """The flashpay fields of a decoded code, or None when it is not a flashpay code (another
    network's code: PIX, PromptPay, …). Raises ``MpmDecodeError`` for a malformed payload."""
    decoded = decode_mpm(payload) if isinstance(payload, str) else payload
    template = decoded.get(FLASHPAY_TEMPLATE_ID)
    if template is None or template.children is None:
        return None
    gui = template.child("00")
    merchant = template.child("01")
    terminal = template.child("02")
    if gui is None or gui.value != FLASHPAY_GUI or merchant is None or terminal is None:
        return None
    extra = decoded.get("62")
    bill = extra.child("01") if extra is not None else None
    ref = extra.child("05") if extra is not None else None
    amount_text = decoded.value("54")
    currency_text = decoded.value("53") or "156"
    amount = Money.parse(amount_text, currency_text) if amount_text is not None else None
    return FlashpayCode(
        merchant_id=merchant.value,
        terminal_id=terminal.value,
        dynamic=decoded.value("01") == "12",
        amount=amount,
        bill_number=bill.value if bill is not None else None,
        reference=ref.value if ref is not None else None,
    )
