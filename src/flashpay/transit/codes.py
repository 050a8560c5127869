"""Rider credentials and ride codes: the byte layout, signing, and the offline verifier.

The chain a gate checks is network → device → code, with public keys only:

1. the network signs a **rider credential** (132 bytes) over the rider's network token, the
   wallet's device public key, a ride-credit limit and a validity period;
2. the wallet signs each **ride code** (209 bytes) with its device key over the credential, the
   device's clock and a counter, so it can make codes while offline;
3. the gate verifies both signatures (Ed25519, RFC 8032, through ``cryptography``), the time
   window, the revocation and deny lists and its own replay memory.

Layout, all integers unsigned big-endian (docs/reference/transit.md has the table)::

    credential (132)                         ride code (209)
    0   1  version = 0x01                    0    1   version = 0x01
    1   4  network id                        1    132 credential
    5   1  network key id                    133  4   code time (device clock, Unix s)
    6   8  serial                            137  4   counter
    14  1  token digits                      141  64  device signature over bytes 0–140
    15  8  token (as an integer)             205  4   CRC-32 over bytes 0–204
    23  32 device public key (Ed25519)
    55  4  ride-credit limit (fen)
    59  4  issued at (Unix s)
    63  4  expires at (Unix s)
    67  1  concession (0 none, n: the definition's n-th)
    68  64 network signature over bytes 0–67

209 bytes fit the 512 the QCAT transit-QR standard allows, in a version-10 QR code at level M as
base64 (280 characters). The CRC tells a damaged read (``ALTERED``) from a forgery: a forger can
fix the CRC but not the signatures.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION = 1
_CREDENTIAL_BODY = struct.Struct(">B4sBQBQ32sIIIB")
CREDENTIAL_BODY_BYTES = _CREDENTIAL_BODY.size  # 68
SIGNATURE_BYTES = 64
CREDENTIAL_BYTES = CREDENTIAL_BODY_BYTES + SIGNATURE_BYTES  # 132
_CODE_TAIL = struct.Struct(">II")
CODE_SIGNED_BYTES = 1 + CREDENTIAL_BYTES + _CODE_TAIL.size  # 141
CODE_BYTES = CODE_SIGNED_BYTES + SIGNATURE_BYTES + 4  # 209
CODE_BYTES_MAX = 512  # QCAT's bound; ours is fixed at CODE_BYTES
CODE_VALIDITY_SECONDS = 60  # a code is shown for a minute
CLOCK_SKEW_SECONDS = 300  # gate and phone clocks may each drift by minutes
QR_PREFIX = "FPT1:"
assert CODE_BYTES <= CODE_BYTES_MAX


class RideRefusal(StrEnum):
    """Why a gate refuses a ride code, in the order it checks."""

    MALFORMED = "ride_code_malformed"  # wrong length or version
    ALTERED = "ride_code_altered"  # the CRC does not match: a damaged or edited code
    FOREIGN = "ride_code_foreign"  # another network's credential
    UNKNOWN_NETWORK_KEY = "ride_code_unknown_network_key"
    FORGED = "ride_code_forged"  # the network's signature does not verify
    UNKNOWN_DEVICE_KEY = "ride_code_unknown_device_key"  # not signed by the certified device
    CREDENTIAL_EXPIRED = "ride_credential_expired"
    REVOKED = "ride_credential_revoked"
    DENY_LISTED = "ride_token_deny_listed"  # an unpaid debit: refused until paid
    CODE_EXPIRED = "ride_code_expired"  # code time outside the window (with the skew allowed)
    REPLAYED = "ride_code_replayed"  # this code already passed this gate


def network_id(network_code: str) -> bytes:
    """The 4-byte id of a network in its credentials: the first bytes of SHA-256 of its code."""
    return hashlib.sha256(b"flashpay transit network|" + network_code.encode()).digest()[:4]


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Credential:
    network_id: bytes
    key_id: int
    serial: int
    token: str
    device_public_key: bytes
    ride_credit_limit_minor: int
    issued_at_s: int
    expires_at_s: int
    concession: int = 0

    def body(self) -> bytes:
        return _CREDENTIAL_BODY.pack(
            VERSION,
            self.network_id,
            self.key_id,
            self.serial,
            len(self.token),
            int(self.token),
            self.device_public_key,
            self.ride_credit_limit_minor,
            self.issued_at_s,
            self.expires_at_s,
            self.concession,
        )


def sign_credential(credential: Credential, network_key: Ed25519PrivateKey) -> bytes:
    """The 132 bytes of a credential signed by the network."""
    body = credential.body()
    return body + network_key.sign(body)


def parse_credential(blob: bytes) -> Credential:
    """The fields of a credential (no signature checked): for the network's own records."""
    (_v, net, key_id, serial, digits, token, device, limit, issued, expires, concession) = (
        _CREDENTIAL_BODY.unpack(blob[:CREDENTIAL_BODY_BYTES])
    )
    return Credential(
        net, key_id, serial, str(token).zfill(digits), device, limit, issued, expires, concession
    )


