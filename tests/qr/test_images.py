"""QR and barcode images, both ways on real images: rendered by segno / zxing-cpp, read back by
zxing-cpp (SVG through a small rasteriser of segno's path, so the SVG bytes are what is read)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from PIL import Image, ImageDraw

from flashpay.qr.images import (
    Symbology,
    kind_of,
    read_code,
    read_codes,
    render_barcode,
    render_qr,
)
from flashpay.qr.mpm import QrError
from flashpay.qr.payment_codes import issue_payment_code, token_key

from .test_cpm import UNIONPAY_CPM
from .test_mpm import EMVCO_SPEC_EXAMPLE, KHQR_UNIONPAY, PIX, POSITIVE

PAYMENT_CODE = issue_payment_code(
    token="6231230000000000017",
    token_expiry="2812",
    key=token_key(bytes(32), "6231230000000000017"),
    lookup_key=bytes(32),
    atc=1,
    now_s=1_800_000_000,
)
PAYLOADS = {
    "flashpay_dynamic": POSITIVE["flashpay_dynamic"],
    "emvco_chinese": EMVCO_SPEC_EXAMPLE,  # multi-byte UTF-8 text
    "khqr_khmer": KHQR_UNIONPAY,
    "pix": PIX,
    "unionpay_cpm": UNIONPAY_CPM,
    "flashpay_payment_code": PAYMENT_CODE.qr_payload,
}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_png_round_trip(payload):
    png = render_qr(payload, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_code(png) == payload


def _rasterise_segno_svg(svg: bytes, pixels_per_module: int = 4) -> bytes:
    """Draw segno's SVG path (``M``/``m`` moves, ``h`` runs of dark modules one module high,
    centred on half-module y) onto a white image and return it as PNG."""
    root = ET.fromstring(svg)
    width = int(root.get("width")) // 8
    height = int(root.get("height")) // 8
    path = next(el for el in root.iter() if el.tag.endswith("path"))
    image = Image.new("L", (width * pixels_per_module, height * pixels_per_module), 255)
    draw = ImageDraw.Draw(image)
    x = y = 0.0
    for command, a, b in re.findall(r"([MmHhVv])\s*(-?[\d.]+)(?:[ ,](-?[\d.]+))?", path.get("d")):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        elif command == "h":
            run = float(a)
            top = (y - 0.5) * pixels_per_module
            left, right = sorted((x * pixels_per_module, (x + run) * pixels_per_module))
            draw.rectangle((left, top, right - 1, top + pixels_per_module - 1), fill=0)
            x += run
        else:
            raise AssertionError(f"unexpected SVG path command {command}")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_svg_round_trip(payload):
    svg = render_qr(payload, "svg")
    assert svg.startswith(b"<?xml")
    assert read_code(_rasterise_segno_svg(svg)) == payload


def test_numeric_payment_code_as_code128():
    png = render_barcode(PAYMENT_CODE.numeric, "png")
    assert read_codes(png) == [read_codes(png)[0]]
    assert read_codes(png)[0].symbology is Symbology.CODE128
    assert read_code(png) == PAYMENT_CODE.numeric
    svg = render_barcode(PAYMENT_CODE.numeric, "svg")
    assert ET.fromstring(svg).tag.endswith("svg")


def test_two_codes_in_one_image_are_both_found():
    qr = Image.open(io.BytesIO(render_qr(PIX, scale=4)))
    bar = Image.open(io.BytesIO(render_barcode(PAYMENT_CODE.numeric)))
    sheet = Image.new("L", (qr.width + bar.width + 40, max(qr.height, bar.height)), 255)
    sheet.paste(qr.convert("L"), (0, 0))
    sheet.paste(bar.convert("L"), (qr.width + 40, 0))
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    found = {(c.symbology, c.text) for c in read_codes(out.getvalue())}
    assert found == {(Symbology.QR, PIX), (Symbology.CODE128, PAYMENT_CODE.numeric)}
    with pytest.raises(QrError, match="found 2"):
        read_code(out.getvalue())


def test_unreadable_inputs_are_named_errors():
    with pytest.raises(QrError, match="not a readable image"):
        read_codes(b"definitely not an image")
    blank = io.BytesIO()
    Image.new("L", (200, 200), 255).save(blank, format="PNG")
    assert read_codes(blank.getvalue()) == []
    with pytest.raises(QrError, match="found 0"):
        read_code(blank.getvalue())
    with pytest.raises(QrError, match="too long"):
        render_qr("x" * 5000)
    with pytest.raises(QrError, match="digits"):
        render_barcode("62A")
    with pytest.raises(QrError, match=r"\.png or \.svg"):
        kind_of("code.jpg")


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "qr", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_cli_render_read_and_modes(tmp_path):
    png = tmp_path / "code.png"
    assert _cli("render", UNIONPAY_CPM, "-o", str(png)).returncode == 0
    read = _cli("read", str(png))
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == UNIONPAY_CPM
    decoded = _cli("read", str(png), "--decode")
    assert json.loads(decoded.stdout)[0]["value"] == "CPV01"
    svg = tmp_path / "code.svg"
    assert _cli("render", PIX, "-o", str(svg)).returncode == 0
    assert read_code(_rasterise_segno_svg(svg.read_bytes())) == PIX
    bar = tmp_path / "bar.png"
    assert _cli("render", PAYMENT_CODE.numeric, "--barcode", "-o", str(bar)).returncode == 0
    assert _cli("read", str(bar)).stdout.strip() == PAYMENT_CODE.numeric
    assert _cli("render", PIX, "-o", str(tmp_path / "x.jpg")).returncode == 2
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    assert _cli("read", str(blank)).returncode == 2


def test_cli_decode_cpm_modes():
    auto = _cli("decode", UNIONPAY_CPM)
    assert auto.returncode == 0
    assert json.loads(auto.stdout)[1]["template"][0] == {
        "tag": "4F",
        "name": "Application Definition File (ADF) Name",
        "value": "A000000333010102",
        "hex": "A000000333010102",
    }
    forced = _cli("decode", "--mode", "mpm", UNIONPAY_CPM)
    assert forced.returncode == 2
    assert "invalid MPM payload" in forced.stderr
    broken = _cli("decode", "--mode", "cpm", UNIONPAY_CPM[:-8] + "AAAAAA==")
    assert broken.returncode == 2
    assert len(broken.stderr.strip().splitlines()) == 1
    assert re.search(r"tag [0-9A-F.]+ at byte \d+", broken.stderr)
    assert _cli("validate", PAYMENT_CODE.qr_payload).returncode == 0
    assert _cli("validate", "hQVDUFYwMQ==").returncode == 1
