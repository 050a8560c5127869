"""The vault's recipes: the keyed fingerprints a card number and a national ID number are found
by, the computed CVV (an HMAC under the issuer's card verification key, never stored), and the
one decryption of a stored number.

Only these functions see a whole card number; everything else holds a ``Card`` (first six and
last four digits) or a ``CardNumber`` (which masks itself when printed).
"""

from __future__ import annotations

import hmac
from hashlib import sha256

import sqlalchemy as sa

from flashpay.cards.models import cards
from flashpay.cards.numbers import CardNumber
from flashpay.platform import Platform

SERVICE_CODE = "201"


def compute_cvv(platform: Platform, card: CardNumber, expiry: str) -> str:
    message = f"{card.reveal()}|{expiry}|{SERVICE_CODE}".encode()
    digest = hmac.new(platform.keys.cvv_key, message, sha256).digest()
    return f"{int.from_bytes(digest[:4], 'big') % 1000:03d}"


def cvv_matches(platform: Platform, card: CardNumber, expiry: str, cvv: str) -> bool:
    return hmac.compare_digest(compute_cvv(platform, card, expiry), cvv)


def pan_fingerprint(platform: Platform, card: CardNumber) -> bytes:
    """The keyed hash a card is found by: the vault's one recipe (nothing is decrypted)."""
    return platform.keys.fingerprint("pan", card.reveal())


def id_fingerprint(platform: Platform, id_number: str) -> bytes:
    """The keyed hash of a national ID number (stored instead of the number)."""
    return platform.keys.fingerprint("id-number", id_number.strip().upper())


def reveal_card_number(*, platform: Platform, card_id: int) -> CardNumber:
    """Decrypt a card's number (issuer operations only; never returned by the API)."""
    with platform.engine.connect() as connection:
        row = connection.execute(
            sa.select(cards.c.pan_key_id, cards.c.pan_ciphertext, cards.c.pan_fingerprint).where(
                cards.c.id == card_id
            )
        ).one()
    plain = platform.keys.decrypt(
        int(row.pan_key_id), bytes(row.pan_ciphertext), context=bytes(row.pan_fingerprint)
    )
    return CardNumber(plain.decode())
