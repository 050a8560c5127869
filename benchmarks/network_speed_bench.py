"""The benchmark of issue 14: QR payments and P2P transfers over HTTP on PostgreSQL at 1, 8, 32
and 128 connections, against pgbench TPC-B on the same server, in one run.

Builds the QR benchmark's world on a fresh database (64 wallet users with a debit card, 50
merchants over the ten scenes), starts ``flashpay serve --workers 2 --no-access-log`` and, per
connection count, runs ``wrk`` for ``--seconds`` on

- QR payments: half scan-to-pay (``POST /v1/payments/qr``), half payment code
  (``POST /v1/merchant/payments``, codes issued just before the run), a hot merchant at 20 %;
- P2P transfers (``POST /v1/transfers``, bearer token, PIN, cross-bank).

Then it stops the server and runs ``pgbench -i -s 10`` and ``pgbench -c 8 -j 2 -T 20`` on a
scratch database of the same PostgreSQL server, and reports each rate as a ratio of pgbench's
TPS. To compare two trees, run the script twice with ``PYTHONPATH=<tree>/src`` (the world, the
server and the workers then all run that tree's code):

    cd benchmarks && PYTHONPATH=../src ../.venv/bin/python network_speed_bench.py --json new.json

The targets (issue 14): ≥ 1,000/s each with p99 ≤ 50 ms at 32 connections, and ≥ 0.25× pgbench.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

import api_p2p_bench
from api_p2p_bench import (
    ADMIN_URL_DEFAULT,
    P2P_USERS,
    WRK_THREADS,
    _drop_database,
    _fresh_database,
    _p2p_members,
    _start_server,
    _wrk,
)
from api_qr_bench import _LUA, CODES_PER_SECOND, HOT_SHARE, _codes, _shops
from flashpay.platform import Platform

LEVELS = (1, 8, 32, 128)
TARGET_PER_SECOND = 1_000
TARGET_P99_MS = 50.0
TARGET_PGBENCH_RATIO = 0.25
_TPS = re.compile(r"tps = ([\d.]+) \(without initial connection time\)")


def _qr(base_url: str, data_dir: Path, seconds: int, connections: int) -> dict[str, float]:
    lua = _LUA.replace("@@DIR@@", str(data_dir)).replace("@@HOT@@", str(HOT_SHARE))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    threads = min(WRK_THREADS, connections)
    run = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
         "--timeout", "10s", "-s", script.name, base_url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    os.unlink(script.name)
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    requests, errors, duration_us, p50_us, p99_us = line.split()[1:]
    return {
        "requests": int(requests),
        "errors": int(errors),
        "per_second": round(int(requests) / (int(duration_us) / 1e6), 1),
        "p50_ms": round(float(p50_us) / 1000, 2),
        "p99_ms": round(float(p99_us) / 1000, 2),
    }


def _pgbench(admin_url: str) -> float:
    """TPC-B TPS of ``pgbench -c 8 -j 2 -T 20`` at scale 10 on a scratch database."""
    name = "flashpay_bench_pgbench"
    url = admin_url.rpartition("/")[0] + "/" + name
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        subprocess.run(["pgbench", "-i", "-s", "10", "-q", url], check=True, capture_output=True)
        out = subprocess.run(
            ["pgbench", "-c", "8", "-j", "2", "-T", "20", url],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    match = _TPS.search(out)
    if match is None:
        raise RuntimeError(f"no TPS in pgbench's output:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get("FLASHPAY_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10, help="per kind and connection count")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    api_p2p_bench.STARTUP_SECONDS_MAX = 120.0  # two workers start slowly on a loaded machine
    admin_url = args.admin_url or ADMIN_URL_DEFAULT
    url = _fresh_database(admin_url)
    data_dir = Path(tempfile.mkdtemp(prefix="flashpay-network-bench-"))
    rows: list[dict[str, object]] = []
    server = None
    try:
        members = _p2p_members(url, data_dir, P2P_USERS)
        platform = Platform.open(url, data_directory=data_dir)
        try:
            shops = _shops(platform)
        finally:
            platform.close()
        (data_dir / "members.tsv").write_text("".join(f"{m.token}\t{m.card_id}\n" for m in members))
        (data_dir / "shops.tsv").write_text("".join(f"{k}\t{p}\n" for k, p, _ in shops))
        server, base_url = _start_server(url, args.workers, data_dir)
        for connections in args.levels:
            platform = Platform.open(url, data_directory=data_dir)
            try:  # a code lives 60 s: fresh ones for each run
                codes = _codes(platform, members, CODES_PER_SECOND * args.seconds // 2)
            finally:
                platform.close()
            (data_dir / "codes.tsv").write_text("\n".join(codes) + "\n")
            qr = _qr(base_url, data_dir, args.seconds, connections)
            rows.append({"kind": "qr_payments", "connections": connections, **qr})
            print(f"qr  c={connections:<4} {qr}", flush=True)
            api_p2p_bench.WRK_THREADS = min(WRK_THREADS, connections)  # wrk: threads ≤ conns
            p2p = _wrk(base_url, "p2p", first_id=0, admin_key="", seconds=args.seconds,
                       concurrency=connections, members=members)  # fmt: skip
            row = {"kind": "p2p_transfers", "connections": connections, "requests": p2p.requests,
                   "errors": p2p.errors, "per_second": p2p.per_second, "p50_ms": p2p.p50_ms,
                   "p99_ms": p2p.p99_ms}  # fmt: skip
            rows.append(row)
            print(f"p2p c={connections:<4} {row}", flush=True)
        server.terminate()
        server.wait(timeout=30)
        server = None
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        _drop_database(admin_url, url)
    tps = _pgbench(admin_url)
    for row in rows:
        row["pgbench_ratio"] = round(float(row["per_second"]) / tps, 3)  # type: ignore[arg-type]
    print(f"\nflashpay serve --workers {args.workers} on PostgreSQL, wrk, {args.seconds} s each")
    print(f"{'kind':<14}{'conn':>6}{'per s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
          f"{'×pgbench':>10}")  # fmt: skip
    for row in rows:
        print(f"{row['kind']:<14}{row['connections']:>6}{row['per_second']:>10}"
              f"{row['p50_ms']:>10}{row['p99_ms']:>10}{row['errors']:>8}"
              f"{row['pgbench_ratio']:>10}")  # fmt: skip
    print(f"pgbench TPC-B -s 10 -c 8 -j 2 -T 20: {tps:.1f} TPS")
    print(f"targets: ≥ {TARGET_PER_SECOND}/s and p99 ≤ {TARGET_P99_MS} ms at 32 connections, "
          f"≥ {TARGET_PGBENCH_RATIO}× pgbench")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "pgbench_tps": tps}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
