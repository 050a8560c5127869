"""flashpay payment codes: the one-time code a wallet shows for the merchant to scan (CPM).

A payment code carries a **network token** — never the card number — and proves, with a
cryptogram only the network can check, that it was issued for that token, at that time, with that
counter. Two forms, bound to the same token and counter:

- **the QR form**, an EMVCo CPM payload laid out as UnionPay's: ``85`` "CPV01", then ``61`` with
  ``4F`` the AID, ``50`` the label, ``57`` Track 2 equivalent data (token ``D`` expiry YYMM,
  service code 201, ``F``-padded), ``5F34`` 00, and ``63`` holding ``9F26`` the cryptogram,
  ``9F27`` 80 (an ARQC), ``9F10`` issuer application data, ``9F36`` the application transaction
  counter (ATC), ``82`` the AIP and ``9F37`` a 4-byte unpredictable number;
- **the numeric form** that 1-D barcode scanners read: 19 digits, ``62`` + 16 digits + a Luhn
  check digit. The 16 digits are a keyed digest of (token, ATC, issue time), so the network finds
  the code in the store where it recorded the issue and re-derives it to check it.

Issuer application data (``9F10``, issuer-proprietary in EMV) is flashpay's: version ``01``, the
token key's version, and the issue time in Unix seconds (4 bytes, big-endian); the cryptogram
covers it, so the validity window cannot be stretched.

Cryptogram: the first 8 bytes of HMAC-SHA-256 under the token's key over ``b"FPC1"`` + token
digits + ``b"D"`` + expiry + AID + ATC (2 bytes) + unpredictable number + IAD. Token keys are
derived from the network's master key with HKDF-SHA-256 (``info`` = ``flashpay payment code`` +
token + key version), so the network stores one secret, not one per token.

Verification is a pure function: given the decoded code, the token's key, the time and the set of
(token, ATC) pairs already used, it returns ``None`` or the first failing ``CodeDecline``. The
caller (the payment service) makes "not used before" atomic in its store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from flashpay.cards.numbers import luhn_check_digit
from flashpay.qr.cpm import CpmDecodeError, CpmPayload, TlvItem, decode_cpm, encode_cpm
from flashpay.qr.mpm import QrError

CODE_LIFETIME_S = 60
CLOCK_SKEW_S = 5
NUMERIC_PREFIX = "62"
NUMERIC_DIGITS = 19
AID_DEBIT = bytes.fromhex("A000000333010101")
AID_CREDIT = bytes.fromhex("A000000333010102")
FLASHPAY_AIDS = frozenset({AID_DEBIT, AID_CREDIT})
APPLICATION_LABEL = "FLASHPAY"
IAD_VERSION = 0x01
CID_ARQC = b"\x80"
AIP = b"\x00\x00"
SERVICE_CODE = "201"
_CRYPTOGRAM_DOMAIN = b"FPC1"
_NUMERIC_DOMAIN = b"FPN1"


class CodeDecline(StrEnum):
    """Why a presented payment code is refused, in the order the checks run."""

    MALFORMED = "malformed"
    FOREIGN = "foreign"
    BAD_CRYPTOGRAM = "bad_cryptogram"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    ALREADY_USED = "already_used"


class PaymentCodeError(QrError):
    """A code that cannot be read as a flashpay payment code; ``reason`` says which way."""

    def __init__(self, reason: CodeDecline, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PaymentCode:
    """What a payment code says, in either form."""

    token: str
    token_expiry: str  # YYMM
    aid: bytes
    atc: int
    unpredictable_number: bytes
    issued_at: int  # Unix seconds
    key_version: int
    cryptogram: bytes

    @property
    def expires_at(self) -> int:
        return self.issued_at + CODE_LIFETIME_S

    @property
    def iad(self) -> bytes:
        return bytes((IAD_VERSION, self.key_version)) + self.issued_at.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A code as the wallet shows it: the parsed fields and both printable forms."""

    code: PaymentCode
    qr_payload: str
    numeric: str


