"""QR codec benchmark: MPM and CPM decodes/s and encodes/s on one core, side by side with the
EMVCo-family parsers on PyPI, on the same payloads in the same run.

``python benchmarks/qr_bench.py [--seconds N] [--json PATH]``. The comparison parsers are the
``bench`` extra of pyproject.toml (``pip install -e '.[bench]'``; ``make bench-qr`` does it); a
parser that is not installed is reported as such, not skipped silently.

Each library is timed through its own "parse a payload" entry point, and what that entry point
checks is printed beside its figure, because they do not all do the same work: flashpay's
``decode_mpm`` checks every length, nesting, duplicates, 00 first, 63 last and the CRC, and builds a
named, positioned object for every data object, nested ones included.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from flashpay.money import Money
from flashpay.qr import MerchantCodeFields, decode_mpm, dynamic_code, encode_mpm, static_code
from flashpay.qr.cpm import decode_cpm, encode_cpm
from flashpay.qr.payment_codes import issue_payment_code, token_key

FIELDS = MerchantCodeFields(
    merchant_id="102100000000001",
    terminal_id="T0001",
    name="Wumart Chaoyang",
    city="Beijing",
    mcc="5411",
    acquirer_iin="48020000",
    forwarding_iin="00010000",
)
EMVCO_SPEC_EXAMPLE = (
    "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN"
    "5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412"
    "340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A"
)
UNIONPAY_CPM = (
    "hQVDUFYwMWFWTwigAAADMwEBAlcRYmNgAQBxNnLSMSIBAAABiAFfNAEAYzOfJghWite85mtxi58nAYCfEBEHAAEDoAAAAQ"
    "gwMDAwMDAwMZ82AhEiggIAAJ83BCJgSI4="
)


def _rate(work: Callable[[], object], seconds: float) -> float:
    work()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(500):
            work()
        count += 500
    return count / (time.perf_counter() - started)


def _mpm_competitors(payload: str) -> dict[str, tuple[str, Callable[[], object]]]:
    """name -> (what its entry point checks, the call)."""
    out: dict[str, tuple[str, Callable[[], object]]] = {}
    try:
        import cemacqr

        out["cemacqr 0.1.2 parse_payload"] = (
            "lengths, CRC flag; nested on access",
            lambda: cemacqr.parse_payload(payload),
        )
    except ImportError:
        pass
    try:
        import qriskit

        out["qriskit 0.2.0 parse"] = ("lengths, CRC, QRIS rules", lambda: qriskit.parse(payload))
    except ImportError:
        pass
    try:
        from vietqr_emvco.parser import VietQRParser

        out["vietqr-emvco 1.0.0 parse"] = (
            "flat split + known sub-tags; no CRC, stops silently on bad data",
            lambda: VietQRParser.parse(payload),
        )
    except ImportError:
        pass
    try:
        from sgqrgen.sgqrgen import SgQRGenerator

        out["sgqrgen 0.1.2 parse_sgqr"] = (
            "flat split only; no CRC, no nesting",
            lambda: SgQRGenerator.parse_sgqr(payload),
        )
    except ImportError:
        pass
    return out


def _cpm_competitors(payload: str) -> dict[str, tuple[str, Callable[[], object]]]:
    raw = base64.b64decode(payload)
    out: dict[str, tuple[str, Callable[[], object]]] = {}
    try:
        from ber_tlv.tlv import Tlv

        out["ber-tlv 0.0.6 Tlv.parse(recursive)"] = (
            "BER-TLV tree of raw bytes",
            lambda: Tlv.parse(base64.b64decode(payload), True),
        )
    except ImportError:
        pass
    try:
        import tlvdict

        out["tlvdict 1.2.0 parse"] = (
            "BER-TLV tree with EMV tag names (hex text input)",
            lambda: tlvdict.parse(base64.b64decode(payload).hex()),
        )
    except ImportError:
        pass
    try:
        from pytlv.TLV import TLV

        tags = ["85", "61", "62"]
        out["pytlv 0.71 TLV.parse"] = (
            "flat top level only, tags given in advance (hex text input)",
            lambda: TLV(tags).parse(base64.b64decode(payload).hex()),
        )
    except ImportError:
        pass
    del raw
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    seconds = args.seconds

    mpm_payloads = {
        "flashpay static": static_code(FIELDS),
        "flashpay dynamic": dynamic_code(
            FIELDS,
            amount=Money.parse("128.50", "CNY"),
            bill_number="20261122000042",
            reference="ORD42",
        ),
        "EMVCo spec example": EMVCO_SPEC_EXAMPLE,
    }
    payment_code = issue_payment_code(
        token="6231230000000000017",
        token_expiry="2812",
        key=token_key(bytes(32), "6231230000000000017"),
        lookup_key=bytes(32),
        atc=1,
        now_s=1_800_000_000,
    ).qr_payload
    cpm_payloads = {"flashpay payment code": payment_code, "UnionPay vector": UNIONPAY_CPM}

    results: dict[str, object] = {"machine": platform.processor() or platform.machine()}
    rows: list[dict[str, object]] = []

    def measure(label: str, payload: str, codec: str, op: str, call: Callable[[], object],
                checks: str = "", ours: float | None = None) -> float:  # fmt: skip
        rate = _rate(call, seconds)
        row: dict[str, object] = {"payload": label, "chars": len(payload), "codec": codec,
                                  "op": op, "rate": rate, "checks": checks}  # fmt: skip
        if ours is not None:
            row["flashpay_x"] = ours / rate
        rows.append(row)
        ratio = f"  flashpay {ours / rate:.2f}x" if ours is not None else ""
        print(f"{label} ({len(payload)})".ljust(26), f"{codec:<36} {op:<6} {rate:>10,.0f}{ratio}")
        return rate

    for label, payload in mpm_payloads.items():
        decoded = decode_mpm(payload)
        ours = measure(
            label, payload, "flashpay decode_mpm", "decode", partial(decode_mpm, payload)
        )
        measure(label, payload, "flashpay encode_mpm", "encode", partial(encode_mpm, decoded))
        for name, (checks, call) in _mpm_competitors(payload).items():
            measure(label, payload, name, "decode", call, checks, ours)
    for label, payload in cpm_payloads.items():
        tree = decode_cpm(payload)
        ours = measure(
            label, payload, "flashpay decode_cpm", "decode", partial(decode_cpm, payload)
        )
        measure(label, payload, "flashpay encode_cpm", "encode", partial(encode_cpm, tree))
        for name, (checks, call) in _cpm_competitors(payload).items():
            measure(label, payload, name, "decode", call, checks, ours)
    if not _mpm_competitors(EMVCO_SPEC_EXAMPLE):
        print("comparison parsers not installed: pip install -e '.[bench]'")
    results["rows"] = rows
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
