"""QR codec benchmark: MPM decodes/s and encodes/s on one core.

``python benchmarks/qr_bench.py [--seconds N] [--json PATH]``. The payload is a typical
flashpay dynamic code (~150 characters). The side-by-side comparison with a PyPI EMVCo parser that
issue 3 asks for is not in this script yet.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from flashpay.money import Money
from flashpay.qr import MerchantCodeFields, decode_mpm, dynamic_code, encode_mpm

FIELDS = MerchantCodeFields(
    merchant_id="102100000000001",
    terminal_id="T0001",
    name="Wumart Beijing Chaoyang",
    city="Beijing",
    mcc="5411",
    acquirer_iin="48020000",
    forwarding_iin="00010000",
)


def _rate(work: Callable[[], object], seconds: float) -> float:
    count = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(1000):
            work()
        count += 1000
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    payload = dynamic_code(
        FIELDS, amount=Money.parse("128.50", "CNY"), bill_number="20261122000042", reference="ORD42"
    )
    decoded = decode_mpm(payload)
    results = {
        "payload_chars": len(payload),
        "mpm_decodes_per_second": _rate(lambda: decode_mpm(payload), args.seconds),
        "mpm_encodes_per_second": _rate(lambda: encode_mpm(decoded), args.seconds),
    }
    for key, value in results.items():
        print(f"{key:>26}: {value:,.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
