"""C2SP ``tlog-checkpoint`` bodies: origin line, tree size, base64 root hash (and extensions).

The body is the text a log signs (``flashpay.chain.note``) and witnesses cosign::

    flashpay.example/audit-log
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

flashpay writes no extension lines; parsing keeps any it finds (they are signed, but no witness
makes a statement about them).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from flashpay.chain.merkle import HASH_BYTES
from flashpay.errors import FlashpayError

TREE_SIZE_MAX = 2**63 - 1


class CheckpointError(FlashpayError, ValueError):
    """Text that is not a well-formed checkpoint body."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


def parse(text: str) -> Checkpoint:
    """Parse a checkpoint body (the note text, without signatures)."""
    if not text.endswith("\n"):
        raise CheckpointError("a checkpoint ends in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointError("a checkpoint has at least three non-empty lines")
    origin, size_text, root_text = lines[:3]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"tree size {size_text!r} is not a decimal without leading zeros")
    size = int(size_text)
    if size > TREE_SIZE_MAX:
        raise CheckpointError("tree size out of range")
    try:
        root = base64.b64decode(root_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CheckpointError("root hash is not base64") from exc
    if len(root) != HASH_BYTES:
        raise CheckpointError(f"root hash is {len(root)} bytes")
    return Checkpoint(origin=origin, size=size, root_hash=root, extensions=tuple(lines[3:]))
