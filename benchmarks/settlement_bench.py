"""Close a settlement window of N payments on PostgreSQL and time each step (issue 18).

The ledger rows are generated set-based (one ``INSERT … SELECT FROM generate_series``): N
purchase chains of the six §4 legs across the default network's five issuers and three
acquirers (the card and merchant accounts are ids of their own, as many as the payments). Then
``close_window`` runs as in production; its steps are timed separately by calling them the same
way first (pair sums; clearing files) and then the whole close.

    PYTHONPATH=src python benchmarks/settlement_bench.py --payments 100000 1000000 [--json F]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import psycopg

from flashpay import db
from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.institutions.chart import AccountCode, TransferCode, institution_account_id
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import load_network
from flashpay.keys import KeyRing
from flashpay.ledger.windows import window_pair_sums
from flashpay.platform import Platform
from flashpay.settlement.chart import settlement_chart
from flashpay.settlement.clearing import write_clearing_files
from flashpay.settlement.close import close_window
from flashpay.settlement.windows import Schedule

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
START_NS = 1_795_000_000 * NS_PER_SECOND


def _generate(url: str, payments: int) -> None:
    d = default_definition()
    issuers = [i.code for i in d.issuers]
    acquirers = [a.code for a in d.acquirers]
    a = AccountCode
    n = d.network.code

    def arr(values: list[int]) -> str:
        return "ARRAY[" + ",".join(str(v) for v in values) + "]::bigint[]"

    ich = arr([institution_account_id(i, a.INTERCHANGE_INCOME) for i in issuers])
    npay = arr([institution_account_id(i, a.NETWORK_PAYABLE) for i in issuers])
    recv = arr([institution_account_id(n, a.ISSUER_RECEIVABLE, i) for i in issuers])
    apay = arr([institution_account_id(n, a.ACQUIRER_PAYABLE, q) for q in acquirers])
    anr = arr([institution_account_id(q, a.ACQUIRER_NETWORK_RECEIVABLE) for q in acquirers])
    mdr = arr([institution_account_id(q, a.MDR_INCOME) for q in acquirers])
    fee = institution_account_id(n, a.FEE_INCOME)
    sql = f"""
    INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, pending_id,
        user_data_128, user_data_64, user_data_32, timeout_seconds, ledger, code, flags,
        timestamp, chain_id)
    SELECT 1000000000 + p.i * 8 + leg.k, leg.debit, leg.credit, leg.amount, 0,
        '\\x00000000000000000000000000000000'::bytea, p.i, 0, 0, 156, {int(TransferCode.PURCHASE)},
        CASE WHEN leg.k < 5 THEN 1 ELSE 0 END, {START_NS} + p.i * 8 + leg.k, {START_NS} + p.i * 8
    FROM (
        SELECT i, 100 + (i * 7919) % 20000 AS amount, i % {len(issuers)} + 1 AS s,
               i % {len(acquirers)} + 1 AS q
        FROM generate_series(1::bigint, {payments}::bigint) AS i
    ) AS p0
    CROSS JOIN LATERAL (SELECT p0.*, (p0.amount * 45 + 5000) / 10000 AS ich,
                               (p0.amount * 65 + 50000) / 100000 AS fee,
                               (p0.amount * 600 + 50000) / 100000 AS mdr) AS p
    CROSS JOIN LATERAL (VALUES
        (0, 5000000000 + p.i, ({ich})[p.s], p.ich),
        (1, 5000000000 + p.i, ({npay})[p.s], p.amount - p.ich),
        (2, ({recv})[p.s], ({apay})[p.q], p.amount - p.ich - p.fee),
        (3, ({recv})[p.s], {fee}::bigint, p.fee),
        (4, ({anr})[p.q], 9000000000 + p.i % 50000, p.amount - p.mdr),
        (5, ({anr})[p.q], ({mdr})[p.q], p.mdr - p.ich - p.fee)
    ) AS leg(k, debit, credit, amount)
    WHERE leg.amount > 0
    """
    with psycopg.connect(db.libpq_url(url), autocommit=True) as connection:
        connection.execute(sql)
        connection.execute("ANALYZE ledger_transfers")


def run(payments: int) -> dict[str, float | int]:
    name = f"flashpay_bench_settle_{payments}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rpartition("/")[0] + f"/{name}"
    try:
        db.upgrade(url)
        clock = FakeClock(START_NS - NS_PER_SECOND)
        platform = Platform.open(url, clock=clock, keys=KeyRing.generate())
        load_network(platform=platform, definition=default_definition())
        t0 = time.perf_counter()
        _generate(url, payments)
        generate_s = time.perf_counter() - t0
        end_ns = START_NS + (payments + 1) * 8
        chart = settlement_chart(platform=platform)
        with tempfile.TemporaryDirectory() as tmp:
            with platform.engine.connect() as connection:
                t0 = time.perf_counter()
                window_pair_sums(connection, chain_id_min=0, chain_id_max=end_ns,
                                 account_ids=chart.read, exclude_codes=(60,))  # fmt: skip
                sums_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                write_clearing_files(connection, chart=chart, directory=Path(tmp) / "probe",
                                     start_ns=0, end_ns=end_ns, header={})  # fmt: skip
                files_s = time.perf_counter() - t0
            clock.set_ns(end_ns + 10 * NS_PER_SECOND)
            t0 = time.perf_counter()
            result = close_window(
                platform=platform,
                end_ns=end_ns,
                schedule=Schedule(close_delay_seconds=5),
                directory=Path(tmp),
            )
            close_s = time.perf_counter() - t0
            size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
        assert sum(p.net_fen for p in result.positions) == 0
        platform.close()
        return {"payments": payments, "generate_s": round(generate_s, 2),
                "pair_sums_s": round(sums_s, 2), "clearing_files_s": round(files_s, 2),
                "close_s": round(close_s, 2), "files_mb": round(size / 2**20, 1) // 2,
                "lines": result.window.transactions}  # fmt: skip
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = [run(n) for n in args.payments]
    print(f"{'payments':>10} {'generate s':>10} {'pair sums s':>11} {'files s':>8} "
          f"{'close s':>8} {'lines':>9}")  # fmt: skip
    for r in rows:
        print(f"{r['payments']:>10} {r['generate_s']:>10} {r['pair_sums_s']:>11} "
              f"{r['clearing_files_s']:>8} {r['close_s']:>8} {r['lines']:>9}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
