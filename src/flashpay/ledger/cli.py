"""``flashpay ledger``: check the books (the benchmark is ``benchmarks/ledger_bench.py``)."""

from __future__ import annotations

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
