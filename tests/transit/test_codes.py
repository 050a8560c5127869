"""Ride codes: the chain network → device → code verified offline, every refusal by name."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flashpay.keys import KeyRing
from flashpay.transit import codes
from flashpay.transit.codes import (
    Accepted,
    Credential,
    GateTrust,
    Refused,
    RideRefusal,
    make_code,
    sign_credential,
    verify_code,
)
from flashpay.transit.signing import public_keys, signing_key

NOW = 1_795_000_000
TOKEN = "6231230000000000042"


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.generate()


def credential(ring: KeyRing, device: Ed25519PrivateKey, **changes: object) -> bytes:
    fields = Credential(
        network_id=codes.network_id("CUP"),
        key_id=1,
        serial=77,
        token=TOKEN,
        device_public_key=codes.public_bytes(device.public_key()),
        ride_credit_limit_minor=5000,
        issued_at_s=NOW - 3600,
        expires_at_s=NOW + 86400,
    )
    return sign_credential(dataclasses.replace(fields, **changes), signing_key(ring))  # type: ignore[arg-type]


def trust(ring: KeyRing, **changes: object) -> GateTrust:
    return dataclasses.replace(GateTrust(codes.network_id("CUP"), public_keys(ring)), **changes)  # type: ignore[arg-type]


def test_a_good_code_is_accepted_with_public_keys_only(ring: KeyRing) -> None:
    device = Ed25519PrivateKey.generate()
    code = make_code(credential(ring, device), device, at_s=NOW - 5, counter=1)
    assert len(code) == codes.CODE_BYTES <= 512
    assert codes.from_qr_text(codes.to_qr_text(code)) == code
    verdict = verify_code(trust(ring), code, now_s=NOW)
    assert isinstance(verdict, Accepted)
    assert (verdict.token, verdict.serial, verdict.ride_credit_limit_minor) == (TOKEN, 77, 5000)
    assert codes.parse_credential(code[1:133]).token == TOKEN


def _resign_crc(code: bytes) -> bytes:
    import struct
    import zlib

    return code[:-4] + struct.pack(">I", zlib.crc32(code[:-4]))


def test_every_refusal(ring: KeyRing) -> None:
    device = Ed25519PrivateKey.generate()
    good = credential(ring, device)
    gate = trust(ring)

    def verdict(
        code: bytes, *, gate: GateTrust = gate, now: int = NOW, seen: set[bytes] | None = None
    ) -> RideRefusal | None:
        got = verify_code(gate, code, now_s=now, seen=seen)
        return got.reason if isinstance(got, Refused) else None

    code = make_code(good, device, at_s=NOW, counter=1)
    assert verdict(code[:-1]) is RideRefusal.MALFORMED
    assert verdict(b"\x02" + code[1:]) is RideRefusal.MALFORMED
    foreign = dataclasses.replace(gate, network_id=codes.network_id("OTHER"))
    assert verdict(code, gate=foreign) is RideRefusal.FOREIGN
    assert (
        verdict(make_code(credential(ring, device, key_id=9), device, at_s=NOW, counter=1))
        is RideRefusal.UNKNOWN_NETWORK_KEY
    )
    # a credential signed by someone else's key
    forged = credential(KeyRing.generate(), device)
    assert verdict(make_code(forged, device, at_s=NOW, counter=1)) is RideRefusal.FORGED
    # a code signed by a device key the credential does not certify
    stranger = Ed25519PrivateKey.generate()
    assert verdict(make_code(good, stranger, at_s=NOW, counter=1)) is RideRefusal.UNKNOWN_DEVICE_KEY
    assert (
        verdict(
            make_code(credential(ring, device, expires_at_s=NOW - 400), device, at_s=NOW, counter=1)
        )
        is RideRefusal.CREDENTIAL_EXPIRED
    )
    assert (
        verdict(code, gate=dataclasses.replace(gate, revoked_serials=frozenset({77})))
        is RideRefusal.REVOKED
    )
    assert (
        verdict(code, gate=dataclasses.replace(gate, denied_tokens=frozenset({TOKEN})))
        is RideRefusal.DENY_LISTED
    )
    assert verdict(make_code(good, device, at_s=NOW - 361, counter=1)) is RideRefusal.CODE_EXPIRED
    assert verdict(make_code(good, device, at_s=NOW + 301, counter=1)) is RideRefusal.CODE_EXPIRED
    # clock skew of ±5 minutes between phone and gate is accepted
    assert verdict(make_code(good, device, at_s=NOW - 300, counter=1)) is None
    assert verdict(make_code(good, device, at_s=NOW + 300, counter=1)) is None
    seen = {codes.code_digest(code)}
    assert verdict(code, seen=seen) is RideRefusal.REPLAYED


@pytest.mark.parametrize("position", range(codes.CODE_BYTES))
def test_any_altered_byte_is_refused(ring: KeyRing, position: int) -> None:
    device = Ed25519PrivateKey.generate()
    code = bytearray(make_code(credential(ring, device), device, at_s=NOW, counter=3))
    code[position] ^= 0x01
    got = verify_code(trust(ring), bytes(code), now_s=NOW)
    assert isinstance(got, Refused)
    assert got.reason in (RideRefusal.ALTERED, RideRefusal.MALFORMED)
    # and with the CRC recomputed (a deliberate edit), a signature catches it
    if position < codes.CODE_BYTES - 4:
        fixed = _resign_crc(bytes(code))
        again = verify_code(trust(ring), fixed, now_s=NOW)
        assert isinstance(again, Refused), position


def test_a_ride_code_reads_back_from_its_qr_image(ring: KeyRing) -> None:
    from flashpay.qr.images import read_code, render_qr

    device = Ed25519PrivateKey.generate()
    code = make_code(credential(ring, device), device, at_s=NOW, counter=9)
    image = render_qr(codes.to_qr_text(code), "png", scale=4)
    assert codes.from_qr_text(read_code(image)) == code
    assert isinstance(verify_code(trust(ring), code, now_s=NOW), Accepted)
