"""Audit-log benchmark: append rate and proof times at 1M and 10M leaves, beside pymerkle.

``python benchmarks/chain_bench.py [--sizes 1000000 10000000] [--db URL ...] [--proofs N]
[--batch N] [--no-pymerkle] [--json PATH]``

For every database (default: a scratch SQLite file and, when reachable, a scratch PostgreSQL
database ``flashpay_chain_bench`` on the local server) the log is grown to each size in turn with
``ChainLog.append_leaves`` in batches of ``--batch`` leaves of 236 bytes (a two-transfer payment
leaf), then ``--proofs`` random inclusion and consistency proofs are generated through
``ChainLog`` (one database round trip each, upper tree levels cached after a warm-up) and verified
with ``flashpay.chain.merkle``. pymerkle 7.0.0's ``SqliteTree`` gets the same leaves (its bulk
``append_entries``) and the same proof requests (``prove_inclusion``/``prove_consistency`` and its
``verify``). Times are means per operation, in microseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from flashpay import db
from flashpay.chain import merkle
from flashpay.chain.service import ChainLog

LEAF_BYTES = 236
PG_ADMIN = os.environ.get(
    "FLASHPAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PG_BENCH_DB = "flashpay_chain_bench"
WARMUP = 300


def leaf(i: int, prefix: bytes) -> bytes:
    return prefix + i.to_bytes(8, "big")


def mean_us(work: Callable[[int], object], picks: list[int]) -> float:
    started = time.perf_counter()
    for p in picks:
        work(p)
    return (time.perf_counter() - started) / len(picks) * 1e6


def measure_log(log: ChainLog, size: int, proofs: int, prefix: bytes) -> dict[str, float]:
    rng = random.Random(size)
    root = log.root(size)
    priors = [1 + rng.randrange(size - 1) for _ in range(2 * proofs)]
    prior_roots = {m: log.root(m) for m in priors}

    def fresh() -> list[int]:  # new random leaves for each measurement: no warm pages reused
        return [rng.randrange(size) for _ in range(proofs)]

    def inclusion(i: int) -> object:
        return log.inclusion_proof(i, size, checked=False)

    def inclusion_verified(i: int) -> None:
        proof = log.inclusion_proof(i, size, checked=False)
        merkle.verify_inclusion(merkle.leaf_hash(leaf(i, prefix)), i, size, proof, root)

    def consistency(m: int) -> object:
        return log.consistency_proof(m, size, checked=False)

    def consistency_verified(m: int) -> None:
        proof = log.consistency_proof(m, size, checked=False)
        merkle.verify_consistency(m, size, proof, prior_roots[m], root)

    mean_us(inclusion, [rng.randrange(size) for _ in range(WARMUP)])  # fills the upper levels
    return {
        "inclusion_generate_us": mean_us(inclusion, fresh()),
        "inclusion_generate_verify_us": mean_us(inclusion_verified, fresh()),
        "consistency_generate_us": mean_us(consistency, priors[:proofs]),
        "consistency_generate_verify_us": mean_us(consistency_verified, priors[proofs:]),
    }


def bench_log(
    url: str, sizes: list[int], batch: int, proofs: int, prefix: bytes
) -> list[dict[str, Any]]:
    db.upgrade(url)
    log = ChainLog.open(url)
    rows = []
    appended_seconds = 0.0
    try:
        for size in sizes:
            t0 = time.perf_counter()
            for k in range(log.size(), size, batch):
                end = min(k + batch, size)
                log.append_leaves([(i + 1, leaf(i, prefix)) for i in range(k, end)])
            appended_seconds += time.perf_counter() - t0
            row: dict[str, Any] = {
                "database": "postgresql" if db.is_postgresql(url) else "sqlite",
                "leaves": size,
                "append_leaves_per_second": size / appended_seconds,
                **measure_log(log, size, proofs, prefix),
            }
            rows.append(row)
            print_row(row)
    finally:
        log.close()
    return rows


def measure_pymerkle(tree: Any, size: int, proofs: int) -> dict[str, float]:
    from pymerkle import verify_consistency, verify_inclusion

    rng = random.Random(size)
    root = tree.get_root(size)
    t0 = time.perf_counter()
    tree.prove_inclusion(1 + rng.randrange(size), size)
    first_proof_us = (time.perf_counter() - t0) * 1e6
    count = proofs
    priors = [1 + rng.randrange(size - 1) for _ in range(2 * count)]
    prior_roots = {m: tree.get_root(m) for m in priors}

    def fresh() -> list[int]:
        return [1 + rng.randrange(size) for _ in range(count)]

    def inclusion(i: int) -> object:
        return tree.prove_inclusion(i, size)

    def inclusion_verified(i: int) -> None:
        verify_inclusion(tree.get_leaf(i), root, tree.prove_inclusion(i, size))

    def consistency(m: int) -> object:
        return tree.prove_consistency(m, size)

    def consistency_verified(m: int) -> None:
        verify_consistency(prior_roots[m], root, tree.prove_consistency(m, size))

    mean_us(inclusion, fresh())  # warm its subroot cache as ours is warmed
    return {
        "first_proof_us": first_proof_us,
        "inclusion_generate_us": mean_us(inclusion, fresh()),
        "inclusion_generate_verify_us": mean_us(inclusion_verified, fresh()),
        "consistency_generate_us": mean_us(consistency, priors[:count]),
        "consistency_generate_verify_us": mean_us(consistency_verified, priors[count:]),
    }


def bench_pymerkle(
    sizes: list[int], batch: int, proofs: int, prefix: bytes, workdir: Path
) -> list[dict[str, Any]]:
    from pymerkle import SqliteTree

    tree = SqliteTree(str(workdir / "pymerkle.db"))
    rows = []
    appended_seconds = 0.0
    try:
        for size in sizes:
            t0 = time.perf_counter()
            for k in range(tree.get_size(), size, batch):
                tree.append_entries([leaf(i, prefix) for i in range(k, min(k + batch, size))])
            appended_seconds += time.perf_counter() - t0
            row: dict[str, Any] = {
                "database": "pymerkle-sqlite",
                "leaves": size,
                "append_leaves_per_second": size / appended_seconds,
                **measure_pymerkle(tree, size, proofs),
            }
            rows.append(row)
            print_row(row)
    finally:
        tree.close()
    return rows


def print_row(row: dict[str, Any]) -> None:
    r = row
    first = f" | first proof {r['first_proof_us']:,.0f} µs" if "first_proof_us" in r else ""
    print(
        f"{r['database']:>16} {r['leaves']:>11,} leaves"
        f" | append {r['append_leaves_per_second']:>9,.0f}/s"
        f" | inclusion gen {r['inclusion_generate_us']:>9,.1f} µs"
        f", +verify {r['inclusion_generate_verify_us']:>9,.1f} µs"
        f" | consistency gen {r['consistency_generate_us']:>9,.1f} µs"
        f", +verify {r['consistency_generate_verify_us']:>9,.1f} µs{first}",
        flush=True,
    )


def postgres_url() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{PG_BENCH_DB}"')
    except psycopg.OperationalError:
        return None
    base, _, _ = PG_ADMIN.rpartition("/")
    return f"{base}/{PG_BENCH_DB}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--db", action="append", help="database URL(s); default SQLite and PostgreSQL"
    )
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--no-pymerkle", action="store_true")
    parser.add_argument("--pymerkle-proofs", type=int, default=100, help="(it is slow)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    prefix = random.Random(9162).randbytes(LEAF_BYTES - 8)
    with tempfile.TemporaryDirectory(prefix="chain-bench-") as tmp:
        workdir = Path(tmp)
        urls = args.db or [f"sqlite:///{workdir / 'chain.db'}"]
        if not args.db:
            pg = postgres_url()
            if pg:
                urls.append(pg)
        print(f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
        results: list[dict[str, Any]] = []
        for url in urls:
            results += bench_log(url, sizes, args.batch, args.proofs, prefix)
            if db.is_sqlite(url):
                path = db.sqlite_path(url)
                if path:
                    for suffix in ("", "-wal", "-shm"):
                        Path(str(path) + suffix).unlink(missing_ok=True)
        if not args.no_pymerkle:
            results += bench_pymerkle(sizes, args.batch, args.pymerkle_proofs, prefix, workdir)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
