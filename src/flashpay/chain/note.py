"""C2SP signed notes with Ed25519, byte-compatible with Go's ``golang.org/x/mod/sumdb/note``.

A signed note (c2sp.org/signed-note) is a UTF-8 text ending in a newline, a blank line, and one or
more signature lines ``— <key name> base64(key ID || signature)``. The key ID is the first four
bytes (big-endian uint32) of ``SHA-256(name || "\\n" || type || public key)``. Keys are strings::

    verifier key  <name>+<key ID as 8 hex digits>+base64(type || 32-byte Ed25519 public key)
    signer key    PRIVATE+KEY+<name>+<key ID>+base64(type || 32-byte Ed25519 seed)

Two signature types are supported:

* ``0x01`` (``ED25519``): Ed25519 over the note text — the log's checkpoint signature, exactly as
  Go's ``note.Sign``/``note.Open`` (Go's test vector reproduces, see tests/chain/test_note.py);
* ``0x04`` (``COSIGNATURE_V1``): the timestamped Ed25519 witness cosignature of
  c2sp.org/tlog-cosignature. The signature is ``u64 timestamp (big-endian) || Ed25519 signature``
  over ``"cosignature/v1\\ntime <timestamp>\\n" || note text``. Go's package knows only type 0x01;
  a signer key string of type 0x04 is this module's convention (same layout, type byte 0x04).

``verify`` follows Go's ``Open``: unknown keys are ignored (kept in ``unverified_sigs``), a known
key whose signature fails rejects the whole note, and a note with no verified signature is
rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from flashpay.errors import FlashpayError

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
KEY_TYPES = (ED25519, COSIGNATURE_V1)
SIGNATURES_MAX = 100  # as Go's Open; the spec asks verifiers to accept at least 16
NOTE_BYTES_MAX = 1 << 20
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_SIG_PREFIX = "— "
_COSIGNATURE_HEADER = "cosignature/v1\n"
_TIMESTAMP_MAX = 2**63 - 1


class NoteError(FlashpayError, ValueError):
    """A malformed note or key string, or a signature that does not verify."""


class UnverifiedNoteError(NoteError):
    """The note is well formed but no signature by a known key verifies."""


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: the key's name, its key ID and the base64 text."""

    name: str
    key_hash: int
    base64: str

    def line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {self.base64}\n"

    @property
    def timestamp(self) -> int | None:
        """A cosignature's POSIX timestamp (``None`` unless this is a type-0x04 signature);
        meaningful only for a signature that verified as a cosignature."""
        raw = base64.b64decode(self.base64)
        if len(raw) != 4 + 8 + 64:
            return None
        return int(struct.unpack(">Q", raw[4:12])[0])


@dataclass(frozen=True, slots=True)
class Note:
    """A note after ``verify``: its text, the verified and the unverified signatures."""

    text: str
    sigs: tuple[Signature, ...]
    unverified_sigs: tuple[Signature, ...] = ()


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    key_hash: int
    key_type: int
    public_key: bytes

    def key_string(self) -> str:
        raw = bytes([self.key_type]) + self.public_key
        return f"{self.name}+{self.key_hash:08x}+{base64.b64encode(raw).decode()}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """``signature`` is the part after the 4-byte key ID."""
        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        if self.key_type == COSIGNATURE_V1:
            if len(signature) != 8 + 64:
                return False
            (timestamp,) = struct.unpack(">Q", signature[:8])
            if timestamp > _TIMESTAMP_MAX:
                return False
            message = _cosigned_message(text, timestamp)
            signature = signature[8:]
        else:
            message = text
        if len(signature) != 64:
            return False
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Signer:
    name: str
    key_hash: int
    key_type: int
    private_key: Ed25519PrivateKey

    def verifier(self) -> Verifier:
        public = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, self.key_hash, self.key_type, public)

    def sign(self, text: bytes, *, timestamp: int | None = None) -> bytes:
        """The signature bytes (without the key ID). ``timestamp``: POSIX seconds, required for
        a cosignature."""
        if self.key_type == COSIGNATURE_V1:
            if timestamp is None or not 0 <= timestamp <= _TIMESTAMP_MAX:
                raise NoteError("a cosignature needs a timestamp between 0 and 2**63 - 1")
            stamp = struct.pack(">Q", timestamp)
            return stamp + self.private_key.sign(_cosigned_message(text, timestamp))
        return self.private_key.sign(text)


def _cosigned_message(text: bytes, timestamp: int) -> bytes:
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n".encode() + text


def key_hash(name: str, key: bytes) -> int:
    """The key ID: SHA-256(name || "\\n" || type || public key)[:4] as a big-endian uint32."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + key).digest()[:4], "big")


def is_valid_name(name: str) -> bool:
    """Non-empty, no Unicode space, no ``+`` (Go's ``isValidName``)."""
    return bool(name) and not any(c.isspace() for c in name) and "+" not in name


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError("malformed base64") from exc


def _parse_hash(text: str) -> int:
    if len(text) != 8 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise NoteError("malformed key hash")
    return int(text, 16)


