"""The network's transit signing keys, derived from the deployment's key ring.

A credential names its key by a one-byte id, so the network rotates by adding key ``n + 1``,
signing new credentials with it and handing gates both public keys until the old credentials
expire (a day). The private key is an HMAC of the ring's root (the same root as the other keyed
digests of ``flashpay.keys``): nothing new to store, and an HSM would hold it the same way.
"""

from __future__ import annotations

import hmac
from hashlib import sha256

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from flashpay.keys import KeyRing

ACTIVE_KEY_ID = 1


def signing_key(keys: KeyRing, key_id: int = ACTIVE_KEY_ID) -> Ed25519PrivateKey:
    seed = hmac.new(keys.hmac_root, b"flashpay transit credential key|%d" % key_id, sha256)
    return Ed25519PrivateKey.from_private_bytes(seed.digest())


def public_keys(keys: KeyRing) -> dict[int, Ed25519PublicKey]:
    """The public keys a gate needs (every id a live credential may name)."""
    return {ACTIVE_KEY_ID: signing_key(keys, ACTIVE_KEY_ID).public_key()}
