"""Kill -9 soak (issue 12): the harness of ``tests/crash/killharness.py``, many rounds in a row.

Each round: a fresh database, a small network, ``flashpay serve --workers 2``, 16 clients sending
P2P transfers and QR payments with one ``Idempotency-Key`` each (retried with the same key until a
final answer), the server's process group or one worker SIGKILLed every few seconds and started
again; then recovery, a last restart, and the checks (duplicates, losses, phantoms, ledger
chains, API balances against the ledger, ledger check, chain audit, books). One table row per
round; exit status 1 if any round found a duplicate, a loss or another problem.

    .venv/bin/python benchmarks/kill9_soak.py --db sqlite --runs 10 --seconds 25
    .venv/bin/python benchmarks/kill9_soak.py --db postgresql --runs 10 --seconds 25 --json out.json
    .venv/bin/python benchmarks/kill9_soak.py --db postgresql --lease default --retry-seconds 150

``--lease N`` sets ``FLASHPAY_IDEMPOTENCY_LEASE_SECONDS`` for the server (default 2, so that a
retry takes over a dead request's claim within a round); ``--lease default`` keeps the server's
own (10 s since decision 0013), and then ``--retry-seconds`` must exceed it for the retries to
reach a final answer.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "crash"))
from killharness import POSTGRES_ADMIN_URL_DEFAULT, Options, Report, run_round

COLUMNS = ("run", "db", "operations", "answered", "unanswered", "retries", "replayed", "kills",
           "worker_kills", "duplicates", "dup_transfers", "dup_payments", "extra_records",
           "losses", "phantoms", "problems", "wall_s")  # fmt: skip
RUNS_MAX = 1_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--runs", type=int, default=10, choices=range(1, RUNS_MAX + 1),
                        metavar=f"1..{RUNS_MAX}")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=25.0, help="traffic per round")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--lease", default="2", help="idempotency lease seconds, or 'default'")
    parser.add_argument("--retry-seconds", type=float, default=60.0,
                        help="how long one operation is retried")  # fmt: skip
    parser.add_argument(
        "--kill-every",
        type=float,
        nargs=2,
        default=(2.0, 5.0),
        metavar=("LOW", "HIGH"),
        help="seconds between kills (uniform)",
    )
    parser.add_argument(
        "--cli-tools",
        action="store_true",
        help="recover, check and audit through the flashpay commands",
    )
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL_DEFAULT)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write every round's counts here")
    parser.add_argument("--keep", type=Path, help="keep server logs and SQLite files here")
    args = parser.parse_args()
    options = Options(
        traffic_seconds=args.seconds,
        clients=args.clients,
        kill_every_seconds=tuple(args.kill_every),
        lease_seconds=None if args.lease == "default" else int(args.lease),
        retry_seconds_max=args.retry_seconds,
        postgres_admin_url=args.postgres_url,
        cli_tools=args.cli_tools,
    )
    console = Console(width=max(Console().width, 180))  # the whole table, even in a log file
    reports: list[Report] = []
    with tempfile.TemporaryDirectory(prefix="kill9-") as scratch:
        root = args.keep or Path(scratch)
        for run in range(1, args.runs + 1):
            seed = None if args.seed is None else args.seed + run
            seeded = dataclasses.replace(options, seed=seed)
            report = run_round(seeded, root / f"run-{run:03d}", database=args.db)
            reports.append(report)
            row = report.row()
            console.print(f"run {run}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
            for problem in report.problems[:5]:
                console.print(f"  [red]{problem}[/red]", highlight=False)
    table = Table(title=f"kill -9 soak: {args.db}, {args.runs} x {args.seconds:g} s of traffic")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "db" else "right")
    totals: dict[str, float] = {}
    for run, report in enumerate(reports, 1):
        row = {"run": run} | report.row()
        table.add_row(*(str(row[c]) for c in COLUMNS))
        for column in COLUMNS[2:]:
            totals[column] = totals.get(column, 0) + float(row[column])  # type: ignore[arg-type]
    table.add_row("total", args.db, *(f"{totals[c]:g}" for c in COLUMNS[2:]), end_section=True)
    console.print(table)
    if args.json:
        args.json.write_text(
            json.dumps(
                [r.row() | {"kinds": r.kinds, "timing": r.timing} for r in reports], indent=2
            )
        )
    if any(
        r.problems or r.duplicates or r.extra_records or r.losses or r.unanswered for r in reports
    ):
        sys.exit(1)


if __name__ == "__main__":
    main()
