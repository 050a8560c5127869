"""QR and barcode images: render payloads as PNG or SVG, read payloads back from images.

Rendering uses segno (QR codes: error correction level M, the quiet zone of four modules the
standard asks for) and zxing-cpp (Code 128 for the 19-digit numeric payment code, which 1-D
scanners read). Reading uses zxing-cpp on an image opened with Pillow, so a photo or a screenshot
of a code reads as well as our own renderings.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, cast

import segno
import zxingcpp
from PIL import Image, UnidentifiedImageError

from flashpay.qr.mpm import QrError

ImageKind = Literal["png", "svg"]
QUIET_ZONE_MODULES = 4


class Symbology(StrEnum):
    QR = "qr"
    CODE128 = "code128"


@dataclass(frozen=True, slots=True)
class ReadCode:
    symbology: Symbology
    text: str


def kind_of(filename: str) -> ImageKind:
    """The image kind a file name asks for (``.png`` or ``.svg``)."""
    lowered = filename.lower()
    if lowered.endswith(".png"):
        return "png"
    if lowered.endswith(".svg"):
        return "svg"
    raise QrError(f"{filename}: the image must be .png or .svg")


def render_qr(payload: str, kind: ImageKind = "png", *, scale: int = 8) -> bytes:
    """A QR code of ``payload`` (byte mode as needed, level M) as PNG or SVG bytes."""
    if not payload:
        raise QrError("nothing to render")
    try:
        code = segno.make_qr(payload, error="m", boost_error=False)
    except segno.DataOverflowError as exc:
        raise QrError(f"payload too long for a QR code: {exc}") from exc
    out = io.BytesIO()
    code.save(out, kind=kind, scale=scale, border=QUIET_ZONE_MODULES)
    return out.getvalue()


def render_barcode(digits: str, kind: ImageKind = "png", *, scale: int = 3) -> bytes:
    """A Code 128 barcode of a numeric payment code, as PNG or SVG bytes."""
    if not (digits.isascii() and digits.isdigit()):
        raise QrError("a barcode payment code is digits only")
    barcode = zxingcpp.create_barcode(digits, zxingcpp.BarcodeFormat.Code128)
    if kind == "svg":
        return str(barcode.to_svg()).encode("utf-8")
    # zxing-cpp's Image is a buffer (rows × columns of 8-bit grey) that its stubs do not declare.
    view = memoryview(cast(Any, barcode.to_image(scale=scale)))
    height, width = view.shape or (0, 0)
    image = Image.frombuffer("L", (width, height), view.tobytes(), "raw", "L", 0, 1)
    # A 1-D barcode needs quiet zones too: pad ten modules of white each side.
    padded = Image.new("L", (width + 20 * scale, height + 4 * scale), 255)
    padded.paste(image, (10 * scale, 2 * scale))
    out = io.BytesIO()
    padded.save(out, format="PNG")
    return out.getvalue()


_FORMATS = {
    zxingcpp.BarcodeFormat.QRCode: Symbology.QR,
    zxingcpp.BarcodeFormat.Code128: Symbology.CODE128,
}


_READ_FORMATS = zxingcpp.barcode_formats_from_str("QRCode,Code128")


def read_codes(image: bytes) -> list[ReadCode]:
    """Every QR code and Code 128 barcode found in a raster image (PNG, JPEG, …)."""
    try:
        picture = Image.open(io.BytesIO(image))
        picture.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise QrError(f"not a readable image: {exc}") from exc
    found = zxingcpp.read_barcodes(
        picture.convert("L"),
        formats=_READ_FORMATS,
    )
    return [ReadCode(_FORMATS[r.format], r.text) for r in found if r.format in _FORMATS]


def read_code(image: bytes) -> str:
    """The one code in ``image``; ``QrError`` when there is none or more than one."""
    codes = read_codes(image)
    if len(codes) != 1:
        raise QrError(f"expected one code in the image, found {len(codes)}")
    return codes[0].text
