"""Ledger benchmark: ``python benchmarks/ledger_bench.py [--db URL ...] [--json PATH]``.

The same as ``flashpay ledger bench``; see ``flashpay.ledger.bench`` for the scenarios.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flashpay.ledger import bench

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", action="append", default=[])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-pgbench", action="store_true")
    args = parser.parse_args()
    bench.main(
        urls=args.db, json_path=args.json, seconds=args.seconds, run_pgbench=not args.no_pgbench
    )
