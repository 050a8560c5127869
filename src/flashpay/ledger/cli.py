"""``flashpay ledger``: check the books, benchmark the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flashpay.cli.common import DataDirOption, DbOption, console, err_console, resolve_db
from flashpay.ledger.check import PROBLEMS_SHOWN_MAX, check

app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)


@app.command("check")
def check_command(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Recompute every balance from the transfers and check invariants 1–5; exit 1 if broken."""
    url = resolve_db(db, data_dir)
    report = check(url)
    table = Table(title="ledger check")
    table.add_column("ledger")
    table.add_column("debits", justify="right")
    table.add_column("credits", justify="right")
    for ledger, (debits, credits) in sorted(report.ledgers.items()):
        table.add_row(str(ledger), f"{debits:,}", f"{credits:,}")
    console.print(table)
    console.print(f"{report.accounts:,} accounts, {report.transfers:,} transfers")
    if report.ok:
        console.print("[green]ok[/green]: invariants 1–5 hold")
        return
    for problem in report.problems[:PROBLEMS_SHOWN_MAX]:
        err_console.print(f"[red]{problem}[/red]")
    err_console.print(f"[red]{len(report.problems)} problem(s)[/red]")
    raise typer.Exit(1)


@app.command("bench")
def bench_command(
    db: Annotated[
        list[str] | None,
        typer.Option("--db", help="Database URL(s); default a scratch SQLite file and PostgreSQL."),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    seconds: Annotated[float, typer.Option(help="Duration of each timed scenario.")] = 5.0,
    pgbench: Annotated[bool, typer.Option(help="Run pgbench TPC-B as the reference.")] = True,
) -> None:
    """Transfers/s and p50/p99 latency: 8 concurrent single-transfer clients, batches of 1,000,
    a hot account; on SQLite and PostgreSQL, side by side with pgbench TPC-B."""
    from flashpay.ledger import bench

    bench.main(urls=db or [], json_path=json_path, seconds=seconds, run_pgbench=pgbench)