def make_code(
    credential: bytes, device_key: Ed25519PrivateKey, *, at_s: int, counter: int
) -> bytes:
    """A ride code: what the wallet signs, offline, each time it shows one."""
    signed = bytes([VERSION]) + credential + _CODE_TAIL.pack(at_s, counter)
    signature = device_key.sign(signed)
    body = signed + signature
    return body + struct.pack(">I", zlib.crc32(body))


def to_qr_text(code: bytes) -> str:
    return QR_PREFIX + base64.b64encode(code).decode()


def from_qr_text(text: str) -> bytes:
    """The code's bytes (``b""`` for text that is not a ride code: refused as malformed)."""
    if not text.startswith(QR_PREFIX):
        return b""
    try:
        return base64.b64decode(text[len(QR_PREFIX) :], validate=True)
    except ValueError:
        return b""


def code_digest(code: bytes) -> bytes:
    """What identifies a code for replay checks: SHA-256 of its signed part (16 bytes)."""
    return hashlib.sha256(code[:CODE_SIGNED_BYTES]).digest()[:16]


@dataclass(frozen=True, slots=True)
class Accepted:
    token: str
    serial: int
    code_time_s: int
    counter: int
    ride_credit_limit_minor: int
    concession: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    reason: RideRefusal


@dataclass
class GateTrust:
    """What a gate holds to verify codes offline: the network's id and public keys, the
    revoked credential serials and the deny-listed tokens (at ``deny_version``)."""

    network_id: bytes
    network_keys: Mapping[int, Ed25519PublicKey]
    revoked_serials: frozenset[int] = frozenset()
    denied_tokens: frozenset[str] = frozenset()
    deny_version: int = 0
    # credentials whose network signature already verified (a rider's credential serves a day
    # of codes): body → the device key, bounded by CREDENTIALS_CACHED_MAX
    _verified: dict[bytes, Ed25519PublicKey] = field(default_factory=dict, repr=False)


CREDENTIALS_CACHED_MAX = 100_000


def verify_code(
    trust: GateTrust, code: bytes, *, now_s: int, seen: set[bytes] | None = None
) -> Accepted | Refused:
    """Check a ride code as a gate does, offline; ``seen`` is the gate's replay memory of code
    digests (the caller adds the digest once it opens the gate)."""
    if len(code) != CODE_BYTES or code[0] != VERSION or code[1] != VERSION:
        return Refused(RideRefusal.MALFORMED)
    if zlib.crc32(code[:-4]) != int.from_bytes(code[-4:], "big"):
        return Refused(RideRefusal.ALTERED)
    credential = code[1 : 1 + CREDENTIAL_BYTES]
    body = credential[:CREDENTIAL_BODY_BYTES]
    (_v, net, key_id, serial, digits, token, device, limit, _issued, expires, concession) = (
        _CREDENTIAL_BODY.unpack(body)
    )
    if net != trust.network_id:
        return Refused(RideRefusal.FOREIGN)
    device_key = trust._verified.get(credential)
    if device_key is None:
        network_key = trust.network_keys.get(key_id)
        if network_key is None:
            return Refused(RideRefusal.UNKNOWN_NETWORK_KEY)
        try:
            network_key.verify(credential[CREDENTIAL_BODY_BYTES:], body)
        except InvalidSignature:
            return Refused(RideRefusal.FORGED)
        device_key = Ed25519PublicKey.from_public_bytes(device)
        if len(trust._verified) >= CREDENTIALS_CACHED_MAX:
            trust._verified.clear()
        trust._verified[credential] = device_key
    signed = code[:CODE_SIGNED_BYTES]
    try:
        device_key.verify(code[CODE_SIGNED_BYTES : CODE_SIGNED_BYTES + SIGNATURE_BYTES], signed)
    except InvalidSignature:
        return Refused(RideRefusal.UNKNOWN_DEVICE_KEY)
    if now_s > expires + CLOCK_SKEW_SECONDS:
        return Refused(RideRefusal.CREDENTIAL_EXPIRED)
    if serial in trust.revoked_serials:
        return Refused(RideRefusal.REVOKED)
    token_text = str(token).zfill(digits)
    if token_text in trust.denied_tokens:
        return Refused(RideRefusal.DENY_LISTED)
    at_s, counter = _CODE_TAIL.unpack(code[1 + CREDENTIAL_BYTES : CODE_SIGNED_BYTES])
    window = CODE_VALIDITY_SECONDS + CLOCK_SKEW_SECONDS
    if not now_s - window <= at_s <= now_s + CLOCK_SKEW_SECONDS:
        return Refused(RideRefusal.CODE_EXPIRED)
    digest = code_digest(code)
    if seen is not None and digest in seen:
        return Refused(RideRefusal.REPLAYED)
    return Accepted(token_text, serial, at_s, counter, limit, concession, digest)