def token_key(master_key: bytes, token: str, key_version: int = 1) -> bytes:
    """The per-token cryptogram key, derived from the network's master key."""
    if len(master_key) < 16:
        raise ValueError("the master key must be at least 16 bytes")
    info = b"flashpay payment code|" + token.encode("ascii") + b"|" + bytes((key_version,))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)


def _check_token(token: str, expiry: str) -> None:
    if not (token.isascii() and token.isdigit() and 13 <= len(token) <= 19):
        raise QrError("a network token is 13–19 digits")
    if not (expiry.isascii() and expiry.isdigit() and len(expiry) == 4):
        raise QrError("token expiry is YYMM")


def cryptogram(key: bytes, code: PaymentCode) -> bytes:
    """The 8-byte application cryptogram over the fields that matter."""
    message = b"".join(
        (
            _CRYPTOGRAM_DOMAIN,
            code.token.encode("ascii"),
            b"D",
            code.token_expiry.encode("ascii"),
            code.aid,
            code.atc.to_bytes(2, "big"),
            code.unpredictable_number,
            code.iad,
        )
    )
    return hmac.new(key, message, hashlib.sha256).digest()[:8]


def numeric_code(lookup_key: bytes, code: PaymentCode) -> str:
    """The 19-digit numeric form: ``62`` + 16 keyed digits + Luhn check digit."""
    message = b"".join(
        (
            _NUMERIC_DOMAIN,
            code.token.encode("ascii"),
            code.atc.to_bytes(2, "big"),
            code.issued_at.to_bytes(4, "big"),
            code.cryptogram,
        )
    )
    digest = hmac.new(lookup_key, message, hashlib.sha256).digest()
    body = NUMERIC_PREFIX + f"{int.from_bytes(digest[:8], 'big') % 10**16:016d}"
    return body + luhn_check_digit(body)


def _track2(token: str, expiry: str) -> bytes:
    text = f"{token}D{expiry}{SERVICE_CODE}"
    if len(text) % 2:
        text += "F"
    return bytes.fromhex(text)


def issue_payment_code(
    *,
    token: str,
    token_expiry: str,
    key: bytes,
    lookup_key: bytes,
    atc: int,
    now_s: int,
    credit: bool = False,
    key_version: int = 1,
    unpredictable_number: bytes | None = None,
) -> IssuedCode:
    """Build a payment code for ``token`` with counter ``atc`` at time ``now_s``."""
    _check_token(token, token_expiry)
    if not 0 <= atc <= 0xFFFF:
        raise QrError("the application transaction counter is 0–65535")
    if not 0 <= key_version <= 0xFF:
        raise QrError("the key version is one byte")
    un = unpredictable_number if unpredictable_number is not None else os.urandom(4)
    if len(un) != 4:
        raise QrError("the unpredictable number is 4 bytes")
    unsigned = PaymentCode(
        token,
        token_expiry,
        AID_CREDIT if credit else AID_DEBIT,
        atc,
        un,
        now_s,
        key_version,
        b"",
    )
    code = dataclasses.replace(unsigned, cryptogram=cryptogram(key, unsigned))
    transparent: list[TlvItem] = [
        ("9F26", code.cryptogram),
        ("9F27", CID_ARQC),
        ("9F10", code.iad),
        ("9F36", atc.to_bytes(2, "big")),
        ("82", AIP),
        ("9F37", un),
    ]
    application: list[TlvItem] = [
        ("4F", code.aid),
        ("50", APPLICATION_LABEL),
        ("57", _track2(token, token_expiry)),
        ("5F34", b"\x00"),
        ("63", transparent),
    ]
    payload = encode_cpm([("85", b"CPV01"), ("61", application)])
    return IssuedCode(code, payload, numeric_code(lookup_key, code))


def _required(decoded: CpmPayload, tag: str) -> bytes:
    node = decoded.find(tag)
    if node is None:
        raise PaymentCodeError(CodeDecline.MALFORMED, f"tag {tag} is missing")
    return node.value


