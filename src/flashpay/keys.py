"""The network's secret keys: card-number encryption, look-up fingerprints, CVV, payment codes.

One ``KeyRing`` per deployment. Card numbers are encrypted with AES-256-GCM under the *active*
vault key; every ciphertext records its key id, so keys rotate by adding a key and making it
active (old ciphertexts stay readable while their key is in the ring). The other keys are HMAC
keys: ``fingerprint`` (a keyed SHA-256 of a card number or an ID number, for look-ups without
decrypting), ``cvv`` (the simulated issuers' card verification key: a CVV is *computed*, never
stored), ``payment_codes`` (the master of per-token cryptogram keys) and ``lookup`` (the numeric
payment-code digest).

Where keys come from, first match wins:

- ``$FLASHPAY_VAULT_KEYS`` = ``"1:<64 hex>,2:<64 hex>"`` and ``$FLASHPAY_VAULT_ACTIVE_KEY`` = ``2``
  for the vault keys, ``$FLASHPAY_HMAC_KEY`` = ``<64 hex>`` as the root of the HMAC keys;
- else the file ``keys.json`` in the data directory, created with fresh random keys (mode 0600)
  on first start. Production would hold these in an HSM or a KMS; the interface is the same.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flashpay import config
from flashpay.errors import FlashpayError

KEY_BYTES = 32
NONCE_BYTES = 12
KEYS_FILE_NAME = "keys.json"
VAULT_KEYS_ENV = "FLASHPAY_VAULT_KEYS"
VAULT_ACTIVE_ENV = "FLASHPAY_VAULT_ACTIVE_KEY"
HMAC_KEY_ENV = "FLASHPAY_HMAC_KEY"
SUB_KEYS_CACHED_MAX = 64  # (root, purpose) pairs: a few purposes per key ring in the process


class KeyConfigError(FlashpayError, ValueError):
    """A key configuration that cannot be used (bad hex, unknown active key, …)."""


@functools.lru_cache(maxsize=SUB_KEYS_CACHED_MAX)
def _sub_key(root: bytes, purpose: str) -> bytes:
    """The HMAC key for ``purpose``, derived from the root. Cached: every fingerprint, CVV and
    payment code needs one (tens of thousands when an issuer loads its cards), and the cache
    holds nothing the key ring in memory does not already give."""
    return hmac.new(root, b"flashpay key|" + purpose.encode(), sha256).digest()


@dataclass(frozen=True, slots=True)
class KeyRing:
    vault_keys: dict[int, bytes] = field(repr=False)
    active_key_id: int
    hmac_root: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if self.active_key_id not in self.vault_keys:
            raise KeyConfigError(f"the active vault key {self.active_key_id} is not in the ring")
        for key_id, key in self.vault_keys.items():
            if len(key) != KEY_BYTES or not 1 <= key_id <= 255:
                raise KeyConfigError(f"vault key {key_id} must be 32 bytes with an id 1–255")
        if len(self.hmac_root) != KEY_BYTES:
            raise KeyConfigError("the HMAC root key must be 32 bytes")

    @classmethod
    def generate(cls) -> KeyRing:
        return cls({1: secrets.token_bytes(KEY_BYTES)}, 1, secrets.token_bytes(KEY_BYTES))

    # -- the vault ------------------------------------------------------------------------------
    def encrypt(self, plaintext: bytes, *, context: bytes) -> tuple[int, bytes]:
        """(key id, nonce ‖ ciphertext ‖ tag) under the active key; ``context`` is bound as
        associated data, so a ciphertext moved to another row does not decrypt."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.vault_keys[self.active_key_id]).encrypt(nonce, plaintext, context)
        return self.active_key_id, nonce + sealed

    def decrypt(self, key_id: int, blob: bytes, *, context: bytes) -> bytes:
        key = self.vault_keys.get(key_id)
        if key is None:
            raise KeyConfigError(f"vault key {key_id} is not in the ring (retired too early?)")
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context)

    # -- keyed digests --------------------------------------------------------------------------
    def fingerprint(self, kind: str, value: str) -> bytes:
        """A keyed SHA-256 of ``value`` (a card number, an ID number) for equality look-ups."""
        key = _sub_key(self.hmac_root, "fingerprint")
        return hmac.new(key, kind.encode() + b"|" + value.encode(), sha256).digest()

    @property
    def cvv_key(self) -> bytes:
        return _sub_key(self.hmac_root, "cvv")

    @property
    def payment_code_master(self) -> bytes:
        return _sub_key(self.hmac_root, "payment-codes")

    @property
    def payment_code_lookup(self) -> bytes:
        return _sub_key(self.hmac_root, "payment-code-lookup")

    @property
    def session_key(self) -> bytes:
        return _sub_key(self.hmac_root, "sessions")

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, data_directory: Path | None = None) -> KeyRing:
        """Keys from the environment, else from (or into) the data directory's ``keys.json``."""
        if os.environ.get(VAULT_KEYS_ENV):
            return cls._from_environment()
        path = config.data_dir(data_directory) / KEYS_FILE_NAME
        if not path.exists():
            cls._create_file(path)
        try:
            data = json.loads(path.read_text())
            return cls(
                {int(k): bytes.fromhex(v) for k, v in data["vault_keys"].items()},
                int(data["active_key_id"]),
                bytes.fromhex(data["hmac_root"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyConfigError(f"{path} is not a flashpay key file: {exc}") from exc

    @classmethod
    def _create_file(cls, path: Path) -> None:
        """Write fresh keys to ``path`` atomically: a complete file appears or none does (a
        hard link fails if another process won the race, and then its file is used)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = cls.generate()
        text = json.dumps(
            {
                "vault_keys": {str(k): v.hex() for k, v in fresh.vault_keys.items()},
                "active_key_id": fresh.active_key_id,
                "hmac_root": fresh.hmac_root.hex(),
            }
        )
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    @classmethod
    def _from_environment(cls) -> KeyRing:
        try:
            keys = {}
            for item in os.environ[VAULT_KEYS_ENV].split(","):
                key_id, _, hex_key = item.strip().partition(":")
                keys[int(key_id)] = bytes.fromhex(hex_key)
            active = int(os.environ.get(VAULT_ACTIVE_ENV, str(max(keys))))
            root = bytes.fromhex(os.environ[HMAC_KEY_ENV])
        except (ValueError, KeyError) as exc:
            raise KeyConfigError(
                f"set {VAULT_KEYS_ENV}=id:hex,…, {VAULT_ACTIVE_ENV}=id and {HMAC_KEY_ENV}=hex"
            ) from exc
        return cls(keys, active, root)
