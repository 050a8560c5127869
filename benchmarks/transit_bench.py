"""Transit: a gate's ride-code verification and the network's batch pricing of taps (issue 17).

- ``verify_cold``: a code whose credential the gate has not seen yet (two Ed25519 verifications:
  the network's over the credential, the device's over the code);
- ``verify_warm``: the rider's next code (the credential's signature is cached: one verification);
- ``price_taps``: ``match_trips`` + ``price_trips`` over a day of commuters' taps (subway in/out,
  buses, some forgotten tap-outs and double taps), in taps per second.

Targets: verification ≤ 0.2 ms on one core; pricing ≥ 50,000 taps/s.

    PYTHONPATH=src .venv/bin/python benchmarks/transit_bench.py --codes 5000 --riders 50000
"""

from __future__ import annotations

import argparse
import json
import random
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flashpay.keys import KeyRing
from flashpay.transit import codes
from flashpay.transit.definition import load_definition
from flashpay.transit.fares import Pricer
from flashpay.transit.signing import public_keys, signing_key
from flashpay.transit.trips import Tap, TapKind, match_trips, price_trips

NOW = 1_795_000_000
NS = 1_000_000_000


def bench_verify(n: int) -> dict[str, float]:
    ring = KeyRing.generate()
    trust = codes.GateTrust(codes.network_id("CUP"), public_keys(ring))
    riders = []
    for i in range(n):
        device = Ed25519PrivateKey.generate()
        credential = codes.sign_credential(
            codes.Credential(
                codes.network_id("CUP"),
                1,
                i,
                f"{6231230000000000000 + i}",
                codes.public_bytes(device.public_key()),
                5000,
                NOW - 60,
                NOW + 86400,
            ),
            signing_key(ring),
        )
        riders.append((credential, device))
    first = [codes.make_code(c, d, at_s=NOW, counter=1) for c, d in riders]
    second = [codes.make_code(c, d, at_s=NOW + 30, counter=2) for c, d in riders]
    seen: set[bytes] = set()
    out = {}
    for name, batch in (("verify_cold", first), ("verify_warm", second)):
        start = time.perf_counter()
        for code in batch:
            verdict = codes.verify_code(trust, code, now_s=NOW + 40, seen=seen)
            assert isinstance(verdict, codes.Accepted)
            seen.add(verdict.digest)
        elapsed = time.perf_counter() - start
        out[f"{name}_ms"] = elapsed / len(batch) * 1000
    return out


def day_of_taps(riders: int, seed: int = 7) -> list[Tap]:
    rng = random.Random(seed)
    stations = ["S01", "S02", "S03", "S04"]
    base = 1_794_931_200 * NS
    taps: list[Tap] = []
    seq = 0
    for r in range(riders):
        token = f"{6231230000000000000 + r}"
        for peak in (8, 18):
            t = base + (peak * 3600 + rng.randrange(-3600, 3600)) * NS
            if rng.random() < 0.3:
                seq += 1
                taps.append(
                    Tap(token, t, "BUS", seq, "B101", TapKind.BOARD, seq.to_bytes(16, "big"))
                )
                t += 20 * 60 * NS
            a, b = rng.sample(stations, 2)
            seq += 1
            taps.append(Tap(token, t, f"G-{a}", seq, a, TapKind.IN, seq.to_bytes(16, "big")))
            if rng.random() < 0.02:
                seq += 1  # a double tap
                taps.append(
                    Tap(token, t + 30 * NS, f"G-{a}", seq, a, TapKind.IN, seq.to_bytes(16, "big"))
                )
            if rng.random() < 0.97:  # 3 % forget to tap out
                seq += 1
                taps.append(
                    Tap(
                        token,
                        t + rng.randrange(5, 50) * 60 * NS,
                        f"G-{b}",
                        seq,
                        b,
                        TapKind.OUT,
                        seq.to_bytes(16, "big"),
                    )
                )
    rng.shuffle(taps)
    return taps


def bench_pricing(riders: int) -> dict[str, float]:
    pricer = Pricer(load_definition().fares)
    taps = day_of_taps(riders)
    closes = 1_794_931_200 * NS + 30 * 3600 * NS
    start = time.perf_counter()
    matched = match_trips(taps, closes_at_ns=closes)
    priced = price_trips(pricer, matched.trips, concession_of={})
    elapsed = time.perf_counter() - start
    return {
        "taps": len(taps),
        "trips": len(priced),
        "revenue_fen": sum(p.price.fare_minor for p in priced),
        "price_taps_per_s": len(taps) / elapsed,
        "price_seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--codes", type=int, default=5000)
    parser.add_argument("--riders", type=int, default=50_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {**bench_verify(args.codes), **bench_pricing(args.riders)}
    for key, value in results.items():
        print(f"{key:20} {value:,.4f}" if isinstance(value, float) else f"{key:20} {value:,}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