def generate_key(name: str, key_type: int = ED25519) -> tuple[str, str]:
    """A new key pair: ``(signer key string, verifier key string)``."""
    if not is_valid_name(name):
        raise NoteError(f"invalid key name {name!r}")
    if key_type not in KEY_TYPES:
        raise NoteError(f"unsupported key type {key_type:#04x}")
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kh = key_hash(name, bytes([key_type]) + public)
    skey = f"{_PRIVATE_PREFIX}{name}+{kh:08x}+{base64.b64encode(bytes([key_type]) + seed).decode()}"
    vkey = f"{name}+{kh:08x}+{base64.b64encode(bytes([key_type]) + public).decode()}"
    return skey, vkey


def parse_signer(skey: str) -> Signer:
    """Parse ``PRIVATE+KEY+name+hash+base64``; the key ID must match the key."""
    parts = skey.split("+", 4)  # base64 may itself contain "+"
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("malformed signer key")
    name, hash_text, key_text = parts[2], parts[3], parts[4]
    if not is_valid_name(name):
        raise NoteError("malformed signer key name")
    kh = _parse_hash(hash_text)
    raw = _b64decode(key_text)
    if len(raw) != 33 or raw[0] not in KEY_TYPES:
        raise NoteError("malformed signer key material")
    private = Ed25519PrivateKey.from_private_bytes(raw[1:])
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if key_hash(name, raw[:1] + public) != kh:
        raise NoteError("signer key hash does not match the key")
    return Signer(name, kh, raw[0], private)


def parse_verifier(vkey: str) -> Verifier:
    """Parse ``name+hash+base64``; the key ID must match the key."""
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError("malformed verifier key")
    name, hash_text, key_text = parts
    if not is_valid_name(name):
        raise NoteError("malformed verifier key name")
    kh = _parse_hash(hash_text)
    raw = _b64decode(key_text)
    if len(raw) != 33 or raw[0] not in KEY_TYPES:
        raise NoteError("malformed verifier key material")
    if key_hash(name, raw) != kh:
        raise NoteError("verifier key hash does not match the key")
    return Verifier(name, kh, raw[0], raw[1:])


def _check_text(text: str) -> None:
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("malformed note: control character")


def signature_line(text: str, signer: Signer | str, *, timestamp: int | None = None) -> str:
    """The signature line ``signer`` makes over note ``text`` (a cosignature needs a
    ``timestamp``)."""
    s = parse_signer(signer) if isinstance(signer, str) else signer
    if not text.endswith("\n"):
        raise NoteError("malformed note: text must end in a newline")
    _check_text(text)
    raw = struct.pack(">I", s.key_hash) + s.sign(text.encode(), timestamp=timestamp)
    return Signature(s.name, s.key_hash, base64.b64encode(raw).decode()).line()


def sign(text: str, signer_key: Signer | str, *, timestamp: int | None = None) -> str:
    """The signed note: ``text``, a blank line and the signature line (Go's ``note.Sign``)."""
    return text + "\n" + signature_line(text, signer_key, timestamp=timestamp)


def split(note_text: str) -> tuple[str, list[Signature]]:
    """The text and the signature lines of a note, checked for form only (Go's rules)."""
    if len(note_text) > NOTE_BYTES_MAX:
        raise NoteError("malformed note: too long")
    _check_text(note_text)
    cut = note_text.rfind("\n\n")
    if cut < 0:
        raise NoteError("malformed note: no signatures")
    text, rest = note_text[: cut + 1], note_text[cut + 2 :]
    if not rest.endswith("\n"):
        raise NoteError("malformed note: signatures must end in a newline")
    sigs: list[Signature] = []
    for line in rest[:-1].split("\n"):
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("malformed note: not a signature line")
        name, space, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not space or not is_valid_name(name) or not b64:
            raise NoteError("malformed note: signature line")
        raw = _b64decode(b64)
        if len(raw) < 5:
            raise NoteError("malformed note: signature too short")
        sigs.append(Signature(name, int.from_bytes(raw[:4], "big"), b64))
        if len(sigs) > SIGNATURES_MAX:
            raise NoteError("malformed note: too many signatures")
    return text, sigs


def verify(note_text: str, verifier_keys: Sequence[str | Verifier]) -> Note:
    """Open a signed note: at least one signature by a known key must verify, and none by a
    known key may fail. Raises ``UnverifiedNoteError`` or ``NoteError``."""
    verifiers = [parse_verifier(k) if isinstance(k, str) else k for k in verifier_keys]
    text, sigs = split(note_text)
    body = text.encode()
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen: set[Signature] = set()
    for sig in sigs:
        if sig in seen:
            continue
        seen.add(sig)
        matches = [v for v in verifiers if v.name == sig.name and v.key_hash == sig.key_hash]
        if not matches:
            unverified.append(sig)
            continue
        if len(matches) > 1:  # as Go's VerifierList: a key listed twice is ambiguous
            raise NoteError(f"ambiguous key {sig.name}+{sig.key_hash:08x}")
        if not matches[0].verify(body, base64.b64decode(sig.base64)[4:]):
            raise NoteError(f"invalid signature for key {sig.name}+{sig.key_hash:08x}")
        verified.append(sig)
    if not verified:
        raise UnverifiedNoteError("note has no verifiable signatures")
    return Note(text=text, sigs=tuple(verified), unverified_sigs=tuple(unverified))
