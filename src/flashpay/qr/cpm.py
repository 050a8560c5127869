"""EMVCo consumer-presented mode (CPM v1.1): BER-TLV in Base64 — decode, validate, encode.

The code a wallet shows is the Base64 text of BER-TLV bytes (ISO/IEC 8825-1 as EMV Book 3
Annex B profiles it): a tag of one to three bytes (a first byte whose low five bits are all set
announces more; each further byte with its top bit set announces another), bit 6 of the first
byte marking a constructed (template) tag, then a length — one byte below 0x80, or 0x81/0x82
followed by one or two bytes — then the value. The payload starts with ``85`` "CPV01", then one
or more application templates ``61`` and at most one common data template ``62``; ``63``/``64``
hold the transparent data (cryptogram, counter, …).

As for MPM, two levels: ``decode_cpm`` checks structure (Base64, tags, lengths, nesting, no
duplicate tag at one level except repeated ``61``, ``85`` first) and raises ``CpmDecodeError``
naming the tag path and byte offset; ``validate_cpm`` checks the specification's rules and
returns every ``Violation``. Lengths must be minimal (no ``81 05``) and indefinite lengths are
refused, so every accepted payload re-encodes byte for byte: ``encode_cpm(decode_cpm(p)) == p``.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from flashpay.qr.cpm_tags import (
    APPLICATION_TEMPLATE,
    COMMON_DATA_TEMPLATE,
    CPM_TAGS,
    CPM_VERSION_01,
    PAYLOAD_FORMAT_INDICATOR,
    tag_name,
)
from flashpay.qr.mpm import QrError, Violation, ViolationCode

PAYLOAD_BYTES_MAX = 1024
TAG_BYTES_MAX = 3


class CpmDecodeError(QrError):
    """A structural error: ``tag`` is the tag path (e.g. ``"61.63.9F26"``, empty when the tag
    itself cannot be read), ``offset`` the byte offset in the decoded TLV where it starts."""

    def __init__(self, tag: str, offset: int, reason: str) -> None:
        super().__init__(f"tag {tag or '-'} at byte {offset}: {reason}")
        self.tag = tag
        self.offset = offset
        self.reason = reason


class TlvNode(NamedTuple):
    """One BER-TLV data object: ``tag`` in uppercase hex, ``value`` the raw bytes (for a
    template, its encoded content), ``children`` the decoded content of a template."""

    tag: str
    name: str
    value: bytes
    offset: int
    children: tuple[TlvNode, ...] | None = None

    def child(self, tag: str) -> TlvNode | None:
        for c in self.children or ():
            if c.tag == tag:
                return c
        return None

    def display(self) -> str:
        """The value as a person reads it, by the tag's format: text for ``an``/``ans``, digits
        for ``n``/``cn`` (``cn`` without its ``F`` padding), hex otherwise; Track 2 with its
        ``D`` separator and without padding."""
        spec = CPM_TAGS.get(self.tag)
        fmt = spec.fmt if spec is not None else "b"
        if fmt in ("an", "ans"):
            return self.value.decode("ascii", "backslashreplace")
        text = self.value.hex().upper()
        if fmt == "cn" or self.tag == "57":
            return text.rstrip("F")
        return text

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"tag": self.tag, "name": self.name}
        if self.children is not None:
            out["template"] = [c.as_json() for c in self.children]
        else:
            out["value"] = self.display()
            out["hex"] = self.value.hex().upper()
        return out


@dataclass(frozen=True, slots=True)
class CpmPayload:
    """A decoded payload: the top-level data objects in order (``85`` first)."""

    nodes: tuple[TlvNode, ...]

    def walk(self) -> Iterator[tuple[str, TlvNode]]:
        """Every node depth-first with its tag path."""

        def visit(nodes: Iterable[TlvNode], path: str) -> Iterator[tuple[str, TlvNode]]:
            for node in nodes:
                full = f"{path}.{node.tag}" if path else node.tag
                yield full, node
                if node.children is not None:
                    yield from visit(node.children, full)

        return visit(self.nodes, "")

    def find(self, tag: str) -> TlvNode | None:
        """The first node with ``tag`` anywhere in the tree (depth-first)."""
        return next((node for _, node in self.walk() if node.tag == tag), None)

    def applications(self) -> list[TlvNode]:
        return [n for n in self.nodes if n.tag == APPLICATION_TEMPLATE]

    def as_json(self) -> list[dict[str, object]]:
        return [n.as_json() for n in self.nodes]


_HEX = [f"{b:02X}" for b in range(256)]
_new_node = tuple.__new__


def _parse(data: bytes, pos: int, end: int, path: str) -> list[TlvNode]:
    nodes: list[TlvNode] = []
    seen: set[str] = set()
    while pos < end:
        start = pos
        first = data[pos]
        pos += 1
        if first == 0x00 or first == 0xFF:
            raise CpmDecodeError(path, start, f"byte {first:02X} is padding, not a tag")
        if first & 0x1F == 0x1F:
            if pos < end and data[pos] == 0x80:
                raise CpmDecodeError(path, start, "tag has a non-minimal subsequent byte")
            while True:
                if pos >= end:
                    raise CpmDecodeError(path, start, "truncated tag")
                more = data[pos] & 0x80
                pos += 1
                if pos - start > TAG_BYTES_MAX:
                    raise CpmDecodeError(path, start, f"tag longer than {TAG_BYTES_MAX} bytes")
                if not more:
                    break
            tag = data[start:pos].hex().upper()
        else:
            tag = _HEX[first]
        full = f"{path}.{tag}" if path else tag
        if pos >= end:
            raise CpmDecodeError(full, start, "truncated: no length")
        length = data[pos]
        pos += 1
        if length == 0x80:
            raise CpmDecodeError(full, start, "indefinite length is not allowed")
        if length > 0x80:
            size = length & 0x7F
            if size > 2:
                raise CpmDecodeError(full, start, f"length of {size} bytes is too long")
            if pos + size > end:
                raise CpmDecodeError(full, start, "truncated length")
            length = int.from_bytes(data[pos : pos + size], "big")
            pos += size
            if length < (0x80 if size == 1 else 0x100):
                raise CpmDecodeError(full, start, "length is not in its shortest form")
        value_end = pos + length
        if value_end > end:
            raise CpmDecodeError(full, start, f"length {length} overruns the enclosing data")
        if tag in seen and tag != APPLICATION_TEMPLATE:
            raise CpmDecodeError(full, start, "duplicate tag")
        seen.add(tag)
        children = tuple(_parse(data, pos, value_end, full)) if first & 0x20 else None
        nodes.append(_new_node(TlvNode, (tag, tag_name(tag), data[pos:value_end], start, children)))
        pos = value_end
    return nodes


def decode_tlv(data: bytes) -> CpmPayload:
    """Decode the structure of CPM BER-TLV bytes; raise ``CpmDecodeError`` on any error."""
    if len(data) > PAYLOAD_BYTES_MAX:
        raise CpmDecodeError("", PAYLOAD_BYTES_MAX, f"longer than {PAYLOAD_BYTES_MAX} bytes")
    if not data:
        raise CpmDecodeError("", 0, "empty payload")
    nodes = _parse(data, 0, len(data), "")
    if nodes[0].tag != PAYLOAD_FORMAT_INDICATOR:
        raise CpmDecodeError(nodes[0].tag, 0, "the payload must start with tag 85")
    return CpmPayload(tuple(nodes))


def decode_cpm(payload: str) -> CpmPayload:
    """Decode a CPM payload as shown in the QR code (Base64 text)."""
    if not isinstance(payload, str):
        raise CpmDecodeError("", 0, "payload must be text")
    try:
        text = payload.encode("ascii")
        data = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CpmDecodeError("", 0, f"not Base64: {exc}") from exc
    if binascii.b2a_base64(data, newline=False) != text:
        # Unused bits after the last byte set: another text for the same bytes.
        raise CpmDecodeError("", len(data), "not canonical Base64 (padding bits are set)")
    return decode_tlv(data)


def _encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    if n <= 0xFFFF:
        return bytes((0x82, n >> 8, n & 0xFF))
    raise QrError(f"value of {n} bytes is too long for a QR code")


def _tag_bytes(tag: str) -> bytes:
    try:
        raw = bytes.fromhex(tag)
    except ValueError as exc:
        raise QrError(f"tag {tag!r} is not hex") from exc
    if not 1 <= len(raw) <= TAG_BYTES_MAX:
        raise QrError(f"tag {tag!r} must be 1–{TAG_BYTES_MAX} bytes")
    return raw


TlvItem = TlvNode | tuple[str, "bytes | str | Sequence[TlvItem]"]


def encode_tlv(items: Iterable[TlvItem]) -> bytes:
    """BER-TLV bytes of ``items``: decoded nodes, or ``(tag_hex, value)`` pairs where a value is
    bytes, ASCII text, or a sequence of items (a template)."""
    out = bytearray()
    for item in items:
        if isinstance(item, TlvNode):
            tag = item.tag
            value = encode_tlv(item.children) if item.children is not None else item.value
        else:
            tag, raw = item
            if isinstance(raw, bytes):
                value = raw
            elif isinstance(raw, str):
                value = raw.encode("ascii")
            else:
                value = encode_tlv(raw)
        out += _tag_bytes(tag)
        out += _encode_length(len(value))
        out += value
    return bytes(out)


def encode_cpm(items: CpmPayload | Iterable[TlvItem]) -> str:
    """The Base64 text of a CPM payload (``encode_cpm(decode_cpm(p)) == p``)."""
    nodes = items.nodes if isinstance(items, CpmPayload) else items
    return binascii.b2a_base64(encode_tlv(nodes), newline=False).decode("ascii")


def _check_node(path: str, parent: str, node: TlvNode, out: list[Violation]) -> None:
    spec = CPM_TAGS.get(node.tag)
    if spec is None:
        return
    if spec.parents and parent not in spec.parents:
        where = f"inside {parent}" if parent else "at the top level"
        out.append(Violation(path, ViolationCode.MISPLACED, f"{spec.name} is not allowed {where}"))
    if spec.fmt == "tmpl":
        return
    n = len(node.value)
    if not spec.min_len <= n <= spec.max_len:
        out.append(
            Violation(
                path,
                ViolationCode.BAD_LENGTH,
                f"{spec.name}: {n} bytes, not {spec.min_len}–{spec.max_len}",
            )
        )
    if spec.fmt in ("an", "ans") and not all(0x20 <= b < 0x7F for b in node.value):
        out.append(Violation(path, ViolationCode.BAD_FORMAT, f"{spec.name} must be printable"))
    if spec.fmt == "n" and not node.value.hex().isdigit():
        out.append(Violation(path, ViolationCode.BAD_FORMAT, f"{spec.name} must be BCD digits"))
    if spec.fmt == "cn" and not node.value.hex().upper().rstrip("F").isdigit():
        out.append(
            Violation(path, ViolationCode.BAD_FORMAT, f"{spec.name} must be digits, F-padded")
        )
    if node.tag == "57" and "D" not in node.value.hex().upper():
        out.append(Violation(path, ViolationCode.BAD_FORMAT, "Track 2 lacks its D separator"))


def validate_cpm(payload: CpmPayload) -> list[Violation]:
    """Every EMVCo CPM rule the payload breaks (empty when it conforms)."""
    out: list[Violation] = []
    first = payload.nodes[0]
    if first.value != CPM_VERSION_01:
        out.append(Violation("85", ViolationCode.BAD_VALUE, "Payload Format Indicator is CPV01"))
    for path, node in payload.walk():
        parent = path.rsplit(".", 2)[-2] if "." in path else ""
        _check_node(path, parent, node, out)
    apps = payload.applications()
    if not apps:
        out.append(Violation("61", ViolationCode.MISSING_MANDATORY, "no Application Template (61)"))
    common = next((n for n in payload.nodes if n.tag == COMMON_DATA_TEMPLATE), None)
    if sum(1 for n in payload.nodes if n.tag == COMMON_DATA_TEMPLATE) > 1:
        out.append(Violation("62", ViolationCode.BAD_VALUE, "more than one Common Data Template"))
    for index, app in enumerate(apps):
        where = f"61[{index}]"
        if app.child("4F") is None:
            out.append(Violation(where, ViolationCode.MISSING_MANDATORY, "ADF Name (4F) missing"))
        has_account = any(
            t.child(tag) is not None for t in (app, common) if t is not None for tag in ("57", "5A")
        )
        if not has_account:
            out.append(
                Violation(
                    where,
                    ViolationCode.MISSING_MANDATORY,
                    "neither Track 2 (57) nor PAN (5A) in the application or common data",
                )
            )
    return out