def read_payment_code(payload: str) -> PaymentCode:
    """Read a flashpay payment code from its QR form. Any other CPM code (another network's
    AID, another IAD layout) raises ``PaymentCodeError`` with ``FOREIGN``; a payload that is not
    CPM at all, ``MALFORMED``."""
    try:
        decoded = decode_cpm(payload)
    except CpmDecodeError as exc:
        raise PaymentCodeError(CodeDecline.MALFORMED, str(exc)) from exc
    aid = _required(decoded, "4F")
    if aid not in FLASHPAY_AIDS:
        raise PaymentCodeError(CodeDecline.FOREIGN, f"AID {aid.hex().upper()} is not flashpay's")
    iad = _required(decoded, "9F10")
    if len(iad) != 6 or iad[0] != IAD_VERSION:
        raise PaymentCodeError(CodeDecline.FOREIGN, "issuer application data is not flashpay's")
    track2 = _required(decoded, "57").hex().upper().rstrip("F")
    token, sep, rest = track2.partition("D")
    if not sep or len(rest) < 4:
        raise PaymentCodeError(CodeDecline.MALFORMED, "Track 2 has no D separator and expiry")
    atc = _required(decoded, "9F36")
    un = _required(decoded, "9F37")
    mac = _required(decoded, "9F26")
    if len(atc) != 2 or len(un) != 4 or len(mac) != 8:
        raise PaymentCodeError(CodeDecline.MALFORMED, "ATC, unpredictable number or cryptogram")
    try:
        _check_token(token, rest[:4])
    except QrError as exc:
        raise PaymentCodeError(CodeDecline.MALFORMED, str(exc)) from exc
    return PaymentCode(
        token=token,
        token_expiry=rest[:4],
        aid=aid,
        atc=int.from_bytes(atc, "big"),
        unpredictable_number=un,
        issued_at=int.from_bytes(iad[2:6], "big"),
        key_version=iad[1],
        cryptogram=mac,
    )


def parse_numeric_code(text: str) -> str:
    """Check the numeric form's shape (19 digits, ``62``, Luhn); return it normalised."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) == NUMERIC_DIGITS):
        raise PaymentCodeError(CodeDecline.MALFORMED, "a payment code is 19 digits")
    if not digits.startswith(NUMERIC_PREFIX):
        raise PaymentCodeError(CodeDecline.FOREIGN, "a flashpay payment code starts with 62")
    if luhn_check_digit(digits[:-1]) != digits[-1]:
        raise PaymentCodeError(CodeDecline.MALFORMED, "the check digit is wrong")
    return digits


def verify_payment_code(
    code: PaymentCode,
    *,
    key: bytes,
    now_s: int,
    used: Container[tuple[str, int]],
) -> CodeDecline | None:
    """``None`` when ``code`` is genuine, within its 60 seconds and not used before; otherwise
    the first reason it fails, checked in ``CodeDecline`` order."""
    if not hmac.compare_digest(cryptogram(key, code), code.cryptogram):
        return CodeDecline.BAD_CRYPTOGRAM
    if code.issued_at > now_s + CLOCK_SKEW_S:
        return CodeDecline.NOT_YET_VALID
    if now_s >= code.expires_at:
        return CodeDecline.EXPIRED
    if (code.token, code.atc) in used:
        return CodeDecline.ALREADY_USED
    return None


def verify_numeric_code(
    numeric: str,
    issued: PaymentCode,
    *,
    key: bytes,
    lookup_key: bytes,
    now_s: int,
    used: Container[tuple[str, int]],
) -> CodeDecline | None:
    """Check a numeric code against the code recorded when it was issued (found by the caller
    from the digits): the digits must re-derive from it, then as ``verify_payment_code``."""
    try:
        digits = parse_numeric_code(numeric)
    except PaymentCodeError as exc:
        return exc.reason
    if not hmac.compare_digest(numeric_code(lookup_key, issued), digits):
        return CodeDecline.BAD_CRYPTOGRAM
    return verify_payment_code(issued, key=key, now_s=now_s, used=used)
