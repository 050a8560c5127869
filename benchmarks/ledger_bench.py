"""Ledger benchmark (``make bench``):
``python benchmarks/ledger_bench.py [--db URL ...] [--json PATH] [--seconds N]``.

Scenarios, each on every database given (default: a scratch SQLite file and, when reachable, a
scratch PostgreSQL database on the local server):

- ``batched``: one client posting batches of 1,000 transfers (customer deposit accounts with
  ``DEBITS_MUST_NOT_EXCEED_CREDITS`` paying 100 merchants);
- ``single_8_processes``: 8 processes, one transfer per call, each paying its own merchants
  (each process its own ``Ledger``: one transaction per call);
- ``hot_account_8_processes``: the same, but every transfer credits one merchant account;
- ``single_8_threads`` / ``hot_account_8_threads``: the same two with 8 threads sharing one
  ``Ledger`` in one process, whose group commit merges concurrent calls into shared
  transactions (how a threaded server process would call it).

PostgreSQL's own ``pgbench`` TPC-B (``-i -s 10``, then ``-c 8 -j 2``) runs on the same server in the
same run as the reference, and each PostgreSQL figure is printed as a ratio to it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from flashpay import db
from flashpay.ledger.service import Ledger
from flashpay.ledger.types import Account, AccountFlags, Transfer

LEDGER_CNY = 156
CUSTOMERS = 2_000
MERCHANTS = 100
BATCH_SIZE = 1_000
CLIENTS = 8
PGBENCH_SECONDS = 10  # the reference: pgbench -i -s 10, then -c 8 -j 2 -T 10
ADMIN_URL_ENV = "FLASHPAY_BENCH_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CUSTOMER_BASE = 1_000_000
MERCHANT_BASE = 2_000_000
FUNDING_ID = 1


@dataclass(frozen=True, slots=True)
class Result:
    database: str
    scenario: str
    transfers: int
    seconds: float
    transfers_per_second: float
    p50_ms: float
    p99_ms: float


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _setup(url: str) -> None:
    db.upgrade(url)
    ledger = Ledger.open(url)
    try:
        accounts = [Account(FUNDING_ID, LEDGER_CNY, 1)]
        accounts += [
            Account(CUSTOMER_BASE + i, LEDGER_CNY, 2, AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
            for i in range(CUSTOMERS)
        ]
        accounts += [Account(MERCHANT_BASE + i, LEDGER_CNY, 3) for i in range(MERCHANTS)]
        for start in range(0, len(accounts), 4000):
            ledger.create_accounts(accounts[start : start + 4000])
        funding = [
            Transfer(10 + i, FUNDING_ID, CUSTOMER_BASE + i, 10**12, LEDGER_CNY, 1)
            for i in range(CUSTOMERS)
        ]
        for start in range(0, len(funding), 4000):
            ledger.create_transfers(funding[start : start + 4000])
    finally:
        ledger.close()


def _payment(rng: random.Random, next_id: int, merchant: int) -> Transfer:
    customer = CUSTOMER_BASE + rng.randrange(CUSTOMERS)
    return Transfer(next_id, customer, merchant, rng.randint(100, 30_000), LEDGER_CNY, 9)


def _batched(url: str, label: str, seconds: float, id_base: int) -> Result:
    ledger = Ledger.open(url)
    rng = random.Random(1)
    latencies: list[float] = []
    posted = 0
    next_id = id_base
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            batch = []
            for _ in range(BATCH_SIZE):
                batch.append(_payment(rng, next_id, MERCHANT_BASE + rng.randrange(MERCHANTS)))
                next_id += 1
            t0 = time.perf_counter()
            results = ledger.create_transfers(batch)
            latencies.append((time.perf_counter() - t0) * 1000)
            posted += sum(1 for r in results if r == "ok")
    finally:
        ledger.close()
    # The rate is of the ledger calls alone; generating the random batches is the client's cost.
    elapsed = sum(latencies) / 1000
    return Result(
        label,
        "batched_1000",
        posted,
        elapsed,
        posted / elapsed,
        _percentile(latencies, 0.5),
        _percentile(latencies, 0.99),
    )


def _client(args: tuple[str, float, int, int, bool]) -> tuple[int, list[float]]:
    url, seconds, client, id_base, hot = args
    ledger = Ledger.open(url)
    try:
        return _client_loop(ledger, seconds, client, id_base, hot)
    finally:
        ledger.close()


def _client_loop(
    ledger: Ledger, seconds: float, client: int, id_base: int, hot: bool
) -> tuple[int, list[float]]:
    rng = random.Random(client)
    latencies: list[float] = []
    posted = 0
    next_id = id_base + client * 10_000_000
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        merchant = MERCHANT_BASE if hot else MERCHANT_BASE + 1 + client * 10 + rng.randrange(10)
        t0 = time.perf_counter()
        result = ledger.create_transfers([_payment(rng, next_id, merchant)])
        latencies.append((time.perf_counter() - t0) * 1000)
        next_id += 1
        posted += result[0] == "ok"
    return posted, latencies


def _concurrent(
    url: str, label: str, seconds: float, id_base: int, *, hot: bool, threads: bool
) -> Result:
    start = time.perf_counter()
    if threads:
        ledger = Ledger.open(url)
        try:
            with ThreadPoolExecutor(CLIENTS) as pool:
                outcomes = list(
                    pool.map(
                        lambda c: _client_loop(ledger, seconds, c, id_base, hot), range(CLIENTS)
                    )
                )
        finally:
            ledger.close()
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(CLIENTS) as pool:
            outcomes = pool.map(_client, [(url, seconds, c, id_base, hot) for c in range(CLIENTS)])
    elapsed = max(time.perf_counter() - start, seconds)
    posted = sum(p for p, _ in outcomes)
    latencies = [x for _, lats in outcomes for x in lats]
    scenario = ("hot_account_8_" if hot else "single_8_") + ("threads" if threads else "processes")
    return (
        Result(
            label,
            scenario,
            posted,
            seconds,
            posted / seconds,
            _percentile(latencies, 0.5),
            _percentile(latencies, 0.99),
        )
        if elapsed
        else Result(label, scenario, 0, 0, 0, 0, 0)
    )


def _pgbench(admin_url: str) -> float | None:
    binary = shutil.which("pgbench")
    if binary is None:
        return None
    name = "flashpay_bench_pgbench"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    target = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        subprocess.run([binary, "-i", "-s", "10", "-q", target], check=True, capture_output=True)
        out = subprocess.run(
            [binary, "-c", "8", "-j", "2", "-T", str(PGBENCH_SECONDS), target],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        match = re.search(r"tps = ([0-9.]+)", out)
        return float(match.group(1)) if match else None
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _scratch_postgres(admin_url: str) -> str | None:
    name = "flashpay_bench_ledger"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError:
        return None
    return admin_url.rsplit("/", 1)[0] + "/" + name


def main(
    *, urls: list[str], json_path: Path | None, seconds: float, run_pgbench: bool = True
) -> list[Result]:
    console = Console()
    admin_url = os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)
    scratch = tempfile.mkdtemp(prefix="flashpay-bench-")
    if not urls:
        urls = [f"sqlite:///{scratch}/bench.db"]
        pg = _scratch_postgres(admin_url)
        if pg:
            urls.append(pg)
    results: list[Result] = []
    for url in urls:
        label = "postgresql" if db.is_postgresql(url) else "sqlite"
        console.print(f"[bold]{label}[/bold]: setting up {CUSTOMERS:,} customers…")
        _setup(url)
        results.append(_batched(url, label, seconds, 100_000_000))
        for offset, (hot, threads) in enumerate(
            ((False, False), (True, False), (False, True), (True, True))
        ):
            id_base = 200_000_000 + offset * 100_000_000
            results.append(_concurrent(url, label, seconds, id_base, hot=hot, threads=threads))
    tps = _pgbench(admin_url) if run_pgbench else None
    table = Table(title="ledger bench")
    for column in ("database", "scenario", "transfers/s", "p50 ms", "p99 ms", "× pgbench TPC-B"):
        table.add_column(column, justify="right" if column != "scenario" else "left")
    for r in results:
        ratio = (
            f"{r.transfers_per_second / tps:.2f}" if (tps and r.database == "postgresql") else ""
        )
        table.add_row(
            r.database,
            r.scenario,
            f"{r.transfers_per_second:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            ratio,
        )
    if tps:
        table.add_row("postgresql", "pgbench TPC-B -c 8 -j 2 -s 10", f"{tps:,.0f}", "", "", "1.00")
    console.print(table)
    by_key = {(r.database, r.scenario): r.transfers_per_second for r in results}
    for label in ("sqlite", "postgresql"):
        for clients in ("processes", "threads"):
            hot_rate = by_key.get((label, f"hot_account_8_{clients}"))
            cold_rate = by_key.get((label, f"single_8_{clients}"))
            if hot_rate and cold_rate:
                console.print(
                    f"{label}, 8 {clients}: hot account / uncontended = {hot_rate / cold_rate:.2f}"
                )
    if json_path:
        payload = {"pgbench_tpcb_tps": tps, "results": [asdict(r) for r in results]}
        json_path.write_text(json.dumps(payload, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", action="append", default=[])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-pgbench", action="store_true")
    args = parser.parse_args()
    main(urls=args.db, json_path=args.json, seconds=args.seconds, run_pgbench=not args.no_pgbench)
