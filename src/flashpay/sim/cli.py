"""``flashpay demo``: the main job — a demo payment network, a day of payments, the proof."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from flashpay import config
from flashpay import db as database
from flashpay.cli.common import DataDirOption, DbOption, console, err_console
from flashpay.money import CNY, Money
from flashpay.sim.demo import DemoOptions, run_demo

SUMMARY_FILE_NAME = "demo-summary.json"
FAST = DemoOptions(users=300, merchants=60, days=1)


def _yuan(fen: int) -> str:
    return Money(fen, CNY).format()


def demo(
    db: DbOption = None,
    data_dir: DataDirOption = None,
    users: Annotated[int, typer.Option(min=1, max=200_000, help="Wallet users.")] = 5_000,
    merchants: Annotated[int, typer.Option(min=10, max=20_000, help="Merchants.")] = 300,
    days: Annotated[int, typer.Option(min=1, max=30, help="Days of traffic.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same run.")] = 7,
    fast: Annotated[
        bool, typer.Option("--fast", help="A small run (300 users) for tests.")
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Where to write the JSON summary.")
    ] = None,
) -> None:
    """Build the demo network, run the day's payments, check the books, print a summary."""
    directory = config.data_dir(data_dir)
    url = config.database_url(db, data_directory=directory)
    if database.is_sqlite(url):
        path = database.sqlite_path(url)
        if path is not None and db is None:  # the demo owns its default database file
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
    options = FAST if fast else DemoOptions(users=users, merchants=merchants, days=days)
    options = DemoOptions(
        seed=seed, users=options.users, merchants=options.merchants, days=options.days
    )
    console.print(
        f"[bold]flashpay demo[/bold]: {options.users:,} users, {options.merchants:,} merchants, "
        f"{options.days} day(s), seed {options.seed} → {url}"
    )
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("payments", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            result = run_demo(url, options, progress=advance, audit_directory=directory / "chain")
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
    _print_summary(result.summary, result.timing)
    audit = result.audit
    if audit is not None:
        state = "[green]final[/green]" if audit.final else "[red]NOT final[/red]"
        console.print(
            f"audit log: {audit.leaves:,} leaves (one per ledger chain), root {audit.root_hash}; "
            f"checkpoint {state}, co-signed by {len(audit.cosigned_by)} of 3 member witnesses "
            f"(quorum {audit.quorum}): {', '.join(audit.cosigned_by)}",
            highlight=False,
        )
    target = json_path or directory / SUMMARY_FILE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"summary": result.summary, "timing": result.timing}
    if audit is not None:
        payload["audit_log"] = {
            "leaves": audit.leaves, "root_hash": audit.root_hash, "final": audit.final,
            "cosigned_by": list(audit.cosigned_by), "quorum": audit.quorum,
            "checkpoint": audit.checkpoint, "keys_file": audit.keys_file,
        }  # fmt: skip
    target.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    console.print(f"\nJSON summary: {target}")
    console.print(
        "Next: [bold]flashpay ledger check"
        + (f" --db {db}" if db else (f" --data-dir {data_dir}" if data_dir else ""))
        + "[/bold] to re-check the books, [bold]flashpay ledger bench[/bold] to measure the "
        "ledger, [bold]flashpay chain audit --keys "
        + str(directory / "chain" / "keys.txt")
        + "[/bold] to re-derive the audit log from the ledger and verify its checkpoint, "
        "[bold]flashpay serve[/bold] for the HTTP API."
    )
    if not result.summary["ledger_check"]["ok"] or not result.summary["mirrors_agree"]:
        raise typer.Exit(1)
    if audit is not None and not audit.final:
        raise typer.Exit(1)


def _table(
    title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], *, text_columns: int = 1
) -> Table:
    """A table: the first ``text_columns`` columns are text, the rest right-aligned figures."""
    table = Table(title=title)
    for n, column in enumerate(columns):
        table.add_column(column, justify="left" if n < text_columns else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _print_summary(s: dict[str, Any], timing: dict[str, float]) -> None:
    p = s["payments"]
    console.print(
        f"\n{p['attempted']:,} payments attempted, {p['completed']:,} completed, "
        f"volume {_yuan(p['volume_fen'])}; {s['p2p'][0]:,} P2P transfers ({_yuan(s['p2p'][1])}); "
        f"{s['transfers_posted']:,} ledger transfers in {timing['traffic_seconds']:.1f} s "
        f"({timing['payments_per_second']:,.0f} payments/s)"
    )
    console.print(
        _table(
            "payments per scene",
            ("scene", "payments", "volume"),
            [(k, f"{n:,}", _yuan(v)) for k, (n, v) in s["by_scene"].items()],
        )
    )
    console.print(
        _table(
            "payments per issuing bank",
            ("issuer", "payments", "volume"),
            [(k, f"{n:,}", _yuan(v)) for k, (n, v) in s["by_issuer"].items()],
        )
    )
    console.print(
        _table("declines", ("reason", "count"), [(k, f"{n:,}") for k, n in s["declines"].items()])
    )
    console.print(
        _table(
            "net position with the network (+ = the network owes it)",
            ("institution", "role", "net"),
            [(r["institution"], r["role"], _yuan(r["net_fen"])) for r in s["net_positions"]],
            text_columns=2,
        )
    )
    fees = s["fees_fen"]
    console.print(
        f"fees: interchange {_yuan(fees['interchange'])}, network {_yuan(fees['network'])}, "
        f"acquirers {_yuan(fees['acquirer'])}; parking {s['parking']}; "
        f"{s['retries_absorbed']:,} retried transfers answered 'exists', none posted twice"
    )
    check = s["ledger_check"]
    verdict = "[green]ok[/green]" if check["ok"] else "[red]FAILED[/red]"
    mirrors = "[green]agree[/green]" if s["mirrors_agree"] else "[red]DISAGREE[/red]"
    console.print(
        f"ledger check: {verdict} ({check['accounts']:,} accounts, {check['transfers']:,} "
        f"transfers; debits = credits; every balance recomputed); mirrored payables {mirrors}"
    )
    for problem in check["problems"]:
        err_console.print(f"[red]{problem}[/red]")
    console.print(
        "[dim]Not yet in the demo: the wallet, P2P and QR payment services (issue 7); the demo "
        "posts the §4 chains through the ledger directly, then the audit log co-signs them.[/dim]"
    )
